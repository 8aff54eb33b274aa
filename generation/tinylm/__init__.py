"""TinyLM: a small decoder-only transformer trained on the user's own corpus (`citekb train`)
that answers by quoting a span of the retrieved passages and citing it."""

from .model import SIZES, TinyLM, TinyLMConfig
from .train import TrainConfig, TrainCorpus, TrainReport, train

__all__ = ["SIZES", "TinyLM", "TinyLMConfig", "TrainConfig", "TrainCorpus", "TrainReport", "train"]
