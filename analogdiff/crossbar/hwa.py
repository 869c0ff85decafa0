"""Hardware-aware training (HWA): the crossbar's own device, converter and drift models in a model's
training forward pass, with straight-through gradients.

    layers = attach(model, hw, gen)              # every nn.Linear → HwaLinear (same parameters, same state dict)
    calibrate(model, lambda m: m(ids))           # static DAC ranges and ADC full scales, as ``analogize`` does
    for step ...:
        set_step(layers, sample_drift_time_s(gen))   # one drift time per step, log-uniform in [1 s, 1 year]
        loss(model(x)).backward(); opt.step()
        clip_weights_(layers, sigma)                 # per output channel, ±sigma · std

What one training forward of an ``HwaLinear`` does (in ``train()`` mode; in ``eval()`` mode it is exactly
``nn.Linear``):

* **Programming, drift, compensation** — the weights are mapped to differential pairs
  (``mapping.map_weights``) and programmed on fresh ``tile.Tile`` objects with the card's own laws
  (``devices``: programming noise, stuck devices, drift exponents or RRAM relaxation), read ``t_s`` after
  programming with the card's global drift compensation (``Tile.at_time``). The result, in weight units,
  replaces the weights in the forward pass and is the identity in the backward pass (the perturbation is
  added as a detached tensor, as aihwkit's weight modifiers and AIHWKIT-Lightning's noise injection do:
  the gradient is taken at the noisy weights and applied to the clean ones). One programming per layer per
  step (per forward call).
* **Read noise** — Gaussian per device with the card's std at that time (``Tile.at_time``'s variance),
  drawn once per device and step, i.e. shared by the reads of one batch (as aihwkit's weight modifiers draw
  once per mini-batch). The inference simulator draws it per read (exactly, at output level); per-read
  draws here cost ~57 M normals per step of the shipped models (~3.4 s of one core, twice a digital
  step), which is why training draws per step.
* **DAC** — inputs are clipped to the calibrated static range (or each vector's abs-max for a dynamic
  card) and rounded to the DAC's levels (``converters.dac_quantize``); straight-through: the gradient
  passes unchanged (also outside the range).
* **ADC** — each row tile's partial sum, in the µS the chip converts (before compensation), is quantized
  with the tile's calibrated full scale (``converters.adc_quantize``, with the card's input noise and
  S-curve); straight-through as the DAC.
* **IR drop** — optional (``ir_drop=True``): ``Tile`` folds ``wires.effective_conductance`` into the
  programmed tiles at every step. That solve takes ~0.15 s of one core per 256×256-pair tile and ~0.3 s per
  256×512 (its docstring, ``benchmarks/bench_irdrop.py``); the shipped models have 41 tiles, so ~10 s of one
  core per step, against 5.3 s measured for a whole HWA step without it (batch 32; 1.8 s for a digital
  step). The shipped HWA models train without it (``analogdiff train --hwa`` leaves it off unless
  ``--hwa-ir-drop``); evaluation still applies it.

Weight clipping (``clip_weights_``): after every optimizer step each output channel (a crossbar column,
mapped per column by its max |w|) is clipped to ±sigma times its standard deviation — aihwkit's
``WeightClipType.LAYER_GAUSSIAN`` (default sigma 2.5, per layer) applied per channel as AIHWKIT-Lightning's
``LAYER_GAUSSIAN_PER_CHANNEL`` (Büchel et al. 2025, Analog Foundation Models). Ideas carried over, not code.

Limits: one-slice mappings with parallel (amplitude or PWM) inputs; bit-sliced weights and bit-serial DACs
are refused (``ConfigError``). All randomness comes from the one generator given to ``attach``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import ConfigError
from ..config import Hardware
from .converters import adc_quantize, calibrated_range, dac_quantize
from .mapping import from_tiles, map_weights, tile_counts, to_tiles
from .tile import Tile

YEAR_S = 365.0 * 86400.0
"""Upper end of the drift times sampled during training (1 year), seconds."""
T_MIN_S = 1.0
"""Lower end of the drift times sampled during training, seconds."""


def sample_drift_time_s(gen: torch.Generator, t_min_s: float = T_MIN_S, t_max_s: float = YEAR_S) -> float:
    """One drift time, log-uniform in [t_min_s, t_max_s] (seconds after programming)."""
    u = float(torch.rand((), generator=gen, dtype=torch.float64))
    return math.exp(math.log(t_min_s) + u * (math.log(t_max_s) - math.log(t_min_s)))


def ste(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """``x_hat`` in the forward pass, the identity in the backward pass (straight-through estimator)."""
    return x + (x_hat - x).detach()


def check_card(hw: Hardware) -> None:
    """HWA needs an analog card with one-slice mapping and parallel inputs (one line otherwise)."""
    if hw.kind != "analog" or hw.tile is None or hw.device is None:
        raise ConfigError(f"--hwa: {hw.name} is not an analog card (needs [tile] and [device])")
    if hw.tile.bit_slices != 1:
        raise ConfigError(f"--hwa: {hw.name} slices weights over {hw.tile.bit_slices} devices; HWA training "
                          f"supports bit_slices = 1")
    if hw.dac is not None and hw.dac.bit_serial:
        raise ConfigError(f"--hwa: {hw.name} has a bit-serial DAC; HWA training supports parallel inputs only")


class Injector:
    """What all ``HwaLinear`` layers of one model share: the card, the generator, the step's drift time."""

    def __init__(self, hw: Hardware, gen: torch.Generator, ir_drop: bool = False):
        check_card(hw)
        self.hw, self.gen, self.ir_drop = hw, gen, ir_drop
        self.t_s = 0.0


class HwaLinear(nn.Linear):
    """An ``nn.Linear`` whose training forward runs through the card's crossbar models (module docstring).

    Shares the ``weight`` and ``bias`` parameters of the layer it replaces, so the state dict, the
    optimizer and checkpoints are those of the digital model.
    """

    def __init__(self, linear: nn.Linear, injector: Injector):
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.injector = injector
        t = injector.hw.tile
        self.n_row_tiles, self.n_col_tiles = tile_counts(self.in_features, self.out_features, t.rows, t.cols)
        self.x_range: float | None = None          # static DAC range (input units); None: per-vector abs-max
        self.adc_fs_us: torch.Tensor | None = None  # (R, C) ADC full scale per tile, µS of normalized input
        self._record: list[torch.Tensor] | None = None

    # ----------------------------------------------------------------- pieces

    def programmed_weights(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One programming of the current weights, read at the injector's drift time.

        Returns (w_eff (out, in) weight units, compensated; read variance (in, out) weight units² or None;
        us_to_w (R, out): weight units per µS of each row tile's partial sum, compensation included).
        """
        inj, hw = self.injector, self.injector.hw
        t, d = hw.tile, hw.device
        w = self.weight.detach()
        cmap = map_weights(w, d.g_min_us, d.g_max_us, t.weight_scale)  # (1, in, out) µS
        r, c = self.n_row_tiles, self.n_col_tiles
        present = to_tiles(torch.ones_like(cmap.g_pos_us, dtype=torch.bool), t.rows, t.cols, False)
        k = r * c
        ref_seed = int(torch.randint(0, 2 ** 62, (), generator=inj.gen))
        tile = Tile(to_tiles(cmap.g_pos_us, t.rows, t.cols).view(k, t.rows, t.cols),
                    to_tiles(cmap.g_neg_us, t.rows, t.cols).view(k, t.rows, t.cols),
                    present.view(k, t.rows, t.cols), d, hw.drift, hw.wire if inj.ir_drop else None, inj.gen,
                    ref_seed=ref_seed)
        st = tile.at_time(inj.t_s)
        alpha = st.alpha.view(k, 1, 1)  # (K, 1, 1) drift compensation per tile
        g = from_tiles((st.w_eff_us * alpha).view(1, r, c, t.rows, t.cols), self.in_features,
                       self.out_features)[0]  # (in, out) µS, compensated
        wpu = cmap.weight_per_us  # (out,) weight units per µS
        w_eff = (g * wpu).T.to(w.dtype)
        var = None
        if st.read_var_us2 is not None:
            v = from_tiles((st.read_var_us2 * alpha ** 2).view(1, r, c, t.rows, t.cols), self.in_features,
                           self.out_features)[0]
            var = (v * wpu ** 2).to(w.dtype)  # (in, out)
        col_tile = torch.arange(self.out_features) // t.cols
        us_to_w = st.alpha.view(r, c)[:, col_tile] * wpu  # (R, out)
        return w_eff, var, us_to_w.to(w.dtype)

    def _dac(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        """(inputs as the DAC applies them, straight-through; their range: scalar or (N, 1))."""
        dac = self.injector.hw.dac
        if self.x_range is not None:
            scale: torch.Tensor | float = self.x_range
        else:
            scale = x.detach().abs().amax(dim=-1, keepdim=True).clamp(min=torch.finfo(x.dtype).tiny)
        if dac is None:
            return x, scale
        return ste(x, dac_quantize(x.detach() / scale, dac.bits) * scale), scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._record is not None:
            self._record.append(x.detach().reshape(-1, self.in_features))
        if not self.training:
            return F.linear(x, self.weight, self.bias)
        hw, gen = self.injector.hw, self.injector.gen
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)  # (N, in)
        xq, scale = self._dac(x2)
        with torch.no_grad():
            w_eff, var, us_to_w = self.programmed_weights()
            if var is not None:  # one read-noise draw per device and step (see module docstring)
                w_eff = w_eff + var.T.clamp(min=0).sqrt() * torch.randn(w_eff.shape, generator=gen)
        w = ste(self.weight, w_eff)  # (out, in)
        if hw.adc is None:
            y = F.linear(xq, w, self.bias)
        else:
            rows = hw.tile.rows
            y = 0
            for r in range(self.n_row_tiles):
                sl = slice(r * rows, (r + 1) * rows)
                yr = F.linear(xq[:, sl], w[:, sl])  # (N, out) weight units
                with torch.no_grad():
                    yq = self._adc(yr.detach(), r, us_to_w[r], scale)
                y = y + ste(yr, yq)
            if self.bias is not None:
                y = y + self.bias
        return y.view(*lead, self.out_features)

    def _adc(self, y: torch.Tensor, r: int, us_to_w: torch.Tensor, scale) -> torch.Tensor:
        """Row tile r's partial sums y (N, out), weight units → converted, weight units."""
        adc, cols = self.injector.hw.adc, self.injector.hw.tile.cols
        to_w = us_to_w * scale  # (out,) or (N, out): weight units per µS at normalized input
        u = y / to_w  # µS the chip converts
        if adc.output_range == "dynamic":
            fs = torch.stack([u[:, j:j + cols].abs().amax(dim=1) for j in range(0, u.shape[1], cols)], 1)
        else:
            fs = self.adc_fs_us[r]  # (C,)
        fs = fs.repeat_interleave(cols, dim=-1)[..., :u.shape[1]]
        z = torch.randn(u.shape, generator=self.injector.gen) if adc.noise_lsb > 0 else None
        uq, _ = adc_quantize(u, fs, adc.bits, adc.noise_lsb, adc.s_curve, z)
        return uq * to_w

    # ----------------------------------------------------------------- calibration

    def finish_calibration(self) -> None:
        """Static DAC range and ADC full scales from the recorded inputs (as ``AnalogLinear._calibrate``:
        the card's percentiles; ADC partial sums noise-free at t = 0, without the programming noise)."""
        hw = self.injector.hw
        x = torch.cat(self._record) if self._record else None
        self._record = None
        if x is None or not torch.isfinite(x).all():
            raise ConfigError(f"--hwa: no usable calibration inputs for a {self.in_features}→{self.out_features} "
                              f"layer")
        static = hw.dac is None or hw.dac.input_range == "static"
        pct = hw.dac.range_percentile if hw.dac is not None else 100.0
        self.x_range = (calibrated_range(x, pct) or None) if static else None
        if hw.adc is None or hw.adc.output_range == "dynamic":
            return
        t, d = hw.tile, hw.device
        cmap = map_weights(self.weight.detach(), d.g_min_us, d.g_max_us, t.weight_scale)
        g = (cmap.g_pos_us - cmap.g_neg_us)[0].to(x.dtype)  # (in, out) µS
        scale = self.x_range if self.x_range is not None else x.abs().amax(1, keepdim=True).clamp(min=1e-30)
        xn = x / scale
        if hw.dac is not None:
            xn = dac_quantize(xn, hw.dac.bits)
        fs = torch.zeros(self.n_row_tiles, self.n_col_tiles, dtype=torch.float64)
        for r in range(self.n_row_tiles):
            y = xn[:, r * t.rows:(r + 1) * t.rows] @ g[r * t.rows:(r + 1) * t.rows]  # (N, out) µS
            for c in range(self.n_col_tiles):
                fs[r, c] = calibrated_range(y[:, c * t.cols:(c + 1) * t.cols], hw.adc.range_percentile)
        self.adc_fs_us = fs.clamp(min=1e-12).to(x.dtype)


def attach(model: nn.Module, hw: Hardware, gen: torch.Generator, ir_drop: bool = False) -> list[HwaLinear]:
    """Replace every ``nn.Linear`` of ``model`` (in place) by an ``HwaLinear`` sharing its parameters."""
    inj = Injector(hw, gen, ir_drop)
    layers = []
    for name, mod in list(model.named_modules()):
        if type(mod) is nn.Linear:
            h = HwaLinear(mod, inj)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, h)
            layers.append(h)
    if not layers:
        raise ConfigError("--hwa: the model has no nn.Linear layers")
    return layers


def calibrate(model: nn.Module, layers: list[HwaLinear], run: Callable[[nn.Module], Any]) -> None:
    """Record every layer's inputs during ``run(model)`` (no gradients, eval mode) and set its converter ranges."""
    was_training = model.training
    for layer in layers:
        layer._record = []
    model.eval()
    try:
        with torch.no_grad():
            run(model)
    finally:
        model.train(was_training)
    for layer in layers:
        layer.finish_calibration()


def set_step(layers: list[HwaLinear], t_s: float) -> None:
    """Drift time (s after programming) of the next forward passes."""
    layers[0].injector.t_s = float(t_s)


@torch.no_grad()
def clip_weights_(layers: list[HwaLinear], sigma: float) -> None:
    """Clip each output channel (row of ``weight``) to ±sigma · its std (in place); sigma <= 0: no clipping."""
    if sigma <= 0:
        return
    for layer in layers:
        w = layer.weight
        bound = sigma * w.std(dim=1, keepdim=True)  # (out, 1)
        w.copy_(torch.maximum(torch.minimum(w, bound), -bound))
