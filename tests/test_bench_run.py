"""Running a suite: rows written as they go, a killed run resumes without redoing finished runs, the same seeds
give byte-identical results files serially, after a resume, and on a real Dask cluster (scheduler + 2 worker
processes on loopback)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_fixtures import tiny_models, write_suite

from analogdiff.bench.suite import load_suite, run_suite
from analogdiff.cli import main

FILES = ("results.json", "results.csv")
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def suite_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("suite")
    return write_suite(d / "tiny.toml", tiny_models(d))


@pytest.fixture(scope="module")
def serial(suite_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    summary = run_suite(load_suite(suite_path), out, workers=0, progress=False, echo=lambda m: None)
    return out, summary


def test_serial_run_writes_everything(serial):
    out, summary = serial
    rows = json.loads((out / "results.json").read_text())
    assert summary["ran"] == summary["runs"] == 20 and len(rows) == 20
    acc = [r for r in rows if r["kind"] == "accuracy"]
    assert all(r["bits_per_char"] > 0 and r["energy_per_token_j"] > 0 and r["latency_per_token_s"] > 0
               and 0 <= r["token_accuracy"] <= 1 for r in acc)
    # energy priced from this run's activation statistics (the estimator says it used them)
    assert all(r["priced_from_stats"] is True and "stats.mean_abs_x_norm" in r for r in acc)
    gen = [r for r in rows if r["kind"] == "generation"]
    assert all(r["gen_ppl"] > 1 for r in gen)
    mdlm_gpu = sorted((r["steps"], r["energy_per_token_j"]) for r in gen
                      if r["card"] == "h100-sxm" and r["model_kind"] == "mdlm")
    assert mdlm_gpu[0][1] < mdlm_gpu[1][1]  # 4 steps cost less per token than 16 steps
    report = (out / "report.md").read_text()
    for heading in ("## Budgets", "## Headline", "MDLM vs AR accuracy loss", "## Denoising steps vs AR"):
        assert heading in report
    for fig in ("accuracy_vs_power_mdlm", "accuracy_vs_drift", "steps_vs_energy", "energy_breakdown"):
        assert (out / "figures" / f"{fig}.png").is_file() and (out / "figures" / f"{fig}.svg").is_file()
        assert f"figures/{fig}.png" in report


def test_killed_run_resumes_and_gives_identical_files(serial, suite_path, tmp_path):
    out = tmp_path / "killed"
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from analogdiff.bench.suite import load_suite, run_suite\n"
            "run_suite(load_suite(%r), %r, workers=0, progress=False)\n") % (str(HERE), str(suite_path), str(out))
    log = tmp_path / "run.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=f, stderr=subprocess.STDOUT)
    rows_file = out / "rows.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if rows_file.is_file() and rows_file.read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {log.read_text()[-800:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = rows_file.read_bytes().count(b"\n")
    assert 8 <= done_before < 20
    before = {json.loads(l)["run_id"]: l for l in rows_file.read_text().splitlines() if l.endswith("}")}
    # whatever the kill left is either a complete, parseable table or none (never half a file)
    if (out / "results.json").exists():
        json.loads((out / "results.json").read_text())
    summary = run_suite(load_suite(suite_path), out, workers=0, progress=False, echo=lambda m: None)
    assert summary["ran"] == 20 - len(before)  # finished runs are skipped
    after = {json.loads(l)["run_id"]: l for l in rows_file.read_text().splitlines()}
    assert all(after[k] == v for k, v in before.items())
    for name in FILES:
        assert (out / name).read_bytes() == (serial[0] / name).read_bytes()


def test_dask_cluster_gives_identical_files(serial, suite_path, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        out = tmp_path / "dask"
        rc = main(["bench", "--suite", str(suite_path), "--out", str(out), "--scheduler",
                   cluster.scheduler_address, "--no-progress"])
        assert rc == 0
        workers = {w for w in cluster.scheduler.workers}
    assert len(workers) == 2
    for name in FILES:
        assert (out / name).read_bytes() == (serial[0] / name).read_bytes()
    # rerunning the command runs nothing
    assert main(["bench", "--suite", str(suite_path), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    assert json.loads((out / "run.json").read_text())["ran"] == 0


def test_plot_command_from_results(serial, tmp_path):
    assert main(["plot", "--results", str(serial[0] / "results.json"), "--out", str(tmp_path), "--json"]) == 0
    assert (tmp_path / "accuracy_vs_power_mdlm.svg").is_file()
    assert main(["plot", "--results", str(tmp_path / "nothing")]) == 2
