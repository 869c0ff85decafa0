"""Analog layers: ``analogize`` a torch model, move it in time, read its activation statistics.

    amodel = analogize(model, hw, seed=0, calibration=lambda m: m(ids))   # a programmed copy
    set_drift_time(amodel, 3600.0)                                        # one hour after programming
    logits = amodel(ids)                                                  # every Linear/Conv now analog
    stats = collect_stats(amodel)                                         # for ad.estimate(stats=...)
    print(mapping_report(amodel).table())                                 # what is analog, on which tiles

What runs where: every ``nn.Linear`` becomes an ``AnalogLinear`` (weights programmed on tiles, per-MVM
DAC → crossbar (+wires, read noise) → ADC per tile → digital shift-add/accumulate, drift compensation
and bias); every ``nn.Conv1d``/``nn.Conv2d`` an ``AnalogConv`` (``conv.py``: im2col, one ``AnalogLinear``
per group, one MVM per output position). Everything else stays digital and untouched: embeddings,
LayerNorm, activation functions, softmax and the attention products QKᵀ and AV (activation × activation,
no stationary weights to program); ``mapping_report`` (``report.py``) lists every layer with parameters,
analog or digital and why. The energy estimator prices the digital work of the shipped transformers
from the model shape. ``AnalogLinear`` is inference-only (no gradients).

Calibration: static DAC ranges (``dac.input_range = "static"``) and calibrated ADC ranges need data.
``analogize(..., calibration=...)`` runs a digital copy of the model with forward hooks on every
mapped layer and records (a subsample of) each layer's inputs; ``calibration`` is a callable
``calibration(model)`` that runs forward passes, or inputs: a tensor (``model(t)``), a tuple (``model(*t)``)
or a list of those (one call each). From the recorded inputs: the DAC range is the card's
``dac.range_percentile`` of |x|; the ADC full scale of each tile is ``adc.range_percentile`` of |partial
sum| of that tile, read noise-free from the programmed conductances (t = 0) — as a chip is calibrated
after programming. Fallback without calibration data (a warning says so): inputs are normalized per
vector by their abs-max (a dynamic DAC range, as aihwkit's abs-max noise management), and ADC full scales
are calibrated on 512 synthetic N(0, 1) input vectors normalized the same way.

IR-drop compensation (card ``tile.ir_compensation = "per-column-affine"``): at programming, from the same
calibration inputs, a gain and an offset per tile column are fitted (``compensation.py``); the gain folds
into the per-column digital scale after the ADC, the offset is added per output.

Randomness: ``seed`` derives, per layer (numbered in ``named_modules`` order), one generator for
programming, one for the drift-compensation reference reads and one for the per-MVM noise, which
``set_drift_time`` resets — so the same seed, drift time and inputs give bit-identical outputs.

Read noise is drawn exactly in distribution at output level: independent Gaussian device noise gives
column noise N(0, Σ_i x_i² σ_ij²), computed as one extra matmul (x²) @ σ² and one normal per tile output
(``Tile.mvm``); a test checks it against per-device draws. By default that matmul takes bfloat16 operands
and returns bfloat16 (float32 accumulation inside; 4.5× faster than float32 on CPUs with AMX, and on
GPUs): x², σ² and the result are each rounded to 8 significant bits, relative error ≤ 2^-8 each, and all
terms are non-negative, so each output's variance is within (1 + 2^-8)^3 − 1 = 1.2 % and its std within
0.59 % of the exact one (measured ≤ 0.42 % on the shipped MDLM's tiles, a test). ``device.read_noise_exact = true``
(``--set device.read_noise_exact=true``) computes it in float32. Limits: device noise is independent between
reads and between devices, and reaches the column through wires by first-order attenuation (``tile.py``).
``read_noise_rank=r`` (or ``set_read_noise_rank``) replaces each row tile's σ² by its best rank-r
approximation (truncated SVD) to skip most of the extra matmul: the total noise power is kept (to ~0.3 %
on the MDLM), but each output's noise std is off by a few % rms (3–10 % at r = 16 on the MDLM layers).

Speed (``benchmarks/bench_forward.py``): one matmul per tile row band as in the digital layer, plus the
variance matmul, one fused numba pass for DAC + statistics and one for read noise + ADC + shift-add +
compensation + bias; the wires cost nothing per MVM (folded into the effective matrix at
``set_drift_time``). On the CPU the two passes are numba kernels; on a GPU (``analogize(...,
device="cuda")``) their torch implementations (``kernels_torch``) and the torch IR-drop solve
(``wires_torch``) keep every tensor on the device.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from analogdiff import checks
from analogdiff.checks import ConfigError

from ..config import Hardware, load_hardware
from . import compensation, kernels
from .converters import Adc, Dac
from .mapping import map_weights, pair_difference, tile_counts, to_tiles
from .tile import Tile, TileState

_MASK63 = (1 << 63) - 1
_N_SYNTHETIC = 512


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 chain): independent streams per layer and purpose."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = (h + (int(p) & ((1 << 64) - 1)) + 0x9E3779B97F4A7C15) & ((1 << 64) - 1)
        h ^= h >> 30
        h = (h * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
        h ^= h >> 27
        h = (h * 0x94D049BB133111EB) & ((1 << 64) - 1)
        h ^= h >> 31
    return h & _MASK63


_PROGRAM, _REFERENCE, _READ, _SYNTHETIC = 1, 2, 3, 4


class AnalogLinear(nn.Module):
    """``nn.Linear`` on programmed crossbar tiles (composition: holds a ``Tile`` stack, a ``Dac`` and an
    ``Adc`` — None when the card has no ADC).

    Built by ``analogize``; ``weight`` (out, in) and ``bias`` as in ``nn.Linear``. ``x_calib`` (N, in):
    recorded layer inputs for static ranges, or None (see the module docstring for the fallback).
    ``crossbar.state.load_programmed`` rebuilds one from saved state without programming (``restore``).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, hw: Hardware, *, name: str = "",
                 seed: int = 0, index: int = 0, x_calib: torch.Tensor | None = None,
                 read_noise_rank: int | None = None, device: torch.device | str | None = None,
                 keep_state_cache: bool = True):
        super().__init__()
        dev = torch.device(device) if device is not None else weight.device
        if hw.tile is None or hw.device is None:
            raise ConfigError(f"{hw.name}: not an analog card (needs [tile] and [device])")
        t, d = hw.tile, hw.device
        try:
            cmap = map_weights(weight.to(dev), d.g_min_us, d.g_max_us, t.weight_scale, t.bit_slices,
                               t.bits_per_slice)
        except ValueError as e:
            raise ConfigError(f"analog layer '{name or '<root>'}': {e}") from None
        out_f, in_f = weight.shape
        self._setup(hw, name, seed, index, in_f, out_f, cmap.bit_slices, read_noise_rank,
                    None if bias is None else bias.to(dev))
        s, r, c = self.n_slices, self.n_row_tiles, self.n_col_tiles
        present = to_tiles(torch.ones_like(cmap.g_pos_us, dtype=torch.bool), t.rows, t.cols, False)
        k = s * r * c
        g_pos = to_tiles(cmap.g_pos_us, t.rows, t.cols).view(k, t.rows, t.cols)
        g_neg = to_tiles(cmap.g_neg_us, t.rows, t.cols).view(k, t.rows, t.cols)
        self.significance = cmap.significance
        self.weight_per_us = cmap.weight_per_us
        del cmap  # the tiled copies above are all programming needs: a large layer holds one copy, not two
        gen = torch.Generator(device=dev).manual_seed(derive_seed(seed, index, _PROGRAM))
        self.tile = Tile(g_pos, g_neg, present.view(k, t.rows, t.cols), d, hw.drift, hw.wire, gen,
                         ref_seed=derive_seed(seed, index, _REFERENCE))
        del g_pos, g_neg, present  # the tiles hold their own copies; calibration needs none of these
        self.calibrated = x_calib is not None and x_calib.shape[0] > 0
        self.keep_state_cache = keep_state_cache
        state0 = self.tile.at_time(0.0)
        self._calibrate(x_calib.to(dev) if self.calibrated else None, state0)
        self._apply_state(state0)

    def _setup(self, hw: Hardware, name: str, seed: int, index: int, in_features: int, out_features: int,
               n_slices: int, read_noise_rank: int | None, bias: torch.Tensor | None) -> None:
        """Geometry and bookkeeping shared by programming (``__init__``) and ``restore``."""
        if read_noise_rank is not None and read_noise_rank < 1:
            raise ValueError(f"read_noise_rank must be None (exact) or >= 1, got {read_noise_rank}")
        self.name, self.hw, self.seed, self.index = name, hw, seed, index
        self.in_features, self.out_features = in_features, out_features
        self.read_noise_rank = read_noise_rank
        self.n_slices = n_slices
        self.n_row_tiles, self.n_col_tiles = tile_counts(in_features, out_features, hw.tile.rows,
                                                         hw.tile.cols)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.width = in_features if self.n_row_tiles == 1 else hw.tile.rows  # matmul depth per row tile
        self.ir_comp = None  # IR-drop correction {"gain", "offset": (R, S·out)} or None (compensation.py)
        self._blocks = self._column_blocks()
        self._read_gen = torch.Generator()  # on the CPU: draws the per-call stream keys only
        self.kernels = "numba"  # the CPU kernels; "torch" (kernels_torch) runs on any device, always off the CPU
        self.keep_state_cache = True  # keep the float64 tile state of the current time (see analogize)
        self.reset_stats()

    @classmethod
    def restore(cls, hw: Hardware, *, name: str, seed: int, index: int, in_features: int,
                out_features: int, n_slices: int, read_noise_rank: int | None, bias: torch.Tensor | None,
                tile: Tile, significance: torch.Tensor, weight_per_us: torch.Tensor, calibrated: bool,
                x_range: float | None, adc_full_scale: np.ndarray | None, t_s: float,
                ir_comp: dict | None = None) -> "AnalogLinear":
        """A programmed layer from saved state (no programming, no calibration), at drift time ``t_s``."""
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer._setup(hw, name, seed, index, in_features, out_features, n_slices, read_noise_rank, bias)
        layer.tile, layer.significance, layer.weight_per_us = tile, significance, weight_per_us
        layer.calibrated = calibrated
        layer.dac = Dac(hw.dac, x_range)
        layer.adc = Adc(hw.adc, adc_full_scale) if hw.adc is not None else None
        layer.ir_comp = ir_comp
        layer._apply_state(tile.at_time(t_s))
        return layer

    # ----------------------------------------------------------------- calibration

    def _calibrate(self, x_calib: torch.Tensor | None, state0: TileState) -> None:
        """Build the converters: the DAC's input range from the recorded inputs, the ADC full scales from
        the noise-free partial sums of the programmed tiles at t = 0 (module docstring)."""
        hw = self.hw
        if x_calib is not None:
            x = x_calib.detach().to(torch.float32).reshape(-1, self.in_features)
            if not torch.isfinite(x).all():
                raise ValueError(f"analog layer '{self.name or '<root>'}': calibration inputs hold NaN or "
                                 f"Inf")
        else:
            dev = state0.w_eff_us.device
            gen = torch.Generator(device=dev).manual_seed(derive_seed(self.seed, self.index, _SYNTHETIC))
            x = torch.randn((_N_SYNTHETIC, self.in_features), generator=gen, device=dev)
        self.dac = Dac.calibrated(hw.dac, x if x_calib is not None else None)
        self.adc = None
        if hw.adc is not None:
            row_tile_sums = None
            if hw.adc.output_range == "calibrated":
                w = self._layer_matrix(state0.w_eff_us)  # (R, width, M) float32
                planes = self._kernels(w.device).dac_encode(x, self.dac, n_tiles=self.n_row_tiles, width=self.width,
                                                    want_squares=False)["planes"]

                def row_tile_sums(r: int) -> torch.Tensor:  # (P, N, M): one row tile's slice of planes @ w
                    return torch.matmul(planes[:, r:r + 1], w[r:r + 1])[:, 0]
            self.adc = Adc.calibrated(hw.adc, row_tile_sums, self.n_row_tiles, self._column_blocks())
        if hw.tile.ir_compensation is not None:  # per-column affine IR-drop correction (compensation.py)
            w_eff = self._layer_matrix(state0.w_eff_us)
            planes = self._kernels(w_eff.device).dac_encode(x, self.dac, n_tiles=self.n_row_tiles, width=self.width,
                                                            want_squares=False)["planes"]
            self.ir_comp = compensation.fit_layer(planes, self.dac.plane_weights, w_eff,
                                                  self._layer_matrix(pair_difference(self.tile.g_prog_us)))

    def _column_blocks(self) -> np.ndarray:
        """(B, 3) int64 rows [m0, m1, j0]: the layer-matrix columns [m0, m1) of one physical tile (one
        slice, one column tile) and the output index j0 of column m0."""
        cols, out = self.hw.tile.cols, self.out_features
        return np.array([(k * out + c0, k * out + min(c0 + cols, out), c0)
                         for k in range(self.n_slices) for c0 in range(0, out, cols)], dtype=np.int64)

    # ----------------------------------------------------------------- drift state

    def _layer_matrix(self, per_tile: torch.Tensor) -> torch.Tensor:
        """(K, rows, cols) per-tile matrices → (R, width, S·out) float32 layer matrix."""
        t = self.hw.tile
        s, r, c = self.n_slices, self.n_row_tiles, self.n_col_tiles
        m = per_tile.view(s, r, c, t.rows, t.cols).permute(1, 3, 0, 2, 4)  # (R, rows, S, C, cols)
        m = m.reshape(r, t.rows, s, c * t.cols)[..., :self.out_features]
        m = m.reshape(r, t.rows, s * self.out_features)[:, :self.width]
        return m.to(torch.float32).contiguous()

    def set_drift_time(self, t_s: float) -> None:
        """Move to t_s seconds after programming: recompute the effective matrix (drift, wires), read-noise
        variance and compensation once; reset the per-MVM noise generator."""
        t_s = checks.drift_time_s("drift_time_s", t_s)
        if self.tile is None:
            raise ConfigError(f"analog layer '{self.name or '<root>'}': its programming was released "
                              f"(release_programming); it stays at t = {self.state.t_s:g} s")
        self._apply_state(self.tile.at_time(t_s))

    def release_programming(self) -> None:
        """Free the programmed device state (conductances, drift draws, the cached IR-drop solve), keeping
        only what an MVM at the current drift time needs (the layer matrices, the read-noise variance and
        the compensation). For models too large to hold both (``benchmarks/bench_gpu_sim.py``: an 8B
        model on one GPU); afterwards ``set_drift_time`` refuses and ``save_programmed`` cannot save it."""
        self.tile = None
        self.state = TileState(t_s=self.state.t_s, w_eff_us=None, read_var_us2=None, alpha=self.state.alpha,
                               mean_g_us=self.state.mean_g_us)

    def set_read_noise_rank(self, rank: int | None) -> None:
        """Switch the read-noise variance between exact (None) and rank-``rank`` (no reprogramming)."""
        if rank is not None and rank < 1:
            raise ConfigError(f"read_noise_rank must be None (exact) or >= 1, got {rank}")
        if self.tile is None:
            raise ConfigError(f"analog layer '{self.name or '<root>'}': its programming was released")
        self.read_noise_rank = rank
        self._apply_state(self.state if self.state.w_eff_us is not None else self.tile.at_time(self.state.t_s))

    def _apply_state(self, state: TileState) -> None:
        self.state = state
        self._w = self._layer_matrix(state.w_eff_us)
        self._var = self._var_factors = None
        if state.read_var_us2 is not None:
            var = self._layer_matrix(state.read_var_us2)  # (R, width, M) µS²
            if self.read_noise_rank is not None and self.read_noise_rank < min(var.shape[1:]):
                u, sv, vh = torch.linalg.svd(var.double(), full_matrices=False)
                k = self.read_noise_rank
                self._var_factors = ((u[..., :k] * sv[:, None, :k]).float().contiguous(),
                                     vh[:, :k].float().contiguous())  # (R, width, k), (R, k, M)
            else:  # bfloat16 operands and result unless the card asks for the exact float32 variance
                self._var = var if self.hw.device.read_noise_exact else var.to(torch.bfloat16)
        s, r, c, out, cols = (self.n_slices, self.n_row_tiles, self.n_col_tiles, self.out_features,
                              self.hw.tile.cols)
        alpha = state.alpha.view(s, r, c)
        col_tile = torch.arange(out, device=alpha.device) // cols  # (out,) column tile of each output
        factor = (self.significance.view(s, 1, 1) * alpha[:, :, col_tile]
                  * self.weight_per_us.view(1, 1, out))  # (S, R, out)
        self._factor = factor.permute(1, 0, 2).reshape(r, s * out).to(torch.float64).contiguous()  # (R, M)
        self._factor, self._ir_offset = compensation.apply(self._factor, self.ir_comp, out)
        self._read_gen.manual_seed(derive_seed(self.seed, self.index, _READ))
        if not self.keep_state_cache and self.tile is not None:  # the layer matrices above are all an MVM needs
            self.tile.forget_state()
            self.state = TileState(t_s=state.t_s, w_eff_us=None, read_var_us2=None, alpha=state.alpha,
                                   mean_g_us=state.mean_g_us)

    # ----------------------------------------------------------------- forward

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"analog layer '{self.name or '<root>'}': expected inputs with "
                             f"{self.in_features} features, got shape "
                             f"{tuple(x.shape)}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        noisy = self._var is not None or self._var_factors is not None
        kern = self._kernels()
        enc = kern.dac_encode(x2, self.dac, n_tiles=self.n_row_tiles, width=self.width, want_squares=noisy,
                              squares_dtype=self._var.dtype if self._var is not None else torch.float32)
        if not (math.isfinite(enc["lo"]) and math.isfinite(enc["hi"])):
            raise ValueError(f"analog layer '{self.name or '<root>'}': input holds NaN or Inf")
        planes = enc["planes"]  # (P, R, N, width)
        p, n = planes.shape[0], planes.shape[2]
        y = _tile_matmul(planes, self._w)  # (P, R, N, M) µS, partial sum of every tile
        var = None  # (P, R, N, M) µS², variance of each tile output's read noise: (x²) @ σ²
        if self._var is not None:
            var = _tile_matmul(enc["squares"], self._var)  # squares already in the variance's dtype
        elif self._var_factors is not None:
            a, b = self._var_factors
            var = _tile_matmul(_tile_matmul(enc["squares"], a), b)
        keys = torch.randint(0, 2 ** 62, (2,), generator=self._read_gen).tolist()
        res = kern.adc_accumulate(
            y, adc=self.adc, var=var, plane_weights=self.dac.plane_weights, keys=(keys[0], keys[1]),
            factor=self._factor.numpy() if kern is kernels else self._factor, row_scale=enc["row_scale"], bias=self.bias, n_out=self.out_features,
            blocks=self._blocks)
        if self._ir_offset is not None:  # per-column offsets of the IR-drop correction, (N, out)
            rs = torch.as_tensor(enc["row_scale"], dtype=torch.float64, device=res["out"].device)
            res["out"] += (rs[:, None] * self._ir_offset[None, :]).to(torch.float32)
            if n:
                res["lo"], res["hi"] = float(res["out"].min()), float(res["out"].max())
        self._accumulate_stats(enc, res, n, p)
        return res["out"].view(*lead, self.out_features).to(x.dtype)

    def _kernels(self, device: torch.device | None = None):
        """The per-MVM kernels: numba on the CPU, torch (``kernels_torch``) on any other device or when
        ``self.kernels == "torch"`` (the two agree bit for bit on the CPU, tests)."""
        if (device or self._w.device).type == "cpu" and self.kernels == "numba":
            return kernels
        from . import kernels_torch

        return kernels_torch

    # ----------------------------------------------------------------- statistics

    def reset_stats(self) -> None:
        self._stats = {"mvms": 0, "abs_sum": 0.0, "sq_sum": 0.0, "clip": 0, "conversions": 0,
                       "xmin": np.inf, "xmax": -np.inf, "ymin": np.inf, "ymax": -np.inf}

    def _accumulate_stats(self, enc: dict, res: dict, n: int, planes: int) -> None:
        st = self._stats
        st["mvms"] += n
        st["abs_sum"] += float(enc["abs_sum"].sum())
        st["sq_sum"] += float(enc["sq_sum"].sum())
        if self.adc is not None:
            st["clip"] += int(res["clip"].sum())
            st["conversions"] += n * planes * self.n_row_tiles * self.n_slices * self.out_features
        if n:
            st["xmin"], st["xmax"] = min(st["xmin"], enc["lo"]), max(st["xmax"], enc["hi"])
            st["ymin"], st["ymax"] = min(st["ymin"], res["lo"]), max(st["ymax"], res["hi"])

    def stats(self) -> dict:
        """This layer's entry of ``collect_stats`` (see there)."""
        st = self._stats
        elems = max(st["mvms"] * self.in_features, 1)
        seen = st["mvms"] > 0
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "mvms": st["mvms"],
            "mean_abs_x_norm": min(st["abs_sum"] / elems, 1.0),
            "mean_x2_norm": min(st["sq_sum"] / elems, 1.0),
            "mean_g_us": self.state.mean_g_us,
            "adc_clip_fraction": st["clip"] / st["conversions"] if st["conversions"] else 0.0,
            "x_range": [st["xmin"], st["xmax"]] if seen else [0.0, 0.0],
            "y_range": [st["ymin"], st["ymax"]] if seen else [0.0, 0.0],
        }

    def extra_repr(self) -> str:
        return (f"{self.name}: in={self.in_features}, out={self.out_features}, tiles="
                f"{self.n_slices}x{self.n_row_tiles}x{self.n_col_tiles}, card={self.hw.name}, "
                f"t={self.state.t_s:g} s")


def _tile_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(P, R, N, K) @ (R, K, M) → (P, R, N, M) by mm/bmm (torch.matmul's broadcasting path is slower)."""
    p, r, n, _ = a.shape
    if r == 1:
        return torch.mm(a.reshape(p * n, -1), b[0]).view(p, 1, n, -1)
    if p == 1:
        return torch.bmm(a[0], b)[None]
    out = torch.empty((p, r, n, b.shape[-1]), dtype=a.dtype, device=a.device)
    for i in range(p):
        torch.bmm(a[i], b, out=out[i])
    return out


# --------------------------------------------------------------------------- model-level API

def _record_inputs(model: nn.Module, calibration: Any, max_vectors: int,
                   layers: list[tuple[str, nn.Module]]) -> dict[str, torch.Tensor]:
    """Run ``calibration`` on ``model`` with hooks on ``layers`` (nn.Linear or conv); return per module
    name its input vectors (N, in) — for a conv its patches (N, groups · in_features), the vectors its
    matrices will see."""
    from .conv import ConvGeometry

    store: dict[str, list[torch.Tensor]] = {}
    hooks = []

    def hook(name, geometry):
        def fn(_mod, args):
            x = args[0].detach()
            if geometry is not None:
                x = geometry.patches(geometry.batched(x))[0]  # (B, P, C·∏k)
            x = x.reshape(-1, x.shape[-1]).to(torch.float32)
            store.setdefault(name, []).append(x)
            total = sum(t.shape[0] for t in store[name])
            if total > 4 * max_vectors:  # keep memory bounded: thin evenly
                cat = torch.cat(store[name])
                store[name] = [cat[torch.linspace(0, cat.shape[0] - 1, max_vectors).long()]]
        return fn

    for name, mod in layers:
        geometry = None if isinstance(mod, nn.Linear) else ConvGeometry.of(mod, name)
        hooks.append(mod.register_forward_pre_hook(hook(name, geometry)))
    try:
        with torch.no_grad():
            if callable(calibration):
                calibration(model)
            else:
                batches = calibration if isinstance(calibration, list) else [calibration]
                for b in batches:
                    model(*b) if isinstance(b, tuple) else model(b)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for name, parts in store.items():
        cat = torch.cat(parts)
        if cat.shape[0] > max_vectors:
            cat = cat[torch.linspace(0, cat.shape[0] - 1, max_vectors).long()]
        out[name] = cat
    return out


def analogize(model: nn.Module, hw: Hardware | str, seed: int = 0,
              calibration: Callable[[nn.Module], Any] | torch.Tensor | tuple | list | None = None,
              max_calibration_vectors: int = 4096, read_noise_rank: int | None = None,
              device: torch.device | str | None = None, keep_state_cache: bool = True) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` replaced by a programmed ``AnalogLinear`` and every
    ``nn.Conv1d``/``nn.Conv2d`` by an ``AnalogConv`` (``conv.py``: im2col, one matrix per group).

    ``hw``: a ``Hardware`` or a card name/path. ``seed``: programming and read noise (per matrix streams,
    numbered in ``named_modules`` order; a conv's groups take consecutive numbers).
    ``calibration``: ``calibration(model)`` running forward passes, or inputs (see module docstring);
    None falls back to dynamic input ranges and synthetic ADC calibration (warning); at most
    ``max_calibration_vectors`` input vectors per layer are kept (evenly thinned).
    ``read_noise_rank``: None = the card's read-noise variance, r = rank-r variance (faster, see above).
    ``device``: where the copy lives and runs (e.g. "cuda"); None = where ``model`` is. Off the CPU every
    step stays on that device: programming draws from generators on it (so a CUDA copy is programmed from
    other random numbers than a CPU copy of the same seed), the IR drop is solved by ``wires_torch``, and
    each MVM runs the torch kernels (``kernels_torch``, the same per-MVM noise streams as on the CPU).
    Calibration inputs must be on that device.
    ``keep_state_cache``: False drops each layer's float64 tile state (effective matrices and read-noise
    variances, 8 bytes per device) once the layer holds its float32/bfloat16 matrices — the same outputs, less
    memory (a 124M-parameter model: ≈ 2 GB); asking again for the current drift time (``set_drift_time``,
    ``set_read_noise_rank``) then solves the IR drop again. In this lean mode ``analogize`` and
    ``set_drift_time`` also hand the memory glibc keeps after a layer back to the system before the next
    (``analogdiff._runtime.return_freed_memory``): the 124M model's peak went from 9.7 to 7.1 GB with the
    chunked programming (``benchmarks/bench_scale.py``, ``docs/results/scale/``).
    The copy is at drift time 0; ``model`` itself is untouched. Every other module with parameters stays
    digital; ``mapping_report(amodel)`` (``report.py``) lists each layer, analog or digital and why, with
    its tiles; a warning names the digital ones other than embeddings and normalizations. Sets glibc to
    keep freed memory for this process (``analogdiff._runtime.keep_freed_memory``;
    ANALOGDIFF_KEEP_MALLOC=0 to opt out).
    """
    from analogdiff._runtime import keep_freed_memory, return_freed_memory

    from .conv import AnalogConv
    from .report import expected_digital, needs_calibration, plan

    keep_freed_memory()
    if not isinstance(hw, Hardware):
        hw = load_hardware(hw)
    if hw.kind != "analog":
        raise ConfigError(f"{hw.name}: a GPU card cannot analogize a model; pick an analog card")
    amodel = copy.deepcopy(model)
    if device is not None:
        amodel = amodel.to(device)
    rows = plan(amodel)
    mapped = [(n, m) for n, m, reason in rows if reason is None]
    if not mapped:
        raise ConfigError("analogize: the model has no nn.Linear, nn.Conv1d or nn.Conv2d layers to map")
    unexpected = [f"'{n or '<model>'}' ({type(m).__name__}: {reason})" for n, m, reason in rows
                  if reason is not None and not expected_digital(m)]
    if unexpected:
        warnings.warn(f"analogize: {len(unexpected)} layer(s) with parameters stay digital: "
                      f"{'; '.join(unexpected)}. See mapping_report(amodel)", stacklevel=2)
    recorded = (_record_inputs(amodel, calibration, max_calibration_vectors, mapped)
                if calibration is not None else {})
    missing = [n for n, _ in mapped if n not in recorded]
    if needs_calibration(hw) and missing:
        warnings.warn(f"analogize: no calibration data for {len(missing)} of {len(mapped)} layers "
                      f"(e.g. '{missing[0]}'): their inputs use dynamic abs-max ranges and their ADC "
                      f"ranges come from synthetic inputs; pass calibration=... for static ranges",
                      stacklevel=2)
    del rows  # with ``mapped`` below, the only references to the digital layers: each goes once replaced
    index = 0
    while mapped:
        name, mod = mapped.pop(0)
        if isinstance(mod, nn.Linear):
            analog = AnalogLinear(mod.weight, mod.bias, hw, name=name, seed=seed, index=index,
                                  x_calib=recorded.pop(name, None), read_noise_rank=read_noise_rank, device=device,
                                  keep_state_cache=keep_state_cache)
            index += 1
        else:
            analog = AnalogConv(mod, hw, name=name, seed=seed, index=index, x_calib=recorded.pop(name, None),
                                read_noise_rank=read_noise_rank, device=device, keep_state_cache=keep_state_cache)
            index += mod.groups
        if not name:  # the model is itself one layer
            return analog
        parent_name, _, child = name.rpartition(".")
        parent = amodel.get_submodule(parent_name) if parent_name else amodel
        setattr(parent, child, analog)
        del mod, analog
        if not keep_state_cache:  # lean mode: the layer's temporaries go back to the system before the next one
            return_freed_memory()
    return amodel


def analog_layers(amodel: nn.Module) -> list[tuple[str, AnalogLinear]]:
    """Every programmed matrix of ``amodel`` (a conv's groups included), by module path."""
    layers = [(n, m) for n, m in amodel.named_modules() if isinstance(m, AnalogLinear)]
    if not layers:
        raise ConfigError("the model has no analog layers; call analogize first")
    return layers


def set_drift_time(amodel: nn.Module, t_s: float) -> None:
    """Move every analog layer of ``amodel`` to ``t_s`` seconds after programming (in place)."""
    from analogdiff._runtime import return_freed_memory

    for _, layer in analog_layers(amodel):
        layer.set_drift_time(t_s)
        if not layer.keep_state_cache:  # lean mode (``analogize``): hand the layer's temporaries back
            return_freed_memory()


def set_read_noise_rank(amodel: nn.Module, rank: int | None) -> None:
    """Read-noise variance of every analog layer: exact (None) or from a rank-``rank`` factorization of
    each tile's σ² (faster; see ``analogize``)."""
    for _, layer in analog_layers(amodel):
        layer.set_read_noise_rank(rank)


def collect_stats(amodel: nn.Module) -> dict:
    """Activation statistics since analogize / the last ``reset_stats``, for the energy estimator::

        {"layers": {name: {"in_features", "out_features", "mvms" (input vectors seen),
                           "mean_abs_x_norm" (mean |x| / DAC full scale, in [0, 1]),
                           "mean_x2_norm" (mean x² / full scale²), "mean_g_us" (mean device
                           conductance over both devices of each pair, µS, at the current drift time),
                           "adc_clip_fraction", "x_range": [lo, hi], "y_range": [lo, hi]}}}

    x statistics are of the normalized DAC levels (after rounding; bit-serial: of the whole value).
    One entry per analog layer: a conv's entry describes one group's matrix (in_features =
    in_channels/groups·∏kernel, out_features = out_channels/groups) and adds ``"matrices"`` (groups);
    its ``mvms`` = batch × output positions × groups, means are over its groups.
    """
    from .conv import AnalogConv

    modules = list(amodel.named_modules())
    inner = {id(m) for _, c in modules if isinstance(c, AnalogConv) for m in c.matrices}
    layers = {name: m.stats() for name, m in modules
              if isinstance(m, (AnalogLinear, AnalogConv)) and id(m) not in inner}
    if not layers:
        raise ConfigError("the model has no analog layers; call analogize first")
    return {"layers": layers}


def reset_stats(amodel: nn.Module) -> None:
    for _, layer in analog_layers(amodel):
        layer.reset_stats()
