"""The regime map: crossover detection on constructed cases, and the quick map's crossovers against its own points."""
import math

import pytest

from analogdiff.bench.figures import regime_map_figure
from analogdiff.bench.regimes import crossover, format_regime_table, regime_map


def test_crossover_on_a_constructed_monotone_case():
    x = [1.0, 2.0, 4.0, 8.0]
    # y = x is a straight line in log–log: it meets 3 at exactly x = 3
    assert crossover(x, x, 3.0) == pytest.approx(3.0, rel=1e-12)
    # y = 10·x² meets 160 at x = 4, a grid point
    assert crossover(x, [10 * v * v for v in x], 160.0) == 4.0
    # decreasing y = 8 / x meets 1.5 at x = 8 / 1.5
    assert crossover(x, [8 / v for v in x], 1.5) == pytest.approx(8 / 1.5, rel=1e-12)
    # no crossing on the grid
    assert crossover(x, x, 0.5) is None and crossover(x, x, 9.0) is None
    # a reference that varies along the grid
    assert crossover(x, x, [3.0, 3.0, 3.0, 3.0]) == pytest.approx(3.0)


def test_quick_map_crossovers_sit_between_their_points(tmp_path):
    r = regime_map(quick=True)
    assert {a["card"] for a in r["ar"]} == {"pcm-ibm", "h100-sxm"} and not r["skipped"]
    ar = {(a["card"], a["batch"]): a for a in r["ar"]}
    found = 0
    for c in r["crossovers"]:
        pts = sorted((p["steps_per_token"], p["energy_per_token_j"]) for p in r["points"]
                     if (p["card"], p["batch"], p["block_len"], p["cache"]) ==
                     (c["card"], c["batch"], c["block_len"], c["cache"]))
        e_ar = ar[(c["card"], c["batch"])]["energy_per_token_j"]
        below = [x for x, e in pts if e < e_ar]
        if c["energy_crossover"] is None:
            assert len(below) in (0, len(pts))
            assert c["energy_wins"] == ("diffusion" if below else "ar")
        else:
            found += 1
            lo = max(below)
            hi = min(x for x, e in pts if e >= e_ar)
            assert lo < c["energy_crossover"] <= hi
    # batch 1 on the H100: blocks of 32 with the cache beat AR's energy at 1/4 step per token, not at 1
    assert found >= 1
    text = format_regime_table(r)
    assert "Assumptions:" in text and "crossover" in text.lower()
    fig = regime_map_figure(r, tmp_path / "regime_map")
    assert (tmp_path / "regime_map.png").exists()
    assert fig.axes[0].get_ylabel().startswith("J per generated token")
    assert all(math.isfinite(p["tokens_per_s"]) for p in r["points"])
