"""Arguments and actions of the ``bench``, ``tune`` and ``plot`` subcommands (``analogdiff/cli.py`` binds them).

Bad input raises ``ValueError`` (one line); the CLI turns it into exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return n


def add_pool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="Dask LocalCluster with N single-threaded worker processes (default: one per core; "
                        "0 = run in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="run on an existing Dask cluster, e.g. tcp://host:8786 (workers need analogdiff)")


# --------------------------------------------------------------------------- bench

def add_bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default=None, metavar="NAME|PATH",
                   help="suite name in analogdiff/bench/suites (default: default; 'estimator' = the estimator "
                        "suite of published shapes) or a path to a suite TOML file")
    p.add_argument("--quick", action="store_true", help="the quick suite (< 2 minutes) in place of the default")
    p.add_argument("--out", default="results", metavar="DIR", help="output directory (default: results/)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_pool_args(p)


def run_bench(args: argparse.Namespace, estimator_suite=None) -> int:
    """Run a suite. ``estimator_suite(args)`` runs the estimator suite when ``--suite estimator`` (the
    estimator's own command); without it the estimator suite runs through the suite runner."""
    from .suite import load_suite, resolve_suite, run_suite

    ref = resolve_suite(args.suite, args.quick)
    if ref == "estimator" and estimator_suite is not None:
        return estimator_suite(args)
    suite = load_suite(ref)  # validates everything before any work
    if ref == "estimator":
        suite.sections[0]["quick"] = bool(args.quick)
    summary = run_suite(suite, args.out, workers=args.workers, scheduler=args.scheduler,
                        progress=getattr(args, "progress", True), echo=lambda m: print(m, file=sys.stderr))
    print(f"bench {suite.name}: {summary['rows']} rows in {summary['out_dir']} "
          f"({summary['ran']} of {summary['runs']} runs executed, {summary['wall_s']} s, {summary['pool']})")
    print(f"report: {Path(summary['out_dir']) / 'report.md'}")
    return 0


# --------------------------------------------------------------------------- tune

def add_tune(sub) -> None:
    p = sub.add_parser("tune", help="multi-objective Optuna search of device parameters (accuracy vs energy)")
    p.add_argument("--trials", type=int, required=True, metavar="N",
                   help="finished trials the study should hold (a rerun continues up to N)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory of the study (study.db) and its outputs")
    p.add_argument("--space", default=None, metavar="PATH",
                   help="search-space TOML (default: analogdiff/bench/spaces/default.toml, or quick.toml with --quick)")
    p.add_argument("--quick", action="store_true", help="small evaluation budget (and the quick space)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna storage shared by several machines, e.g. postgresql://user:pw@host/db "
                        "(default: sqlite in DIR)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_pool_args(p)


def run_tune(args: argparse.Namespace) -> int:
    from .tune import tune

    info = tune(args.space, args.trials, args.out, quick=args.quick, storage=args.storage, workers=args.workers,
                scheduler=args.scheduler, progress=args.progress, echo=print)
    print(f"written: {Path(args.out) / 'pareto.json'}, pareto.csv, trials.csv"
          + (f", {info['figure']}" if info.get("figure") else ""))
    return 0


# --------------------------------------------------------------------------- plot

def add_plot(sub) -> None:
    p = sub.add_parser("plot", help="figures (PNG and SVG) from bench results or a tuning study")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--results", metavar="DIR|FILE", help="a bench output directory or its results.json")
    src.add_argument("--study", metavar="DIR", help="a tune output directory (its study.db)")
    p.add_argument("--storage", default=None, metavar="URL", help="with --study: the study's storage URL")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where to write the figures (default: figures/ beside the results or study)")
    p.add_argument("--token-rate", type=float, default=None, metavar="R",
                   help="tokens/s at which power is stated (default: the suite's, else 100)")
    p.add_argument("--json", action="store_true", help="print the written files as one JSON object")


def run_plot(args: argparse.Namespace) -> int:
    if args.token_rate is not None and not args.token_rate > 0:
        raise ValueError(f"--token-rate: must be > 0 tokens/s, got {args.token_rate}")
    if args.results:
        from .figures import suite_figures
        from .results import load_results

        src = Path(args.results)
        rows = load_results(src)
        base = src if src.is_dir() else src.parent
        rate, t = 100.0, None
        if (base / "suite.json").is_file():
            meta = json.loads((base / "suite.json").read_text())
            rate, t = meta.get("token_rate_per_s", rate), meta.get("headline_drift_time_s")
        out = Path(args.out) if args.out else base / "figures"
        pngs = suite_figures(rows, out, token_rate_per_s=args.token_rate or rate, headline_drift_time_s=t)
        if not pngs:
            raise ValueError(f"--results: {src} holds no rows that can be plotted")
    else:
        from .tune import load_study, write_study_outputs

        study = load_study(args.study, args.storage)
        out = Path(args.out) if args.out else Path(args.study)
        info = write_study_outputs(study, None, out, args.token_rate or 100.0)
        pngs = [Path(info["figure"])] if info.get("figure") else []
        if not pngs:
            raise ValueError(f"--study: {args.study} holds no completed trial")
    files = [str(p) for png in pngs for p in (png, png.with_suffix(".svg"))]
    if args.json:
        print(json.dumps({"files": files}))
    else:
        for f in files:
            print(f)
    return 0
