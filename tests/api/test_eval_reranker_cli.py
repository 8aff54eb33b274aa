"""`citekb train-reranker` end to end on the tiny corpus: a tiny base model, a few seconds of
training, and the result used by `citekb eval --compare ...+rerank`."""

from __future__ import annotations

import json
from pathlib import Path

from api_contract import RunCli
from citekb.retrieval.rerank import TRAINING_FILE


def test_train_then_evaluate_with_the_trained_reranker(run_cli: RunCli, corpus_dir: Path, tiny_cross_encoder: Path,
                                                       tmp_path: Path) -> None:
    assert run_cli("ingest", corpus_dir, "--index", tmp_path / "idx").exit_code == 0
    out = tmp_path / "reranker"
    result = run_cli("train-reranker", out, "--index", tmp_path / "idx", "--base", tiny_cross_encoder,
                     "--minutes", "0.1", "--max-queries", "30", "--negatives", "2", "--threads", "1", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["steps"] >= 1 and report["examples"] + report["dev_examples"] <= 30
    assert json.loads((out / TRAINING_FILE).read_text("utf-8"))["passage_tokens"] == 64
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "lang": "en", "question": "How often is the pump filter replaced?",
                                     "answers": [], "gold": [{"file": "field_guide.pdf", "page": 2}]}) + "\n", "utf-8")
    result = run_cli("eval", questions, "--index", tmp_path / "idx", "--compare", "hybrid,hybrid+rerank",
                     "--rerank-model", out, "--no-ask", "--json")
    assert result.exit_code == 0, result.stderr
    assert set(json.loads(result.stdout)["configs"]) == {"hybrid", "hybrid+rerank"}
    mixed = run_cli("eval", questions, "--index", tmp_path / "idx", "--compare", "hybrid+rerank",
                    "--rerank-model", out, "--rerank-mix", "0.1", "--no-ask", "--json")
    assert mixed.exit_code == 0, mixed.stderr
    assert run_cli("eval", questions, "--index", tmp_path / "idx", "--rerank-mix", "-1").exit_code == 2


def test_training_needs_an_index_and_a_usable_folder(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("train-reranker", tmp_path / "out", "--index", tmp_path / "none")
    assert result.exit_code == 1 and "citekb: error:" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x", "utf-8")
    result = run_cli("train-reranker", tmp_path / "taken", "--minutes", "0")
    assert result.exit_code == 2  # below the allowed minimum: a usage error
