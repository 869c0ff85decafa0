"""The one statistics convention of every report: mean ± sample standard deviation over seeds (ddof = 1),
and a 95% interval wherever two numbers are compared.

    summary([2.91, 2.93, 2.92])              # {"mean", "std", "n", "ci95": [lo, hi]}
    difference([...], [...], paired=True)    # mean difference a − b with its 95% interval

Intervals of a mean are Student-t intervals over the seeds (exact for normal draws, conservative enough for
3–10 seeds); with one value the std is 0 and the interval is [mean, mean] — one seed says nothing about
spread, and reports mark such rows ``n = 1``. Bootstrap intervals over prompts live with the experiments that
have prompts.
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
