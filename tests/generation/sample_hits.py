"""Two sample passages, a handbook page pair and a security rule, and citations of them."""

from __future__ import annotations

from citekb.generation.answer import Citation
from citekb.ingest.document import Chunk, Locator, Span
from citekb.retrieval.hit import Hit

PORTAL = "Annual leave requests go through the HR portal."
APPROVAL = "Approval takes two days."
ENTITLEMENT = "Full-time employees receive 27 days of paid annual leave per year."
EXPIRY = "Unused days expire in June."
PASSWORD = "Passwords must have at least sixteen characters and are rotated every ninety days."
LAPTOP = "Laptops are encrypted with a hardware key before they leave the office."


def handbook() -> Chunk:
    """Two blocks: the first printed on page 3, the second on page 4."""
    first, second = f"{PORTAL} {APPROVAL}", f"{ENTITLEMENT} {EXPIRY}"
    text = f"{first}\n\n{second}"
    locator = Locator(doc_id="hb", source="handbook.pdf", title="Handbook", page=3, page_end=4)
    spans = (Span(0, len(first), 3, None, None), Span(len(first) + 2, len(text), 4, None, None))
    return Chunk(chunk_id="hb:4", text=text, locator=locator, spans=spans)


def security() -> Chunk:
    text = f"{PASSWORD} {LAPTOP}"
    locator = Locator(doc_id="sec", source="security.md", title="Security", line_start=10, line_end=12)
    return Chunk(chunk_id="sec:1", text=text, locator=locator, spans=(Span(0, len(text), None, 10, 12),))


HITS = (Hit(handbook(), 1.0, {}), Hit(security(), 0.5, {}))


def whole(n: int, chunk: Chunk) -> Citation:
    """A citation of a whole passage, as a model-writing backend makes it."""
    return Citation(n=n, chunk_id=chunk.chunk_id, locator=chunk.locator, quote=chunk.text)
