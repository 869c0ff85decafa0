"""The ``analogdiff`` command line. Thin: parse → call the package → print or write.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int`` registered in
``COMMANDS``. Every number has its range in its argument definition (``checks.arg_int``/``arg_number``), so a
bad one stops argparse before any work. Bad input found later raises :class:`~analogdiff.checks.ConfigError`
somewhere below; ``main`` is the one error boundary: it turns that, OS errors (``--out`` not writable, a file
that cannot be read) and absurdly nested input into one line on stderr and exit code 2. Any other exception
is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Callable

from analogdiff import checks
from analogdiff.checks import ConfigError


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr (exit 2), like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_STEPS = checks.arg_int(1, checks.MAX_STEPS)
_SEQ_LEN = checks.arg_int(1, checks.MAX_SEQ_LEN)
_DRIFT_TIME = checks.arg(checks.drift_time_s)  # the rule of suites, spaces and set_drift_time


def _add_hardware_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--hardware", required=required, metavar="H", type=checks.arg_path,
                   help="hardware card: a preset name (see `analogdiff presets`) or a path to a TOML card")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a card value, e.g. --set adc.bits=6 or --set wire=none (repeatable)")


def _hardware(args: argparse.Namespace):
    from analogdiff.config import load_hardware, parse_set_options

    return load_hardware(args.hardware, overrides=parse_set_options(args.set))


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=float) + "\n")


# --------------------------------------------------------------------------- presets

def _add_presets(sub) -> None:
    p = sub.add_parser("presets", help="list hardware cards and model shapes")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_presets(args) -> int:
    from analogdiff.config import list_hardware, load_hardware
    from analogdiff.energy import list_shapes, load_shape

    cards = {n: load_hardware(n).description for n in list_hardware()}
    shapes = {n: load_shape(n).summary() for n in list_shapes()}
    if args.json:
        _print_json({"hardware": cards, "shapes": shapes})
        return 0
    print("Hardware cards:")
    for n, d in cards.items():
        print(f"  {n:<14} {d}")
    print("Model shapes:")
    for n, d in shapes.items():
        print(f"  {n:<18} {d}")
    return 0


# --------------------------------------------------------------------------- train

def _add_train(sub) -> None:
    # The real arguments live in analogdiff.lm.train (which imports torch): they are parsed in _run_train so
    # that building this parser stays fast for every other subcommand. `analogdiff train --help` shows them.
    p = sub.add_parser("train", add_help=False,
                       help="train the character MDLM or its autoregressive twin (resumable)")
    p.set_defaults(train_args=[])


def _run_train(args) -> int:
    from analogdiff.lm.train import add_train_arguments, run_train

    parser = add_train_arguments(Parser(
        prog="analogdiff train", description="Train the character MDLM or its autoregressive twin (resumable)."))
    run_train(parser.parse_args(args.train_args))
    return 0


# --------------------------------------------------------------------------- tune, plot (analogdiff.bench)

def _add_tune(sub) -> None:
    from analogdiff.bench.commands import add_tune

    add_tune(sub)


def _run_tune(args) -> int:
    from analogdiff.bench.commands import run_tune

    return run_tune(args)


def _add_plot(sub) -> None:
    from analogdiff.bench.commands import add_plot

    add_plot(sub)


def _run_plot(args) -> int:
    from analogdiff.bench.commands import run_plot

    return run_plot(args)


# --------------------------------------------------------------------------- estimate (analogdiff.energy)

def _warn_wires(hw) -> None:
    """One line on stderr when IR drop alone makes the card's tile compute wrong (crossbar.wire_check)."""
    from analogdiff.crossbar.wire_check import wire_warning

    line = wire_warning(hw)
    if line:
        print(line, file=sys.stderr)


def _add_estimate(sub) -> None:
    p = sub.add_parser("estimate", help="energy and latency per generated token on an analog card or a GPU")
    p.add_argument("--model", required=True, metavar="M", type=checks.arg_path,
                   help="model shape: a name (see `analogdiff presets`) or a path to a shape TOML")
    _add_hardware_args(p)
    p.add_argument("--decode", choices=["diffusion", "ar"], default="diffusion",
                   help="diffusion (masked denoising) or ar (autoregressive); default diffusion")
    p.add_argument("--steps", type=_STEPS, default=None, metavar="T",
                   help="denoising steps (diffusion only; default: the generated length)")
    p.add_argument("--seq-len", type=_SEQ_LEN, default=None, metavar="L",
                   help="sequence length incl. prompt (default: min(1024, the model's context))")
    p.add_argument("--block-len", type=_SEQ_LEN, default=None, metavar="B",
                   help="semi-autoregressive blocks of B positions with prefix KV reuse (diffusion only)")
    p.add_argument("--prompt-len", type=checks.arg_int(0, checks.MAX_SEQ_LEN - 1), default=0, metavar="P",
                   help="prompt positions (default 0)")
    p.add_argument("--no-kv-cache", action="store_true",
                   help="AR: recompute the context every step; diffusion blocks: no prefix KV reuse")
    p.add_argument("--cache-mode", choices=["block", "prefix", "dual"], default="block",
                   help="diffusion blocks with the cache: block (BD3-LM, default), prefix or dual (Fast-dLLM)")
    p.add_argument("--tokens-per-step", type=checks.arg_number(1.0, float(checks.MAX_SEQ_LEN)), default=None,
                   metavar="M", help="parallel (confidence-threshold) decoding: mean tokens unmasked per step, "
                                     "instead of --steps (diffusion only)")
    p.add_argument("--batch", type=checks.arg_int(1, checks.MAX_BATCH), default=1, metavar="B",
                   help="sequences decoded together (default 1)")
    p.add_argument("--dtype", choices=["bf16", "fp8"], default=None, help="GPU datatype (GPU cards only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_estimate(args) -> int:
    from analogdiff.config import load_hardware, parse_set_options
    from analogdiff.energy import Autoregressive, Diffusion, estimate, load_shape

    hw = load_hardware(args.hardware, overrides=parse_set_options(args.set))
    if args.dtype is not None:
        if hw.kind != "gpu":
            raise ConfigError(f"--dtype: applies to GPU cards only; {hw.name} is an analog card")
        hw = load_hardware(hw, overrides={"gpu.dtype": args.dtype})
    shape = load_shape(args.model)
    seq_len = args.seq_len if args.seq_len is not None else min(1024, shape.context_len)
    if args.decode == "ar":
        for flag, value in (("--steps", args.steps), ("--block-len", args.block_len),
                            ("--tokens-per-step", args.tokens_per_step),
                            ("--cache-mode", None if args.cache_mode == "block" else args.cache_mode)):
            if value is not None:
                raise ConfigError(f"{flag}: applies to --decode diffusion only")
        decode = Autoregressive(seq_len=seq_len, kv_cache=not args.no_kv_cache, prompt_len=args.prompt_len)
    else:
        steps = args.steps if args.steps is not None or args.tokens_per_step is not None \
            else max(seq_len - args.prompt_len, 1)
        decode = Diffusion(steps=steps, seq_len=seq_len, block_len=args.block_len, prompt_len=args.prompt_len,
                           kv_cache=not args.no_kv_cache, cache_mode=args.cache_mode,
                           tokens_per_step=args.tokens_per_step)
    report = estimate(shape, hw, decode=decode, batch=args.batch)
    _warn_wires(hw)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.table())
    return 0


# --------------------------------------------------------------------------- bench (analogdiff.bench)

def _add_bench(sub) -> None:
    from analogdiff.bench.commands import add_bench_args

    p = sub.add_parser("bench", help="run a benchmark suite (--suite estimator: the cost-model suite)")
    add_bench_args(p)


def _run_bench(args) -> int:
    from analogdiff.bench.commands import run_bench
    from analogdiff.bench.estimator_suite import run_estimator_bench

    return run_bench(args, estimator_suite=run_estimator_bench)


# --------------------------------------------------------------------------- eval, generate (lm on a card)

def _add_experiment_args(p, seeds_help: str) -> None:
    """--model, the hardware arguments, --drift-time and --seeds of the commands that run one experiment."""
    p.add_argument("--model", required=True, metavar="M", type=checks.arg_path,
                   help="shakespeare-mdlm, shakespeare-ar or a checkpoint path")
    _add_hardware_args(p)
    p.add_argument("--drift-time", type=_DRIFT_TIME, default=0.0, metavar="S",
                   help="seconds since programming (default 0)")
    p.add_argument("--seeds", type=checks.arg_int(1, checks.MAX_SEEDS), default=1, metavar="K", help=seeds_help)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="accuracy of a model on a hardware card over programming seeds, and its cost")
    _add_experiment_args(p, "programming seeds 0..K-1 (default 1)")
    p.add_argument("--text", default=None, metavar="FILE", type=checks.arg_path,
                   help="score this UTF-8 text file (every token, through the model's tokenizer: bits/token and "
                        "bits/byte) instead of the Shakespeare test plays")
    p.add_argument("--max-chars", type=checks.arg_int(*checks.BUDGET_BOUNDS["eval_chars"]), default=None,
                   metavar="N", help="characters scored per seed (default: 16384 of the test plays; with --text "
                                     "the whole file)")
    p.add_argument("--t-samples", type=checks.arg_int(*checks.BUDGET_BOUNDS["t_samples"]), default=4, metavar="N",
                   help="NELBO time samples per window (MDLM; default 4)")
    p.add_argument("--samples", type=checks.arg_int(0, checks.BUDGET_BOUNDS["gen_samples"][1]), default=None,
                   metavar="N", help="passages generated per seed for generative perplexity (default 4, with "
                                     "--text 0; 0 skips generation)")
    p.add_argument("--judge", default=None, metavar="M", type=checks.arg_path,
                   help="digital AR model judging the passages (default shakespeare-ar for the character "
                        "models; none for other vocabularies: entropy only)")
    p.add_argument("--steps", type=_STEPS, default=64, metavar="T",
                   help="denoising steps of the generated passages (MDLM; default 64)")
    p.add_argument("--eval-seed", type=checks.arg(checks.seed), default=0, metavar="N",
                   help="seed of the test masks, NELBO times and sampler (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _experiment_json(out: dict) -> dict:
    """An experiment result for ``--json``: everything but the generated texts (the passages of every seed)."""
    per_seed = [{k: v for k, v in p.items() if k != "texts"} for p in out["per_seed"]]
    return {**out, "per_seed": per_seed}


def _run_eval(args) -> int:
    from analogdiff import checks
    from analogdiff.bench import experiment as ex
    from analogdiff.config import parse_set_options

    seeds = checks.seed_count("--seeds", args.seeds)
    max_chars = args.max_chars if args.max_chars is not None or args.text else 16384
    if max_chars is not None:
        checks.integer("--max-chars", max_chars, *checks.BUDGET_BOUNDS["eval_chars"])
    score = ex.Score(eval_chars=max_chars,
                     t_samples=checks.integer("--t-samples", args.t_samples, *checks.BUDGET_BOUNDS["t_samples"]),
                     eval_seed=checks.seed("--eval-seed", args.eval_seed), text=args.text)
    n = args.samples if args.samples is not None else (0 if args.text else 4)
    n = checks.integer("--samples", n, 0, checks.BUDGET_BOUNDS["gen_samples"][1])
    generate = (ex.Generate(steps=checks.integer("--steps", args.steps, 1, checks.BUDGET_BOUNDS["gen_len"][1]),
                            n_samples=n, eval_seed=args.eval_seed,
                            judge=args.judge or ex.default_judge(args.model)) if n else None)
    spec = ex.Experiment(model=args.model, card=args.hardware, overrides=parse_set_options(args.set),
                         drift_time_s=checks.drift_time_s("--drift-time", args.drift_time), seeds=tuple(seeds),
                         score=score, generate=generate)
    ex.check(spec)
    _warn_wires(ex.hardware(spec.card, spec.overrides))
    out = ex.run(spec)
    if args.json:
        _print_json(_experiment_json(out))
        return 0
    runs = out["seeds_run"]
    print(f"{args.model}" + (f" scoring {args.text}" if args.text else "") + f" on {out['hardware']}, "
          f"{spec.drift_time_s:g} s after programming, "
          + ("programming seeds " + ", ".join(map(str, runs)) if runs != [None] else "no noise: one run")
          + " (mean ± sample std [95% interval])")
    for key, s in out["metrics"].items():
        band = f" [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]" if s["n"] > 1 else ""
        print(f"  {key:<22} {s['mean']:.4f}" + (f" ± {s['std']:.4f}{band}" if s["n"] > 1 else ""))
    scored = "scored token" if args.text else "scored character"
    for task, what in (("score", scored), ("generate", "generated character")):
        if task in out["cost"]:
            e, t = out["cost"][task]["energy_per_token_j"], out["cost"][task]["latency_per_token_s"]
            print(f"  energy/{what:<20} {e['mean']:.4g} J   latency {t['mean']:.4g} s   "
                  f"(priced from this run's trace" + (" and activation statistics)" if out["kind"] == "analog" else ")"))
    if "calibration" in out:
        c = out["calibration"]
        print(f"  IR-drop calibration    {c['energy_j']:.4g} J   {c['time_s']:.4g} s   once per chip, at programming "
              f"({c['vectors']:,} calibration reads)")
    return 0


def _add_complete(sub) -> None:
    p = sub.add_parser("complete", help="continue held-out prompts with a model on a hardware card: accuracy, "
                                        "judge bits/char, log-loss of the true continuation, repairs; and the cost")
    _add_experiment_args(p, "programming seeds 0..K-1 (default 1); the sampler is seeded with (eval seed, seed)")
    p.add_argument("--n-new", type=checks.arg_int(1, checks.BUDGET_BOUNDS["gen_len"][1]), default=32, metavar="N",
                   help="characters to write after each prompt (default 32)")
    p.add_argument("--prompts", type=checks.arg_int(1, 100_000), default=32, metavar="B",
                   help="held-out prompts (evenly spaced windows of the test plays; default 32)")
    p.add_argument("--prompt-len", type=checks.arg_int(1, checks.BUDGET_BOUNDS["gen_len"][1]), default=32,
                   metavar="P", help="characters per prompt (default 32)")
    p.add_argument("--steps", type=_STEPS, default=None, metavar="T", help="denoising steps (MDLM; default N)")
    p.add_argument("--sampler", default="ancestral", type=checks.arg_text(32),
                   help="ancestral, remask (LLaDA) or remdm (ReMDM-cap; MDLM only)")
    p.add_argument("--eta", type=checks.arg_number(0.0, 1.0), default=0.05, metavar="X",
                   help="ReMDM re-masking cap (sampler remdm; default 0.05)")
    p.add_argument("--temperature", type=checks.arg_number(0.0, 100.0), default=1.0, metavar="X")
    p.add_argument("--inject-pct", type=checks.arg_number(0.0, 100.0), default=0.0, metavar="K",
                   help="corrupt K%% of the N written characters midway and count the repairs (default 0)")
    p.add_argument("--loss", default="l2r", type=checks.arg_text(16),
                   help="MDLM log-loss of the true continuation: l2r (exact left-to-right any-order NLL), nelbo, "
                        "or none (default l2r; AR: exact)")
    p.add_argument("--eval-seed", type=checks.arg(checks.seed), default=0, metavar="N")
    p.add_argument("--judge", default="shakespeare-ar", type=checks.arg_path, metavar="M",
                   help="digital AR model that scores the written text (none: no judging)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_complete(args) -> int:
    from analogdiff.bench import experiment as ex
    from analogdiff.bench.correction import mean_of
    from analogdiff.config import parse_set_options

    seeds = checks.seed_count("--seeds", args.seeds)
    task = ex.Complete(n_new=args.n_new, n_prompts=args.prompts, prompt_len=args.prompt_len, steps=args.steps,
                       sampler=args.sampler, eta=args.eta if args.sampler == "remdm" else 0.0,
                       temperature=args.temperature, inject_pct=args.inject_pct, loss=args.loss,
                       eval_seed=args.eval_seed, judge=None if checks.is_none(args.judge) else args.judge)
    spec = ex.Experiment(model=args.model, card=args.hardware, overrides=parse_set_options(args.set),
                         drift_time_s=checks.drift_time_s("--drift-time", args.drift_time), seeds=tuple(seeds),
                         complete=task)
    ex.check(spec)
    out = ex.run(spec)
    keys = out["per_seed"][0]["per_prompt"]
    out["bootstrap"] = {k: mean_of([p["per_prompt"][k] for p in out["per_seed"]]) for k in keys}
    if args.json:
        _print_json(out)
        return 0
    print(f"{args.model} on {out['hardware']}, {spec.drift_time_s:g} s after programming, {args.prompts} prompts "
          f"of {args.prompt_len} + {args.n_new} characters (mean [95% bootstrap over prompts and seeds])")
    for key, b in out["bootstrap"].items():
        print(f"  {key:<22} {b['mean']:.4f} [{b['ci95'][0]:.4f}, {b['ci95'][1]:.4f}]")
    e, t = out["cost"]["complete"]["energy_per_token_j"], out["cost"]["complete"]["latency_per_token_s"]
    print(f"  energy/character        {e['mean']:.4g} J   latency {t['mean']:.4g} s   (priced from this run's trace)")
    return 0


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="write a passage with a model on a hardware card, and price it")
    p.add_argument("--model", required=True, metavar="M", type=checks.arg_path,
                   help="shakespeare-mdlm, shakespeare-ar or a checkpoint path")
    _add_hardware_args(p)
    p.add_argument("--drift-time", type=_DRIFT_TIME, default=0.0, metavar="S", help="seconds since programming")
    p.add_argument("--steps", type=_STEPS, default=64, metavar="T", help="denoising steps (MDLM; default 64)")
    p.add_argument("--seq-len", type=_SEQ_LEN, default=None, metavar="L", help="characters (default: the context)")
    p.add_argument("--sampler", choices=["ancestral", "remask", "threshold"], default="ancestral",
                   help="MDLM sampler (threshold: Fast-dLLM confidence-threshold parallel decoding at 0.9)")
    p.add_argument("--block-len", type=_SEQ_LEN, default=None, metavar="B", help="semi-autoregressive blocks (MDLM)")
    p.add_argument("--kv-cache", action="store_true",
                   help="with --block-len: reuse the finished blocks' K/V (prefix cache) instead of re-feeding them")
    p.add_argument("--temperature", type=checks.arg_number(0.0, 100.0, lo_open=True), default=1.0,
                   help="sampling temperature (default 1)")
    p.add_argument("--top-k", type=checks.arg_int(1, 2 ** 24), default=None, metavar="K",
                   help="sample among the K most likely")
    p.add_argument("--prompt", default=None, type=checks.arg_text(checks.MAX_SEQ_LEN),
                   help="text the passage starts with")
    p.add_argument("--seed", type=checks.arg(checks.seed), default=0, metavar="N",
                   help="programming and sampling seed")
    p.add_argument("--show-steps", action="store_true", help="print the passage after every denoising step")
    p.add_argument("--json", action="store_true", help="print one JSON object (text, metrics, cost)")


def _run_generate(args) -> int:
    from analogdiff import checks
    from analogdiff.bench import experiment as ex
    from analogdiff.config import parse_set_options

    seed = checks.seed("--seed", args.seed)
    if args.kv_cache and args.block_len is None:
        raise ConfigError("--kv-cache: needs --block-len (the prefix cache holds finished blocks)")
    task = ex.Generate(steps=args.steps, seq_len=args.seq_len, n_samples=1, sampler=args.sampler,
                       block_len=args.block_len, kv_cache=args.kv_cache, temperature=args.temperature,
                       top_k=args.top_k, prompt=args.prompt, eval_seed=seed)
    spec = ex.Experiment(model=args.model, card=args.hardware, overrides=parse_set_options(args.set),
                         drift_time_s=checks.drift_time_s("--drift-time", args.drift_time), seeds=(seed,),
                         generate=task)
    ex.check(spec)
    show = None
    if args.show_steps and not args.json:
        lm = ex.model(args.model)

        def show(k, x):
            print(f"--- step {k}\n{lm.vocab.decode(x[0])}", flush=True)
    out = ex.run(spec, on_step=show)
    run = out["per_seed"][0]
    if args.json:
        _print_json({"text": run["texts"][0], "experiment": out["experiment"], "hardware": out["hardware"],
                     "metrics": run["metrics"], "cost": run["cost"]["generate"]})
        return 0
    if args.show_steps:
        print("--- final")
    print(run["texts"][0])
    return 0


# ---------------------------------------------------------------------- validate-circuits (crossbar.spice)

def _add_validate_circuits(sub) -> None:
    p = sub.add_parser("validate-circuits",
                       help="check the exact IR-drop solver against ngspice on the reference cases")
    p.add_argument("--cases", metavar="PATH", type=checks.arg_path,
                   help="cases JSON (default: the shipped circuits/spice/cases.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_validate_circuits(args) -> int:
    from analogdiff.crossbar.spice import load_cases, validate

    spec = load_cases(args.cases)
    tol, rows = spec["tolerance"], []
    if not args.json:
        print(f"{'case':<22} {'size':>9} {'r_row_ohm':>9} {'r_col_ohm':>9} {'batch':>5} "
              f"{'max_rel_err':>11} {'ir_drop':>8} {'ngspice_s':>9} {'ours_s':>8}  ok")
    for case in spec["cases"]:
        (row,) = validate([case], tolerance=tol)
        rows.append(row)
        if not args.json:
            print(f"{row['name']:<22} {str(row['rows']) + 'x' + str(row['cols']):>9} "
                  f"{row['r_row_ohm']:>9g} {row['r_col_ohm']:>9g} {row['batch']:>5} "
                  f"{row['max_rel_error']:>11.2e} {row['max_ir_drop']:>8.2%} {row['ngspice_s']:>9.2f} "
                  f"{row['ours_s']:>8.4f}  {'yes' if row['passed'] else 'NO'}", flush=True)
    passed = all(r["passed"] for r in rows)
    if args.json:
        _print_json({"tolerance": tol, "passed": passed, "cases": rows})
    else:
        print(f"{sum(r['passed'] for r in rows)}/{len(rows)} cases within relative error {tol:g} of ngspice")
    return 0 if passed else 1


# --------------------------------------------------------------------------- validate-cards (energy.validate)

def _add_validate_cards(sub) -> None:
    p = sub.add_parser("validate-cards",
                       help="each hardware card against published measurements of its chip (estimate vs published)")
    p.add_argument("--cards", metavar="DIR", default=None,
                   help="directory of cards to check (default: the shipped cards)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_validate_cards(args) -> int:
    from pathlib import Path

    from analogdiff.crossbar.wire_check import IR_DROP_ERROR_LIMIT, ir_drop_errors
    from analogdiff.energy.validate import format_table, validate_cards

    if args.cards is not None and not Path(args.cards).is_dir():
        raise ConfigError(f"--cards: {args.cards} is not a directory")
    rows = validate_cards(card_dir=args.cards, wire_check=ir_drop_errors, wire_limit=IR_DROP_ERROR_LIMIT)
    passed = all(r["passed"] for r in rows if r["role"] == "validation")
    if args.json:
        _print_json({"passed": passed, "rows": rows})
    else:
        print(format_table(rows))
    return 0 if passed else 1


# --------------------------------------------------------------------------- registry

COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "presets": (_add_presets, _run_presets),
    "validate-circuits": (_add_validate_circuits, _run_validate_circuits),
    "validate-cards": (_add_validate_cards, _run_validate_cards),
    "train": (_add_train, _run_train),
    "eval": (_add_eval, _run_eval),
    "complete": (_add_complete, _run_complete),
    "generate": (_add_generate, _run_generate),
    "tune": (_add_tune, _run_tune),
    "plot": (_add_plot, _run_plot),
    "estimate": (_add_estimate, _run_estimate),
    "bench": (_add_bench, _run_bench),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="analogdiff",
        description="Diffusion language models on simulated analog in-memory hardware: accuracy and cost.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit code (0, 1 for a failed validation, 2 for bad input, 130 when
    interrupted). A usage error (argparse) is one line and 2 as well."""
    try:
        return _main(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2, its one line already printed)
        return e.code if isinstance(e.code, int) else 2


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":
        args.train_args = extra  # parsed by the train parser itself (see _add_train)
    elif extra:
        parser.error(f"unrecognized arguments: {checks.short(' '.join(extra))}")
    try:
        with warnings.catch_warnings():
            # intermediate overflows are not news: every reported figure is checked finite and non-negative
            warnings.simplefilter("ignore", RuntimeWarning)
            return COMMANDS[args.command][1](args)
    except (ConfigError, OSError, RecursionError, UnicodeDecodeError) as e:
        print(f"analogdiff {args.command}: error: {error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"analogdiff {args.command}: interrupted", file=sys.stderr)
        return 130


def error_line(e: BaseException) -> str:
    """One line for an expected failure: the message, or for an OS error the file and the reason."""
    if isinstance(e, OSError) and e.filename is not None:
        where = str(e.filename)
        where = where if len(where) <= 200 else where[:197] + "..."
        return f"{where}: {e.strerror or type(e).__name__} (check the paths given: --out, --results, ...)"
    if isinstance(e, RecursionError):
        return "input nested too deeply (a card, shape, suite, space or results file of more than a few levels)"
    if isinstance(e, UnicodeDecodeError):
        return f"a file given is not UTF-8 text (byte {e.start} cannot be decoded)"
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


if __name__ == "__main__":
    raise SystemExit(main())
