"""Mining synthetic training questions from a corpus, and fine-tuning a (tiny) cross-encoder."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from citekb.ingest.document import Chunk, Locator
from citekb.ingest.errors import ConfigError
from citekb.retrieval.rerank import TRAINING_FILE, CrossEncoderReranker, passage_window
from citekb.retrieval.reranker_training import (
    Example,
    TrainingConfig,
    heading_question,
    mine_examples,
    sentence_question,
    train_reranker,
)
from citekb.retrieval.store import Snapshot
from fakes import HashEmbedder


def test_sentence_questions_ask_for_a_span() -> None:
    rng = random.Random(0)
    sentence = "Full-time employees receive 27 days of paid annual leave per year."
    questions = {sentence_question(sentence, rng) for _ in range(20)}
    assert all(q and q.endswith("?") and len(q.split()) <= 17 for q in questions)
    assert any("how many" in q and "27" not in q for q in questions if q)  # the number is what is asked for
    assert sentence_question("Too short to ask.", rng) is None
    zh = sentence_question("主机应距离墙壁至少30厘米，以便散热。", random.Random(1))
    assert zh and zh.endswith("？") and ("多少" in zh or any(w in zh for w in ("什么", "哪里", "谁", "哪个")))


def test_heading_questions_skip_generic_headings_and_titles() -> None:
    def chunk(*section: str) -> Chunk:
        return Chunk(chunk_id="d:0", text="x", locator=Locator(doc_id="d", source="d.md", title="T", section=section))

    assert heading_question(chunk("Handbook", "Parental leave")) == "Parental leave"
    assert heading_question(chunk("Handbook", "Section 3")) is None
    assert heading_question(chunk("Handbook")) is None  # the title names the whole document
    assert heading_question(chunk("手册", "年假制度")) == "年假制度"


def test_passage_window_centres_on_the_matching_sentence() -> None:
    text = "Alpha one two three. Beta four five six. The pump filter is replaced monthly. Gamma seven eight."
    c = Chunk(chunk_id="d:0", text=text, locator=Locator(doc_id="d", source="d.md", title="T", section=("Manual", "Care")))
    from citekb.retrieval.analyze import analyze

    window = passage_window(frozenset(analyze("pump filter")), c, tokens=13)
    assert window.startswith("Manual > Care: ")
    assert "The pump filter is replaced monthly." in window and "Alpha" not in window
    assert passage_window(frozenset(analyze("pump")), c, tokens=1000).endswith(text)  # room for all of it


def test_mined_examples_pair_a_question_with_its_chunk_and_other_chunks(make_snapshot: Callable[..., Snapshot]) -> None:
    snapshot = make_snapshot()
    cfg = TrainingConfig(negatives=2, max_queries=40)
    examples = mine_examples(snapshot, HashEmbedder(), cfg)
    assert 5 <= len(examples) <= 40
    for e in examples:
        assert len(e.negatives) == 2 and e.positive not in e.negatives
    assert mine_examples(snapshot, HashEmbedder(), cfg) == examples  # same seed, same examples
    assert mine_examples(snapshot, HashEmbedder(), TrainingConfig(negatives=2, max_queries=40, seed=1)) != examples


def _toy_examples(n: int) -> list[Example]:
    """A task the tiny model learns in a few dozen steps: positives are "paid" passages."""
    topics = ["pump filter", "annual leave", "hotel flight", "laptop password", "warranty months"]
    rng = random.Random(0)
    out = []
    for i in range(n):
        topic = topics[i % len(topics)]
        others = [t for t in topics if t != topic]
        rng.shuffle(others)
        out.append(Example(f"what {topic}", f"the {topic} policy is paid", tuple(f"the {t} policy" for t in others[:2])))
    return out


def test_training_learns_and_saves_a_cross_encoder(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    cfg = TrainingConfig(minutes=2, negatives=2, batch_queries=4, learning_rate=3e-3, epochs=3, dev_share=0.2,
                         max_length=32, passage_tokens=16, threads=1)
    out = tmp_path / "reranker"
    report = train_reranker(_toy_examples(100), tiny_cross_encoder, out, cfg)
    assert report.steps == 3 * (80 // 4) and not report.stopped_by_budget  # 20 held out
    assert report.dev_accuracy >= 0.9 > report.dev_accuracy_before
    record = json.loads((out / TRAINING_FILE).read_text("utf-8"))
    assert record["passage_tokens"] == 16 and record["steps"] == report.steps
    reranker = CrossEncoderReranker(out)  # a normal CrossEncoder directory
    assert reranker.window_tokens == 16
    # Training again into the same folder replaces the earlier model.
    again = train_reranker(_toy_examples(20), tiny_cross_encoder, out, TrainingConfig(minutes=1e-4, negatives=2, max_length=32,
                                                                                       passage_tokens=16, threads=1))
    assert again.stopped_by_budget and again.steps <= 1


def test_output_folder_must_be_new_empty_or_an_earlier_reranker(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", "utf-8")
    with pytest.raises(ConfigError, match="is not an empty folder or an earlier citekb reranker"):
        train_reranker(_toy_examples(10), tiny_cross_encoder, tmp_path, TrainingConfig(negatives=2))
    assert (tmp_path / "notes.txt").read_text("utf-8") == "mine"


def test_bad_budgets_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="budget must be positive"):
        TrainingConfig(minutes=0)
    with pytest.raises(ConfigError, match="passage_tokens"):
        TrainingConfig(max_length=64, passage_tokens=64)
