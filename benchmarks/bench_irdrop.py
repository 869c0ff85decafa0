"""Time the exact IR-drop solve (``analogdiff.crossbar.wires.effective_conductance``) for one tile.

    python benchmarks/bench_irdrop.py [--sizes 256 512] [--repeats 3]

For each square size it prints the best of ``--repeats`` runs as wall and CPU seconds (CPU is the fairer
number on a shared machine: the solve runs on one core), then one JSON line. The target from issue 4 is
<= 0.5 s for 256×256 on one core. Also prints, for scale, one sparse LU (scipy ``splu``) factorisation
of the same tile's full nodal matrix — a direct solver would still need ``rows`` solves after it.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _best(fn, repeats: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def _splu_factor(g: np.ndarray, r_row_ohm: float, r_col_ohm: float) -> None:
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    rows, cols = g.shape
    n = rows * cols
    cell = np.arange(n).reshape(rows, cols)
    a = np.concatenate([cell.ravel(), cell[:, :-1].ravel(), n + cell[:-1].ravel()])
    b = np.concatenate([n + cell.ravel(), cell[:, 1:].ravel(), n + cell[1:].ravel()])
    w = np.concatenate([g.ravel(), np.full(rows * (cols - 1), 1 / r_row_ohm),
                        np.full((rows - 1) * cols, 1 / r_col_ohm)])
    ends = np.concatenate([cell[:, 0], n + cell[-1]])                  # to source / amplifier
    lap = sp.coo_matrix((np.concatenate([w, w, -w, -w, np.full(rows, 1 / r_row_ohm),
                                         np.full(cols, 1 / r_col_ohm)]),
                         (np.concatenate([a, b, a, b, ends]), np.concatenate([a, b, b, a, ends]))),
                        shape=(2 * n, 2 * n)).tocsc()
    spla.splu(lap, permc_spec="MMD_AT_PLUS_A")


def main(argv: list[str] | None = None) -> int:
    from analogdiff.crossbar.wires import effective_conductance

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    r_row_ohm = r_col_ohm = 1.0
    result = {"r_row_ohm": r_row_ohm, "r_col_ohm": r_col_ohm, "g_range_s": [1e-7, 2.5e-5]}
    effective_conductance(np.full((4, 4), 1e-6), 1.0, 1.0)             # warm caches and imports
    for n in args.sizes:
        g = np.random.default_rng(0).uniform(1e-7, 2.5e-5, (n, n))    # (n, n) S, PCM-like range
        wall, cpu = _best(lambda: effective_conductance(g, r_row_ohm, r_col_ohm), args.repeats)
        lu_wall, lu_cpu = _best(lambda: _splu_factor(g, r_row_ohm, r_col_ohm), 1)
        print(f"effective_conductance {n}x{n}: {wall:.3f} s wall, {cpu:.3f} s CPU "
              f"(best of {args.repeats}); scipy splu factorisation alone: {lu_wall:.3f} s wall, "
              f"{lu_cpu:.3f} s CPU", flush=True)
        result[f"effective_conductance_{n}_s"] = wall
        result[f"effective_conductance_{n}_cpu_s"] = cpu
        result[f"splu_factor_{n}_s"] = lu_wall
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
