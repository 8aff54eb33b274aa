"""Training a cross-encoder reranker on the user's own corpus, on a CPU, within a time budget.

Nothing here reads gold questions. Training examples are mined from the indexed chunks:
- synthetic questions: a sentence with one span (a number, a name, else a short phrase) replaced
  by a question word, as a reader would ask for it ("The warranty lasts what ?"), and each
  section heading that names a topic; the chunk that holds the sentence (or sits under the
  heading) is the positive;
- hard negatives: the chunks BM25 and the dense index rank highest for that question, minus
  every chunk that holds the sentence (chunks overlap) or sits in the heading's section.

The model starts from a BERT checkpoint (by default the packaged all-MiniLM-L6-v2 weights) with a
new one-logit head and learns, for each question, to score its positive above its negatives
(softmax cross-entropy over the group). Each passage is the query's window of the chunk
(rerank.passage_window), as the reranker reads it at search time. The result is a normal
sentence-transformers CrossEncoder directory, plus rerank.TRAINING_FILE recording how it was made."""

from __future__ import annotations

import json
import logging
import math
import random
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from citekb.ingest.document import Chunk
from citekb.ingest.errors import ConfigError, ModelError
from citekb.ingest.sentences import split_sentences
from tqdm import tqdm

from .analyze import analyze, query_language
from .embed import Embedder
from .rerank import TRAINING_FILE, passage_window
from .store import Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainingConfig:
    minutes: float = 15.0  # wall-clock budget for the optimisation (mining and saving come on top)
    seed: int = 0
    max_queries: int = 4000  # synthetic questions mined at most (a random sample of the corpus's sentences)
    negatives: int = 3  # hard negatives per question
    batch_queries: int = 4  # questions per step; each brings 1 + negatives passages
    learning_rate: float = 1e-4
    head_lr_scale: float = 10.0
    max_length: int = 96  # word pieces of query + passage
    passage_tokens: int = 64  # the passage window (rerank.passage_window)
    epochs: int = 1
    dev_share: float = 0.05  # synthetic questions held out to report accuracy after training
    # torch threads (0: torch's default, one per core). On a machine other jobs share, one thread
    # is many times faster than two: OpenMP threads spin waiting for each other.
    threads: int = 0

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ConfigError(f"the training budget must be positive, got {self.minutes} minutes")
        if min(self.max_queries, self.negatives, self.batch_queries, self.epochs) < 1 or self.threads < 0:
            raise ConfigError("max_queries, negatives, batch_queries and epochs must be at least 1, threads at least 0")
        if not 16 <= self.max_length <= 512 or not 8 <= self.passage_tokens < self.max_length:
            raise ConfigError("need 16 <= max_length <= 512 and 8 <= passage_tokens < max_length")


@dataclass(frozen=True, slots=True)
class Example:
    query: str
    positive: str  # passage texts, as the reranker reads them
    negatives: tuple[str, ...]


@dataclass
class TrainingReport:
    model_dir: str
    base: str
    examples: int
    dev_examples: int
    steps: int
    seconds: float  # optimisation only
    mining_seconds: float
    final_loss: float
    dev_accuracy: float  # positive ranked first among its group, held-out synthetic questions
    dev_accuracy_before: float  # the same with the untrained head (chance is 1 / (1 + negatives))
    stopped_by_budget: bool
    config: dict[str, object] = field(default_factory=dict)


# ---------------------------------------------------------------- synthetic questions

_WORD = re.compile(r"[^\W_]+(?:[-'.][^\W_]+)*")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NUMBER = re.compile(r"\d")
_GENERIC_HEADING = re.compile(r"^(?:section|chapter|part|appendix|第)\s*[\dIVXLC一二三四五六七八九十百]+\s*(?:[卷章节部分])?$", re.IGNORECASE)


def sentence_question(sentence: str, rng: random.Random) -> str | None:
    """A question asking for one span of sentence, or None when the sentence is too short."""
    if query_language(sentence) == "zh":
        return _chinese_question(sentence, rng)
    words = _WORD.findall(sentence)
    if len(words) < 6:
        return None
    # The "answer": a number or a run of capitalised words (not the first word), else 1-3 words.
    runs = [i for i in range(1, len(words)) if _NUMBER.search(words[i]) or words[i][0].isupper()]
    if runs and rng.random() < 0.8:
        start = rng.choice(runs)
        stop = start + 1
        while stop < len(words) and stop - start < 4 and (words[stop][0].isupper() or _NUMBER.search(words[stop])):
            stop += 1
    else:
        start = rng.randrange(1, len(words) - 1)
        stop = min(len(words), start + rng.randint(1, 3))
    span = words[start:stop]
    if any(_NUMBER.search(w) for w in span):
        wh = "when" if any(re.fullmatch(r"1\d{3}|20\d{2}", w) for w in span) else "how many"
    elif span[0][0].isupper():
        wh = rng.choice(("who", "what", "which"))
    else:
        wh = rng.choice(("what", "which", "how"))
    rest = [w for i, w in enumerate(words) if (i < start or i >= stop) and rng.random() > 0.15]
    at = sum(1 for i in range(start) if words[i] in rest)
    question = rest[:at] + [wh] + rest[at:]
    # A question is short: keep at most 16 words around the question word.
    lo = max(0, min(at - 8, len(question) - 16))
    return " ".join(question[lo : lo + 16]) + " ?"


def _chinese_question(sentence: str, rng: random.Random) -> str | None:
    text = "".join(ch for ch in sentence if ch.isalnum())
    if len(text) < 10:
        return None
    digits = [m.span() for m in re.finditer(r"\d+(?:[.,]\d+)?[\u4e00-\u9fff]?", text)]
    if digits and rng.random() < 0.8:
        start, stop = rng.choice(digits)
        wh = "多少"
    else:
        size = rng.randint(2, 5)
        start = rng.randrange(0, len(text) - size)
        stop = start + size
        wh = rng.choice(("什么", "哪里", "谁", "哪个"))
    question = text[:start] + wh + text[stop:]
    lo = max(0, min(start - 12, len(question) - 30))
    return question[lo : lo + 30] + "？"


def heading_question(chunk: Chunk) -> str | None:
    """The innermost heading of the chunk when it names a topic (not "Section 3", not a title alone)."""
    section = chunk.locator.section
    if len(section) < 2:
        return None
    heading = section[-1].strip()
    enough = len(_CJK.findall(heading)) >= 3 or len(_WORD.findall(heading)) >= 2
    return heading if enough and not _GENERIC_HEADING.match(heading) else None


# ---------------------------------------------------------------- mining

def mine_examples(snapshot: Snapshot, embedder: Embedder, cfg: TrainingConfig, show_progress: bool = False,
                  candidates: int = 12) -> list[Example]:
    """Synthetic questions with their positive passage and hard negatives from both search legs."""
    rng = random.Random(cfg.seed)
    chunks = snapshot.chunks
    if len(chunks) < cfg.negatives + 1:
        raise ConfigError(f"the index has {len(chunks)} chunks; training needs at least {cfg.negatives + 1}")
    # (question, source sentence or None, row of the positive chunk)
    asked: list[tuple[str, str | None, int]] = []
    seen_headings: set[tuple[str, str]] = set()
    for row, c in enumerate(chunks):
        for a, b in split_sentences(c.text):
            question = sentence_question(c.text[a:b], rng)
            if question:
                asked.append((question, c.text[a:b], row))
        heading = heading_question(c)
        key = (c.locator.doc_id, c.locator.section_path)
        if heading and key not in seen_headings:
            seen_headings.add(key)
            asked.append((heading, None, row))
    rng.shuffle(asked)
    asked = asked[: cfg.max_queries]
    if not asked:
        raise ConfigError("no synthetic question could be made: the indexed text has no sentence of six words or more")
    vectors = embedder.embed([q for q, _, _ in asked], show_progress=show_progress)
    examples = []
    for (question, sentence, row), vector in tqdm(list(zip(asked, vectors)), desc="mine", unit="q",
                                                  disable=not show_progress, file=sys.stderr, leave=False):
        positive = chunks[row]

        def related(other: Chunk, positive: Chunk = positive, sentence: str | None = sentence) -> bool:
            if sentence is not None:
                return sentence in other.text
            return other.locator.doc_id == positive.locator.doc_id and other.locator.section == positive.locator.section

        legs = [snapshot.keyword.search(analyze(question), candidates), snapshot.dense.search(vector, candidates)]
        ranked = [r for pair in _interleave(*legs) for r in pair]
        picked: list[int] = []
        for r in dict.fromkeys(ranked):
            if r != row and not related(chunks[r]):
                picked.append(r)
            if len(picked) == cfg.negatives:
                break
        while len(picked) < cfg.negatives:  # a small corpus: fill with random unrelated chunks
            r = rng.randrange(len(chunks))
            if r != row and r not in picked and not related(chunks[r]):
                picked.append(r)
        terms = frozenset(analyze(question))
        examples.append(Example(question, passage_window(terms, positive, cfg.passage_tokens),
                                tuple(passage_window(terms, chunks[r], cfg.passage_tokens) for r in picked)))
    return examples


def _interleave(*legs: Sequence[tuple[int, float]]) -> list[tuple[int, ...]]:
    longest = max(len(leg) for leg in legs)
    return [tuple(leg[i][0] for leg in legs if i < len(leg)) for i in range(longest)]


# ---------------------------------------------------------------- training

def train_reranker(examples: Sequence[Example], base_dir: Path, out_dir: Path, cfg: TrainingConfig,
                   show_progress: bool = False, mining_seconds: float = 0.0) -> TrainingReport:
    """Fine-tune a one-logit cross-encoder from base_dir on examples and save it to out_dir (a new
    or empty folder, or one holding an earlier citekb reranker, which is replaced)."""
    import torch

    _check_out_dir(out_dir)
    if len(examples) < 2:
        raise ConfigError(f"need at least 2 training examples, got {len(examples)}")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(examples, base_dir, out_dir, cfg, rng, show_progress, mining_seconds)
    finally:
        torch.set_num_threads(threads)


def _train(examples: Sequence[Example], base_dir: Path, out_dir: Path, cfg: TrainingConfig, rng: random.Random,
           show_progress: bool, mining_seconds: float) -> TrainingReport:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(base_dir), num_labels=1, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the base model from {base_dir}: {exc}") from exc
    shuffled = list(examples)
    rng.shuffle(shuffled)
    n_dev = max(1, min(200, int(len(shuffled) * cfg.dev_share)))
    dev, train = shuffled[:n_dev], shuffled[n_dev:]

    def scores(batch: Sequence[Example]):  # type: ignore[no-untyped-def]
        queries = [e.query for e in batch for _ in range(1 + cfg.negatives)]
        passages = [p for e in batch for p in (e.positive, *e.negatives[: cfg.negatives])]
        encoded = tokenizer(queries, passages, truncation="longest_first", max_length=cfg.max_length,
                            padding=True, return_tensors="pt")
        return model(**encoded).logits.view(len(batch), 1 + cfg.negatives)

    def dev_accuracy() -> float:
        model.eval()
        right = 0
        with torch.inference_mode():
            for i in range(0, len(dev), 16):
                right += int((scores(dev[i : i + 16]).argmax(dim=1) == 0).sum())
        model.train()
        return right / len(dev)

    before = dev_accuracy()
    # The head is new (random): it learns at head_lr_scale times the rate of the pretrained body.
    head = [p for name, p in model.named_parameters() if name.startswith("classifier")]
    body = [p for name, p in model.named_parameters() if not name.startswith("classifier")]
    optimizer = torch.optim.AdamW([{"params": body, "scale": 1.0}, {"params": head, "scale": cfg.head_lr_scale}],
                                  lr=cfg.learning_rate, weight_decay=0.01)
    planned = math.ceil(len(train) / cfg.batch_queries) * cfg.epochs
    warmup = max(1, min(planned // 10, 10))  # short: on a busy CPU a budget may hold only a few dozen steps
    budget = cfg.minutes * 60
    started = time.monotonic()
    step, loss_avg, stopped = 0, float("nan"), False
    target = torch.zeros(cfg.batch_queries, dtype=torch.long)
    model.train()
    with tqdm(total=planned, desc="train", unit="step", disable=not show_progress, file=sys.stderr) as bar:
        for _ in range(cfg.epochs):
            rng.shuffle(train)
            for i in range(0, len(train) - cfg.batch_queries + 1, cfg.batch_queries):
                if time.monotonic() - started > budget:
                    stopped = True
                    break
                for group in optimizer.param_groups:
                    group["lr"] = cfg.learning_rate * group["scale"] * min(1.0, (step + 1) / warmup)
                loss = torch.nn.functional.cross_entropy(scores(train[i : i + cfg.batch_queries]), target)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()
                step += 1
                value = float(loss.detach())
                loss_avg = value if math.isnan(loss_avg) else 0.95 * loss_avg + 0.05 * value
                bar.update(1)
                bar.set_postfix(loss=f"{loss_avg:.3f}")
            if stopped:
                break
    seconds = time.monotonic() - started
    after = dev_accuracy()
    report = TrainingReport(model_dir=str(out_dir), base=str(base_dir), examples=len(train), dev_examples=len(dev),
                            steps=step, seconds=round(seconds, 1), mining_seconds=round(mining_seconds, 1),
                            final_loss=round(loss_avg, 4), dev_accuracy=round(after, 4),
                            dev_accuracy_before=round(before, 4), stopped_by_budget=stopped, config=asdict(cfg))
    _save(model, tokenizer, out_dir, cfg, report)
    return report


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / TRAINING_FILE).is_file())):
        raise ConfigError(f"{out_dir} exists and is not an empty folder or an earlier citekb reranker; choose another")


def _save(model, tokenizer, out_dir: Path, cfg: TrainingConfig, report: TrainingReport) -> None:  # type: ignore[no-untyped-def]
    """Write the model beside out_dir, then swap it in: an interrupted save leaves any old model whole."""
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.eval()
    model.save_pretrained(str(staging))
    tokenizer.model_max_length = cfg.max_length  # CrossEncoder truncates to this at search time
    tokenizer.save_pretrained(str(staging))
    record = {"passage_tokens": cfg.passage_tokens, "max_length": cfg.max_length, **asdict(report)}
    (staging / TRAINING_FILE).write_text(json.dumps(record, indent=1, default=str) + "\n", "utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)

