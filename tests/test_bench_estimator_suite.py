"""The estimator suite (quick): its files, its rows, and the published anchors beside them."""
import csv
import json

import pytest

from analogdiff.bench.estimator_suite import anchors, run_estimator_suite, suite_units


def test_full_suite_covers_every_published_shape_card_and_schedule():
    units = suite_units(quick=False)
    assert len(units) == 8 * 3 * 4                      # shapes × cards × (AR, T = 64, 256, seq_len)
    assert {u["steps"] for u in units if u["decode"] == "diffusion"} == {64, 256, 1024}


def test_quick_suite_writes_its_files(tmp_path):
    rows = run_estimator_suite(tmp_path, quick=True, progress=False)
    assert len(rows) == len(suite_units(quick=True))
    for name in ("estimator.json", "estimator.csv", "anchors.csv", "estimator_table.txt",
                 "estimator_breakdown.png", "estimator_energy_vs_steps.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    data = json.loads((tmp_path / "estimator.json").read_text())
    assert len(data["rows"]) == len(rows) and len(data["anchors"]) == 4
    with open(tmp_path / "estimator.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    for r in rows:
        if r["decode"] == "ar":
            assert r["energy_vs_ar"] == 1.0
        else:                                            # more steps, more energy, on every card
            assert r["energy_per_token_j"] > 0
    diff = {(r["shape"], r["card"], r["steps"]): r["energy_per_token_j"] for r in rows if r["decode"] == "diffusion"}
    for (shape, card, t), e in diff.items():
        if (shape, card, 256) in diff and t == 64:
            assert diff[(shape, card, 256)] == pytest.approx(4 * e, rel=1e-9)


def test_anchors_hold():
    by_name = {a["anchor"]: a for a in anchors()}
    hermes = by_name["pcm-hermes: TOPS/W 1-phase"]          # the figure of energy.validate, its one home
    assert hermes["pass"] and hermes["published"] == 9.76 and "Le Gallo" in hermes["source"]
    assert by_name["pcm-ibm: GOPS/W ISAAC IMA"]["pass"] is None                       # context
    assert by_name["Llama-3-8B bf16 batch-1 decode vs weight-streaming bound"]["pass"]
    assert by_name["h100-sxm: J/token @ batch 64"]["pass"]
