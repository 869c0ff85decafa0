"""DAC (row drivers) and ADC (column readout).

Pure functions on tensors — the reference implementations that ``kernels.py``'s fused numba passes are
tested against — and the two objects a layer holds: ``Dac(config, x_range)`` and ``Adc(config,
full_scale)``, each built once from only its own card component and the range it must cover (STYLE 5),
owning its levels, plane weights and full scale, and calling the fused kernels. Their energy and time
laws are in ``analogdiff.energy.converters``.

DAC, ``bits`` b with the sign included: inputs are normalized by the range (static: calibrated per layer;
dynamic: abs-max of each input vector), clipped to [-1, 1] and rounded to the L = 2^(b-1) - 1 magnitude
levels k / L (b = 1 is treated as ternary {-1, 0, 1}). Amplitude and pulse-width (``pwm``) inputs give
identical column charge here: devices and wires are linear, so the charge integrated over a PWM window
equals the current of the amplitude-coded voltage times the window. They differ in cost only.
Bit-serial inputs apply the magnitude one bit per cycle (planes in {-1, 0, 1}); each plane is a separate
MVM whose partial sums are converted by the ADC and combined by shift-add (``dac_bit_planes``).

ADC, ``bits`` b: signed mid-tread quantizer with H = 2^(b-1) - 1 steps each side (2^b - 1 levels, b = 1:
two levels ±FS/2), so at most 2^b levels. Input noise (``noise_lsb`` LSB rms) is added before the
optional S-curve u → tanh(a·u)/a on the range-normalized input, then values beyond full scale clip.
Full scale: calibrated per tile from data, or ``dynamic`` (per vector and tile, idealized auto-ranging).
``cols_per_adc`` (columns time-sharing one ADC) changes latency and energy, not the numbers.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..config import ADC, DAC
from . import kernels


def dac_half_levels(bits: int) -> int:
    """Magnitude levels L of a b-bit sign-magnitude DAC (>= 1)."""
    return max(2 ** (bits - 1) - 1, 1)


def adc_half_levels(bits: int) -> int:
    """Steps H each side of zero of a b-bit ADC (0 marks the 1-bit two-level quantizer)."""
    return 2 ** (bits - 1) - 1


def dac_quantize(x_norm: torch.Tensor, bits: int) -> torch.Tensor:
    """Normalized inputs → the DAC's levels k / L in [-1, 1] (clipping beyond full scale)."""
    levels = dac_half_levels(bits)
    return torch.round(x_norm.clamp(-1.0, 1.0) * levels) / levels


def dac_bit_planes(x_q: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bit-serial planes of quantized inputs: (P, ...) planes in {-1, 0, 1} and plane weights (P,),
    x_q = Σ_p weight_p · plane_p with weight_p = 2^p / L."""
    levels = dac_half_levels(bits)
    n_planes = max(bits - 1, 1)
    mag = torch.round(x_q.abs() * levels).to(torch.int64)  # (...) integer magnitude 0..L
    sign = torch.sign(x_q)
    planes = torch.stack([((mag >> p) & 1).to(x_q.dtype) * sign for p in range(n_planes)])
    weights = torch.tensor([2.0 ** p / levels for p in range(n_planes)], dtype=x_q.dtype)
    return planes, weights


def calibrated_range(values: torch.Tensor, percentile: float) -> float:
    """Full scale covering ``percentile`` % of |values| (100 = the abs-max); 0 if all values are 0."""
    a = values.detach().abs().flatten().to(torch.float64)
    if a.numel() == 0:
        return 0.0
    if percentile >= 100.0:
        return float(a.max())
    k = max(1, min(a.numel(), int(round(a.numel() * percentile / 100.0))))
    return float(torch.kthvalue(a, k).values)


def adc_quantize(y: torch.Tensor, full_scale: torch.Tensor | float, bits: int, noise_lsb: float = 0.0,
                 s_curve: float | None = None,
                 z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert analog partial sums ``y`` with full scale ``full_scale`` (broadcastable, same units).

    ``z``: standard normals of ``y``'s shape, needed when ``noise_lsb`` > 0. Returns (y_q in y's units,
    boolean mask of clipped conversions).
    """
    fs = torch.as_tensor(full_scale, dtype=y.dtype).clamp(min=torch.finfo(y.dtype).tiny)
    half = adc_half_levels(bits)
    u = y / fs  # full scale at ±1
    if noise_lsb > 0:
        if z is None:
            raise ValueError("adc_quantize: noise_lsb > 0 needs standard normals z")
        u = u + z * (noise_lsb / max(half, 1))
    if s_curve is not None:
        u = torch.tanh(s_curve * u) / s_curve
    clipped = u.abs() > 1.0
    if half == 0:  # 1 bit: two levels ±FS/2
        return torch.where(u >= 0, 0.5, -0.5).to(y.dtype) * fs, clipped
    q = torch.round(u.clamp(-1.0, 1.0) * half)
    return q * (fs / half), clipped


class Dac:
    """A layer's row drivers, built once from the ``DAC`` card (None = no DAC: exact normalized inputs) and
    the input range they cover. Owns the level count L, the bit-serial planes and their weights, and the
    full scale; ``encode`` runs the fused kernel (``kernels.dac_encode``).

    ``x_range``: the static full scale of the inputs, or None for each vector's abs-max (a ``dynamic``
    card, or no calibration data; see ``layers``).
    """

    def __init__(self, config: DAC | None, x_range: float | None):
        if x_range is not None and not (math.isfinite(x_range) and x_range > 0):
            raise ValueError(f"Dac: x_range must be a finite number > 0 or None (per vector), got {x_range}")
        self.config, self.x_range = config, x_range
        self.bits = config.bits if config is not None else None
        self.levels = dac_half_levels(self.bits) if config is not None else None  # L, None = exact
        self.bit_serial = bool(config is not None and config.bit_serial)
        self.n_planes = max(self.bits - 1, 1) if self.bit_serial else 1
        # x_q = Σ_p weight_p · plane_p, weight_p = 2^p / L (``dac_bit_planes``)
        self.plane_weights = (np.array([2.0 ** p / self.levels for p in range(self.n_planes)])
                              if self.n_planes > 1 else np.ones(1))

    @classmethod
    def calibrated(cls, config: DAC | None, x_calib: torch.Tensor | None) -> "Dac":
        """The row drivers of a layer whose recorded inputs are ``x_calib`` (N, in), or None (no data).

        Static range: the card's ``range_percentile`` of |x| (abs-max without a DAC); dynamic cards, no
        data, or all-zero data: each vector's abs-max."""
        if x_calib is None or (config is not None and config.input_range == "dynamic"):
            return cls(config, None)
        x_range = calibrated_range(x_calib, config.range_percentile if config is not None else 100.0)
        return cls(config, x_range if x_range > 0 else None)

    def encode(self, x: torch.Tensor, n_tiles: int, width: int, want_squares: bool = False) -> dict:
        """x (N, in) → the tiles' inputs; see ``kernels.dac_encode``."""
        return kernels.dac_encode(x, self, n_tiles=n_tiles, width=width, want_squares=want_squares)


class Adc:
    """A layer's column ADCs, built once from the ``ADC`` card and the full scale they cover: (R, M) per
    row tile and layer-matrix column (calibrated), or None for a ``dynamic`` card (per vector and tile).
    Owns the steps H each side of zero and the gain (LSB per unit) and step (unit per LSB) of each
    column; ``kernels.adc_accumulate(..., adc=...)`` converts with them."""

    def __init__(self, config: ADC, full_scale: np.ndarray | None):
        self.config = config
        self.bits, self.half = config.bits, adc_half_levels(config.bits)
        self.dynamic = config.output_range == "dynamic"
        self.noise_lsb, self.s_curve = config.noise_lsb, config.s_curve
        if not self.dynamic and full_scale is None:
            raise ValueError("Adc: a calibrated output range needs full_scale")
        self.full_scale = None if self.dynamic else np.asarray(full_scale, np.float64)  # (R, M)
        self.gain = self.step = None
        if not self.dynamic:
            fs = np.maximum(self.full_scale, 1e-30)
            hh = max(self.half, 1)
            self.gain, self.step = hh / fs, fs / hh  # (R, M) LSB per unit, unit per LSB
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def tables_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain, step) as float64 tensors on ``device``, copied once (the torch kernels' tables)."""
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = (torch.as_tensor(self.gain).to(device), torch.as_tensor(self.step).to(device))
        return self._on_device[key]

    @classmethod
    def calibrated(cls, config: ADC, row_tile_sums: Callable[[int], torch.Tensor] | None, n_row_tiles: int,
                   blocks: np.ndarray) -> "Adc":
        """Full scale per tile from noise-free partial sums: ``row_tile_sums(r)`` gives row tile r's (P, N, M)
        (one row tile at a time: a large layer's partial sums never exist all at once); the card's
        ``range_percentile`` of |y| over each physical tile's columns ``blocks`` (B, 3) [m0, m1, j0]. Dynamic
        cards need none (None)."""
        if config.output_range == "dynamic":
            return cls(config, None)
        fs = None
        for r in range(n_row_tiles):
            y = row_tile_sums(r)  # (P, N, M)
            if fs is None:
                fs = np.zeros((n_row_tiles, y.shape[-1]))
            for m0, m1, _ in blocks:
                fs[r, m0:m1] = calibrated_range(y[:, :, m0:m1], config.range_percentile)
        return cls(config, np.maximum(fs, 1e-12))
