"""Citation precision and recall of each answer backend on a gold QA folder, before and after
citation verification (generation/verify.py), in process.

    python bench/citation_eval.py [--data ../shared/data/qa] [--index DIR] [--every 4]
                                  [--tinyllm-model DIR] [--json out.json]

Backends measured:
- extractive: the default backend.
- openai-replay: the openai backend against the fake OpenAI-compatible server of the tests
  (tests/generation/fake_openai.py), replaying for each question a two-sentence answer: the
  extractive answer's sentence cited to the passage it comes from, and a sentence of another
  passage deliberately cited to a passage that does not hold it. Verification should drop the
  second citation and keep the first.
- tinyllm, when --tinyllm-model names a checkpoint.

Matching uses the acceptance scorer's own rules (../shared/tools/score.py): a citation is right
when it matches a gold location or its text contains a gold answer (precision, averaged over
answers with a citation); recall is the share of answers with a citation on a gold location.
"After" is verification in "drop" mode: what a reader is shown as backed by its citation.
--every n asks every n-th question from --start on; the ones asked are split by parity into the
half used to look at thresholds (even) and the half reported (odd), and both halves are printed.
(The sentence chooser's weights were fitted on the even-numbered questions of questions.jsonl:
--start 1 with an even --every asks only questions it never saw.)"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "generation"))

from qa_eval import SHARED, as_item, load_scorer  # noqa: E402

from citekb.api.kb import KnowledgeBase  # noqa: E402
from citekb.api.settings import Settings  # noqa: E402
from citekb.generation.answer import Answer  # noqa: E402
from citekb.generation.backends.openai import OpenAIGenerator  # noqa: E402
from citekb.generation.base import Generator  # noqa: E402
from citekb.generation.config import OpenAIConfig, VerifyConfig  # noqa: E402
from citekb.generation.factory import make_generator  # noqa: E402
from citekb.generation.verify import passage_sentences, sentence_relevance, verify  # noqa: E402
from citekb.retrieval.hit import Hit  # noqa: E402

from fake_openai import FakeOpenAIServer, question_of  # noqa: E402


class CachingEmbedder:
    """The index's embedder, remembering each text's vector: verification embeds again the
    sentences the extractive generator embedded, and the two verification modes the same claims."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self.model_id, self.dim, self.languages = embedder.model_id, embedder.dim, embedder.languages
        self._vectors: dict[str, Any] = {}

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> Any:
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for text, vector in zip(missing, self._embedder.embed(missing)):
                self._vectors[text] = vector
        if len(self._vectors) > 50_000:
            self._vectors.clear()
            return self._embedder.embed(texts)
        return np.stack([self._vectors[t] for t in texts]) if texts else self._embedder.embed(texts)


def replay_reply(question: str, hits: Sequence[Hit], extractive: Answer) -> str | None:
    """The scripted model reply: the extractive sentence cited right, then the longest sentence
    of the next passage cited to a passage that does not hold it (None: nothing to replay)."""
    if not extractive.grounded or not extractive.citations:
        return None
    first = extractive.citations[0]
    right = next(i for i, h in enumerate(hits) if h.chunk.chunk_id == first.chunk_id)
    other = next((i for i in range(len(hits)) if i != right), None)
    if other is None:
        return f"{first.quote} [{right + 1}]"
    sentences = passage_sentences(hits[other].chunk)
    if not sentences:
        return f"{first.quote} [{right + 1}]"
    wrong_claim = max(sentences, key=lambda s: len(s.terms)).text
    wrong = next((i for i, h in enumerate(hits) if i != other and wrong_claim not in h.chunk.text), None)
    if wrong is None:
        return f"{first.quote} [{right + 1}]"
    return f"{first.quote} [{right + 1}] {wrong_claim} [{wrong + 1}]"


def score_answer(answer: Answer, q: dict[str, Any], score: Any) -> dict[str, Any]:
    cites = [as_item(c.locator, c.quote) for c in answer.citations]
    located = [any(score.location_matches(c, g) for g in q["gold"]) for c in cites]
    good = [loc or score.contains_answer(c["text"], q["answers"], q["lang"]) for loc, c in zip(located, cites)]
    return {"cites": len(cites), "precision": sum(good) / len(good) if good else None, "recall": float(any(located)),
            "unsupported": sum(not s.supported for s in answer.sentences)}


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    precisions = [r["precision"] for r in rows if r["precision"] is not None]
    return {"n": len(rows), "citation_precision": round(sum(precisions) / max(1, len(precisions)), 3),
            "citation_recall": round(sum(r["recall"] for r in rows) / max(1, len(rows)), 3),
            "cites_present": round(len(precisions) / max(1, len(rows)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "qa")
    parser.add_argument("--index", type=Path, help="an index of the data's documents (default: build one in a temporary folder)")
    parser.add_argument("--every", type=int, default=4, help="ask every n-th question")
    parser.add_argument("--start", type=int, default=0,
                        help="the first question asked (1 with an even --every: only odd-numbered ones, which the chooser was not fitted on)")
    parser.add_argument("--no-replay", action="store_true", help="skip the openai backend's replay")
    parser.add_argument("--tinyllm-model", type=Path, help="also measure the tinyllm backend with this checkpoint")
    parser.add_argument("--min-relevance", type=float, default=VerifyConfig().min_relevance,
                        help="VerifyConfig.min_relevance for the 'after' figures")
    parser.add_argument("--min-relevance-similarity", type=float, default=VerifyConfig().min_relevance_similarity)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    questions_path = args.data / "questions.jsonl"
    if not questions_path.is_file():
        sys.exit(f"skipped: no gold questions at {questions_path}")
    score = load_scorer()
    questions = [json.loads(line) for line in questions_path.read_text("utf-8").splitlines() if line.strip()][args.start:: args.every]
    with tempfile.TemporaryDirectory(prefix="citekb-cite-") as tmp:
        index = args.index or Path(tmp) / "index"
        kb = KnowledgeBase(Settings(index=index))
        if args.index is None:
            docs = args.data / "docs" if (args.data / "docs").is_dir() else args.data
            kb.ingest([docs], show_progress=True)
        results = run(kb, questions, score, args)
    results.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                    "date": datetime.date.today().isoformat(), "data": str(args.data), "every": args.every, "start": args.start})
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", "utf-8")


def run(kb: KnowledgeBase, questions: list[dict[str, Any]], score: Any, args: argparse.Namespace) -> dict[str, Any]:
    drop = VerifyConfig(mode="drop", min_relevance=args.min_relevance, min_relevance_similarity=args.min_relevance_similarity)
    embedder = CachingEmbedder(kb.embedder)
    extractive = make_generator(kb.settings.generation_config(), "extractive", embedder)
    replies: dict[str, str] = {}
    backends: dict[str, Generator] = {"extractive": extractive}
    server = FakeOpenAIServer(lambda body: replies.get(question_of(body), "NOT IN DOCUMENTS"))
    server.__enter__()
    if not args.no_replay:
        backends["openai-replay"] = OpenAIGenerator(OpenAIConfig(base_url=server.base_url, model="replay", retries=0))
    if args.tinyllm_model is not None:
        settings = Settings(index=kb.settings.index, tinyllm_model=args.tinyllm_model)
        backends["tinyllm"] = make_generator(settings.generation_config(), "tinyllm", embedder)
    rows: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    replay = {"right": 0, "right_kept": 0, "wrong": 0, "wrong_caught": 0}
    seconds: dict[str, float] = defaultdict(float)
    try:
        for i, q in enumerate(tqdm(questions, desc="questions", file=sys.stderr)):
            half = "tune" if i % 2 == 0 else "report"
            hits = kb.search(q["question"], k=kb.settings.ask_k)
            for name, generator in backends.items():
                if name == "openai-replay":
                    reply = replay_reply(q["question"], hits, base)
                    if reply is None:
                        continue
                    replies[q["question"]] = reply
                started = time.perf_counter()
                answer = generator.answer(q["question"], hits)
                middle = time.perf_counter()
                after = verify(answer, embedder, drop, question=q["question"])
                features = sentence_relevance(answer, q["question"], embedder)
                seconds[f"{name}:verify"] += time.perf_counter() - middle
                seconds[name] += middle - started
                if name == "extractive":
                    base = answer
                if name == "openai-replay":
                    count_replay(answer, embedder, replay)
                for stage, a in (("before", answer), ("after", after)):
                    rows[f"{name}:{stage}"][half].append(score_answer(a, q, score) | {"lang": q["lang"], "relevance": features})
    finally:
        server.__exit__()
    out: dict[str, Any] = {"backends": {}, "replay": replay, "seconds": {k: round(v, 1) for k, v in seconds.items()}}
    for key, halves in sorted(rows.items()):
        out["backends"][key] = {half: summarise(r) for half, r in sorted(halves.items())}
        everything = halves["tune"] + halves["report"]
        out["backends"][key]["all"] = summarise(everything)
        for lang in ("en", "zh"):
            out["backends"][key][f"all_{lang}"] = summarise([r for r in everything if r["lang"] == lang])
        print(f"{key:22} " + "  ".join(f"{half} {m['citation_precision']:.3f}/{m['citation_recall']:.3f}/{m['cites_present']:.3f} (n {m['n']})"
                                       for half, m in out["backends"][key].items()) + "   [precision/recall/cites-present]")
    out["relevance_grid"] = relevance_grid(rows["extractive:before"])
    if replay["wrong"]:
        print(f"replay: wrong citations caught {replay['wrong_caught']}/{replay['wrong']} = {replay['wrong_caught'] / replay['wrong']:.3f}; "
              f"right citations kept {replay['right_kept']}/{replay['right']} = {replay['right_kept'] / max(1, replay['right']):.3f}")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in out["seconds"].items()))
    return out


def relevance_grid(halves: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Extractive precision and coverage if sentences less relevant than (lex, sim) were flagged:
    the rule of VerifyConfig.min_relevance / min_relevance_similarity, on single-sentence answers."""
    grid = []
    for lex_min in (0.0, 0.3, 0.4, 0.5, 0.6, 0.7):
        for sim_min in (0.3, 0.4, 0.5, 0.6, 1.0):
            if lex_min == 0.0 and sim_min != 1.0:
                continue
            entry: dict[str, Any] = {"min_relevance": lex_min, "min_relevance_similarity": sim_min}
            for half, rows in halves.items():
                kept = [r for r in rows if r["precision"] is not None and all(
                    lex >= lex_min or (sim is not None and sim >= sim_min) for lex, sim in r["relevance"])]
                entry[half] = {"precision": round(sum(r["precision"] for r in kept) / max(1, len(kept)), 3),
                               "recall": round(sum(r["recall"] for r in kept) / max(1, len(rows)), 3),
                               "cites_present": round(len(kept) / max(1, len(rows)), 3)}
            grid.append(entry)
            print(f"relevance >= {lex_min} or sim >= {sim_min}: " + "  ".join(
                f"{h} P {m['precision']} R {m['recall']} present {m['cites_present']}" for h, m in entry.items() if isinstance(m, dict)))
    return grid


def count_replay(answer: Answer, embedder: Any, tally: dict[str, int]) -> None:
    """The replayed reply's first sentence is cited right, its second (if any) wrong: is the
    first kept and the second flagged?"""
    sentences = verify(answer, embedder, VerifyConfig(mode="flag")).sentences
    if len(sentences) not in (1, 2):
        tally["unparsed"] = tally.get("unparsed", 0) + 1
        return
    tally["right"] += 1
    tally["right_kept"] += sentences[0].supported
    if len(sentences) == 2:
        tally["wrong"] += 1
        tally["wrong_caught"] += not sentences[1].supported


if __name__ == "__main__":
    main()
