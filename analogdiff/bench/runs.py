"""One bench run unit → its metric rows. These functions run wherever the pool puts them (this process or a
Dask worker); they read only the unit spec (plain JSON) and return plain dicts.

``accuracy``    analogize the model on the card with the programming seed, move it to the drift time,
                evaluate bits/char and token accuracy on the test plays, then price its decode with the
                activation statistics collected during that evaluation.
``generation``  generate passages (on the analogized model, or on the digital model for a GPU card), score
                them with the digital AR judge (generative perplexity, entropy) and price the decode.
``estimate``    price a named shape's decode on a card (no model run).
``estimator``   the estimator suite of published shapes.

A worker keeps the models it loaded and the analog models it programmed (a few, most recent first); each
unit runs on a fresh deep copy of the programmed model, so a unit's result never depends on which units
ran before it on that worker.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

from .results import flatten

_MODELS: dict[str, Any] = {}
_PROGRAMMED: OrderedDict = OrderedDict()
_PROGRAMMED_MAX = 3


def _model(ref: str):
    from analogdiff.lm import load_model

    if ref not in _MODELS:
        _MODELS[ref] = load_model(ref)
    return _MODELS[ref]


def _hardware(unit: dict):
    from analogdiff.config import load_hardware

    return load_hardware(unit["card_ref"], overrides=dict(unit.get("overrides") or {}))


def calibration_ids(model, n_windows: int = 4):
    """Token ids (n_windows, context_len) from the validation plays for converter-range calibration (never
    the test plays the accuracy is measured on)."""
    from analogdiff.lm import corpus

    ids = corpus.split_ids("validation", model.vocab)
    return corpus.tiled_windows(ids, model.shape.context_len)[:n_windows]


def programmed(model_ref: str, hw, seed: int, drift_time_s: float | None = None):
    """A fresh copy of ``model_ref`` analogized on ``hw`` with programming seed ``seed`` and moved to
    ``drift_time_s`` (None: left as programmed). The programmed and the drifted models are cached per worker;
    ``set_drift_time`` resets each layer's read-noise generator, so a copy of a cached drifted model runs
    exactly as a freshly drifted one."""
    from analogdiff.crossbar.layers import analogize, set_drift_time

    key = (model_ref, repr(hw), seed)
    if key not in _PROGRAMMED:
        model = _model(model_ref)
        _PROGRAMMED[key] = analogize(model, hw, seed=seed, calibration=calibration_ids(model))
    _PROGRAMMED.move_to_end(key)
    base = _PROGRAMMED[key]
    if drift_time_s is not None:
        dkey = key + (float(drift_time_s),)
        if dkey not in _PROGRAMMED:
            drifted = copy.deepcopy(base)
            set_drift_time(drifted, float(drift_time_s))
            _PROGRAMMED[dkey] = drifted
        _PROGRAMMED.move_to_end(dkey)
        base = _PROGRAMMED[dkey]
    while len(_PROGRAMMED) > _PROGRAMMED_MAX:
        _PROGRAMMED.popitem(last=False)
    return copy.deepcopy(base)


def energy_shape(model):
    """The estimator's shape of a character LM, read from its model card (shipped or not)."""
    from analogdiff.shapes import shape_from_dict

    return shape_from_dict(model.shape.to_dict(), where=f"model {model.shape.name}")


def decode_for(kind: str, steps: int | None, seq_len: int):
    from analogdiff.energy import Autoregressive, Diffusion

    return Diffusion(steps=steps, seq_len=seq_len) if kind == "mdlm" else Autoregressive(seq_len=seq_len)


def cost_metrics(report) -> dict:
    """The scalar metrics of a CostReport, flattened (``breakdown_j.adc``, ``counts.mvms``, ...)."""
    d = report.to_dict()
    keep = ("energy_per_token_j", "latency_per_token_s", "energy_per_sequence_j", "latency_per_sequence_s",
            "breakdown_j", "counts", "tiles")
    out = flatten({k: d[k] for k in keep if k in d})
    if "stats" in d:
        out["priced_from_stats"] = bool(d["stats"])
    return out


STATS_KEYS = ("mean_abs_x_norm", "mean_x2_norm", "mean_g_us", "adc_clip_fraction")


def stats_summary(stats: dict) -> dict:
    """Means over analog layers of the activation statistics in :data:`STATS_KEYS` (``stats.<key>``)."""
    layers = [e for e in (stats or {}).get("layers", {}).values() if isinstance(e, dict)]
    out = {}
    for k in STATS_KEYS:
        vals = [float(e[k]) for e in layers if isinstance(e.get(k), (int, float))]
        if vals:
            out[f"stats.{k}"] = sum(vals) / len(vals)
    return out


def run_accuracy(unit: dict) -> list[dict]:
    from analogdiff.crossbar.layers import collect_stats
    from analogdiff.energy import estimate
    from analogdiff.lm.evaluate import evaluate

    model = _model(unit["model"])
    hw = _hardware(unit)
    amodel = programmed(unit["model"], hw, unit["seed"] if unit["seed"] is not None else 0, unit["drift_time_s"])
    metrics = evaluate(amodel, split="test", seed=unit["eval_seed"], max_chars=unit["eval_chars"],
                       t_samples=unit["t_samples"], gen_ppl=False)
    stats = collect_stats(amodel)
    seq_len = unit["seq_len"] or model.shape.context_len
    report = estimate(energy_shape(model), hw, decode=decode_for(model.kind, unit["steps"], seq_len),
                      stats=stats)
    row = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    row.update(cost_metrics(report))
    row.update(stats_summary(stats))
    row["seq_len"] = seq_len
    return [row]


def run_generation(unit: dict) -> list[dict]:
    from analogdiff.energy import estimate
    from analogdiff.lm.evaluate import char_entropy, judge_perplexity
    from analogdiff.lm.sampling import generate_ids

    model = _model(unit["model"])
    hw = _hardware(unit)
    seq_len = min(unit["gen_len"], model.shape.context_len)
    stats = None
    if unit["card_kind"] == "analog":
        from analogdiff.crossbar.layers import collect_stats

        runner = programmed(unit["model"], hw, unit["seed"] if unit["seed"] is not None else 0,
                            unit["drift_time_s"])
    else:
        runner = model  # a GPU runs the digital model
    steps = unit["steps"] if model.kind == "mdlm" else seq_len
    ids, info = generate_ids(runner, n_samples=unit["gen_samples"], steps=steps, seed=unit["eval_seed"],
                             seq_len=seq_len)
    if unit["card_kind"] == "analog":
        stats = collect_stats(runner)
    judge = _model(unit["judge"])
    row = {"gen_ppl": judge_perplexity(judge, ids), "entropy": char_entropy(ids, model.vocab.size),
           "nfe": int(info.get("nfe") or 0), "seq_len": seq_len}
    report = estimate(energy_shape(model), hw,
                      decode=decode_for(model.kind, unit["steps"], seq_len), stats=stats)
    row.update(cost_metrics(report))
    if stats is not None:
        row.update(stats_summary(stats))
    return [row]


def run_estimate(unit: dict) -> list[dict]:
    from analogdiff.energy import Autoregressive, Diffusion, estimate

    hw = _hardware(unit)
    if unit["decode"] == "diffusion":
        decode = Diffusion(steps=unit["steps"], seq_len=unit["seq_len"], block_len=unit.get("block_len"))
    else:
        decode = Autoregressive(seq_len=unit["seq_len"])
    return [cost_metrics(estimate(unit["shape"], hw, decode=decode, batch=unit["batch"]))]


def run_estimator(unit: dict, out_dir: str) -> list[dict]:
    from pathlib import Path

    from .estimator_suite import run_estimator_suite

    rows = run_estimator_suite(Path(out_dir) / "estimator", quick=unit["quick"], progress=False)
    return [flatten(r) for r in rows]


RUNNERS = {"accuracy": run_accuracy, "generation": run_generation, "estimate": run_estimate}


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
