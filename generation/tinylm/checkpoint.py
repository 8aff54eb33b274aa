"""TinyLM checkpoints: one directory holding model.safetensors, config.json (the model config,
the train config and the stage reached) and tokenizer.model. A LoRA checkpoint holds the
adapter only (peft's adapter_model.safetensors and adapter_config.json), its config.json names
the base checkpoint it adapts, and loading applies the adapter to that base and merges it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from citekb.ingest.errors import ModelError

from .model import TinyLM, TinyLMConfig
from .tokenizer import TinyTokenizer

FORMAT = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ADAPTER_FILE = "adapter_config.json"


@dataclass
class Checkpoint:
    model: TinyLM
    tokenizer: TinyTokenizer
    meta: dict[str, Any]  # config.json as written: "model", "train", "stage", ...


def save_checkpoint(directory: Path, model: TinyLM, tokenizer: TinyTokenizer, **meta: Any) -> None:
    """Write weights, config and tokenizer; each file is written aside and renamed, so an
    interrupted save leaves the previous checkpoint whole."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _atomic(directory / WEIGHTS_FILE, lambda p: save_file(state, str(p)))
    tokenizer_tmp = directory / "tokenizer.model.tmp"
    tokenizer_tmp.write_bytes(tokenizer.proto)
    os.replace(tokenizer_tmp, directory / "tokenizer.model")
    config = {"format": FORMAT, "kind": "tinylm", "model": model.cfg.to_json(), **meta}
    _atomic(directory / CONFIG_FILE, lambda p: p.write_text(json.dumps(config, indent=1, ensure_ascii=False), "utf-8"))


def save_adapter(directory: Path, peft_model: Any, tokenizer: TinyTokenizer, base: Path, **meta: Any) -> None:
    """Save only the LoRA adapter of peft_model, recording the base checkpoint it adapts."""
    directory.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(directory))
    tokenizer.save(directory)
    config = {"format": FORMAT, "kind": "tinylm-lora", "base": str(base.resolve()), **meta}
    _atomic(directory / CONFIG_FILE, lambda p: p.write_text(json.dumps(config, indent=1, ensure_ascii=False), "utf-8"))


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"no TinyLM checkpoint in {directory}: expected {CONFIG_FILE} (train one with `citekb train`)")
    try:
        meta: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if meta.get("format") != FORMAT or meta.get("kind") not in ("tinylm", "tinylm-lora"):
        raise ModelError(f"{path} is not a TinyLM checkpoint of format {FORMAT}")
    return meta


def load_checkpoint(directory: Path) -> Checkpoint:
    """The model (eval mode, adapters merged) and tokenizer saved in directory."""
    meta = read_meta(directory)
    if meta["kind"] == "tinylm-lora":
        from peft import PeftModel

        base = load_checkpoint(Path(meta["base"]))
        if base.tokenizer.proto != TinyTokenizer.load(directory).proto:
            raise ModelError(f"adapter {directory} was trained with another tokenizer than its base {meta['base']}")
        merged = PeftModel.from_pretrained(base.model, str(directory)).merge_and_unload()
        merged.eval()
        return Checkpoint(merged, base.tokenizer, meta)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"no weights in {directory}: expected {WEIGHTS_FILE}")
    model = TinyLM(TinyLMConfig.from_json(meta["model"]))
    try:
        model.load_state_dict(load_file(str(weights)))
    except (RuntimeError, OSError) as exc:
        raise ModelError(f"cannot load {weights}: {exc}") from None
    model.eval()
    return Checkpoint(model, TinyTokenizer.load(directory), meta)


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
