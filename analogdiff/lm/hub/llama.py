"""Llama (autoregressive baseline) and Dream (masked diffusion, Qwen2 body): one module tree, the names of
Hugging Face ``transformers`` ``src/transformers/models/llama/modeling_llama.py`` (``LlamaForCausalLM``) and of
Dream-org/Dream-v0-Base-7B ``modeling_dream.py`` (``DreamModel``: Qwen2's layout, ``is_causal = False``)::

    model.embed_tokens.weight (V, d)
    model.layers.{i}.input_layernorm.weight            model.layers.{i}.post_attention_layernorm.weight
    model.layers.{i}.self_attn.{q,k,v,o}_proj.weight   (+ .bias on q, k, v for Dream/Qwen2; on all four for
                                                        Llama with attention_bias)
    model.layers.{i}.mlp.{gate,up,down}_proj.weight    model.norm.weight    lm_head.weight (unless tied)

Block: ``x += o(attn(rope(q(n1(x))), rope(k(n1(x))), v(n1(x)))); x += down(silu(gate(n2(x))) * up(n2(x)))``,
RMSNorm (``rms_norm_eps``), rotary ``rope_theta`` in the rotate-half convention, grouped-query attention.

Dream's logits are shifted: it was adapted from an AR model, and its sampler (``generation_utils.py``:
``logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)``) reads position i's prediction from output
i-1. ``forward`` applies that shift, so here as for every diffusion model position i's logits are token i's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from analogdiff.checks import ConfigError

from .layers import HubLM, RMSNorm, attend, cached_length, rotate, split_heads

DREAM_MASK_ID = 151666  # Dream-org/Dream-v0-Base-7B config.json "mask_token_id"


def shape_fields(cfg, name: str, dream: bool = False) -> dict:
    """Dream: q/k/v biases only (Qwen2). Llama: ``attention_bias`` on q/k/v/o, ``mlp_bias`` on the MLP."""
    d, nh = cfg.int("hidden_size"), cfg.int("num_attention_heads")
    if dream:
        bias = ["attn.qkv"]
    else:
        bias = ["attn.qkv", "attn.out"] if cfg.bool("attention_bias", False) else []
        bias += ["mlp.gate", "mlp.up", "mlp.down"] if cfg.bool("mlp_bias", False) else []
    if cfg.data.get("head_dim") is not None and cfg.int("head_dim") * nh != d:
        raise ConfigError(f"{cfg.path}: field 'head_dim' = {cfg.data['head_dim']} is not supported; "
                         f"supported: hidden_size / num_attention_heads = {d // nh}")
    return dict(name=name, n_layers=cfg.layers("num_hidden_layers"), d_model=d, n_heads=nh,
                n_kv_heads=cfg.int("num_key_value_heads", nh), d_ff=cfg.int("intermediate_size"), mlp="swiglu",
                vocab_size=cfg.int("vocab_size"), context_len=cfg.int("max_position_embeddings"),
                tied_embeddings=cfg.bool("tie_word_embeddings", False), positions="rotary", norm="rmsnorm",
                norm_bias=False, bias=bias, cond_dim=0)


def dream_shape_fields(cfg, name: str) -> dict:
    return shape_fields(cfg, name, dream=True)


class Layer(nn.Module):
    def __init__(self, shape, eps: float, qkv_bias: bool, o_bias: bool, mlp_bias: bool, theta: float,
                 causal: bool):
        super().__init__()
        d, hd = shape.d_model, shape.head_dim
        self.n_heads, self.n_kv_heads, self.theta, self.causal = shape.n_heads, shape.n_kv_heads, theta, causal
        self.input_layernorm = RMSNorm(d, eps)
        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(d, shape.n_heads * hd, bias=qkv_bias)
        self.self_attn.k_proj = nn.Linear(d, shape.n_kv_heads * hd, bias=qkv_bias)
        self.self_attn.v_proj = nn.Linear(d, shape.n_kv_heads * hd, bias=qkv_bias)
        self.self_attn.o_proj = nn.Linear(shape.n_heads * hd, d, bias=o_bias)
        self.post_attention_layernorm = RMSNorm(d, eps)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(d, shape.d_ff, bias=mlp_bias)
        self.mlp.up_proj = nn.Linear(d, shape.d_ff, bias=mlp_bias)
        self.mlp.down_proj = nn.Linear(shape.d_ff, d, bias=mlp_bias)

    def forward(self, x: torch.Tensor, cache: dict | None) -> torch.Tensor:
        a, h = self.self_attn, self.input_layernorm(x)  # (B, T, d)
        q = split_heads(a.q_proj(h), self.n_heads)  # (B, nh, T, hd)
        k, v = split_heads(a.k_proj(h), self.n_kv_heads), split_heads(a.v_proj(h), self.n_kv_heads)
        q, k = rotate(q, k, self.theta, cached_length(cache))
        x = x + a.o_proj(attend(q, k, v, self.causal, cache))  # (B, T, d)
        m, h = self.mlp, self.post_attention_layernorm(x)
        return x + m.down_proj(F.silu(m.gate_proj(h)) * m.up_proj(h))


class LlamaLike(HubLM):
    """``kind="ar"``: Llama (causal). ``kind="mdlm"``: Dream (bidirectional, q/k/v biases, shifted logits)."""

    def __init__(self, cfg, shape, card: dict, kind: str):
        super().__init__(kind, shape, card)
        self.causal = kind == "ar"
        self.logits_shifted = kind == "mdlm"  # Dream: position 0 has no prediction of its own (scorers give it)
        cfg.choice("hidden_act", ("silu",), "silu")
        if cfg.data.get("rope_scaling") is not None:
            raise ConfigError(f"{cfg.path}: field 'rope_scaling' = {cfg.data['rope_scaling']!r} is not supported; "
                             f"supported: null (plain rotary positions)")
        if kind == "mdlm":
            cfg.choice("use_sliding_window", (False,), False)
        bias = set(shape.bias)
        qkv_bias, o_bias, mlp_bias = "attn.qkv" in bias, "attn.out" in bias, "mlp.up" in bias
        eps, theta = cfg.float("rms_norm_eps", 1e-6), cfg.float("rope_theta", 10000.0)
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(shape.vocab_size, shape.d_model)
        self.model.layers = nn.ModuleList(Layer(shape, eps, qkv_bias, o_bias, mlp_bias, theta, self.causal)
                                          for _ in range(shape.n_layers))
        self.model.norm = RMSNorm(shape.d_model, eps)
        self.lm_head = nn.Linear(shape.d_model, shape.vocab_size, bias=False)

    def tie_weights(self) -> None:
        if self.shape.tied_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def rename(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drops the rotary ``inv_freq`` buffers of older checkpoints and a tied ``lm_head.weight``."""
        return {k: v for k, v in tensors.items()
                if not k.endswith("rotary_emb.inv_freq") and not (self.shape.tied_embeddings and k == "lm_head.weight")}

    def logits(self, ids: torch.Tensor, cache: list | None) -> torch.Tensor:
        x = self.model.embed_tokens(ids)  # (B, T, d)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, None if cache is None else cache[i])
        logits = self.lm_head(self.model.norm(x))  # (B, T, V)
        if self.kind == "mdlm":  # Dream: output i-1 predicts token i (position 0 keeps its own)
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits
