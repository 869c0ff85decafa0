"""benchmarks/bench_scale.py --quick: its JSON fields and their invariants (counts by formula, every tile solved
once at programming and once at the drift time, the sparse LU agreeing with the exact solver), never times."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"


@pytest.fixture(scope="module")
def quick():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--sparse-tiles", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_model_and_tiles_by_formula(quick):
    m = quick["model"]
    d, f, V, L = m["d_model"], m["d_ff"], m["vocab_size"], m["n_layers"]
    # per layer: qkv, out, up, down weights and biases, two LayerNorms; the head's weight is the embedding's
    layer = d * 3 * d + 3 * d + d * d + d + d * f + f + f * d + d + 4 * d
    assert m["n_params"] == V * d + L * layer + 2 * d + V
    shapes = [(d, 3 * d), (d, d), (d, f), (f, d)] * L + [(d, V)]  # (in, out) of every nn.Linear
    assert m["analog_layers"] == len(shapes)
    assert m["analog_weights"] == sum(i * o for i, o in shapes)
    rows, cols = quick["tile_shape"]
    assert quick["tiles"] == sum(math.ceil(i / rows) * math.ceil(o / cols) for i, o in shapes)


def test_every_tile_solved_at_programming_and_at_the_drift_time(quick):
    ir = quick["ir_drop"]
    assert ir["program"]["arrays"] == ir["drift"]["arrays"] == quick["tiles"]
    sp = ir["sparse_comparison"]
    assert sp["tiles"] == 1 and sp["max_rel_difference"] < 1e-9  # same network, two direct solvers
    assert sp["ratio_sparse_to_ours"] == pytest.approx(sp["sparse_lu_s_per_tile"] / sp["ours_s_per_tile"])


def test_phases_tokens_and_goals_are_consistent(quick):
    ph = quick["phases"]
    assert list(ph) == ["build", "program", "drift", "analog_forward", "digital_forward"]
    rss = [p["peak_rss_gb"] for p in ph.values()]
    assert rss == sorted(rss) and rss[0] > 0  # a peak only grows
    assert quick["tokens"] == quick["calls"] * quick["batch"] * quick["seq_len"] >= 64
    assert quick["ratio_analog_to_digital"] == pytest.approx(ph["analog_forward"]["wall_s"]
                                                            / ph["digital_forward"]["wall_s"])
    fig = quick["figures"]
    assert fig["total_s"] == pytest.approx(sum(p["wall_s"] for p in ph.values()))
    assert fig["program_s"] == ph["program"]["wall_s"] and fig["peak_rss_gb"] == max(rss)
    assert quick["goals_met"] == {k: fig[k] <= g for k, g in quick["goals"].items()}
    assert quick["goals"] == {"program_s": 180.0, "total_s": 600.0, "peak_rss_gb": 8.0}
