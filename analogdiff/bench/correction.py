"""Does iterative denoising correct analog errors? The effect ablation, the claims table and the loss-vs-T plot.

Effects (``effects = [...]`` of a completion section): ``"all"`` is the card as written; ``"none"`` switches
every effect off (what is left is the weight mapping: the control of the ablation); every other name keeps
that one effect and switches all the others off:

    prog_noise  programming noise          read_noise  read noise             drift  conductance drift
    ir_drop     wire resistance (IR drop)  dac         input DAC              adc    output ADC
    stuck       stuck devices (the card's fractions; a card with none gets STUCK_OFF_FRACTION stuck off)

Claims (:func:`claims`): every number is a bootstrap over prompts and seeds together
(:func:`analogdiff.stats.bootstrap`): prompts are shared by every model and configuration, so they are
resampled jointly; programming/sampling seeds are resampled per configuration and are not paired across
models (different weights get unrelated noise draws). Degradation is ``analog / digital - 1`` of the mean
metric (bits/char of the true continuation; the judge's bits/char of the written text), the digital
reference being the same model on a GPU card (the digital model).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

ZERO_TOL = 5e-3  # an interval within ±ZERO_TOL of 0 is below the tables' printed resolution (e.g. the "none" control)
STUCK_OFF_FRACTION = 0.01  # assumption: 1% of devices stuck off where the card has none (pcm-ibm has none)

_OFF = {"device.prog_noise": None, "device.read_noise": None, "drift": None, "wire": None, "dac": None,
        "adc": None, "device.stuck_on_fraction": 0.0, "device.stuck_off_fraction": 0.0}
_KEEP = {"prog_noise": ("device.prog_noise",), "read_noise": ("device.read_noise",), "drift": ("drift",),
         "ir_drop": ("wire",), "dac": ("dac",), "adc": ("adc",),
         "stuck": ("device.stuck_on_fraction", "device.stuck_off_fraction")}
EFFECTS = ("all", "none") + tuple(_KEEP)


def effect_overrides(effect: str, hw) -> dict:
    """Card overrides that leave only ``effect`` on (``"all"``: none; ``"none"``: everything off)."""
    if effect == "all":
        return {}
    out = dict(_OFF)
    if effect == "none":
        return out
    for key in _KEEP[effect]:
        del out[key]
    if effect == "stuck" and hw.device.stuck_on_fraction == 0 and hw.device.stuck_off_fraction == 0:
        out["device.stuck_off_fraction"] = STUCK_OFF_FRACTION
    return out


# --------------------------------------------------------------------------- per-prompt data


def per_prompt(rows: Sequence[Mapping], metric: str, **where) -> list[list[float]]:
    """The per-prompt vectors of ``metric`` (one per seed) of the completion rows matching ``where``.

    One vector per (card, programming seed): two sections that ran the same model, card, effect, drift time and
    seed (e.g. the log-loss, which does not depend on the sampler) measured the same thing once, not twice."""
    out, seen = [], set()
    for r in rows:
        if r.get("kind") == "completion" and all(r.get(k) == v for k, v in where.items()):
            v = r.get(f"per_prompt.{metric}")
            key = (r.get("card"), r.get("seed"))
            if isinstance(v, str) and key not in seen:
                seen.add(key)
                out.append(json.loads(v))
    return out


def _mean(a) -> float:
    import numpy as np

    return float(np.nanmean(a))


def degradation(analog, digital, seed: int = 0) -> dict:
    """Bootstrap of ``100 (mean analog / mean digital - 1)`` (percent): per-prompt arrays (seeds, prompts)."""
    from analogdiff.stats import bootstrap

    return bootstrap(lambda a, d: 100.0 * (_mean(a) / _mean(d) - 1.0), [analog, digital], seed=seed)


def degradation_difference(a_analog, a_digital, b_analog, b_digital, seed: int = 0) -> dict:
    """Bootstrap of degradation(a) − degradation(b) in percentage points (prompts paired across models)."""
    from analogdiff.stats import bootstrap

    return bootstrap(lambda aa, ad, ba, bd: 100.0 * (_mean(aa) / _mean(ad) - _mean(ba) / _mean(bd)),
                     [a_analog, a_digital, b_analog, b_digital], seed=seed)


def mean_of(values, seed: int = 0) -> dict:
    from analogdiff.stats import bootstrap

    return bootstrap(_mean, [values], seed=seed)


def difference_of(a, b, seed: int = 0) -> dict:
    from analogdiff.stats import bootstrap

    return bootstrap(lambda x, y: _mean(x) - _mean(y), [a, b], seed=seed)


# --------------------------------------------------------------------------- the claims table


def _ci(b: dict | None, unit: str = "") -> str:
    if b is None:
        return "–"
    lo, hi = b["ci95"]
    return f"[{lo:+.2f}, {hi:+.2f}]{unit}"


def _answer(b: dict | None, yes: str, no: str, sign: int = 1) -> str:
    """``yes`` when the interval excludes 0 on the side ``sign``, ``no`` when on the other side, else
    'not distinguishable'."""
    if b is None:
        return "not measured"
    lo, hi = b["ci95"]
    if max(abs(lo), abs(hi)) < ZERO_TOL:
        return "no difference (below the printed resolution: the control)"
    if (lo > 0 and sign > 0) or (hi < 0 and sign < 0):
        return yes
    if (lo > 0 and sign < 0) or (hi < 0 and sign > 0):
        return no
    return "not distinguishable"


def _models(rows, kind: str) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in rows if r.get("kind") == "completion"
                              and r.get("model_kind") == kind))


def _name(m) -> str:
    return Path(str(m)).stem


def claims(rows: Sequence[Mapping], headline_drift_time_s: float = 86400.0) -> list[list[str]]:
    """The claims table: [claim, measured answer, 95% interval, depends on]."""
    out: list[list[str]] = []
    comp = [r for r in rows if r.get("kind") == "completion"]
    if not comp:
        return out
    # the claims below are about the headline card (the first analog card the rows name); other analog cards
    # (the HWA section's) enter only the HWA recovery claims
    analog_cards = list(dict.fromkeys(r["card"] for r in comp if r.get("card_kind") == "analog"))
    hwa = _hwa_claims(comp, analog_cards)
    if analog_cards:
        comp = [r for r in comp if r.get("card_kind") != "analog" or r.get("card") == analog_cards[0]]
    mdlms, ars = _models(comp, "mdlm"), _models(comp, "ar")
    T = headline_drift_time_s

    def rows_of(model, metric, **where):
        return per_prompt(comp, metric, model=model, **where)

    for metric, label in (("loss_bits_per_char", "log-loss of the true continuation"),
                          ("judge_bits_per_char", "judge bits/char of the written text")):
        for n in sorted({r["n_new"] for r in comp}):
            for effect in dict.fromkeys(r["effect"] for r in comp if r.get("effect") not in ("digital", None)):
                times = sorted({r.get("drift_time_s") for r in comp if r.get("effect") == effect},
                               key=lambda x: -1 if x is None else x)
                # MDLM sampler settings of this effect's rows (the log-loss does not depend on them)
                steps = sorted({r["steps"] for r in comp if r.get("effect") == effect and r.get("n_new") == n
                                and r.get("sampler") == "ancestral" and r.get("steps") is not None})
                decodes = [{}] if metric == "loss_bits_per_char" else [{"sampler": "ancestral", "steps": st}
                                                                        for st in steps]
                for t in times:
                    for dec in decodes:
                        out += _degradation_claims(comp, mdlms, ars, metric, label, n, effect, t, dec)
    out += _steps_claims(comp, mdlms, T)
    out += _repair_claims(comp, mdlms + ars, T)
    return out + hwa


def _is_hwa(model) -> bool:
    return _name(model).endswith(HWA_SUFFIX)


HWA_SUFFIX = "-hwa"


def recovered(base_analog, base_digital, hwa_analog, seed: int = 0) -> dict:
    """Bootstrap of the share of the base model's analog loss that its HWA twin recovers (percent):
    ``100 (analog_base − analog_hwa) / (analog_base − digital_base)`` of the mean metric."""
    from analogdiff.stats import bootstrap

    def share(ba, bd, ha):
        gap = _mean(ba) - _mean(bd)
        return 100.0 * (_mean(ba) - _mean(ha)) / gap if gap != 0 else math.nan

    return bootstrap(share, [base_analog, base_digital, hwa_analog], seed=seed)


def _hwa_rows(comp, m, twin, n, analog_cards) -> list[list[str]]:
    out = []
    metric = "loss_bits_per_char"
    w = dict(n_new=n, inject_pct=0.0)
    bd = per_prompt(comp, metric, model=m, effect="digital", **w)
    hd = per_prompt(comp, metric, model=twin, effect="digital", **w)
    if bd and hd:
        b = difference_of(hd, bd)
        out.append([f"{_name(twin)} pays for robustness digitally (log-loss, N = {n})",
                    f"{_answer(b, 'yes', 'no (better)', sign=1)}: {b['mean']:+.3f} bits/char "
                    f"({_mean(hd):.3f} vs {_mean(bd):.3f})", _ci(b, " bits/char"),
                    "digital model (GPU card); HWA: train --hwa pcm-ibm"])
    for card in analog_cards:
        for t in sorted({r.get("drift_time_s") for r in comp if r.get("card") == card and r["model"] == twin
                         and r.get("effect") == "all" and r.get("drift_time_s") is not None}):
            a = dict(card=card, effect="all", drift_time_s=t, **w)
            ba, ha = per_prompt(comp, metric, model=m, **a), per_prompt(comp, metric, model=twin, **a)
            if not (ba and ha and bd):
                continue
            b = recovered(ba, bd, ha)
            out.append([f"HWA recovers {_name(m)}'s analog loss on {card} at {t:g} s (log-loss, N = {n})",
                        f"{_answer(b, 'yes', 'no (HWA loses more)', sign=1)}: {b['mean']:+.0f}% of the "
                        f"base model's loss recovered (analog {_mean(ba):.3f} → {_mean(ha):.3f}, digital "
                        f"{_mean(bd):.3f} bits/char)", _ci(b, "%"),
                        f"card {card} (HWA trained for pcm-ibm), drift {t:g} s, all effects; "
                        f"{len(ba)} seed(s) each, not paired across weights"])
    return out


def _hwa_claims(comp, analog_cards) -> list[list[str]]:
    """Per base model with an HWA twin (``NAME`` and ``NAME-hwa``), card and drift time: the share of the
    analog log-loss that hardware-aware training recovers, and the HWA model's digital price."""
    out = []
    models = list(dict.fromkeys(r["model"] for r in comp))
    for m in models:
        twin = next((h for h in models if _name(h) == _name(m) + HWA_SUFFIX), None)
        if twin is None or _is_hwa(m):
            continue
        for n in sorted({r["n_new"] for r in comp if r["model"] == twin}):
            out += _hwa_rows(comp, m, twin, n, analog_cards)
    return out


def _degradation_claims(comp, mdlms, ars, metric, label, n, effect, t, dec) -> list[list[str]]:
    """One row per (MDLM, AR) pair: their degradations under ``effect`` at drift ``t`` and the difference."""
    out, deg = [], {}
    for m in mdlms + ars:
        extra = {} if m in ars else dec
        a = per_prompt(comp, metric, model=m, effect=effect, drift_time_s=t, n_new=n, inject_pct=0.0, **extra)
        d = per_prompt(comp, metric, model=m, effect="digital", n_new=n, inject_pct=0.0, **extra)
        if a and d:
            deg[m] = (a, d)
    for m in mdlms:
        for r_ in ars:
            if m not in deg or r_ not in deg or _is_hwa(m) != _is_hwa(r_):
                continue
            b = degradation_difference(*deg[m], *deg[r_])
            dm, da = degradation(*deg[m]), degradation(*deg[r_])
            sampler = f"ancestral, T = {dec['steps']}" if dec else "none (log-loss)"
            out.append([
                f"{_name(m)} degrades less than {_name(r_)} ({label}, N = {n})",
                f"{_answer(b, 'no (MDLM degrades more)', 'yes', sign=1)}: MDLM {dm['mean']:+.2f}% {_ci(dm, '%')}, "
                f"AR {da['mean']:+.2f}% {_ci(da, '%')}; difference {b['mean']:+.2f} pp",
                _ci(b, " pp"),
                f"effect: {effect}" + (f", drift {t:g} s" if t else "") + f"; model quality: {_name(r_)}; "
                f"sampler: {sampler}; {b['n_prompts']} prompts, seeds {b['n_seeds']}"])
    return out


def steps_series(comp, model, sampler: str, metric: str, T: float, n: int) -> list[tuple[int, dict, dict]]:
    """[(steps, analog bootstrap, degradation bootstrap)] of ``model``/``sampler`` on the all-effects card."""
    out = []
    for st in sorted({r["steps"] for r in comp if r.get("model") == model and r.get("steps") is not None
                      and r.get("sampler") == sampler and r.get("n_new") == n}):
        a = per_prompt(comp, metric, model=model, effect="all", drift_time_s=T, steps=st, sampler=sampler,
                       n_new=n, inject_pct=0.0)
        d = per_prompt(comp, metric, model=model, effect="digital", steps=st, sampler=sampler, n_new=n,
                       inject_pct=0.0)
        if a and d:
            out.append((st, mean_of(a), degradation(a, d)))
    return out


def _steps_claims(comp, mdlms, T) -> list[list[str]]:
    out = []
    for m in mdlms:
        for n in sorted({r["n_new"] for r in comp if r["model"] == m}):
            for sampler in dict.fromkeys(r["sampler"] for r in comp if r["model"] == m):
                steps = sorted({r["steps"] for r in comp if r["model"] == m and r.get("sampler") == sampler
                                and r.get("n_new") == n and r.get("effect") == "all" and r.get("inject_pct") == 0})
                if len(steps) < 2:
                    continue
                lo, hi = steps[0], steps[-1]

                def deg(st):
                    w = dict(model=m, steps=st, sampler=sampler, n_new=n, inject_pct=0.0)
                    return (per_prompt(comp, "judge_bits_per_char", effect="all", drift_time_s=T, **w),
                            per_prompt(comp, "judge_bits_per_char", effect="digital", **w))
                a_lo, a_hi = deg(lo), deg(hi)
                if not (all(a_lo) and all(a_hi)):
                    continue
                b = degradation_difference(*a_hi, *a_lo)
                out.append([f"more denoising steps shrink {_name(m)}'s analog degradation ({sampler}, N = {n})",
                            f"{_answer(b, 'no (grows)', 'yes', sign=1)}: T = {hi} minus T = {lo}: "
                            f"{b['mean']:+.2f} pp of judge bits/char", _ci(b, " pp"),
                            f"effect: all, drift {T:g} s; sampler {sampler}; AR has no such knob"])
        for n in sorted({r["n_new"] for r in comp if r["model"] == m}):
            for st in sorted({r["steps"] for r in comp if r["model"] == m and r.get("sampler") == "remdm"
                              and r.get("n_new") == n}):
                w = dict(model=m, steps=st, n_new=n, inject_pct=0.0)
                pl = [per_prompt(comp, "judge_bits_per_char", sampler=s, **w,
                                 **({"effect": "all", "drift_time_s": T} if e == "all" else {"effect": e}))
                      for s in ("remdm", "ancestral") for e in ("all", "digital")]
                if not all(pl):
                    continue
                b = degradation_difference(*pl)
                out.append([f"ReMDM remasking shrinks {_name(m)}'s analog degradation vs plain sampling "
                            f"(T = {st}, N = {n})", f"{_answer(b, 'no (grows)', 'yes', sign=1)}: "
                            f"{b['mean']:+.2f} pp of judge bits/char", _ci(b, " pp"),
                            f"effect: all, drift {T:g} s; sampler remdm vs ancestral"])
    return out


def _repair_claims(comp, models, T) -> list[list[str]]:
    out = []
    for m in models:
        for k in sorted({r["inject_pct"] for r in comp if r["model"] == m and r.get("inject_pct", 0) > 0}):
            for sampler in dict.fromkeys(r["sampler"] for r in comp if r["model"] == m):
                for effect in ("digital", "all"):
                    v = per_prompt(comp, "repaired", model=m, sampler=sampler, inject_pct=k, effect=effect)
                    if not v:
                        continue
                    b = mean_of(v)
                    base = per_prompt(comp, "revised_clean", model=m, sampler=sampler, inject_pct=k, effect=effect)
                    above = ""
                    if base and sampler == "remdm":
                        d = difference_of(v, base)
                        above = (f"; uncorrupted characters revised {100 * mean_of(base)['mean']:.1f}%, so above that "
                                 f"base rate {100 * d['mean']:+.1f} pp [{100 * d['ci95'][0]:+.1f}, "
                                 f"{100 * d['ci95'][1]:+.1f}] ({_answer(d, 'repair beyond chance', 'less than chance')})")
                    out.append([f"{_name(m)} ({sampler}) repairs injected errors (k = {k:g}%)",
                                f"{100 * b['mean']:.1f}% of the corrupted characters revised{above}",
                                f"[{100 * b['ci95'][0]:.1f}, {100 * b['ci95'][1]:.1f}]%",
                                f"{'digital' if effect == 'digital' else 'analog, all effects'}; "
                                + ("AR cannot revise: 0 by construction" if sampler == "ar" else
                                   "plain samplers never revise a decoded token" if sampler != "remdm" else
                                   "ReMDM re-masks decoded tokens")])
    return out


def report_section(rows: Sequence[Mapping], headline_drift_time_s: float = 86400.0) -> list[str]:
    """The markdown of the report section "Does denoising correct analog errors?"."""
    table = claims(rows, headline_drift_time_s)
    if not table:
        return []
    lines = ["## Does denoising correct analog errors?", "",
             "Conditional completion of held-out prompts (test plays). Intervals: 95% percentile bootstrap over "
             "prompts and seeds together (prompts paired across models and cards; programming/sampling seeds "
             "are not paired across different weights). Degradation: analog / digital − 1 of the mean, the "
             "digital reference being the same model on a GPU card. A claim reads 'not distinguishable' when "
             "its interval contains 0.", "",
             "| claim | measured answer | 95% interval | depends on |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    return lines + [""]


def loss_vs_steps(rows: Sequence[Mapping], stem, headline_drift_time_s: float = 86400.0) -> Path | None:
    """Judge bits/char of the written continuation vs denoising steps T (MDLM, each sampler, digital and
    analog), with the AR models as horizontal reference lines. Returns the PNG path, or None (no data)."""
    from .figures import _new_figure, save

    comp = [r for r in rows if r.get("kind") == "completion" and r.get("inject_pct", 0) == 0]
    T = headline_drift_time_s
    metric = "judge_bits_per_char"
    n_all = sorted({r["n_new"] for r in comp if r.get("model_kind") == "mdlm" and r.get("steps")})
    if not n_all:
        return None
    n = n_all[0]
    fig = _new_figure()
    ax = fig.subplots()
    drew = False
    for m in _models(comp, "mdlm"):
        for sampler in dict.fromkeys(r["sampler"] for r in comp if r["model"] == m):
            for effect, style in (("digital", "--"), ("all", "-")):
                pts = []
                for st in sorted({r["steps"] for r in comp if r["model"] == m and r.get("sampler") == sampler
                                  and r.get("n_new") == n}):
                    w = dict(model=m, steps=st, sampler=sampler, n_new=n, inject_pct=0.0, effect=effect)
                    if effect == "all":
                        w["drift_time_s"] = T
                    v = per_prompt(comp, metric, **w)
                    if v:
                        b = mean_of(v)
                        pts.append((st, b["mean"], *b["ci95"]))
                if len(pts) >= 2:
                    xs, ys, lo, hi = zip(*pts)
                    ax.errorbar(xs, ys, yerr=[[y - a for y, a in zip(ys, lo)], [b - y for y, b in zip(ys, hi)]],
                                ls=style, marker="o", capsize=3,
                                label=f"{_name(m)} {sampler} ({'digital' if effect == 'digital' else 'analog'})")
                    drew = True
    for m in _models(comp, "ar"):
        for effect, style in (("digital", ":"), ("all", "-.")):
            w = dict(model=m, n_new=n, inject_pct=0.0, effect=effect)
            if effect == "all":
                w["drift_time_s"] = T
            v = per_prompt(comp, metric, **w)
            if v:
                ax.axhline(mean_of(v)["mean"], ls=style, color="k" if effect == "all" else "0.5", lw=1,
                           label=f"{_name(m)} ({'digital' if effect == 'digital' else 'analog'}, no steps)")
    if not drew:
        return None
    ax.set_xscale("log", base=2)
    ax.set_xlabel("denoising steps T")
    ax.set_ylabel(f"judge bits/char of the {n} written characters")
    ax.set_title(f"Completion quality vs denoising steps (analog: all effects, drift {T:g} s; 95% bootstrap)")
    ax.legend(fontsize=7)
    return save(fig, stem)[0]
