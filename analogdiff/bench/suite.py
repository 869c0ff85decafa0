"""Benchmark suites: a TOML file → validated :class:`Suite` → run units → rows in a results directory.

A suite (``analogdiff/bench/suites/default.toml`` is the annotated example) has top-level settings, an evaluation
``[budget]`` and a list of ``[[section]]`` tables, each of one ``kind``:

``accuracy``    models × analog cards × drift times × programming seeds: bits/char and token accuracy of the
                analogized model on the test plays, and energy/latency per token priced from that run's
                activation statistics;
``generation``  models × cards (analog or GPU) × denoising steps: samples judged by the digital AR twin
                (generative perplexity and entropy) against energy per token;
``completion``  models × cards × effects × drift times × seeds × samplers × steps × injected errors: held-out
                prompts continued by each model (:class:`~analogdiff.bench.experiment.Complete`), scored
                against the true continuation, with per-prompt values for the bootstrap; ``effects``
                switches the card's effects on one at a time (:mod:`analogdiff.bench.correction`);
``estimator``   the estimator suite of published shapes (:mod:`analogdiff.bench.estimator_suite`);
``estimate``    energy/latency of named shapes and decodes on cards (the headline's published models).

Everything is checked when the suite loads (:func:`load_suite`), before any work starts; a bad value is one
line naming the file, the field and what is allowed. :func:`run_suite` expands the sections into units, skips
those already in the output directory, runs the rest (serially or on Dask) and writes results as they finish.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from analogdiff import checks
from analogdiff.checks import ConfigError

KINDS = ("accuracy", "generation", "completion", "estimator", "estimate")
BUILTIN_SUITES = ("default", "quick", "correction", "estimator")

_TOP_KEYS = {"name", "description", "token_rate_per_s", "eval_seed", "headline_drift_time_s", "headline_steps",
             "budget", "section"}
_SECTION_KEYS = {
    "accuracy": {"name", "kind", "models", "cards", "drift_times_s", "seeds", "overrides"},
    "generation": {"name", "kind", "models", "cards", "drift_times_s", "seeds", "steps", "overrides"},
    "completion": {"name", "kind", "models", "cards", "drift_times_s", "seeds", "overrides", "effects", "n_new",
                   "n_prompts", "prompt_len", "steps", "samplers", "eta", "inject_pct", "loss", "temperature"},
    "estimator": {"name", "kind", "quick"},
    "estimate": {"name", "kind", "cards", "runs", "overrides"},
}
_ESTIMATE_RUN_KEYS = {"shape", "decode", "steps", "seq_len", "block_len", "batch"}


class SuiteError(ConfigError):
    """A suite file that cannot be run; the message is one line naming the file and field."""


@dataclass(frozen=True)
class Suite:
    """A validated suite. ``sections`` are plain dicts with defaults filled in."""

    name: str
    source: str
    description: str
    token_rate_per_s: float
    eval_seed: int
    headline_drift_time_s: float
    budget: dict
    headline_steps: int = 64
    sections: tuple = field(default_factory=tuple)

    def units(self) -> list[dict]:
        """Every run unit of the suite, in suite order (see :func:`expand`)."""
        return [u for s in self.sections for u in expand(self, s)]


# --------------------------------------------------------------------------- finding suites

def suites_dir() -> Path:
    """The suites shipped inside the package (``analogdiff/bench/suites``), in a checkout and in a wheel alike."""
    return Path(str(resources.files(__package__) / "suites"))


def list_suites() -> list[str]:
    return sorted({p.stem for p in suites_dir().glob("*.toml")} | {"estimator"})


def resolve_suite(name_or_path: str | None, quick: bool = False) -> str | Path:
    """``None``/"default" (+``quick`` → "quick"), "estimator", another shipped suite's name, or a path."""
    name = checks.text("--suite", name_or_path or "default", checks.MAX_PATH_CHARS)
    if name == "estimator":
        return "estimator"
    if quick:
        if name != "default":
            raise SuiteError(f"--quick: selects the quick suite in place of 'default' (or the estimator's quick "
                             f"table); for the suite {checks.short(name)} lower its [budget] instead")
        name = "quick"
    if name.endswith(".toml") or "/" in name or checks.is_file(name):
        if not checks.is_file(name):
            raise SuiteError(f"--suite: {checks.short(name)} does not exist")
        return Path(name)
    shipped = suites_dir() / f"{name}.toml"
    if len(name) > checks.MAX_NAME_CHARS - 5 or not shipped.is_file():
        raise SuiteError(f"--suite: unknown suite {checks.short(name)}; known: {', '.join(list_suites())} "
                         f"(or a path to a .toml file)")
    return shipped


# --------------------------------------------------------------------------- validation helpers

class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str):
        raise SuiteError(f"suite {self.source}: {where}: {msg}")

    def check(self, rule, *args, **kw):
        """A rule of :mod:`analogdiff.checks`, its error prefixed with this suite's file."""
        try:
            return rule(*args, **kw)
        except SuiteError:
            raise
        except ConfigError as e:
            raise SuiteError(f"suite {self.source}: {e}") from None

    def keys(self, where: str, table: Mapping, allowed: set, required: set = frozenset()):
        if not isinstance(table, Mapping):
            self.fail(where, "expected a table")
        for k in table:
            if k not in allowed:
                k = str(k)[:60]
                self.fail(f"{where}.{k}" if where else k, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for k in sorted(required):
            if k not in table:
                self.fail(f"{where}.{k}" if where else k, "missing")

    def int_(self, where: str, v, lo: int, hi: int) -> int:
        return self.check(checks.integer, where, v, lo, hi)

    def str_(self, where: str, v) -> str:
        return self.check(checks.text, where, v, checks.MAX_PATH_CHARS)

    def list_(self, where: str, v, item, **kw) -> list:
        if not isinstance(v, list) or not v:
            self.fail(where, f"expected a non-empty list, got {checks.short(v)}")
        out = [item(f"{where}[{i}]", x, **kw) for i, x in enumerate(v)]
        if len(set(map(repr, out))) != len(out):
            self.fail(where, f"holds duplicates: {v!r}")
        return out


def _card(chk: _Checker, where: str, name: str, overrides: Mapping, base: Path | None):
    from analogdiff.config import load_hardware

    ref = name
    if base is not None and (name.endswith(".toml") or "/" in name) and not Path(name).is_absolute():
        ref = str(base / name)
    try:
        return load_hardware(ref, overrides=dict(overrides))
    except ConfigError as e:
        chk.fail(where, str(e).splitlines()[0])


def _model(chk: _Checker, where: str, name: str, base: Path | None, cache: dict):
    from analogdiff.lm import load_model

    ref = name
    if base is not None and (name.endswith((".safetensors", ".json")) or "/" in name) and not Path(name).is_absolute():
        ref = str(base / name)
    if ref not in cache:
        try:
            cache[ref] = load_model(ref)
        except ConfigError as e:
            chk.fail(where, str(e).splitlines()[0])
    return ref, cache[ref]


# --------------------------------------------------------------------------- loading

def load_suite(source: str | Path, check_models: bool = True) -> Suite:
    """Read and validate a suite file (or the name of a builtin one). Raises :class:`SuiteError`."""
    path = resolve_suite(str(source)) if not isinstance(source, Path) else source
    if path == "estimator":
        return Suite("estimator", "estimator", "The estimator suite of published shapes (issue 2, item 9).",
                     100.0, 0, 86400.0, checks.budget("budget", None),
                     ({"name": "estimator", "kind": "estimator", "quick": False},))
    try:
        data = checks.parse_toml(f"suite {path}", checks.read_text("suite", path))
    except ConfigError as e:
        raise SuiteError(str(e)) from None
    return validate_suite(data, str(path), base=Path(path).resolve().parent, check_models=check_models)


def validate_suite(data: Mapping, source: str = "<suite>", base: Path | None = None,
                   check_models: bool = True) -> Suite:
    """A :class:`Suite` from parsed TOML ``data``; every card, model and shape named is loaded once here."""
    chk = _Checker(source)
    chk.keys("", data, _TOP_KEYS, {"name", "section"})
    budget = chk.check(checks.budget, "budget", data.get("budget"))
    sections_raw = data["section"]
    if not isinstance(sections_raw, list) or not sections_raw:
        chk.fail("section", "expected one or more [[section]] tables")
    models: dict = {}
    sections, names = [], set()
    for i, raw in enumerate(sections_raw):
        where = f"section[{i}]"
        if not isinstance(raw, Mapping):
            chk.fail(where, "expected a table")
        kind = raw.get("kind")
        if kind not in KINDS:
            chk.fail(f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        chk.keys(where, raw, _SECTION_KEYS[kind], {"name", "kind"})
        name = chk.str_(f"{where}.name", raw["name"])
        if name in names:
            chk.fail(f"{where}.name", f"{name!r} is used by another section")
        names.add(name)
        where = f"section {name!r}"
        sections.append(_validate_section(chk, where, kind, dict(raw), budget, base, models, check_models))
    return Suite(
        name=chk.str_("name", data["name"]), source=source,
        description=chk.check(checks.text, "description", data.get("description", ""), 10_000, empty=True),
        token_rate_per_s=chk.check(checks.number, "token_rate_per_s", data.get("token_rate_per_s", 100.0), 0.0,
                                   checks.MAX_TOKEN_RATE_PER_S, lo_open=True),
        eval_seed=chk.check(checks.seed, "eval_seed", data.get("eval_seed", 0)),
        headline_drift_time_s=chk.check(checks.drift_time_s, "headline_drift_time_s",
                                        data.get("headline_drift_time_s", 86400.0)),
        budget=budget, sections=tuple(sections),
        headline_steps=chk.int_("headline_steps", data.get("headline_steps", 64), 1, checks.MAX_STEPS))


def _validate_section(chk, where, kind, raw, budget, base, models, check_models) -> dict:
    from .experiment import stochastic

    s: dict[str, Any] = {"name": raw["name"], "kind": kind}
    if kind == "estimator":
        q = raw.get("quick", False)
        if not isinstance(q, bool):
            chk.fail(f"{where}.quick", f"expected true or false, got {q!r}")
        s["quick"] = q
        return s
    s["overrides"] = chk.check(checks.overrides, f"{where}.overrides", raw.get("overrides"))
    s["cards"] = chk.list_(f"{where}.cards", raw.get("cards"), chk.str_)
    hws = {c: _card(chk, f"{where}.cards", c, s["overrides"], base) for c in s["cards"]}
    s["card_kinds"] = {c: hw.kind for c, hw in hws.items()}
    s["card_paths"] = {c: (str(base / c) if base is not None and (c.endswith(".toml") or "/" in c)
                           and not Path(c).is_absolute() else c) for c in s["cards"]}
    s["card_noisy"] = {c: stochastic(hw) for c, hw in hws.items()}
    s["card_drifts"] = {c: hw.drift is not None for c, hw in hws.items()}
    if kind == "estimate":
        runs = raw.get("runs")
        if not isinstance(runs, list) or not runs:
            chk.fail(f"{where}.runs", "expected one or more [[section.runs]] tables (shape, decode, ...)")
        s["runs"] = [_validate_estimate_run(chk, f"{where}.runs[{j}]", r) for j, r in enumerate(runs)]
        for card, hw in hws.items():
            for j, r in enumerate(s["runs"]):
                _fits(chk, f"{where}.runs[{j}]", r["shape"], hw, r["decode"], r.get("steps"), r["seq_len"],
                      r.get("block_len"), r["batch"])
        return s
    s["models"] = []
    s["model_kinds"] = {}
    for j, m in enumerate(chk.list_(f"{where}.models", raw.get("models"), chk.str_)):
        ref = m
        if check_models:
            ref, model = _model(chk, f"{where}.models[{j}]", m, base, models)
            s["model_kinds"][ref] = model.kind
            s.setdefault("contexts", {})[ref] = model.shape.context_len
        s["models"].append(ref)
    if check_models:
        for ref in s["models"]:
            for card, hw in hws.items():
                _fits(chk, f"{where}.models", models[ref].shape, hw, s["model_kinds"][ref], None,
                      s["contexts"][ref])
    s["drift_times_s"] = chk.list_(f"{where}.drift_times_s", raw.get("drift_times_s"),
                                   lambda w, v: chk.check(checks.drift_time_s, w, v))
    s["seeds"] = chk.check(checks.seeds, f"{where}.seeds", raw.get("seeds"))
    if kind == "completion":
        _validate_completion(chk, where, raw, s, hws, base, models if check_models else None)
        return s
    if kind == "accuracy":
        gpu = [c for c, k in s["card_kinds"].items() if k != "analog"]
        if gpu:
            chk.fail(f"{where}.cards", f"{gpu[0]} is a GPU card; accuracy runs need analog cards "
                                       f"(a GPU runs the digital model: use a generation section)")
    else:
        s["steps"] = chk.list_(f"{where}.steps", raw.get("steps"), chk.int_, lo=1, hi=checks.MAX_STEPS)
        for ref, ctx in s.get("contexts", {}).items():
            L = min(budget["gen_len"], ctx)
            if max(s["steps"]) > L:
                chk.fail(f"{where}.steps", f"{max(s['steps'])} exceeds the generated length {L} of {ref} "
                                           f"(budget.gen_len, at most the model's context)")
        if check_models and not any(k == "ar" for k in s["model_kinds"].values()):
            chk.fail(f"{where}.models", "a generation section needs an AR model: it judges the samples "
                                        "(generative perplexity) and is the AR reference")
    return s


def _validate_completion(chk, where, raw, s, hws, base, models) -> None:
    """The completion keys of section ``s`` (models/cards/drift/seeds already checked); each effect's card is
    loaded once, and one task per model is checked against it (context, judge)."""
    from .correction import EFFECTS, effect_overrides
    from .experiment import Complete, Experiment, check, stochastic

    s["effects"] = chk.list_(f"{where}.effects", raw.get("effects", ["all"]), chk.str_)
    for e in s["effects"]:
        if e not in EFFECTS:
            chk.fail(f"{where}.effects", f"{checks.short(e)} is not one of {', '.join(EFFECTS)}")
    s["effect_cards"] = {}
    for card, hw in hws.items():
        for e in s["effects"] if hw.kind == "analog" else ["all"]:
            ov = {**s["overrides"], **effect_overrides(e, hw)}
            ehw = _card(chk, f"{where}.effects", s["card_paths"][card], ov, None)
            s["effect_cards"][f"{card}|{e}"] = {"overrides": ov, "noisy": stochastic(ehw),
                                                 "drifts": ehw.drift is not None}
    s["n_new"] = chk.list_(f"{where}.n_new", raw.get("n_new", [32]), chk.int_, lo=1, hi=checks.MAX_SEQ_LEN)
    s["steps"] = chk.list_(f"{where}.steps", raw.get("steps", [32]), chk.int_, lo=1, hi=checks.MAX_STEPS)
    s["samplers"] = chk.list_(f"{where}.samplers", raw.get("samplers", ["ancestral"]), chk.str_)
    s["inject_pct"] = chk.list_(f"{where}.inject_pct", raw.get("inject_pct", [0]),
                                lambda w, v: chk.check(checks.number, w, v, 0.0, 100.0))
    s["n_prompts"] = chk.int_(f"{where}.n_prompts", raw.get("n_prompts", 32), 1, 100_000)
    s["prompt_len"] = chk.int_(f"{where}.prompt_len", raw.get("prompt_len", 32), 1, checks.MAX_SEQ_LEN)
    s["eta"] = chk.check(checks.number, f"{where}.eta", raw.get("eta", 0.05), 0.0, 1.0)
    s["temperature"] = chk.check(checks.number, f"{where}.temperature", raw.get("temperature", 1.0), 0.0, 100.0)
    loss = raw.get("loss", "l2r")
    s["loss"] = None if checks.is_none(loss) else loss
    ar = None
    for ref in s["models"]:
        if models is not None and s["model_kinds"][ref] == "ar":
            ar = ar or ref
    s["judge"] = ar
    for n in s["n_new"]:
        for st in s["steps"]:
            for sm in s["samplers"]:
                task = chk.check(Complete, n_new=n, n_prompts=s["n_prompts"], prompt_len=s["prompt_len"], steps=st,
                                 sampler=sm, eta=s["eta"], temperature=s["temperature"], loss=s["loss"], judge=ar)
                if models is None:
                    continue
                for ref in s["models"]:
                    for card in s["cards"]:
                        chk.check(check, Experiment(model=ref, card=s["card_paths"][card], overrides=s["overrides"],
                                                    complete=task))


def _validate_estimate_run(chk, where, r) -> dict:
    from analogdiff.energy import load_shape

    chk.keys(where, r, _ESTIMATE_RUN_KEYS, {"shape", "decode"})
    try:
        load_shape(chk.str_(f"{where}.shape", r["shape"]))
    except ConfigError as e:
        chk.fail(f"{where}.shape", str(e).splitlines()[0])
    if not isinstance(r["decode"], str) or r["decode"] not in ("diffusion", "ar"):
        chk.fail(f"{where}.decode", f"{checks.short(r['decode'])} is not one of 'diffusion', 'ar'")
    out = {"shape": r["shape"], "decode": r["decode"],
           "seq_len": chk.int_(f"{where}.seq_len", r.get("seq_len", 1024), 1, checks.MAX_SEQ_LEN),
           "batch": chk.int_(f"{where}.batch", r.get("batch", 1), 1, checks.MAX_BATCH)}
    if r["decode"] == "diffusion":
        out["steps"] = chk.int_(f"{where}.steps", r.get("steps", out["seq_len"]), 1, out["seq_len"])
        if "block_len" in r:
            out["block_len"] = chk.int_(f"{where}.block_len", r["block_len"], 1, out["seq_len"])
    elif "steps" in r or "block_len" in r:
        chk.fail(where, "steps and block_len apply to decode = 'diffusion' only")
    return out


def _fits(chk, where, shape, hw, decode: str, steps, seq_len: int, block_len: int | None = None,
          batch: int = 1) -> None:
    """Price one decode now (milliseconds) so that a model that does not fit a card, or a decode it cannot
    run, fails before any work."""
    from analogdiff.energy import Autoregressive, Diffusion, estimate

    try:
        d = (Autoregressive(seq_len=seq_len) if decode == "ar" else
             Diffusion(steps=steps or seq_len, seq_len=seq_len, block_len=block_len))
        estimate(shape, hw, decode=d, batch=batch)
    except ConfigError as e:
        chk.fail(where, str(e).splitlines()[0])


# --------------------------------------------------------------------------- expansion into units

def expand(suite: Suite, s: dict) -> list[dict]:
    """The run units of section ``s``. A unit is a JSON-able spec; its id hashes the spec, so changing any
    parameter or budget gives new units while unchanged ones are found again in the results store.

    Cards where a parameter cannot matter run once for it: a card without drift runs once for all drift
    times (``drift_time_s`` = None), a card without noise once for all seeds (``seed`` = None), a GPU card
    (digital model) once for both.
    """
    from .results import spec_id

    base = {"section": s["name"], "kind": s["kind"]}
    units: list[dict] = []
    if s["kind"] == "estimator":
        units.append({**base, "quick": s["quick"], "where": "local"})
    elif s["kind"] == "estimate":
        for card in s["cards"]:
            for r in s["runs"]:
                units.append({**base, "card": card, "card_ref": s["card_paths"][card],
                              "card_kind": s["card_kinds"][card], "overrides": s["overrides"], **r,
                              "where": "local"})
    elif s["kind"] == "completion":
        units += _expand_completion(suite, s, base)
    else:
        b = suite.budget
        budget = ({"eval_chars": b["eval_chars"], "t_samples": b["t_samples"], "batch_size": b["batch_size"]}
                  if s["kind"] == "accuracy" else
                  {"gen_samples": b["gen_samples"], "gen_len": b["gen_len"], "batch_size": b["batch_size"]})
        for model in s["models"]:
            mkind = s["model_kinds"].get(model)
            for card in s["cards"]:
                analog = s["card_kinds"][card] == "analog"
                drifts = s["drift_times_s"] if analog and s["card_drifts"][card] else [None]
                seeds = s["seeds"] if analog and s["card_noisy"][card] else [None]
                steps = s["steps"] if s["kind"] == "generation" else [None]
                if mkind == "ar":
                    steps = [None]  # one step per character
                for seed in seeds:
                    for t in drifts:
                        for st in steps:
                            u = {**base, "model": model, "model_kind": mkind, "card": card,
                                 "card_ref": s["card_paths"][card], "card_kind": s["card_kinds"][card],
                                 "overrides": s["overrides"], "drift_time_s": t, "seed": seed,
                                 "eval_seed": suite.eval_seed, "steps": st, **budget, "where": "pool"}
                            if s["kind"] == "generation":
                                u["judge"] = next(m for m in s["models"] if s["model_kinds"].get(m) == "ar")
                            units.append(u)
    for u in units:
        u["unit_id"] = spec_id({k: v for k, v in u.items() if k not in ("where", "card_ref")})
    return units


def _expand_completion(suite: Suite, s: dict, base: dict) -> list[dict]:
    """Units of a completion section: models × cards × effects × drift × seeds × n_new × (MDLM: steps ×
    samplers) × injected percentages. An effect's card without drift or noise runs once for those."""
    units = []
    for model in s["models"]:
        mkind = s["model_kinds"].get(model)
        for card in s["cards"]:
            analog = s["card_kinds"][card] == "analog"
            for effect in s["effects"] if analog else ["all"]:
                ec = s["effect_cards"][f"{card}|{effect}"]
                drifts = s["drift_times_s"] if analog and ec["drifts"] else [None]
                seeds = s["seeds"] if analog and ec["noisy"] else [None]
                decodes = ([(None, "ar")] if mkind == "ar" else
                           [(st, sm) for st in s["steps"] for sm in s["samplers"]])
                for seed in seeds:
                    for t in drifts:
                        for n in s["n_new"]:
                            for st, sm in decodes:
                                for k in s["inject_pct"]:
                                    units.append({**base, "model": model, "model_kind": mkind, "card": card,
                                                  "card_ref": s["card_paths"][card], "card_kind": s["card_kinds"][card],
                                                  "effect": effect if analog else "digital",
                                                  "overrides": ec["overrides"], "drift_time_s": t, "seed": seed,
                                                  "eval_seed": suite.eval_seed, "n_new": n, "steps": st,
                                                  "sampler": sm, "eta": s["eta"] if sm == "remdm" else 0.0,
                                                  "inject_pct": k, "n_prompts": s["n_prompts"],
                                                  "prompt_len": s["prompt_len"], "loss": s["loss"],
                                                  "temperature": s["temperature"], "judge": s["judge"],
                                                  "where": "pool"})
    return units


# --------------------------------------------------------------------------- running

_NOT_PARAMS = ("where", "card_ref", "unit_id")


def unit_params(unit: dict) -> dict:
    """The row columns that describe a unit (its spec without bookkeeping; overrides as canonical JSON)."""
    from .results import canonical_json

    out = {k: v for k, v in unit.items() if k not in _NOT_PARAMS}
    if "overrides" in out:
        out["overrides"] = canonical_json(out["overrides"]) if out["overrides"] else ""
    return out


def unit_row_ids(store, unit: dict) -> list[str] | None:
    """The run ids of a finished unit's rows in ``store``, or None if the unit is not (completely) finished."""
    first = store.rows.get(f"{unit['unit_id']}-0")
    if first is None:
        return None
    ids = [f"{unit['unit_id']}-{i}" for i in range(int(first.get("unit_rows", 1)))]
    return ids if all(i in store for i in ids) else None


def make_rows(unit: dict, metrics: list[dict]) -> list[dict]:
    params = unit_params(unit)
    rows = []
    for i, m in enumerate(metrics):
        row = {"run_id": f"{unit['unit_id']}-{i}", "unit_id": unit["unit_id"], "unit_rows": len(metrics)}
        row.update(params)
        row.update({k: v for k, v in m.items() if k not in row or k in ("seq_len", "steps")})
        rows.append(row)
    return rows


def run_suite(suite: Suite, out_dir, workers: int | None = None, scheduler: str | None = None,
              progress: bool = True, figures: bool = True, echo=print) -> dict:
    """Run every unfinished unit of ``suite`` into ``out_dir``; returns a summary dict.

    Finished units already in ``out_dir`` are skipped. Rows are stored as each unit ends; results.json/csv
    are rewritten (atomically) after each, in suite order. Afterwards the figures and report.md are written.
    """
    import json
    import os
    import platform

    from tqdm import tqdm

    from .distributed import Pool
    from .results import ResultStore, atomic_write_text
    from .runs import program_group, run_estimate, run_estimator, timed_run_unit

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    store = ResultStore(out_dir)
    units = suite.units()
    todo = [u for u in units if unit_row_ids(store, u) is None]
    atomic_write_text(out_dir / "suite.json", json.dumps(
        {"name": suite.name, "source": suite.source, "description": suite.description,
         "token_rate_per_s": suite.token_rate_per_s, "eval_seed": suite.eval_seed,
         "headline_drift_time_s": suite.headline_drift_time_s, "headline_steps": suite.headline_steps,
         "budget": suite.budget,
         "sections": list(suite.sections), "units": len(units)}, indent=1, sort_keys=True) + "\n")
    if len(todo) < len(units):
        echo(f"bench {suite.name}: {len(units) - len(todo)} of {len(units)} runs already in {out_dir}, skipped")

    def order() -> list[str]:
        return [r for u in units for r in (unit_row_ids(store, u) or [])]

    bar = tqdm(total=len(units), initial=len(units) - len(todo), desc=f"bench {suite.name}", unit="run",
               disable=not progress, dynamic_ncols=True)

    walls: dict[str, list[float]] = {}  # this run's wall seconds per unit kind (run.json, not a result)

    def finish(unit, metrics, wall_s):
        for row in make_rows(unit, metrics):
            store.add(row)
        store.write_tables(order())
        walls.setdefault(unit["kind"], []).append(wall_s)
        with open(out_dir / "timings.jsonl", "a") as f:  # not a result: wall times differ run to run
            f.write(json.dumps({"unit_id": unit["unit_id"], "kind": unit["kind"], "card": unit.get("card"),
                                "model": unit.get("model"), "wall_s": round(wall_s, 2)}) + "\n")
        bar.update(1)

    pool_desc = "in this process"
    try:
        for u in (u for u in todo if u["where"] == "local"):
            t1 = time.perf_counter()
            metrics = run_estimator(u, str(out_dir)) if u["kind"] == "estimator" else run_estimate(u)
            finish(u, metrics, time.perf_counter() - t1)
        remote = [u for u in todo if u["where"] == "pool"]
        if remote:
            with Pool(workers=workers, scheduler=scheduler) as pool:
                pool_desc = pool.describe()
                for i, (metrics, wall_s) in pool.map_unordered(timed_run_unit, remote,
                                                                groups=[program_group(u) for u in remote]):
                    finish(remote[i], metrics, wall_s)
    finally:
        bar.close()
    rows = store.write_tables(order())
    wall = time.perf_counter() - t0
    meta = {"suite": suite.name, "runs": len(units), "ran": len(todo), "wall_s": round(wall, 1),
            "pool": pool_desc, "machine": f"{platform.node()} ({platform.machine()}, "
                                         f"{os.cpu_count()} cores, {platform.system()})",
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "unit_wall_s": {k: {"n": len(v), "median": round(sorted(v)[len(v) // 2], 2), "max": round(max(v), 2)}
                            for k, v in sorted(walls.items())}}
    atomic_write_text(out_dir / "run.json", json.dumps(meta, indent=1) + "\n")
    figs = []
    if figures:
        from .figures import suite_figures

        figs = suite_figures(rows, out_dir / "figures", token_rate_per_s=suite.token_rate_per_s,
                             headline_drift_time_s=suite.headline_drift_time_s,
                             headline_steps=suite.headline_steps)
    from .report import write_report

    write_report(suite, rows, out_dir, meta, figs)
    return {**meta, "rows": len(rows), "out_dir": str(out_dir), "figures": [str(f) for f in figs]}
