"""Text lines from an image with RapidOCR (PP-OCR models on onnxruntime, English and Chinese).

rapidocr is imported on the first image that needs reading, not when citekb is imported:
loading it costs about a second and most documents never need it. When it is not installed,
read_lines raises ImportError and the caller says which file needed it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from PIL import Image

MIN_SCORE = 0.5  # recognitions below this confidence are mostly noise from pictures and rules


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised line; its box in the image's pixels (left, top, right, bottom)."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    score: float


@functools.cache
def _engine() -> Any:
    from rapidocr import RapidOCR  # noqa: PLC0415 - lazy: see the module docstring

    # rapidocr logs every model load at INFO through a handler of its own; its own setting
    # turns that down, so our stderr stays quiet unless something goes wrong.
    return RapidOCR(params={"Global.log_level": "warning"})


def read_lines(image: Image.Image) -> list[OcrLine]:
    """The image's text lines in the engine's reading order (top to bottom, then left to
    right), confident ones only. The engine is built once per process and reused."""
    result = _engine()(image)
    if result.txts is None or result.boxes is None:
        return []
    lines = []
    for text, box, score in zip(result.txts, result.boxes, result.scores or ()):
        text = str(text).strip()
        if not text or float(score) < MIN_SCORE:
            continue
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        lines.append(OcrLine(text, min(xs), min(ys), max(xs), max(ys), float(score)))
    return lines
