"""DAC (row drivers) and ADC (column readout).

Pure functions on tensors, and two thin binders: ``Dac(config, x_range)`` and ``Adc(config, full_scale)``
each get only their own card component and the range they must cover (STYLE 5). These are the reference
implementations; ``kernels.py`` fuses the same arithmetic for speed and is tested against them.

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

import torch

from ..config import ADC, DAC


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
    """A layer's row drivers: its ``DAC`` card and, for static ranges, the calibrated input range."""

    def __init__(self, config: DAC, x_range: float | None):
        if config.input_range == "static" and (x_range is None or not x_range > 0):
            raise ValueError("Dac: a static input range needs a calibrated x_range > 0")
        self.config, self.x_range = config, x_range

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Full scale per input vector (..., 1): the static range or each vector's abs-max."""
        if self.config.input_range == "static":
            return torch.full((*x.shape[:-1], 1), self.x_range, dtype=x.dtype)
        return x.abs().amax(dim=-1, keepdim=True).clamp(min=torch.finfo(x.dtype).tiny)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (..., in) → (normalized DAC levels in [-1, 1], full scale (..., 1))."""
        s = self.scale(x)
        return dac_quantize(x / s, self.config.bits), s


class Adc:
    """A tile's column ADCs: their ``ADC`` card and the full scale they cover (calibrated)."""

    def __init__(self, config: ADC, full_scale: torch.Tensor | float | None):
        if config.output_range == "calibrated" and full_scale is None:
            raise ValueError("Adc: a calibrated output range needs full_scale")
        self.config, self.full_scale = config, full_scale

    def convert(self, y: torch.Tensor, z: torch.Tensor | None = None,
                dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
        """Partial sums → converted values; 'dynamic' takes the abs-max along ``dim`` as full scale."""
        fs = self.full_scale
        if self.config.output_range == "dynamic":
            fs = y.abs().amax(dim=dim, keepdim=True)
        return adc_quantize(y, fs, self.config.bits, self.config.noise_lsb, self.config.s_curve, z)
