"""The estimator suite's two plots (matplotlib imported inside, Agg backend).

* :func:`plot_energy_breakdown` — per card, one stacked bar per (shape, AR | diffusion) showing the share
  of each component in the energy per token, with the total J/token written on the bar.
* :func:`plot_energy_vs_steps` — per card, energy per token against denoising steps (one line per shape)
  with the same shape's AR energy as a dashed reference line.
"""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_energy_breakdown(rows: list[dict], path, diffusion_steps: int | None = None) -> Path:
    """Stacked shares of ``breakdown_j`` for AR and one diffusion setting (default: the most steps below
    seq_len, else seq_len) of every shape, one panel per card."""
    plt = _pyplot()
    from analogdiff.energy.report import fmt_si

    cards = list(dict.fromkeys(r["card"] for r in rows))
    diff_steps = sorted({r["steps"] for r in rows if r["decode"] == "diffusion"})
    if diffusion_steps is None:
        below = [t for t in diff_steps if t < rows[0]["seq_len"]]
        diffusion_steps = below[-1] if below else diff_steps[-1]
    fig, axes = plt.subplots(len(cards), 1, figsize=(12, 3.6 * len(cards)), squeeze=False)
    for ax, card in zip(axes[:, 0], cards):
        sel = [r for r in rows if r["card"] == card and
               (r["decode"] == "ar" or r["steps"] == diffusion_steps)]
        comps = list(dict.fromkeys(k for r in sel for k in r["breakdown_j"]))
        labels = [r["shape"] + "\n" + ("AR" if r["decode"] == "ar" else f"T={r['steps']}") for r in sel]
        bottom = [0.0] * len(sel)
        cmap = plt.get_cmap("tab10")
        for i, comp in enumerate(comps):
            share = [r["breakdown_j"].get(comp, 0.0) / r["energy_per_sequence_j"] for r in sel]
            ax.bar(range(len(sel)), share, bottom=bottom, label=comp, color=cmap(i % 10), width=0.8)
            bottom = [b + s for b, s in zip(bottom, share)]
        for x, r in enumerate(sel):
            ax.text(x, 1.01, fmt_si(r["energy_per_token_j"], "J"), ha="center", va="bottom", fontsize=7,
                    rotation=90)
        ax.set_xticks(range(len(sel)), labels, fontsize=7)
        ax.set_ylim(0, 1.25)
        ax.set_ylabel("share of energy")
        ax.set_title(f"{card}: energy per token by component (total above each bar)", fontsize=10)
        ax.legend(fontsize=7, ncol=len(comps), loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_energy_vs_steps(rows: list[dict], path) -> Path:
    """Energy per token vs denoising steps per shape (solid), its AR energy (dashed), one panel per card."""
    plt = _pyplot()
    cards = list(dict.fromkeys(r["card"] for r in rows))
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    fig, axes = plt.subplots(1, len(cards), figsize=(5.2 * len(cards), 4.4), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, card in zip(axes[0], cards):
        for i, shape in enumerate(shapes):
            pts = sorted((r["steps"], r["energy_per_token_j"]) for r in rows
                         if r["card"] == card and r["shape"] == shape and r["decode"] == "diffusion")
            ar = [r["energy_per_token_j"] for r in rows
                  if r["card"] == card and r["shape"] == shape and r["decode"] == "ar"]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=cmap(i % 10), label=shape)
            if ar:
                ax.axhline(ar[0], color=cmap(i % 10), ls="--", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("denoising steps")
        ax.set_ylabel("energy per generated token (J)")
        ax.set_title(f"{card} (dashed: AR with KV cache)", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
