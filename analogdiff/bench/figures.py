"""Figures of bench results and tuning studies, each written as PNG and SVG (matplotlib, no pyplot state).

``accuracy_vs_power``   an accuracy metric against energy per token (bottom axis, J) and power at a stated
                        token rate (top axis, W), one series per card, the Pareto front highlighted;
``accuracy_vs_drift``   an accuracy metric against time since programming, one series per card and model,
                        mean ± std over programming seeds;
``energy_breakdown``    energy per token split by component, stacked bars.

Each function returns the matplotlib ``Figure`` (tests read its axis labels) and writes ``<stem>.png`` and
``<stem>.svg`` atomically (a temporary file moved into place). SVGs carry no date, so the same data give the
same files.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from analogdiff.checks import ConfigError

from .pareto import METRIC_DIRECTIONS, pareto_front
from .results import aggregate, split_ir_rows

METRIC_LABELS = {
    "bits_per_char": "bits per character (bits/char, lower is better)",
    "token_accuracy": "token accuracy (fraction correct)",
    "next_char_accuracy": "next-character accuracy (fraction correct)",
    "gen_ppl": "generative perplexity per character (AR judge, lower is better)",
}
DRIFT_TICKS = [(1.0, "1 s"), (60.0, "1 min"), (3600.0, "1 h"), (86400.0, "1 day"), (2592000.0, "1 month"),
               (31536000.0, "1 year"), (315360000.0, "10 years")]
_MARKERS = {"mdlm": "o", "ar": "s", None: "D"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _new_figure(w: float = 7.0, h: float = 4.8):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=110, layout="constrained")


def save(fig, stem: Path | str) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg`` (atomically); returns both paths."""
    import matplotlib

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "analogdiff", "svg.fonttype": "path"}):
        for ext in ("png", "svg"):
            path = stem.with_suffix(f".{ext}")
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            meta = {"Date": None} if ext == "svg" else {"Software": None}
            fig.savefig(tmp, format=ext, metadata=meta)
            os.replace(tmp, path)
            paths.append(path)
    return paths


def _power_axis(ax, token_rate_per_s: float, per: str = "token") -> None:
    top = ax.secondary_xaxis("top", functions=(lambda e: e * token_rate_per_s, lambda p: p / token_rate_per_s))
    top.set_xlabel(f"power at {token_rate_per_s:g} {per}s/s (W)")


def _colors(names: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(dict.fromkeys(names))}


def accuracy_vs_power(points: Sequence[Mapping], stem, metric: str = "bits_per_char",
                      token_rate_per_s: float = 100.0, title: str = "", annotate: str | None = None,
                      per: str = "generated token"):
    """Scatter of ``points`` (dicts with ``card``, ``energy_per_token_j``, ``metric``, optionally
    ``<metric>_std``, ``model_kind`` and the ``annotate`` key) with the Pareto front over all points drawn as a
    line through highlighted markers. ``per``: what one unit of ``energy_per_token_j`` is the energy of (a
    generated token, or a scored character). Returns the Figure; writes ``stem``.png/.svg."""
    fig = _new_figure()
    ax = fig.add_subplot()
    pts = [p for p in points if _finite(p.get("energy_per_token_j")) and _finite(p.get(metric))]
    if not pts:
        raise ConfigError(f"accuracy_vs_power: no point has both energy_per_token_j and {metric}")
    colors = _colors([p["card"] for p in pts])
    for card, color in colors.items():
        for kind in dict.fromkeys(p.get("model_kind") for p in pts if p["card"] == card):
            ps = [p for p in pts if p["card"] == card and p.get("model_kind") == kind]
            label = card if kind is None else f"{card} · {kind.upper()}"
            ax.errorbar([p["energy_per_token_j"] for p in ps], [p[metric] for p in ps],
                        yerr=[p.get(f"{metric}_std", 0.0) or 0.0 for p in ps], fmt=_MARKERS.get(kind, "D"),
                        color=color, ms=6, capsize=2, lw=0, elinewidth=1, label=label, alpha=0.85)
            if annotate:
                for p in ps:
                    if p.get(annotate) is not None:
                        ax.annotate(f"{p[annotate]}", (p["energy_per_token_j"], p[metric]), fontsize=7,
                                    xytext=(3, 3), textcoords="offset points", color=color)
    front = pareto_front([(p["energy_per_token_j"], p[metric]) for p in pts],
                         ("minimize", METRIC_DIRECTIONS.get(metric, "minimize")))
    fp = sorted((pts[i] for i in front), key=lambda p: p["energy_per_token_j"])
    ax.plot([p["energy_per_token_j"] for p in fp], [p[metric] for p in fp], "-", color="black", lw=1.2,
            drawstyle="steps-post", zorder=1)
    ax.scatter([p["energy_per_token_j"] for p in fp], [p[metric] for p in fp], s=140, facecolors="none",
               edgecolors="black", linewidths=1.5, zorder=3, label=f"Pareto front ({len(fp)})")
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per {per} (J)")
    ax.set_ylabel(metric_label(metric))
    _power_axis(ax, token_rate_per_s, per)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    save(fig, stem)
    return fig


def accuracy_vs_drift(rows: Sequence[Mapping], stem, metric: str = "bits_per_char", title: str = ""):
    """``metric`` (mean ± std over seeds) against drift time, one panel per model, one series per card.
    Cards without drift (one run for all times) are drawn as horizontal dashed lines."""
    rows = [r for r in rows if _finite(r.get(metric))]
    if not rows:
        raise ConfigError(f"accuracy_vs_drift: no row has {metric}")
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig = _new_figure(max(7.0, 4.6 * len(models)), 4.8)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    colors = _colors([r["card"] for r in rows])
    times = sorted({r["drift_time_s"] for r in rows if r.get("drift_time_s") is not None}) or [1.0, 3600.0]
    for ax, model in zip(axes, models):
        sel_m = [r for r in rows if r["model"] == model]
        for g in aggregate(sel_m, ("card", "model_kind"), [metric]):
            sel = [r for r in sel_m if r["card"] == g["card"]]
            color = colors[g["card"]]
            if all(r.get("drift_time_s") is None for r in sel):
                ax.hlines(g[f"{metric}.mean"], times[0], times[-1], colors=[color], linestyles="dashed",
                          label=f"{g['card']} (no drift)")
                continue
            pts = sorted(aggregate(sel, ("drift_time_s",), [metric]), key=lambda p: p["drift_time_s"] or 0.0)
            ax.errorbar([p["drift_time_s"] for p in pts], [p[f"{metric}.mean"] for p in pts],
                        yerr=[p[f"{metric}.std"] for p in pts], fmt=_MARKERS.get(g["model_kind"], "D") + "-",
                        color=color, capsize=3, ms=5, label=g["card"])
        ax.set_xscale("log")
        ticks = [(t, s) for t, s in DRIFT_TICKS if times[0] / 1.5 <= t <= times[-1] * 1.5]
        if ticks:
            ax.set_xticks([t for t, _ in ticks], [s for _, s in ticks])
        ax.set_xlabel("time since programming (s, log scale)")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(Path(str(model)).stem, fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    save(fig, stem)
    return fig


def energy_breakdown(bars: Sequence[Mapping], stem, title: str = ""):
    """Stacked bars: each bar a dict with ``label`` and ``breakdown`` ({component: J per token})."""
    if not bars:
        raise ConfigError("energy_breakdown: no bars")
    fig = _new_figure(max(6.0, 0.55 * len(bars) + 3.0), 4.8)
    ax = fig.add_subplot()
    comps = list(dict.fromkeys(c for b in bars for c, v in b["breakdown"].items() if v))
    colors = _colors(comps)
    bottom = [0.0] * len(bars)
    for c in comps:
        vals = [float(b["breakdown"].get(c, 0.0)) for b in bars]
        ax.bar(range(len(bars)), vals, bottom=bottom, color=colors[c], label=c, width=0.7)
        bottom = [x + v for x, v in zip(bottom, vals)]
    ax.set_xticks(range(len(bars)), [b["label"] for b in bars], rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("energy per token (J)")
    ax.set_xlabel("model · card")
    ax.legend(fontsize=7, ncols=2, loc="best")
    ax.grid(True, axis="y", alpha=0.25)
    if title:
        ax.set_title(title, fontsize=10)
    save(fig, stem)
    return fig


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --------------------------------------------------------------------------- from bench rows

def breakdown_per_token(row: Mapping) -> dict[str, float]:
    """A row's ``breakdown_j.*`` (J per sequence) scaled to J per token."""
    seq, tok = row.get("energy_per_sequence_j"), row.get("energy_per_token_j")
    scale = tok / seq if _finite(seq) and _finite(tok) and seq > 0 else 0.0
    return {k.split(".", 1)[1]: float(v) * scale for k, v in row.items()
            if k.startswith("breakdown_j.") and _finite(v)}


def suite_figures(rows: Sequence[Mapping], out_dir, token_rate_per_s: float = 100.0,
                  headline_drift_time_s: float | None = None, headline_steps: int = 64) -> list[Path]:
    """Every figure the bench rows support, into ``out_dir``; returns the PNG paths."""
    out_dir = Path(out_dir)
    made: list[Path] = []
    acc = split_ir_rows([r for r in rows if r.get("kind") == "accuracy"])[0]
    if acc:
        for kind in dict.fromkeys(r.get("model_kind") for r in acc):
            sel = [r for r in acc if r.get("model_kind") == kind]
            pts = []
            for g in aggregate(sel, ("card", "model", "model_kind", "drift_time_s"),
                               ["bits_per_char", "energy_per_token_j"]):
                if "bits_per_char.mean" in g and "energy_per_token_j.mean" in g:
                    pts.append({"card": g["card"], "model_kind": g["model_kind"],
                                "energy_per_token_j": g["energy_per_token_j.mean"],
                                "bits_per_char": g["bits_per_char.mean"],
                                "bits_per_char_std": g["bits_per_char.std"],
                                "drift": _drift_label(g["drift_time_s"])})
            if pts:
                accuracy_vs_power(pts, out_dir / f"accuracy_vs_power_{kind}", "bits_per_char", token_rate_per_s,
                                  title=f"{(kind or '').upper()}: accuracy vs the scoring run's power (points: "
                                        f"drift times, mean ± std over seeds)", annotate="drift",
                                  per="scored character")
                made.append(out_dir / f"accuracy_vs_power_{kind}.png")
        accuracy_vs_drift(acc, out_dir / "accuracy_vs_drift", "bits_per_char",
                          title="Accuracy vs time since programming (mean ± std over programming seeds)")
        made.append(out_dir / "accuracy_vs_drift.png")
    gen = [r for r in rows if r.get("kind") == "generation" and _finite(r.get("gen_ppl"))]
    t = headline_drift_time_s
    sel = [r for r in gen if r.get("card_kind") == "analog" and (not t or r.get("drift_time_s") in (t, None))
           and (r.get("model_kind") == "ar" or r.get("steps") == headline_steps)]
    bars = []
    for g in aggregate(sel, ("model", "card"), []):
        bd = [breakdown_per_token(r) for r in sel if (r["model"], r["card"]) == (g["model"], g["card"])]
        keys = dict.fromkeys(k for b in bd for k in b)
        bars.append({"label": f"{Path(str(g['model'])).stem} · {g['card']}",
                     "breakdown": {k: math.fsum(b.get(k, 0.0) for b in bd) / len(bd) for k in keys}})
    if any(b["breakdown"] for b in bars):
        energy_breakdown([b for b in bars if b["breakdown"]], out_dir / "energy_breakdown",
                         title=f"Energy per generated token by component (MDLM {headline_steps} steps; "
                               f"sampler trace and activation statistics)")
        made.append(out_dir / "energy_breakdown.png")
    if gen:
        pts = []
        for g in aggregate(gen, ("card", "model", "model_kind", "steps"), ["gen_ppl", "energy_per_token_j"]):
            pts.append({"card": g["card"], "model_kind": g["model_kind"], "gen_ppl": g["gen_ppl.mean"],
                        "gen_ppl_std": g["gen_ppl.std"], "energy_per_token_j": g["energy_per_token_j.mean"],
                        "steps": "AR" if g["model_kind"] == "ar" else g["steps"]})
        accuracy_vs_power(pts, out_dir / "steps_vs_energy", "gen_ppl", token_rate_per_s,
                          title="Denoising steps (labels) vs AR: sample quality vs energy per token",
                          annotate="steps")
        made.append(out_dir / "steps_vs_energy.png")
    if any(r.get("kind") == "completion" for r in rows):
        from .correction import loss_vs_steps

        png = loss_vs_steps(rows, out_dir / "loss_vs_steps", headline_drift_time_s or 86400.0)
        if png is not None:
            made.append(png)
    est = [r for r in rows if r.get("kind") == "estimate"]
    if est:
        bars = [{"label": f"{r['shape']} · {r['decode']} · {r['card']}", "breakdown": breakdown_per_token(r)}
                for r in est]
        if any(b["breakdown"] for b in bars):
            energy_breakdown([b for b in bars if b["breakdown"]], out_dir / "headline_breakdown",
                             title="Published shapes: energy per token by component (estimator)")
            made.append(out_dir / "headline_breakdown.png")
    return made


def _drift_label(t) -> str:
    if t is None:
        return ""
    for v, s in reversed(DRIFT_TICKS):
        if t >= v and abs(t / v - round(t / v)) < 1e-9:
            n = round(t / v)
            return s if n == 1 else f"{n}×{s}"
    return f"{t:g} s"


def regime_map_figure(result: Mapping, stem, batches: Sequence[int] = (1, 256)):
    """The regime map (``bench.regimes.regime_map``): J/token (top row) and tokens/s (bottom row) against
    steps per generated token, one column per card; one color per diffusion schedule, AR as a horizontal
    line (black); one line style per batch; crossovers (diffusion = AR) marked ×."""
    from .regimes import crossover, schedule_label

    cards = list(dict.fromkeys(r["card"] for r in result["ar"]))
    if not cards:
        raise ConfigError("regime map: no card was priced; nothing to plot")
    batches = [b for b in batches if b in result["meta"]["batches"]]
    schedules = [tuple(b) for b in result["meta"]["blocks"]]
    colors = _colors([schedule_label(*s) for s in schedules])
    styles = dict(zip(batches, ("-", "--", ":", "-.")))
    fig = _new_figure(3.0 * len(cards) + 1.0, 6.4)
    axes = fig.subplots(2, len(cards), squeeze=False)
    ar = {(r["card"], r["batch"]): r for r in result["ar"]}
    metrics = (("energy_per_token_j", "J per generated token"), ("tokens_per_s", "generated tokens/s"))
    for j, card in enumerate(cards):
        for i, (key, label) in enumerate(metrics):
            ax = axes[i][j]
            ax.set_xscale("log")
            ax.set_yscale("log")
            for b in batches:
                if (card, b) not in ar:
                    continue
                y_ar = ar[(card, b)][key]
                ax.axhline(y_ar, color="black", ls=styles[b], lw=1.0, label=f"AR, batch {b}" if (i, j) == (0, 0) else None)
                for s in schedules:
                    pts = sorted((p["steps_per_token"], p[key]) for p in result["points"]
                                 if p["card"] == card and p["batch"] == b and (p["block_len"], p["cache"]) == s)
                    if not pts:
                        continue
                    xs, ys = zip(*pts)
                    name = schedule_label(*s)
                    ax.plot(xs, ys, color=colors[name], ls=styles[b], lw=1.4, marker=".",
                            label=f"{name}, batch {b}" if (i, j) == (0, 0) else None)
                    x_c = crossover(xs, ys, y_ar)
                    if x_c is not None:
                        ax.plot([x_c], [y_ar], "x", color=colors[name], ms=9, mew=2)
            ax.set_title(card if i == 0 else "")
            ax.set_xlabel("steps per generated token" if i == 1 else "")
            if j == 0:
                ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.25)
    m = result["meta"]
    fig.suptitle(f"Diffusion vs AR regimes: {m['shape']}, prompt {m['prompt_len']}, {m['gen_len']} generated "
                 f"(× = crossover; AR black)")
    fig.legend(loc="outside right center", fontsize=7)
    save(fig, stem)
    return fig
