"""One rule per kind of input, shared by the CLI, suites, search spaces and the Python API.

Each checker takes the field's name (as the user wrote it: ``--drift-time``, ``section 'drift'.seeds[1]``,
``drift_time_s``) and the raw value, and returns the clean value or raises :class:`ConfigError` with one line
naming the field and what is allowed. Integers are checked as integers before any conversion to float, so no
input can overflow; every number has a finite upper bound that makes physical or practical sense.

    t = checks.drift_time_s("--drift-time", 3600)        # 3600.0
    s = checks.seeds("seeds", [0, 1, 2])                  # [0, 1, 2]
    b = checks.budget("budget", {"eval_chars": 2048})     # every key filled in from BUDGET_DEFAULTS
    checks.is_none("off")                                 # True: "none", "off", "null" switch a component off
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping



class ConfigError(ValueError):
    """Input that cannot be used (a card, shape, suite, space, file or command-line value); the message is
    one line naming the file or field and what is allowed. The CLI turns it into exit code 2."""


MAX_DRIFT_TIME_S = 1e9
"""About 32 years: beyond any retention specification of the devices we model (PCM and RRAM are specified
for ~10 years at temperature)."""
MAX_SEED = 2 ** 63 - 1
"""Seeds feed 64-bit generators (``torch.Generator.manual_seed``, splitmix64 in ``derive_seed``)."""
MAX_SEEDS = 1000
"""Programming seeds in one experiment: each one programs every tile of the model."""

NONE_WORDS = ("none", "off", "null")
"""Strings that mean "this component is off" in TOML (which has no null) and on the command line."""

BUDGET_DEFAULTS = {"eval_chars": 4096, "t_samples": 1, "batch_size": 16, "gen_samples": 4, "gen_len": 256}
"""An evaluation budget: test characters scored per accuracy run, NELBO time samples per window (MDLM),
windows per forward batch, generated passages per setting and their length in characters."""
BUDGET_BOUNDS = {"eval_chars": (1, 10_000_000), "t_samples": (1, 1024), "batch_size": (1, 4096),
                 "gen_samples": (1, 100_000), "gen_len": (1, 1_000_000)}
QUICK_BUDGET = {"eval_chars": 1024, "t_samples": 1, "batch_size": 16, "gen_samples": 1, "gen_len": 64}
"""The budget of smoke runs (``--quick``)."""

MAX_SEQ_LEN = 2 ** 20
"""Positions of one sequence (and a model's context): 1,048,576, beyond the longest published contexts we
price, so that no schedule array or KV cache can outgrow memory."""
MAX_STEPS = 2 ** 20
"""Denoising steps of one sequence."""
MAX_BATCH = 2 ** 16
"""Sequences decoded together."""
MAX_TOKEN_RATE_PER_S = 1e12
"""Tokens per second at which a power is stated (a rate, not a count: any realistic service is far below)."""
MAX_NAME_CHARS = 255
"""A name that becomes a file name (the POSIX limit of one path component)."""
MAX_PATH_CHARS = 4096
"""A path given on the command line or in a file (PATH_MAX on Linux)."""
MAX_FILE_BYTES = 64 * 2 ** 20
"""A card, shape, suite, space or cases file: text files of a few kB; anything larger is a mistake."""

SHAPE_BOUNDS: dict[str, tuple[int, int]] = {
    "n_layers": (1, 4096), "d_model": (1, 2 ** 17), "n_heads": (1, 4096), "n_kv_heads": (1, 4096),
    "d_ff": (1, 2 ** 20), "vocab_size": (1, 2 ** 24), "context_len": (1, MAX_SEQ_LEN),
    "cond_dim": (0, 2 ** 17),
}
"""Allowed range of each integer shape field: a few times the largest published models (Llama-3-405B has
126 layers, d_model 16,384, d_ff 53,248; vocabularies reach 256k), so that no product of them can overflow."""


def fail(field: str, message: str):
    raise ConfigError(f"{field}: {message}")


def integer(field: str, value: Any, lo: int, hi: int) -> int:
    """An integer in [lo, hi]; bools and floats are refused (``3.0`` is not an integer count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(field, f"expected an integer in [{lo}, {hi}], got {short(value)}")
    value = int(value)
    if not lo <= value <= hi:
        fail(field, f"{_shown(value)} is outside the allowed range [{lo}, {hi}]")
    return value


def number(field: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    """A finite real number in [lo, hi] (or (lo, hi] with ``lo_open``); integers are range-checked exactly
    before they become floats."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(field, f"expected a number in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {short(value)}")
    if isinstance(value, numbers.Integral):
        ok = (value > lo if lo_open else value >= lo) and value <= hi
    else:
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        fail(field, f"{_shown(value)} is outside the allowed range {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return float(value)


def text(field: str, value: Any, max_chars: int = MAX_NAME_CHARS, empty: bool = False) -> str:
    """A string of at most ``max_chars`` characters (non-empty unless ``empty``)."""
    if not isinstance(value, str) or (not value and not empty):
        fail(field, f"expected a {'' if empty else 'non-empty '}string, got {short(value)}")
    if len(value) > max_chars:
        fail(field, f"{len(value)} characters; at most {max_chars} are allowed")
    return value


def file_name(field: str, value: Any) -> str:
    """A name that becomes one file name inside an output directory: no path separators, not '.' or '..',
    no control characters, at most :data:`MAX_NAME_CHARS` characters."""
    value = text(field, value)
    if "/" in value or "\\" in value or value in (".", "..") or any(ord(c) < 32 for c in value):
        fail(field, f"{value!r} must be a plain file name (no '/', '\\', '.', '..' or control characters)")
    return value


def short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def shown_path(path: Any) -> str:
    """A path for a message: whole up to 200 characters, else its start and its end."""
    text = str(path)
    return text if len(text) <= 200 else f"{text[:120]}...{text[-60:]}"


def _shown(value: numbers.Real) -> str:
    """A number as the user wrote it, without printing hundreds of digits."""
    if isinstance(value, numbers.Integral):
        return str(int(value)) if abs(value) < 10 ** 30 else "a number of more than 30 digits"
    return f"{float(value):g}"


def drift_time_s(field: str, value: Any) -> float:
    """Seconds since programming: 0 (just programmed) to :data:`MAX_DRIFT_TIME_S`."""
    return number(field, value, 0.0, MAX_DRIFT_TIME_S)


def seed(field: str, value: Any) -> int:
    return integer(field, value, 0, MAX_SEED)


def seeds(field: str, value: Any) -> list[int]:
    """A non-empty list of distinct seeds, at most :data:`MAX_SEEDS` of them."""
    if not isinstance(value, (list, tuple, range)) or not len(value):
        fail(field, f"expected a non-empty list of integers in [0, {MAX_SEED}], got {short(value)}")
    if len(value) > MAX_SEEDS:
        fail(field, f"{len(value)} seeds; at most {MAX_SEEDS} are allowed")
    out = [seed(f"{field}[{i}]", s) for i, s in enumerate(value)]
    if len(set(out)) != len(out):
        fail(field, f"holds duplicates: {out!r}")
    return out


def seed_count(field: str, value: Any) -> list[int]:
    """``--seeds K`` on the command line: the seeds 0..K-1."""
    return list(range(integer(field, value, 1, MAX_SEEDS)))


def is_none(value: Any) -> bool:
    """True for None and for the strings in :data:`NONE_WORDS` (any case): "this component is off"."""
    return value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS)


def card_value(value: Any) -> Any:
    """A card override value as written in TOML or on the command line: a none-word becomes None."""
    return None if is_none(value) else value


def overrides(field: str, value: Any) -> dict[str, Any]:
    """A table of dotted card keys → values (none-words switch a component off). The values themselves are
    checked by the card they are applied to."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        fail(field, 'expected a table of dotted card keys, e.g. { "adc.bits" = 6, "wire" = "none" }')
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k or len(k) > 100:
            fail(field, f"keys are dotted card keys such as 'adc.bits', got {k!r}")
        out[k] = card_value(v)
    return out


def budget(field: str, value: Any, quick: bool = False) -> dict[str, int]:
    """A budget table: every key of :data:`BUDGET_DEFAULTS`, each an integer within :data:`BUDGET_BOUNDS`;
    keys not given take :data:`BUDGET_DEFAULTS` (``quick``: :data:`QUICK_BUDGET`, whose values then win
    over the table's: a smoke run stays small)."""
    defaults = QUICK_BUDGET if quick else BUDGET_DEFAULTS
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        fail(field, f"expected a table with keys {', '.join(BUDGET_DEFAULTS)}")
    out = dict(defaults)
    for k, v in value.items():
        if k not in BUDGET_BOUNDS:
            fail(f"{field}.{k}", f"unknown key (allowed: {', '.join(BUDGET_DEFAULTS)})")
        out[k] = integer(f"{field}.{k}", v, *BUDGET_BOUNDS[k])
    return dict(QUICK_BUDGET) if quick else out


# --------------------------------------------------------------------------- files

def read_text(what: str, path: Any) -> str:
    """The UTF-8 text of the file ``path`` (``what`` says what it is: "hardware card", "suite", ...);
    every way a file can be unreadable (missing, a directory, no permission, name too long, binary,
    larger than :data:`MAX_FILE_BYTES`) is one line naming the file."""
    import os

    shown = shown_path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{what} {shown}: cannot read ({e.strerror or type(e).__name__})") from None
    except ValueError as e:  # an embedded NUL character in the path
        raise ConfigError(f"{what} {shown}: not a usable path ({e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what} {shown}: larger than {MAX_FILE_BYTES >> 20} MiB; expected a small text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {shown}: not UTF-8 text (byte {e.start} cannot be decoded); "
                          f"expected a {os.path.splitext(shown)[1] or 'text'} file") from None


def text_file(what: str, path: Any) -> str:
    """The text of a file given to score (``what`` names it): :func:`read_text`'s rules (missing, unreadable,
    not UTF-8, larger than :data:`MAX_FILE_BYTES`), and neither binary (a NUL character) nor empty
    (whitespace only). Each refusal is one line naming the file."""
    text_ = read_text(what, path)
    shown = shown_path(path)
    if "\0" in text_:
        raise ConfigError(f"{what} {shown}: a binary file (NUL character at offset {text_.index(chr(0))}); "
                          f"expected UTF-8 text")
    if not text_.strip():
        raise ConfigError(f"{what} {shown}: empty; expected UTF-8 text to score")
    return text_


def is_file(path: Any) -> bool:
    """``Path(path).is_file()``, False for a path the file system refuses (too long, a NUL character)."""
    return _path_test(path, "is_file")


def is_dir(path: Any) -> bool:
    """``Path(path).is_dir()``, False for a path the file system refuses."""
    return _path_test(path, "is_dir")


def exists(path: Any) -> bool:
    """``Path(path).exists()``, False for a path the file system refuses."""
    return _path_test(path, "exists")


def _path_test(path: Any, test: str) -> bool:
    from pathlib import Path

    try:
        return getattr(Path(path), test)()
    except (OSError, ValueError):
        return False


def parse_toml(where: str, text_: str) -> dict:
    """TOML text → dict; malformed or absurdly nested text is one line naming ``where``."""
    import tomllib

    return _parse(where, text_, "TOML", tomllib.loads, tomllib.TOMLDecodeError)


def parse_json(where: str, text_: str) -> Any:
    """JSON text → object; malformed or absurdly nested text is one line naming ``where``."""
    import json

    return _parse(where, text_, "JSON", json.loads, json.JSONDecodeError)


def _parse(where: str, text_: str, kind: str, loads, error: type) -> Any:
    try:
        return loads(text_)
    except error as e:
        raise ConfigError(f"{where}: malformed {kind} ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be a {kind} file of this project") from None


# --------------------------------------------------------------------------- results

def finite_figures(what: str, figures: Mapping[str, Any], inputs: str, signed: tuple = ()) -> None:
    """Every number in ``figures`` (nested dicts included) is finite and, except the keys in ``signed``,
    non-negative; otherwise the arithmetic overflowed: one line naming the figure and the ``inputs``."""
    for key, v in figures.items():
        if isinstance(v, Mapping):
            finite_figures(f"{what}.{key}", v, inputs, signed)
        elif isinstance(v, numbers.Real) and not isinstance(v, bool):
            if not math.isfinite(v) or (v < 0 and key not in signed):
                fail(inputs, f"{what}.{key} comes out as {float(v):g}: the inputs are outside what the cost "
                             f"model can represent (overflow or underflow); use physically sized values")


# --------------------------------------------------------------------------- command-line types

def arg(rule, *bounds):
    """An argparse ``type`` applying a rule of this module (``drift_time_s``, ``seed``, ...) to the text, read as
    an integer when it is written as one and as a float otherwise: the command line checks a value exactly as
    a suite, a search space or the Python API does."""
    import argparse

    def parse(s: str):
        t = s.strip()
        try:
            v = (int(t, 10) if t.lstrip("+-").isdigit() else float(t)) if len(t) <= 40 else s
        except ValueError:
            v = s
        try:
            return rule("value", v, *bounds)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[1]) from None
    return parse


def arg_int(lo: int, hi: int):
    """An argparse ``type``: an integer in [lo, hi], parsed exactly (no float detour)."""
    import argparse

    def parse(s: str) -> int:
        try:
            v = int(s.strip(), 10) if len(s) <= 40 else None
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {short(s)}")
        return v
    return parse


def arg_number(lo: float, hi: float, lo_open: bool = False):
    """An argparse ``type``: a finite number in [lo, hi] (or (lo, hi])."""
    import argparse

    def parse(s: str) -> float:
        try:
            v = float(s) if len(s) <= 40 else math.nan
        except ValueError:
            v = math.nan
        if not (math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi):
            raise argparse.ArgumentTypeError(
                f"expected a number in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {short(s)}")
        return v
    return parse


def arg_text(max_chars: int):
    """An argparse ``type``: text of at most ``max_chars`` characters."""
    import argparse

    def parse(s: str) -> str:
        if len(s) > max_chars:
            raise argparse.ArgumentTypeError(f"{len(s)} characters; at most {max_chars} are allowed")
        return s
    return parse


def arg_path(s: str) -> str:
    """An argparse ``type``: a path of at most :data:`MAX_PATH_CHARS` characters without NUL."""
    import argparse

    if len(s) > MAX_PATH_CHARS or "\0" in s:
        raise argparse.ArgumentTypeError(f"expected a path of at most {MAX_PATH_CHARS} characters")
    return s
