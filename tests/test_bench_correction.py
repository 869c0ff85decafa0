"""The correction suite's machinery: each ablation keeps exactly its effect, completion sections validate and
expand as documented, and the claims read 'not distinguishable' / 'yes' / 'no' from the bootstrap interval."""
import json

import numpy as np
import pytest
from bench_fixtures import tiny_models

from analogdiff.bench.correction import EFFECTS, STUCK_OFF_FRACTION, claims, degradation, effect_overrides
from analogdiff.bench.suite import SuiteError, load_suite, validate_suite
from analogdiff.config import load_hardware


def _on(hw) -> set:
    d = hw.device
    on = {"prog_noise": d.prog_noise is not None, "read_noise": d.read_noise is not None,
          "drift": hw.drift is not None, "ir_drop": hw.wire is not None, "dac": hw.dac is not None,
          "adc": hw.adc is not None, "stuck": d.stuck_on_fraction > 0 or d.stuck_off_fraction > 0}
    return {k for k, v in on.items() if v}


def test_each_effect_alone_keeps_exactly_that_effect():
    base = load_hardware("pcm-ibm")
    assert _on(base) == set(EFFECTS) - {"all", "none", "stuck"}  # pcm-ibm has no stuck devices
    for effect in EFFECTS:
        hw = load_hardware("pcm-ibm", overrides=effect_overrides(effect, base))
        expected = {"all": _on(base), "none": set()}.get(effect, {effect})
        assert _on(hw) == expected, effect
    stuck = load_hardware("pcm-ibm", overrides=effect_overrides("stuck", base))
    assert stuck.device.stuck_off_fraction == STUCK_OFF_FRACTION


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("corr"))


def _section(models, **kw):
    s = {"name": "c", "kind": "completion", "models": [models["mdlm"], models["ar"]], "cards": ["pcm-ibm", "h100-sxm"],
         "effects": ["all", "read_noise", "dac"], "drift_times_s": [1.0, 86400.0], "seeds": [0, 1], "n_new": [8],
         "n_prompts": 4, "prompt_len": 8, "steps": [4, 8], "samplers": ["ancestral", "remdm"], "inject_pct": [0, 10],
         "loss": "l2r"}
    s.update(kw)
    return {"name": "t", "section": [s]}


def test_completion_section_expands_as_documented(models):
    suite = validate_suite(_section(models))
    units = suite.units()
    mdlm = [u for u in units if u["model_kind"] == "mdlm"]
    ar = [u for u in units if u["model_kind"] == "ar"]
    # analog: all (2 seeds × 2 drift times), read noise (2 seeds, no drift), dac (deterministic, once); digital once
    configs = 2 * 2 + 2 + 1 + 1
    assert len(mdlm) == configs * 2 * 2 * 2  # × steps × samplers × inject
    assert len(ar) == configs * 2  # AR: one decode × inject
    assert {u["effect"] for u in units if u["card"] == "h100-sxm"} == {"digital"}
    assert all(u["judge"] == models["ar"] for u in units)
    assert len({u["unit_id"] for u in units}) == len(units)


@pytest.mark.parametrize("change, field", [
    ({"effects": ["wires"]}, "effects"), ({"samplers": ["greedy"]}, "sampler"), ({"inject_pct": [120]}, "inject_pct"),
    ({"loss": "exact"}, "loss"), ({"n_new": [80]}, "n_new"), ({"steps": [0]}, "steps")])
def test_bad_completion_sections_fail_in_one_line(models, change, field):
    with pytest.raises(SuiteError) as e:
        validate_suite(_section(models, **change))
    msg = str(e.value)
    assert "\n" not in msg and field in msg


def test_shipped_correction_suite_loads():
    suite = load_suite("correction", check_models=False)
    assert [s["name"] for s in suite.sections][0] == "headline"
    assert all(s["kind"] == "completion" for s in suite.sections)


def _row(model, kind, effect, values, **kw):
    return {"kind": "completion", "model": model, "model_kind": kind, "effect": effect, "n_new": 8,
            "inject_pct": 0.0, "drift_time_s": 86400.0 if effect != "digital" else None,
            "sampler": "ancestral" if kind == "mdlm" else "ar", "steps": 8 if kind == "mdlm" else None,
            "per_prompt.loss_bits_per_char": json.dumps(list(values)), **kw}


def test_claims_read_the_interval():
    rng = np.random.default_rng(0)
    base = rng.uniform(2.0, 3.0, 60)
    rows = [_row("m", "mdlm", "digital", base), _row("m", "mdlm", "all", base * 1.01 + rng.normal(0, .01, 60)),
            _row("a", "ar", "digital", base), _row("a", "ar", "all", base * 1.10 + rng.normal(0, .01, 60))]
    table = claims(rows)
    assert len(table) == 1 and table[0][1].startswith("yes")  # the MDLM degrades 1%, the AR 10%
    rows[3] = _row("a", "ar", "all", base * 1.01 + rng.normal(0, .05, 60))
    assert claims(rows)[0][1].startswith("not distinguishable")
    d = degradation([base * 1.05], [base])
    assert d["mean"] == pytest.approx(5.0) and d["ci95"][0] == pytest.approx(5.0)


def test_hwa_recovery_by_hand_and_on_its_card_only():
    # base model: digital 2.0, analog 2.4 (gap 0.4); HWA twin: analog 2.1 -> recovers (2.4 - 2.1) / 0.4 = 75 %
    ones = np.ones(40)
    ibm, gpu = {"card": "pcm-ibm", "card_kind": "analog"}, {"card": "h100-sxm", "card_kind": "gpu"}
    rows = [_row("m", "mdlm", "digital", 2.0 * ones, **gpu), _row("m", "mdlm", "all", 2.4 * ones, **ibm),
            _row("m-hwa", "mdlm", "digital", 2.05 * ones, **gpu), _row("m-hwa", "mdlm", "all", 2.1 * ones, **ibm)]
    other = [dict(rows[1], card="pcm-hermes"),
             _row("m-hwa", "mdlm", "all", 2.6 * ones, card="pcm-hermes", card_kind="analog")]  # HWA loses more
    table = claims(rows + other)
    rec = {r[0]: r for r in table if r[0].startswith("HWA recovers")}
    ibm = next(v for k, v in rec.items() if "pcm-ibm" in k)
    hermes = next(v for k, v in rec.items() if "pcm-hermes" in k)
    assert ibm[1].startswith("yes: +75%") and ibm[2] == "[+75.00, +75.00]%"
    assert hermes[1].startswith("no (HWA loses more): -50%")  # (2.4 - 2.6) / 0.4
    price = next(r for r in table if "pays for robustness" in r[0])
    assert "+0.050 bits/char" in price[1]
    # the headline claims (degradation of MDLM vs AR) see pcm-ibm only: no pcm-hermes row enters them
    assert all("pcm-hermes" not in r[3] for r in table if r[0].startswith(("m ", "m-hwa ")))


def test_a_rounding_sized_interval_reads_as_no_difference():
    base = np.linspace(2.0, 3.0, 30)
    rows = [_row("m", "mdlm", "digital", base), _row("m", "mdlm", "none", base * (1 + 1e-12)),
            _row("a", "ar", "digital", base), _row("a", "ar", "none", base)]
    assert claims(rows)[0][1].startswith("no difference")
