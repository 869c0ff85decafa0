"""The IR-drop compensation table of docs/results/ircomp: bits/char without wires, with wires uncompensated and
with wires compensated, mean ± std over programming seeds with 95% intervals, and the paired differences.

Input: the ``analogdiff eval --json`` outputs of the three settings per card (commands in
docs/results/ircomp/README.md), named CARD-nowire.json, CARD-off.json, CARD-comp.json in one directory.

    python benchmarks/ir_compensation_table.py DIR [CARD ...]      # prints a Markdown table
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analogdiff.stats import difference, summary

SETTINGS = (("nowire", "no wires (wire = none)"), ("off", "wires, uncompensated"),
            ("comp", "wires, per-column affine compensation"))


def _bpc(path: Path) -> tuple[list[int], list[float], dict]:
    out = json.loads(path.read_text())
    seeds = [p["seed"] for p in out["per_seed"]]
    return seeds, [p["metrics"]["bits_per_char"] for p in out["per_seed"]], out


def table(directory: Path, cards: list[str]) -> str:
    lines = ["| card | setting | seeds | bits/char (mean ± std) | 95% interval | Δ vs uncompensated (paired) "
             "| 95% interval | energy/scored char (J) |", "|" + "---|" * 8]
    for card in cards:
        runs = {k: _bpc(directory / f"{card}-{k}.json") for k, _ in SETTINGS
                if (directory / f"{card}-{k}.json").is_file()}
        for key, label in SETTINGS:
            if key not in runs:
                continue
            seeds, bpc, out = runs[key]
            s = summary(bpc)
            e = out["cost"]["score"]["energy_per_token_j"]["mean"]
            delta = ci = "–"
            if key != "off" and "off" in runs and runs["off"][0] == seeds:
                d = difference(bpc, runs["off"][1], paired=True)
                delta, ci = f"{d['mean']:+.4f} ± {d['std']:.4f}", f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
            lines.append(f"| {card} | {label} | {len(seeds)} | {s['mean']:.4f} ± {s['std']:.4f} | "
                         f"[{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}] | {delta} | {ci} | {e:.4g} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(table(Path(sys.argv[1]), sys.argv[2:] or ["ecram", "pcm-ibm"]))
