"""Pareto fronts against hand-checked cases."""
import pytest

from analogdiff.bench.pareto import dominates, pareto_front


def test_front_by_hand_minimize_both():
    # (energy, bits/char): b dominates d (both lower); c is the cheapest; a the most accurate;
    # e equals b's energy with worse accuracy → dominated by b.
    pts = [(5.0, 1.0),   # a: front (lowest bits/char)
           (2.0, 2.0),   # b: front
           (1.0, 4.0),   # c: front (lowest energy)
           (3.0, 3.0),   # d: dominated by b
           (2.0, 2.5)]   # e: dominated by b
    assert pareto_front(pts, ("minimize", "minimize")) == [0, 1, 2]


def test_front_with_maximized_accuracy_and_duplicates():
    # (token accuracy ↑, energy ↓)
    pts = [(0.50, 1.0), (0.60, 2.0), (0.55, 3.0), (0.60, 2.0), (0.40, 0.5), (float("nan"), 0.1)]
    # (0.55, 3) is dominated by (0.60, 2); duplicates of a front point are both kept; NaN never on the front
    assert pareto_front(pts, ("maximize", "minimize")) == [0, 1, 3, 4]


def test_dominates_needs_strictly_better_somewhere():
    assert not dominates((1, 1), (1, 1), ("minimize", "minimize"))
    assert dominates((1, 1), (1, 2), ("minimize", "minimize"))
    assert not dominates((1, 3), (2, 2), ("minimize", "minimize"))


def test_front_matches_brute_force_on_random_points():
    import random

    rng = random.Random(0)
    pts = [(rng.random(), rng.random(), rng.random()) for _ in range(200)]
    dirs = ("minimize", "maximize", "minimize")
    sign = [1, -1, 1]
    expect = [i for i, p in enumerate(pts)
              if not any(all(s * q[k] <= s * p[k] for k, s in enumerate(sign)) and q != p for q in pts)]
    assert pareto_front(pts, dirs) == expect


def test_bad_direction():
    with pytest.raises(ValueError, match="directions"):
        pareto_front([(1, 2)], ("minimize", "smaller"))
