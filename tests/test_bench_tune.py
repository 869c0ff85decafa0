"""analogdiff tune: a SIGKILLed study loses no finished trial and the same command continues it; the Pareto
front written is the non-dominated set of the trials (checked against a brute-force front and Optuna's)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from bench_fixtures import tiny_models

from analogdiff.bench.pareto import pareto_front
from analogdiff.bench.tune import SpaceError, load_space
from analogdiff.cli import main

SPACE = """name = "tiny"
model = "{model}"
card = "pcm-ibm"
overrides = {{ "wire" = "none" }}
drift_time_s = 3600.0
seeds = [0]
metric = "bits_per_char"
sampler = "nsga2"
sampler_seed = 0
[budget]
eval_chars = 128
[params]
"adc.bits" = {{ int = [2, 8] }}
"dac.bits" = {{ int = [2, 8] }}
"device.g_max_us" = {{ float = [5.0, 50.0], log = true }}
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    d = tmp_path_factory.mktemp("tune")
    path = d / "space.toml"
    path.write_text(SPACE.format(model=tiny_models(d)["mdlm"]))
    return path


def _trials(db):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db}"
    study = optuna.load_study(study_name="tiny", storage=url)
    return study, {t.number: (t.state.name, t.values, t.params) for t in study.get_trials()}


def _complete_count(db) -> int:
    """Finished trials, read through a read-only SQLite connection: polling must never create Optuna's
    schema while the tune process is creating it."""
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    try:
        return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    finally:
        con.close()


def test_sigkill_loses_no_finished_trial_and_rerun_continues(space, tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "analogdiff", "tune", "--trials", "8", "--out", str(out), "--space", str(space),
           "--workers", "0", "--no-progress"]
    log = tmp_path / "tune.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (out / "study.db").is_file():
            try:
                n_complete = _complete_count(out / "study.db")
            except Exception:  # the study is still being created
                n_complete = 0
            if n_complete >= 3:
                break
        time.sleep(0.1)
    assert proc.poll() is None, f"tune ended before it could be killed: {log.read_text()[-800:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, killed = _trials(out / "study.db")
    complete = {n: t for n, t in killed.items() if t[0] == "COMPLETE"}
    assert 3 <= len(complete) < 8
    assert main(cmd[3:]) == 0  # the same command, again
    study, final = _trials(out / "study.db")
    for n, t in complete.items():
        assert final[n] == t  # every finished trial kept, unchanged
    done = [t for t in final.values() if t[0] == "COMPLETE"]
    assert len(done) == 8
    assert not [t for t in final.values() if t[0] == "RUNNING"]
    # a trial the kill interrupted was failed and the parameters it had drawn run again (the kill may
    # land between Optuna's ask and the last suggestion: then the rest are drawn anew)
    for n, t in killed.items():
        if t[0] == "RUNNING":
            assert final[n][0] == "FAIL"
            assert any(u[0] == "COMPLETE" and all(u[2].get(k) == v for k, v in t[2].items())
                       for m, u in final.items() if m != n)
    # the front written is the brute-force front of the completed trials, and Optuna's
    info = json.loads((out / "pareto.json").read_text())
    assert info["objectives"] == ["bits_per_char", "energy_per_token_j"]
    nums = sorted(n for n, t in final.items() if t[0] == "COMPLETE")
    pts = [final[n][1] for n in nums]
    expect = {nums[i] for i in pareto_front(pts, ("minimize", "minimize"))}
    assert {r["trial"] for r in info["pareto_front"]} == expect == {t.number for t in study.best_trials}
    assert (out / "figures" / "accuracy_vs_power.svg").is_file() and (out / "trials.csv").is_file()
    # plot from the study
    assert main(["plot", "--study", str(out), "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "figures" / "accuracy_vs_power.png").is_file()


def test_space_errors(space, tmp_path):
    text = space.read_text()
    for old, new, msg in [('metric = "bits_per_char"', 'metric = "bleu"', "metric"),
                          ('"adc.bits" = { int = [2, 8] }', '"adc.bits" = { int = [0, 8] }', "adc.bits"),
                          ('"adc.bits" = { int = [2, 8] }', 'steps = { choices = [4, 8] }', "params.steps"),
                          ('sampler = "nsga2"', 'sampler = "grid"', "sampler")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text.replace(old, new))
        with pytest.raises(SpaceError, match=msg):
            load_space(bad)
        assert main(["tune", "--trials", "2", "--out", str(tmp_path / "o"), "--space", str(bad), "--workers", "0"]) == 2


def test_storage_open_retries_while_another_process_creates_the_schema(monkeypatch):
    """Machines sharing a study start together: one of them sees "table ... already exists" once."""
    import optuna

    from analogdiff.bench import tune as tune_mod

    calls = []

    class Flaky:
        def __init__(self, url, **kw):
            calls.append(url)
            if len(calls) == 1:
                raise RuntimeError("(sqlite3.OperationalError) table alembic_version already exists")

    monkeypatch.setattr(optuna.storages, "RDBStorage", Flaky)
    assert isinstance(tune_mod._rdb_storage(optuna, "sqlite:///x.db"), Flaky) and len(calls) == 2
    calls.clear()

    class Broken:
        def __init__(self, url, **kw):
            calls.append(url)
            raise RuntimeError("could not connect to server")

    monkeypatch.setattr(optuna.storages, "RDBStorage", Broken)
    with pytest.raises(RuntimeError, match="could not connect"):
        tune_mod._rdb_storage(optuna, "sqlite:///x.db")
    assert len(calls) == 1  # other errors are not retried
