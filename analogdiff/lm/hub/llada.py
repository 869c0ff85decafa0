"""LLaDA (masked diffusion, Llama-like, bidirectional): the names of GSAI-ML/LLaDA-8B-Base ``modeling_llada.py``
(``LLaDAModelLM`` → ``model: LLaDAModel``, blocks ``LLaDALlamaBlock``) and its ``configuration_llada.py``::

    model.transformer.wte.weight (embedding_size, d)
    model.transformer.blocks.{i}.attn_norm.weight      model.transformer.blocks.{i}.ff_norm.weight
    model.transformer.blocks.{i}.{q,k,v}_proj.weight   model.transformer.blocks.{i}.attn_out.weight
    model.transformer.blocks.{i}.{ff,up}_proj.weight   model.transformer.blocks.{i}.ff_out.weight
    model.transformer.ln_f.weight                      model.transformer.ff_out.weight (unless weight_tying)

Block (``LLaDALlamaBlock.forward``): ``x += attn_out(attn(rope(q), rope(k), v))`` on ``attn_norm(x)``, no
causal mask; ``x += ff_out(silu(ff_proj(h)) * up_proj(h))`` with ``h = ff_norm(x)``. RMSNorm with
``rms_norm_eps``, rotary ``rope_theta`` (rotate-half), optional ``input_emb_norm`` (×sqrt(d)) and
``scale_logits`` (×1/sqrt(d)). The mask token id is 126336 (LLaDA's ``generate.py``).
Supported settings are the published ones: ``block_type = "llama"``, ``layer_norm_type = "rms"``,
``activation_type = "silu"``, ``rope = true``, ``alibi = false``, ``attention_layer_norm = false``,
``block_group_size = 1``, ``include_bias = false`` (``include_qkv_bias`` may be true); anything else is
refused naming the field.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import HubLM, RMSNorm, attend, rotate, split_heads

MASK_ID = 126336  # ML-GSAI/LLaDA generate.py: mask_id=126336


def shape_fields(cfg, name: str) -> dict:
    """Biases: only ``include_qkv_bias`` (on q/k/v); ``include_bias`` would also put biases on the norms,
    which this loader does not build."""
    cfg.choice("include_bias", (False,), False)
    cfg.choice("bias_for_layer_norm", (False,), False)
    d = cfg.int("d_model")
    vocab = cfg.int("embedding_size", cfg.int("vocab_size"))
    return dict(name=name, n_layers=cfg.layers("n_layers"), d_model=d, n_heads=cfg.int("n_heads"),
                n_kv_heads=cfg.int("n_kv_heads", cfg.int("n_heads")),
                d_ff=cfg.int("mlp_hidden_size", cfg.int("mlp_ratio", 4) * d), mlp="swiglu", vocab_size=vocab,
                context_len=cfg.int("max_sequence_length"), tied_embeddings=cfg.bool("weight_tying", False),
                positions="rotary", norm="rmsnorm", norm_bias=False,
                bias=["attn.qkv"] if cfg.bool("include_qkv_bias", False) else [], cond_dim=0)


class Block(nn.Module):
    def __init__(self, shape, eps: float, qkv_bias: bool, theta: float):
        super().__init__()
        d, hd = shape.d_model, shape.head_dim
        self.n_heads, self.n_kv_heads, self.theta = shape.n_heads, shape.n_kv_heads, theta
        self.attn_norm = RMSNorm(d, eps)
        self.q_proj = nn.Linear(d, d, bias=qkv_bias)
        self.k_proj = nn.Linear(d, shape.n_kv_heads * hd, bias=qkv_bias)
        self.v_proj = nn.Linear(d, shape.n_kv_heads * hd, bias=qkv_bias)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, eps)
        self.ff_proj = nn.Linear(d, shape.d_ff, bias=False)
        self.up_proj = nn.Linear(d, shape.d_ff, bias=False)
        self.ff_out = nn.Linear(shape.d_ff, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attn_norm(x)  # (B, T, d)
        q = split_heads(self.q_proj(h), self.n_heads)  # (B, nh, T, hd)
        k, v = split_heads(self.k_proj(h), self.n_kv_heads), split_heads(self.v_proj(h), self.n_kv_heads)
        q, k = rotate(q, k, self.theta)
        x = x + self.attn_out(attend(q, k, v, causal=False))  # (B, T, d)
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))


class LLaDA(HubLM):
    def __init__(self, cfg, shape, card: dict):
        super().__init__("mdlm", shape, card)
        for key, value in (("block_type", "llama"), ("layer_norm_type", "rms"), ("activation_type", "silu")):
            cfg.choice(key, (value,))
        for key, value in (("rope", True), ("alibi", False), ("attention_layer_norm", False)):
            cfg.choice(key, (value,), value)
        cfg.choice("block_group_size", (1,), 1)
        qkv_bias = "attn.qkv" in shape.bias
        eps, theta = cfg.float("rms_norm_eps", 1e-5), cfg.float("rope_theta", 10000.0)
        self.input_emb_norm, self.scale_logits = cfg.bool("input_emb_norm", False), cfg.bool("scale_logits", False)
        self.model = nn.Module()
        self.model.transformer = nn.Module()
        t = self.model.transformer
        t.wte = nn.Embedding(shape.vocab_size, shape.d_model)
        t.blocks = nn.ModuleList(Block(shape, eps, qkv_bias, theta) for _ in range(shape.n_layers))
        t.ln_f = RMSNorm(shape.d_model, eps)
        t.ff_out = nn.Linear(shape.d_model, shape.vocab_size, bias=False)

    def tie_weights(self) -> None:
        if self.shape.tied_embeddings:
            self.model.transformer.ff_out.weight = self.model.transformer.wte.weight

    def rename(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        head = "model.transformer.ff_out.weight"  # absent when tied to wte
        return {k: v for k, v in tensors.items() if not (self.shape.tied_embeddings and k == head)}

    def logits(self, ids: torch.Tensor, cache: list | None) -> torch.Tensor:
        t = self.model.transformer
        x = t.wte(ids)  # (B, T, d)
        if self.input_emb_norm:
            x = x * self.shape.d_model ** 0.5
        for block in t.blocks:
            x = block(x)
        logits = t.ff_out(t.ln_f(x))  # (B, T, V)
        return logits / math.sqrt(self.shape.d_model) if self.scale_logits else logits
