"""Programmed crossbar tiles: devices + drift + wires bound to a card, and their MVM.

A ``Tile`` holds K physically independent tiles of one geometry (K = 1 is one tile; a layer batches all
of its tiles into one object so that programming and matmuls are vectorized). Each tile is ``rows`` ×
``cols`` differential pairs, laid out as rows × 2·cols devices with the g+ and g− of output j in
adjacent device columns 2j, 2j+1 (``mapping.interleave_pairs``); both share the row wire.

State: ``Tile(...)`` programs once (programming noise, stuck devices, drift exponents — all from the
generator it is given); ``at_time(t_s)`` returns the ``TileState`` t_s seconds after programming: the
effective differential matrix (wires folded in), the per-read noise variance, the drift-compensation
factor and the mean conductance. ``mvm`` is stateless given a state and explicit standard normals.

Units: conductances µS; inputs are normalized row voltages (v / V_read, DAC full scale = 1); an output
``y`` in µS means a column current of y · V_read · 1e-6 A.

Approximations, stated: read noise is drawn per device as independent Gaussians and enters the column
through the wires scaled by each device's own attenuation a_ij = clip(G_eff_ij / g_ij, 0, 1) (first
order in the IR drop); padded positions of a partly used tile hold no device (g = 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import Device, Drift, Wire
from . import devices
from .mapping import interleave_pairs, pair_difference

# Clock of 1/f noise when a card has no [drift] table: the Drift default t0_s (config.py), so the noise
# magnitude does not depend on whether drift is switched on.
_DEFAULT_T0_S = Drift.__dataclass_fields__["t0_s"].default
_CHUNK_DEVICES = 1 << 23
"""Devices per chunk of tiles when a state is computed (``Tile._state_parts``): each float64 temporary of the
drift, IR-drop and read-noise arithmetic then holds at most 64 MiB, whatever the layer's size."""


@dataclass(frozen=True)
class TileState:
    """K tiles at one time after programming."""

    t_s: float
    w_eff_us: torch.Tensor          # (K, rows, cols) µS, differential effective matrix (g+ − g−, wires in)
    read_var_us2: torch.Tensor | None  # (K, rows, cols) µS², variance of one read of each pair
    alpha: torch.Tensor             # (K,) drift compensation factor (1 when off)
    mean_g_us: float                # mean conductance over all present devices, µS


class Tile:
    """K programmed tiles (see module docstring). ``present`` marks real pairs (False = padding)."""

    def __init__(self, g_pos_us: torch.Tensor, g_neg_us: torch.Tensor, present: torch.Tensor,
                 device: Device, drift: Drift | None, wire: Wire | None, gen: torch.Generator,
                 ref_seed: int = 0):
        if g_pos_us.shape != g_neg_us.shape or g_pos_us.dim() != 3:
            raise ValueError("Tile: g_pos_us and g_neg_us must both be (K, rows, cols)")
        self.device, self.drift, self.wire = device, drift, wire
        self.ref_seed = ref_seed
        self.present = interleave_pairs(present, present)  # (K, rows, 2·cols) bool
        shape, d = self.present.shape, device
        rram = drift is not None and drift.model == "rram-wan2022"  # relaxation needs targets and spreads later
        chunks = self._tile_chunks(shape[0], shape[1] * shape[2])

        def target(sl):  # float64 targets of the tiles sl, padding at 0 µS
            return interleave_pairs(g_pos_us[sl], g_neg_us[sl]).to(torch.float64).mul_(self.present[sl])

        # Programming in three passes over chunks of tiles, each pass drawing its whole stream in order
        # (program-and-verify error, then stuck devices, then drift draws). On the CPU a chunked draw equals
        # the same draw in one piece (``_tile_chunks``), so every tile gets the values a one-piece pass would
        # give it, while the float64 temporaries of a large layer stay bounded (``_CHUNK_DEVICES``). A CUDA
        # generator advances by whole blocks per call: there the chunks' draws are reproducible from the
        # seed but differ from one piece.
        g_prog = torch.empty(shape, dtype=torch.float64, device=self.present.device)
        if rram:
            self.g_target_us = torch.empty(shape, dtype=torch.float32, device=g_prog.device)
            self.prog_std_us = torch.empty_like(self.g_target_us)
        for sl in chunks:
            g_target = target(sl)
            if d.prog_noise is not None:
                prog_std = devices.prog_noise_std_us(g_target, d.prog_noise, d.g_max_us, d.prog_noise_std_us,
                                                     d.prog_noise_scale)
                g_prog[sl] = devices.program_conductances(g_target, prog_std, gen)
            else:
                prog_std = torch.zeros_like(g_target)
                g_prog[sl] = g_target
            if rram:
                self.g_target_us[sl], self.prog_std_us[sl] = g_target, prog_std
        self.stuck = torch.empty(shape, dtype=torch.bool, device=g_prog.device)  # devices stuck on or off
        for sl in chunks:
            on, off = devices.stuck_masks(self.stuck[sl].shape, d.stuck_on_fraction, d.stuck_off_fraction, gen)
            torch.logical_and(on | off, self.present[sl], out=self.stuck[sl])
            g_prog[sl].masked_fill_(on, d.g_max_us).masked_fill_(off, d.g_min_us)
        self.g_prog_us = g_prog.mul_(self.present)  # (K, rows, 2·cols) µS after programming
        self.nu = self.relax_z = None
        if not rram:
            self.g_target_us = self.prog_std_us = None
        if drift is not None:
            draws = torch.empty(shape, dtype=torch.float32, device=g_prog.device)
            for sl in chunks:
                if rram:
                    z = torch.randn(draws[sl].shape, generator=gen, dtype=torch.float64, device=gen.device)
                    draws[sl] = z.masked_fill_(self.stuck[sl], 0.0)
                else:
                    nu = devices.sample_drift_nu(target(sl), drift.model, d.g_max_us, gen, drift.nu_mean,
                                                 drift.nu_std)
                    draws[sl] = nu.masked_fill_(self.stuck[sl], 0.0)
            if rram:
                self.relax_z = draws
            else:
                self.nu = draws
        self._cache = (0.0, self._state_parts(0.0))  # last computed state (the IR-drop solve is costly)
        self._reference = self._readout(self._cache[1])  # (K,) reference read at programming

    PROGRAMMED = ("present", "g_prog_us", "stuck", "nu", "relax_z", "g_target_us", "prog_std_us",
                  "reference")
    """What programming produced (``programmed()``); None entries are absent for the card's drift model."""

    def programmed(self) -> dict[str, torch.Tensor | None]:
        """The programmed state: device presence, conductances after programming (µS, float64), stuck
        masks, drift draws (ν, or the relaxation normals, targets and spreads) and the compensation
        reference read (K,). ``restore`` rebuilds the same tiles from it."""
        return {"present": self.present, "g_prog_us": self.g_prog_us, "stuck": self.stuck, "nu": self.nu,
                "relax_z": self.relax_z, "g_target_us": self.g_target_us, "prog_std_us": self.prog_std_us,
                "reference": self._reference}

    @classmethod
    def restore(cls, programmed: dict[str, torch.Tensor | None], device: Device, drift: Drift | None,
                wire: Wire | None, ref_seed: int) -> "Tile":
        """Tiles with the given programmed state (``programmed()``), without programming again."""
        tile = cls.__new__(cls)
        tile.device, tile.drift, tile.wire, tile.ref_seed = device, drift, wire, ref_seed
        for key in ("present", "g_prog_us", "stuck", "nu", "relax_z", "g_target_us", "prog_std_us"):
            setattr(tile, key, programmed[key])
        tile._reference = programmed["reference"]
        tile._cache = (0.0, tile._state_parts(0.0))
        return tile

    # ----------------------------------------------------------------- state at a time

    def conductances_at(self, t_s: float, tiles: slice = slice(None)) -> torch.Tensor:
        """Device conductances (K, rows, 2·cols) µS, t_s seconds after programming (no read noise); of the
        tiles ``tiles`` only when given."""
        if t_s < 0:
            raise ValueError(f"drift time must be >= 0 s, got {t_s}")
        dr = self.drift
        g_prog = self.g_prog_us[tiles]
        if dr is None or t_s == 0:
            return g_prog.clone()
        if dr.model == "rram-wan2022":
            # the fits' clock is time since programming; it starts at t0_s (1 s, the first fit)
            g = devices.relax_conductances(g_prog, self.g_target_us[tiles].double(), self.relax_z[tiles].double(),
                                           t_s + dr.t0_s, self.device.g_max_us, self.prog_std_us[tiles].double())
            return g * self.present[tiles]
        return devices.drift_conductances(g_prog, self.nu[tiles].double(), t_s, dr.t0_s)

    @staticmethod
    def _tile_chunks(k: int, per: int) -> list[slice]:
        """Slices of whole tiles covering k tiles of ``per`` devices: about ``_CHUNK_DEVICES`` devices each,
        the unit of every pass over a layer's tiles. Each chunk but the last holds a multiple of 16 devices
        and the last at least 16: torch's CPU generator draws normals in blocks of 16 (redrawing a partial last
        block), so only such chunks draw exactly the values one draw over all k tiles would."""
        block = 16 // math.gcd(per, 16)  # tiles per whole number of 16-device blocks
        step = max(block, (_CHUNK_DEVICES // max(per, 1)) // block * block)
        if k <= step:
            return [slice(None)]
        bounds = [*range(0, k, step), k]
        if (bounds[-1] - bounds[-2]) * per < 16:
            del bounds[-2]
        return [slice(a, b) for a, b in zip(bounds, bounds[1:])]

    def _state_parts(self, t_s: float):
        """(mean conductance, effective pair matrices (K, rows, cols), read-noise variance or None) at t_s,
        computed a chunk of tiles at a time (``_tile_chunks``) so that the float64 temporaries of a large
        layer stay bounded; every tile's result is the same as in one pass."""
        chunks = self._tile_chunks(self.g_prog_us.shape[0], self.g_prog_us[0].numel())
        if len(chunks) == 1:
            g_sum, w, var = self._chunk_parts(t_s, slice(None))
            return float(g_sum / max(int(torch.count_nonzero(self.present)), 1)), w, var
        k = self.g_prog_us.shape[0]
        g_sum, w, var = 0.0, None, None
        for sl in chunks:
            part_sum, w_c, var_c = self._chunk_parts(t_s, sl)
            if w is None:
                w = w_c.new_empty((k, *w_c.shape[1:]))
                var = None if var_c is None else var_c.new_empty((k, *var_c.shape[1:]))
            w[sl] = w_c
            if var is not None:
                var[sl] = var_c
            g_sum += float(part_sum)
        return g_sum / max(int(torch.count_nonzero(self.present)), 1), w, var  # mean over present devices

    def _chunk_parts(self, t_s: float, tiles: slice):
        d = self.device
        g = self.conductances_at(t_s, tiles)
        present = self.present[tiles]
        if self.wire is not None:
            if g.device.type == "cpu":  # the numba solve
                from .wires import effective_conductance
            else:  # the torch solve on the tiles' device
                from .wires_torch import effective_conductance
            g_eff = torch.as_tensor(effective_conductance(g * 1e-6, self.wire.r_row_ohm,
                                                          self.wire.r_col_ohm)) * 1e6  # (k, rows, 2·cols) µS
        else:
            g_eff = g
        var = None
        if d.read_noise is not None:
            t0 = self.drift.t0_s if self.drift is not None else _DEFAULT_T0_S
            std = devices.read_noise_std_us(g, self.g_prog_us[tiles], d.read_noise, d.g_max_us, t_s, t0,
                                            d.t_read_s, d.read_noise_rel, d.read_noise_scale)
            std = std * present
            if self.wire is not None:
                atten = torch.where(g > 0, (g_eff / g.clamp(min=1e-30)).clamp(0.0, 1.0),
                                    torch.ones_like(g))
                std = std * atten
            var_dev = std ** 2
            var = var_dev[..., 0::2] + var_dev[..., 1::2]  # (k, rows, cols) µS²
        return g.sum(), pair_difference(g_eff), var

    def _readout(self, parts) -> torch.Tensor:
        """Global drift-compensation read (aihwkit GlobalDriftCompensation): one-hot inputs on every row,
        mean |output| over the tile, read noise included (one read from a generator fixed by ref_seed),
        a chunk of tiles at a time (on the CPU, the draws of one piece)."""
        _, w, var = parts
        gen = None if var is None else torch.Generator(device=w.device).manual_seed(self.ref_seed)
        out = w.new_empty(w.shape[0])
        for sl in self._tile_chunks(w.shape[0], w[0].numel()):
            read = w[sl].abs() if var is None else (
                torch.randn(w[sl].shape, generator=gen, dtype=w.dtype, device=w.device)
                .mul_(var[sl].sqrt()).add_(w[sl]).abs_())
            out[sl] = read.mean(dim=(1, 2))
        return out.clamp(min=1e-12)

    def forget_state(self) -> None:
        """Drop the cached state of the last time asked (its float64 effective matrices and variances); the
        next ``at_time`` computes it again."""
        self._cache = (None, None)

    def at_time(self, t_s: float) -> TileState:
        """The tiles t_s seconds after programming (see ``TileState``)."""
        if self._cache[0] == t_s:
            parts = self._cache[1]
        else:
            parts = self._state_parts(t_s)
            self._cache = (t_s, parts)
        mean_g, w, var = parts
        comp = self.drift is not None and self.drift.compensation == "global"
        alpha = self._reference / self._readout(parts) if comp else torch.ones(w.shape[0], dtype=torch.float64,
                                                                                device=w.device)
        return TileState(t_s=t_s, w_eff_us=w, read_var_us2=var, alpha=alpha, mean_g_us=mean_g)

    # ----------------------------------------------------------------- MVM

    @staticmethod
    def mvm(x: torch.Tensor, state: TileState, z: torch.Tensor | None = None) -> torch.Tensor:
        """Column outputs (K, N, cols) µS for normalized row inputs x (K, N, rows).

        ``z``: standard normals (K, N, cols) for the read noise (needed when the state has read noise).
        Independent Gaussian device noise per read makes each output Gaussian with variance
        Σ_i x_i² σ_ij², so it is drawn exactly at output level: y = x @ W + sqrt(x² @ σ²) · z.
        """
        x = x.to(state.w_eff_us.dtype)
        y = torch.bmm(x, state.w_eff_us)
        if state.read_var_us2 is not None:
            if z is None:
                raise ValueError("Tile.mvm: read noise is on; pass standard normals z")
            y = y + torch.bmm(x * x, state.read_var_us2).clamp(min=0).sqrt() * z.to(y.dtype)
        return y
