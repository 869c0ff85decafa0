"""One bench run unit → its metric rows. These functions run wherever the pool puts them (this process or a
Dask worker); they read only the unit spec (plain JSON) and return plain dicts.

``accuracy``    one programming seed of an :class:`~analogdiff.bench.experiment.Experiment` that scores the
                test plays (bits/char, token accuracy), priced from that scoring run's own trace and
                activation statistics (energy per scored character).
``generation``  one seed of an experiment that generates passages (analog: the programmed model; GPU: the
                digital model), judged by the digital AR twin, priced from the sampler's own trace and
                statistics (energy per generated character).
``completion``  one seed of an experiment that continues held-out prompts (:class:`~analogdiff.bench.experiment.
                Complete`), priced from that run's own trace; per-prompt values as JSON lists
                (``per_prompt.<metric>``) for the bootstrap of the correction report.
``estimate``    price a named shape's decode schedule on a card (no model run).
``estimator``   the estimator suite of published shapes.

The experiment module programs, measures and prices; this module only maps a unit to an experiment and its
result to a row.
"""
from __future__ import annotations

from typing import Any

from . import experiment as ex
from .results import flatten


def cost_metrics(report: dict) -> dict:
    """The scalar metrics of a CostReport dict, flattened (``breakdown_j.adc``, ``counts.mvms``, ...)."""
    keep = ("energy_per_token_j", "latency_per_token_s", "energy_per_sequence_j", "latency_per_sequence_s",
            "breakdown_j", "counts", "tiles")
    out = flatten({k: report[k] for k in keep if k in report})
    out["priced_from_stats"] = bool(report.get("stats"))
    for k in ("denoiser_calls", "skipped_calls", "kv_cache_hits"):  # what the traced run did
        if k in report:
            out[f"run.{k}"] = report[k]
    return out


def _spec(unit: dict) -> ex.Experiment:
    seed = unit["seed"] if unit.get("seed") is not None else 0
    common = {"model": unit["model"], "card": unit["card_ref"], "overrides": dict(unit.get("overrides") or {}),
              "drift_time_s": unit["drift_time_s"] if unit.get("drift_time_s") is not None else 0.0,
              "seeds": (seed,)}
    if unit["kind"] == "completion":
        return ex.Experiment(**common, complete=ex.Complete(
            n_new=unit["n_new"], n_prompts=unit["n_prompts"], prompt_len=unit["prompt_len"], steps=unit["steps"],
            sampler=unit["sampler"] if unit["sampler"] != "ar" else "ancestral", eta=unit["eta"],
            temperature=unit["temperature"], inject_pct=unit["inject_pct"], loss=unit["loss"],
            eval_seed=unit["eval_seed"], judge=unit["judge"]))
    if unit["kind"] == "accuracy":
        return ex.Experiment(**common, score=ex.Score(eval_chars=unit["eval_chars"], t_samples=unit["t_samples"],
                                                      batch_size=unit["batch_size"], eval_seed=unit["eval_seed"]))
    lm = ex.model(unit["model"])
    seq_len = min(unit["gen_len"], lm.shape.context_len)
    steps = unit["steps"] if lm.kind == "mdlm" else seq_len
    return ex.Experiment(**common, generate=ex.Generate(steps=steps, seq_len=seq_len, n_samples=unit["gen_samples"],
                                                        eval_seed=unit["eval_seed"], judge=unit["judge"]))


def run_experiment_unit(unit: dict) -> list[dict]:
    """The row of an accuracy or generation unit: one seed of its experiment."""
    import json

    spec = _spec(unit)
    task = {"accuracy": "score", "generation": "generate", "completion": "complete"}[unit["kind"]]
    res = ex.run_seed(spec, spec.seeds[0])
    row: dict[str, Any] = {k: float(v) for k, v in res["metrics"].items() if isinstance(v, (int, float))}
    row.update(cost_metrics(res["cost"][task]))
    row.update({f"stats.{k}": v for k, v in ex.stats_summary(res["stats"].get(task)).items()})
    row["tokens_priced"] = res["cost"][task]["generated_tokens"]
    for k, v in res.get("per_prompt", {}).items():
        row[f"per_prompt.{k}"] = json.dumps([round(x, 6) for x in v])
    return [row]


def run_estimate(unit: dict) -> list[dict]:
    from analogdiff.energy import Autoregressive, Diffusion, estimate

    hw = ex.hardware(unit["card_ref"], unit.get("overrides"))
    if unit["decode"] == "diffusion":
        decode = Diffusion(steps=unit["steps"], seq_len=unit["seq_len"], block_len=unit.get("block_len"))
    else:
        decode = Autoregressive(seq_len=unit["seq_len"])
    return [cost_metrics(estimate(unit["shape"], hw, decode=decode, batch=unit["batch"]).to_dict())]


def run_estimator(unit: dict, out_dir: str) -> list[dict]:
    from pathlib import Path

    from .estimator_suite import run_estimator_suite

    rows = run_estimator_suite(Path(out_dir) / "estimator", quick=unit["quick"], progress=False)
    return [flatten(r) for r in rows]


RUNNERS = {"accuracy": run_experiment_unit, "generation": run_experiment_unit, "completion": run_experiment_unit,
           "estimate": run_estimate}


def run_unit(unit: dict) -> list[dict]:
    """Metric rows of one pool unit (accuracy, generation or estimate)."""
    return RUNNERS[unit["kind"]](unit)


def timed_run_unit(unit: dict) -> tuple[list[dict], float]:
    """(metric rows, wall seconds) of one pool unit."""
    import time

    t0 = time.perf_counter()
    rows = run_unit(unit)
    return rows, time.perf_counter() - t0


def program_group(unit: dict):
    """Units that share a programmed model (same model, card, overrides and seed) share this key; None for
    units that program nothing (GPU cards)."""
    if unit.get("card_kind") != "analog":
        return None
    return (unit["model"], unit["card_ref"], repr(sorted((unit.get("overrides") or {}).items())), unit.get("seed"))
