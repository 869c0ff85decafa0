"""The one statistics convention of every report: mean ± sample standard deviation over seeds (ddof = 1),
and a 95% interval wherever two numbers are compared.

    summary([2.91, 2.93, 2.92])              # {"mean", "std", "n", "ci95": [lo, hi]}
    difference([...], [...], paired=True)    # mean difference a − b with its 95% interval

Intervals of a mean are Student-t intervals over the seeds (exact for normal draws, conservative enough for
3–10 seeds); with one value the std is 0 and the interval is [mean, mean] — one seed says nothing about
spread, and reports mark such rows ``n = 1``. Experiments with prompts (the completion task) use
:func:`bootstrap`: a percentile bootstrap over prompts and seeds together.
"""
from __future__ import annotations

import math
from typing import Sequence


def _t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def summary(values: Sequence[float]) -> dict:
    """Mean, sample std (ddof = 1; 0 for one value), count and 95% t-interval of the mean."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("summary: no values")
    mean = math.fsum(xs) / n
    if n == 1:
        return {"mean": mean, "std": 0.0, "n": 1, "ci95": [mean, mean]}
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = _t_quantile(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci95": [mean - half, mean + half]}


def difference(a: Sequence[float], b: Sequence[float], paired: bool = True) -> dict:
    """Mean of a − b with its 95% interval: paired (same seeds, same order) or Welch's unpaired interval.
    ``distinguishable`` is False when the interval contains 0."""
    a, b = [float(x) for x in a], [float(x) for x in b]
    if paired:
        if len(a) != len(b):
            raise ValueError(f"difference: paired samples need equal lengths, got {len(a)} and {len(b)}")
        out = summary([x - y for x, y in zip(a, b)])
    else:
        sa, sb = summary(a), summary(b)
        mean = sa["mean"] - sb["mean"]
        if sa["n"] < 2 or sb["n"] < 2:
            out = {"mean": mean, "std": 0.0, "n": min(sa["n"], sb["n"]), "ci95": [mean, mean]}
        else:
            va, vb = sa["std"] ** 2 / sa["n"], sb["std"] ** 2 / sb["n"]
            se = math.sqrt(va + vb)
            df = (va + vb) ** 2 / (va ** 2 / (sa["n"] - 1) + vb ** 2 / (sb["n"] - 1)) if se > 0 else 1
            half = _t_quantile(max(int(df), 1)) * se
            out = {"mean": mean, "std": se, "n": min(sa["n"], sb["n"]), "ci95": [mean - half, mean + half]}
    lo, hi = out["ci95"]
    out["distinguishable"] = out["n"] > 1 and (lo > 0 or hi < 0)
    return out


def bootstrap(stat, groups, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile bootstrap of ``stat`` over prompts and seeds together (seeded numpy; same seed, same interval).

    ``groups``: arrays (seeds_i, prompts), all on the same prompts (column j is prompt j in every group).
    Each replicate draws one set of prompt indices shared by every group (the prompts are paired) and, per
    group, its own seed indices (programming/sampling seeds are not paired across groups: different weights
    get unrelated noise draws). ``stat(*arrays)`` maps the resampled groups to a number.
    Returns {"mean": stat on the data, "ci95": [lo, hi], "n_prompts", "n_seeds": [...], "n_boot"}.
    """
    import numpy as np

    arrays = [np.atleast_2d(np.asarray(g, dtype=float)) for g in groups]
    n_p = arrays[0].shape[1]
    if any(a.shape[1] != n_p for a in arrays):
        raise ValueError(f"bootstrap: groups disagree on the number of prompts: {[a.shape for a in arrays]}")
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for r in range(n_boot):
        cols = rng.integers(0, n_p, n_p)
        reps[r] = stat(*[a[rng.integers(0, a.shape[0], a.shape[0])][:, cols] for a in arrays])
    alpha = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return {"mean": float(stat(*arrays)), "ci95": [float(lo), float(hi)], "n_prompts": n_p,
            "n_seeds": [a.shape[0] for a in arrays], "n_boot": n_boot}
