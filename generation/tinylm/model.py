"""TinyLM: a small decoder-only transformer in plain PyTorch, after nanoGPT's model.py, with
RoPE positions, RMSNorm, a SwiGLU MLP, tied input/output embeddings and causal attention by
scaled_dot_product_attention. Generation keeps a KV cache, so each new token costs one position."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from citekb.ingest.errors import ConfigError, ModelError


@dataclass(frozen=True, slots=True)
class TinyLMConfig:
    vocab_size: int = 8000
    n_layer: int = 4
    n_head: int = 4
    dim: int = 256  # about 5.3M parameters with vocab 8000 (2M of them the embedding): minutes on 2 cores
    ffn_dim: int = 704  # SwiGLU hidden size, about 8/3 of dim
    max_seq_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    # A learnt vector added to each token by its flag: 1 for a context token whose word is also
    # in the question (DrQA's exact-match feature), else 0. Lets a small model find where the
    # question's words sit in the evidence without first learning to match them by attention.
    match_feature: bool = False

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.n_layer, self.n_head, self.dim, self.ffn_dim, self.max_seq_len) < 1:
            raise ConfigError("TinyLM sizes must all be positive")
        if self.dim % self.n_head or (self.dim // self.n_head) % 2:
            raise ConfigError(f"TinyLM dim {self.dim} must split into {self.n_head} heads of even size")

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> TinyLMConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(f"TinyLM config has unknown fields {sorted(unknown)}: made by a newer citekb?")
        return cls(**data)  # type: ignore[arg-type]


SIZES: dict[str, TinyLMConfig] = {
    # name: (layers, heads, dim, ffn); vocab and context are set by the tokenizer and the trainer
    "tiny": TinyLMConfig(n_layer=2, n_head=2, dim=64, ffn_dim=192),
    "mini": TinyLMConfig(n_layer=4, n_head=4, dim=128, ffn_dim=384),
    "small": TinyLMConfig(),
    "medium": TinyLMConfig(n_layer=6, n_head=8, dim=384, ffn_dim=1024),
    "large": TinyLMConfig(n_layer=8, n_head=8, dim=512, ffn_dim=2048),
}

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys and values, (B, H, T, head_dim)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, T, D) pairs (x[..., ::2], x[..., 1::2]) by the positions' angles (T, D/2)."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg: TinyLMConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.dim // cfg.n_head
        self.wq = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, d = x.shape
        q, k, v = (w(x).view(b, t, self.n_head, self.head_dim).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k = torch.cat((cache[0], k), dim=2)
            v = torch.cat((cache[1], v), dim=2)
        if cache is None or t > 1:
            # New positions see the cached past in full and each other causally.
            past = k.shape[2] - t
            mask = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if past == 0 else mask, is_causal=past == 0)
        else:
            y = F.scaled_dot_product_attention(q, k, v)  # one new token attends to everything before it
        return self.wo(y.transpose(1, 2).reshape(b, t, d)), (k, v)


class SwiGLU(nn.Module):
    def __init__(self, cfg: TinyLMConfig) -> None:
        super().__init__()
        self.w_gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class Block(nn.Module):
    def __init__(self, cfg: TinyLMConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a, kv = self.attn(self.attn_norm(x), cos, sin, cache)
        x = x + a
        return x + self.mlp(self.mlp_norm(x)), kv


class TinyLM(nn.Module):
    def __init__(self, cfg: TinyLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.match = nn.Embedding(2, cfg.dim) if cfg.match_feature else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        cos, sin = rope_tables(cfg.dim // cfg.n_head, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream.
        for name, p in self.named_parameters():
            if name.endswith(("wo.weight", "w_down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None,
                start: int = 0, flags: torch.Tensor | None = None,
                candidates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None, KVCache]:
        """Logits (B, T, vocab) for idx (B, T) at positions start..start+T-1, the mean cross-entropy
        against targets (positions with target -100 ignored: the loss mask), and the new cache.
        With a loss mask, the logits are those of the kept positions only, (N, vocab). flags
        (B, T), 0 or 1, are the match feature (None: all 0); a model without it ignores them.
        candidates (B, vocab), bool: the loss is over these tokens of each row only (a copying
        answer's softmax over the tokens its prompt holds, as copy-constrained decoding sees it)."""
        t = idx.shape[1]
        if start + t > self.cfg.max_seq_len:
            raise ModelError(f"sequence of {start + t} tokens is longer than the model's {self.cfg.max_seq_len}")
        cos, sin = self.rope_cos[start:start + t], self.rope_sin[start:start + t]
        x = self.embed(idx)
        if self.match is not None:
            x = x + self.match(flags if flags is not None else torch.zeros_like(idx))
        new_cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, cos, sin, cache[i] if cache is not None else None)
            new_cache.append(kv)
        x = self.norm(x)
        if targets is None:
            return F.linear(x, self.embed.weight), None, new_cache  # tied: the output matrix is the embedding
        keep = targets != -100
        rows = keep.nonzero()[:, 0]
        if not bool(keep.all()):
            # Only the positions that count for the loss need the vocabulary projection: in a QA
            # prompt that is the few answer tokens, which saves most of the output layer's work.
            x, targets = x[keep], targets[keep]
        logits = F.linear(x, self.embed.weight)
        if candidates is not None:
            logits = logits.reshape(-1, logits.shape[-1]).masked_fill(~candidates[rows], float("-inf"))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        return logits, loss, new_cache

    @torch.no_grad()
    def generate(self, prompt: Sequence[int], max_new_tokens: int, *, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, use_cache: bool = True, stop: Sequence[int] = (),
                 allowed: Callable[[list[int]], Sequence[int] | None] | None = None,
                 generator: torch.Generator | None = None, flags: Sequence[int] | None = None) -> Iterator[int]:
        """Yield new token ids one at a time (token streaming). temperature 0 is greedy. allowed,
        given the tokens generated so far, returns the only ids that may come next (None: any;
        empty: stop). Stops after a token in stop, which is yielded, or max_new_tokens. flags:
        the prompt's match flags (new tokens have flag 0)."""
        if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
            raise ConfigError("sampling needs temperature >= 0, 0 < top_p <= 1 and top_k >= 0")
        was_training = self.training
        self.eval()
        try:
            tokens = list(prompt)
            marks = list(flags) if flags is not None else [0] * len(tokens)
            if len(marks) != len(tokens):
                raise ConfigError(f"{len(marks)} flags for a prompt of {len(tokens)} tokens")
            out: list[int] = []
            cache: KVCache | None = None
            logits, _, cache = self(torch.tensor([tokens]), flags=torch.tensor([marks]))
            for _ in range(max_new_tokens):
                if len(tokens) >= self.cfg.max_seq_len:
                    break
                row = logits[0, -1].float()
                if allowed is not None:
                    ok = allowed(out)
                    if ok is not None:
                        if not ok:
                            break
                        mask = torch.full_like(row, float("-inf"))
                        mask[list(ok)] = 0.0
                        row = row + mask
                token = _pick(row, temperature, top_k, top_p, generator)
                yield token
                out.append(token)
                tokens.append(token)
                if token in stop:
                    break
                if use_cache:
                    logits, _, cache = self(torch.tensor([[token]]), cache=cache, start=len(tokens) - 1)
                else:
                    marks.append(0)
                    logits, _, _ = self(torch.tensor([tokens]), flags=torch.tensor([marks]))
        finally:
            self.train(was_training)


@torch.no_grad()
def score_continuations(model: TinyLM, prompt: Sequence[int], continuations: Sequence[Sequence[int]], *,
                        flags: Sequence[int] | None = None, candidates: Sequence[int] | None = None,
                        batch: int = 256) -> list[float]:
    """log P(continuation | prompt) for each continuation (new tokens have match flag 0): the
    prompt runs once, its KV cache is shared by all. With candidates, each next-token softmax
    is over those tokens only, as the copy loss trains it."""
    was_training = model.training
    model.eval()
    try:
        prompt_flags = torch.tensor([list(flags) if flags is not None else [0] * len(prompt)])
        logits, _, cache = model(torch.tensor([list(prompt)]), flags=prompt_flags)
        first = logits[0, -1]
        allowed = None
        if candidates is not None:
            allowed = torch.zeros(first.shape[-1], dtype=torch.bool)
            allowed[list(candidates)] = True
        scores: list[float] = []
        for at in range(0, len(continuations), batch):
            part = [list(c) for c in continuations[at:at + batch]]
            n, length = len(part), max(len(c) for c in part)
            x = torch.zeros((n, length), dtype=torch.long)
            real = torch.zeros((n, length), dtype=torch.bool)
            for row, c in enumerate(part):
                x[row, :len(c)] = torch.tensor(c, dtype=torch.long)
                real[row, :len(c)] = True
            rows = [first.expand(n, 1, -1)]
            if length > 1:
                shared = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in cache]
                later, _, _ = model(x[:, :-1], cache=shared, start=len(prompt))
                rows.append(later)
            step = torch.cat(rows, dim=1).float()
            if allowed is not None:
                step = step.masked_fill(~allowed, float("-inf"))
            logp = step.log_softmax(-1).gather(-1, x.unsqueeze(-1)).squeeze(-1)
            scores.extend(logp.masked_fill(~real, 0.0).sum(-1).tolist())
        return scores
    finally:
        model.train(was_training)


def _pick(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator | None) -> int:
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        ordered, order = torch.sort(logits, descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative - ordered.softmax(-1) >= top_p  # keep the smallest set reaching top_p
        logits = logits.clone()
        logits[order[drop]] = float("-inf")
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))
