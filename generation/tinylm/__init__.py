"""TinyLM: a small decoder-only transformer trained on the user's own corpus (`citekb train`)
that answers by quoting a span of the retrieved passages and citing it. Training is
citekb.generation.tinylm.train.train (the submodule keeps its name: no function shadows it)."""

from .model import SIZES, TinyLM, TinyLMConfig
from .train import TrainConfig, TrainCorpus, TrainReport

__all__ = ["SIZES", "TinyLM", "TinyLMConfig", "TrainConfig", "TrainCorpus", "TrainReport"]
