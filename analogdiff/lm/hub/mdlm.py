"""MDLM-OWT (masked diffusion): the DiT backbone of kuleshov-group/mdlm ``models/dit.py`` (``DIT``: ``DDiTBlock``,
``TimestepEmbedder``, ``DDitFinalLayer``, ``Rotary``) as wrapped for the hub release kuleshov-group/mdlm-owt
(``modeling_mdlm.py``: ``MDLM.backbone = DITBackbone(config)``; ``configuration_mdlm.py``: ``model_type = "mdlm"``,
fields ``vocab_size, model_length, hidden_dim, cond_dim, n_blocks, n_heads, dropout, time_conditioning``)::

    backbone.vocab_embed.embedding (V, d)               a bare parameter, not an nn.Embedding
    backbone.sigma_map.mlp.0.{weight (c, 256), bias}    backbone.sigma_map.mlp.2.{weight (c, c), bias}
    backbone.rotary_emb.inv_freq (hd/2,)                a buffer in the file; recomputed here, checked
    backbone.blocks.{i}.norm1.weight   .attn_qkv.weight (3d, d)   .attn_out.weight (d, d)   (no biases)
    backbone.blocks.{i}.norm2.weight   .mlp.0.{weight (4d, d), bias}   .mlp.2.{weight (d, 4d), bias}
    backbone.blocks.{i}.adaLN_modulation.{weight (6d, c), bias}
    backbone.output_layer.norm_final.weight   .linear.{weight (V, d), bias}   .adaLN_modulation.{weight (2d, c), bias}

Block: ``(shift, scale, gate) × 2 = adaLN_modulation(c)``; ``x += gate_msa * attn_out(attn(modulate(norm1(x))))``;
``x += gate_mlp * mlp(modulate(norm2(x)))`` with ``modulate(h) = h * (1 + scale) + shift``, GELU (tanh), rotary
base 10,000 on q and k (rotate-half; v untouched), no causal mask, LayerNorm without bias (eps 1e-5).
``c = silu(sigma_map(timestep_embedding(sigma)))``, the sinusoidal embedding of width 256 (cos half first).

Time conditioning. MDLM's noise is log-linear, ``sigma(t) = -log(1 - (1 - eps) t)``, and the denoiser is called
as ``backbone(x_t, sigma)``. The released model was trained with ``time_conditioning: False``: MDLM's
``Diffusion._process_sigma`` and ``DITBackbone.forward`` replace sigma by zeros, and ``MDLM.forward`` defaults
``timesteps`` to zeros. So the model is a function of ``x_t`` alone and ``forward`` feeds **sigma = 0** on every
call, as the release does; a config with ``time_conditioning: true`` is refused (our samplers and NELBO call
``model(x_t)`` without t). The mask token is the last id, ``vocab_size - 1`` (MDLM appends it after the
tokenizer's ids: ``diffusion.py``, ``mask_index = vocab_size; vocab_size += 1``): 50257 for GPT-2's tokenizer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import HubLM, ScaleOnlyLayerNorm, attend, rotate, split_heads

TIME_FREQ_DIM = 256  # TimestepEmbedder(frequency_embedding_size=256)
MLP_RATIO = 4  # DDiTBlock(mlp_ratio=4)
ROTARY_BASE = 10_000.0  # Rotary(dim, base=10_000)


def shape_fields(cfg, name: str) -> dict:
    d = cfg.int("hidden_dim")
    return dict(name=name, n_layers=cfg.layers("n_blocks"), d_model=d, n_heads=cfg.int("n_heads"),
                n_kv_heads=cfg.int("n_heads"), d_ff=MLP_RATIO * d, mlp="gelu", vocab_size=cfg.int("vocab_size"),
                context_len=cfg.int("model_length"), cond_dim=cfg.int("cond_dim"), positions="rotary",
                norm="layernorm", norm_bias=False, tied_embeddings=False,
                bias=["mlp.up", "mlp.down", "head", "cond.mlp1", "cond.mlp2", "cond.adaln", "cond.final"])


def timestep_embedding(sigma: torch.Tensor, dim: int = TIME_FREQ_DIM, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of ``sigma`` (B,) → (B, dim): [cos(sigma f), sin(sigma f)], f = max_period^(-k/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(sigma.device)
    args = sigma[:, None].float() * freqs[None]  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)



class EmbeddingLayer(nn.Module):
    """MDLM's ``EmbeddingLayer`` (models/dit.py): a bare (V, d) parameter named ``embedding``, read by row."""

    def __init__(self, vocab_size: int, d: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_size, d))

class DDiTBlock(nn.Module):
    def __init__(self, d: int, n_heads: int, cond_dim: int):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = ScaleOnlyLayerNorm(d)
        self.attn_qkv = nn.Linear(d, 3 * d, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.norm2 = ScaleOnlyLayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, MLP_RATIO * d), nn.GELU(approximate="tanh"), nn.Linear(MLP_RATIO * d, d))
        self.adaLN_modulation = nn.Linear(cond_dim, 6 * d)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c)[:, None].chunk(6, dim=2)  # (B, 1, d)
        q, k, v = self.attn_qkv(self.norm1(x) * (1 + scale1) + shift1).chunk(3, dim=-1)  # (B, T, d) each
        q, k = rotate(split_heads(q, self.n_heads), split_heads(k, self.n_heads), ROTARY_BASE)
        x = x + gate1 * self.attn_out(attend(q, k, split_heads(v, self.n_heads), causal=False))  # (B, T, d)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class MDLM(HubLM):
    def __init__(self, cfg, shape, card: dict):
        super().__init__("mdlm", shape, card)
        cfg.choice("time_conditioning", (False,), False)
        d, c = shape.d_model, shape.cond_dim
        self.backbone = b = nn.Module()
        b.vocab_embed = EmbeddingLayer(shape.vocab_size, d)
        b.sigma_map = nn.Module()
        b.sigma_map.mlp = nn.Sequential(nn.Linear(TIME_FREQ_DIM, c), nn.SiLU(), nn.Linear(c, c))
        b.blocks = nn.ModuleList(DDiTBlock(d, shape.n_heads, c) for _ in range(shape.n_layers))
        b.output_layer = nn.Module()
        b.output_layer.norm_final = ScaleOnlyLayerNorm(d)
        b.output_layer.linear = nn.Linear(d, shape.vocab_size)
        b.output_layer.adaLN_modulation = nn.Linear(c, 2 * d)

    def rename(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Checks and drops the file's rotary ``inv_freq`` buffer (recomputed from the shape)."""
        inv = tensors.pop("backbone.rotary_emb.inv_freq", None)
        if inv is not None:
            hd = self.shape.head_dim
            ref = 1.0 / ROTARY_BASE ** (torch.arange(0, hd, 2).float() / hd)
            if inv.shape != ref.shape or not torch.allclose(inv.float(), ref, rtol=1e-3):
                raise ValueError("backbone.rotary_emb.inv_freq: is not 1/10000^(2k/head_dim) for head_dim "
                                 f"{hd}; the rotary base of models/dit.py is 10,000")
        return tensors

    def logits(self, ids: torch.Tensor, cache: list | None) -> torch.Tensor:
        b = self.backbone
        sigma = torch.zeros(ids.shape[0], device=ids.device)  # time_conditioning=False: sigma is always 0
        c = F.silu(b.sigma_map.mlp(timestep_embedding(sigma)))  # (B, c)
        x = b.vocab_embed.embedding[ids]  # (B, T, d)
        for block in b.blocks:
            x = block(x, c)
        o = b.output_layer
        shift, scale = o.adaLN_modulation(c)[:, None].chunk(2, dim=2)  # (B, 1, d)
        return o.linear(o.norm_final(x) * (1 + scale) + shift)  # (B, T, V)
