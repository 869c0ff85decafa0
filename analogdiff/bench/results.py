"""The results store of a bench run: append-only, written as it goes, trusted only where complete.

Layout of an output directory ``DIR``::

    DIR/rows.jsonl      one JSON object per finished run, appended and fsync'd as each run ends
    DIR/results.json    every finished row of the current suite, in suite order   (rewritten atomically)
    DIR/results.csv     the same rows as a table (union of columns, stable order)  (rewritten atomically)

A row is trusted only if its line in ``rows.jsonl`` is complete (ends in a newline, parses as JSON and
carries the ``run_id`` and ``row_sha`` that hash its content). A crash while appending leaves at most one
partial last line, which the next run cuts off before appending. ``results.json``/``results.csv`` are
written to a temporary file and moved into place with ``os.replace``, so a reader sees the old or the new
file, never half of one. Rows hold only deterministic values (no wall times, no dates): the same suite with
the same seeds gives byte-identical ``results.json`` and ``results.csv`` whatever order the runs finished in.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from analogdiff import checks
from analogdiff.checks import ConfigError

# Columns that lead the CSV (in this order) when present; every other column follows, sorted.
LEADING_COLUMNS = (
    "run_id", "section", "kind", "model", "card", "overrides", "decode", "steps", "seq_len",
    "drift_time_s", "seed", "eval_seed",
)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same object always gives the same string."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def spec_id(spec: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit id of a run spec (a JSON-able mapping)."""
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()[:16]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.tmp`` + fsync + ``os.replace`` (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings → dotted keys (``{"a": {"b": 1}}`` → ``{"a.b": 1}``); lists become JSON strings."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = canonical_json(list(v))
        else:
            out[key] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    """NumPy/torch scalars → Python numbers (so rows pickle and serialize the same everywhere)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if hasattr(v, "item"):
        try:
            return v.item()
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(v)


def _row_sha(row: Mapping[str, Any]) -> str:
    body = {k: v for k, v in row.items() if k != "row_sha"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


class ResultStore:
    """Finished rows of one output directory, keyed by ``run_id``.

    ``store = ResultStore(dir)`` reads every complete row already there; ``store.add(row)`` appends one
    (durably) as soon as its run ends; ``store.write_tables(order)`` rewrites results.json/csv for the runs
    of ``order`` that are finished, in that order.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.dir / "rows.jsonl"
        self.rows: dict[str, dict] = {}
        self._good_bytes = 0  # length of the trusted prefix of rows.jsonl
        self._load()

    def _load(self) -> None:
        self.rows, self._good_bytes = read_rows_jsonl(self.rows_path)

    def __contains__(self, run_id: str) -> bool:
        return run_id in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: Mapping[str, Any]) -> dict:
        """Append one finished row (must carry ``run_id``) to rows.jsonl and fsync; returns the stored row."""
        row = {k: _plain(v) for k, v in row.items() if k != "row_sha"}
        if "run_id" not in row:
            raise ConfigError("row: missing run_id")
        row["row_sha"] = _row_sha(row)
        line = (canonical_json(row) + "\n").encode()
        with open(self.rows_path, "ab") as f:
            if f.tell() != self._good_bytes:  # drop an untrusted tail left by a crash
                f.truncate(self._good_bytes)
                f.seek(self._good_bytes)
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
            self._good_bytes = f.tell()
        self.rows[row["run_id"]] = row
        return row

    def finished(self, order: Iterable[str]) -> list[dict]:
        """The finished rows among ``order`` (run ids), in that order, without the store's bookkeeping."""
        return [{k: v for k, v in self.rows[r].items() if k != "row_sha"} for r in order if r in self.rows]

    def write_tables(self, order: Iterable[str]) -> list[dict]:
        """Rewrite results.json and results.csv (atomically) from the finished rows of ``order``."""
        rows = self.finished(order)
        atomic_write_text(self.dir / "results.json", json.dumps(rows, indent=1, sort_keys=True) + "\n")
        atomic_write_text(self.dir / "results.csv", rows_to_csv(rows))
        return rows


def rows_to_csv(rows: list[Mapping[str, Any]]) -> str:
    """A CSV of ``rows``: the union of their keys, LEADING_COLUMNS first then sorted; missing cells empty."""
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    cols = [c for c in LEADING_COLUMNS if c in keys] + sorted(keys - set(LEADING_COLUMNS))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else _cell(r.get(c)) for c in cols])
    return buf.getvalue()


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


def read_rows_jsonl(path: str | os.PathLike) -> tuple[dict[str, dict], int]:
    """The trusted rows of a rows.jsonl file (by run_id) and the byte length of its trusted prefix."""
    path = Path(path)
    rows: dict[str, dict] = {}
    if not path.exists():
        return rows, 0
    data = path.read_bytes()
    pos = good = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:  # a partial last line: a crash while appending; not trusted, cut off later
            break
        try:
            row = json.loads(data[pos:end])
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            break  # a corrupt line: trust nothing from here on
        if not isinstance(row, dict) or "run_id" not in row or row.get("row_sha") != _row_sha(row):
            break
        rows[row["run_id"]] = row
        pos = good = end + 1
    return rows, good


ROW_TEXT = ("kind", "card", "model", "model_kind", "section", "shape", "decode", "judge", "run_id", "unit_id")
"""Row columns that are text when present."""
ROW_FIGURES = ("energy_per_token_j", "latency_per_token_s", "energy_per_sequence_j", "latency_per_sequence_s",
               "tokens_per_s", "bits_per_char", "token_accuracy", "drift_time_s", "steps", "seq_len", "seed",
               "tiles")
"""Row columns that are non-negative numbers (or null) when present; ``breakdown_j.*`` too."""


def check_row(where: str, row: Any) -> dict:
    """A result row read back from a file: a flat object whose known columns have their types and whose
    figures are finite and non-negative. One line naming the row and column otherwise."""
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: expected a row object, got {checks.short(row)}")
    for k, v in row.items():
        if not isinstance(v, (str, int, float, bool, type(None))):
            raise ConfigError(f"{where}.{checks.short(k)}: expected a number, text or null, got {checks.short(v)}")
        if k in ROW_TEXT and not isinstance(v, str):
            raise ConfigError(f"{where}.{k}: expected text, got {checks.short(v)}")
        if (k in ROW_FIGURES or k.startswith("breakdown_j.")) and v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0)):
            raise ConfigError(f"{where}.{k}: expected a finite number >= 0 or null, got {checks.short(v)}")
    return row


def load_results(path: str | os.PathLike) -> list[dict]:
    """Rows from a results directory (its results.json, else rows.jsonl) or a results .json/.jsonl file."""
    path = Path(checks.text("--results", str(path), checks.MAX_PATH_CHARS))
    if path.is_dir():
        if (path / "results.json").is_file():
            path = path / "results.json"
        elif (path / "rows.jsonl").is_file():
            path = path / "rows.jsonl"
        else:
            raise ConfigError(f"--results: {path} holds neither results.json nor rows.jsonl")
    if not path.is_file():
        raise ConfigError(f"--results: {path} does not exist")
    if path.suffix == ".jsonl":
        rows, _ = read_rows_jsonl(path)
        rows = [{k: v for k, v in r.items() if k != "row_sha"} for r in rows.values()]
    else:
        rows = checks.parse_json(f"--results: {path}", checks.read_text("results", path))
        if not isinstance(rows, list):
            raise ConfigError(f"--results: {path} must hold a JSON list of row objects")
    return [check_row(f"--results: {path}: row {i}", r) for i, r in enumerate(rows)]


def aggregate(rows: list[Mapping[str, Any]], by: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Group ``rows`` by the columns ``by`` (groups in order of first appearance) and give, per metric, the
    summary of :func:`analogdiff.stats.summary` over the rows that have it: ``{"<metric>.mean",
    "<metric>.std"`` (sample std, ddof = 1; 0 for a single row), ``"<metric>.n", "<metric>.ci95"`` ([lo, hi],
    95% t-interval of the mean)}."""
    from analogdiff.stats import summary

    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out = []
    for key, members in groups.items():
        g = dict(zip(by, key))
        g["n"] = len(members)
        for m in metrics:
            vals = [float(r[m]) for r in members if isinstance(r.get(m), (int, float)) and not isinstance(r.get(m), bool)]
            if not vals:
                continue
            s = summary(vals)
            g[f"{m}.mean"], g[f"{m}.std"], g[f"{m}.n"], g[f"{m}.ci95"] = s["mean"], s["std"], s["n"], s["ci95"]
        out.append(g)
    return out


IR_SECTION_PREFIX = "ir-"
"""Accuracy sections named ``ir-…`` compare IR-drop compensation on and off (``tile.ir_compensation``): their rows
are a card variant, reported in their own table and kept out of the per-card analyses and figures."""


def split_ir_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[list, list]:
    """(rows of the per-card analyses, rows of the ``ir-…`` sections)."""
    ir = [r for r in rows if str(r.get("section", "")).startswith(IR_SECTION_PREFIX)]
    return [r for r in rows if not str(r.get("section", "")).startswith(IR_SECTION_PREFIX)], ir
