"""Pieces shared by the published architectures: norms, rotary positions, attention with a KV cache, and the
:class:`HubLM` base every loaded model derives from (the interface of the shipped character models).

Only ``nn.Linear`` layers carry learned matmuls (what ``analogize`` programs onto tiles); attention products,
norms, rotary rotations and embedding lookups stay digital.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...checks import ConfigError
from ..model import apply_rotary, rotary_tables


class RMSNorm(nn.Module):
    """``weight * x / sqrt(mean(x²) + eps)``, computed in float32 (LlamaRMSNorm; LLaDA's RMSLayerNorm)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


class ScaleOnlyLayerNorm(nn.Module):
    """LayerNorm with a gain and no bias, eps 1e-5 (the ``LayerNorm`` of MDLM's ``models/dit.py``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), x.shape[-1:]) * self.weight


def cached_length(cache: dict | None) -> int:
    """Positions already in a layer's KV cache (0 without one)."""
    return 0 if cache is None or "k" not in cache else cache["k"].shape[2]


def rotate(q: torch.Tensor, k: torch.Tensor, base: float, past: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary positions (halves convention, ``rotate_half``) on q (B, nh, T, hd) and k (B, nkv, T, hd) at
    positions ``past .. past+T-1``. Angles are computed in float64 (the published code uses float32: the two
    differ by at most ~position × 6e-8 rad, 2.4e-4 rad at position 4096)."""
    T, hd = q.shape[2], q.shape[3]
    cos, sin = rotary_tables(past + T, hd, base)  # (past+T, hd/2) each
    cos, sin = cos[past:].to(q.device), sin[past:].to(q.device)
    return apply_rotary(q, cos, sin).to(q.dtype), apply_rotary(k, cos, sin).to(k.dtype)  # bf16 models stay bf16


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, cache: dict | None = None
           ) -> torch.Tensor:
    """Softmax attention, scale 1/sqrt(hd): q (B, nh, T, hd), k and v (B, nkv, T, hd) → (B, T, nh*hd).

    ``cache`` (causal decoding): this layer's dict of earlier keys/values ("k", "v": (B, nkv, P, hd)); the new
    positions attend to all of them and causally among themselves, and are appended.
    """
    B, nh, T, hd = q.shape
    past = cached_length(cache)
    if cache is not None:
        if past:
            k = torch.cat([cache["k"], k], dim=2)  # (B, nkv, past+T, hd)
            v = torch.cat([cache["v"], v], dim=2)
        cache["k"], cache["v"] = k, v
    if k.shape[1] != nh:  # grouped-query attention
        k = k.repeat_interleave(nh // k.shape[1], dim=1)  # (B, nh, past+T, hd)
        v = v.repeat_interleave(nh // v.shape[1], dim=1)
    if causal and past:
        allowed = torch.arange(T, device=q.device)[:, None] + past >= torch.arange(past + T, device=q.device)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, nh, T, hd)
    else:
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return y.transpose(1, 2).reshape(B, T, nh * hd)  # (B, T, nh*hd)


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, n*hd) → (B, n, T, hd)."""
    B, T, _ = x.shape
    return x.view(B, T, n_heads, -1).transpose(1, 2)


class HubLM(nn.Module):
    """A model loaded from a published checkpoint, with the interface of :class:`~analogdiff.lm.model.CharLM`.

    ``kind``: "mdlm" (masked diffusion: bidirectional; the mask token's logit is -inf, SUBS as in MDLM) or
    "ar" (causal). ``shape``: its :class:`ModelShape`. ``vocab``: a
    :class:`~analogdiff.lm.tokenizer.BPEVocab` (set by the loader). ``forward(ids)`` → logits (B, T, V) where
    position i's logits are the model's distribution of token i (diffusion) or token i+1 (AR).
    Subclasses build their modules under the published parameter names and implement ``logits``.
    """

    causal = False
    logits_shifted = False
    """True where output i-1 predicts token i of a diffusion model (Dream): scorers then give position 0."""

    def __init__(self, kind: str, shape, card: dict):
        super().__init__()
        self.kind, self._shape, self.card, self.vocab = kind, shape, dict(card), None
        self.card["kind"], self.card["shape"] = kind, shape.to_dict()

    @property
    def shape(self):
        return self._shape

    @property
    def mask_id(self) -> int | None:
        return None if self.vocab is None else self.vocab.mask_id

    def tie_weights(self) -> None:
        """Share the output head's weight with the token embedding (``shape.tied_embeddings``)."""

    def rename(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The checkpoint's tensors under this module's state-dict names (constant buffers dropped)."""
        return tensors

    def logits(self, ids: torch.Tensor, cache: list | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, ids: torch.Tensor, cache: list | None = None, write_cache: bool = True,
                head_last: int | None = None, trace=None) -> torch.Tensor:
        """``cache``: None, or (AR only) a list, empty at first, keeping one KV cache per layer across calls;
        each call then feeds the next positions only. Returns the logits of the positions fed, or of the
        last ``head_last`` of them (the head still runs on all: ``trace``, an ``analogdiff.trace.Trace``,
        records every row computed). ``write_cache=False`` (block diffusion) is for the character models."""
        T = ids.shape[1]
        if not write_cache:
            raise ConfigError("kv_cache: block diffusion with a prefix KV cache runs on the character models only")
        past = 0
        if cache is not None:
            if not self.causal:
                raise ConfigError("cache: a KV cache needs a causal (AR) model")
            if not cache:
                cache.extend({} for _ in range(self.shape.n_layers))
            past = cached_length(cache[0])
            T += past
        if T > self.shape.context_len:
            raise ConfigError(f"ids: sequence length {T} exceeds context_len={self.shape.context_len}")
        if trace is not None:
            trace.record_forward(ids.shape[0], ids.shape[1], ids.shape[1], past, self.causal)
        logits = self.logits(ids, cache)  # (B, T, V)
        if self.kind == "mdlm" and self.mask_id is not None:
            mask_col = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
            mask_col[self.mask_id] = True
            logits = logits.masked_fill(mask_col, float("-inf"))  # never predicts the mask
        return logits if head_last is None else logits[:, logits.shape[1] - min(head_last, logits.shape[1]):]
