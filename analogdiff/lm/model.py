"""The transformer backbone: pre-LayerNorm, rotary positions, GELU MLP, every learned matmul an ``nn.Linear``.

One code path for both models; ``causal=True`` gives the autoregressive twin, ``causal=False`` the
bidirectional denoiser of the masked diffusion LM. The backbone knows nothing about diffusion or hardware:
it maps token ids (B, T) to logits (B, T, V). Linear layers are only *called* at forward time (never
inspected), so a copy whose ``nn.Linear`` modules were swapped for analog ones runs the same code.

Positions are rotary (RoPE, Su et al. 2021; as in the MDLM and LLaDA backbones): the bidirectional denoiser
must find a masked character's neighbours, which relative positions give from the start, whereas learned
absolute positions left a 1.9M-parameter MDLM stuck at unigram level for its first ~2M training tokens.
Rotary embeddings have no parameters (a fixed rotation of q and k, done digitally).

The sizes come in a :class:`~analogdiff.shapes.ModelShape`, the torch-free description the cost model prices
(``char_shape`` fills in what this backbone builds; ``check_buildable`` refuses any other architecture).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from analogdiff.checks import ConfigError

from ..shapes import ModelShape
from ..trace import Trace
from .corpus import Vocab

KINDS = ("mdlm", "ar")


# What ``Backbone`` builds, in the terms of the shared shape: rotary positions, LayerNorms with gain and
# shift, a bias on every linear layer (the LM head included), a GELU MLP, an untied head, no time conditioning.
ARCHITECTURE = dict(mlp="gelu", positions="rotary", norm="layernorm", norm_bias=True,
                    bias=("attn.qkv", "attn.out", "mlp.up", "mlp.down", "head"), tied_embeddings=False, cond_dim=0)


def char_shape(name: str, n_layers: int, d_model: int, n_heads: int, n_kv_heads: int, d_ff: int,
               vocab_size: int, context_len: int) -> ModelShape:
    """The shape of a character LM with these sizes (the rest is ``ARCHITECTURE``)."""
    return ModelShape(name=name, n_layers=n_layers, d_model=d_model, n_heads=n_heads, n_kv_heads=n_kv_heads,
                      d_ff=d_ff, vocab_size=vocab_size, context_len=context_len, **ARCHITECTURE)


def check_buildable(shape: ModelShape) -> None:
    """A one-line ``ConfigError`` naming the first field of ``shape`` that ``Backbone`` cannot build."""
    if not isinstance(shape, ModelShape):
        raise ConfigError(f"shape: expected a ModelShape, got {type(shape).__name__}")
    for field, value in ARCHITECTURE.items():
        if getattr(shape, field) != value:
            raise ConfigError(f"shape.{field}: the character LM builds {field} = {value!r}, got "
                             f"{getattr(shape, field)!r}")
    if shape.head_dim % 2:
        raise ConfigError(f"shape.n_heads: d_model / n_heads must be even for rotary positions, got "
                         f"{shape.d_model}/{shape.n_heads}")


def rotary_tables(context_len: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables for rotary embeddings: each (context_len, head_dim // 2)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (hd/2,)
    angle = torch.arange(context_len, dtype=torch.float64)[:, None] * inv_freq  # (T, hd/2)
    return angle.cos().float(), angle.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :hd/2], x[..., hd/2:]) of ``x`` (B, nh, T, hd) by position-dependent angles."""
    x1, x2 = x.chunk(2, dim=-1)  # (B, nh, T, hd/2) each
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, nh, T, hd)


class Attention(nn.Module):
    def __init__(self, shape: ModelShape, causal: bool):
        super().__init__()
        self.n_heads, self.n_kv_heads = shape.n_heads, shape.n_kv_heads
        self.head_dim = shape.d_model // shape.n_heads
        self.causal = causal
        self.qkv = nn.Linear(shape.d_model, (shape.n_heads + 2 * shape.n_kv_heads) * self.head_dim)
        self.out = nn.Linear(shape.n_heads * self.head_dim, shape.d_model)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: dict | None = None,
                write_cache: bool = True) -> torch.Tensor:
        """``cache`` (decoding with a KV cache): a dict holding this layer's keys and values of the positions
        seen so far ("k", "v": (B, nkv, P, hd), absent at first); x holds the next positions P, P+1, ...,
        which attend to all cached positions and among themselves (causally in a causal model,
        bidirectionally otherwise). Their keys and values are appended when ``write_cache`` (a block
        diffusion sampler feeds a noisy block with ``write_cache=False`` and writes it once it is final)."""
        B, T, _ = x.shape  # (B, T, C)
        q, k, v = self.qkv(x).split(
            [self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim, self.n_kv_heads * self.head_dim], dim=-1
        )
        q = q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        v = v.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        past = 0 if cache is None or "k" not in cache else cache["k"].shape[2]
        cos, sin = cos[past:past + T], sin[past:past + T]
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if past:
            k = torch.cat([cache["k"], k], dim=2)  # (B, nkv, past + T, hd)
            v = torch.cat([cache["v"], v], dim=2)
        if cache is not None and write_cache:
            cache["k"], cache["v"] = k, v
        if self.n_kv_heads != self.n_heads:
            repeat = self.n_heads // self.n_kv_heads
            k = k.repeat_interleave(repeat, dim=1)  # (B, nh, past + T, hd)
            v = v.repeat_interleave(repeat, dim=1)
        if past and self.causal and T > 1:  # new positions see the cache and earlier new positions
            allowed = torch.arange(T)[:, None] + past >= torch.arange(past + T)[None, :]  # (T, past + T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:  # causal without cache, one new position after a cache, or bidirectional: no mask needed
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal and not past)  # (B, nh, T, hd)
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)  # (B, T, C)
        return self.out(y)  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.up = nn.Linear(shape.d_model, shape.d_ff)
        self.down = nn.Linear(shape.d_ff, shape.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))  # (B, T, C) → (B, T, F) → (B, T, C)


class Block(nn.Module):
    def __init__(self, shape: ModelShape, causal: bool):
        super().__init__()
        self.ln1 = nn.LayerNorm(shape.d_model)
        self.attn = Attention(shape, causal)
        self.ln2 = nn.LayerNorm(shape.d_model)
        self.mlp = MLP(shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: dict | None = None,
                write_cache: bool = True) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cos, sin, cache, write_cache)  # (B, T, C)
        return x + self.mlp(self.ln2(x))  # (B, T, C)


class Backbone(nn.Module):
    """Token ids (B, T) → logits (B, T, vocab_size). ``causal`` selects the attention mask."""

    def __init__(self, shape: ModelShape, causal: bool):
        super().__init__()
        self.shape, self.causal = shape, causal
        check_buildable(shape)
        self.tok_emb = nn.Embedding(shape.vocab_size, shape.d_model)
        cos, sin = rotary_tables(shape.context_len, shape.d_model // shape.n_heads)
        self.register_buffer("rope_cos", cos, persistent=False)  # (T, hd/2), not in the state dict
        self.register_buffer("rope_sin", sin, persistent=False)
        self.blocks = nn.ModuleList(Block(shape, causal) for _ in range(shape.n_layers))
        self.ln_f = nn.LayerNorm(shape.d_model)
        self.head = nn.Linear(shape.d_model, shape.vocab_size)

    def forward(self, ids: torch.Tensor, cache: list | None = None, write_cache: bool = True,
                head_last: int | None = None, trace: Trace | None = None) -> torch.Tensor:
        """Logits (B, H, V) of the last H = ``head_last`` positions fed (None: all T; 0: the LM head is not
        run). ``cache``: None, or a list (empty at first) that keeps one KV cache per block across calls:
        each call then feeds the next positions only, which attend to the cached ones (see
        ``Attention.forward``); ``write_cache=False`` leaves the cache as it was. ``trace``: the call is
        recorded there (positions fed, head rows, attention pairs, keys read, cache hits)."""
        B, T = ids.shape
        if cache is not None and not cache:
            cache.extend({} for _ in self.blocks)
        past = cache[0]["k"].shape[2] if cache is not None and "k" in cache[0] else 0
        if past + T > self.shape.context_len:
            raise ConfigError(f"ids: sequence length {past + T} exceeds context_len={self.shape.context_len}")
        H = T if head_last is None else min(head_last, T)
        if trace is not None:
            trace.record_forward(B, T, H, past, self.causal)
        x = self.tok_emb(ids)  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, self.rope_cos, self.rope_sin, None if cache is None else cache[i], write_cache)  # (B, T, C)
        if H == 0:
            return x.new_zeros(B, 0, self.shape.vocab_size)  # (B, 0, V): the head is not run
        return self.head(self.ln_f(x if H == T else x[:, T - H:]))  # (B, H, V)


def init_weights(module: nn.Module, n_layers: int, gen: torch.Generator) -> None:
    """GPT-2 style init from ``gen``: N(0, 0.02), residual output projections scaled by 1/sqrt(2 n_layers)."""
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            torch.nn.init.zeros_(p)
        elif "ln" in name.split(".")[-2]:
            torch.nn.init.ones_(p)
        else:
            std = 0.02 / (2 * n_layers) ** 0.5 if name.endswith(("out.weight", "down.weight")) else 0.02
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=gen) * std)


class CharLM(nn.Module):
    """A character language model: the backbone plus what it is (``kind``), its ``vocab`` and model ``card``.

    ``kind == "mdlm"``: bidirectional denoiser of the absorbing-state masked diffusion LM.
    ``kind == "ar"``: causal next-character model. ``forward(ids)`` returns logits (B, T, V) with the mask
    token's logit set to -inf (no model ever predicts the mask; SUBS for the MDLM).
    """

    def __init__(self, kind: str, shape: ModelShape, vocab: Vocab = Vocab(), card: dict | None = None,
                 seed: int = 0):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"kind: must be one of {', '.join(KINDS)}, got {kind!r}")
        if shape.vocab_size != vocab.size:
            raise ConfigError(f"shape.vocab_size: {shape.vocab_size} disagrees with the vocabulary ({vocab.size})")
        self.kind, self.vocab = kind, vocab
        self.card = dict(card or {})
        self.card.setdefault("kind", kind)
        self.card["shape"] = shape.to_dict()
        self.backbone = Backbone(shape, causal=(kind == "ar"))
        init_weights(self.backbone, shape.n_layers, torch.Generator().manual_seed(seed))

    @property
    def shape(self) -> ModelShape:
        return self.backbone.shape

    @property
    def mask_id(self) -> int:
        return self.vocab.mask_id

    def forward(self, ids: torch.Tensor, cache: list | None = None, write_cache: bool = True,
                head_last: int | None = None, trace: Trace | None = None) -> torch.Tensor:
        """Logits (B, H, V) of the last ``head_last`` positions fed (all by default); ``cache``,
        ``write_cache``, ``trace``: see ``Backbone.forward``."""
        logits = self.backbone(ids, cache, write_cache, head_last, trace)  # (B, H, V)
        mask_col = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
        mask_col[self.mask_id] = True
        return logits.masked_fill(mask_col, float("-inf"))  # (B, T, V), never predicts the mask


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
