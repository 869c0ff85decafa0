"""GPU baseline: a roofline per kernel, priced from the card's peak FLOP/s, HBM bandwidth and power.

Every forward pass of a phase launches, per block: two norm(+residual) kernels, the fused QKV GEMM, rotary
(if the shape uses it), attention, the output GEMM, the MLP input GEMM (gate and up fused for SwiGLU), the
activation, the MLP output GEMM; per pass: the embedding gather, the time-conditioning GEMMs (MDLM/SEDD),
and — when logits are needed — the final norm, the LM head GEMM and sampling. Each kernel takes

    t = max(FLOPs / (peak · compute_efficiency), bytes / (bandwidth · bandwidth_efficiency), launch floor)

and draws ``power_idle_w`` plus ``(power_max_w − power_idle_w)`` times the busy fraction of its binding
resource (compute or HBM), i.e. E = P_idle · t + (P_max − P_idle) · max(t_compute, t_memory). Weights are
streamed from HBM once per kernel per pass (shared by the whole batch); activations and the KV cache are
read and written at the dtype's width (bf16: 2 bytes, fp8: 1 byte — weights, activations and KV cache).
This is an upper-bound-on-speed, TDP-based energy model: ML.ENERGY's measurements run above it in J/token
because real servers do not reach the roofline (see the estimator suite's anchors).
"""
from __future__ import annotations

import numpy as np

from analogdiff.config import ConfigError, Hardware
from analogdiff.energy.decode import Work
from analogdiff.shapes import TIME_FREQ_DIM, ModelShape

BYTES = {"bf16": 2.0, "fp8": 1.0}
CLASSES = ("linear", "attention", "elementwise", "lm_head", "sampling")


def gpu_estimate_arrays(shape: ModelShape, hw: Hardware, work: Work, batch: int = 1) -> dict:
    """Time (s) and energy (J) of ``batch`` sequences under ``work`` on GPU card ``hw``."""
    g = hw.gpu
    if g is None:
        raise ConfigError(f"{hw.name}: not a GPU card (no [gpu] table)")
    wb = ab = BYTES[g.dtype]
    peak = (g.peak_tflops_fp8 if g.dtype == "fp8" else g.peak_tflops_bf16) * 1e12 * g.compute_efficiency
    bw = g.hbm_bandwidth_tbs * 1e12 * g.bandwidth_efficiency
    launch = g.kernel_launch_us * 1e-6
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
        f, b = f * one, b * one
        active = (b > 0) | (f > 0)
        t_c, t_m = f / peak, b / bw
        t = np.where(active, np.maximum(np.maximum(t_c, t_m), launch), 0.0)
        t_total += float((reps * count * t).sum())
        dyn[cls] += float((reps * count * np.maximum(t_c, t_m)).sum()) * (g.power_max_w - g.power_idle_w)
        flops += float((reps * count * f).sum())
        hbm += float((reps * count * b).sum())
        kernels += float((reps * count * active).sum())
    breakdown = {"idle": g.power_idle_w * t_total, **dyn}
    return {"time_s": t_total, "breakdown_j": breakdown, "flops": flops, "hbm_bytes": hbm, "kernels": kernels,
            "hbm_needed_gb": need_gb}
