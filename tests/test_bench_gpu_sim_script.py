"""benchmarks/bench_gpu_sim.py is prepared for a GPU machine: its --help, its one-line refusal without CUDA,
its column split (the same layer, in blocks) and its documented CPU check at the tiny shape are checked here."""
import importlib.util
import pathlib
import subprocess
import sys

import pytest
import torch

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu_sim.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_help_and_bad_input():
    r = _run("--help")
    assert r.returncode == 0 and "--shape" in r.stdout and "--device" in r.stdout
    r = _run("--shape", "tiny", "--device", "cpu", "--batch", "0")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--batch" in r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_one_line_without_cuda():
    r = _run()
    assert r.returncode == 2 and r.stdout == "" and r.stderr.strip().count("\n") == 0
    assert "no CUDA device" in r.stderr


def test_column_split_is_the_same_layer():
    spec = importlib.util.spec_from_file_location("bench_gpu_sim", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 37), torch.nn.Linear(37, 5, bias=False))
    x = torch.randn(4, 8)
    ref = net(x)
    mod.split_columns(net, 16)
    assert isinstance(net[0], mod.ColumnSplit) and len(net[0].blocks) == 3
    assert torch.equal(net(x), ref)


def test_the_documented_cpu_check_runs_at_the_shapes_context():
    """``--shape tiny --device cpu`` (the README's check of the script's logic): the sequence defaults to the
    shape's 128-token context, not the 1,024 of the 8B run, and a longer one is refused in one line."""
    import json

    r = _run("--shape", "tiny", "--device", "cpu", "--reps", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["tokens"] == 128 and out["device"] == "cpu" and out["n_layers"] == 2
    assert 0 < out["logit_rel_err"] < 1 and out["ratio"] > 0 and out["fits_80gb"]
    r = _run("--shape", "tiny", "--device", "cpu", "--seq-len", "129")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--seq-len" in r.stderr and "128" in r.stderr
