"""Cloze-translation synthesis and the evidence prompt: a question never shows its answer, the
answer is a span of its sentence, and a training example's target is that span, then the
marker of the hit it comes from."""

from __future__ import annotations

import random

import pytest

from citekb.generation.tinylm.data import build_example
from citekb.generation.tinylm.prompt import evidence, prompt_tokens, prompt_with_flags, sentences
from citekb.generation.tinylm.synth import synthesize
from citekb.generation.tinylm.tokenizer import TinyTokenizer
from citekb.ingest.document import Chunk, Locator, Span

ENGLISH = ("Nikola Tesla moved to New York City in 1884 to work for Thomas Edison. "
           "The induction motor was licensed by George Westinghouse for 60,000 dollars. "
           "Tesla died on 7 January 1943 in a hotel room in Manhattan. "
           "The museum holds 145 galleries of decorative arts. "
           "Its collection is measured in linear metres of shelving.")
CHINESE = "上海是中国最大的城市，人口约2400万人。1843年上海开埠。鲁迅在上海写了《故事新编》。"
OTHER = ("The Rhine flows from the Swiss Alps to the North Sea. Its length is 1,230 kilometres. "
         "Basel is the first large city on its banks.")


def _chunk(chunk_id: str, text: str) -> Chunk:
    locator = Locator(doc_id=chunk_id, source=f"{chunk_id}.pdf", title=chunk_id, page=1, page_end=1)
    return Chunk(chunk_id=chunk_id, text=text, locator=locator, spans=(Span(0, len(text), 1, None, None),))


@pytest.fixture(scope="module")
def tokenizer() -> TinyTokenizer:
    return TinyTokenizer.train([ENGLISH, CHINESE, OTHER] * 20, vocab_size=400)


@pytest.mark.parametrize("text", [ENGLISH, CHINESE])
def test_a_question_never_contains_its_answer_and_the_answer_is_in_its_sentence(text: str) -> None:
    chunk = _chunk("doc:0", text)
    spans = sentences(chunk)
    made = 0
    for seed in range(12):
        for example in synthesize(chunk, random.Random(seed), per_sentence=3):
            answer = chunk.text[example.answer_start:example.answer_end]
            start, end = spans[example.sentence]
            assert start <= example.answer_start < example.answer_end <= end, (answer, example)
            assert answer.strip() and answer.strip().lower() not in example.question.lower(), (answer, example.question)
            assert example.question.endswith(("?", "？"))
            made += 1
    assert made >= 12 * len(spans)  # every sentence gives questions


def test_answer_kinds_and_question_phrases() -> None:
    chunk = _chunk("doc:0", ENGLISH)
    pairs = {(chunk.text[e.answer_start:e.answer_end], e.question) for seed in range(30)
             for e in synthesize(chunk, random.Random(seed), per_sentence=3)}
    answers = {a for a, _ in pairs}
    assert {"1884", "7 January 1943", "George Westinghouse", "linear metres"} <= answers
    year_questions = [q.lower() for a, q in pairs if a == "1884"]
    assert any(wh in q for q in year_questions for wh in ("when", "what year"))
    assert any(q.lower().startswith("how many") or " how many" in q.lower() for a, q in pairs if a.startswith("145"))


def test_evidence_is_best_first_and_labelled_with_its_hit(tokenizer: TinyTokenizer) -> None:
    hits = [_chunk("rhine:0", OTHER), _chunk("tesla:0", ENGLISH)]
    context = evidence(tokenizer, hits, "When did Tesla die in Manhattan?", count=3, sentence_tokens=48)
    assert len(context) == 3
    best = context[0]
    assert best.hit == 1 and "7 January 1943" in best.chunk.text[best.offsets[0][0]:best.offsets[-1][1]]
    prompt = prompt_tokens(tokenizer, context, "When did Tesla die?")
    assert prompt.index(tokenizer.sep) < prompt.index(tokenizer.markers[1]) < prompt.index(tokenizer.assistant)


def test_a_training_example_targets_the_span_and_its_hit_marker(tokenizer: TinyTokenizer) -> None:
    tesla, rhine = _chunk("tesla:0", ENGLISH), _chunk("rhine:0", OTHER)
    built = 0
    for example in synthesize(tesla, random.Random(3), per_sentence=3):
        sft = build_example(tokenizer, example, [rhine, tesla], 3, 48, 256, random.Random(0))
        if sft is None:
            continue
        answer = list(sft.tokens[sft.prompt_len:])
        assert answer[-2:] == [tokenizer.markers[1], tokenizer.eos]  # tesla is the second hit: [2]
        assert tokenizer.decode(answer[:-2]).strip() == tesla.text[example.answer_start:example.answer_end]
        assert tokenizer.markers[1] in sft.tokens[:sft.prompt_len]  # its sentence is in the prompt
        built += 1
    assert built >= 5


def test_match_flags_mark_the_evidence_words_the_question_has(tokenizer: TinyTokenizer) -> None:
    question = "When did Tesla die in Manhattan?"
    context = evidence(tokenizer, [_chunk("tesla:0", ENGLISH)], question, count=2, sentence_tokens=48)
    ids, flags = prompt_with_flags(tokenizer, context, question)
    assert ids == prompt_tokens(tokenizer, context, question) and len(flags) == len(ids)
    flagged = tokenizer.decode([t for t, f in zip(ids, flags) if f])
    assert "Tesla" in flagged and "Manhattan" in flagged and "died" in flagged  # stems match: die/died
    assert "hotel" not in flagged and " the " not in f" {flagged} "
    assert not any(flags[:ids.index(tokenizer.sep) + 1])  # the question itself is not flagged
