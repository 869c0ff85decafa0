"""GPT-2 (autoregressive baseline), parameter names and config keys of Hugging Face ``transformers``
``src/transformers/models/gpt2/modeling_gpt2.py`` (``GPT2LMHeadModel``) and ``configuration_gpt2.py``.

Layout (``transformer.`` prefix; checkpoints saved from the bare ``GPT2Model``, e.g. openai-community/gpt2's
``model.safetensors``, have none — both load)::

    transformer.wte.weight (V, d)   transformer.wpe.weight (n_positions, d)
    transformer.h.{i}.ln_1.{weight,bias}   .attn.c_attn.{weight (d, 3d), bias}   .attn.c_proj.{weight (d, d),bias}
    transformer.h.{i}.ln_2.{weight,bias}   .mlp.c_fc.{weight (d, f), bias}       .mlp.c_proj.{weight (f, d), bias}
    (f = n_inner, default 4d)
    transformer.ln_f.{weight,bias}         lm_head.weight (V, d), tied to wte (usually absent from the file)

GPT-2's ``Conv1D`` stores its weight as (in, out), ``y = x W + b``; here every one is an ``nn.Linear`` and the
loader transposes it. The causal-mask buffers ``h.{i}.attn.bias`` / ``attn.masked_bias`` of old checkpoints
are constants, not parameters, and are skipped. Block: ``x += attn(ln_1(x)); x += mlp(ln_2(x))``, learned
absolute positions, activation ``gelu_new`` (the tanh approximation).
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from .layers import HubLM, attend, cached_length, split_heads

ACTIVATIONS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}
CONV1D = re.compile(r"h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")
BUFFERS = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)$")


def shape_fields(cfg, name: str) -> dict:
    d = cfg.int("n_embd")
    return dict(name=name, n_layers=cfg.layers("n_layer"), d_model=d, n_heads=cfg.int("n_head"),
                n_kv_heads=cfg.int("n_head"), d_ff=cfg.int("n_inner", 4 * d), mlp="gelu",
                vocab_size=cfg.int("vocab_size"), context_len=cfg.int("n_positions"),
                tied_embeddings=cfg.bool("tie_word_embeddings", True), positions="learned", norm="layernorm",
                norm_bias=True, bias=["attn.qkv", "attn.out", "mlp.up", "mlp.down"], cond_dim=0)


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int, d_ff: int, eps: float, gelu: str):
        super().__init__()
        self.n_heads, self.gelu = n_heads, gelu
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(d, 3 * d)
        self.attn.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(d, d_ff)
        self.mlp.c_proj = nn.Linear(d_ff, d)

    def forward(self, x: torch.Tensor, cache: dict | None) -> torch.Tensor:
        q, k, v = self.attn.c_attn(self.ln_1(x)).chunk(3, dim=-1)  # (B, T, d) each
        y = attend(split_heads(q, self.n_heads), split_heads(k, self.n_heads), split_heads(v, self.n_heads),
                   causal=True, cache=cache)  # (B, T, d)
        x = x + self.attn.c_proj(y)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate=self.gelu))


class GPT2(HubLM):
    causal = True

    def __init__(self, cfg, shape, card: dict):
        super().__init__("ar", shape, card)
        cfg.choice("scale_attn_weights", (True,), True)
        cfg.choice("scale_attn_by_inverse_layer_idx", (False,), False)
        cfg.choice("add_cross_attention", (False,), False)
        gelu = ACTIVATIONS[cfg.choice("activation_function", tuple(ACTIVATIONS), "gelu_new")]
        eps = cfg.float("layer_norm_epsilon", 1e-5)
        s = shape
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(s.vocab_size, s.d_model)
        self.transformer.wpe = nn.Embedding(s.context_len, s.d_model)
        self.transformer.h = nn.ModuleList(Block(s.d_model, s.n_heads, s.d_ff, eps, gelu) for _ in range(s.n_layers))
        self.transformer.ln_f = nn.LayerNorm(s.d_model, eps=eps)
        self.lm_head = nn.Linear(s.d_model, s.vocab_size, bias=False)

    def tie_weights(self) -> None:
        if self.shape.tied_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

    def rename(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Published names → this module's: ``transformer.`` prefix added where absent, Conv1D weights
        transposed to (out, in), mask buffers and a tied ``lm_head.weight`` dropped."""
        out = {}
        for name, t in tensors.items():
            bare = name.removeprefix("transformer.")
            if BUFFERS.fullmatch(bare) or (self.shape.tied_embeddings and name == "lm_head.weight"):
                continue
            key = name if name == "lm_head.weight" else f"transformer.{bare}"
            out[key] = t.t() if CONV1D.fullmatch(bare) and t.ndim == 2 else t
        return out

    def logits(self, ids: torch.Tensor, cache: list | None) -> torch.Tensor:
        past = cached_length(cache[0]) if cache else 0
        pos = torch.arange(past, past + ids.shape[1], device=ids.device)  # (T,)
        x = self.transformer.wte(ids) + self.transformer.wpe(pos)  # (B, T, d)
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if cache is None else cache[i])
        return self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
