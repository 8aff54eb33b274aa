"""The transformers backend: a local Hugging Face causal LM (a Qwen or Llama chat model, say)
writes the answer from numbered passages, optionally with a PEFT LoRA adapter applied on top
or merged into its weights; its [n] markers become citations of those passages. CPU by default;
a GPU is used when torch sees one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from citekb.ingest.errors import ConfigError, ModelError, reason
from citekb.retrieval.hit import Hit

from ..answer import Answer
from ..base import NOT_FOUND
from ..config import TransformersConfig
from .passages import MarkerMapper, build_messages, make_answer, stream_reply

log = logging.getLogger(__name__)


class TransformersGenerator:
    name = "transformers"

    def __init__(self, cfg: TransformersConfig) -> None:
        if cfg.model_dir is None:
            raise ConfigError("answer backend transformers needs a model directory: set CITEKB_TRANSFORMERS_MODEL")
        if not (cfg.model_dir / "config.json").is_file():
            raise ModelError(f"no causal language model in {cfg.model_dir}: expected a local directory with config.json")
        if cfg.adapter_dir is not None and not (cfg.adapter_dir / "adapter_config.json").is_file():
            raise ModelError(f"no LoRA adapter in {cfg.adapter_dir}: expected a PEFT directory with adapter_config.json")
        if cfg.max_new_tokens < 1 or cfg.max_passage_chars < 1:
            raise ConfigError("transformers max_new_tokens and max_passage_chars must be at least 1")
        self.cfg = cfg
        self._tokenizer, self._model = _load(cfg.model_dir, cfg.adapter_dir, cfg.merge_adapter)
        # generate() is not safe to run twice at once on one model; the server has threads.
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: TransformersConfig) -> TransformersGenerator:
        return cls(cfg)

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        if not hits:
            return Answer(text=NOT_FOUND, citations=(), hits=(), grounded=False)
        inputs = self._inputs(question, hits)
        with self._lock:
            output = self._model.generate(**inputs, **self._generate_args())
        reply = self._tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        mapper = MarkerMapper(len(hits))
        return make_answer(mapper.feed(reply) + mapper.finish(), hits, mapper)

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str | Answer]:
        """Text deltas as tokens are decoded (markers already rewritten), then the Answer."""
        from transformers import TextIteratorStreamer

        if not hits:
            yield NOT_FOUND
            yield Answer(text=NOT_FOUND, citations=(), hits=(), grounded=False)
            return
        inputs = self._inputs(question, hits)
        streamer: Any = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock:
                    self._model.generate(**inputs, **self._generate_args(), streamer=streamer)
            except BaseException as exc:  # handed to the reading thread, which re-raises it
                failure.append(exc)
                streamer.end()

        def deltas() -> Iterator[str]:
            yield from streamer
            thread.join()
            if failure:  # before the Answer: a failed generation has none
                raise ModelError(f"generation with {self.cfg.model_dir} failed: {reason(failure[0])}") from failure[0]

        thread = threading.Thread(target=run, name="citekb-generate", daemon=True)
        thread.start()
        yield from stream_reply(deltas(), hits)

    def _inputs(self, question: str, hits: Sequence[Hit]) -> dict[str, Any]:
        messages = build_messages(question, hits, self.cfg.max_passage_chars)
        if getattr(self._tokenizer, "chat_template", None):
            text = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:  # a base model without a chat template: plain text, the reply to follow "Answer:"
            text = "\n\n".join(m["content"] for m in messages) + "\n\nAnswer:"
        encoded = self._tokenizer(text, return_tensors="pt", add_special_tokens=not getattr(self._tokenizer, "chat_template", None))
        return {k: v.to(self._model.device) for k, v in encoded.items()}

    def _generate_args(self) -> dict[str, Any]:
        pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else self._tokenizer.eos_token_id
        # Greedy: the same question over the same passages gets the same answer.
        return {"max_new_tokens": self.cfg.max_new_tokens, "do_sample": False, "pad_token_id": pad}


def _load(model_dir: Path, adapter_dir: Path | None, merge: bool) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    except Exception as exc:  # a damaged directory raises anything from OSError to safetensors errors
        raise ModelError(f"cannot load causal language model from {model_dir}: {reason(exc)}") from exc
    if adapter_dir is not None:
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise ModelError("a LoRA adapter needs peft: pip install 'citekb[lora]'") from exc
        try:
            model = PeftModel.from_pretrained(model, str(adapter_dir), local_files_only=True)
        except Exception as exc:  # wrong base model, damaged weights: shape errors, KeyError, ...
            raise ModelError(f"cannot apply LoRA adapter {adapter_dir} to {model_dir}: {reason(exc)}") from exc
        if merge:
            model = model.merge_and_unload()
    if torch.cuda.is_available():
        model = model.to("cuda")
    log.info("loaded model_dir=%s adapter_dir=%s merged=%s", model_dir, adapter_dir, merge)
    return tokenizer, model.eval()
