"""Analog in-memory accelerator cost model: binds hardware cards, shapes and schedules to the kernels.

Weight-stationary: every weight matrix — the LM head included (it is an ``nn.Linear`` in our models) and
the adaLN time-conditioning layers of MDLM/SEDD — is programmed once onto its own tiles and stays there.
A model that needs more tiles than ``tile.tiles_per_chip`` spans several chips when the card has a
``[system]`` table (links, static power, area and DRAM spill: :mod:`analogdiff.energy.system`), and is
rejected otherwise (no re-programming is priced).
Token embeddings are looked up in SRAM; attention (QKᵀ, AV), softmax, norms, activations and sampling run
on the card's digital units; activations and the KV cache live in SRAM; vectors move over the NoC.
The per-MVM physics is in :mod:`analogdiff.energy.kernels`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np

from analogdiff.config import COMPONENTS, ConfigError, Hardware
from analogdiff.energy import converters as CV
from analogdiff.energy import kernels as K
from analogdiff.energy import system
from analogdiff.energy.decode import Work
from analogdiff.shapes import ModelShape

# dotted card key → design-point column (what estimate_many may sweep)
COLUMNS: dict[str, int] = {
    "tile.rows": K.P_ROWS, "tile.cols": K.P_COLS, "tile.bit_slices": K.P_SLICES,
    "tile.replication": K.P_REPL, "tile.tiles_per_chip": K.P_TILES_PER_CHIP,
    "tile.t_integrate_ns": K.P_T_INT_NS, "tile.mean_g_fraction": K.P_G_FRAC,
    "tile.input_activity": K.P_ACTIVITY, "tile.read_phases": K.P_READ_PHASES,
    "device.g_min_us": K.P_G_MIN_US, "device.g_max_us": K.P_G_MAX_US, "device.read_voltage_v": K.P_V_READ_V,
    "dac.bits": K.P_DAC_BITS, "dac.mode": K.P_DAC_PWM, "dac.bit_serial": K.P_DAC_SERIAL,
    "dac.input_range": K.P_DAC_DYNAMIC, "dac.e_conv_pj": K.P_E_DAC_PJ, "dac.t_conv_ns": K.P_T_DAC_CONV_NS,
    "dac.phase_bits": K.P_PHASE_BITS, "dac.t_phase_ns": K.P_T_PHASE_NS, "dac.accumulate": K.P_DAC_CHARGE,
    "adc.bits": K.P_ADC_BITS, "adc.cols_per_adc": K.P_COLS_PER_ADC, "adc.t_conv_ns": K.P_T_ADC_CONV_NS,
    "periphery.e_integrator_pj": K.P_E_INTEGRATOR_PJ, "periphery.e_sample_hold_pj": K.P_E_SAMPLE_HOLD_PJ,
    "periphery.e_shift_add_pj": K.P_E_SHIFT_ADD_PJ, "periphery.e_accumulate_pj": K.P_E_ACCUMULATE_PJ,
    "periphery.c_wordline_ff": K.P_C_WL_FF, "periphery.v_wordline_v": K.P_V_WL_V,
    "periphery.c_bitline_ff": K.P_C_BL_FF, "periphery.v_bitline_v": K.P_V_BL_V,
    "periphery.e_local_digital_pj": K.P_E_LOCAL_PJ, "periphery.t_local_digital_ns": K.P_T_LOCAL_NS,
    "periphery.p_core_mw": K.P_P_CORE_MW,
    "digital.activation_bits": K.P_ACT_BITS, "digital.e_mac_pj": K.P_E_MAC_PJ,
    "digital.e_softmax_pj": K.P_E_SOFTMAX_PJ, "digital.e_norm_pj": K.P_E_NORM_PJ,
    "digital.e_elementwise_pj": K.P_E_ELEMENTWISE_PJ, "digital.e_sample_pj": K.P_E_SAMPLE_PJ,
    "digital.throughput_gops": K.P_DIGITAL_GOPS,
    "memory.e_sram_pj_per_bit": K.P_E_SRAM_PJ_PER_BIT, "memory.e_noc_pj_per_bit_hop": K.P_E_NOC_PJ_PER_BIT_HOP,
    "memory.avg_hops": K.P_HOPS, "memory.noc_bandwidth_gbps": K.P_NOC_GBPS,
}
ADC_ENERGY_KEYS = ("adc.walden_fom_fj", "adc.schreier_fom_db", "adc.node_nm", "adc.e_step_pj")
"""Swept ADC-law parameters: they re-price the ADC through its energy law (no column of their own)."""
BREAKDOWN = ("dac", "array", "adc", "periphery", "switching", "local_digital", "core_power", "attention",
             "norm_elementwise", "sampling", "sram", "noc", *system.BREAKDOWN)
P_IR_COMP = K.N_PARAMS       # a column the layer kernel does not read: 1 = tile.ir_compensation is on
N_COLUMNS = K.N_PARAMS + 1   # design-point width (the kernels' columns, then P_IR_COMP)


# ----------------------------------------------------------------------------- hardware → design points

def design_row(hw: Hardware) -> np.ndarray:
    """One design point (N_COLUMNS,) from an analog card. Absent components contribute zero cost."""
    q = _card_row(hw)[None, :]
    _resolve_converters(q, hw, {})
    return q[0]


def _card_row(hw: Hardware) -> np.ndarray:
    """The card's columns (N_COLUMNS,), before the converter laws resolve the derived ones."""
    if hw.kind != "analog":
        raise ConfigError(f"{hw.name}: not an analog card (it has a [gpu] table)")
    if hw.digital is None:
        raise ConfigError(f"{hw.name}: digital: the analog cost model needs the [digital] table "
                          "(attention, norms and sampling run there)")
    t, d, q = hw.tile, hw.device, np.zeros(N_COLUMNS)
    q[P_IR_COMP] = t.ir_compensation is not None
    q[[K.P_ROWS, K.P_COLS, K.P_SLICES, K.P_REPL, K.P_TILES_PER_CHIP]] = (
        t.rows, t.cols, t.bit_slices, t.replication, t.tiles_per_chip)
    q[[K.P_G_MIN_US, K.P_G_MAX_US, K.P_V_READ_V, K.P_T_INT_NS, K.P_G_FRAC, K.P_ACTIVITY]] = (
        d.g_min_us, d.g_max_us, d.read_voltage_v, t.t_integrate_ns, t.mean_g_fraction, t.input_activity)
    q[[K.P_READ_PHASES, K.P_ROW_FACTOR, K.P_PHASE_BITS]] = (
        t.read_phases, 2.0 if t.mapping == "differential-rows" else 1.0, 16)
    if hw.dac is not None:
        dac = hw.dac
        q[[K.P_DAC_ON, K.P_DAC_BITS, K.P_DAC_PWM, K.P_DAC_SERIAL, K.P_DAC_DYNAMIC, K.P_E_DAC_PJ,
           K.P_T_DAC_CONV_NS, K.P_DAC_CHARGE, K.P_PHASE_BITS, K.P_T_PHASE_NS]] = (
            1, dac.bits, dac.mode == "pwm", dac.bit_serial, dac.input_range == "dynamic", dac.e_conv_pj,
            dac.t_conv_ns, dac.accumulate == "charge", dac.phase_bits, dac.t_phase_ns)
    if hw.adc is not None:
        q[[K.P_ADC_ON, K.P_ADC_BITS, K.P_COLS_PER_ADC, K.P_T_ADC_CONV_NS]] = (
            1, hw.adc.bits, hw.adc.cols_per_adc, hw.adc.t_conv_ns)
    if hw.periphery is not None:
        pe = hw.periphery
        q[[K.P_E_INTEGRATOR_PJ, K.P_E_SAMPLE_HOLD_PJ, K.P_E_SHIFT_ADD_PJ, K.P_E_ACCUMULATE_PJ,
           K.P_C_WL_FF, K.P_V_WL_V, K.P_C_BL_FF, K.P_V_BL_V, K.P_E_LOCAL_PJ, K.P_T_LOCAL_NS, K.P_P_CORE_MW]] = (
            pe.e_integrator_pj, pe.e_sample_hold_pj, pe.e_shift_add_pj, pe.e_accumulate_pj, pe.c_wordline_ff,
            pe.v_wordline_v, pe.c_bitline_ff, pe.v_bitline_v, pe.e_local_digital_pj, pe.t_local_digital_ns,
            pe.p_core_mw)
    dg = hw.digital
    q[[K.P_ACT_BITS, K.P_E_MAC_PJ, K.P_E_SOFTMAX_PJ, K.P_E_NORM_PJ, K.P_E_ELEMENTWISE_PJ, K.P_E_SAMPLE_PJ,
       K.P_DIGITAL_GOPS]] = (dg.activation_bits, dg.e_mac_pj, dg.e_softmax_pj, dg.e_norm_pj,
                             dg.e_elementwise_pj, dg.e_sample_pj, dg.throughput_gops)
    if hw.memory is not None:
        m = hw.memory
        q[[K.P_E_SRAM_PJ_PER_BIT, K.P_E_NOC_PJ_PER_BIT_HOP, K.P_HOPS, K.P_NOC_GBPS]] = (
            m.e_sram_pj_per_bit, m.e_noc_pj_per_bit_hop, m.avg_hops, m.noc_bandwidth_gbps)
    if t.bit_slices > t.cols:
        raise ConfigError(f"tile.bit_slices: {t.bit_slices} exceeds tile.cols = {t.cols}")
    return q


def _field(key: str) -> dataclasses.Field:
    section, name = key.split(".")
    return next(f for f in dataclasses.fields(COMPONENTS[section]) if f.name == name)


def _check_column(key: str, values: np.ndarray) -> np.ndarray:
    """Type and range checks of an override array against the card field's metadata."""
    f = _field(key)
    choices = {"dac.mode": ("amplitude", "pwm"), "dac.input_range": ("static", "dynamic"),
               "dac.accumulate": ("digital", "charge")}
    if key in choices:
        bad = [v for v in values if v not in choices[key]]
        if bad:
            raise ConfigError(f"{key}: {bad[0]!r} is not one of {', '.join(map(repr, choices[key]))}")
        return (values == choices[key][1]).astype(np.float64)
    if key == "dac.bit_serial":
        if values.dtype != bool:
            raise ConfigError(f"{key}: expected true or false values")
        return values.astype(np.float64)
    try:
        x = values.astype(np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected numbers") from None
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{key}: expected finite numbers")
    if "int" in str(f.type) and not np.all(x == np.round(x)):
        i = int(np.argmax(x != np.round(x)))
        raise ConfigError(f"{key}[{i}]: expected an integer, got {x[i]:g}")
    lo, hi, lo_open = f.metadata.get("lo"), f.metadata.get("hi"), f.metadata.get("lo_open", False)
    bad = np.zeros(x.shape, bool)
    if lo is not None:
        bad |= (x <= lo) if lo_open else (x < lo)
    if hi is not None:
        bad |= x > hi
    if bad.any():
        i = int(np.argmax(bad))
        rng = f"{'(' if lo_open else '['}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
        raise ConfigError(f"{key}[{i}]: {x[i]:g} is outside the allowed range {rng}")
    return x


def design_points(hw: Hardware | Sequence[Hardware],
                  overrides: Mapping[str, Any] | None = None) -> np.ndarray:
    """Design points (N, N_PARAMS): one per card in a sequence, or the card with array overrides.

    Each override is a dotted card key (see ``COLUMNS`` and ``ADC_ENERGY_KEYS``) mapped to a scalar or an
    array of N values; all arrays share N. Values are checked against the card fields' types and ranges.
    """
    if not isinstance(hw, Hardware):
        if overrides:
            raise ConfigError("overrides: give either a list of cards or one card with overrides")
        rows = [design_row(h) for h in hw]
        if not rows:
            raise ConfigError("hardware: no design points given")
        return np.stack(rows)
    base = _card_row(hw)
    overrides = dict(overrides or {})
    arrays = {k: np.atleast_1d(np.asarray(v)) for k, v in overrides.items()}
    sizes = {a.shape[0] for a in arrays.values() if a.ndim == 1 and a.shape[0] != 1}
    if len(sizes) > 1 or any(a.ndim != 1 for a in arrays.values()):
        raise ConfigError(f"overrides: arrays must be 1-D and of one length, got sizes {sorted(sizes)}")
    n = sizes.pop() if sizes else 1
    q = np.repeat(base[None, :], n, axis=0)
    for key, a in arrays.items():
        if key not in COLUMNS and key not in ADC_ENERGY_KEYS:
            allowed = ", ".join(sorted(set(COLUMNS) | set(ADC_ENERGY_KEYS)))
            raise ConfigError(f"{key}: not a cost-model parameter; allowed: {allowed}")
        section = key.split(".")[0]
        if getattr(hw, section) is None:
            raise ConfigError(f"{key}: component '{section}' is off in card {hw.name}")
        if key in COLUMNS:
            q[:, COLUMNS[key]] = np.broadcast_to(_check_column(key, a), (n,))
    _resolve_converters(q, hw, {k.split(".")[1]: np.broadcast_to(_check_column(k, arrays[k]), (n,))
                                for k in ADC_ENERGY_KEYS if k in arrays})
    if np.any(q[:, K.P_G_MIN_US] >= q[:, K.P_G_MAX_US]):
        i = int(np.argmax(q[:, K.P_G_MIN_US] >= q[:, K.P_G_MAX_US]))
        raise ConfigError(f"device.g_min_us[{i}]: {q[i, K.P_G_MIN_US]:g} must be below device.g_max_us "
                          f"({q[i, K.P_G_MAX_US]:g})")
    if np.any(q[:, K.P_SLICES] > q[:, K.P_COLS]):
        i = int(np.argmax(q[:, K.P_SLICES] > q[:, K.P_COLS]))
        raise ConfigError(f"tile.bit_slices[{i}]: {q[i, K.P_SLICES]:g} exceeds tile.cols = {q[i, K.P_COLS]:g}")
    return q


def _resolve_converters(q: np.ndarray, hw: Hardware, adc_law: Mapping[str, np.ndarray]) -> None:
    """Fill the derived columns of ``q`` (N, N_PARAMS) in place by the laws of ``energy.converters``: DAC
    apply time and array conduction time, and the per-column work of one MVM (cycles, integrations,
    conversions, ADC energy and time, shift-adds, integration time). ``adc_law``: swept ADC-law parameters
    (``walden_fom_fj``, ``schreier_fom_db``, ``node_nm``, ``e_step_pj``) as (N,) arrays."""
    dac_on = q[:, K.P_DAC_ON] > 0.5
    serial = dac_on & (q[:, K.P_DAC_SERIAL] > 0.5)
    charge = serial & (q[:, K.P_DAC_CHARGE] > 0.5)
    if np.any(dac_on & ~serial & (q[:, K.P_DAC_CHARGE] > 0.5)):
        raise ConfigError("dac.accumulate: 'charge' needs dac.bit_serial = true (bits are integrated one "
                          "pulse at a time)")
    pwm = dac_on & ~serial & (q[:, K.P_DAC_PWM] > 0.5)
    q[:, K.P_T_DAC_NS], q[:, K.P_T_ARRAY_NS] = CV.dac_times_ns(
        pwm, q[:, K.P_DAC_BITS], q[:, K.P_T_DAC_CONV_NS], q[:, K.P_T_INT_NS])
    q[:, K.P_T_ARRAY_NS] = np.where(charge, q[:, K.P_T_DAC_CONV_NS], q[:, K.P_T_ARRAY_NS])  # the input pulse
    t_cycle = np.maximum(np.where(dac_on, q[:, K.P_T_DAC_NS], 0.0), q[:, K.P_T_INT_NS])
    w = CV.column_work(hw.adc, bit_serial=serial, charge=charge, dac_bits=q[:, K.P_DAC_BITS],
                       phase_bits=q[:, K.P_PHASE_BITS], read_phases=q[:, K.P_READ_PHASES],
                       slices=q[:, K.P_SLICES], adc_bits=q[:, K.P_ADC_BITS], t_conv_ns=q[:, K.P_T_ADC_CONV_NS],
                       t_cycle_ns=t_cycle, t_phase_ns=q[:, K.P_T_PHASE_NS], adc_law=dict(adc_law))
    q[:, K.P_N_CYCLES], q[:, K.P_N_INTEGRATIONS] = w["cycles"], w["integrations"]
    q[:, K.P_N_CONVERSIONS], q[:, K.P_N_SHIFT_ADDS] = w["conversions"], w["shift_adds"]
    q[:, K.P_E_ADC_PJ], q[:, K.P_T_ADC_NS], q[:, K.P_T_FIXED_NS] = w["e_adc_pj"], w["t_adc_ns"], w["t_fixed_ns"]


# ----------------------------------------------------------------------------- shape + schedule → layer arrays

def _layer_stats(shape: ModelShape, stats: Mapping | None, hw: Hardware) -> dict[str, tuple[float, float, float]]:
    """Per layer kind: (mean |x|/FS, mean x²/FS², conductance fraction), averaged over the modules of that kind
    (weighted by MVMs seen). The conductance fraction is taken relative to the window of ``hw``."""
    if not stats:
        return {}
    layers = stats.get("layers") if isinstance(stats, Mapping) else None
    if not isinstance(layers, Mapping):
        raise ConfigError("stats: expected {'layers': {module_name: {...}}}")
    kinds = {ly.kind: ly for ly in shape.linear_layers()}
    sums: dict[str, np.ndarray] = {}
    d = hw.device
    for name, s in layers.items():
        kind = _match_kind(name, s, kinds)
        try:
            w = float(s["mvms"])
            row = np.array([w, w * float(s["mean_abs_x_norm"]), w * float(s["mean_x2_norm"]),
                            w * (float(s["mean_g_us"]) - d.g_min_us) / (d.g_max_us - d.g_min_us)])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"stats.layers.{name}: missing or bad field ({e})") from None
        sums[kind] = sums.get(kind, np.zeros(4)) + row
    return {k: (v[1] / v[0], v[2] / v[0], v[3] / v[0]) for k, v in sums.items() if v[0] > 0}


_ALIASES = {"qkv": "attn.qkv", "attn_qkv": "attn.qkv", "c_attn": "attn.qkv", "attn.out": "attn.out",
            "attn_out": "attn.out", "o_proj": "attn.out", "attn.c_proj": "attn.out", "mlp.up": "mlp.up",
            "up_proj": "mlp.up", "c_fc": "mlp.up", "mlp.0": "mlp.up", "mlp.down": "mlp.down",
            "down_proj": "mlp.down", "mlp.c_proj": "mlp.down", "mlp.2": "mlp.down", "mlp.gate": "mlp.gate",
            "gate_proj": "mlp.gate", "head": "head", "lm_head": "head", "output_layer.linear": "head",
            "adaln_modulation": "cond.adaln", "sigma_map.mlp.0": "cond.mlp1", "sigma_map.mlp.2": "cond.mlp2",
            "output_layer.adaln_modulation": "cond.final"}
# MDLM's DiT names (models/dit.py): the time embedding ``sigma_map.mlp.{0,2}`` and the final layer's modulation
# ``output_layer.adaLN_modulation``, matched on three and two name parts before "mlp.0"/"adaln_modulation".


def _match_kind(name: str, s: Mapping, kinds: Mapping) -> str:
    parts = name.lower().split(".")
    for n in (3, 2, 1):
        kind = _ALIASES.get(".".join(parts[-n:]))
        if kind in kinds:
            break
    else:
        dims = (s.get("in_features"), s.get("out_features"))
        found = [k for k, ly in kinds.items() if (ly.in_features, ly.out_features) == dims]
        if len(found) != 1:
            raise ConfigError(f"stats.layers.{name}: cannot match this module ({dims[0]}×{dims[1]}) to one "
                              f"weight matrix of the shape ({', '.join(kinds)})")
        kind = found[0]
    ly = kinds[kind]
    if (s.get("in_features"), s.get("out_features")) != (ly.in_features, ly.out_features):
        raise ConfigError(f"stats.layers.{name}: {s.get('in_features')}×{s.get('out_features')} does not "
                          f"match {kind} of the shape ({ly.in_features}×{ly.out_features})")
    return kind


@dataclasses.dataclass(frozen=True)
class LayerArrays:
    """Kernel inputs for one (shape, schedule): per layer entry (L,) arrays."""

    kinds: tuple[str, ...]
    in_f: np.ndarray
    out_f: np.ndarray
    copies: np.ndarray
    mvms: np.ndarray
    per: np.ndarray
    abs_x: np.ndarray
    x2: np.ndarray
    g_frac: np.ndarray


def layer_arrays(shape: ModelShape, work: Work, stats: Mapping | None = None,
                 hw: Hardware | None = None) -> LayerArrays:
    layers = shape.linear_layers()
    per_code = {"token": K.PER_TOKEN, "head": K.PER_HEAD, "pass": K.PER_PASS}
    runs = {"token": work.totals["token_forwards"], "head": work.totals["head_evals"],
            "pass": work.totals["forward_passes"]}
    st = _layer_stats(shape, stats, hw) if stats else {}
    nan3 = (math.nan, math.nan, math.nan)
    return LayerArrays(
        kinds=tuple(ly.kind for ly in layers),
        in_f=np.array([ly.in_features for ly in layers], float),
        out_f=np.array([ly.out_features for ly in layers], float),
        copies=np.array([ly.copies for ly in layers], float),
        mvms=np.array([ly.copies * runs[ly.per] for ly in layers], float),
        per=np.array([per_code[ly.per] for ly in layers], np.int64),
        abs_x=np.array([st.get(ly.kind, nan3)[0] for ly in layers]),
        x2=np.array([st.get(ly.kind, nan3)[1] for ly in layers]),
        g_frac=np.array([st.get(ly.kind, nan3)[2] for ly in layers]))


def kv_reads(work: Work, query_tile: int) -> float:
    """Key (and value) rows read per layer per sequence: a read serves a tile of ``query_tile`` queries,
    so a pass feeding n positions with p (query, key) pairs reads ceil(n / tile) · p / n rows (each query
    tile reads the keys its queries see; exact for bidirectional passes, the mean for causal ones)."""
    n = np.maximum(work.positions, 1).astype(np.float64)                    # (F,)
    return float((work.repeats * np.ceil(n / query_tile) * work.attn_pairs / n).sum())


def digital_counts(shape: ModelShape, work: Work, query_tile: int = 1) -> dict[str, float]:
    """Work on the digital units and in SRAM outside the weight MVMs, per sequence (design independent).

    Per token-forward and block: two norms over d_model; residual adds 2·d_model; the MLP nonlinearity
    (GELU: d_ff; SwiGLU: SiLU and the gate product, 2·d_ff); rotary embedding of q and k
    ((n_heads + n_kv_heads)·head_dim); adaLN modulation and gates (6·d_model) when time-conditioned;
    K and V written to SRAM (2·n_kv_heads·head_dim). Per token-forward: the embedding row read from SRAM,
    plus the learned-position add (d_model). Per (query, key) pair and block: 2·n_heads·head_dim MACs
    (QKᵀ and AV) and n_heads softmax elements. K and V are read from SRAM (2·n_kv_heads·head_dim per key,
    shared by the heads of a group) once per tile of ``query_tile`` queries (:func:`kv_reads`; 1 = once
    per pair). Per head evaluation: the final norm (d_model) and sampling over the vocabulary.
    """
    s, t = shape, work.totals
    d, hd, nl = s.d_model, s.head_dim, s.n_layers
    act = s.d_ff if s.mlp == "gelu" else 2 * s.d_ff
    rope = (s.n_heads + s.n_kv_heads) * hd if s.positions == "rotary" else 0
    adaln = 6 * d if s.cond_dim else 0
    tok_elem = 2 * d + act + rope + adaln                                # per position per block
    pos_elem = d if s.positions == "learned" else 0
    tf, pairs, heads = t["token_forwards"], t["attention_pairs"], t["head_evals"]
    kv_el = 2 * s.n_kv_heads * hd
    return {
        "attention_macs": float(pairs) * nl * 2 * s.n_heads * hd,
        "softmax_elements": float(pairs) * nl * s.n_heads,
        "norm_elements": float(tf) * nl * 2 * d + float(heads) * d,
        "elementwise_ops": float(tf) * (nl * tok_elem + pos_elem),
        "sample_elements": float(heads) * s.vocab_size,
        "kv_elements_written": float(tf) * nl * kv_el,
        "kv_elements_read": kv_reads(work, query_tile) * nl * kv_el,
        "embedding_elements_read": float(tf) * d,
        # time model (ops on the digital units): per position per block, per head position, per pair
        "tok_ops": float(2 * d + tok_elem),
        "head_ops": float(d + s.vocab_size),
        "attn_ops_per_pair": float(4 * s.n_heads * hd + s.n_heads),
    }


# ----------------------------------------------------------------------------- evaluation

def run_layer_kernel(la: LayerArrays, q: np.ndarray, backend: str = "numba"):
    """The layer kernel (or its NumPy twin) on ``la`` at the design points ``q`` (P, N_PARAMS):
    (acc (P, N_ACC), t_lat_ns (P, L), t_ii_ns (P, L))."""
    n, n_l = q.shape[0], la.in_f.shape[0]
    args = (la.in_f, la.out_f, la.copies, la.mvms, la.abs_x, la.x2, la.g_frac, q)
    if backend == "numba":
        acc, t_lat, t_ii = np.zeros((n, K.N_ACC)), np.zeros((n, n_l)), np.zeros((n, n_l))
        K.layer_kernel(*args, acc, t_lat, t_ii)
        return acc, t_lat, t_ii
    if backend == "numpy":
        return K.layer_kernel_np(*args)
    raise ConfigError(f"backend: {backend!r} is not one of 'numba', 'numpy'")


def evaluate_points(shape: ModelShape, work: Work, q: np.ndarray, stats: Mapping | None = None,
                    hw: Hardware | None = None, batch: int = 1, backend: str = "numba",
                    systems: Sequence | None = None) -> dict[str, Any]:
    """Cost of one sequence (of a batch of ``batch``) at every design point of ``q`` (N, N_PARAMS).
    ``systems``: each point's [system] table (default: ``hw.system`` for every point)."""
    if systems is None:
        systems = [None if hw is None else hw.system] * q.shape[0]
    la = layer_arrays(shape, work, stats, hw)
    n = q.shape[0]
    q = q.copy()                   # one chip's digital units → the chips of a block (energy.system)
    multi = np.array([s is not None for s in systems])             # without [system]: one chip
    q[:, K.P_DIGITAL_GOPS] *= np.where(multi, system.digital_scale(la, q, shape.n_layers), 1.0)
    acc, t_lat, t_ii = run_layer_kernel(la, q, backend)
    comp_ops, t_lat, t_ii = ir_compensation_work(la, q, t_lat, t_ii)
    dc = digital_counts(shape, work, query_tile(hw))
    cw = work.compressed()
    phase = (cw.repeats.astype(float), cw.positions * float(batch), cw.head_positions * float(batch),
             cw.attn_pairs * float(batch))
    args = (t_lat, t_ii, la.per, float(shape.n_layers), dc["tok_ops"], dc["head_ops"],
            dc["attn_ops_per_pair"], *phase, q)
    if backend == "numba":
        t_ns = np.zeros(n)
        K.latency_kernel(*args, t_ns)
    else:
        t_ns = K.latency_kernel_np(*args)

    acct = system.account(shape, work, la, q, systems, batch, dc, t_ii, q[:, K.P_DIGITAL_GOPS])
    t_ns = t_ns + acct["link_ns"] + acct["dram_ns"]
    bits = q[:, K.P_ACT_BITS]
    extra_sram_bits = (dc["kv_elements_written"] + dc["kv_elements_read"] + dc["embedding_elements_read"]) * bits
    pj = {
        "dac": acc[:, K.A_E_DAC_PJ], "array": acc[:, K.A_E_ARRAY_PJ], "adc": acc[:, K.A_E_ADC_PJ],
        "periphery": acc[:, K.A_E_PERIPHERY_PJ], "switching": acc[:, K.A_E_SWITCH_PJ],
        "local_digital": acc[:, K.A_E_LOCAL_PJ], "core_power": acc[:, K.A_E_CORE_PJ],
        "attention": dc["attention_macs"] * q[:, K.P_E_MAC_PJ] + dc["softmax_elements"] * q[:, K.P_E_SOFTMAX_PJ],
        "norm_elementwise": dc["norm_elements"] * q[:, K.P_E_NORM_PJ]
                            + dc["elementwise_ops"] * q[:, K.P_E_ELEMENTWISE_PJ],
        "sampling": dc["sample_elements"] * q[:, K.P_E_SAMPLE_PJ],
        "sram": acc[:, K.A_E_SRAM_PJ] + extra_sram_bits * q[:, K.P_E_SRAM_PJ_PER_BIT],
        "noc": acc[:, K.A_E_NOC_PJ],
    }
    sys_pj = system.energies_pj(acct, q, t_ns * 1e-9, batch)
    pj["sram"] = pj["sram"] - sys_pj.pop("sram_moved")
    pj.update(sys_pj)
    if comp_ops is not None:  # the per-column IR-drop correction, its own line (absent on cards without it)
        pj["ir_compensation"] = comp_ops * q[:, K.P_E_MAC_PJ]
    breakdown_j = {k: np.asarray(v, float) * 1e-12 for k, v in pj.items()}
    e_seq = sum(breakdown_j.values())
    t_seq = t_ns * 1e-9
    g = work.generated_tokens
    sram_bits = acc[:, K.A_SRAM_BITS] + extra_sram_bits - acct["sram_bits_moved"]
    counts = {
        "token_forwards": np.full(n, float(work.totals["token_forwards"])),
        "head_evals": np.full(n, float(work.totals["head_evals"])),
        "forward_passes": np.full(n, float(work.totals["forward_passes"])),
        "attention_pairs": np.full(n, float(work.totals["attention_pairs"])),
        "mvms": acc[:, K.A_MVMS], "macs": acc[:, K.A_MACS],
        "dac_conversions": acc[:, K.A_N_DAC], "adc_conversions": acc[:, K.A_N_ADC],
        "dac_range_ops": acc[:, K.A_N_RANGE_OPS],
        "column_reads": acc[:, K.A_N_COLUMN_READS], "shift_adds": acc[:, K.A_N_SHIFT_ADD],
        "accumulations": acc[:, K.A_N_ACCUMULATE], "integrations": acc[:, K.A_N_INTEGRATIONS],
        "wordline_toggles": acc[:, K.A_N_WL_TOGGLES], "local_digital_outputs": acc[:, K.A_N_LOCAL_OUTPUTS],
        "tile_busy_s": acc[:, K.A_TILE_NS] * 1e-9,
        "digital_ops": 2 * dc["attention_macs"] + dc["softmax_elements"] + dc["norm_elements"]
                       + dc["elementwise_ops"] + dc["sample_elements"] + acc[:, K.A_N_RANGE_OPS]
                       + (2 * comp_ops if comp_ops is not None else 0.0),
        "attention_macs": np.full(n, dc["attention_macs"]),
        "sram_bytes": sram_bits / 8.0, "noc_bytes_hops": acc[:, K.A_NOC_BIT_HOPS] / 8.0,
        "interconnect_bytes": acct["link_bits"] / 8.0, "dram_bytes": acct["dram_bits"] / 8.0,
        "bytes_moved": (sram_bits + acc[:, K.A_NOC_BIT_HOPS] + acct["link_bits"] + acct["dram_bits"]) / 8.0,
    }
    if comp_ops is not None:
        counts["ir_compensation_macs"] = comp_ops
    tiles = acc[:, K.A_TILES]
    return {
        "energy_per_sequence_j": e_seq, "energy_per_token_j": e_seq / g,
        "latency_per_sequence_s": t_seq, "latency_per_token_s": t_seq / g,
        "tokens_per_s": batch * g / t_seq,
        "tiles": tiles, "fits": (tiles <= q[:, K.P_TILES_PER_CHIP]) | acct["has"],
        **{k: acct[k] for k in ("chips", "area_mm2", "core_area_mm2", "static_power_w")},
        "breakdown_j": breakdown_j, "counts": counts,
        "tile_utilization": utilization(la, q),
    }


def query_tile(hw: Hardware | Sequence[Hardware] | None) -> int:
    """The cards' ``digital.attention_query_tile`` (one value: the SRAM count is design independent)."""
    from analogdiff.config import Digital

    cards = [hw] if isinstance(hw, Hardware) else list(hw or [])
    tiles = {c.digital.attention_query_tile for c in cards if c.digital is not None}
    if len(tiles) > 1:
        raise ConfigError(f"digital.attention_query_tile: the cards of one call must share it, got {sorted(tiles)}")
    return tiles.pop() if tiles else Digital.__dataclass_fields__["attention_query_tile"].default


def ir_compensation_columns(la: LayerArrays, q: np.ndarray) -> np.ndarray:
    """(P, L) tile columns read per MVM, one per ADC output after the bit-serial shift-add:
    ``⌈in / rows⌉ · out · bit_slices`` — each gets one multiply-add of the IR-drop correction
    (``crossbar/compensation.py``: a gain and an offset per column, applied after the ADC)."""
    r = np.ceil(la.in_f[None, :] / q[:, K.P_ROWS][:, None])
    return r * la.out_f[None, :] * q[:, K.P_SLICES][:, None]


def ir_compensation_work(la: LayerArrays, q: np.ndarray, t_lat_ns: np.ndarray, t_ii_ns: np.ndarray):
    """The IR-drop correction's work at the design points where ``tile.ir_compensation`` is on: its
    multiply-adds over the run (P,) (None when no point has it: nothing changes), and the layer latencies
    and intervals with the correction as a digital stage after each MVM (columns / digital throughput;
    ops per GOPS = ns), which the layer pipeline overlaps like any other stage. Cards that price a local
    digital unit per tile output (``periphery.e_local_digital_pj`` > 0: HERMES's LDPU, whose gain/offset FMAs
    are this correction) already pay for it there and get no second line."""
    on = q[:, P_IR_COMP] > 0.5 if q.shape[1] > P_IR_COMP else np.zeros(q.shape[0], bool)
    on &= q[:, K.P_E_LOCAL_PJ] == 0.0  # a priced local digital unit (HERMES's LDPU) already does this correction
    if not on.any():
        return None, t_lat_ns, t_ii_ns
    cols = ir_compensation_columns(la, q) * on[:, None]                  # (P, L) per MVM
    t_ns = cols / q[:, K.P_DIGITAL_GOPS][:, None]
    return (cols * la.mvms[None, :]).sum(axis=1), t_lat_ns + t_ns, np.maximum(t_ii_ns, t_ns)


def utilization(la: LayerArrays, q: np.ndarray) -> np.ndarray:
    """Fraction of programmed-tile devices holding weights (replicas count once)."""
    w = (la.in_f * la.out_f * la.copies)[None, :] * q[:, K.P_SLICES][:, None]       # (P, L) weight cells
    r = np.ceil(la.in_f[None, :] / q[:, K.P_ROWS][:, None])
    c = np.ceil(la.out_f[None, :] / np.floor(q[:, K.P_COLS] / q[:, K.P_SLICES])[:, None])
    cells = r * c * la.copies[None, :] * (q[:, K.P_ROWS] * q[:, K.P_COLS])[:, None]
    return w.sum(axis=1) / cells.sum(axis=1)


MVM_LINES = {"dac_pj": K.A_E_DAC_PJ, "array_pj": K.A_E_ARRAY_PJ, "adc_pj": K.A_E_ADC_PJ,
             "periphery_pj": K.A_E_PERIPHERY_PJ, "switching_pj": K.A_E_SWITCH_PJ,
             "local_digital_pj": K.A_E_LOCAL_PJ, "core_power_pj": K.A_E_CORE_PJ}
"""The per-MVM energy lines of a tile (pJ) and their accumulators."""


def mvm_energy(hw: Hardware, in_features: int, out_features: int, backend: str = "numba") -> dict[str, float]:
    """Energy (pJ, by line) and time (ns) of one MVM of an in×out layer on the card's tiles, with the card's
    default activity — the unit the chip papers report (TOPS/W = 2·in·out / energy). ``t_mvm_ns`` is the
    array-and-converter time (what chips report as MVM latency); ``t_local_ns`` the local digital after it."""
    q = design_row(hw)[None, :]
    one = np.array([1.0])
    args = (np.array([float(in_features)]), np.array([float(out_features)]), one, one,
            np.array([math.nan]), np.array([math.nan]), np.array([math.nan]), q)
    if backend == "numba":
        acc, t_lat, t_ii = np.zeros((1, K.N_ACC)), np.zeros((1, 1)), np.zeros((1, 1))
        K.layer_kernel(*args, acc, t_lat, t_ii)
    else:
        acc, t_lat, t_ii = K.layer_kernel_np(*args)
    out = {k: float(acc[0, j]) for k, j in MVM_LINES.items()}
    out["total_pj"] = sum(out.values())
    out["ops"] = 2.0 * in_features * out_features
    out["tops_per_w"] = out["ops"] / out["total_pj"]          # ops/pJ = 1e12 ops/J = TOPS/W
    outs = min(out_features, math.floor(q[0, K.P_COLS] / q[0, K.P_SLICES]))
    out["t_local_ns"] = outs * q[0, K.P_T_LOCAL_NS]
    t_noc = in_features * q[0, K.P_ACT_BITS] / q[0, K.P_NOC_GBPS] if q[0, K.P_NOC_GBPS] > 0 else 0.0
    out["t_mvm_ns"] = t_lat[0, 0] - t_noc - out["t_local_ns"]
    out["integrations"] = float(acc[0, K.A_N_INTEGRATIONS])
    out["adc_conversions"] = float(acc[0, K.A_N_ADC])
    out["wordline_toggles"] = float(acc[0, K.A_N_WL_TOGGLES])
    return out
