"""IR-drop compensation: a per-column affine correction fitted at programming, applied after the ADC.

    comp = fit_layer(planes, plane_weights, w_meas, w_target)   # at programming (calibration inputs)
    factor, offset = apply(factor, comp, n_slices, n_out)        # at every drift state, once

What real chips do. IBM's HERMES core converts each ADC result to FP16 and "employs two fused
multiply-add (FMA) units to remove gain and offset errors" in its local digital processing unit, then
applies an "affine scaling per channel" (Le Gallo et al., Nat. Electron. 2023, §II; arXiv:2212.02872 p. 3):
one gain and one offset per ADC output, in digital, after the conversion. NeuRRAM's "model-driven chip
calibration" records offsets per neuron for subsequent cancellation (Wan et al., Nature 2022, Fig. 4b).
Card field: ``tile.ir_compensation = "per-column-affine"`` (None = off). Defaults, from what each card's chip
does: ``pcm-hermes`` on (HERMES's LDPU gain/offset FMAs per ADC output); ``pcm-ibm`` off (its source, aihwkit's
inference defaults, simulate IR drop with no correction; its periphery is ISAAC's, which has none);
``rram-wan2022`` off (NeuRRAM cancels offsets but publishes no per-column gain correction); ``ecram`` off (no
chip: 10×10 arrays); ``ideal`` off (no wires). Any card can switch it on: ``--set tile.ir_compensation=
per-column-affine``.

What is fitted (per physical tile column: one row tile, one slice, one output; the column of one ADC):
the calibration inputs of the layer (the same recorded vectors that calibrate the DAC and ADC ranges, or
the synthetic fallback) are encoded by the layer's DAC and read noise-free through the programmed tiles
twice — with the wires (``w_meas``: the effective matrix of the exact IR-drop solve, what the ADC sees) and
without (``w_target``: the programmed conductances themselves, which program-and-verify reads one device at
a time, so without array IR drop). Per column, gain a and offset b minimize Σ_n (a·y_meas + b − y_target)²
over the calibration vectors (closed-form least squares in float64); a column whose reads do not vary
keeps a = 1, b = 0. The correction targets IR drop only: programming error is in both reads and is not
regressed away. It is fitted once, at t = 0; later drift changes the IR drop slightly and the fit stays
(as on a chip that is not recalibrated); the global drift compensation scales it with the rest.

How it is applied: the gain folds into the layer's per-column digital scale (``factor`` of
``kernels.adc_accumulate``: exactly a multiply after the ADC), the offset becomes one term per output,
``Σ_{r,s} factor·b``, times each vector's input full scale (offsets are fitted on normalized inputs).
Deterministic: no randomness (noise-free reads of fixed inputs).
"""
from __future__ import annotations

import numpy as np
import torch

METHODS = ("per-column-affine",)


def fit_affine(y_meas: torch.Tensor, y_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per column least squares a·y_meas + b ≈ y_target over the samples (dim −2).

    y_meas, y_target: (..., N, M). Returns gain, offset (..., M) float64. Columns where y_meas is constant
    over the samples (unused or empty columns, N < 2) get gain 1 and offset 0.
    """
    ym, yt = y_meas.to(torch.float64), y_target.to(torch.float64)
    mu_m, mu_t = ym.mean(dim=-2), yt.mean(dim=-2)  # (..., M)
    dm, dt = ym - mu_m.unsqueeze(-2), yt - mu_t.unsqueeze(-2)
    var = (dm * dm).sum(dim=-2)
    cov = (dm * dt).sum(dim=-2)
    # a column whose reads do not vary (relative to its own scale) carries no gain information
    scale = (ym * ym).sum(dim=-2).clamp(min=1e-300)
    ok = var > 1e-12 * scale
    gain = torch.where(ok, cov / torch.where(ok, var, torch.ones_like(var)), torch.ones_like(var))
    offset = torch.where(ok, mu_t - gain * mu_m, torch.zeros_like(var))
    return gain, offset


def plane_sum(planes: torch.Tensor, w: torch.Tensor, plane_weights) -> torch.Tensor:
    """Noise-free tile partial sums after the shift-add over input bit planes: Σ_p pw_p · planes_p @ w.

    planes (P, R, N, width), w (R, width, M) → (R, N, M) float64 (µS × normalized volts)."""
    w = w.to(torch.float64)
    y = torch.zeros((planes.shape[1], planes.shape[2], w.shape[-1]), dtype=torch.float64, device=w.device)
    for p, pw in enumerate(np.asarray(plane_weights, np.float64)):  # one plane at a time: bounded memory
        y += float(pw) * torch.matmul(planes[p].to(torch.float64), w)
    return y


def fit_layer(planes: torch.Tensor, plane_weights, w_meas: torch.Tensor, w_target: torch.Tensor) -> dict:
    """The correction of one layer: ``{"gain", "offset"}`` (R, M) float64, ``"vectors"``: N (calibration
    vectors read). planes: (P, R, N, width) encoded calibration inputs; w_meas, w_target: (R, width, M)
    layer matrices with and without wires (see module docstring)."""
    gain, offset = fit_affine(plane_sum(planes, w_meas, plane_weights),
                              plane_sum(planes, w_target, plane_weights))
    return {"gain": gain, "offset": offset, "vectors": int(planes.shape[2])}


def apply(factor: torch.Tensor, comp: dict | None, n_out: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The layer's per-column digital scale with the gains folded in, and the per-output offset.

    factor: (R, S·n_out) float64 (``AnalogLinear._factor``, drift compensation included). Returns
    (factor · gain, offset (n_out,) float64 = Σ_{r,s} factor · b in output units per unit input full scale),
    or (factor, None) when ``comp`` is None."""
    if comp is None:
        return factor, None
    gain = comp["gain"].to(device=factor.device, dtype=factor.dtype)
    off = comp["offset"].to(device=factor.device, dtype=factor.dtype)
    offset = (factor * off).sum(dim=0).reshape(-1, n_out).sum(dim=0)  # over row tiles, then slices
    return (factor * gain).contiguous(), offset


def relative_error(y: torch.Tensor, y_ref: torch.Tensor) -> float:
    """‖y − y_ref‖ / ‖y_ref‖ (Frobenius), float64."""
    y, y_ref = y.to(torch.float64), y_ref.to(torch.float64)
    return float(torch.linalg.norm(y - y_ref) / torch.linalg.norm(y_ref).clamp(min=1e-300))
