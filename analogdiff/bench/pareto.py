"""Pareto fronts of points with several objectives (pure Python, no dependencies).

A point ``a`` dominates ``b`` when it is no worse in every objective and strictly better in one; the front
is the set of points no other point dominates. Directions say per objective whether lower ("minimize") or
higher ("maximize") is better.
"""
from __future__ import annotations

import math
from typing import Sequence

DIRECTIONS = ("minimize", "maximize")

# Which way is better for the metrics the bench and tuner report.
METRIC_DIRECTIONS = {
    "bits_per_char": "minimize",
    "token_accuracy": "maximize",
    "next_char_accuracy": "maximize",
    "gen_ppl": "minimize",
    "energy_per_token_j": "minimize",
    "latency_per_token_s": "minimize",
}


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether point ``a`` dominates point ``b`` under ``directions``."""
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices (ascending) of the non-dominated points among ``points`` (each a tuple of objective values).

    Points with a NaN objective are never on the front. Duplicated points are all kept.
    """
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"directions: {d!r} is not one of {', '.join(DIRECTIONS)}")
    pts = [tuple(float(v) for v in p) for p in points]
    if any(len(p) != len(directions) for p in pts):
        raise ValueError(f"points: every point needs {len(directions)} objective values")
    ok = [i for i, p in enumerate(pts) if all(math.isfinite(v) for v in p)]
    return [i for i in ok if not any(dominates(pts[j], pts[i], directions) for j in ok if j != i)]
