"""Property-based fuzzing of the command line (Hypothesis): the error contract holds for every input.

Strategies generate valid and invalid hardware cards, ``--set`` overrides, model shapes, decode arguments,
suite and search-space files, results files and train arguments. Each example runs ``analogdiff.cli.main``
in this process (stdout/stderr captured, a per-example alarm catching hangs) in a fresh directory, and is
classified:

``ok``          exit 0, every figure printed is finite and non-negative;
``refused``     exit 2, exactly one line on stderr naming a field or file (``where: what``), nothing written;
``validated``   the input passed validation and the command reached its real work (programming a model,
                running a suite, a study, a training loop, drawing figures), which is stubbed here: every
                check must happen before that point;
and the failures: ``traceback``, ``hang``, ``nonfinite`` (a NaN, an infinity or a negative figure with exit
0), ``unnamed`` (an exit-2 line that names no field, or more than one line), ``outside`` (a file written
outside ``--out``), ``halfwritten`` (files left behind by a refused command).

    python tests/fuzz_cli.py --examples 10000        # `make fuzz`: prints the counts
    tests/test_cli_fuzz.py                            # a few hundred examples in `make test`
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import math
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("estimate", "eval", "bench", "tune", "plot", "train")
FAILURES = ("traceback", "hang", "nonfinite", "unnamed", "outside", "halfwritten")
HANG_S = 20.0
HOME = os.getcwd()
"""The directory each example returns to (each runs in a fresh temporary directory)."""


class WorkStarted(BaseException):
    """Raised by the stubs in place of real work (not an Exception: nothing in the CLI may catch it)."""


class Hang(BaseException):
    """Raised by the alarm when one example runs longer than :data:`HANG_S`."""


def _stub(*_, **__):
    raise WorkStarted


STUBS = (  # (module, name): the first step of real work of each command; every check must come before it
    ("analogdiff.bench.experiment", "run"),            # eval/generate (after experiment.check)
    ("analogdiff.bench.suite", "run_suite"),           # bench
    ("analogdiff.bench.tune", "_run_study"),           # tune (after the --out lock)
    ("analogdiff.lm.train", "_initial_model"),         # train (after --out is created)
    ("analogdiff.bench.figures", "suite_figures"),     # plot --results
    ("analogdiff.bench.tune", "write_study_outputs"),  # plot --study
)


# --------------------------------------------------------------------------- values

CARD_FIELDS = None


def card_fields() -> list[str]:
    global CARD_FIELDS
    if CARD_FIELDS is None:
        import dataclasses

        from analogdiff.config import COMPONENTS

        CARD_FIELDS = [f"{s}.{f.name}" for s, c in COMPONENTS.items() for f in dataclasses.fields(c)]
    return CARD_FIELDS


big_ints = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.sampled_from([2 ** 63 - 1, 2 ** 63, 2 ** 64, 10 ** 19,
                                                                       10 ** 200, -(10 ** 30), 2 ** 31]))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([1e308, 5e-324, -0.0, 1e-300, 1e19, float("nan"), float("inf")]))
small_ints = st.integers(-3, 300)
numbers = st.one_of(small_ints, big_ints, floats)
words = st.sampled_from(["none", "off", "NULL", "pwm", "amplitude", "table", "walden", "dynamic", "global",
                         "", "²", "x" * 300, "../../x", "a/b", "\x00", "☃"])
cli_numbers = st.one_of(numbers.map(lambda v: repr(v) if isinstance(v, float) else str(v)),
                        st.sampled_from(["1e19", "1e12", "nan", "inf", "-1", "0", "2**70", "0x10", "1_000", " 7",
                                         "", "1e400", "9" * 400, "5e-324"]),
                        st.text(max_size=8))


def deep(n: int, kind: str) -> str:
    return "x = " + "[" * n + "]" * n if kind == "toml" else "[" * n + "]" * n


def toml_literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_literal(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_literal(x) for x in v) + "]"
    return json.dumps(v)


plausible = st.one_of(st.integers(1, 64), st.floats(0.0, 1e3), st.sampled_from([0.5, 8, 16, 128, 1e-3]))
toml_values = st.recursive(st.one_of(numbers, words, st.booleans(), plausible, plausible),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.sampled_from(["4", "8", "²", "x", "16"]),
                                                                   inner, max_size=3)),
                           max_leaves=5)


def dump_toml(data: dict) -> str:
    """TOML text with every value inline (tomli_w refuses values this fuzzer wants to write)."""
    return "".join(f"{json.dumps(str(k))} = {toml_literal(v)}\n" for k, v in data.items())


@st.composite
def mutated(draw, base: dict, keys: list[str] | None = None, n_max: int = 3) -> dict:
    """``base`` (nested dicts) with up to ``n_max`` dotted keys set to random values or deleted."""
    data = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, n_max))):
        paths = keys or [f"{a}.{b}" if isinstance(v, dict) else a for a, v in data.items()
                         for b in (v if isinstance(v, dict) else [None])]
        key = draw(st.sampled_from(sorted(paths)))
        parts = key.split(".", 1)
        target = data
        if len(parts) == 2:
            if not isinstance(data.get(parts[0]), dict):
                data[parts[0]] = {}
            target = data[parts[0]]
        if draw(st.integers(0, 9)) == 0:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = draw(toml_values)
    return data


def file_bytes(valid_text: str, kind: str):
    """The text of a file: the valid one (mostly) or a hostile one."""
    return st.one_of(st.just(valid_text.encode()), st.just(valid_text.encode()), st.just(valid_text.encode()),
                     st.just(deep(1000, kind).encode()), st.binary(max_size=64),
                     st.text(max_size=40).map(str.encode), st.just(b"\xff\xfe" + valid_text.encode()))


# --------------------------------------------------------------------------- cases per command

PRESET_CARDS = ["pcm-ibm", "rram-wan2022", "ideal", "h100-sxm", "a100-sxm", "ecram", "pcm-hermes"]
SHAPES = ["gpt2-small", "mdlm-owt", "llama3-8b", "shakespeare-mdlm", "shakespeare-ar"]


@st.composite
def card_args(draw, files: dict) -> list[str]:
    """--hardware (a preset, a mutated card file, or junk) and --set overrides."""
    import tomllib

    choice = draw(st.integers(0, 5))
    if choice == 0:
        ref = draw(st.sampled_from(["nope", "x" * 300, "x" * 300 + ".toml", "missing.toml", ".", "/dev/null"]))
    elif choice == 1:
        preset = draw(st.sampled_from(PRESET_CARDS))
        data = tomllib.loads((ROOT / "circuits" / f"{preset}.toml").read_text())
        data = draw(mutated(data, card_fields() + ["tile", "memory", "adc", "junk"]))
        files["card.toml"] = draw(file_bytes(dump_toml(data), "toml"))
        ref = "card.toml"
    else:
        ref = draw(st.sampled_from(PRESET_CARDS))
    argv = ["--hardware", ref]
    if draw(st.booleans()):
        sets = st.sampled_from(VALID_SETS + boundary_sets())
        return argv + [a for v in draw(st.lists(sets, max_size=4)) for a in ("--set", v)]
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.one_of(st.sampled_from(card_fields()), st.sampled_from(["wire", "adc", "x.y", "adc.", ""])))
        value = draw(st.one_of(toml_values.map(toml_literal), words, st.just("{}"), st.just('{ "²" = 1 }'),
                               st.just(deep(600, "json"))))
        argv += ["--set", f"{key}={value}"]
    return argv


@st.composite
def estimate_case(draw):
    files: dict = {}
    shape_choice = draw(st.integers(0, 4))
    if shape_choice == 0:
        from analogdiff import checks
        from analogdiff.energy import load_shape

        base = {k: v for k, v in load_shape(draw(st.sampled_from(SHAPES))).to_dict().items() if k != "source"}
        if draw(st.booleans()):
            data = draw(mutated(base, list(base) + ["junk"]))
        else:  # valid shapes at the edges of the bounds
            data = dict(base, **{k: draw(st.sampled_from([lo, hi, hi // 2, 2 ** 10]))
                                 for k, (lo, hi) in checks.SHAPE_BOUNDS.items() if draw(st.booleans())})
        ext = draw(st.sampled_from(["toml", "json"]))
        text = dump_toml(data) if ext == "toml" else json.dumps({"shape": data}, default=str)
        files[f"shape.{ext}"] = draw(file_bytes(text, ext))
        model = f"shape.{ext}"
    elif shape_choice == 1:
        model = draw(st.sampled_from(["gpt5", "x" * 300, "x.toml", "x" * 300 + ".json"]))
    else:
        model = draw(st.sampled_from(SHAPES))
    argv = ["estimate", "--model", model, *draw(card_args(files))]
    hostile = draw(st.booleans())
    for flag in ("--steps", "--seq-len", "--block-len", "--prompt-len", "--batch"):
        r = draw(st.integers(0, 5))
        if r == 0 and hostile:
            argv += [flag, draw(cli_numbers)]
        elif r <= 1:
            argv += [flag, str(draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 2 ** 16,
                                                     2 ** 20, 2 ** 20 - 1])))]
    argv += draw(st.lists(st.sampled_from(["--decode=ar", "--decode=diffusion", "--no-kv-cache", "--dtype=fp8",
                                           "--json", "--json"]), max_size=3, unique=True))
    return argv, files


@st.composite
def eval_case(draw):
    files: dict = {}
    argv = [draw(st.sampled_from(["eval", "generate", "complete"])), "--model",
            draw(st.sampled_from(["shakespeare-mdlm", "shakespeare-ar", "nope", "x" * 300, "m.safetensors"])),
            *draw(card_args(files))]
    flags = {"eval": ("--drift-time", "--seeds", "--max-chars", "--samples"),
             "generate": ("--drift-time", "--steps", "--seq-len", "--block-len", "--temperature", "--top-k", "--seed"),
             "complete": ("--drift-time", "--seeds", "--n-new", "--prompts", "--prompt-len", "--steps", "--eta",
                          "--inject-pct", "--sampler", "--loss")}[argv[0]]
    for flag in flags:
        if draw(st.integers(0, 2)) == 0:
            argv += [flag, draw(cli_numbers)]
    if argv[0] == "eval" and draw(st.booleans()):  # a text file to score: any bytes, or none at all
        files["t.txt"] = draw(st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode),
                                        st.sampled_from([b"", b" \n", b"To be\x00", "\u2588".encode()])))
        argv += ["--text", draw(st.sampled_from(["t.txt", "t.txt", "missing.txt", "x" * 300, "."]))]
    if argv[0] == "eval" and draw(st.integers(0, 3)) == 0:
        argv += ["--judge", draw(st.sampled_from(["shakespeare-ar", "shakespeare-mdlm", "nope"]))]
    return argv, files


SUITE = {"name": "fuzz", "budget": {"eval_chars": 256, "gen_len": 32},
         "section": [{"name": "e", "kind": "estimate", "cards": ["pcm-ibm", "h100-sxm"],
                      "runs": [{"shape": "gpt2-small", "decode": "ar", "seq_len": 64},
                               {"shape": "mdlm-owt", "decode": "diffusion", "steps": 8, "seq_len": 64}]},
                     {"name": "a", "kind": "accuracy", "models": ["shakespeare-ar"], "cards": ["ideal"],
                      "drift_times_s": [0.0, 3600.0], "seeds": [0, 1], "steps": 8}]}
SUITE_KEYS = ["name", "description", "token_rate_per_s", "eval_seed", "headline_drift_time_s", "budget",
              "budget.eval_chars", "budget.gen_len", "budget.t_samples", "budget.junk", "section"]
SECTION_KEYS = ["name", "kind", "models", "cards", "drift_times_s", "seeds", "steps", "seq_len", "overrides",
                "runs", "quick", "junk"]


@st.composite
def bench_case(draw):
    files: dict = {}
    data = draw(mutated(SUITE, SUITE_KEYS, 2))
    if isinstance(data.get("section"), list):
        data["section"] = [draw(mutated(s, SECTION_KEYS, 2)) if isinstance(s, dict) else s
                           for s in data["section"]]
    files["suite.toml"] = draw(file_bytes(dump_toml(data), "toml"))
    suite = draw(st.sampled_from(["suite.toml", "suite.toml", "suite.toml", "nope", "x" * 300, "quick"]))
    out = draw(st.sampled_from(["out", "out", "file", "/dev/null/x", "x" * 300]))
    if out == "file":
        files["file"] = b"x"
    argv = ["bench", "--suite", suite, "--out", out, "--no-progress"]
    if draw(st.booleans()):
        argv += ["--workers", draw(cli_numbers)]
    return argv, files


SPACE_KEYS = ["name", "model", "card", "drift_time_s", "seeds", "metric", "latency", "sampler", "sampler_seed",
              "eval_seed", "judge", "budget", "params", "steps", "overrides", "junk", "budget.eval_chars",
              "params.adc.bits", "params.steps", "params.device.g_max_us"]


@st.composite
def tune_case(draw):
    import tomllib

    files: dict = {}
    base = tomllib.loads((ROOT / "analogdiff" / "bench" / "spaces" / "quick.toml").read_text())
    data = draw(mutated(base, [k for k in SPACE_KEYS if not k.startswith("params.")], 2))
    if isinstance(data.get("params"), dict) and draw(st.booleans()):
        name = draw(st.sampled_from(["adc.bits", "steps", "device.g_max_us", "tile.rows", "junk.x"]))
        data["params"][name] = draw(st.one_of(
            st.fixed_dictionaries({"int": st.lists(numbers, min_size=0, max_size=3)}),
            st.fixed_dictionaries({"float": st.lists(numbers, min_size=2, max_size=2), "log": st.booleans()}),
            st.fixed_dictionaries({"choices": st.lists(st.one_of(numbers, words), max_size=3)}),
            toml_values))
    files["space.toml"] = draw(file_bytes(dump_toml(data), "toml"))
    out = draw(st.sampled_from(["out", "out", "file", "/dev/null/x", "corrupt"]))
    if out == "file":
        files["file"] = b"x"
    if out == "corrupt":
        files["corrupt/study.db"] = b"SQLite format 3\x00" + bytes(100)
    argv = ["tune", "--trials", draw(st.one_of(cli_numbers, st.just("2"))), "--out", out, "--no-progress",
            *(["--space", "space.toml"] if draw(st.integers(0, 4)) else ["--quick"])]
    return argv, files


ROW = {"kind": "estimate", "card": "pcm-ibm", "shape": "gpt2-small", "decode": "ar", "seq_len": 64,
       "energy_per_token_j": 1e-3, "latency_per_token_s": 1e-4, "energy_per_sequence_j": 0.064,
       "breakdown_j.adc": 0.03, "breakdown_j.dac": 0.034}


@st.composite
def plot_case(draw):
    files: dict = {}
    rows = [draw(mutated(ROW, list(ROW) + ["bits_per_char", "drift_time_s", "model"], 2))
            for _ in range(draw(st.integers(0, 3)))]
    files["r/results.json"] = draw(file_bytes(json.dumps(rows), "json"))
    if draw(st.booleans()):
        files["r/suite.json"] = draw(file_bytes(json.dumps({"token_rate_per_s": draw(numbers)}), "json"))
    if draw(st.integers(0, 3)) == 0:
        files["s/study.db"] = draw(st.binary(max_size=64))
        argv = ["plot", "--study", "s"]
    else:
        argv = ["plot", "--results", draw(st.sampled_from(["r", "r/results.json", "nope", "x" * 300]))]
    if draw(st.booleans()):
        argv += ["--token-rate", draw(cli_numbers)]
    if draw(st.booleans()):
        argv += ["--out", draw(st.sampled_from(["figs", "/dev/null/x", "r/results.json"]))]
    return argv, files


TRAIN_INT = ("--steps", "--seed", "--batch-size", "--context-len", "--n-layers", "--d-model", "--n-heads",
             "--n-kv-heads", "--d-ff", "--warmup-steps", "--eval-every", "--eval-chars", "--final-eval-chars",
             "--threads")
TRAIN_NUM = ("--lr", "--min-lr", "--weight-decay", "--grad-clip", "--checkpoint-every")


@st.composite
def train_case(draw):
    files: dict = {}
    argv = ["train", "--model", draw(st.sampled_from(["mdlm", "ar", "ar", "gpt"])), "--out", "out", "--no-progress"]
    for flag in draw(st.lists(st.sampled_from(TRAIN_INT + TRAIN_NUM), max_size=4, unique=True)):
        argv += [flag, draw(st.one_of(cli_numbers, st.integers(1, 64).map(str)))]
    if draw(st.booleans()):
        argv += ["--name", draw(st.one_of(words, st.text(max_size=12)))]
    if draw(st.integers(0, 2)) == 0:
        argv += ["--init", draw(st.one_of(st.sampled_from(["shakespeare-ar", "shakespeare-mdlm", "x" * 5000]),
                                          words))]
    if draw(st.integers(0, 2)) == 0:
        argv += ["--hwa", draw(st.one_of(st.sampled_from(["pcm-ibm", "ideal", "h100-sxm", "rram-wan2022"]), words))]
    for flag in draw(st.lists(st.sampled_from(("--hwa-clip-sigma", "--hwa-t-min-s", "--hwa-t-max-s")), max_size=2,
                              unique=True)):
        argv += [flag, draw(cli_numbers)]
    if draw(st.integers(0, 5)) == 0:
        argv[argv.index("--out") + 1] = draw(st.sampled_from(["/dev/null/x", "file", "x" * 5000]))
        files["file"] = b"x"
    return argv, files


CASES = {"estimate": estimate_case, "eval": eval_case, "bench": bench_case, "tune": tune_case,
         "plot": plot_case, "train": train_case}


WEIGHTS = {"estimate": 10, "eval": 3, "train": 3, "plot": 2, "bench": 1, "tune": 1}
"""Share of each command in a mixed run (bench and tune validate by loading models: ten times slower)."""


def cases(commands=COMMANDS):
    pool = [c for c in commands for _ in range(WEIGHTS[c])]
    return st.sampled_from(pool).flatmap(lambda c: CASES[c]())


def boundary_sets() -> list[str]:
    """``key=value`` at the edges of every numeric card field's range (valid values where arithmetic is
    most likely to overflow or underflow)."""
    import dataclasses
    import typing

    from analogdiff.config import COMPONENTS

    out = []
    for section, cls in COMPONENTS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
            if hi is None or "dict" in str(hints[f.name]):
                continue
            is_int = hints[f.name] is int
            for v in (lo, hi) if not f.metadata.get("lo_open") else (hi, lo + (1 if is_int else 1e-300)):
                out.append(f"{section}.{f.name}={int(v) if is_int else float(v)!r}")
    return out


VALID_SETS = ["adc.bits=6", "wire=none", "dac.bits=4", "tile.rows=128", "adc.energy_model=walden",
              "adc.walden_fom_fj=5", "drift=off", "digital.e_mac_pj=0.5", "memory.avg_hops=2"]


# --------------------------------------------------------------------------- running and judging

def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _figures(obj, path="") -> list[str]:
    """Paths of numbers in a JSON object that are not finite or are negative."""
    bad = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            bad += _figures(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            bad += _figures(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        if not math.isfinite(obj) or obj < 0:
            bad.append(f"{path}={obj}")
    return bad


NAMED = re.compile(r"^analogdiff [\w-]+: error: (argument )?\S[^:]*: \S")
RAW = ("invalid literal", "codec can't", "has no attribute", "unsupported operand", "NoneType", "object is not",
       "Traceback", "Errno")


def run_case(argv: list[str], files: dict[str, bytes]) -> tuple[str, str]:
    """Run one example in a fresh directory; returns (outcome, detail)."""
    from analogdiff.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        before = _snapshot(root)
        out, err = io.StringIO(), io.StringIO()
        os.chdir(root)
        old_handler = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
        patches = [mock.patch.object(importlib.import_module(m), name, _stub) for m, name in STUBS]
        try:
            for p in patches:
                p.start()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        except WorkStarted:
            code = "work"
        except SystemExit as e:  # main() returns its code; an exit escaping it is a defect of its own
            return "traceback", f"SystemExit({e.code}) escaped main <- {' '.join(a[:60] for a in argv)}"
        except Hang:
            return "hang", " ".join(a[:60] for a in argv)
        except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
            return "traceback", f"{type(e).__name__}: {str(e)[:160]} <- {' '.join(a[:60] for a in argv)}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            for p in patches:
                p.stop()
            os.chdir(HOME)
        after = _snapshot(root)
        new = sorted(set(after) - set(before))
        out_dir = _out_dir(argv)
        outside = [f for f in new if out_dir is None or not (f == out_dir or f.startswith(out_dir.rstrip("/") + "/"))]
        shown = " ".join(a[:60] for a in argv)
        if outside:
            return "outside", f"{outside[:3]} <- {shown}"
        if any(f.endswith(".tmp") for f in new):
            return "halfwritten", f"{new[:3]} <- {shown}"
        lines = err.getvalue().strip().splitlines()
        if code == "work":
            return "validated", ""
        if code == 2:
            if len(lines) != 1 or not NAMED.match(lines[0]) or any(r in lines[0] for r in RAW):
                return "unnamed", f"{lines[:3]} <- {shown}"
            if new and argv[0] != "tune":  # tune may have created --out and its lock before a storage error
                return "halfwritten", f"{new[:3]} <- {shown}"
            return "refused", lines[0]
        if code == 0:
            text = out.getvalue()
            if "--json" in argv:
                bad = _figures(json.loads(text))
            else:
                bad = re.findall(r"(?i)\b(?:nan|inf(?:inity)?)\b|(?<![\w.-])-\d", text)
            if bad:
                return "nonfinite", f"{bad[:3]} <- {shown}"
            return "ok", ""
        return "traceback", f"exit code {code}: {lines[:2]} <- {shown}"


def _out_dir(argv: list[str]) -> str | None:
    for flag in ("--out",):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            return argv[argv.index(flag) + 1]
    if argv[0] == "plot":
        src = argv[argv.index("--results") + 1] if "--results" in argv else argv[argv.index("--study") + 1]
        return str(Path(src).parent / "figures") if src.endswith(".json") else f"{src}"
    return None


def _alarm(signum, frame):
    raise Hang


def warm_up() -> None:
    """Import and compile once (torch, numba kernels, optuna) so that no example pays for it; one torch thread
    (the models loaded for validation are tiny: thread start-up dominates on a shared machine)."""
    import torch

    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from analogdiff.cli import main

        main(["estimate", "--model", "gpt2-small", "--hardware", "pcm-ibm", "--json"])
        import analogdiff.lm  # noqa: F401
        import optuna  # noqa: F401


def fuzz(n: int, commands=COMMANDS, seed: int | None = None) -> tuple[Counter, dict]:
    """Run ``n`` generated examples; returns (outcome counts per command, a few details per failure kind)."""
    counts: Counter = Counter()
    details: dict[str, list[str]] = {}
    warm_up()

    @settings(max_examples=n, deadline=None, database=None, derandomize=seed is not None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(cases(commands))
    def one(case):
        argv, files = case
        outcome, detail = run_case(argv, files)
        counts[(argv[0], outcome)] += 1
        if outcome in FAILURES and len(details.setdefault(outcome, [])) < 5:
            details[outcome].append(detail)

    one()
    return counts, details


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=10_000)
    p.add_argument("--commands", default=",".join(COMMANDS))
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    counts, details = fuzz(a.examples, tuple(a.commands.split(",")))
    total = sum(counts.values())
    cmds = sorted({c for c, _ in counts})
    kinds = ["ok", "refused", "validated", *FAILURES]
    print(f"{'command':<10}" + "".join(f"{k:>12}" for k in kinds))
    for c in cmds:
        print(f"{c:<10}" + "".join(f"{counts[(c, k)]:>12}" for k in kinds))
    print(f"{'all':<10}" + "".join(f"{sum(counts[(c, k)] for c in cmds):>12}" for k in kinds))
    print(f"{total} examples in {time.perf_counter() - t0:.0f} s")
    for k, ds in details.items():
        print(f"\n{k}:")
        for d in ds:
            print(f"  {d}")
    return 1 if any(counts[(c, k)] for c in cmds for k in FAILURES) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
