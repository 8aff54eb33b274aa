"""The transformers backend with tiny randomly initialised Llama models built here, and a tiny
LoRA adapter built with peft. Nothing is downloaded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from citekb.generation.answer import Answer
from citekb.generation.backends.transformers import TransformersGenerator
from citekb.generation.base import stream_answer
from citekb.generation.config import TransformersConfig
from citekb.ingest.errors import ConfigError, ModelError

from sample_hits import HITS, handbook

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

QUESTION = "How many days of paid annual leave do full-time employees get?"
# Token 0 is "[1]": a model whose last norm is zeroed gives every token logit 0 and greedy
# decoding picks id 0, so it cites passage 1 at every step.
VOCAB = ["[1]", "[PAD]", "[EOS]", "[UNK]", "[2]", "leave", "days", "27", "the", "employees", "annual", "paid", "."]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}Answer:{% endif %}")


def save_tiny_llama(directory: Path, cites_passage_one: bool = False, chat_template: bool = True) -> Path:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    core.pre_tokenizer = WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(VOCAB), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         pad_token_id=1, bos_token_id=None, eos_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    if cites_passage_one:
        with torch.no_grad():
            model.model.norm.weight.zero_()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def citing_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("citing-llama"), cites_passage_one=True)


@pytest.fixture(scope="module")
def tiny_adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama), local_files_only=True)
    # init_lora_weights=False: random A and B, so the adapter visibly changes the model (the
    # usual init makes B zero, and a fresh adapter a no-op).
    config = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(1)
    directory = tmp_path_factory.mktemp("tiny-lora")
    peft.get_peft_model(base, config).save_pretrained(directory)
    return directory


def logits(generator: TransformersGenerator) -> torch.Tensor:
    inputs = generator._inputs(QUESTION, HITS)
    with torch.no_grad():
        return generator._model(**inputs).logits


def test_the_models_markers_become_citations_of_the_passages(citing_llama: Path) -> None:
    answer = TransformersGenerator(TransformersConfig(model_dir=citing_llama, max_new_tokens=4)).answer(QUESTION, HITS)
    assert answer.text == "[1] [1] [1] [1]"
    [citation] = answer.citations
    assert (citation.n, citation.chunk_id, citation.quote) == (1, "hb:4", handbook().text)
    assert answer.grounded


@pytest.mark.parametrize("model", ["citing_llama", "tiny_llama"])
def test_stream_yields_deltas_then_the_same_answer(model: str, request: pytest.FixtureRequest) -> None:
    generator = TransformersGenerator(TransformersConfig(model_dir=request.getfixturevalue(model), max_new_tokens=6))
    *deltas, answer = list(stream_answer(generator, QUESTION, HITS))
    assert isinstance(answer, Answer) and deltas and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == answer.text
    assert answer == generator.answer(QUESTION, HITS)  # greedy: the same text twice
    # The random model writes only special tokens, which decode to nothing: not an answer.
    assert answer.grounded == (model == "citing_llama")


def test_a_base_model_without_chat_template_gets_a_plain_prompt(tmp_path: Path) -> None:
    directory = save_tiny_llama(tmp_path / "base", cites_passage_one=True, chat_template=False)
    answer = TransformersGenerator(TransformersConfig(model_dir=directory, max_new_tokens=2)).answer(QUESTION, HITS)
    assert answer.text == "[1] [1]"


def test_a_lora_adapter_changes_the_model_and_merging_keeps_it(tiny_llama: Path, tiny_adapter: Path) -> None:
    cfg = TransformersConfig(model_dir=tiny_llama, max_new_tokens=6)
    base = logits(TransformersGenerator(cfg))
    applied = TransformersGenerator(replace(cfg, adapter_dir=tiny_adapter))
    merged = TransformersGenerator(replace(cfg, adapter_dir=tiny_adapter, merge_adapter=True))
    assert type(applied._model).__name__.startswith("PeftModel")
    assert type(merged._model).__name__ == "LlamaForCausalLM"
    assert not torch.allclose(base, logits(applied), atol=1e-4)
    assert torch.allclose(logits(applied), logits(merged), atol=1e-4)
    assert applied.answer(QUESTION, HITS) == merged.answer(QUESTION, HITS)


def test_bad_directories_are_clear_errors(tmp_path: Path, tiny_llama: Path) -> None:
    with pytest.raises(ConfigError, match="CITEKB_TRANSFORMERS_MODEL"):
        TransformersGenerator(TransformersConfig())
    with pytest.raises(ModelError, match="no causal language model in"):
        TransformersGenerator(TransformersConfig(model_dir=tmp_path))
    with pytest.raises(ModelError, match="no LoRA adapter in"):
        TransformersGenerator(TransformersConfig(model_dir=tiny_llama, adapter_dir=tmp_path))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", "utf-8")
    with pytest.raises(ModelError, match="cannot load causal language model from"):
        TransformersGenerator(TransformersConfig(model_dir=broken))
