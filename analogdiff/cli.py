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


# --------------------------------------------------------------------------- registry

COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "presets": (_add_presets, _run_presets),
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
    args = parser.parse_args(argv)
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
