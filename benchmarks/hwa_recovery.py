"""How much of each model's analog loss hardware-aware training recovers, per card and drift time.

    .venv/bin/python benchmarks/hwa_recovery.py run [--models ...] [--cards ...] [--seeds 3] [--eval-chars 4096]
    .venv/bin/python benchmarks/hwa_recovery.py report          # the table, from the results file

``run`` scores every (model, card, drift time, programming seed) cell with the experiment pipeline
(``analogdiff.bench.experiment.run_seed``, what ``analogdiff eval`` runs: program with the seed, calibrate on
validation windows, drift, score the test plays) and each model digitally (card ``h100-sxm``: the digital
model). Cells are appended to ``--results`` (JSON) as they finish; a rerun skips the cells already there.

``report`` pairs each base model with its HWA twin (``NAME`` and ``NAME-hwa``) and prints, per card and drift
time, the analog bits/char of both (mean and 95% t-interval over programming seeds, ``analogdiff.stats``), the
digital bits/char of both, and the recovered fraction

    recovered = (analog_base − analog_hwa) / (analog_base − digital_base)

computed per programming seed (seed s of the base and seed s of the HWA model: the same chip seed, but
different weights, so the pairing is nominal) and summarized over seeds with its 95% t-interval. The MDLM's
bits/char is its NELBO bound with the same masks and times for every model and seed (``eval_seed`` 0).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DAY_S, YEAR_S = 86400.0, 365 * 86400.0
DIGITAL = "h100-sxm"


def _cell_key(model: str, card: str, t_s: float | None, seed: int | None) -> str:
    return f"{model}|{card}|{t_s}|{seed}"


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"budget": None, "cells": {}}


def _save(doc: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    os.replace(tmp, path)


def run(args) -> None:
    from analogdiff.bench.experiment import Experiment, Score, run_seed

    path = Path(args.results[0])
    doc = _load(path)
    budget = {"eval_chars": args.eval_chars, "t_samples": args.t_samples, "eval_seed": 0, "split": "test",
              "mask_rates": [0.5]}
    if doc["budget"] not in (None, budget):
        sys.exit(f"{path}: holds results of another budget {doc['budget']}; use another --results")
    doc["budget"] = budget
    score = Score(eval_chars=args.eval_chars, t_samples=args.t_samples, mask_rates=(0.5,))
    cells = [] if args.no_digital else [(m, DIGITAL, None, None) for m in args.models]
    seeds = args.seed_list if args.seed_list is not None else range(args.seeds)
    cells += [(m, c, t, s) for c in args.cards for m in args.models for s in seeds
              for t in (DAY_S, YEAR_S)]  # seed-major within a model: one programming serves both times
    for model, card, t_s, seed in cells:
        key = _cell_key(model, card, t_s, seed)
        if key in doc["cells"]:
            continue
        t0 = time.perf_counter()
        spec = Experiment(model=model, card=card, drift_time_s=t_s or 0.0, seeds=(seed or 0,), score=score)
        out = run_seed(spec, seed)
        doc["cells"][key] = {"model": model, "card": card, "drift_time_s": t_s, "seed": seed,
                             "metrics": out["metrics"], "seconds": round(time.perf_counter() - t0, 1)}
        _save(doc, path)
        print(f"{key}: {out['metrics']['bits_per_char']:.4f} bits/char ({time.perf_counter() - t0:.0f} s)",
              flush=True)


def _fmt(s: dict, digits: int = 3) -> str:
    lo, hi = s["ci95"]
    return f"{s['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def report(args) -> dict:
    from analogdiff.stats import summary

    cells, budgets = {}, []
    for f in args.results:  # one file per worker: merged
        part = _load(Path(f))
        budgets.append(part["budget"])
        cells.update(part["cells"])
    if any(b != budgets[0] for b in budgets):
        sys.exit(f"report: the results files hold different budgets: {budgets}")
    doc = {"budget": budgets[0], "cells": cells}

    def bpc(model, card, t_s, seed):
        cell = cells.get(_cell_key(model, card, t_s, seed))
        return None if cell is None else cell["metrics"]["bits_per_char"]

    rows, lines = [], []
    lines.append("| model | card | drift | digital base | digital HWA | analog base | analog HWA | recovered |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for base in args.models:
        if base.endswith("-hwa"):
            continue
        hwa = base + "-hwa"
        d_base, d_hwa = bpc(base, DIGITAL, None, None), bpc(hwa, DIGITAL, None, None)
        if d_base is None or d_hwa is None:
            continue
        for card in args.cards:
            for t_s, t_name in ((DAY_S, "1 day"), (YEAR_S, "1 year")):
                seeds = [s for s in range(args.seeds)
                         if bpc(base, card, t_s, s) is not None and bpc(hwa, card, t_s, s) is not None]
                if not seeds:
                    continue
                a_base = [bpc(base, card, t_s, s) for s in seeds]
                a_hwa = [bpc(hwa, card, t_s, s) for s in seeds]
                rec = [(b - h) / (b - d_base) for b, h in zip(a_base, a_hwa)]
                row = {"model": base, "card": card, "drift_time_s": t_s, "seeds": seeds,
                       "digital_base": d_base, "digital_hwa": d_hwa, "analog_base": summary(a_base),
                       "analog_hwa": summary(a_hwa), "recovered": summary(rec)}
                rows.append(row)
                lines.append(f"| {base} | {card} | {t_name} | {d_base:.3f} | {d_hwa:.3f} | "
                             f"{_fmt(row['analog_base'])} | {_fmt(row['analog_hwa'])} | "
                             f"{_fmt(row['recovered'], 2)} |")
    b = doc["budget"]
    lines.append("")
    lines.append(f"Bits/char on the first {b['eval_chars']} test characters (MDLM: NELBO bound, {b['t_samples']} "
                 f"time sample(s) per window, eval seed {b['eval_seed']}); analog: mean and 95% t-interval over "
                 f"programming seeds; recovered = (analog base − analog HWA) / (analog base − digital base) per "
                 f"seed, mean and 95% t-interval. Digital: card {DIGITAL} (the digital model).")
    print("\n".join(lines))
    if args.table:
        Path(args.table).write_text("\n".join(lines) + "\n")
    return {"rows": rows, "budget": b}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("run", "report"))
    p.add_argument("--models", nargs="+", default=["shakespeare-mdlm", "shakespeare-mdlm-hwa", "shakespeare-ar",
                                                   "shakespeare-ar-hwa"])
    p.add_argument("--cards", nargs="+", default=["pcm-ibm", "pcm-hermes"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-list", type=int, nargs="*", default=None,
                   help="run: only these programming seeds (workers may split the seeds)")
    p.add_argument("--eval-chars", type=int, default=4096)
    p.add_argument("--t-samples", type=int, default=1)
    p.add_argument("--results", nargs="+", default=["docs/results/hwa/recovery.json"],
                   help="run: the one file to append to; report: every file to merge (workers may split the cells)")
    p.add_argument("--no-digital", action="store_true", help="run: skip the digital cells (another worker runs them)")
    p.add_argument("--table", default=None, help="report: also write the table (Markdown) here")
    args = p.parse_args()
    if args.what == "run":
        run(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
