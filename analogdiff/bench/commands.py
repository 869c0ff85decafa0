"""Arguments and actions of the ``bench``, ``tune`` and ``plot`` subcommands (``analogdiff/cli.py`` binds them).

Every number has its range in its argument definition; bad input found later raises ``ConfigError`` (one
line); the CLI turns it into exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analogdiff import checks
from analogdiff.checks import ConfigError

MAX_WORKERS = 4096
"""Dask worker processes of one local cluster."""


def add_pool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=checks.arg_int(0, MAX_WORKERS), default=None, metavar="N",
                   help="Dask LocalCluster with N single-threaded worker processes (default: one per core; "
                        "0 = run in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDR", type=checks.arg_path,
                   help="run on an existing Dask cluster, e.g. tcp://host:8786 (workers need analogdiff)")


# --------------------------------------------------------------------------- bench

def add_bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default=None, metavar="NAME|PATH", type=checks.arg_path,
                   help="suite name in analogdiff/bench/suites (default: default; 'estimator' = the estimator "
                        "suite of published shapes) or a path to a suite TOML file")
    p.add_argument("--quick", action="store_true", help="the quick suite (< 2 minutes) in place of the default")
    p.add_argument("--out", default="results", metavar="DIR", type=checks.arg_path,
                   help="output directory (default: results/)")
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
    from .tune import MAX_TRIALS

    p = sub.add_parser("tune", help="multi-objective Optuna search of device parameters (accuracy vs energy)")
    p.add_argument("--trials", type=checks.arg_int(1, MAX_TRIALS), required=True, metavar="N",
                   help="finished trials the study should hold (a rerun continues up to N)")
    p.add_argument("--out", required=True, metavar="DIR", type=checks.arg_path,
                   help="directory of the study (study.db) and its outputs")
    p.add_argument("--space", default=None, metavar="PATH", type=checks.arg_path,
                   help="search-space TOML (default: analogdiff/bench/spaces/default.toml, or quick.toml with "
                        "--quick)")
    p.add_argument("--quick", action="store_true", help="small evaluation budget (and the quick space)")
    p.add_argument("--storage", default=None, metavar="URL", type=checks.arg_path,
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
    src.add_argument("--results", metavar="DIR|FILE", type=checks.arg_path,
                     help="a bench output directory or its results.json")
    src.add_argument("--study", metavar="DIR", type=checks.arg_path, help="a tune output directory (its study.db)")
    p.add_argument("--storage", default=None, metavar="URL", type=checks.arg_path,
                   help="with --study: the study's storage URL")
    p.add_argument("--out", default=None, metavar="DIR", type=checks.arg_path,
                   help="where to write the figures (default: figures/ beside the results or study)")
    p.add_argument("--token-rate", type=checks.arg_number(0.0, checks.MAX_TOKEN_RATE_PER_S, lo_open=True),
                   default=None, metavar="R",
                   help="tokens/s at which power is stated (default: the suite's, else 100)")
    p.add_argument("--json", action="store_true", help="print the written files as one JSON object")


def run_plot(args: argparse.Namespace) -> int:
    if args.results:
        from .figures import suite_figures
        from .results import load_results

        src = Path(args.results)
        rows = load_results(src)
        base = src if src.is_dir() else src.parent
        rate, t, steps = 100.0, None, 64
        if (base / "suite.json").is_file():
            where = str(base / "suite.json")
            meta = checks.parse_json(where, checks.read_text("suite record", base / "suite.json"))
            if not isinstance(meta, dict):
                raise ConfigError(f"{where}: expected a JSON object")
            rate = checks.number(f"{where}: token_rate_per_s", meta.get("token_rate_per_s", rate), 0.0,
                                 checks.MAX_TOKEN_RATE_PER_S, lo_open=True)
            if meta.get("headline_drift_time_s") is not None:
                t = checks.drift_time_s(f"{where}: headline_drift_time_s", meta["headline_drift_time_s"])
            if meta.get("headline_steps") is not None:
                steps = checks.integer(f"{where}: headline_steps", meta["headline_steps"], 1, checks.MAX_STEPS)
        out = Path(args.out) if args.out else base / "figures"
        pngs = suite_figures(rows, out, token_rate_per_s=args.token_rate or rate, headline_drift_time_s=t,
                             headline_steps=steps)
        if not pngs:
            raise ConfigError(f"--results: {src} holds no rows that can be plotted")
    else:
        from .tune import load_study, write_study_outputs

        study = load_study(args.study, args.storage)
        out = Path(args.out) if args.out else Path(args.study)
        info = write_study_outputs(study, None, out, args.token_rate or 100.0)
        pngs = [Path(info["figure"])] if info.get("figure") else []
        if not pngs:
            raise ConfigError(f"--study: {args.study} holds no completed trial")
    files = [str(p) for png in pngs for p in (png, png.with_suffix(".svg"))]
    if args.json:
        print(json.dumps({"files": files}))
    else:
        for f in files:
            print(f)
    return 0
