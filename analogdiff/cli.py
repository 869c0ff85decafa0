"""The ``analogdiff`` command line. Thin: parse → call the package → print or write.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int`` registered in
``COMMANDS``. Bad input raises ``ValueError`` (``ConfigError`` is one) somewhere below; ``main`` turns it
into one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable


def _add_hardware_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--hardware", required=required, metavar="H",
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

    parser = add_train_arguments(argparse.ArgumentParser(
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

def _add_estimate(sub) -> None:
    p = sub.add_parser("estimate", help="energy and latency per generated token on an analog card or a GPU")
    p.add_argument("--model", required=True, metavar="M",
                   help="model shape: a name (see `analogdiff presets`) or a path to a shape TOML")
    _add_hardware_args(p)
    p.add_argument("--decode", choices=["diffusion", "ar"], default="diffusion",
                   help="diffusion (masked denoising) or ar (autoregressive); default diffusion")
    p.add_argument("--steps", type=int, default=None, metavar="T",
                   help="denoising steps (diffusion only; default: the generated length)")
    p.add_argument("--seq-len", type=int, default=None, metavar="L",
                   help="sequence length incl. prompt (default: min(1024, the model's context))")
    p.add_argument("--block-len", type=int, default=None, metavar="B",
                   help="semi-autoregressive blocks of B positions with prefix KV reuse (diffusion only)")
    p.add_argument("--prompt-len", type=int, default=0, metavar="P", help="prompt positions (default 0)")
    p.add_argument("--no-kv-cache", action="store_true",
                   help="AR: recompute the context every step; diffusion blocks: no prefix KV reuse")
    p.add_argument("--batch", type=int, default=1, metavar="B", help="sequences decoded together (default 1)")
    p.add_argument("--dtype", choices=["bf16", "fp8"], default=None, help="GPU datatype (GPU cards only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_estimate(args) -> int:
    from analogdiff.config import load_hardware, parse_set_options
    from analogdiff.energy import Autoregressive, Diffusion, estimate, load_shape

    hw = load_hardware(args.hardware, overrides=parse_set_options(args.set))
    if args.dtype is not None:
        if hw.kind != "gpu":
            raise ValueError(f"--dtype: applies to GPU cards only; {hw.name} is an analog card")
        hw = load_hardware(hw, overrides={"gpu.dtype": args.dtype})
    shape = load_shape(args.model)
    seq_len = args.seq_len if args.seq_len is not None else min(1024, shape.context_len)
    if args.decode == "ar":
        for flag, value in (("--steps", args.steps), ("--block-len", args.block_len)):
            if value is not None:
                raise ValueError(f"{flag}: applies to --decode diffusion only")
        decode = Autoregressive(seq_len=seq_len, kv_cache=not args.no_kv_cache, prompt_len=args.prompt_len)
    else:
        steps = args.steps if args.steps is not None else max(seq_len - args.prompt_len, 1)
        decode = Diffusion(steps=steps, seq_len=seq_len, block_len=args.block_len, prompt_len=args.prompt_len,
                           kv_cache=not args.no_kv_cache)
    report = estimate(shape, hw, decode=decode, batch=args.batch)
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

def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="accuracy of a shipped model on a hardware card, over programming seeds")
    p.add_argument("--model", required=True, metavar="M", help="shakespeare-mdlm, shakespeare-ar or a checkpoint path")
    _add_hardware_args(p)
    p.add_argument("--drift-time", type=float, default=0.0, metavar="S",
                   help="seconds since programming (default 0)")
    p.add_argument("--seeds", type=int, default=1, metavar="K", help="programming seeds 0..K-1 (default 1)")
    p.add_argument("--max-chars", type=int, default=16384, metavar="N",
                   help="test characters evaluated per seed (default 16384)")
    p.add_argument("--samples", type=int, default=4, metavar="N",
                   help="generated passages per setting for generative perplexity (default 4; 0 skips it)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_eval(args) -> int:
    from analogdiff.bench.evaluation import evaluate_on_hardware

    if args.seeds < 1:
        raise ValueError(f"--seeds: must be >= 1, got {args.seeds}")
    if args.samples < 0:
        raise ValueError(f"--samples: must be >= 0, got {args.samples}")
    from analogdiff.config import parse_set_options

    out = evaluate_on_hardware(args.model, args.hardware, drift_time_s=args.drift_time,
                               seeds=range(args.seeds), overrides=parse_set_options(args.set),
                               max_chars=args.max_chars, gen_ppl=args.samples > 0,
                               n_samples=max(args.samples, 1))
    if args.json:
        out = {k: v for k, v in out.items() if k != "stats"} | {"stats": out["stats"]}
        _print_json(out)
        return 0
    print(f"{out['model']} on {out['hardware']}, {out['drift_time_s']:g} s after programming, "
          f"seeds {out['seeds']}")
    for key, value in out["metrics"].items():
        text = (f"{value['mean']:.4f} ± {value['std']:.4f}" if isinstance(value, dict) else f"{value:.4f}")
        print(f"  {key:<22} {text}")
    cost = out["cost"]
    print(f"  {'energy/token':<22} {cost['energy_per_token_j']:.4g} J   "
          f"latency/token {cost['latency_per_token_s']:.4g} s"
          + ("   (priced from this run's activation statistics)" if out["stats"] else ""))
    return 0


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="write a passage with a shipped model on a hardware card")
    p.add_argument("--model", required=True, metavar="M", help="shakespeare-mdlm, shakespeare-ar or a checkpoint path")
    _add_hardware_args(p)
    p.add_argument("--drift-time", type=float, default=0.0, metavar="S", help="seconds since programming")
    p.add_argument("--steps", type=int, default=64, metavar="T", help="denoising steps (MDLM; default 64)")
    p.add_argument("--seq-len", type=int, default=None, metavar="L", help="characters (default: the context)")
    p.add_argument("--sampler", choices=["ancestral", "remask"], default="ancestral", help="MDLM sampler")
    p.add_argument("--block-len", type=int, default=None, metavar="B", help="semi-autoregressive blocks (MDLM)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="AR: sample among the K most likely")
    p.add_argument("--prompt", default=None, help="text the passage starts with")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="programming and sampling seed")
    p.add_argument("--show-steps", action="store_true", help="print the passage after every denoising step")


def _run_generate(args) -> int:
    from analogdiff.bench.evaluation import program
    from analogdiff.config import load_hardware, parse_set_options
    from analogdiff.lm import generate, load_model

    if args.drift_time < 0:
        raise ValueError(f"--drift-time: must be >= 0 seconds, got {args.drift_time:g}")
    hw = load_hardware(args.hardware, overrides=parse_set_options(args.set))
    model = load_model(args.model)
    if hw.kind == "analog":
        model = program(model, hw, args.seed, args.drift_time)
    show = None
    if args.show_steps:
        def show(k, text):
            print(f"--- step {k}\n{text}", flush=True)
    text = generate(model, steps=args.steps, seed=args.seed, seq_len=args.seq_len, sampler=args.sampler,
                    block_len=args.block_len, temperature=args.temperature, top_k=args.top_k,
                    prompt=args.prompt, show_steps=show)
    if args.show_steps:
        print("--- final")
    print(text)
    return 0


# ---------------------------------------------------------------------- validate-circuits (crossbar.spice)

def _add_validate_circuits(sub) -> None:
    p = sub.add_parser("validate-circuits",
                       help="check the exact IR-drop solver against ngspice on the reference cases")
    p.add_argument("--cases", metavar="PATH",
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

    from analogdiff.energy.validate import format_table, validate_cards

    if args.cards is not None and not Path(args.cards).is_dir():
        raise ValueError(f"--cards: {args.cards} is not a directory")
    rows = validate_cards(card_dir=args.cards)
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
    "generate": (_add_generate, _run_generate),
    "tune": (_add_tune, _run_tune),
    "plot": (_add_plot, _run_plot),
    "estimate": (_add_estimate, _run_estimate),
    "bench": (_add_bench, _run_bench),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analogdiff",
        description="Diffusion language models on simulated analog in-memory hardware: accuracy and cost.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":
        args.train_args = extra  # parsed by the train parser itself (see _add_train)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return COMMANDS[args.command][1](args)
    except (ValueError, FileNotFoundError) as e:  # ConfigError is a ValueError
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"analogdiff {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"analogdiff {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
