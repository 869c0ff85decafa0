"""``analogdiff tune``: multi-objective Optuna search over device and converter parameters.

A search space is a TOML file (``analogdiff/bench/spaces/default.toml`` is the annotated example): the model, the
base card and drift time, the accuracy metric, the evaluation budget and ``[params]`` — dotted card keys
(``adc.bits``, ``device.g_max_us``, ``drift.compensation``, ...) and ``steps`` (denoising steps), each an
integer range, a float range (optionally log) or a list of choices (``"none"`` switches a component off).

The objectives are the accuracy metric and energy per token (and latency per token with ``latency = true``).
The study lives in ``DIR/study.db`` (SQLite) unless ``--storage`` names another database (e.g.
``postgresql://...``) that several machines share. Each finished trial is committed to the database when it
ends, so a SIGKILL loses only the trials in flight; rerunning the same command continues the study until it
holds ``--trials`` finished trials. The Pareto front is printed and written to ``DIR/pareto.json``/``.csv``.
"""
from __future__ import annotations

import fcntl
import json
import math
import time
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from analogdiff import checks
from analogdiff.checks import ConfigError

from .pareto import METRIC_DIRECTIONS, pareto_front
from .results import atomic_write_text, canonical_json, rows_to_csv

METRICS = ("bits_per_char", "token_accuracy", "gen_ppl")
SAMPLERS = ("nsga2", "tpe")
_TOP_KEYS = {"name", "model", "card", "drift_time_s", "seeds", "metric", "latency", "sampler", "sampler_seed",
             "eval_seed", "judge", "budget", "params", "steps", "overrides"}
MAX_TRIALS = 100_000
"""Finished trials one study may be asked to hold."""
HEARTBEAT_S, GRACE_S = 20, 600


class SpaceError(ConfigError):
    """A search-space file that cannot be used; one line naming the file and field."""


def spaces_dir() -> Path:
    """The search spaces shipped inside the package (``analogdiff/bench/spaces``), in a checkout and a wheel."""
    return Path(str(resources.files(__package__) / "spaces"))


def resolve_space(path: str | None, quick: bool) -> Path:
    if path is None:
        return spaces_dir() / ("quick.toml" if quick else "default.toml")
    return Path(checks.text("--space", path, checks.MAX_PATH_CHARS))


def load_space(path: str | Path, quick: bool = False) -> dict:
    """Read and check a search space; every card value it can produce is range-checked by loading the card
    with the lowest and highest values. ``quick`` replaces the budget by :data:`analogdiff.checks.QUICK_BUDGET`."""
    from analogdiff.config import load_hardware
    from analogdiff.lm import load_model

    path = Path(path)
    try:
        raw = checks.parse_toml(f"space {path}", checks.read_text("space", path))
    except ConfigError as e:
        raise SpaceError(str(e)) from None

    def fail(field: str, msg: str):
        raise SpaceError(f"space {path}: {field}: {msg}")

    def check(rule, field, *args, **kw):
        try:
            return rule(field, *args, **kw)
        except ConfigError as e:
            raise SpaceError(f"space {path}: {e}") from None

    for k in raw:
        if k not in _TOP_KEYS:
            fail(str(k)[:60], f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    for k in ("model", "card", "params"):
        if k not in raw:
            fail(k, "missing")
    sp: dict[str, Any] = {"name": check(checks.text, "name", raw.get("name", path.stem[:checks.MAX_NAME_CHARS])),
                          "model": check(checks.text, "model", raw["model"], checks.MAX_PATH_CHARS),
                          "card": check(checks.text, "card", raw["card"], checks.MAX_PATH_CHARS),
                          "drift_time_s": raw.get("drift_time_s", 86400.0), "seeds": raw.get("seeds", [0]),
                          "metric": raw.get("metric", "bits_per_char"), "latency": raw.get("latency", False),
                          "sampler": raw.get("sampler", "nsga2"), "sampler_seed": raw.get("sampler_seed", 0),
                          "eval_seed": raw.get("eval_seed", 0),
                          "judge": check(checks.text, "judge", raw.get("judge", "shakespeare-ar"),
                                         checks.MAX_PATH_CHARS)}
    sp["overrides"] = check(checks.overrides, "overrides", raw.get("overrides"))
    try:
        load_hardware(sp["card"], overrides=sp["overrides"])
    except ConfigError as e:
        fail("card", str(e).splitlines()[0])
    if not isinstance(sp["metric"], str) or sp["metric"] not in METRICS:
        fail("metric", f"{checks.short(sp['metric'])} is not one of {', '.join(METRICS)}")
    if not isinstance(sp["sampler"], str) or sp["sampler"] not in SAMPLERS:
        fail("sampler", f"{checks.short(sp['sampler'])} is not one of {', '.join(SAMPLERS)}")
    if not isinstance(sp["latency"], bool):
        fail("latency", f"expected true or false, got {checks.short(sp['latency'])}")
    sp["drift_time_s"] = check(checks.drift_time_s, "drift_time_s", sp["drift_time_s"])
    sp["seeds"] = check(checks.seeds, "seeds", sp["seeds"])
    for k in ("sampler_seed", "eval_seed"):
        sp[k] = check(checks.seed, k, sp[k])
    sp["budget"] = budget = check(checks.budget, "budget", raw.get("budget"), quick=quick)
    try:
        model = load_model(sp["model"])
    except ConfigError as e:
        fail("model", str(e).splitlines()[0])
    sp["model_kind"] = model.kind
    if sp["metric"] == "gen_ppl":
        try:
            judge_kind = load_model(sp["judge"]).kind
        except ConfigError as e:
            fail("judge", str(e).splitlines()[0])
        if judge_kind != "ar":
            fail("judge", "must be an autoregressive model")
    params = raw["params"]
    if not isinstance(params, Mapping) or not params:
        fail("params", "expected a table of parameters to search")
    sp["params"] = {checks.text("params key", k, 100): _param(fail, k, v) for k, v in params.items()}
    if "steps" in sp["params"]:
        if model.kind != "mdlm":
            fail("params.steps", "denoising steps apply to a diffusion model (kind 'mdlm') only")
        if sp["metric"] != "gen_ppl":
            fail("params.steps", f"the metric {sp['metric']} does not depend on the sampler's steps; "
                                 "search steps with metric = \"gen_ppl\"")
        hi = max(sp["params"]["steps"]["values"] if "values" in sp["params"]["steps"] else [sp["params"]["steps"]["high"]])
        if hi > min(budget["gen_len"], model.shape.context_len):
            fail("params.steps", f"{hi} exceeds the generated length {min(budget['gen_len'], model.shape.context_len)}")
    # every extreme of every parameter must give a valid card
    for name, p in sp["params"].items():
        if name == "steps":
            continue
        for v in p["values"] if "values" in p else (p["low"], p["high"]):
            try:
                load_hardware(sp["card"], overrides={**sp["overrides"],
                                                     **{t: checks.card_value(v) for t in p["targets"]}})
            except ConfigError as e:
                fail(f"params.{name}", str(e).splitlines()[0])
    sp["steps"] = check(checks.integer, "steps", raw.get("steps", 64), 1, checks.MAX_STEPS)
    return sp


def _param(fail, name: str, spec) -> dict:
    if not isinstance(spec, Mapping):
        fail(f"params.{name}", "expected a table: { int = [lo, hi] }, { float = [lo, hi], log = true } or "
                               "{ choices = [...] }")
    allowed = {"int", "float", "choices", "log", "also"}
    for k in spec:
        if k not in allowed:
            fail(f"params.{name}.{str(k)[:60]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    kinds = [k for k in ("int", "float", "choices") if k in spec]
    if len(kinds) != 1:
        fail(f"params.{name}", "give exactly one of int, float, choices")
    also = spec.get("also", [])
    if not isinstance(also, list) or not all(isinstance(a, str) for a in also) or (also and name == "steps"):
        fail(f"params.{name}.also", "expected a list of card keys that take the same value")
    if not isinstance(spec.get("log", False), bool):
        fail(f"params.{name}.log", f"expected true or false, got {checks.short(spec['log'])}")
    out: dict[str, Any] = {"kind": kinds[0], "targets": [name, *also], "log": spec.get("log", False)}
    if kinds[0] == "choices":
        vals = spec["choices"]
        if (not isinstance(vals, list) or not vals or len(set(map(repr, vals))) != len(vals)
                or not all(isinstance(v, (str, int, float, bool)) for v in vals)):
            fail(f"params.{name}.choices", f"expected a non-empty list of distinct numbers, strings or booleans, "
                                           f"got {checks.short(vals)}")
        out["values"] = vals
    else:
        lo_hi = spec[kinds[0]]
        typ = int if kinds[0] == "int" else (int, float)
        if (not isinstance(lo_hi, list) or len(lo_hi) != 2 or not all(isinstance(x, typ) and not isinstance(x, bool)
                                                                     for x in lo_hi) or not lo_hi[0] < lo_hi[1]):
            fail(f"params.{name}.{kinds[0]}", f"expected [low, high] with low < high, got {checks.short(lo_hi)}")
        if out["log"] and lo_hi[0] <= 0:
            fail(f"params.{name}.log", "a log range needs low > 0")
        out["low"], out["high"] = lo_hi
    if name == "steps" and (kinds[0] == "float" or any(
            not isinstance(v, int) or v < 1 for v in out.get("values", [out.get("low", 1), out.get("high", 1)]))):
        fail("params.steps", "expected integers >= 1")
    return out


def space_directions(sp: dict) -> list[str]:
    dirs = [METRIC_DIRECTIONS[sp["metric"]], "minimize"]
    return dirs + ["minimize"] if sp["latency"] else dirs


def objective_names(sp: dict) -> list[str]:
    return [sp["metric"], "energy_per_token_j"] + (["latency_per_token_s"] if sp["latency"] else [])


# --------------------------------------------------------------------------- one trial (runs on a worker)

def run_trial(spec: dict) -> dict:
    """Objective values of one trial: one experiment's accuracy metric and the cost of the run that measured
    it, each the mean over programming seeds. Raises ConfigError (a ValueError) for an unusable point."""
    from . import experiment as ex

    lm = ex.model(spec["model"])
    b = spec["budget"]
    if spec["metric"] == "gen_ppl":
        L = min(b["gen_len"], lm.shape.context_len)
        task = {"generate": ex.Generate(steps=spec["steps"] or L, seq_len=L, n_samples=b["gen_samples"],
                                        eval_seed=spec["eval_seed"], judge=spec["judge"])}
    else:
        task = {"score": ex.Score(eval_chars=b["eval_chars"], t_samples=b["t_samples"], batch_size=b["batch_size"],
                                  eval_seed=spec["eval_seed"])}
    name = next(iter(task))
    out = ex.run(ex.Experiment(model=spec["model"], card=spec["card"], overrides=spec["overrides"],
                               drift_time_s=spec["drift_time_s"], seeds=tuple(spec["seeds"]), **task))
    cost = out["cost"][name]
    return {"metric": out["metrics"][spec["metric"]]["mean"],
            "energy_per_token_j": cost["energy_per_token_j"]["mean"],
            "latency_per_token_s": cost["latency_per_token_s"]["mean"],
            "per_seed_metric": [p["metrics"][spec["metric"]] for p in out["per_seed"]],
            "tiles": out["per_seed"][0]["cost"][name]["tiles"],
            "priced": "generated token" if name == "generate" else "scored character"}


def trial_spec(sp: dict, params: Mapping[str, Any]) -> dict:
    """The worker spec of a trial with sampled ``params`` (dotted card keys → overrides; steps → decode)."""
    overrides = dict(sp["overrides"])
    for name, v in params.items():
        if name != "steps":
            for t in sp["params"][name]["targets"]:
                overrides[t] = checks.card_value(v)
    steps = params.get("steps", sp["steps"] if sp["model_kind"] == "mdlm" else None)
    return {"model": sp["model"], "card": sp["card"], "overrides": overrides, "drift_time_s": sp["drift_time_s"],
            "seeds": sp["seeds"], "metric": sp["metric"], "budget": sp["budget"], "eval_seed": sp["eval_seed"],
            "judge": sp["judge"], "steps": steps}


# --------------------------------------------------------------------------- the study

def _distributions(sp: dict) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, p in sp["params"].items():
        if p["kind"] == "choices":
            out[name] = CategoricalDistribution(p["values"])
        elif p["kind"] == "int":
            out[name] = IntDistribution(p["low"], p["high"], log=p["log"])
        else:
            out[name] = FloatDistribution(float(p["low"]), float(p["high"]), log=p["log"])
    return out


def _fingerprint(sp: dict) -> str:
    keys = ("model", "card", "overrides", "drift_time_s", "seeds", "metric", "latency", "eval_seed", "judge", "budget",
            "params", "steps")
    return canonical_json({k: sp[k] for k in keys})


def _rdb_storage(optuna, url: str, attempts: int = 5):
    """Optuna's RDBStorage, retried when another process is creating the same schema at this moment
    (machines sharing one study start together; SQLAlchemy then reports "table ... already exists")."""
    import time

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2))
        except Exception as e:  # sqlalchemy OperationalError / IntegrityError
            if "already exists" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def open_study(sp: dict, out_dir: Path, storage: str | None = None):
    """Create or load the study of space ``sp``; fails if the stored study was made from another space."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats are recorded by tune()'s own loop (ask/tell), not by Study.optimize; Optuna warns about both
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    url = storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    db = out_dir / "study.db"
    if storage is None and db.is_file() and db.stat().st_size:
        with open(db, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise ConfigError(f"--out: {checks.shown_path(db)} is not an SQLite database (a study of "
                                  f"analogdiff tune); use another --out")
    try:
        rdb = _rdb_storage(optuna, url)
    except (ImportError, ModuleNotFoundError) as e:
        raise ConfigError(f"--storage: cannot open {url.split('@')[-1]} ({e})") from None
    except Exception as e:  # sqlalchemy errors: bad URL, unreachable server
        raise ConfigError(f"--storage: cannot open {url.split('@')[-1]} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    study = optuna.create_study(study_name=sp["name"], storage=rdb, directions=space_directions(sp),
                                load_if_exists=True)
    fp = _fingerprint(sp)
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", fp)
        study.set_metric_names(objective_names(sp))
    elif stored != fp:
        raise SpaceError(f"study {sp['name']!r} in {url.split('@')[-1]} was created from a different search space "
                         f"(or budget); use another --out/--storage or the same space")
    n = len(study.trials)
    seed = sp["sampler_seed"] + n  # a resumed study does not replay the proposals of its first run
    if sp["sampler"] == "nsga2":
        study.sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(8, 4 * len(sp["params"]))))
    else:
        study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, constant_liar=True)
    return study, rdb


def _retry_orphans(study) -> int:
    """Trials left RUNNING by a killed process (this process holds the directory lock, so none is alive):
    mark them failed and queue their parameters again. Returns how many."""
    import optuna
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)(study, study._storage.get_trial(t._trial_id))
            n += 1
    return n


def finished_trials(study) -> list:
    """Completed trials and trials that failed on their own (an unusable point), not killed ones."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE
            or (t.state == TrialState.FAIL and "error" in t.user_attrs)]


def tune(space: str | None, trials: int, out_dir, quick: bool = False, storage: str | None = None,
         workers: int | None = None, scheduler: str | None = None, progress: bool = True, echo=print) -> dict:
    """Run (or continue) the study until it holds ``trials`` finished trials; write and return the front."""
    checks.integer("--trials", trials, 1, MAX_TRIALS)
    sp = load_space(resolve_space(space, quick), quick=quick)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".tune.lock", "w") as lock:  # released on return, error or interrupt
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"--out: another analogdiff tune is running on {out_dir}") from None
        return _run_study(sp, trials, out_dir, storage, workers, scheduler, progress, echo)


def _run_study(sp, trials, out_dir, storage, workers, scheduler, progress, echo) -> dict:
    """The body of ``tune`` while it holds the output directory's lock."""
    import optuna
    from optuna.trial import TrialState
    from tqdm import tqdm

    from .distributed import Pool

    study, rdb = open_study(sp, out_dir, storage)
    if storage is None:
        retried = _retry_orphans(study)
    else:
        before = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        optuna.storages.fail_stale_trials(study)
        retried = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) - before
    if retried:
        echo(f"tune: {retried} trial(s) interrupted by an earlier kill are queued again")
    dists = _distributions(sp)
    done0 = len(finished_trials(study))
    if done0:
        echo(f"tune: study {sp['name']!r} already holds {done0} finished trial(s); continuing to {trials}")
    bar = tqdm(total=max(trials, done0), initial=done0, desc=f"tune {sp['name']}", unit="trial",
               disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    in_flight: dict = {}
    try:
        with Pool(workers=workers, scheduler=scheduler) as pool:
            while True:
                n_done = len(finished_trials(study))
                while n_done + len(in_flight) < trials and len(in_flight) < pool.parallelism:
                    trial = study.ask(dists)
                    rdb.record_heartbeat(trial._trial_id)
                    in_flight[pool.submit(run_trial, trial_spec(sp, trial.params))] = trial
                    if pool.serial:
                        break
                if not in_flight:
                    break
                done, _ = pool.wait_first(list(in_flight), timeout=HEARTBEAT_S)
                for trial in in_flight.values():
                    rdb.record_heartbeat(trial._trial_id)
                for fut in done:
                    _tell(study, in_flight.pop(fut), fut, echo)
                    bar.update(1)
    finally:  # leaving the pool drops the trials in flight; they stay RUNNING and are queued again next time
        bar.close()
    out = write_study_outputs(study, sp, out_dir)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    echo(format_front(out))
    return out


def _tell(study, trial, fut, echo) -> None:
    from optuna.trial import TrialState

    try:
        res = fut.result()
    except ValueError as e:  # an unusable point (bad card combination, model too large, NaN): a failed trial
        msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        trial.set_user_attr("error", msg)
        study.tell(trial, state=TrialState.FAIL)
        echo(f"tune: trial {trial.number} failed ({msg})")
        return
    trial.set_user_attr("per_seed_metric", res["per_seed_metric"])
    trial.set_user_attr("latency_per_token_s", res["latency_per_token_s"])
    trial.set_user_attr("tiles", res.get("tiles"))
    sp_values = [res["metric"], res["energy_per_token_j"]]
    if len(study.directions) == 3:
        sp_values.append(res["latency_per_token_s"])
    study.tell(trial, sp_values)


def study_rows(study) -> list[dict]:
    """One dict per completed trial: number, params, objective values (named), user attributes."""
    from optuna.trial import TrialState

    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        row = {"trial": t.number, **{f"param.{k}": v for k, v in sorted(t.params.items())}}
        row.update(dict(zip(names, t.values)))
        row.setdefault("latency_per_token_s", t.user_attrs.get("latency_per_token_s"))
        row["tiles"] = t.user_attrs.get("tiles")
        rows.append(row)
    return rows


def study_front(study) -> tuple[list[dict], list[dict]]:
    """(all completed trial rows, the Pareto-front rows) of ``study``."""
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    dirs = ["maximize" if d.name == "MAXIMIZE" else "minimize" for d in study.directions]
    rows = study_rows(study)
    front = pareto_front([[r[n] for n in names] for r in rows], dirs)
    return rows, [rows[i] for i in front]


def write_study_outputs(study, sp: dict | None, out_dir: Path, token_rate_per_s: float = 100.0) -> dict:
    """trials.csv, pareto.json, pareto.csv and the accuracy-vs-power figure of a study, into ``out_dir``."""
    from .figures import accuracy_vs_power

    rows, front = study_front(study)
    names = study.metric_names or []
    atomic_write_text(out_dir / "trials.csv", rows_to_csv(rows))
    atomic_write_text(out_dir / "pareto.csv", rows_to_csv(front))
    info = {"study": study.study_name, "objectives": names,
            "directions": ["maximize" if d.name == "MAXIMIZE" else "minimize" for d in study.directions],
            "trials_completed": len(rows), "pareto_front": front}
    atomic_write_text(out_dir / "pareto.json", json.dumps(info, indent=1, sort_keys=True) + "\n")
    metric = names[0] if names else None
    if rows and metric:
        card = (sp or {}).get("card") or json.loads(study.user_attrs.get("space", "{}")).get("card", "card")
        pts = [{"card": card, "energy_per_token_j": r["energy_per_token_j"], metric: r[metric]} for r in rows]
        accuracy_vs_power(pts, out_dir / "figures" / "accuracy_vs_power", metric, token_rate_per_s,
                          title=f"tune {study.study_name}: {len(rows)} trials, Pareto front highlighted")
        info["figure"] = str(out_dir / "figures" / "accuracy_vs_power.png")
    return info


def format_front(info: dict) -> str:
    front = info["pareto_front"]
    lines = [f"Pareto front of study {info['study']!r}: {len(front)} of {info['trials_completed']} completed trials"]
    if not front:
        return lines[0]
    cols = ["trial", *info["objectives"], *sorted(k for k in front[0] if k.startswith("param."))]
    lines.append("  ".join(f"{c.removeprefix('param.'):>14}" for c in cols))
    for r in sorted(front, key=lambda r: r.get("energy_per_token_j", 0.0)):
        lines.append("  ".join(f"{_short(r.get(c)):>14}" for c in cols))
    return "\n".join(lines)


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def load_study(out_dir, storage: str | None = None, name: str | None = None):
    """Open an existing study (for ``analogdiff plot --study DIR``); a missing, corrupt or unreachable
    database is one line."""
    import optuna
    import sqlalchemy.exc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = Path(out_dir) / "study.db"
    url = storage or f"sqlite:///{db.resolve()}"
    where = url.split("@")[-1]
    if storage is None and not db.is_file():
        raise ConfigError(f"--study: {checks.shown_path(out_dir)} holds no study.db")
    if storage is None:
        with open(db, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise ConfigError(f"--study: {checks.shown_path(db)} is not an SQLite database")
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(url)]
        if not names:
            raise ConfigError(f"--study: no study in {where}")
        if name is None and len(names) > 1:
            raise ConfigError(f"--study: several studies ({', '.join(names)}); name one")
        return optuna.load_study(study_name=name or names[0], storage=url)
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.OptunaError, ImportError) as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        raise ConfigError(f"--study: cannot read the study in {where} ({type(e).__name__}: {msg[:200]})") from None
