"""GPU baseline: a roofline per kernel in time and in energy, priced from the card.

Every forward pass of a phase launches, per block: two norm(+residual) kernels, the fused QKV GEMM, rotary
(if the shape uses it), attention, the output GEMM, the MLP input GEMM (gate and up fused for SwiGLU), the
activation, the MLP output GEMM; per pass: the embedding gather, the time-conditioning GEMMs (MDLM/SEDD),
and — when logits are needed — the final norm, the LM head GEMM and sampling. A kernel of W FLOPs moving
Q bytes of HBM traffic costs (:func:`kernel_cost`)

    E_dyn = e_flop · W + e_hbm · Q                                  (J, the work it does)
    t     = max(W / (peak · compute_efficiency), Q / (bandwidth · bandwidth_efficiency),
                launch floor, E_dyn / (P_max − P_const))             (s)
    E     = P_const · t + E_dyn

— the energy roofline of Choi, Bedard, Fowler & Vuduc, "A roofline model of energy" (IPDPS 2013,
doi:10.1109/IPDPS.2013.77): a constant power π0 while the machine runs, plus a fixed energy per operation
and per byte moved. The last term of ``t`` is the board power limit: a kernel whose average power would
exceed ``power_max_w`` runs at the limit instead (clocks drop; the work and its energy stay). So a
memory-bound decode draws P_const + e_hbm · achieved bandwidth, well below TDP, and only compute-heavy
kernels reach TDP. Weights are streamed from HBM once per GEMM per pass (shared by the whole batch); the
input embedding is gathered (one row per fed token), never streamed; activations and the KV cache are read
and written at the dtype's width (bf16: 2 bytes, fp8: 1 byte — weights, activations and KV cache). Every
FLOP (tensor-core GEMMs and the few elementwise ones) is priced at the card's e_flop.

The card's values and their sources: ``circuits/h100-sxm.toml``; their validation against ML.ENERGY's
measurements: ``analogdiff validate-cards`` (``analogdiff.energy.validate``). e_flop is fitted to served
decode (GEMMs of tens to hundreds of rows); a large GEMM (a diffusion pass over many positions) gets the same
energy per FLOP, so at the 700 W limit it runs at (700 − 70) W / 1.616 pJ ≈ 390 TFLOP/s, 39% of dense peak.
The one published timing of such passes, Fast-dLLM's LLaDA step on an A100 (a context row of
validate-cards), agrees within 0.88–1.21× for prompts of 600–1,200 tokens; the roofline without the power
limit was 2× too fast there.
"""
from __future__ import annotations

import numpy as np

from analogdiff.config import ConfigError, Hardware
from analogdiff.energy.decode import Work
from analogdiff.shapes import TIME_FREQ_DIM, ModelShape

BYTES = {"bf16": 2.0, "fp8": 1.0}
CLASSES = ("linear", "attention", "elementwise", "lm_head", "sampling")


def streamed_params(shape: ModelShape) -> int:
    """Parameters a forward pass streams from HBM: every GEMM weight (the LM head included, tied or not),
    bias and norm. The embeddings are not streamed: each fed token gathers one row of the token table (and
    of learned positions)."""
    return shape.weight_params() + shape.bias_params() + shape.norm_params()


def weight_streaming_floor_s(shape: ModelShape, hw: Hardware) -> float:
    """The time one forward pass needs at least: the streamed weights over peak HBM bandwidth, s."""
    g = _gpu(hw)
    return streamed_params(shape) * BYTES[g.dtype] / (g.hbm_bandwidth_tbs * 1e12)


def kernel_cost(flops: np.ndarray, hbm_bytes: np.ndarray, *, peak_flops: float, bandwidth_bps: float,
                launch_s: float, p_const_w: float, p_max_w: float, e_flop_j: float, e_byte_j: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Time (s) and dynamic energy (J) of kernels of ``flops`` FLOPs and ``hbm_bytes`` bytes (arrays of one
    shape; a kernel with neither takes no time). Their total energy is ``p_const_w · t + e_dyn``."""
    e_dyn = e_flop_j * flops + e_byte_j * hbm_bytes
    t = np.maximum(np.maximum(flops / peak_flops, hbm_bytes / bandwidth_bps),
                   np.maximum(launch_s, e_dyn / (p_max_w - p_const_w)))
    active = (flops > 0) | (hbm_bytes > 0)
    return np.where(active, t, 0.0), np.where(active, e_dyn, 0.0)


def _gpu(hw: Hardware):
    if hw.gpu is None:
        raise ConfigError(f"{hw.name}: not a GPU card (no [gpu] table)")
    return hw.gpu


def gpu_estimate_arrays(shape: ModelShape, hw: Hardware, work: Work, batch: int = 1) -> dict:
    """Time (s) and energy (J) of ``batch`` sequences under ``work`` on GPU card ``hw``.

    ``breakdown_j``: ``static`` (P_const × time) and the dynamic energy (FLOPs + HBM bytes) of each kernel
    class (``CLASSES``)."""
    g = _gpu(hw)
    wb = ab = BYTES[g.dtype]
    fp8 = g.dtype == "fp8"
    peak = (g.peak_tflops_fp8 if fp8 else g.peak_tflops_bf16) * 1e12 * g.compute_efficiency
    e_flop_j = (g.e_flop_fp8_pj if fp8 else g.e_flop_bf16_pj) * 1e-12
    bw = g.hbm_bandwidth_tbs * 1e12 * g.bandwidth_efficiency
    s, d, hd = shape, shape.d_model, shape.head_dim

    kv_bytes = batch * work.context_needed * s.n_layers * 2 * s.n_kv_heads * hd * ab
    need_gb = (s.n_params() * wb + kv_bytes) / 1e9
    if need_gb > g.hbm_capacity_gb:
        raise ConfigError(f"{hw.name}: {s.name} needs {need_gb:.1f} GB of weights and KV cache at batch {batch} "
                          f"but gpu.hbm_capacity_gb = {g.hbm_capacity_gb:g}; lower the batch or seq_len")

    reps = work.repeats.astype(float)                          # (F,)
    n = work.positions * float(batch)                          # tokens per pass
    h = work.head_positions * float(batch)
    pairs = work.attn_pairs * float(batch)
    kv = work.kv_len * float(batch)                            # keys read per pass, all sequences
    one = np.ones_like(reps)

    ops: list[tuple[str, float, np.ndarray, np.ndarray]] = []  # (class, kernels per pass, FLOPs, bytes)

    def gemm(cls: str, k_in: int, k_out: int, rows: np.ndarray, count: float = 1.0) -> None:
        ops.append((cls, count, 2.0 * k_in * k_out * rows, k_in * k_out * wb + (k_in + k_out) * rows * ab))

    nl = float(s.n_layers)
    qkv_out = (s.n_heads + 2 * s.n_kv_heads) * hd
    ops.append(("elementwise", 2 * nl, 8.0 * d * n, 3.0 * d * n * ab))          # norms + residual adds
    gemm("linear", d, qkv_out, n, nl)
    if s.positions == "rotary":
        ops.append(("elementwise", nl, 6.0 * (s.n_heads + s.n_kv_heads) * hd * n,
                    2.0 * (s.n_heads + s.n_kv_heads) * hd * n * ab))
    ops.append(("attention", nl, 4.0 * s.n_heads * hd * pairs + 5.0 * s.n_heads * pairs,
                (2.0 * s.n_heads * hd * n + 2.0 * s.n_kv_heads * hd * kv) * ab))
    gemm("linear", s.n_heads * hd, d, n, nl)
    mlp_in = 2 * s.d_ff if s.mlp == "swiglu" else s.d_ff
    gemm("linear", d, mlp_in, n, nl)
    ops.append(("elementwise", nl, 8.0 * s.d_ff * n, (mlp_in + s.d_ff) * n * ab))
    gemm("linear", s.d_ff, d, n, nl)
    ops.append(("elementwise", 1.0, 1.0 * d * n, 2.0 * d * n * ab))              # embedding gather
    if s.cond_dim:
        rows = batch * one
        gemm("linear", TIME_FREQ_DIM, s.cond_dim, rows)
        gemm("linear", s.cond_dim, s.cond_dim, rows)
        gemm("linear", s.cond_dim, 6 * d, rows, nl)
        gemm("linear", s.cond_dim, 2 * d, rows)
    has_head = (h > 0).astype(float)
    ops.append(("elementwise", 1.0, 8.0 * d * h, 2.0 * d * h * ab * has_head))   # final norm
    ops.append(("lm_head", 1.0, 2.0 * d * s.vocab_size * h,
                (d * s.vocab_size * wb + (d + s.vocab_size) * h * ab) * has_head))
    ops.append(("sampling", 1.0, 5.0 * s.vocab_size * h, 4.0 * s.vocab_size * h))

    t_total = 0.0
    dyn = {c: 0.0 for c in CLASSES}
    flops = hbm = kernels = 0.0
    for cls, count, f, b in ops:
        f, b = f * one, b * one                                # (F,) per kernel
        t, e = kernel_cost(f, b, peak_flops=peak, bandwidth_bps=bw, launch_s=g.kernel_launch_us * 1e-6,
                           p_const_w=g.power_const_w, p_max_w=g.power_max_w, e_flop_j=e_flop_j,
                           e_byte_j=g.e_hbm_pj_per_byte * 1e-12)
        t_total += float((reps * count * t).sum())
        dyn[cls] += float((reps * count * e).sum())
        flops += float((reps * count * f).sum())
        hbm += float((reps * count * b).sum())
        kernels += float((reps * count * ((f > 0) | (b > 0))).sum())
    t_total += float(reps.sum()) * batch * g.host_us_per_seq_step * 1e-6    # host waits, GPU at P_const
    breakdown = {"static": g.power_const_w * t_total, **dyn}
    return {"time_s": t_total, "breakdown_j": breakdown, "flops": flops, "hbm_bytes": hbm, "kernels": kernels,
            "hbm_needed_gb": need_gb}
