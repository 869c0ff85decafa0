"""``estimate`` (one design point → CostReport) and ``estimate_many`` (N analog design points → arrays)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from analogdiff import checks
from analogdiff.config import ConfigError, Hardware, load_hardware
from analogdiff.energy import analog, gpu, system
from analogdiff.energy.decode import Autoregressive, Diffusion, Work, schedule_work, work_from_trace
from analogdiff.energy.report import CostReport
from analogdiff.shapes import ModelShape, load_shape
from analogdiff.trace import Trace


def _prepare(shape, decode, batch) -> tuple[ModelShape, Work]:
    shape = load_shape(shape)
    if not isinstance(decode, (Diffusion, Autoregressive)):
        raise ConfigError(f"decode: expected Diffusion(...), Autoregressive(...) or a Trace, got {decode!r}")
    checks.integer("batch", batch, 1, checks.MAX_BATCH)
    if decode.context_needed > shape.context_len:  # before the schedule is built: it grows with seq_len
        raise ConfigError(f"seq_len: {decode.seq_len} needs {decode.context_needed} positions but {shape.name} "
                          f"has context_len {shape.context_len} (allowed seq_len: 1..{shape.context_len})")
    return shape, schedule_work(decode)


def _checked(report: CostReport) -> CostReport:
    """The report, once every figure in it is finite and non-negative (else one line naming the inputs)."""
    d = report.decode
    inputs = f"{report.model} on {report.hardware} (" + ", ".join(
        f"{k} {d[k]}" for k in ("decode", "seq_len", "steps", "block_len") if d.get(k) is not None) \
        + f", batch {report.batch})"
    checks.finite_figures("estimate", report.to_dict(), inputs)
    return report


def _prepare_trace(shape, trace: Trace, batch) -> tuple[ModelShape, list[tuple[int, Work]]]:
    shape = load_shape(shape)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch != 1:
        raise ConfigError(f"batch: {batch!r} with a Trace; a trace records its own batch (sequences per "
                          "call), leave batch at 1")
    parts = work_from_trace(trace)
    longest = max(w.context_needed for _, w in parts)
    if longest > shape.context_len:
        raise ConfigError(f"decode: the trace reads {longest} keys per layer but {shape.name} has context_len "
                          f"{shape.context_len}; price a trace with the shape of the model that ran it")
    return shape, parts


def _combine(parts: list[tuple[int, dict]], tokens: int) -> dict[str, Any]:
    """Sum the per-batch-width costs of a run into the run's, per sequence of the widest batch ``b``.

    ``parts``: [(sequences per call, evaluate_points result)] — one part for a schedule, one per batch
    width for a trace; energies and counts there are per sequence of that width, times the wall time of
    those calls. Per sequence here = the run's total / b, per token = the run's total / ``tokens`` (all
    sequences' tokens), so a trace of one batch of b sequences reads like its schedule priced at
    ``batch = b``, to the last bit."""
    b = max(w for w, _ in parts)
    scaled = [(w / b, r) for w, r in parts]
    e_seq = sum(f * r["energy_per_sequence_j"] for f, r in scaled)
    t_run = sum(r["latency_per_sequence_s"] for _, r in scaled)
    per_seq_tokens = tokens / b
    first = parts[0][1]
    return {
        "energy_per_sequence_j": e_seq, "energy_per_token_j": e_seq / per_seq_tokens,
        "latency_per_sequence_s": t_run, "latency_per_token_s": t_run / per_seq_tokens,
        "tokens_per_s": tokens / t_run, "tiles": first["tiles"], "fits": first["fits"],
        "tile_utilization": first["tile_utilization"],
        **{k: first[k] for k in _SCALE},
        "breakdown_j": {k: sum(f * r["breakdown_j"][k] for f, r in scaled) for k in first["breakdown_j"]},
        "counts": {k: sum(f * r["counts"][k] for f, r in scaled) for k in first["counts"]},
        "batch": b, "generated_tokens": per_seq_tokens,
    }


_SCALE = ("chips", "area_mm2", "core_area_mm2", "static_power_w")  # the system's scale, design-point arrays


def _analog_points(sh: ModelShape, parts: list[tuple[int, Work]], tokens: int, q: np.ndarray, stats,
                   hw: Hardware | None, backend: str, systems=None) -> dict[str, Any]:
    return _combine([(w, analog.evaluate_points(sh, work, q, stats, hw, w, backend, systems))
                     for w, work in parts], tokens)


def _trace_decode(trace: Trace, parts: list[tuple[int, Work]]) -> dict:
    """The CostReport's ``decode`` entry of a traced run: its counters and totals (whole run)."""
    return {"decode": "trace", **trace.summary(), "sequences_per_call": [w for w, _ in parts]}


def estimate(shape: str | Path | ModelShape, hw: str | Path | Hardware,
             decode: Diffusion | Autoregressive | Trace | None = None, stats: Mapping | None = None,
             batch: int = 1, backend: str = "numba") -> CostReport:
    """Energy and latency of generating with ``shape`` on card ``hw`` under ``decode``.

    shape: a shape name (``list_shapes()``), a TOML/JSON path or a ModelShape. hw: a card name, path or
    Hardware; analog cards (``hw.kind == "analog"``) use the analog model, GPU cards the roofline.
    decode: ``Diffusion(steps, seq_len, ...)`` or ``Autoregressive(seq_len, ...)``; default
    ``Diffusion(steps=L, seq_len=L)`` with L = min(1024, context) (as the CLI). Or the
    :class:`~analogdiff.trace.Trace` of a simulated run (``generate_ids(...)[1]["trace"]``, or a scorer's):
    then exactly its recorded calls are priced, each at the batch it ran with (``batch`` must stay 1),
    per token = the run's total / ``trace.tokens``, per sequence = the run's total / its widest batch
    (``report.batch``; ``generated_tokens`` = ``trace.tokens`` / ``batch``), latency = the wall time of all
    its calls; ``report.decode`` holds the trace's counters and whole-run totals.
    stats: measured activation statistics of an analog evaluation run (``{"layers": {module: {...}}}``),
    analog cards only. backend: "numba" or "numpy" (the kernels' NumPy twins). Raises ConfigError (a
    ValueError) on bad input, and when the model needs more tiles than the analog chip has and the card has
    no [system] table. The report carries the system's scale (``chips``, ``area_mm2``, ``static_power_w``;
    breakdown ``static``, ``interconnect`` and, analog, ``dram``): :mod:`analogdiff.energy.system`.
    """
    hw = load_hardware(hw)
    if isinstance(decode, Trace):
        sh, parts = _prepare_trace(shape, decode, batch)
        tokens, described = decode.tokens, _trace_decode(decode, parts)
    else:
        sh = load_shape(shape)
        if decode is None:
            L = min(1024, sh.context_len)
            decode = Diffusion(steps=L, seq_len=L)
        sh, work = _prepare(sh, decode, batch)
        parts, tokens, described = [(batch, work)], batch * work.generated_tokens, decode.describe()
    if hw.kind == "gpu":
        if stats:
            raise ConfigError("stats: activation statistics apply to analog cards only")
        points = [(w, _gpu_points(sh, hw, work, w)) for w, work in parts]
        res = _combine(points, tokens)
        res["counts"]["kernels"] = sum(p["counts"]["kernels"] for _, p in points)  # launched, not per sequence
        res["counts"]["weight_bytes"] = points[0][1]["counts"]["weight_bytes"]
        need_gb = max(float(p["hbm_needed_gb"][0]) for _, p in points)
        tiles, extras = 0, {"dtype": hw.gpu.dtype, "hbm_needed_gb": need_gb}
        scale = system.gpu_system(sh, hw, need_gb)
    else:
        res = _analog_points(sh, parts, tokens, analog.design_points(hw), stats, hw, backend)
        tiles = int(res["tiles"][0])
        if not res["fits"][0]:
            t = hw.tile
            raise ConfigError(f"tile.tiles_per_chip: {sh.name} needs {tiles:,} tiles of {t.rows}×{t.cols} "
                              f"(bit_slices {t.bit_slices}, replication {t.replication}) but {hw.name} has "
                              f"{t.tiles_per_chip:,} and no [system] table to spread it over several chips; "
                              f"weights stay resident (no re-programming is priced)")
        extras = {"tile_utilization": float(res["tile_utilization"][0]), "stats": bool(stats),
                  "core_area_mm2": float(res["core_area_mm2"][0])}
        scale = {"chips": int(res["chips"][0]), "area_mm2": float(res["area_mm2"][0]),
                 "static_power_w": float(res["static_power_w"][0])}
    g = res["generated_tokens"]
    return _checked(CostReport(
        model=sh.name, hardware=hw.name, kind=hw.kind, decode=described, batch=res["batch"],
        generated_tokens=int(g) if float(g).is_integer() else float(g),
        **{k: float(res[k][0]) for k in ("energy_per_token_j", "latency_per_token_s", "energy_per_sequence_j",
                                         "latency_per_sequence_s", "tokens_per_s")},
        breakdown_j={k: float(v[0]) for k, v in res["breakdown_j"].items()},
        counts={k: float(v[0]) for k, v in res["counts"].items()}, tiles=tiles, extras=extras, **scale))


def _gpu_points(sh: ModelShape, hw: Hardware, work: Work, batch: int) -> dict[str, Any]:
    """The GPU roofline of ``batch`` sequences under ``work``, shaped like ``analog.evaluate_points``'
    result (one design point; per sequence of the batch), so that both combine the same way."""
    r = gpu.gpu_estimate_arrays(sh, hw, work, batch)
    t, one = work.totals, np.ones(1)
    counts = {"token_forwards": t["token_forwards"], "head_evals": t["head_evals"],
              "forward_passes": t["forward_passes"], "attention_pairs": t["attention_pairs"],
              "flops": r["flops"] / batch, "hbm_bytes": r["hbm_bytes"] / batch, "bytes_moved": r["hbm_bytes"] / batch,
              "kernels": r["kernels"], "weight_bytes": sh.n_params() * gpu.BYTES[hw.gpu.dtype]}
    return {"energy_per_sequence_j": one * sum(v / batch for v in r["breakdown_j"].values()),
            "latency_per_sequence_s": one * r["time_s"], "tiles": one * 0, "fits": one > 0,
            "tile_utilization": one * 0, "hbm_needed_gb": one * r["hbm_needed_gb"],
            **{k: one * 0 for k in _SCALE},  # a GPU's scale: energy.system.gpu_system
            "breakdown_j": {**{k: one * v / batch for k, v in r["breakdown_j"].items()}, "interconnect": one * 0},
            "counts": {k: one * float(v) for k, v in counts.items()}}


def estimate_many(shape: str | Path | ModelShape, hw: str | Path | Hardware | Sequence[Hardware],
                  decode: Diffusion | Autoregressive | Trace, *, overrides: Mapping[str, Any] | None = None,
                  stats: Mapping | None = None, batch: int = 1, backend: str = "numba") -> dict[str, Any]:
    """Evaluate N analog design points in one call (numba kernels over layers × design points).

    Signature::

        estimate_many(shape, hw, decode, *, overrides=None, stats=None, batch=1, backend="numba") -> dict

    shape: shape name, path or ModelShape. hw: one analog card (name, path or Hardware) swept by
    ``overrides``, or a sequence of analog Hardware (one design point each, no overrides).
    overrides: ``{dotted key: scalar or 1-D array}``, all arrays of one length N; the keys are card fields
    the cost model reads — ``analog.COLUMNS`` (tile.rows, tile.cols, tile.bit_slices, tile.replication,
    tile.tiles_per_chip, tile.t_integrate_ns, tile.mean_g_fraction, tile.input_activity, device.g_min_us,
    device.g_max_us, device.read_voltage_v, dac.bits, dac.mode, dac.bit_serial, dac.input_range,
    dac.e_conv_pj, dac.t_conv_ns, adc.bits, adc.cols_per_adc, adc.t_conv_ns, periphery.*, digital.*,
    memory.*) plus adc.walden_fom_fj and adc.schreier_fom_db; converter fields are priced through the
    laws of ``energy.converters`` (PWM window, ADC energy and time by bits, dynamic-range max-reduction).
    Values are range-checked like the card fields (ConfigError names the key and index).
    decode, stats, batch, backend: as in :func:`estimate` (a Trace is priced as there; the result then
    also holds ``batch`` and ``generated_tokens``).

    Returns a dict of arrays of length N: ``energy_per_token_j``, ``latency_per_token_s``,
    ``energy_per_sequence_j``, ``latency_per_sequence_s``, ``tokens_per_s``, ``tiles``, ``fits`` (tiles ≤
    tile.tiles_per_chip, or the card has a [system] table; points that do not fit are still priced),
    ``tile_utilization``, ``chips``, ``area_mm2``, ``core_area_mm2``, ``static_power_w`` (the card's
    [system] scale, :mod:`analogdiff.energy.system`; [system] fields are not swept), and
    ``breakdown_j`` / ``counts``: dicts of such arrays. ``estimate`` on point i gives the same numbers.
    """
    if isinstance(decode, Trace):
        sh, parts = _prepare_trace(shape, decode, batch)
    else:
        sh, work = _prepare(shape, decode, batch)
    if isinstance(hw, (str, Path, Hardware)):
        hw = load_hardware(hw)
        if hw.kind != "analog":
            raise ConfigError(f"{hw.name}: estimate_many sweeps analog cards; use estimate() for GPUs")
        q = analog.design_points(hw, overrides)
        base, systems = hw, None
    else:
        cards = [load_hardware(h) for h in hw]
        analog.query_tile(cards)  # one attention query tile for all: raises if the cards differ
        q = analog.design_points(cards, overrides)
        base, systems = (cards[0] if cards else None), [c.system for c in cards]
    if isinstance(decode, Trace):
        return _analog_points(sh, parts, decode.tokens, q, stats, base, backend, systems)
    return analog.evaluate_points(sh, work, q, stats, base, batch, backend, systems)


_LAYER_BREAKDOWN = {"dac": analog.K.A_E_DAC_PJ, "array": analog.K.A_E_ARRAY_PJ, "adc": analog.K.A_E_ADC_PJ,
                    "periphery": analog.K.A_E_PERIPHERY_PJ, "switching": analog.K.A_E_SWITCH_PJ,
                    "local_digital": analog.K.A_E_LOCAL_PJ, "core_power": analog.K.A_E_CORE_PJ,
                    "sram": analog.K.A_E_SRAM_PJ,
                    "noc": analog.K.A_E_NOC_PJ}
_LAYER_COUNTS = {"mvms": analog.K.A_MVMS, "macs": analog.K.A_MACS, "dac_conversions": analog.K.A_N_DAC,
                 "adc_conversions": analog.K.A_N_ADC, "column_reads": analog.K.A_N_COLUMN_READS,
                 "shift_adds": analog.K.A_N_SHIFT_ADD, "accumulations": analog.K.A_N_ACCUMULATE,
                 "integrations": analog.K.A_N_INTEGRATIONS, "wordline_toggles": analog.K.A_N_WL_TOGGLES,
                 "sram_bytes": analog.K.A_SRAM_BITS, "noc_bytes_hops": analog.K.A_NOC_BIT_HOPS}
_MAX_FEATURES, _MAX_MVMS = 10 ** 9, 10 ** 18


def _layer_entries(layers: Mapping | Sequence) -> list[tuple[str, dict]]:
    """``collect_stats(...)`` / its ``"layers"`` mapping, or a sequence of (in, out, mvms) tuples or
    dicts → [(name, {in_features, out_features, mvms, matrices, [measured means]})], checked."""
    if isinstance(layers, Mapping):
        layers = layers.get("layers", layers)
        items = list(layers.items()) if isinstance(layers, Mapping) else None
    elif isinstance(layers, Sequence) and not isinstance(layers, (str, bytes)):
        items = [(str(i), e) for i, e in enumerate(layers)]
    else:
        items = None
    if items is None:
        raise ConfigError("layers: expected collect_stats(amodel), its 'layers' mapping, or a list of "
                          "(in_features, out_features, mvms) tuples or dicts")
    out = []
    for name, e in items:
        field = f"layers.{name}"
        if isinstance(e, Sequence) and not isinstance(e, (str, bytes)) and len(e) == 3:
            e = dict(zip(("in_features", "out_features", "mvms"), e))
        if not isinstance(e, Mapping) or not {"in_features", "out_features", "mvms"} <= set(e):
            raise ConfigError(f"{field}: expected (in_features, out_features, mvms) or a dict with those keys")
        clean = {"in_features": checks.integer(f"{field}.in_features", e["in_features"], 1, _MAX_FEATURES),
                 "out_features": checks.integer(f"{field}.out_features", e["out_features"], 1, _MAX_FEATURES),
                 "mvms": checks.integer(f"{field}.mvms", e["mvms"], 0, _MAX_MVMS),
                 "matrices": checks.integer(f"{field}.matrices", e.get("matrices", 1), 1, _MAX_FEATURES)}
        for key in ("mean_abs_x_norm", "mean_x2_norm"):
            if key in e:
                clean[key] = checks.number(f"{field}.{key}", e[key], 0.0, 1.0)
        if "mean_g_us" in e:
            clean["mean_g_us"] = checks.number(f"{field}.mean_g_us", e["mean_g_us"], 0.0, 1e9)
        out.append((str(name), clean))
    if not out:
        raise ConfigError("layers: no layers to price")
    return out


def estimate_layers(layers: Mapping | Sequence, hw: str | Path | Hardware,
                    backend: str = "numba") -> dict[str, Any]:
    """Energy of the analog layers of a simulated run, priced from their matrices and counted MVMs.

    layers: ``collect_stats(amodel)`` (or its ``"layers"`` mapping: per layer ``in_features``,
    ``out_features``, ``mvms``, optional ``matrices`` (a conv's groups, default 1) and the measured
    ``mean_abs_x_norm``, ``mean_x2_norm``, ``mean_g_us``, which replace the card's default activity and
    conductance), or a list of ``(in_features, out_features, mvms)``. One MVM = one input vector through
    one matrix; ``mvms`` counts them over the layer's matrices (a conv: batch × positions × groups).
    hw: an analog card. Each layer's matrices are programmed once (weight-stationary) and priced by the
    same kernel as :func:`estimate` (DAC, array, ADC, periphery, SRAM in/out vectors, NoC).

    Only the analog layers are priced: digital layers listed by ``mapping_report`` (embeddings, norms,
    attention products, activations) are not, nor the system's links, static power and DRAM (``estimate``
    prices those). Returns ``{"hardware", "energy_j", "breakdown_j" (dac, array, adc, periphery, sram, noc;
    ir_compensation on cards with ``tile.ir_compensation``),
    "counts" (mvms, macs, conversions, ...), "tiles", "fits", "chips" (⌈tiles / tile.tiles_per_chip⌉),
    "area_mm2" (chips × system.chip_area_mm2; 0 without [system]),
    "tile_utilization", "mvm_time_s", "layers": {name: {in_features, out_features, matrices, mvms,
    energy_j, tiles, t_interval_ns}}}``. ``mvm_time_s`` = Σ mvms × the layer's initiation interval
    ``t_interval_ns``: every MVM one after another, no overlap between layers or groups (an upper bound).
    """
    hw = load_hardware(hw)
    if hw.kind != "analog":
        raise ConfigError(f"{hw.name}: estimate_layers prices analog cards; this is a GPU card")
    entries = _layer_entries(layers)
    q = analog.design_points(hw)
    d, nan = hw.device, np.nan
    la = analog.LayerArrays(
        kinds=tuple(n for n, _ in entries),
        in_f=np.array([e["in_features"] for _, e in entries], float),
        out_f=np.array([e["out_features"] for _, e in entries], float),
        copies=np.array([e["matrices"] for _, e in entries], float),
        mvms=np.array([e["mvms"] for _, e in entries], float),
        per=np.zeros(len(entries), np.int64),
        abs_x=np.array([e.get("mean_abs_x_norm", nan) for _, e in entries]),
        x2=np.array([e.get("mean_x2_norm", nan) for _, e in entries]),
        g_frac=np.array([(e["mean_g_us"] - d.g_min_us) / (d.g_max_us - d.g_min_us) if "mean_g_us" in e
                         else nan for _, e in entries]))
    acc, t_lat, t_ii = analog.run_layer_kernel(la, q, backend)  # (1, N_ACC), (1, L) ns per MVM
    comp, _, t_ii = analog.ir_compensation_work(la, q, t_lat, t_ii)  # the IR-drop correction, if on
    comp_pj = (analog.ir_compensation_columns(la, q)[0] * la.mvms * q[0, analog.K.P_E_MAC_PJ]
               if comp is not None else np.zeros(len(entries)))  # (L,)
    per_layer = {}
    for i, (name, e) in enumerate(entries):  # one layer at a time for its own energy and tiles
        one = analog.LayerArrays(*(getattr(la, f.name)[i:i + 1] for f in dataclasses.fields(la)))
        a, _, _ = analog.run_layer_kernel(one, q, backend)
        per_layer[name] = {**{k: e[k] for k in ("in_features", "out_features", "matrices", "mvms")},
                           "energy_j": float(sum(a[0, j] for j in _LAYER_BREAKDOWN.values()) + comp_pj[i]) * 1e-12,
                           "tiles": int(a[0, analog.K.A_TILES]), "t_interval_ns": float(t_ii[0, i])}
    counts = {k: float(acc[0, j]) for k, j in _LAYER_COUNTS.items()}
    counts["sram_bytes"] /= 8.0
    counts["noc_bytes_hops"] /= 8.0
    breakdown = {k: float(acc[0, j]) * 1e-12 for k, j in _LAYER_BREAKDOWN.items()}
    if comp is not None:
        breakdown["ir_compensation"] = float(comp_pj.sum()) * 1e-12
        counts["ir_compensation_macs"] = float(comp[0])
    tiles = int(acc[0, analog.K.A_TILES])
    chips = max(1, -(-tiles // hw.tile.tiles_per_chip))
    return {"hardware": hw.name, "energy_j": sum(breakdown.values()), "breakdown_j": breakdown,
            "counts": counts, "tiles": tiles, "fits": tiles <= hw.tile.tiles_per_chip or hw.system is not None,
            "chips": chips, "area_mm2": chips * hw.system.chip_area_mm2 if hw.system else 0.0,
            "tile_utilization": float(analog.utilization(la, q)[0]),
            "mvm_time_s": float((la.mvms * t_ii[0]).sum()) * 1e-9, "layers": per_layer}


def estimate_calibration(layers: Mapping | Sequence, hw: str | Path | Hardware,
                         backend: str = "numba") -> dict[str, Any]:
    """The one-off cost of fitting the IR-drop correction at programming (``crossbar/compensation.py``),
    not a per-token cost: ``layers`` as :func:`estimate_layers`, with ``mvms`` = calibration vectors per
    matrix.

    Priced: every calibration vector read once through the programmed tiles (:func:`estimate_layers`: DAC,
    array, ADC, periphery, SRAM, NoC); the no-IR-drop reference partial sums computed digitally from the
    programmed conductances (``in · out · bit_slices`` MACs per vector) and the per-column least-squares
    sums Σy, Σt, Σy², Σy·t (counted as 3 MACs per tile column per vector: ``3 · ⌈in/rows⌉ · out ·
    bit_slices``), all at ``digital.e_mac_pj`` and ``digital.throughput_gops``. Returns ``{"energy_j", "time_s", "breakdown_j":
    {"reads", "reference", "fit"}, "vectors", "macs"}``; time = the reads' ``mvm_time_s`` + digital MACs /
    throughput (no overlap, an upper bound).
    """
    hw = load_hardware(hw)
    reads = estimate_layers(layers, hw, backend)
    t, d = hw.tile, hw.digital
    ref_macs = fit_macs = 0.0
    for e in reads["layers"].values():
        n, m_in, m_out = e["mvms"], e["in_features"], e["out_features"]
        ref_macs += float(n) * m_in * m_out * t.bit_slices
        fit_macs += 3.0 * float(n) * -(-m_in // t.rows) * m_out * t.bit_slices
    reads_j = reads["energy_j"] - reads["breakdown_j"].get("ir_compensation", 0.0)  # the correction is being fitted
    breakdown = {"reads": reads_j, "reference": ref_macs * d.e_mac_pj * 1e-12,
                 "fit": fit_macs * d.e_mac_pj * 1e-12}
    macs = ref_macs + fit_macs
    return {"energy_j": sum(breakdown.values()), "breakdown_j": breakdown,
            "time_s": reads["mvm_time_s"] + 2.0 * macs / (d.throughput_gops * 1e9),
            "vectors": int(sum(e["mvms"] for e in reads["layers"].values())), "macs": macs}
