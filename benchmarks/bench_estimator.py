"""Layer evaluations per second of the analog cost model's numba kernel and its NumPy twin, in one run.

A layer evaluation is one (design point, weight-matrix kind) pair of ``kernels.layer_kernel``: tiling, the
conversion counts, every energy term and the MVM time. The sweep prices ``--points`` design points of a
card (ADC bits, DAC bits, tile size and read voltage varied together) for one model shape's layer list,
the way ``estimate_many`` does. Both implementations run on the same inputs in this process, on one core
(numba without ``parallel``; NumPy threads pinned to 1); the twin is fully vectorized over (points, layers).
Their outputs are compared (max relative difference) before timing. Last line: one JSON object.

    .venv/bin/python benchmarks/bench_estimator.py [--points N] [--shape llada-8b] [--card rram-wan2022]
"""
from __future__ import annotations

import argparse
import json
import os
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

from analogdiff.config import load_hardware  # noqa: E402
from analogdiff.energy import Autoregressive, load_shape, schedule_work  # noqa: E402
from analogdiff.energy import kernels as K  # noqa: E402
from analogdiff.energy.analog import design_points, layer_arrays  # noqa: E402


def sweep(card: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    hw = load_hardware(card)
    return design_points(hw, {
        "adc.bits": rng.integers(3, 11, n), "dac.bits": rng.integers(2, 9, n),
        "tile.rows": rng.choice([64, 128, 256, 512], n), "tile.cols": rng.choice([64, 128, 256, 512], n),
        "device.read_voltage_v": rng.uniform(0.05, 0.4, n)})


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20000, help="design points (default 20000)")
    ap.add_argument("--shape", default="llada-8b")
    ap.add_argument("--card", default="rram-wan2022", help="analog card swept (default: bit-serial NeuRRAM)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    shape = load_shape(args.shape)
    la = layer_arrays(shape, schedule_work(Autoregressive(seq_len=1024)))
    q = sweep(args.card, args.points)
    ins = (la.in_f, la.out_f, la.copies, la.mvms, la.abs_x, la.x2, la.g_frac, q)
    n_evals = q.shape[0] * la.in_f.shape[0]

    def run_numba():
        acc = np.zeros((q.shape[0], K.N_ACC))
        t_lat, t_ii = np.zeros((q.shape[0], la.in_f.shape[0])), np.zeros((q.shape[0], la.in_f.shape[0]))
        K.layer_kernel(*ins, acc, t_lat, t_ii)
        return acc, t_lat, t_ii

    t0 = time.perf_counter()
    a_nb = run_numba()                                   # first call: JIT compile or cache load
    first_call_s = time.perf_counter() - t0
    a_np = K.layer_kernel_np(*ins)
    rel = max(float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300))) for x, y in zip(a_nb, a_np))

    t_nb = best_of(run_numba, args.repeats)
    t_np = best_of(lambda: K.layer_kernel_np(*ins), args.repeats)
    rate_nb, rate_np = n_evals / t_nb, n_evals / t_np
    print(f"shape {args.shape} ({la.in_f.shape[0]} layer kinds), card {args.card}, {q.shape[0]:,} design points "
          f"→ {n_evals:,} layer evaluations per call; best of {args.repeats}")
    print(f"  numba kernel : {t_nb * 1e3:9.2f} ms   {rate_nb:12.4g} layer-evals/s   (first call {first_call_s:.2f} s)")
    print(f"  NumPy twin   : {t_np * 1e3:9.2f} ms   {rate_np:12.4g} layer-evals/s")
    print(f"  speed-up     : {rate_nb / rate_np:.1f}×   max relative difference {rel:.2e}")
    print(f"  targets      : ≥ 1e6 layer-evals/s: {'met' if rate_nb >= 1e6 else 'NOT met'}; "
          f"≥ 20× the twin: {'met' if rate_nb >= 20 * rate_np else 'NOT met'}")
    print(json.dumps({"bench": "estimator_layer_kernel", "shape": args.shape, "card": args.card,
                      "design_points": int(q.shape[0]), "layer_evals_per_call": int(n_evals),
                      "numba_layer_evals_per_s": rate_nb, "numpy_layer_evals_per_s": rate_np,
                      "speedup": rate_nb / rate_np, "max_rel_diff": rel, "numba_first_call_s": first_call_s,
                      "target_rate_met": rate_nb >= 1e6, "target_speedup_met": rate_nb >= 20 * rate_np}))


if __name__ == "__main__":
    main()
