"""report.md of a bench run: the headline, the tables of every section, the budgets and the figures.

Every number comes from the rows of the run (results.json); mean ± std are over programming seeds
(sample std, ddof = 1) and every comparison carries its 95% interval (:mod:`analogdiff.stats`). The "Run" line (date, machine, wall time) is the only content that changes between
two runs of the same suite with the same seeds.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from .figures import _drift_label, _finite
from .results import aggregate, atomic_write_text, split_ir_rows


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}g}"


def pm(g: Mapping, metric: str, digits: int = 3) -> str:
    """'mean ± std' of an aggregate group, or '–'."""
    if f"{metric}.mean" not in g:
        return "–"
    if g.get(f"{metric}.n", 1) < 2:
        return fmt(g[f"{metric}.mean"], digits)
    mean, std = g[f"{metric}.mean"], g[f"{metric}.std"]
    if isinstance(mean, (int, float)) and isinstance(std, (int, float)) and abs(std) <= 1e-12 * abs(mean):
        std = 0.0  # rounding noise of a quantity the seeds do not change (e.g. pipeline latency)
    return f"{fmt(mean, digits)} ± {fmt(std, 2)}"


def ci(g: Mapping, metric: str, scale: float = 1.0, unit: str = "") -> str:
    """'[lo, hi]' 95% interval of an aggregate group's mean, or 'n = 1' when one seed ran."""
    if f"{metric}.ci95" not in g:
        return "–"
    if g.get(f"{metric}.n", 1) < 2:
        return "n = 1"
    lo, hi = g[f"{metric}.ci95"]
    return f"[{scale * lo:+.2f}, {scale * hi:+.2f}]{unit}"


def _verdict(g: Mapping, metric: str) -> str:
    """'lower'/'higher' when the 95% interval excludes 0, else 'not distinguishable' (or 'n = 1')."""
    if g.get(f"{metric}.n", 1) < 2:
        return "n = 1"
    lo, hi = g[f"{metric}.ci95"]
    return "lower" if hi < 0 else "higher" if lo > 0 else "not distinguishable"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _name(model) -> str:
    return Path(str(model)).stem if model is not None else "–"


# --------------------------------------------------------------------------- analyses

def analog_loss(acc: Sequence[Mapping], metric: str = "bits_per_char") -> list[dict]:
    """Per model, card (not ideal/noiseless) and drift time: the relative change of ``metric`` against the same
    model on the noiseless reference card(s) (rows with seed None and drift None), per programming seed.

    Returns rows {model, model_kind, card, drift_time_s, seed, value, reference, rel_loss}."""
    refs = {}
    for r in acc:
        if r.get("seed") is None and r.get("drift_time_s") is None and _finite(r.get(metric)):
            refs.setdefault(r["model"], (r["card"], float(r[metric])))
    out = []
    for r in acc:
        if r["model"] not in refs or r.get("seed") is None or not _finite(r.get(metric)):
            continue
        ref = refs[r["model"]][1]
        out.append({"model": r["model"], "model_kind": r.get("model_kind"), "card": r["card"],
                    "drift_time_s": r.get("drift_time_s"), "seed": r["seed"], "value": float(r[metric]),
                    "reference": ref, "reference_card": refs[r["model"]][0],
                    "rel_loss": (float(r[metric]) - ref) / ref})
    return out


def mdlm_vs_ar(losses: Sequence[Mapping]) -> list[dict]:
    """Paired by card, drift time and programming seed: rel_loss(MDLM) − rel_loss(AR); mean ± std over seeds.
    Negative means the diffusion model lost less accuracy to the hardware than the AR model."""
    by = {}
    for l in losses:
        by.setdefault((l["card"], l["drift_time_s"], l["seed"]), {})[l["model_kind"]] = l["rel_loss"]
    pairs = [{"card": c, "drift_time_s": t, "seed": s, "mdlm": v["mdlm"], "ar": v["ar"], "diff": v["mdlm"] - v["ar"]}
             for (c, t, s), v in by.items() if "mdlm" in v and "ar" in v]
    return aggregate(pairs, ("card", "drift_time_s"), ["mdlm", "ar", "diff"])


# --------------------------------------------------------------------------- sections

def _gen_energy(gen, suite) -> dict:
    """Energy and latency per generated token from the generation rows at the headline drift time and steps,
    by (model, card): what the sampler ran, priced from its own trace and statistics."""
    t, steps = suite.headline_drift_time_s, suite.headline_steps
    sel = [r for r in gen if r.get("drift_time_s") in (t, None)
           and (r.get("model_kind") == "ar" or r.get("steps") == steps)]
    return {(g["model"], g["card"]): g for g in aggregate(sel, ("model", "model_kind", "card", "card_kind", "steps"),
                                                         ["energy_per_token_j", "latency_per_token_s"])}


def _headline(suite, acc, gen, est) -> list[str]:
    out = ["## Headline", ""]
    t = suite.headline_drift_time_s
    rate = suite.token_rate_per_s
    if acc or gen:
        energy = _gen_energy(gen, suite)
        out += [f"### Our models on analog cards ({_drift_label(t)} after programming) and on GPU", "",
                f"Energy and latency per generated token from the generation runs at {_drift_label(t)} "
                f"(MDLM: {suite.headline_steps} denoising steps, ancestral sampler; AR: KV cache), each priced "
                f"from its sampler's own trace of model calls and its activation statistics; power at {rate:g} "
                f"tokens/s. Bits/char from the accuracy runs (MDLM: NELBO bound; AR: exact). Accuracy cost: "
                f"relative change of bits/char against the same model on the noiseless card, mean ± std over "
                f"programming seeds, with its 95% interval.", ""]
        losses = {(l["model"], l["card"], l["seed"]): l["rel_loss"] for l in analog_loss(acc)
                  if l["drift_time_s"] == t}
        sel = [dict(r, rel_loss=losses.get((r["model"], r["card"], r.get("seed"))))
               for r in acc if r.get("drift_time_s") in (t, None)]
        rows, seen = [], set()
        for g in aggregate(sel, ("model", "model_kind", "card"), ["bits_per_char", "rel_loss"]):
            e = energy.get((g["model"], g["card"]), {})
            seen.add((g["model"], g["card"]))
            decode = f"diffusion, {suite.headline_steps} steps" if g["model_kind"] == "mdlm" else "AR, KV cache"
            rows.append([_name(g["model"]), g["card"], decode, pm(e, "energy_per_token_j"),
                         pm(e, "latency_per_token_s"), fmt(e.get("energy_per_token_j.mean", math.nan) * rate),
                         pm(g, "bits_per_char"),
                         ("–" if "rel_loss.mean" not in g else
                          f"{100 * g['rel_loss.mean']:+.2f}% ± {100 * g['rel_loss.std']:.2f}%"),
                         ci(g, "rel_loss", 100, " %")])
        for (m, c), e in energy.items():
            if (m, c) in seen or e.get("card_kind") != "gpu":
                continue
            decode = f"diffusion, {suite.headline_steps} steps" if e["model_kind"] == "mdlm" else "AR, KV cache"
            rows.append([_name(m), c, decode, pm(e, "energy_per_token_j"), pm(e, "latency_per_token_s"),
                         fmt(e["energy_per_token_j.mean"] * rate), "digital", "0 (digital)", "–"])
        out += [table(["model", "card", "decode", "energy/token (J)", "latency/token (s)", f"power @ {rate:g} tok/s (W)",
                       "bits/char", "accuracy cost (Δ bits/char)", "95% interval"], rows), ""]
    if est:
        out += ["### Published shapes (estimator only: no weights, so no accuracy)", ""]
        rows = [[r["shape"], r["decode"] + (f", {r['steps']} steps" if r.get("steps") else "")
                 + (f", blocks of {r['block_len']} + prefix cache" if r.get("block_len") else ""), str(r["seq_len"]),
                 str(r.get("batch", 1)), r["card"], fmt(r.get("energy_per_token_j")), fmt(r.get("latency_per_token_s")),
                 fmt((r.get("energy_per_token_j") or math.nan) * rate)] for r in est]
        out += [table(["shape", "decode", "seq_len", "batch", "card", "energy/token (J)", "latency/token (s)",
                       f"power @ {rate:g} tok/s (W)"], rows), ""]
        out += _ratios(est)
    return out


def _ratios(est) -> list[str]:
    """Analog vs GPU for each shape and decode, and diffusion vs AR on each card."""
    def decode(r):
        return (r["decode"] + (f", {r['steps']} steps" if r.get("steps") else "")
                + (f", blocks of {r['block_len']} + prefix KV cache" if r.get("block_len") else ""))

    lines = []
    gpu = {(r["shape"], decode(r), r["seq_len"]): r for r in est if r.get("card_kind") == "gpu"}
    rows = [[r["shape"], decode(r), r["card"], g["card"],
             fmt(g["energy_per_token_j"] / r["energy_per_token_j"]),
             fmt(g["latency_per_token_s"] / r["latency_per_token_s"])]
            for r in est if r.get("card_kind") == "analog"
            for g in [gpu.get((r["shape"], decode(r), r["seq_len"]))] if g is not None]
    if rows:
        lines += ["Analog vs GPU, same shape and decode (> 1: the analog card is cheaper / faster):", "",
                  table(["shape", "decode", "analog card", "GPU card", "energy/token GPU ÷ analog",
                         "latency/token GPU ÷ analog"], rows), ""]
    ar = {}
    for r in est:
        if r["decode"] == "ar":
            ar.setdefault(r["card"], r)
    pairs = [(r["card"], r, ar[r["card"]]) for r in est if r["decode"] == "diffusion" and r["card"] in ar]
    if pairs:
        lines += ["Diffusion vs AR on the same card (> 1: diffusion costs more per token):", "",
                  table(["card", "diffusion", "AR", "energy/token diffusion ÷ AR", "latency/token diffusion ÷ AR"],
                        [[c, f"{d['shape']} ({decode(d)})", a["shape"],
                          fmt(d["energy_per_token_j"] / a["energy_per_token_j"]),
                          fmt(d["latency_per_token_s"] / a["latency_per_token_s"])] for c, d, a in pairs]), ""]
    return lines


def _drift_section(acc) -> list[str]:
    out = ["## Accuracy and cost vs time since programming", "",
           "Each analog run: the model analogized with one programming seed, moved to the drift time, scored on "
           "the test plays; its energy and latency are those of that scoring run (per scored character: its own "
           "trace of model calls and activation statistics), not of a generation. A card with no drift "
           "(or no noise) runs once and stands for every time (seed). MDLM bits/char is the NELBO bound; AR bits/char "
           "is exact.", ""]
    rows = []
    for g in aggregate(acc, ("model", "card", "drift_time_s"),
                       ["bits_per_char", "token_accuracy", "energy_per_token_j", "latency_per_token_s",
                        "stats.adc_clip_fraction"]):
        rows.append([_name(g["model"]), g["card"], _drift_label(g["drift_time_s"]) or "any", str(g["n"]),
                     pm(g, "bits_per_char"), pm(g, "token_accuracy"), pm(g, "energy_per_token_j"),
                     pm(g, "latency_per_token_s")])
    out += [table(["model", "card", "drift", "seeds", "bits/char", "token accuracy", "energy/scored char (J)",
                   "latency/scored char (s)"], rows), ""]
    pairs = mdlm_vs_ar(analog_loss(acc))
    if pairs:
        out += ["### Does denoising correct analog errors? MDLM vs AR accuracy loss under the same card and drift", "",
                "Relative bits/char loss against each model's own noiseless run, paired by programming seed (both "
                "models programmed with the same seed on the same card). Difference < 0: the diffusion model lost "
                "less. Mean ± std over seeds and the 95% interval of the difference (t over seeds; it covers "
                "programming seeds only, not the Monte Carlo error of the NELBO). This is a single-forward score: "
                "no denoising step runs in it, so it does not measure correction.", ""]
        rows = [[g["card"], _drift_label(g["drift_time_s"]), str(g["n"]),
                 f"{100 * g['mdlm.mean']:+.2f}% ± {100 * g['mdlm.std']:.2f}%",
                 f"{100 * g['ar.mean']:+.2f}% ± {100 * g['ar.std']:.2f}%",
                 f"{100 * g['diff.mean']:+.2f} ± {100 * g['diff.std']:.2f} pts", ci(g, "diff", 100, " pts"),
                 _verdict(g, "diff")] for g in pairs]
        out += [table(["card", "drift", "seeds", "MDLM loss", "AR loss", "MDLM − AR", "95% interval", "verdict"],
                      rows), ""]
    return out


def _ir_section(ir, acc) -> list[str]:
    """IR-drop compensation on and off (``ir-…`` sections, and the per-card rows at the same model, card, drift
    time and seeds without overrides), with the paired difference of bits/char per programming seed."""
    out = ["## IR-drop compensation: per-column affine correction on and off", "",
           "The correction (`tile.ir_compensation = \"per-column-affine\"`, `crossbar/compensation.py`): a gain and "
           "an offset per tile column, fitted by least squares at programming on the calibration inputs, applied "
           "digitally after the ADC and priced as one multiply-add per column and MVM. Bits/char and the scoring "
           "run's energy per character, mean ± std over programming seeds; Δ = on − off paired by seed, with its "
           "95% interval.", ""]
    keys = {(r["model"], r["card"], r.get("drift_time_s")) for r in ir}
    rows = [dict(r, compensation=("on" if "ir_compensation" in str(r.get("overrides", "")) else "off"))
            for r in ir] + [dict(r, compensation="off") for r in acc if not r.get("overrides")
                            and (r["model"], r["card"], r.get("drift_time_s")) in keys]
    table_rows = []
    for g in aggregate(rows, ("model", "card", "drift_time_s", "compensation"),
                       ["bits_per_char", "energy_per_token_j"]):
        table_rows.append([_name(g["model"]), g["card"], _drift_label(g["drift_time_s"]) or "any",
                           g["compensation"], str(g["n"]), pm(g, "bits_per_char"), pm(g, "energy_per_token_j")])
    out += [table(["model", "card", "drift", "compensation", "seeds", "bits/char", "energy/scored char (J)"],
                  table_rows), ""]
    by: dict = {}
    for r in rows:
        if _finite(r.get("bits_per_char")):
            by.setdefault((r["model"], r["card"], r.get("drift_time_s"), r.get("seed")), {})[r["compensation"]] = r
    pairs = [{"model": m, "card": c, "drift_time_s": t, "diff": v["on"]["bits_per_char"] - v["off"]["bits_per_char"],
              "energy": v["on"]["energy_per_token_j"] / v["off"]["energy_per_token_j"] - 1.0}
             for (m, c, t, _), v in by.items() if "on" in v and "off" in v]
    if pairs:
        out += [table(["model", "card", "drift", "seeds", "Δ bits/char (on − off)", "95% interval", "verdict",
                       "Δ energy/char"],
                      [[_name(g["model"]), g["card"], _drift_label(g["drift_time_s"]) or "any", str(g["n"]),
                        pm(g, "diff"), ci(g, "diff"), _verdict(g, "diff"), f"{100 * g['energy.mean']:+.2f}%"]
                       for g in aggregate(pairs, ("model", "card", "drift_time_s"), ["diff", "energy"])]), ""]
    return out


def _steps_section(gen) -> list[str]:
    out = ["## Denoising steps vs AR: sample quality against energy per token", "",
           "Passages generated on each card (analog: the analogized model at the section's drift time; GPU: the "
           "digital model) and scored by the digital AR twin (generative perplexity per character, with the "
           "samples' character entropy in bits).", ""]
    rows = []
    for g in aggregate(gen, ("model", "model_kind", "card", "drift_time_s", "steps"),
                       ["gen_ppl", "entropy", "energy_per_token_j", "latency_per_token_s"]):
        rows.append([_name(g["model"]), g["card"], _drift_label(g["drift_time_s"]) or "–",
                     "AR" if g["model_kind"] == "ar" else str(g["steps"]), str(g["n"]), pm(g, "gen_ppl"),
                     pm(g, "entropy"), pm(g, "energy_per_token_j"), pm(g, "latency_per_token_s")])
    out += [table(["model", "card", "drift", "steps", "seeds", "gen. perplexity", "entropy (bits)",
                   "energy/token (J)", "latency/token (s)"], rows), ""]
    return out


_EST_COLS = ("shape", "card", "decode", "steps", "seq_len", "batch", "energy_per_token_j", "latency_per_token_s",
             "energy_vs_ar", "tiles")


def _estimator_section(rows, out_dir: Path) -> list[str]:
    cols = [c for c in _EST_COLS if any(c in r for r in rows)]
    out = ["## Estimator suite: published shapes", "",
           "Energy and latency per generated token (batch 1; `energy_vs_ar`: energy per token relative to the "
           "same shape's AR decode on the same card). The estimator suite's own files (table, JSON, CSV, plots) "
           "are in `estimator/`.", ""]
    out += [table(cols, [[r.get(c) if not isinstance(r.get(c), str) else r[c] for c in cols] for r in rows]), ""]
    est_json = out_dir / "estimator" / "estimator.json"
    if est_json.is_file():
        import json

        anchors = json.loads(est_json.read_text()).get("anchors") or []
        if anchors:
            out += ["### Published anchors beside our numbers", "",
                    table(["anchor", "ours", "published", "unit", "ratio", "target", "check"],
                          [[a.get("anchor", ""), a.get("ours"), a.get("published"), a.get("unit", ""),
                            a.get("ratio"), a.get("target", ""),
                            f"{a.get('check', '')}: {dict([(True, 'pass'), (False, 'FAIL')]).get(a.get('pass'), '—')}"]
                           for a in anchors]), ""]
    return out


def write_report(suite, rows: Sequence[Mapping], out_dir, meta: Mapping, figures: Sequence[Path]) -> Path:
    """Write ``out_dir/report.md`` for ``rows`` of ``suite``; returns its path."""
    out_dir = Path(out_dir)
    acc, ir = split_ir_rows([r for r in rows if r.get("kind") == "accuracy"])
    gen = [r for r in rows if r.get("kind") == "generation"]
    est = [r for r in rows if r.get("kind") == "estimate"]
    estr = [r for r in rows if r.get("kind") == "estimator"]
    b = suite.budget
    lines = [f"# analogdiff bench: suite `{suite.name}`", "", suite.description, "",
             f"Run: {meta.get('date', '?')} on {meta.get('machine', '?')}; {meta.get('pool', '?')}; "
             f"{meta.get('ran', '?')} of {meta.get('runs', '?')} runs executed in {meta.get('wall_s', '?')} s "
             f"(the others were already in this directory). Rows: `results.json`, `results.csv`.", "",
             "## Budgets", "",
             table(["setting", "value"], [
                 ["test characters per accuracy run (bits/char, token accuracy)", str(b["eval_chars"])],
                 ["NELBO time samples per window (MDLM)", str(b["t_samples"])],
                 ["passages per generation run", str(b["gen_samples"])],
                 ["characters per passage (at most the context)", str(b["gen_len"])],
                 ["evaluation / sampling seed (same for every run: runs are paired)", str(suite.eval_seed)],
                 ["token rate for power", f"{suite.token_rate_per_s:g} tokens/s"],
                 ["headline drift time", _drift_label(suite.headline_drift_time_s)]]), ""]
    if acc or est:
        lines += _headline(suite, acc, gen, est)
    if acc:
        lines += _drift_section(acc)
    if ir:
        lines += _ir_section(ir, acc)
    if gen:
        lines += _steps_section(gen)
    if any(r.get("kind") == "completion" for r in rows):
        from .correction import report_section

        lines += report_section(rows, suite.headline_drift_time_s)
    if estr:
        lines += _estimator_section(estr, out_dir)
    if figures:
        lines += ["## Figures", ""]
        for f in figures:
            rel = Path(f).relative_to(out_dir) if Path(f).is_relative_to(out_dir) else Path(f)
            lines += [f"![{rel.stem.replace('_', ' ')}]({rel.as_posix()})", f"(SVG: `{rel.with_suffix('.svg').as_posix()}`)", ""]
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path
