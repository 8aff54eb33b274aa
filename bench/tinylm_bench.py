"""TinyLM: training and generation speed, and answer quality against the extractive backend.

    python bench/tinylm_bench.py speed [--threads 1] [--json out.json]
    python bench/tinylm_bench.py quality --model DIR [--index DIR] [--every 8] [--json out.json]

speed: training tokens/s of each model size (vocab 8000, batches of 8 x 256 tokens with the loss
on every position, and QA batches of 8 x 140 with the loss on 5 answer tokens), and generation
tokens/s of the small size with and without its KV cache.

quality: on a gold QA folder (default ../shared/data/qa), every n-th question is searched once
(k=5) and answered from the same hits by the extractive backend and by TinyLM: copy-constrained
from the best evidence sentence (the default) or from any of them, and free, the sentences
ranked with the index's embedder; and copy-constrained with them ranked by their terms alone. Scored with the acceptance scorer's own rules (../shared/tools/score.py): SQuAD-style
answer F1, and cited-page precision (a citation counts when its location matches the gold or
its quoted sentence holds a gold answer), as bench/qa_eval.py does. The raw generator answers
are scored, before citekb's sentence verification. Train the model first, e.g.
`citekb train --index DIR --out DIR --minutes 20`."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qa_eval import SHARED, as_item, load_scorer  # noqa: E402

from citekb.api.kb import KnowledgeBase  # noqa: E402
from citekb.api.settings import Settings  # noqa: E402
from citekb.generation.config import TinyLLMConfig  # noqa: E402
from citekb.generation.factory import make_generator  # noqa: E402
from citekb.generation.tinylm.checkpoint import load_checkpoint  # noqa: E402
from citekb.generation.tinylm.generator import TinyLMGenerator  # noqa: E402
from citekb.generation.tinylm.model import SIZES, TinyLM  # noqa: E402


def _median_step_s(model: TinyLM, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Median seconds of one training step on (x, y), the first step (allocator and kernel
    warm-up) not counted."""
    times = []
    for step in range(steps):
        started = time.perf_counter()
        _, loss, _ = model(x, y)
        optimizer.zero_grad()
        assert loss is not None
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed(threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    out: dict[str, Any] = {"threads": threads, "train": {}}
    for name, base in SIZES.items():
        torch.manual_seed(0)
        model = TinyLM(replace(base, vocab_size=8000, max_seq_len=512))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, 8000, (8, 256))
        rate = x.numel() / _median_step_s(model, optimizer, x, x, 3 if name in ("medium", "large") else 5)
        # A QA step as `citekb train` takes it: 8 prompts of ~140 tokens, loss on 5 answer tokens.
        qa_x = torch.randint(0, 8000, (8, 140))
        qa_y = torch.full_like(qa_x, -100)
        qa_y[:, -5:] = qa_x[:, -5:]
        qa_step = _median_step_s(model, optimizer, qa_x, qa_y, 6)
        out["train"][name] = {"params_m": round(model.num_params() / 1e6, 2), "tokens_per_s": round(rate),
                              "qa_ms_per_step": round(1000 * qa_step, 1), "qa_tokens_per_s": round(qa_x.numel() / qa_step)}
        print(f"train {name:6} {model.num_params() / 1e6:5.1f}M params: {rate:8.0f} tokens/s; QA steps (8 x 140): "
              f"{1000 * qa_step:6.1f} ms, {qa_x.numel() / qa_step:8.0f} tokens/s", flush=True)
    torch.manual_seed(0)
    model = TinyLM(replace(SIZES["small"], vocab_size=8000)).eval()
    prompt = torch.randint(0, 8000, (240,)).tolist()
    out["generate"] = {}
    for use_cache in (True, False):
        started = time.perf_counter()
        n = sum(1 for _ in model.generate(prompt, 64, use_cache=use_cache))
        rate = n / (time.perf_counter() - started)
        out["generate"]["kv_cache" if use_cache else "no_cache"] = round(rate, 1)
        print(f"generate small, prompt 240, 64 new tokens, {'with' if use_cache else 'without'} KV cache: {rate:.1f} tokens/s")
    return out


class CachedEmbedder:
    """An embedder that embeds each text once: the backends compared rank the same sentences."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id, self.dim, self.languages = inner, inner.model_id, inner.dim, inner.languages
        self.rows: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.rows))
        if missing:
            self.rows.update(zip(missing, self.inner.embed(missing)))
        return np.stack([self.rows[t] for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)


def backends(settings: Settings, checkpoint: Any, model_dir: Path, embedder: Any, all_variants: bool) -> dict[str, Any]:
    """The generators compared: extractive, and TinyLM's span choices (more with all_variants)."""
    off = TinyLLMConfig(model_dir=model_dir, answer_spans="off")
    generators = {
        "extractive": make_generator(settings.generation_config(), "extractive", embedder),
        # Evidence sentences ranked with the index's embedder, as the extractive backend ranks them;
        # the quote is the answer-shaped span of the best-ranked one that the heuristic scores best
        # (the default), or the one TinyLM finds likeliest, or any words greedy decoding picks.
        "tinyllm": TinyLMGenerator(checkpoint, TinyLLMConfig(model_dir=model_dir), embedder),
        "tinyllm-model": TinyLMGenerator(checkpoint, TinyLLMConfig(model_dir=model_dir, answer_spans="model"), embedder),
        "tinyllm-greedy": TinyLMGenerator(checkpoint, off, embedder),
    }
    if not all_variants:
        return generators
    return generators | {
        # Earlier variants (docs/benchmarks.md), all with answer_spans="off":
        "tinyllm-span": TinyLMGenerator(checkpoint, off, embedder, span_search=True),
        # ...or from any of the evidence sentences (the model picks the sentence too)...
        "tinyllm-any": TinyLMGenerator(checkpoint, off, embedder, quote_from=None),
        "tinyllm-free": TinyLMGenerator(checkpoint, replace(off, copy_constrained=False), embedder),
        # ...and ranked without the embedder, as in training.
        "tinyllm-lexical": TinyLMGenerator(checkpoint, off),
    }


def quality(model_dir: Path, index: Path | None, data: Path, every: int, all_variants: bool = False, start: int = 0) -> dict[str, Any]:
    score = load_scorer()
    questions = [json.loads(line) for line in (data / "questions.jsonl").read_text("utf-8").splitlines() if line.strip()]
    sample = questions[start::every]
    settings = Settings(index=index) if index is not None else None
    if settings is None:
        import tempfile

        settings = Settings(index=Path(tempfile.mkdtemp(prefix="citekb-tinylm-bench-")) / "index")
    kb = KnowledgeBase(settings)
    if not kb.store.exists:
        docs = data / "docs" if (data / "docs").is_dir() else data
        kb.ingest([docs])
    checkpoint = load_checkpoint(model_dir)
    embedder = CachedEmbedder(kb.embedder)  # the backends embed the same candidate sentences: once
    generators = backends(settings, checkpoint, model_dir, embedder, all_variants)
    rows: dict[str, dict[str, list[tuple[float | None, float, bool]]]] = {g: defaultdict(list) for g in generators}
    seconds: dict[str, float] = defaultdict(float)
    examples = []
    for i, q in enumerate(sample):
        hits = kb.search(q["question"], k=5)
        for name, generator in generators.items():
            started = time.perf_counter()
            answer = generator.answer(q["question"], hits)
            seconds[name] += time.perf_counter() - started
            cites = [as_item(c.locator, c.quote) for c in answer.citations]
            good = [any(score.location_matches(c, g) for g in q["gold"]) or score.contains_answer(c["text"], q["answers"], q["lang"])
                    for c in cites]
            contained, f1 = score.score_answer(answer.text, q["answers"], q["lang"])
            rows[name][q["lang"]].append((sum(good) / len(good) if good else None, f1 or 0.0, bool(contained)))
            if i < 12:
                examples.append({"backend": name, "question": q["question"], "gold": q["answers"][:2], "answer": answer.text[:200]})
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(sample)} questions", file=sys.stderr, flush=True)
    results: dict[str, Any] = {"questions": len(sample), "every": every, "start": start, "model": str(model_dir),
                               "model_meta": {k: checkpoint.meta.get(k) for k in ("train", "stage", "step")}}
    for name, per_lang in rows.items():
        entry: dict[str, Any] = {}
        everything = [v for vals in per_lang.values() for v in vals]
        for lang, vals in [*sorted(per_lang.items()), ("all", everything)]:
            precisions = [p for p, _, _ in vals if p is not None]
            entry[lang] = {"n": len(vals), "citation_precision": round(sum(precisions) / max(1, len(precisions)), 3),
                           "cites_present": round(len(precisions) / len(vals), 3),
                           "answer_contains_gold": round(sum(c for *_, c in vals) / len(vals), 3),
                           "f1": round(sum(f for _, f, _ in vals) / len(vals), 3)}
        entry["ms_per_answer"] = round(1000 * seconds[name] / len(sample), 1)
        results[name] = entry
        print(f"{name:13} " + "  ".join(f"{lang}: F1 {m['f1']} cited-page precision {m['citation_precision']} (n {m['n']})"
                                        for lang, m in entry.items() if lang != "ms_per_answer")
              + f"  {entry['ms_per_answer']} ms/answer")
    results["examples"] = examples
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("speed", "quality"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", type=Path, help="TinyLM checkpoint (quality)")
    parser.add_argument("--index", type=Path, help="an index of --data's documents (default: build one in a temp folder)")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "qa")
    parser.add_argument("--every", type=int, default=8, help="score every n-th question")
    parser.add_argument("--start", type=int, default=0, help="the first question scored (1 with an even --every: only odd-numbered ones)")
    parser.add_argument("--all-variants", action="store_true", help="also the earlier TinyLM variants (span search, any sentence, free, terms only)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                                          f"torch {torch.__version__}", "date": datetime.date.today().isoformat()}
    if args.what == "speed":
        results["speed"] = speed(args.threads)
    else:
        if args.model is None:
            sys.exit("quality needs --model DIR (train one with `citekb train --out DIR --minutes 20`)")
        if not (args.data / "questions.jsonl").is_file():
            sys.exit(f"skipped: no gold questions at {args.data / 'questions.jsonl'}")
        torch.set_num_threads(args.threads)
        results["quality"] = quality(args.model, args.index, args.data, args.every, args.all_variants, args.start)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
