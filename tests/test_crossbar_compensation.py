"""IR-drop compensation (crossbar/compensation.py): the fit, its effect against the exact IR-drop solver,
exact recovery where a per-column affine correction is exact, determinism and save/load."""
import numpy as np
import pytest
import torch
from torch import nn

import analogdiff as ad
from analogdiff.crossbar import compensation
from analogdiff.crossbar.layers import analogize
from analogdiff.crossbar.mapping import interleave_pairs, map_weights, pair_difference
from analogdiff.crossbar.state import load_programmed, save_programmed
from analogdiff.crossbar.wires import effective_conductance

# ecram (200 µS devices, 2 Ω per cell) with every effect but the wires off, 64×64 tiles
WIRES_ONLY = {"device.prog_noise": None, "device.read_noise": None, "dac": None, "adc": None,
              "tile.rows": 64, "tile.cols": 64}
COMP = {"tile.ir_compensation": "per-column-affine"}


def _linear(n_in, n_out, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out).eval().requires_grad_(False)


def _x(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_fit_affine_recovers_known_gain_and_offset():
    y_true = _x(200, 5, 1).double()
    a = torch.tensor([0.5, 2.0, 1.0, 0.8, 3.0], dtype=torch.float64)
    b = torch.tensor([0.1, -0.2, 0.0, 1.5, -3.0], dtype=torch.float64)
    meas = (y_true - b) / a                      # y_true = a·meas + b exactly
    gain, offset = compensation.fit_affine(meas, y_true)
    assert torch.allclose(gain, a, rtol=1e-12) and torch.allclose(offset, b, atol=1e-12)
    # a column that never varies carries no information: identity
    gain, offset = compensation.fit_affine(torch.zeros(10, 2), torch.ones(10, 2))
    assert gain.tolist() == [1.0, 1.0] and offset.tolist() == [0.0, 0.0]


def test_one_input_row_is_recovered_exactly_and_gain_is_the_exact_solvers():
    """One row: every column's output is x · G_eff,j, an exact per-column scale of x · G_j, so the fitted
    gain must be G_j / G_eff,j of the exact nodal solve, and the compensated layer the ideal one."""
    hw = ad.load_hardware("ecram", overrides={**WIRES_ONLY, **COMP, "wire.r_row_ohm": 50.0,
                                              "wire.r_col_ohm": 50.0})
    lin = _linear(1, 12)
    x = _x(64, 1, 2)
    am = analogize(lin, hw, seed=0, calibration=_x(256, 1, 3))
    # by hand from the exact solver: the 64×64 tile, its first row holding the 12 target pairs
    d = hw.device
    cmap = map_weights(lin.weight, d.g_min_us, d.g_max_us, hw.tile.weight_scale)
    g = torch.zeros(1, 64, 128, dtype=torch.float64)                    # (1, rows, 2·cols) µS
    g[0, 0, :24] = interleave_pairs(cmap.g_pos_us[0], cmap.g_neg_us[0])[0]
    g_eff = torch.as_tensor(effective_conductance(g * 1e-6, 50.0, 50.0)) * 1e6
    w, w_eff = pair_difference(g)[0, 0, :12], pair_difference(g_eff)[0, 0, :12]    # (12,) µS
    assert (w_eff / w - 1).abs().max() > 1e-3                           # the wires matter here
    assert torch.allclose(am.ir_comp["gain"][0], (w / w_eff).double(), rtol=1e-6)
    assert am.ir_comp["offset"].abs().max() < 1e-6 * w.abs().max()
    assert compensation.relative_error(am(x), lin(x)) < 1e-6
    off = analogize(lin, ad.load_hardware(hw, overrides={"tile.ir_compensation": None}), seed=0,
                    calibration=_x(256, 1, 3))
    assert compensation.relative_error(off(x), lin(x)) > 1e-3


def test_compensation_reduces_the_error_of_the_exact_ir_drop():
    """A 128×64 layer on 64×64 tiles of ecram: uncompensated, the output error against the ideal MVM is
    that of the exact solver's effective matrix; compensated it is smaller, on inputs not used to fit."""
    lin = _linear(128, 64)
    x = _x(256, 128, 4)
    calib = _x(1024, 128, 5)
    hw = ad.load_hardware("ecram", overrides=WIRES_ONLY)
    off = analogize(lin, hw, seed=0, calibration=calib)
    on = analogize(lin, ad.load_hardware(hw, overrides=COMP), seed=0, calibration=calib)
    ideal = lin(x)
    # the uncompensated layer is x @ (effective matrix of the exact solve), tile by tile
    d = hw.device
    cmap = map_weights(lin.weight, d.g_min_us, d.g_max_us, hw.tile.weight_scale)
    g = interleave_pairs(cmap.g_pos_us, cmap.g_neg_us)               # (1, 128, 128) µS
    g_eff = torch.cat([torch.as_tensor(effective_conductance(g[:, r:r + 64] * 1e-6, 2.0, 2.0)) * 1e6
                       for r in (0, 64)], dim=1)
    w_eff = pair_difference(g_eff)[0] * cmap.weight_per_us           # (128, 64) weight units
    by_solver = x.double() @ w_eff + lin.bias.double()
    err_off, err_on = (compensation.relative_error(m(x), ideal) for m in (off, on))
    assert compensation.relative_error(off(x), by_solver) < 1e-5
    assert err_off == pytest.approx(compensation.relative_error(by_solver, ideal), rel=1e-4)
    assert err_off > 0.1 and err_on < 0.7 * err_off


def test_deterministic_and_saved_bit_for_bit(tmp_path):
    hw = ad.load_hardware("ecram", overrides={"tile.rows": 32, "tile.cols": 32, **COMP})
    lin = _linear(48, 40)
    x, calib = _x(32, 48, 6), _x(300, 48, 7)
    a, b = (analogize(lin, hw, seed=3, calibration=calib) for _ in range(2))
    assert torch.equal(a.ir_comp["gain"], b.ir_comp["gain"])
    assert torch.equal(a(x), b(x))
    model = nn.Sequential(lin)
    am = analogize(model, hw, seed=3, calibration=calib)
    save_programmed(am, tmp_path / "m")
    back = load_programmed(tmp_path / "m", model)
    assert torch.equal(back[0].ir_comp["offset"], am[0].ir_comp["offset"])
    ad.set_drift_time(am, 0.0)
    assert torch.equal(back(x), am(x))


def test_off_has_no_correction_and_the_field_is_checked():
    am = analogize(_linear(8, 8), ad.load_hardware("ecram", overrides=WIRES_ONLY), seed=0)
    assert am.ir_comp is None and am._ir_offset is None
    with pytest.raises(ad.ConfigError, match=r"tile\.ir_compensation: 'per-row' is not one of "
                       r"'per-column-affine' \(or none: off\)"):
        ad.load_hardware("ecram", overrides={"tile.ir_compensation": "per-row"})
    on = ad.load_hardware("ecram", overrides=COMP)
    assert ad.load_hardware(on, overrides={"tile.ir_compensation": None}).tile.ir_compensation is None
