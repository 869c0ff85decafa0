"""benchmarks/bench_forward.py's paired ratio and its verdict against a goal, by hand."""
import importlib.util
import math
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_forward.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_forward", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_paired_ratio_is_the_geometric_mean_of_the_reps_ratios(bench):
    wall = {"digital": [1.0, 2.0, 4.0], "analog": [2.0, 4.0, 8.0]}
    r = bench.paired_ratio(wall, "analog")  # every rep 2x: the interval is the point
    assert r["n"] == 3 and r["ratio"] == pytest.approx(2.0) and r["ci95"] == pytest.approx([2.0, 2.0])
    wall = {"digital": [1.0, 1.0], "analog": [1.5, 2.0]}
    r = bench.paired_ratio(wall, "analog")
    logs = [math.log(1.5), math.log(2.0)]
    half = 12.706204736 * (abs(logs[1] - logs[0]) / math.sqrt(2)) / math.sqrt(2)  # t(0.975, 1 df) · s / √n
    mean = sum(logs) / 2
    assert r["ratio"] == pytest.approx(math.sqrt(3.0))
    assert r["ci95"] == pytest.approx([math.exp(mean - half), math.exp(mean + half)], rel=1e-6)


def test_verdict_against_a_goal(bench):
    assert bench.verdict([1.2, 1.4], 1.5) == "met"
    assert bench.verdict([1.2, 1.5], 1.5) == "met"
    assert bench.verdict([1.6, 1.9], 1.5) == "not met"
    assert bench.verdict([1.4, 1.6], 1.5) == "not distinguishable"


@pytest.mark.parametrize("args,field", [(["--reps", "0"], "--reps"), (["--batch", "-1"], "--batch"),
                                        (["--threads", "0"], "--threads")])
def test_bad_input_is_one_line_and_exit_2(args, field):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.strip().count("\n") == 0 and field in r.stderr
