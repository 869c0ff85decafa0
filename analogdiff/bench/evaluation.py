"""A language model's accuracy on a hardware card, over programming seeds, and its data-dependent cost.

    out = evaluate_on_hardware("shakespeare-mdlm", "pcm-ibm", drift_time_s=3600, seeds=[0, 1, 2])

For each programming seed: analogize the model on the card (converter ranges calibrated on validation plays,
never the test plays), move it to ``drift_time_s`` after programming, run ``lm.evaluate`` on the test plays
while the analog layers record activation statistics, and price one decode with those statistics. Metrics over
several seeds are reported as ``{"mean": .., "std": ..}`` (population std over seeds); with one seed, plain
numbers. A GPU card has no analog layers: the digital model is evaluated and priced on the roofline.
"""
from __future__ import annotations

import math
from typing import Any, Sequence


def _aggregate(per_seed: list[dict]) -> dict:
    """{key: {"mean", "std"}} over seeds for every numeric key present in all runs; one run: plain numbers."""
    if len(per_seed) == 1:
        return dict(per_seed[0])
    out: dict[str, Any] = {}
    for key in per_seed[0]:
        values = [run[key] for run in per_seed if isinstance(run.get(key), (int, float))]
        if len(values) != len(per_seed):
            continue
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        out[key] = {"mean": mean, "std": std}
    return out


def program(model, hw, seed: int, drift_time_s: float):
    """An analog copy of ``model`` on ``hw`` (programming seed ``seed``) at ``drift_time_s`` after programming."""
    from analogdiff.bench.runs import calibration_ids
    from analogdiff.crossbar.layers import analogize, set_drift_time

    amodel = analogize(model, hw, seed=seed, calibration=calibration_ids(model))
    set_drift_time(amodel, drift_time_s)
    return amodel


def evaluate_on_hardware(model_ref: str, hardware, drift_time_s: float = 0.0, seeds: Sequence[int] = (0,),
                         overrides: dict | None = None, gen_steps: int = 64, **eval_kwargs) -> dict:
    """Metrics of ``model_ref`` on ``hardware`` at ``drift_time_s``, over programming ``seeds``.

    ``eval_kwargs`` go to ``analogdiff.lm.evaluate`` (budgets: ``max_chars``, ``t_samples``, ``gen_ppl``,
    ``n_samples``, ...). Returns ``{"model", "hardware", "drift_time_s", "seeds", "metrics", "per_seed",
    "cost", "stats"}`` where ``cost`` is the decode of one ``context_len`` passage (MDLM: ``gen_steps``
    denoising steps; AR: KV-cached) priced with the activation statistics of the first seed.
    """
    from analogdiff.bench.runs import decode_for, energy_shape
    from analogdiff.config import load_hardware
    from analogdiff.crossbar.layers import collect_stats
    from analogdiff.energy import estimate
    from analogdiff.lm import evaluate, load_model

    if not isinstance(drift_time_s, (int, float)) or not math.isfinite(drift_time_s) or drift_time_s < 0:
        raise ValueError(f"drift_time_s: must be a finite number of seconds >= 0, got {drift_time_s!r}")
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds: must be a non-empty list of integers >= 0, got {seeds!r}")
    hw = load_hardware(hardware, overrides=overrides)
    model = load_model(model_ref)
    per_seed, stats = [], None
    for seed in seeds:
        if hw.kind == "analog":
            amodel = program(model, hw, seed, float(drift_time_s))
            per_seed.append(evaluate(amodel, seed=seed, **eval_kwargs))
            if stats is None:
                stats = collect_stats(amodel)
        else:
            per_seed.append(evaluate(model, seed=seed, **eval_kwargs))
    shape = energy_shape(model)
    decode = decode_for(model.kind, gen_steps if model.kind == "mdlm" else None, shape.context_len)
    report = estimate(shape, hw, decode=decode, stats=stats)
    return {"model": model_ref, "hardware": hw.name, "drift_time_s": float(drift_time_s), "seeds": seeds,
            "metrics": _aggregate(per_seed), "per_seed": per_seed, "cost": report.to_dict(), "stats": stats}
