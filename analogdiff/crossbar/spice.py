"""ngspice as the reference for the crossbar wire model (``wires.py``).

``write_netlist`` turns an array, its wire resistances and a batch of input vectors into one SPICE deck
(the circuit of ``circuits/spice/README.md``; one ``.op`` per input vector, the row sources changed by
``alter``, every sense-amplifier current written at full precision by ``wrdata``). ``run_ngspice`` runs
it with ``ngspice -b`` and reads the currents back. ``validate`` compares ngspice with
``wires.column_currents`` on the reference cases of ``circuits/spice/cases.json``; the tests and
``analogdiff validate-circuits`` call it.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

from analogdiff import checks
from analogdiff.checks import ConfigError
from analogdiff.crossbar.wires import (_check_conductances, _check_resistance, _check_voltages,
                                       column_currents)

__all__ = ["NgspiceNotFoundError", "write_netlist", "run_ngspice", "load_cases", "case_inputs",
           "validate", "DEFAULT_TOLERANCE"]

OUTPUT_FILE = "analogdiff_currents.txt"   # written by the deck into ngspice's working directory
DEFAULT_TOLERANCE = 1e-6                  # max relative error between our solver and ngspice


class NgspiceNotFoundError(FileNotFoundError):
    """ngspice is not installed or not on PATH."""


def _num(x: float) -> str:
    """A float as SPICE reads it, exactly (shortest round-trip repr; no SPICE unit suffixes)."""
    return repr(float(x))


def write_netlist(g_s, v_rows, r_row_ohm: float, r_col_ohm: float) -> str:
    """One SPICE deck for the array ``g_s`` (rows, cols) S and a batch ``v_rows`` (batch, rows) or (rows,) V.

    Nodes: ``s{i}`` row source, ``r{i}_{j}`` row node, ``c{i}_{j}`` column node, ``a{j}`` sense
    amplifier input held at 0 V by ``VSA{j}``; ``i(VSA{j})`` is the current from column j into its
    amplifier. A zero-resistance wire is a merged node (``r{i}_{j}`` → ``s{i}``, ``c{i}_{j}`` → ``a{j}``),
    a zero-conductance device is left out. Running the deck (``ngspice -b deck.cir``) writes one line
    per input vector to ``analogdiff_currents.txt``: the op scale, then each column's current in A.
    """
    g = _check_conductances(g_s)                                       # (rows, cols) S
    rows, cols = g.shape
    v = _check_voltages(v_rows, rows)
    if v.ndim > 2:
        raise ValueError(f"v_rows must have shape (batch, {rows}) or ({rows},), got {v.shape}")
    v = v.reshape(-1, rows)                                            # (batch, rows) V
    r_row = _check_resistance(r_row_ohm, "r_row_ohm")
    r_col = _check_resistance(r_col_ohm, "r_col_ohm")

    def row_node(i: int, j: int) -> str:
        return f"r{i}_{j}" if r_row > 0 else f"s{i}"

    def col_node(i: int, j: int) -> str:
        return f"c{i}_{j}" if r_col > 0 else f"a{j}"

    out = [f"* analogdiff crossbar rows={rows} cols={cols} batch={v.shape[0]} "
           f"r_row_ohm={_num(r_row)} r_col_ohm={_num(r_col)}",
           "* row sources VRi (values set per input vector by alter below); sense amplifiers VSAj:",
           "* 0 V sources, i(VSAj) = current from column j into its amplifier. Per cell (i,j): row wire",
           "* RW from the west (source or cell (i,j-1)), device RD = 1/g, column wire RC to the south",
           "* (cell (i+1,j) or the amplifier). Cells are listed row by row."]
    out += [f"VR{i} s{i} 0 DC 0" for i in range(rows)]
    out += [f"VSA{j} a{j} 0 DC 0" for j in range(cols)]
    for i in range(rows):
        for j in range(cols):
            if r_row > 0:
                west = f"s{i}" if j == 0 else row_node(i, j - 1)
                out.append(f"RW{i}_{j} {west} {row_node(i, j)} {_num(r_row)}")
            if g[i, j] > 0:
                out.append(f"RD{i}_{j} {row_node(i, j)} {col_node(i, j)} {_num(1.0 / g[i, j])}")
            if r_col > 0:
                south = col_node(i + 1, j) if i + 1 < rows else f"a{j}"
                out.append(f"RC{i}_{j} {col_node(i, j)} {south} {_num(r_col)}")
    probes = " ".join(f"i(VSA{j})" for j in range(cols))
    out += [".control", "set numdgt=15", "set wr_singlescale"]
    for k, vec in enumerate(v):
        out += [f"alter VR{i} dc = {_num(vec[i])}" for i in range(rows)]
        out += ["op", f"wrdata {OUTPUT_FILE} {probes}"]
        if k == 0:
            out.append("set appendwrite")
    out += ["quit 0", ".endc", ".end"]
    return "\n".join(out) + "\n"


def _ngspice_path(ngspice: str) -> str:
    path = shutil.which(ngspice)
    if path is None:
        raise NgspiceNotFoundError(
            f"ngspice not found ({ngspice!r} is not on PATH): install it, e.g. `apt-get install ngspice` "
            "or `brew install ngspice`, to run the circuit validation")
    return path


def run_ngspice(netlist: str, *, ngspice: str = "ngspice", timeout_s: float = 600.0) -> np.ndarray:
    """Run a deck from ``write_netlist`` through ``ngspice -b``; returns (batch, cols) column currents, A.

    Raises ``NgspiceNotFoundError`` when ngspice is missing and ``RuntimeError`` (with ngspice's last
    output lines) when it fails or writes something unexpected.
    """
    exe = _ngspice_path(ngspice)
    header = netlist.split("\n", 1)[0].split()
    try:
        fields = dict(f.split("=", 1) for f in header if "=" in f)
        cols, batch = int(fields["cols"]), int(fields["batch"])
    except (KeyError, ValueError):
        raise ValueError("netlist must come from write_netlist (its first line names rows, cols, batch)")
    with tempfile.TemporaryDirectory(prefix="analogdiff-spice-") as tmp:
        deck = Path(tmp) / "crossbar.cir"
        deck.write_text(netlist)
        try:
            proc = subprocess.run([exe, "-b", deck.name], cwd=tmp, capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ngspice did not finish within {timeout_s:g} s") from None
        result = Path(tmp) / OUTPUT_FILE
        log = (proc.stdout + proc.stderr).strip().splitlines()
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"ngspice failed (exit {proc.returncode}): " + " | ".join(log[-5:]))
        text = result.read_text()
    try:
        table = np.array([[float(t) for t in line.split()] for line in text.splitlines() if line.strip()])
    except ValueError:
        raise RuntimeError(f"ngspice wrote an unreadable {OUTPUT_FILE}: {text[:200]!r}") from None
    if table.shape != (batch, 1 + cols):
        raise RuntimeError(f"ngspice wrote a {table.shape} table, expected ({batch}, {1 + cols}): "
                           + " | ".join(log[-5:]))
    return table[:, 1:]                                                # (batch, cols) A: drop the scale


# --------------------------------------------------------------------------- reference cases

_CASE_KEYS = {"name": str, "rows": int, "cols": int, "r_row_ohm": float, "r_col_ohm": float,
              "batch": int, "seed": int, "g_min_s": float, "g_max_s": float, "v_max_v": float,
              "g_off_fraction": float}
_CASE_BOUNDS = {"rows": (1, 4096), "cols": (1, 4096), "batch": (1, 4096), "seed": (0, checks.MAX_SEED),
                "r_row_ohm": (0.0, 1e6), "r_col_ohm": (0.0, 1e6), "g_min_s": (0.0, 1.0), "g_max_s": (0.0, 1.0),
                "v_max_v": (0.0, 100.0), "g_off_fraction": (0.0, 1.0)}
"""Allowed range of each case field (arrays up to 4096 × 4096: ngspice takes minutes beyond 512 × 512)."""
_OPTIONAL = {"g_off_fraction": 0.0}


def load_cases(path: str | Path | None = None) -> dict:
    """The reference cases: ``{"tolerance": float, "cases": [case, ...]}`` from ``path`` or the shipped
    ``circuits/spice/cases.json``. Each case names its array (rows, cols, g_min_s, g_max_s, seed,
    g_off_fraction), wires (r_row_ohm, r_col_ohm) and inputs (batch vectors uniform in [0, v_max_v])."""
    if path is None:
        text = (resources.files("analogdiff.circuits") / "spice" / "cases.json").read_text()
        where = "cases.json"
    else:
        text, where = checks.read_text("cases file", path), str(path)
    data = checks.parse_json(where, text)
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not data["cases"]:
        raise ConfigError(f"{where}: expected an object with a non-empty list 'cases'")
    unknown = set(data) - {"description", "tolerance", "cases"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {sorted(unknown)}")
    tol = data.get("tolerance", DEFAULT_TOLERANCE)
    tol = checks.number(f"{where}: tolerance", tol, 0.0, 1.0, lo_open=True)
    return {"tolerance": tol, "cases": [_check_case(c, where) for c in data["cases"]]}


def _check_case(case, where: str) -> dict:
    if not isinstance(case, dict):
        raise ConfigError(f"{where}: each case must be an object, got {case!r}")
    name = checks.short(case.get("name", "?"))
    unknown = set(case) - set(_CASE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: case {name}: unknown key(s) {checks.short(sorted(map(str, unknown)))}")
    out = dict(_OPTIONAL)
    for key, tp in _CASE_KEYS.items():
        if key not in case and key not in _OPTIONAL:
            raise ConfigError(f"{where}: case {name}: missing {key!r}")
        value = case.get(key, out.get(key))
        field = f"{where}: case {name}: {key}"
        if tp is str:
            out[key] = checks.text(field, value)
        elif tp is int:
            out[key] = checks.integer(field, value, *_CASE_BOUNDS[key])
        else:
            out[key] = checks.number(field, value, *_CASE_BOUNDS[key])
    if not out["g_min_s"] <= out["g_max_s"]:
        raise ConfigError(f"{where}: case {name}: need 0 <= g_min_s <= g_max_s")
    for key in ("r_row_ohm", "r_col_ohm"):
        _check_resistance(out[key], key)
    return out


def case_inputs(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """The case's array (rows, cols) S and inputs (batch, rows) V, drawn from its seed."""
    rng = np.random.default_rng(case["seed"])
    rows, cols = case["rows"], case["cols"]
    g_s = rng.uniform(case["g_min_s"], case["g_max_s"], (rows, cols))        # (rows, cols) S
    g_s[rng.random((rows, cols)) < case.get("g_off_fraction", 0.0)] = 0.0    # stuck-off devices
    v_rows = rng.uniform(0.0, case["v_max_v"], (case["batch"], rows))        # (batch, rows) V
    return g_s, v_rows


def _children_cpu_s() -> float:
    """CPU seconds used so far by finished child processes (0 where the platform cannot tell)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0.0
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / |ref| over all currents (0/0 counts as 0)."""
    diff = np.abs(ours - ref)
    scale = np.abs(ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(diff == 0, 0.0, diff / scale)
    return float(np.max(err))


def validate(cases: list[dict], *, tolerance: float = DEFAULT_TOLERANCE,
             ngspice: str = "ngspice") -> list[dict]:
    """Run each case through ngspice and through ``column_currents``; one result row per case.

    Row keys: name, rows, cols, r_row_ohm, r_col_ohm, batch, max_rel_error (ours vs ngspice, see
    ``relative_error``), max_ir_drop (largest fraction of a current lost to the wires, showing the case
    is not trivial), ngspice_s (wall time to run the deck and read it back), ours_s (wall time of
    ``column_currents``, effective matrix included), ngspice_cpu_s and ours_cpu_s (the same as CPU time:
    fairer on a busy machine), passed (max_rel_error <= tolerance).
    """
    _ngspice_path(ngspice)
    rows_out = []
    for case in cases:
        case = _check_case(case, "cases")
        g_s, v_rows = case_inputs(case)
        netlist = write_netlist(g_s, v_rows, case["r_row_ohm"], case["r_col_ohm"])
        c0, t0 = _children_cpu_s(), time.perf_counter()
        ref = run_ngspice(netlist, ngspice=ngspice)                    # (batch, cols) A
        c1, t1 = _children_cpu_s(), time.perf_counter()
        p1 = time.process_time()
        ours = column_currents(g_s, v_rows, case["r_row_ohm"], case["r_col_ohm"])
        p2, t2 = time.process_time(), time.perf_counter()
        ideal = v_rows @ g_s
        with np.errstate(divide="ignore", invalid="ignore"):
            drop = np.where(ideal > 0, 1.0 - ref / ideal, 0.0)
        err = relative_error(ours, ref)
        rows_out.append({
            "name": case["name"], "rows": case["rows"], "cols": case["cols"],
            "r_row_ohm": case["r_row_ohm"], "r_col_ohm": case["r_col_ohm"], "batch": case["batch"],
            "max_rel_error": err, "max_ir_drop": float(np.max(drop)),
            "ngspice_s": t1 - t0, "ours_s": t2 - t1,
            "ngspice_cpu_s": c1 - c0,
            "ours_cpu_s": p2 - p1, "passed": bool(err <= tolerance)})
    return rows_out
