"""Is a card wire-dominated? The relative MVM error from IR drop alone on one representative tile of the card.

A tile of the card's geometry is programmed with Gaussian weights (seed 0) mapped per column onto the card's
conductance window (g = g_min + (g_max − g_min) · |w| / max|w| on the device of the weight's sign, g_min on the
other: mean g_min + 0.125 · window, the cost model's default ``tile.mean_g_fraction``), and read with Gaussian
inputs clipped at 3.2 σ (mean |x| / full scale ≈ 0.25, ``tile.input_activity``) at ``device.read_voltage_v``.
The exact nodal solution (:func:`analogdiff.crossbar.wires.effective_conductance`, checked against ngspice by
``validate-circuits``) gives the outputs with wires. IR drop is first a gain loss that chips calibrate away
per column (HERMES's local digital applies a per-column affine scale, Le Gallo et al. 2023), so the error
counted is what the best per-column gain leaves: ‖s_j · y_wires − y_ideal‖ / ‖y_ideal‖ over the batch with
s_j fitted by least squares on the same inputs (a lower bound for any per-column gain calibration); no noise.
The raw error (no correction) is returned beside it. The device layout is the simulator's (``mapping.interleave_pairs``: a pair on
adjacent columns sharing the row wire); with ``tile.mapping = "differential-rows"`` the pair sits on adjacent
rows driven ±v (NeuRRAM). Results are cached per (geometry, window, voltage, wires).

    err = ir_drop_error(load_hardware("ecram"))        # 0.37 after per-column gains (0.88 raw)
"""
from __future__ import annotations

import functools

import numpy as np

from analogdiff.config import Hardware

IR_DROP_ERROR_LIMIT = 0.10
"""Relative MVM error from IR drop alone above which a card is wire-dominated: 10 %, the error of a ≈ 3-bit
computation (2^-3.3), far above the ≈ 2 % MVM error the shipped chips report (HERMES 1.94 % with an 8-bit
PWM input, Khaddam-Aljameh et al., JSSC 2022) — a stated threshold, not a published one."""
BATCH = 32


@functools.lru_cache(maxsize=64)
def _tile_error(rows: int, cols: int, pair_rows: bool, g_min_us: float, g_max_us: float, v_read_v: float,
                r_row_ohm: float, r_col_ohm: float) -> tuple[float, float]:
    from .wires import effective_conductance

    rng = np.random.default_rng(0)
    w = rng.standard_normal((rows, cols))                                   # (rows, cols) weights
    u = w / np.abs(w).max(axis=0, keepdims=True)                            # per-column scale, |u| ≤ 1
    window = g_max_us - g_min_us
    g_pos = (g_min_us + window * np.clip(u, 0.0, None)) * 1e-6              # S
    g_neg = (g_min_us + window * np.clip(-u, 0.0, None)) * 1e-6
    x = np.clip(rng.standard_normal((BATCH, rows)) / 3.2, -1.0, 1.0) * v_read_v   # (B, rows) V
    if pair_rows:   # (2·rows, cols): g+ on row 2i driven +v, g− on row 2i + 1 driven −v
        g = np.stack((g_pos, g_neg), axis=1).reshape(2 * rows, cols)
        v = np.stack((x, -x), axis=2).reshape(BATCH, 2 * rows)
        y_ideal = v @ g
        y_wire = v @ effective_conductance(g, r_row_ohm, r_col_ohm)
    else:           # (rows, 2·cols): g+ on column 2j, g− on column 2j + 1, output I+ − I−
        g = np.stack((g_pos, g_neg), axis=2).reshape(rows, 2 * cols)
        g_eff = effective_conductance(g, r_row_ohm, r_col_ohm)
        y_ideal = x @ (g[:, 0::2] - g[:, 1::2])
        y_wire = x @ (g_eff[:, 0::2] - g_eff[:, 1::2])
    gain = (y_wire * y_ideal).sum(axis=0) / (y_wire * y_wire).sum(axis=0)     # (cols,) least-squares gains
    norm = np.linalg.norm(y_ideal)
    return float(np.linalg.norm(gain * y_wire - y_ideal) / norm), float(np.linalg.norm(y_wire - y_ideal) / norm)


def ir_drop_errors(hw: Hardware) -> tuple[float, float] | None:
    """(error after per-column gains, raw error) of IR drop alone on one tile of ``hw``: (0, 0) without wires,
    None for a GPU card."""
    if hw.kind != "analog":
        return None
    if hw.wire is None or (hw.wire.r_row_ohm == 0 and hw.wire.r_col_ohm == 0):
        return 0.0, 0.0
    t, d = hw.tile, hw.device
    return _tile_error(t.rows, t.cols, t.mapping == "differential-rows", d.g_min_us, d.g_max_us,
                       d.read_voltage_v, hw.wire.r_row_ohm, hw.wire.r_col_ohm)


def ir_drop_error(hw: Hardware) -> float | None:
    """Relative MVM error from IR drop alone on one tile of ``hw`` after per-column gains (None: a GPU card)."""
    errs = ir_drop_errors(hw)
    return None if errs is None else errs[0]


def wire_warning(hw: Hardware) -> str | None:
    """One line naming the card and the figure when IR drop alone exceeds ``IR_DROP_ERROR_LIMIT``, else None."""
    err = ir_drop_error(hw)
    if err is None or err <= IR_DROP_ERROR_LIMIT:
        return None
    t, w = hw.tile, hw.wire
    rows = 2 * t.rows if t.mapping == "differential-rows" else t.rows
    return (f"warning: {hw.name} is wire-dominated: IR drop alone leaves {err:.2f} relative MVM error after "
            f"per-column gain correction on its {rows}x{t.cols}-cell tile (wire {w.r_row_ohm:g}/{w.r_col_ohm:g} ohm per cell, g_max "
            f"{hw.device.g_max_us:g} uS; limit {IR_DROP_ERROR_LIMIT:g}, analogdiff.crossbar.wire_check): its "
            f"accuracy is set by the wires")
