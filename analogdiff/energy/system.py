"""Whole-system scale of an analog estimate: chips, silicon area, static power, chip-to-chip links, DRAM spill.

Reads the card's ``[system]`` table (``config.System``); a card without one is a single chip (a model that
needs more tiles than ``tile.tiles_per_chip`` is then refused by ``estimate``) with unlimited SRAM.

* **Chips.** Every weight matrix is programmed once (as in ``analog``); a model needing ``tiles`` tiles runs
  on ``chips = ⌈tiles / tile.tiles_per_chip⌉`` identical chips.
* **Area.** ``chips × system.chip_area_mm2`` (whole chips); ``tiles × system.tile_area_mm2`` is the cores alone.
* **Static power.** ``chips × sram_mb_per_chip × sram_leakage_mw_per_mb``, charged over the run's own wall
  time (the leakage of the cores' logic is in the cards' per-MVM energies, measured as the chips ran).
* **Layout and links.** Matrices fill the chips' tiles in order: block 0's (the shape's order: qkv, out,
  [gate], up, down, [adaLN]), block 1's, …, then the LM head and the once-per-pass conditioning matrices.
  Per MVM of one matrix instance, the bits crossing a chip boundary are (activation_bits each)
  ``(k − 1)·(in + out)`` when its tiles span k chips (each further chip receives the input and returns its
  outputs) plus ``in`` when it starts on another chip than the previous matrix ended on (the hand-off).
  Energy: bits × ``link_pj_per_bit``. Time: the k − 1 chips use their own links at once, so one MVM's
  transfer takes ``((in + out)·[k > 1] + in·[hand-off])·bits / link_gbps``; a pass over n positions adds,
  per block, the sum of its transfers (the first position) plus ``(n − 1) × max(0, slowest transfer −
  slowest stage interval)`` (the links pipeline with the tiles unless they are the slower stage); the head
  likewise over its positions, the conditioning matrices once per pass.
* **KV cache and embeddings.** The SRAM of all chips holds the KV cache first (batch × context × layers ×
  2·n_kv_heads·head_dim elements), then the embedding table; the fraction that does not fit is read and
  written in DRAM at ``dram_pj_per_bit`` instead of SRAM (moved from the ``sram`` entry to ``dram``), and
  its bits take ``bits / (dram_gbps_per_chip × chips)`` more time (not overlapped: an upper bound).
* **Digital units.** ``digital.throughput_gops`` is one chip's; each block's digital work runs on that
  block's chips, so the estimator uses ``throughput_gops × max(1, chips / n_layers)`` (:func:`digital_scale`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from analogdiff.config import Hardware, System
from analogdiff.energy import kernels as K
from analogdiff.energy.decode import Work
from analogdiff.shapes import ModelShape

BREAKDOWN = ("static", "interconnect", "dram")


def tiles_per_layer(la, q: np.ndarray) -> np.ndarray:
    """Tiles of one copy of each layer entry at each design point (P, L), replicas included — the
    count the layer kernel sums (``A_TILES``)."""
    rows, cols, slices, repl = (q[:, k][:, None] for k in (K.P_ROWS, K.P_COLS, K.P_SLICES, K.P_REPL))
    r = np.ceil(la.in_f[None, :] / rows)
    c = np.ceil(la.out_f[None, :] / np.floor(cols / slices))
    return r * c * repl


def chips_needed(la, q: np.ndarray) -> np.ndarray:
    """Chips (P,) holding every matrix of ``la`` at the design points ``q``."""
    tiles = (tiles_per_layer(la, q) * la.copies[None, :]).sum(axis=1)
    return np.maximum(np.ceil(tiles / q[:, K.P_TILES_PER_CHIP]), 1.0)


def digital_scale(la, q: np.ndarray, n_layers: int) -> np.ndarray:
    """Factor (P,) on one chip's digital throughput: the chips that hold one block, at least one."""
    return np.maximum(chips_needed(la, q) / n_layers, 1.0)


def _instances(la, n_layers: int) -> np.ndarray:
    """Layer-entry index of every matrix instance in layout order (see the module docstring)."""
    block = [i for i in range(len(la.kinds)) if la.copies[i] == n_layers]
    rest = [i for i in range(len(la.kinds)) if la.copies[i] != n_layers]
    order = block * n_layers + [i for i in rest for _ in range(int(la.copies[i]))]
    return np.array(order, dtype=np.int64)


def link_traffic(la, tiles_one: np.ndarray, tiles_per_chip: float, act_bits: float,
                 n_layers: int) -> dict[str, np.ndarray]:
    """One design point's layout: per matrix instance (I,) the layer entry, bits crossing chips per MVM
    (energy), bits on the critical link per MVM (time) and its block (−1: after the blocks)."""
    idx = _instances(la, n_layers)
    t = tiles_one[idx]                                                 # (I,) tiles of each instance
    end = np.cumsum(t)
    first, last = (end - t) // tiles_per_chip, (end - 1) // tiles_per_chip
    k = last - first + 1
    handoff = np.concatenate([[False], first[1:] != last[:-1]])
    n_in, n_out = la.in_f[idx], la.out_f[idx]
    bits = ((k - 1) * (n_in + n_out) + handoff * n_in) * act_bits
    crit = ((k > 1) * (n_in + n_out) + handoff * n_in) * act_bits
    n_block = int(np.sum(la.copies == n_layers))
    block = np.full(idx.shape, -1)
    block[:n_block * n_layers] = np.repeat(np.arange(n_layers), n_block)
    return {"entry": idx, "bits": bits, "crit_bits": crit, "block": block}


def _link_time_ns(tr: dict, la, link_gbps: float, seg_ii: float, head_ii: float, n_layers: int,
                  positions: np.ndarray, head_positions: np.ndarray, reps: np.ndarray) -> float:
    """Added wall time (ns) of all phases for one design point (see the module docstring)."""
    t = tr["crit_bits"] / link_gbps                                    # (I,) ns per MVM
    per = la.per[tr["entry"]]
    tok, head, once = per == K.PER_TOKEN, per == K.PER_HEAD, per == K.PER_PASS
    fill = np.zeros(n_layers)
    slow = np.zeros(n_layers)
    blk = tr["block"]
    sel = tok & (blk >= 0)
    np.add.at(fill, blk[sel], t[sel])
    np.maximum.at(slow, blk[sel], t[sel])
    head_fill = float(t[head].sum())
    head_slow = float(t[head].max(initial=0.0))
    pass_fill = float(t[once].sum())
    n = positions[:, None]                                             # (F, 1)
    blocks = (fill[None, :] + (n - 1.0) * np.maximum(slow[None, :] - seg_ii, 0.0)).sum(axis=1)
    h = head_positions
    heads = np.where(h > 0, head_fill + (h - 1.0) * max(head_slow - head_ii, 0.0), 0.0)
    return float((reps * (blocks + heads + pass_fill)).sum())


def fields(systems: Sequence[System | None]) -> dict[str, np.ndarray]:
    """The [system] tables of P design points as (P,) arrays (0 where a point has none) and ``has`` (P,)."""
    names = [f.name for f in dataclasses.fields(System)]
    out = {n: np.array([float(getattr(s, n)) if s is not None else 0.0 for s in systems]) for n in names}
    out["has"] = np.array([s is not None for s in systems])
    return out


def account(shape: ModelShape, work: Work, la, q: np.ndarray, systems: Sequence[System | None], batch: int,
            dc: dict[str, float], t_ii_ns: np.ndarray, gops: np.ndarray) -> dict[str, Any]:
    """System figures of one (shape, schedule) at the design points ``q`` (P, N_PARAMS), per sequence of a
    batch of ``batch``. ``systems``: each point's [system] table (None: one chip, unlimited SRAM);
    ``dc``: ``analog.digital_counts``; ``t_ii_ns``: the layer kernel's initiation intervals (P, L);
    ``gops``: the digital throughput the latency kernel used (P,). Returns (P,) arrays; ``link_ns`` and
    ``dram_ns`` add to the latency kernel's wall time."""
    n_pts = q.shape[0]
    sf = fields(systems)
    has = sf["has"]
    tiles_one = tiles_per_layer(la, q)                                 # (P, L)
    tiles = (tiles_one * la.copies[None, :]).sum(axis=1)
    chips = np.maximum(np.ceil(tiles / q[:, K.P_TILES_PER_CHIP]), 1.0)
    bits = q[:, K.P_ACT_BITS]
    out = {"chips": chips, "area_mm2": chips * sf["chip_area_mm2"], "core_area_mm2": tiles * sf["tile_area_mm2"],
           "static_power_w": chips * sf["sram_mb_per_chip"] * sf["sram_leakage_mw_per_mb"] * 1e-3,
           "link_ns": np.zeros(n_pts), "link_bits": np.zeros(n_pts)}

    # KV cache first, then the embedding table, in the SRAM of all chips; the rest in DRAM
    kv_el = shape.n_layers * 2 * shape.n_kv_heads * shape.head_dim
    need_kv = batch * work.context_needed * kv_el * bits / 8.0          # (P,) bytes
    need_emb = shape.embedding_params() * bits / 8.0
    cap = chips * sf["sram_mb_per_chip"] * 1e6
    f_kv = np.where(has & (need_kv > 0), np.clip(1.0 - cap / np.maximum(need_kv, 1e-300), 0.0, 1.0), 0.0)
    f_emb = np.where(has, np.clip(1.0 - np.maximum(cap - need_kv, 0.0) / need_emb, 0.0, 1.0), 0.0)
    dram_bits = (f_kv * (dc["kv_elements_written"] + dc["kv_elements_read"])
                 + f_emb * dc["embedding_elements_read"]) * bits        # per sequence
    out["dram_bits"] = out["sram_bits_moved"] = dram_bits
    dram_bw = np.where(has, sf["dram_gbps_per_chip"], 1.0) * chips
    out["dram_ns"] = dram_bits * batch / dram_bw

    cw = work.compressed()
    reps = cw.repeats.astype(float)
    positions, head_positions = cw.positions * float(batch), cw.head_positions * float(batch)
    runs = {K.PER_TOKEN: work.totals["token_forwards"], K.PER_HEAD: work.totals["head_evals"],
            K.PER_PASS: work.totals["forward_passes"]}
    tok, head = la.per == K.PER_TOKEN, la.per == K.PER_HEAD
    for p in np.flatnonzero(has & (chips > 1)):
        tr = link_traffic(la, tiles_one[p], q[p, K.P_TILES_PER_CHIP], bits[p], shape.n_layers)
        per_seq = np.array([runs[int(c)] for c in la.per[tr["entry"]]], float)
        out["link_bits"][p] = float((tr["bits"] * per_seq).sum())
        dg = digital_ops_ns(dc, gops[p])
        seg_ii = max(dg["tok"], float(t_ii_ns[p, tok].max(initial=0.0)))
        head_ii = max(dg["head"], float(t_ii_ns[p, head].max(initial=0.0)))
        out["link_ns"][p] = _link_time_ns(tr, la, sf["link_gbps"][p], seg_ii, head_ii, shape.n_layers,
                                          positions, head_positions, reps)
    out["link_pj_per_bit"], out["dram_pj_per_bit"], out["has"] = sf["link_pj_per_bit"], sf["dram_pj_per_bit"], has
    return out


def digital_ops_ns(dc: dict[str, float], gops: float) -> dict[str, float]:
    """The digital stages of the latency kernel (ns per position): per block, and of the head."""
    return {"tok": dc["tok_ops"] / gops, "head": dc["head_ops"] / gops}


def energies_pj(acct: dict[str, Any], q: np.ndarray, t_seq_s: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """The system's breakdown entries per sequence (pJ, (P,)): ``static`` (power × the batch's wall time
    ``t_seq_s`` / batch), ``interconnect``, ``dram``; and ``sram_moved`` (pJ to take off the ``sram``
    entry: the spilled bits no longer read from SRAM)."""
    return {"static": acct["static_power_w"] * t_seq_s / batch * 1e12,
            "interconnect": acct["link_bits"] * acct["link_pj_per_bit"],
            "dram": acct["dram_bits"] * acct["dram_pj_per_bit"],
            "sram_moved": acct["sram_bits_moved"] * q[:, K.P_E_SRAM_PJ_PER_BIT]}


def gpu_system(shape: ModelShape, hw: Hardware, hbm_needed_gb: float) -> dict[str, float]:
    """A GPU card's scale: GPUs needed by memory (weights + KV cache over ``gpu.hbm_capacity_gb``), their
    die area (0 when the card does not state it), and static power = ``gpu.power_const_w`` per GPU — the
    constant term of the GPU's energy roofline, already its ``static`` breakdown entry (not added again)."""
    g = hw.gpu
    chips = max(1, math.ceil(hbm_needed_gb / g.hbm_capacity_gb))
    return {"chips": chips, "area_mm2": chips * (g.die_area_mm2 or 0.0),
            "static_power_w": chips * g.power_const_w}
