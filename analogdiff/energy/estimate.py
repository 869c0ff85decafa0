"""``estimate`` (one design point → CostReport) and ``estimate_many`` (N analog design points → arrays)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from analogdiff.config import ConfigError, Hardware, load_hardware
from analogdiff.energy import analog, gpu
from analogdiff.energy.decode import Autoregressive, Diffusion, Work, schedule_work
from analogdiff.energy.report import CostReport
from analogdiff.shapes import ModelShape, load_shape


def _prepare(shape, decode, batch) -> tuple[ModelShape, Work]:
    shape = load_shape(shape)
    if not isinstance(decode, (Diffusion, Autoregressive)):
        raise ConfigError(f"decode: expected Diffusion(...) or Autoregressive(...), got {decode!r}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ConfigError(f"batch: {batch!r} is outside the allowed range [1, inf)")
    work = schedule_work(decode)
    if work.context_needed > shape.context_len:
        raise ConfigError(f"seq_len: {decode.seq_len} needs {work.context_needed} positions but {shape.name} "
                          f"has context_len {shape.context_len} (allowed seq_len: 1..{shape.context_len})")
    return shape, work


def estimate(shape: str | Path | ModelShape, hw: str | Path | Hardware,
             decode: Diffusion | Autoregressive | None = None, stats: Mapping | None = None,
             batch: int = 1, backend: str = "numba") -> CostReport:
    """Energy and latency of generating with ``shape`` on card ``hw`` under ``decode``.

    shape: a shape name (``list_shapes()``), a TOML/JSON path or a ModelShape. hw: a card name, path or
    Hardware; analog cards (``hw.kind == "analog"``) use the analog model, GPU cards the roofline.
    decode: ``Diffusion(steps, seq_len, ...)`` or ``Autoregressive(seq_len, ...)``; default
    ``Diffusion(steps=L, seq_len=L)`` with L = min(1024, context) (as the CLI). stats: measured activation
    statistics of an analog evaluation run (``{"layers": {module: {...}}}``), analog cards only.
    backend: "numba" or "numpy" (the kernels' NumPy twins). Raises ConfigError (a ValueError) on bad
    input, and when the model needs more tiles than the analog chip has.
    """
    hw = load_hardware(hw)
    sh = load_shape(shape)
    if decode is None:
        L = min(1024, sh.context_len)
        decode = Diffusion(steps=L, seq_len=L)
    sh, work = _prepare(sh, decode, batch)
    if hw.kind == "gpu":
        if stats:
            raise ConfigError("stats: activation statistics apply to analog cards only")
        return _gpu_report(sh, hw, decode, work, batch)
    res = analog.evaluate_points(sh, work, analog.design_points(hw), stats, hw, batch, backend)
    tiles = int(res["tiles"][0])
    if not res["fits"][0]:
        t = hw.tile
        raise ConfigError(f"tile.tiles_per_chip: {sh.name} needs {tiles:,} tiles of {t.rows}×{t.cols} "
                          f"(bit_slices {t.bit_slices}, replication {t.replication}) but {hw.name} has "
                          f"{t.tiles_per_chip:,}; weights stay resident (no re-programming is priced)")
    return CostReport(
        model=sh.name, hardware=hw.name, kind="analog", decode=decode.describe(), batch=batch,
        generated_tokens=work.generated_tokens,
        energy_per_token_j=float(res["energy_per_token_j"][0]),
        latency_per_token_s=float(res["latency_per_token_s"][0]),
        energy_per_sequence_j=float(res["energy_per_sequence_j"][0]),
        latency_per_sequence_s=float(res["latency_per_sequence_s"][0]),
        tokens_per_s=float(res["tokens_per_s"][0]),
        breakdown_j={k: float(v[0]) for k, v in res["breakdown_j"].items()},
        counts={k: float(v[0]) for k, v in res["counts"].items()},
        tiles=tiles, extras={"tile_utilization": float(res["tile_utilization"][0]),
                             "stats": bool(stats)})


def _gpu_report(sh: ModelShape, hw: Hardware, decode, work: Work, batch: int) -> CostReport:
    r = gpu.gpu_estimate_arrays(sh, hw, work, batch)
    g = work.generated_tokens
    breakdown = {k: v / batch for k, v in r["breakdown_j"].items()}
    e_seq = sum(breakdown.values())
    t = work.totals
    wb = gpu.BYTES[hw.gpu.dtype]
    counts = {"token_forwards": float(t["token_forwards"]), "head_evals": float(t["head_evals"]),
              "forward_passes": float(t["forward_passes"]), "attention_pairs": float(t["attention_pairs"]),
              "flops": r["flops"] / batch, "hbm_bytes": r["hbm_bytes"] / batch,
              "bytes_moved": r["hbm_bytes"] / batch, "kernels": r["kernels"],
              "weight_bytes": float(sh.n_params() * wb)}
    return CostReport(
        model=sh.name, hardware=hw.name, kind="gpu", decode=decode.describe(), batch=batch,
        generated_tokens=g, energy_per_token_j=e_seq / g, latency_per_token_s=r["time_s"] / g,
        energy_per_sequence_j=e_seq, latency_per_sequence_s=r["time_s"], tokens_per_s=batch * g / r["time_s"],
        breakdown_j=breakdown, counts=counts, tiles=0,
        extras={"dtype": hw.gpu.dtype, "hbm_needed_gb": r["hbm_needed_gb"]})


def estimate_many(shape: str | Path | ModelShape, hw: str | Path | Hardware | Sequence[Hardware],
                  decode: Diffusion | Autoregressive, *, overrides: Mapping[str, Any] | None = None,
                  stats: Mapping | None = None, batch: int = 1, backend: str = "numba") -> dict[str, Any]:
    """Evaluate N analog design points in one call (numba kernels over layers × design points).

    Signature::

        estimate_many(shape, hw, decode, *, overrides=None, stats=None, batch=1, backend="numba") -> dict

    shape: shape name, path or ModelShape. hw: one analog card (name, path or Hardware) swept by
    ``overrides``, or a sequence of analog Hardware (one design point each, no overrides).
    overrides: ``{dotted key: scalar or 1-D array}``, all arrays of one length N; the keys are card fields
    the cost model reads — ``analog.COLUMNS`` (tile.rows, tile.cols, tile.bit_slices, tile.replication,
    tile.tiles_per_chip, tile.t_integrate_ns, tile.mean_g_fraction, tile.input_activity, device.g_min_us,
    device.g_max_us, device.read_voltage_v, dac.bits, dac.mode, dac.bit_serial, dac.e_conv_pj,
    dac.t_conv_ns, adc.cols_per_adc, adc.t_conv_ns, periphery.*, digital.*, memory.*) plus adc.bits,
    adc.walden_fom_fj and adc.schreier_fom_db, which re-price the ADC through the card's energy law.
    Values are range-checked like the card fields (ConfigError names the key and index).
    decode, stats, batch, backend: as in :func:`estimate`.

    Returns a dict of arrays of length N: ``energy_per_token_j``, ``latency_per_token_s``,
    ``energy_per_sequence_j``, ``latency_per_sequence_s``, ``tokens_per_s``, ``tiles``, ``fits`` (tiles ≤
    tile.tiles_per_chip; points that do not fit are still priced), ``tile_utilization``, and
    ``breakdown_j`` / ``counts``: dicts of such arrays. ``estimate`` on point i gives the same numbers.
    """
    sh, work = _prepare(shape, decode, batch)
    if isinstance(hw, (str, Path, Hardware)):
        hw = load_hardware(hw)
        if hw.kind != "analog":
            raise ConfigError(f"{hw.name}: estimate_many sweeps analog cards; use estimate() for GPUs")
        q = analog.design_points(hw, overrides)
        base = hw
    else:
        cards = [load_hardware(h) for h in hw]
        q = analog.design_points(cards, overrides)
        base = cards[0] if cards else None
    return analog.evaluate_points(sh, work, q, stats, base, batch, backend)
