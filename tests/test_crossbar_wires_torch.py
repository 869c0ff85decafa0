"""The torch IR-drop solve (GPU path) equals wires.effective_conductance (CPU path) and an explicit nodal
solve, including unused rows and columns and ideal wires in one direction."""
import numpy as np
import pytest
import torch

from analogdiff.crossbar import wires, wires_torch


@pytest.mark.parametrize("r_row_ohm,r_col_ohm", [(0.35, 0.35), (0.0, 0.5), (0.5, 0.0), (2.0, 1.0), (0.0, 0.0)])
def test_equals_the_numba_solve(r_row_ohm, r_col_ohm):
    g = np.random.default_rng(0).uniform(0, 25e-6, (2, 12, 10))  # (K, rows, cols) S
    g[0, 3, :] = 0.0  # an unused row inside the array
    g[0, 11, :] = 0.0  # and at its end
    g[1, :, 9] = 0.0  # an unused column
    ref = wires.effective_conductance(g, r_row_ohm, r_col_ohm)
    got = wires_torch.effective_conductance(torch.from_numpy(g), r_row_ohm, r_col_ohm).numpy()
    assert np.abs(got - ref).max() <= 1e-9 * np.abs(ref).max()


def test_equals_the_sparse_nodal_solve_with_strong_ir_drop():
    g = np.random.default_rng(1).uniform(0, 1e-3, (9, 7))  # 1 mS devices on 5 Ω wires: large IR drop
    v = np.random.default_rng(2).normal(size=(4, 9))
    ref = wires.nodal_column_currents(g, v, 5.0, 5.0)
    got = v @ wires_torch.effective_conductance(torch.from_numpy(g), 5.0, 5.0).numpy()
    assert np.allclose(got, ref, rtol=1e-9, atol=1e-15)
    assert np.abs(got - v @ g).max() > 0.05 * np.abs(v @ g).max()  # the drop is not negligible here


def test_float32_close_and_bad_input():
    g = torch.from_numpy(np.random.default_rng(3).uniform(0, 25e-6, (16, 24)))
    ref = wires_torch.effective_conductance(g, 0.35, 0.35)
    got = wires_torch.effective_conductance(g, 0.35, 0.35, dtype=torch.float32)
    assert torch.allclose(got, ref, rtol=0, atol=1e-5 * float(ref.abs().max()))
    with pytest.raises(ValueError, match="ohm"):
        wires_torch.effective_conductance(g, -1.0, 0.35)
