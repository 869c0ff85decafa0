"""Exact IR drop (analogdiff.crossbar.wires) against ngspice, hand computation and circuit invariants."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from analogdiff.crossbar import spice
from analogdiff.crossbar.wires import column_currents, effective_conductance, nodal_column_currents

needs_ngspice = pytest.mark.skipif(
    shutil.which("ngspice") is None,
    reason="ngspice is not installed (CI installs it; locally: apt-get install ngspice)")


def _random_array(rows, cols, seed, g_max_s=1e-4, off=0.0):
    rng = np.random.default_rng(seed)
    g = rng.uniform(1e-6, g_max_s, (rows, cols))                       # (rows, cols) S
    g[rng.random((rows, cols)) < off] = 0.0
    return g, rng.uniform(0.0, 0.2, (5, rows))                         # (5, rows) V


# --------------------------------------------------------------------------- ngspice

SHIPPED = spice.load_cases()


@needs_ngspice
@pytest.mark.parametrize("case", SHIPPED["cases"], ids=[c["name"] for c in SHIPPED["cases"]])
def test_matches_ngspice_on_shipped_cases(case):
    """Non-square, unequal row/column wires, batched inputs, stuck-off devices, ideal wires, 64×64."""
    (row,) = spice.validate([case], tolerance=SHIPPED["tolerance"])
    assert row["max_rel_error"] <= 1e-6, row
    assert row["max_ir_drop"] > 0.1, "the case must be far from the ideal limit to test anything"


@needs_ngspice
def test_ngspice_torch_float32_inputs_and_unbatched_vector():
    torch = pytest.importorskip("torch")
    g, v = _random_array(6, 9, seed=11, g_max_s=1e-3)
    v32 = torch.tensor(v[0], dtype=torch.float32)
    ref = spice.run_ngspice(spice.write_netlist(g, v32.double().numpy(), 7.0, 1.5))[0]  # (cols,) A
    ours = column_currents(torch.tensor(g), v32, 7.0, 1.5)
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float32 and ours.shape == (9,)
    np.testing.assert_allclose(ours.double().numpy(), ref, rtol=1e-6)          # float32 output


def test_netlist_merges_ideal_wires_and_drops_off_devices():
    g = np.array([[1e-4, 0.0], [2e-4, 3e-4]])
    deck = spice.write_netlist(g, np.array([0.1, 0.2]), 0.0, 4.0)
    assert "\nRW" not in deck and "\nRD0_1 " not in deck
    assert "RD0_0 s0 c0_0 10000.0" in deck and "RC1_1 c1_1 a1 4.0" in deck
    deck = spice.write_netlist(g, np.array([0.1, 0.2]), 4.0, 0.0)
    assert "\nRC" not in deck and "RD1_0 r1_0 a0 5000.0" in deck


def test_missing_ngspice_is_reported_clearly():
    deck = spice.write_netlist(np.full((2, 2), 1e-5), np.ones(2), 1.0, 1.0)
    with pytest.raises(spice.NgspiceNotFoundError, match="ngspice not found.*install"):
        spice.run_ngspice(deck, ngspice="ngspice-that-does-not-exist")


# --------------------------------------------------------------------------- hand computation

def test_one_cell_is_three_resistors_in_series():
    g, r_row, r_col, v = 2e-4, 30.0, 70.0, 0.3
    i = column_currents(np.array([[g]]), np.array([v]), r_row, r_col)
    assert i[0] == pytest.approx(v / (r_row + 1 / g + r_col), rel=1e-14)


def test_one_row_two_columns_by_hand():
    g0, g1, rr, rc, v = 1e-3, 4e-4, 50.0, 20.0, 0.25
    a0 = 1 / (1 / g0 + rc)                       # branch at row node 0: device 0 and its column segment
    b1 = 1 / (rr + 1 / g1 + rc)                  # branch at row node 0 through the second row segment
    v_node0 = v / (1 + rr * (a0 + b1))           # divider: first row segment against both branches
    expected = [v_node0 * a0, v_node0 * b1]
    got = column_currents(np.array([[g0, g1]]), np.array([v]), rr, rc)
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_two_rows_one_column_by_hand():
    g0, g1, rr, rc, v0, v1 = 1e-3, 4e-4, 50.0, 20.0, 0.25, 0.1
    s0, s1 = rr + 1 / g0, rr + 1 / g1            # each row: source, segment, device in series
    # Row 0 reaches the last column node through one more column segment: Thevenin (v0, s0 + rc).
    # Millman at the last column node, which has its own segment to the amplifier at 0 V:
    c1 = (v0 / (s0 + rc) + v1 / s1) / (1 / (s0 + rc) + 1 / s1 + 1 / rc)
    got = column_currents(np.array([[g0], [g1]]), np.array([v0, v1]), rr, rc)
    assert got[0] == pytest.approx(c1 / rc, rel=1e-13)


# --------------------------------------------------------------------------- consistency and invariants

@pytest.mark.parametrize("rows,cols,r_row,r_col", [
    (1, 1, 2.0, 3.0), (1, 6, 2.0, 3.0), (6, 1, 2.0, 3.0), (7, 5, 2.5, 10.0), (16, 33, 20.0, 5.0),
    (33, 16, 0.0, 7.0), (12, 9, 7.0, 0.0), (40, 40, 1e3, 1e-2),
    (100, 90, 2.0, 1.0)])  # large enough for the batched-LAPACK merges at the top (> _SMALL_NODES nodes)
def test_effective_matrix_matches_independent_sparse_solve(rows, cols, r_row, r_col):
    """Box-merging Schur complement vs one sparse LU of the full nodal matrix (separate code)."""
    g, v = _random_array(rows, cols, seed=rows * 100 + cols, off=0.1)
    g_eff = effective_conductance(g, r_row, r_col)                     # (rows, cols) S
    ref = nodal_column_currents(g, v, r_row, r_col)                    # (5, cols) A
    np.testing.assert_allclose(v @ g_eff, ref, rtol=1e-11, atol=1e-15 * np.abs(ref).max())
    np.testing.assert_array_equal(column_currents(g, v, r_row, r_col), v @ g_eff)


@pytest.mark.parametrize("r_row,r_col", [(2.0, 1.0), (0.0, 3.0), (3.0, 0.0)])
def test_padding_rows_and_columns_are_cut_off_exactly(r_row, r_col):
    """A partly used tile: no devices in the last rows and columns. The solve cuts them off (the column
    wires below the last used row become one longer segment); the sparse solve keeps the whole array."""
    g, v = _random_array(24, 20, seed=11, off=0.1)
    g[17:] = 0.0
    g[:, 13:] = 0.0
    g_eff = effective_conductance(g, r_row, r_col)
    ref = nodal_column_currents(g, v, r_row, r_col)
    np.testing.assert_allclose(v @ g_eff, ref, rtol=1e-11, atol=1e-15 * np.abs(ref).max())
    assert not g_eff[17:].any() and not g_eff[:, 13:].any()
    np.testing.assert_array_equal(effective_conductance(np.zeros((4, 3)), r_row, r_col), np.zeros((4, 3)))


def test_schur_update_is_the_direct_formula_and_exactly_symmetric():
    """The large merges' elimination (LAPACK potrf, BLAS trsm and syrk, called from compiled code) against
    s − K_pe K_ee⁻¹ K_peᵀ by numpy's LU solve, on Laplacian-like blocks with wire/device contrast 1e6."""
    from analogdiff.crossbar.wires import _schur_update

    rng = np.random.default_rng(7)
    n_box, p, m = 3, 70, 40
    lap = -rng.uniform(0.0, 1e-6, (n_box, p + m, p + m))               # devices, S
    lap[:, np.arange(p + m - 1), np.arange(1, p + m)] -= 2.86          # a wire through every node, S
    lap = np.triu(lap, 1)
    lap = lap + lap.transpose(0, 2, 1)
    lap[:, np.arange(p + m), np.arange(p + m)] = -lap.sum(axis=2) + 1e-3  # a path to ground: definite
    s, k_pe, k_ee = lap[:, :p, :p].copy(), lap[:, :p, p:].copy(), lap[:, p:, p:].copy()
    ref = s - k_pe @ np.linalg.solve(k_ee, k_pe.transpose(0, 2, 1))
    _schur_update(s, k_ee, k_pe)
    np.testing.assert_allclose(s, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_array_equal(s, s.transpose(0, 2, 1))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rows,cols", [(20, 12), (100, 90)])  # (100, 90): the compiled BLAS merges too
def test_a_batch_of_arrays_equals_one_call_per_array(threads, rows, cols):
    """Bit for bit, whether the arrays of a batch are solved one after the other or on threads."""
    numba = pytest.importorskip("numba")
    g = np.stack([_random_array(rows, cols, seed=s, off=0.1)[0] for s in range(3)])  # (3, rows, cols) S
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        batch = effective_conductance(g, 2.0, 1.0)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(batch, np.stack([effective_conductance(gk, 2.0, 1.0) for gk in g]))


def test_batch_shapes_are_kept():
    g, v = _random_array(8, 3, seed=3)
    out = column_currents(g, v.reshape(5, 1, 8).repeat(2, axis=1), 1.0, 2.0)
    assert out.shape == (5, 2, 3)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_ideal_wires_give_the_ideal_product_exactly():
    g, v = _random_array(9, 7, seed=4)
    np.testing.assert_array_equal(effective_conductance(g, 0.0, 0.0), g)
    np.testing.assert_array_equal(column_currents(g, v, 0, 0), v @ g)


@pytest.mark.parametrize("r_row,r_col", [(1e-9, 1e-9), (0.0, 1e-9), (1e-9, 0.0)])
def test_vanishing_wires_approach_the_ideal_product(r_row, r_col):
    g, v = _random_array(20, 30, seed=5)
    np.testing.assert_allclose(column_currents(g, v, r_row, r_col), v @ g, rtol=1e-8)


@pytest.mark.parametrize("r_row,r_col", [(0.0, 5.0), (5.0, 0.0)])
def test_one_ideal_wire_direction_is_the_limit_of_small_resistance(r_row, r_col):
    g, v = _random_array(15, 11, seed=6, off=0.2)
    exact = column_currents(g, v, r_row, r_col)
    near = column_currents(g, v, r_row or 1e-10, r_col or 1e-10)
    np.testing.assert_allclose(near, exact, rtol=1e-8)


def test_wires_only_lower_currents_for_positive_inputs():
    g, v = _random_array(24, 18, seed=7, off=0.1)
    ideal = v @ g
    for r_row, r_col in [(1.0, 1.0), (30.0, 0.0), (0.0, 30.0), (100.0, 5.0)]:
        i = column_currents(g, v, r_row, r_col)
        assert np.all(i >= 0) and np.all(i <= ideal * (1 + 1e-12))
        assert np.all(i[ideal > 0] < ideal[ideal > 0])
    assert np.all(effective_conductance(g, 10.0, 10.0) > 0)   # every row reaches every column


def test_reciprocity_swaps_sources_and_amplifiers():
    """A linear resistive network is reciprocal: turning the array by 180° and transposing it (sources
    where the amplifiers were, row wires where the column wires were) transposes the transfer."""
    g, _ = _random_array(13, 8, seed=8, off=0.1)
    g_eff = effective_conductance(g, 3.0, 11.0)
    turned = effective_conductance(g[::-1, ::-1].T, 11.0, 3.0)         # (cols, rows)
    np.testing.assert_allclose(turned, g_eff[::-1, ::-1].T, rtol=1e-12)


def test_scaling_conductances_and_resistances_together():
    g, _ = _random_array(10, 12, seed=9)
    np.testing.assert_allclose(effective_conductance(1e3 * g, 2e-3, 5e-3),
                               1e3 * effective_conductance(g, 2.0, 5.0), rtol=1e-12)


def test_stuck_off_rows_and_columns_carry_nothing():
    g, v = _random_array(6, 5, seed=10)
    g[2, :] = 0.0
    g[:, 3] = 0.0
    g_eff = effective_conductance(g, 4.0, 4.0)
    assert np.all(g_eff[2] == 0) and np.all(g_eff[:, 3] == 0)
    assert np.all(effective_conductance(np.zeros((3, 4)), 1.0, 1.0) == 0)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    g, v = _random_array(9, 6, seed=12)
    g_t, v_t = torch.tensor(g, dtype=torch.float32), torch.tensor(v, dtype=torch.float64)
    g_eff = effective_conductance(g_t, 2.0, 3.0)
    assert isinstance(g_eff, torch.Tensor) and g_eff.dtype == torch.float32
    out = column_currents(g, v_t, 2.0, 3.0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), column_currents(g, v, 2.0, 3.0), rtol=1e-15)
    assert isinstance(column_currents(g_t, v, 2.0, 3.0), np.ndarray)   # kind follows v_rows


@pytest.mark.parametrize("call,name", [
    (lambda g, v: column_currents(g, v, -1.0, 1.0), "r_row_ohm"),
    (lambda g, v: column_currents(g, v, 1.0, float("nan")), "r_col_ohm"),
    (lambda g, v: column_currents(-g, v, 1.0, 1.0), "g_s"),
    (lambda g, v: column_currents(np.where(g > 5e-5, np.nan, g), v, 1.0, 1.0), "g_s"),
    (lambda g, v: column_currents(g, v[:, :-1], 1.0, 1.0), "v_rows"),
    (lambda g, v: column_currents(g, np.where(v > 0.1, np.inf, v), 1.0, 1.0), "v_rows"),
    (lambda g, v: effective_conductance(g[0], 1.0, 1.0), "g_s"),
    (lambda g, v: effective_conductance(g, np.ones(2), 1.0), "r_row_ohm"),
])
def test_bad_input_is_one_line_naming_the_argument(call, name):
    g, v = _random_array(4, 3, seed=13)
    with pytest.raises(ValueError, match=name) as err:
        call(g, v)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- CLI

def test_cli_json_on_a_small_case_file(tmp_path, capsys):
    from analogdiff.cli import main

    if shutil.which("ngspice") is None:
        pytest.skip("ngspice is not installed (CI installs it; locally: apt-get install ngspice)")
    case = dict(SHIPPED["cases"][0], name="tiny", rows=3, cols=4, batch=2)
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"tolerance": 1e-6, "cases": [case]}))
    assert main(["validate-circuits", "--cases", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and out["cases"][0]["max_rel_error"] <= 1e-6
    assert {"rows", "cols", "r_row_ohm", "r_col_ohm", "batch", "ngspice_s", "ours_s"} <= set(out["cases"][0])


def test_cli_exit_codes(tmp_path, monkeypatch, capsys):
    from analogdiff.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cases": [{"name": "x", "rows": 2}]}))
    assert main(["validate-circuits", "--cases", str(bad)]) == 2
    assert "missing" in capsys.readouterr().err
    failing = dict(SHIPPED["cases"][0], max_rel_error=1.0, max_ir_drop=0.1, ngspice_s=0.0, ours_s=0.0,
                   passed=False)
    monkeypatch.setattr(spice, "validate", lambda cases, tolerance: [failing])
    assert main(["validate-circuits"]) == 1
    assert "NO" in capsys.readouterr().out


def test_the_solve_limits_scipys_blas_too():
    """The large merges call SciPy's BLAS (its own OpenBLAS, apart from NumPy's). The solve's one-thread
    limit must reach it from the first solve in a process on, or two tiles' threads each start BLAS threads of
    their own. Checked in a fresh interpreter, where nothing has loaded SciPy's BLAS yet."""
    pytest.importorskip("threadpoolctl")
    code = ("import threadpoolctl\n"
            "from analogdiff.crossbar import wires\n"
            "with wires._blas_one_thread():\n"
            "    wires._lapack_blas()\n"  # what the first large merge does
            "    print([i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout.strip())  # the list of thread counts the child printed
    assert counts and all(c == 1 for c in counts)


def test_the_compiled_blas_calls_survive_numba_s_cache(tmp_path):
    """The compiled elimination receives SciPy's BLAS/LAPACK entry points as arguments. Their addresses differ
    from process to process, so a cached compilation must not have one baked in: two fresh interpreters
    sharing one numba cache (the first compiles and saves, the second loads) must both get it right."""
    code = ("import numpy as np\n"
            "from analogdiff.crossbar.wires import _schur_update\n"
            "rng = np.random.default_rng(0)\n"
            "a = rng.standard_normal((2, 20, 20)); k_ee = a @ a.transpose(0, 2, 1) + 20 * np.eye(20)\n"
            "k_pe = rng.standard_normal((2, 50, 20)); s = rng.standard_normal((2, 50, 50))\n"
            "s = s + s.transpose(0, 2, 1)\n"
            "ref = s - k_pe @ np.linalg.solve(k_ee, k_pe.transpose(0, 2, 1))\n"
            "_schur_update(s, k_ee, k_pe)\n"
            "print(float(np.abs(s - ref).max() / np.abs(ref).max()))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr
        assert float(out.stdout.strip()) < 1e-13
    assert any(tmp_path.rglob("*_schur_update_compiled*.nbc"))  # the second run had a cache to load
