"""Grounded decoding: copy-constrained answers are spans of the passages they cite, markers
only name given passages, and the backend is reachable from ask and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from citekb.api.kb import KnowledgeBase
from citekb.generation.base import stream_answer
from citekb.generation.config import ExtractiveConfig, GenerationConfig, TinyLLMConfig
from citekb.generation.extractive import answers, rank_sentences
from citekb.generation.factory import make_generator
from citekb.generation.tinylm.checkpoint import load_checkpoint
from citekb.generation.tinylm.constrain import CopyConstraint, MarkerConstraint
from citekb.generation.tinylm.generator import TinyLMGenerator
from citekb.generation.tinylm.prompt import evidence, prompt_tokens
from citekb.generation.spans import candidate_spans
from citekb.generation.tinylm.train import TrainReport
from citekb.ingest.errors import ConfigError
from citekb.retrieval.analyze import analyze, query_language

from tinylm_support import HASH_MODEL, SAMPLE_DOCS

QUESTIONS = [json.loads(line)["question"] for line in (SAMPLE_DOCS / "questions.jsonl").read_text("utf-8").splitlines()
             if line.strip()]


def _contains(run: list[int], tokens: tuple[int, ...]) -> bool:
    return any(list(tokens[i:i + len(run)]) == run for i in range(len(tokens) - len(run) + 1))


def test_sampled_copy_constrained_tokens_are_spans_of_the_cited_passage(trained: TrainReport, sample_kb: KnowledgeBase) -> None:
    """Sampling hot (temperature 3, so the constraint, not the model, decides) from a barely
    trained model: every answer is a contiguous token span of an evidence sentence of the hit
    its marker names."""
    checkpoint = load_checkpoint(trained.out_dir)
    tok = checkpoint.tokenizer
    generator = torch.Generator().manual_seed(0)
    answers = 0
    for question in QUESTIONS[:12]:
        hits = sample_kb.search(question, k=3)
        passages = evidence(tok, [h.chunk for h in hits], question, count=4, sentence_tokens=48)
        assert {p.hit for p in passages} <= {0, 1, 2} and len(passages) == 4
        constraint = CopyConstraint(tok, [p.tokens for p in passages], max_span_tokens=12, labels=[p.hit for p in passages])
        prompt = prompt_tokens(tok, passages, question)
        for _ in range(3):
            out = list(checkpoint.model.generate(prompt, 20, temperature=3.0, stop=(tok.eos,), allowed=constraint.allowed,
                                                 generator=generator))
            markers = [i for i, t in enumerate(out) if tok.marker_number(t) is not None]
            assert len(markers) == 1 and out[markers[0] + 1:] == [tok.eos], out
            span, n = out[:markers[0]], tok.marker_number(out[markers[0]])
            assert n is not None and 1 <= n <= len(hits)
            assert 1 <= len(span) <= 12 and any(_contains(span, p.tokens) for p in passages if p.hit == n - 1)
            answers += 1
    assert answers == 36


def test_free_mode_markers_only_name_given_passages(trained: TrainReport, sample_kb: KnowledgeBase) -> None:
    checkpoint = load_checkpoint(trained.out_dir)
    tok = checkpoint.tokenizer
    hits = sample_kb.search(QUESTIONS[0], k=2)
    passages = evidence(tok, [h.chunk for h in hits], QUESTIONS[0], count=3, sentence_tokens=48)
    allowed = set(MarkerConstraint(tok, len(hits)).allowed([]))
    assert {tok.markers[0], tok.markers[1], tok.eos} <= allowed
    assert not allowed & set(tok.markers[2:]) and tok.user not in allowed and tok.assistant not in allowed
    prompt = prompt_tokens(tok, passages, QUESTIONS[0])
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        out = checkpoint.model.generate(prompt, 30, temperature=5.0, allowed=MarkerConstraint(tok, 2).allowed,
                                        generator=generator)
        assert {tok.marker_number(t) for t in out} <= {None, 1, 2}


def test_generator_answer_is_a_quote_with_a_narrowed_citation(trained: TrainReport, sample_kb: KnowledgeBase) -> None:
    generator = TinyLMGenerator(load_checkpoint(trained.out_dir), TinyLLMConfig(model_dir=trained.out_dir))
    grounded = novel = 0
    for question in QUESTIONS[:10]:
        hits = sample_kb.search(question, k=5)
        items = list(stream_answer(generator, question, hits))
        answer = items[-1]
        assert "".join(items[:-1]) == answer.text  # the streamed deltas add up to the answer
        if not answer.grounded:
            continue
        grounded += 1
        markers = [int(m) for m in re.findall(r"\[(\d+)\]", answer.text)]
        assert markers == [1] and [c.n for c in answer.citations] == [1]
        quote = re.sub(r"\s*\[\d+\]$", "", answer.text)
        citation = answer.citations[0]
        chunk = next(h.chunk for h in hits[:3] if h.chunk.chunk_id == citation.chunk_id)
        assert quote in citation.quote and citation.quote in chunk.text  # the span, inside its cited sentence
        # It says something the question does not, unless its sentence ran out first.
        novel += bool(set(analyze(quote)) - set(analyze(question)))
        # Whole words only: somewhere in its sentence the quote stands with no letter glued on.
        edge = r"(?<![A-Za-z0-9])" if quote[0].isascii() and quote[0].isalnum() else ""
        end = r"(?![A-Za-z0-9])" if quote[-1].isascii() and quote[-1].isalnum() else ""
        assert re.search(edge + re.escape(quote) + end, citation.quote), (quote, citation.quote)
        start = chunk.text.index(citation.quote)
        assert citation.locator == chunk.locate(start, start + len(citation.quote))
    assert grounded >= 8  # copy-constrained decoding always ends in a span and its marker
    assert novel >= grounded - 2


def test_no_hits_is_not_found_and_no_model_is_a_config_error(trained: TrainReport) -> None:
    generator = TinyLMGenerator(load_checkpoint(trained.out_dir))
    assert not generator.answer("anything?", []).grounded
    with pytest.raises(ConfigError, match="--model"):
        make_generator(GenerationConfig(), "tinyllm")


def test_the_factory_hands_the_index_embedder_to_the_tinyllm_backend(trained: TrainReport) -> None:
    from fakes import HashEmbedder

    embedder = HashEmbedder()
    cfg = GenerationConfig(tinyllm=TinyLLMConfig(model_dir=trained.out_dir))
    generator = make_generator(cfg, "tinyllm", embedder=embedder)
    assert isinstance(generator, TinyLMGenerator) and generator.embedder is embedder


def test_cli_train_then_ask_with_the_tinyllm_backend(trained: TrainReport, sample_kb: KnowledgeBase, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from citekb.api.cli import cli
    from citekb.retrieval import factory

    from fakes import HashEmbedder

    monkeypatch.setitem(factory.EMBEDDERS, HASH_MODEL, lambda precision: HashEmbedder())  # type: ignore[index]
    monkeypatch.setenv("CITEKB_EMBEDDING_MODEL", HASH_MODEL)
    index = str(sample_kb.settings.index)
    out = tmp_path / "model"
    args = ["train", "--index", index, "--out", str(out), "--size", "tiny", "--vocab-size", "1000",
            "--pretrain-steps", "3", "--sft-steps", "3", "--threads", "1", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stages"]["sft"]["steps"] == 3 and (out / "model.safetensors").is_file()
    ask = CliRunner().invoke(cli, ["ask", QUESTIONS[0], "--index", index, "--backend", "tinyllm", "--model", str(out),
                                   "--json"], catch_exceptions=False)
    assert ask.exit_code == 0, ask.stderr
    body = json.loads(ask.stdout)
    assert body["grounded"] and body["citations"][0]["source"] in {p.name for p in SAMPLE_DOCS.iterdir()}
    missing = CliRunner().invoke(cli, ["ask", QUESTIONS[0], "--index", index, "--backend", "tinyllm"])
    assert missing.exit_code == 1 and "--model" in missing.stderr


def test_span_search_answers_are_whole_quotes_of_the_best_sentence(trained: TrainReport, sample_kb: KnowledgeBase) -> None:
    generator = TinyLMGenerator(load_checkpoint(trained.out_dir), TinyLLMConfig(model_dir=trained.out_dir, answer_spans="off"),
                                span_search=True)
    for question in QUESTIONS[:4]:
        hits = sample_kb.search(question, k=3)
        answer = generator.answer(question, hits)
        assert answer.grounded and len(answer.citations) == 1
        quote = re.sub(r"\s*\[1\]$", "", answer.text)
        assert quote and quote in answer.citations[0].quote
        assert set(analyze(quote)) - set(analyze(question))


@pytest.mark.parametrize("choice", ["model", "heuristic"])
def test_answer_spans_are_candidate_spans_of_the_chooser_best_sentence(trained: TrainReport, sample_kb: KnowledgeBase,
                                                                        choice: str) -> None:
    """The quote is one of the answer-shaped candidates (generation/spans.py) of the sentence the
    extractive chooser ranks first, cited by that sentence; "heuristic" takes the best-scored one."""
    checkpoint = load_checkpoint(trained.out_dir)
    generator = TinyLMGenerator(checkpoint, TinyLLMConfig(model_dir=trained.out_dir, answer_spans=choice),
                                chooser=ExtractiveConfig(min_confidence=0.0))
    quoted = 0
    for question in [q for q in QUESTIONS if query_language(q) == "en"][:12]:
        hits = sample_kb.search(question, k=3)
        ranked = rank_sentences(question, [h.chunk for h in hits[:3]], hit_scores=[h.score for h in hits[:3]])
        best = ranked[0].sentence
        passage = evidence(checkpoint.tokenizer, [h.chunk for h in hits[:3]], question, count=3, sentence_tokens=48,
                           hit_scores=[h.score for h in hits[:3]])[0]
        assert (passage.chunk.chunk_id, passage.offsets[0][0]) == (best.chunk.chunk_id, best.start)  # one ranking
        answer = generator.answer(question, hits)
        quote = re.sub(r"\s*\[1\]$", "", answer.text)
        candidates = [c.text for c in candidate_spans(best.chunk.text[passage.offsets[0][0]:passage.offsets[-1][1]], question)]
        if not answers(ranked, generator.chooser):  # the extractive backend abstains: so does this one
            assert not answer.grounded and answer.citations == ()
            continue
        assert answer.grounded and answer.citations[0].chunk_id == best.chunk.chunk_id
        assert best.text.strip() in answer.citations[0].quote
        if not generator.span_options(question, passage):
            continue
        assert quote in candidates, (question, quote, candidates)
        if choice == "heuristic":
            tokens = generator.span_options(question, passage)[0][:-1]
            assert quote == checkpoint.tokenizer.decode(tokens).strip()
        quoted += 1
    assert quoted >= 4


def test_the_embedder_scores_the_answer_spans_too(trained: TrainReport, sample_kb: KnowledgeBase) -> None:
    """With an embedder the quote's candidates are ordered with their statement gain
    (generation/spans.py), the same embedder that ranks the evidence sentences."""
    from fakes import HashEmbedder

    embedder = HashEmbedder()
    checkpoint = load_checkpoint(trained.out_dir)
    generator = TinyLMGenerator(checkpoint, TinyLLMConfig(model_dir=trained.out_dir), embedder=embedder)
    compared = 0
    for question in [q for q in QUESTIONS if query_language(q) == "en"][:12]:
        hits = sample_kb.search(question, k=3)
        passage = evidence(checkpoint.tokenizer, [h.chunk for h in hits[:3]], question, count=3, sentence_tokens=48,
                           embedder=embedder, hit_scores=[h.score for h in hits[:3]])[0]
        text = passage.chunk.text[passage.offsets[0][0]:passage.offsets[-1][1]]
        options = generator.span_options(question, passage)
        with_gain = candidate_spans(text, question, embedder=embedder)
        if not options or len(with_gain) < 2:
            continue
        assert checkpoint.tokenizer.decode(options[0][:-1]).strip() == with_gain[0].text
        compared += 1
    assert compared >= 3
