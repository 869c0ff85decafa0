"""An installed wheel works: the wheel built from this checkout ships the suites and search spaces, and once
installed into a fresh venv outside the checkout, ``analogdiff bench --suite quick`` and ``analogdiff tune
--quick`` run there from a directory outside the checkout, find their files inside the installed package and
compute the same numbers as the checkout.

The venv reuses this interpreter's installed dependencies through a ``.pth`` line (no network, no copies), so
the test costs the wheel build (~2 s) plus the two runs (~60 s on 2 cores). Deselect with ``-m "not slow"``.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import analogdiff
from analogdiff.bench.suite import load_suite, suites_dir

pytestmark = pytest.mark.slow

CHECKOUT = Path(analogdiff.__file__).resolve().parents[1]
SHIPPED = ("bench/suites/default.toml", "bench/suites/quick.toml",
           "bench/spaces/default.toml", "bench/spaces/quick.toml")


def _run(cmd: list, cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _build_wheel(tmp: Path) -> Path:
    """Build from a copy of the sources, so that the checkout gets no build/ or egg-info and no stale build/lib
    can leak files into the wheel."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(CHECKOUT / name, src / name)
    for name in ("analogdiff", "circuits"):
        shutil.copytree(CHECKOUT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-index", "--no-deps", "--no-build-isolation",
          "-w", tmp / "dist", src], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("analogdiff-*.whl")
    return wheel


def _venv_with_wheel(tmp: Path, wheel: Path) -> Path:
    """A fresh venv holding the wheel; this interpreter's site-packages come after it on sys.path (a plain
    ``.pth`` line: that directory's own ``.pth`` files, e.g. an editable install of the checkout, stay inert)."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    py = venv / "bin" / "python"
    # Install before the .pth exists: pip then sees no other analogdiff, so it cannot uninstall one.
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-index", "--no-deps", wheel], cwd=tmp)
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp).stdout.strip())
    deps = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    (site / "_test_dependencies.pth").write_text("".join(f"{d}\n" for d in deps))
    return venv


def test_installed_wheel_runs_quick_bench_and_tune(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        for rel in SHIPPED:
            assert z.read(f"analogdiff/{rel}") == (CHECKOUT / "analogdiff" / rel).read_bytes()

    venv = _venv_with_wheel(tmp_path, wheel)
    work = tmp_path / "elsewhere"  # working directory outside the checkout
    work.mkdir()
    probe = ("import json, analogdiff; from analogdiff.bench.suite import suites_dir, resolve_suite; "
             "from analogdiff.bench.tune import spaces_dir, resolve_space; "
             "print(json.dumps([analogdiff.__file__, str(suites_dir()), str(spaces_dir()), "
             "str(resolve_suite(None, quick=True)), str(resolve_space(None, quick=True))]))")
    init, suites, spaces, quick_suite, quick_space = map(
        Path, json.loads(_run([venv / "bin" / "python", "-c", probe], cwd=work).stdout))
    pkg = init.parent
    assert pkg.is_relative_to(venv) and not pkg.is_relative_to(CHECKOUT)
    assert (suites, spaces) == (pkg / "bench" / "suites", pkg / "bench" / "spaces")
    assert (quick_suite, quick_space) == (suites / "quick.toml", spaces / "quick.toml")

    bench_out, tune_out = tmp_path / "bench", tmp_path / "tune"
    _run([venv / "bin" / "analogdiff", "bench", "--suite", "quick", "--out", bench_out], cwd=work)
    assert json.loads((bench_out / "suite.json").read_text())["source"] == str(quick_suite)
    units = load_suite(suites_dir() / "quick.toml").units()
    rows = json.loads((bench_out / "results.json").read_text())
    assert {r["unit_id"] for r in rows} == {u["unit_id"] for u in units}
    assert json.loads((bench_out / "run.json").read_text())["ran"] == len(units)
    assert (bench_out / "report.md").stat().st_size > 0
    assert (bench_out / "figures" / "accuracy_vs_power_mdlm.png").stat().st_size > 0

    _run([venv / "bin" / "analogdiff", "tune", "--quick", "--trials", "2", "--out", tune_out], cwd=work)
    with open(tune_out / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    assert [t["trial"] for t in trials] == ["0", "1"]
    pareto = json.loads((tune_out / "pareto.json").read_text())
    assert pareto["trials_completed"] == 2

    # The checkout computes the same first trial (same space, same seeds: same bytes).
    ref_out = tmp_path / "tune-checkout"
    _run([sys.executable, "-m", "analogdiff", "tune", "--quick", "--trials", "1", "--workers", "0",
          "--out", ref_out], cwd=CHECKOUT)
    with open(ref_out / "trials.csv", newline="") as f:
        (ref,) = list(csv.DictReader(f))
    assert trials[0] == ref
