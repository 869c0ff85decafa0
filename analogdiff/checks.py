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

from analogdiff.config import ConfigError

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


def fail(field: str, message: str):
    raise ConfigError(f"{field}: {message}")


def integer(field: str, value: Any, lo: int, hi: int) -> int:
    """An integer in [lo, hi]; bools and floats are refused (``3.0`` is not an integer count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(field, f"expected an integer in [{lo}, {hi}], got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        fail(field, f"{value} is outside the allowed range [{lo}, {hi}]")
    return value


def number(field: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    """A finite real number in [lo, hi] (or (lo, hi] with ``lo_open``); integers are range-checked exactly
    before they become floats."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(field, f"expected a number in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {value!r}")
    if isinstance(value, numbers.Integral):
        ok = (value > lo if lo_open else value >= lo) and value <= hi
    else:
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        shown = value if isinstance(value, numbers.Integral) and abs(value) < 10 ** 30 else f"{float(value):g}" \
            if not isinstance(value, numbers.Integral) else "a number of more than 30 digits"
        fail(field, f"{shown} is outside the allowed range {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return float(value)


def drift_time_s(field: str, value: Any) -> float:
    """Seconds since programming: 0 (just programmed) to :data:`MAX_DRIFT_TIME_S`."""
    return number(field, value, 0.0, MAX_DRIFT_TIME_S)


def seed(field: str, value: Any) -> int:
    return integer(field, value, 0, MAX_SEED)


def seeds(field: str, value: Any) -> list[int]:
    """A non-empty list of distinct seeds, at most :data:`MAX_SEEDS` of them."""
    if not isinstance(value, (list, tuple, range)) or not len(value):
        fail(field, f"expected a non-empty list of integers in [0, {MAX_SEED}], got {value!r}")
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


def budget(field: str, value: Any, defaults: Mapping[str, int] = BUDGET_DEFAULTS) -> dict[str, int]:
    """A budget table: every key of :data:`BUDGET_DEFAULTS`, each an integer within :data:`BUDGET_BOUNDS`;
    keys not given take ``defaults``."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        fail(field, f"expected a table with keys {', '.join(BUDGET_DEFAULTS)}")
    out = dict(defaults)
    for k, v in value.items():
        if k not in BUDGET_BOUNDS:
            fail(f"{field}.{k}", f"unknown key (allowed: {', '.join(BUDGET_DEFAULTS)})")
        out[k] = integer(f"{field}.{k}", v, *BUDGET_BOUNDS[k])
    return out
