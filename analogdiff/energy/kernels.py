"""numba kernels of the analog cost model, each with a NumPy twin that the tests compare against.

Pure functions of arrays: no config objects, no I/O. ``analog.py`` binds a hardware card to the design-point
parameter rows (columns ``P_*``) and a model shape to the per-layer arrays.

Layer kernel — for every design point p and layer entry l (one weight-matrix kind, ``copies`` instances,
``mvms`` input vectors over the sequence), with the layer on ``r × c`` tiles
(``r = ⌈in / rows⌉``, ``c = ⌈out / ⌊cols / bit_slices⌋⌉``). The work of one physical column per MVM
(input cycles, integration steps, conversions, ADC energy and time, shift-adds) is resolved per design point
by ``energy.converters.column_work`` into the columns ``P_N_CYCLES`` … ``P_T_FIXED_NS``:

* DAC conversions per MVM: ``in · c · cycles`` (each column of tiles drives its own rows)
* physical columns read per MVM: ``r · out · bit_slices``; per column: ``integrations`` integrator steps,
  ``cycles`` sample-and-holds, the ADC energy of its conversions, ``shift_adds`` shift-adds
* accumulations per MVM: ``(r − 1) · out`` (row-tile partial sums into the layer output)
* word lines: ``in · row_factor · c · cycles`` toggles of C_WL·V_WL² (row_factor 2 when a weight's pair sits on
  two rows); bit lines: ``r · out · bit_slices · cycles`` charges of C_BL·V_BL²
* local digital: ``r · out`` tile outputs, ``e_local_digital_pj`` each
* core power: ``p_core_mw`` × the MVM time of each of the ``r · c`` tiles (mW · ns = pJ)
* array energy per MVM: ``V² · Ḡ · t_on · 2 · bit_slices · in · out · activity · read_phases`` (t_on: the PWM
  window, the input pulse with charge accumulation, else the integration time; ``energy.converters``) where
  activity is the mean |x|/FS (PWM duty), mean x²/FS² (amplitude), or the expected number of 1 bits over the
  cycles for half-normal inputs (bit-serial); Ḡ = g_min + g_frac · (g_max − g_min)
* SRAM: the input and output vectors (``(in + out) · activation_bits`` bits); NoC: the input to each tile
  column and each row tile's partial sums out (``(in · c + out · r) · activation_bits · hops`` bit-hops)
* dynamic input range: ``in`` compares per MVM (the vector's abs-max) at ``e_elementwise_pj``, priced with
  the DAC, and ``in / throughput`` before the inputs can be applied
* MVM time: ``t_range + t_fixed + rounds · t_adc`` with ``rounds = min(cols_per_adc, used columns)``; the
  local digital streams the tile's outputs (``t_local = used outputs · t_local_digital_ns``); NoC time
  ``in · activation_bits / bandwidth``; latency = MVM + local + NoC time, initiation interval
  ``max(t_mvm / replication, t_local / replication, t_noc)``.

Latency kernel — one forward pass over n positions (all sequences of a batch) costs, per block,
``Σ stage latencies + (n − 1) · slowest stage interval`` (the layer pipeline with n tokens in flight)
plus the attention barrier (digital ops / throughput); the LM head segment the same over the head
positions; the time-conditioning MVMs once per pass.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# ----------------------------------------------------------------------------- design-point columns
(P_ROWS, P_COLS, P_SLICES, P_REPL, P_TILES_PER_CHIP,
 P_G_MIN_US, P_G_MAX_US, P_V_READ_V, P_T_INT_NS, P_G_FRAC, P_ACTIVITY,
 P_DAC_ON, P_DAC_BITS, P_DAC_PWM, P_DAC_SERIAL, P_E_DAC_PJ, P_T_DAC_NS,
 P_ADC_ON, P_E_ADC_PJ, P_COLS_PER_ADC, P_T_ADC_NS,
 P_E_INTEGRATOR_PJ, P_E_SAMPLE_HOLD_PJ, P_E_SHIFT_ADD_PJ, P_E_ACCUMULATE_PJ,
 P_ACT_BITS, P_E_SRAM_PJ_PER_BIT, P_E_NOC_PJ_PER_BIT_HOP, P_HOPS, P_NOC_GBPS,
 P_E_MAC_PJ, P_E_SOFTMAX_PJ, P_E_NORM_PJ, P_E_ELEMENTWISE_PJ, P_E_SAMPLE_PJ, P_DIGITAL_GOPS,
 P_DAC_DYNAMIC, P_T_ARRAY_NS, P_ADC_BITS, P_T_DAC_CONV_NS, P_T_ADC_CONV_NS,
 P_DAC_CHARGE, P_PHASE_BITS, P_T_PHASE_NS, P_READ_PHASES, P_ROW_FACTOR,
 P_C_WL_FF, P_V_WL_V, P_C_BL_FF, P_V_BL_V, P_E_LOCAL_PJ, P_T_LOCAL_NS, P_P_CORE_MW,
 P_N_CYCLES, P_N_INTEGRATIONS, P_N_CONVERSIONS, P_N_SHIFT_ADDS, P_T_FIXED_NS) = range(58)
N_PARAMS = 58
"""Columns the kernels read. P_T_DAC_NS (time to apply one input), P_T_ARRAY_NS (time a device conducts
at full scale), and the per-column work of one MVM — P_N_CYCLES, P_N_INTEGRATIONS, P_N_CONVERSIONS,
P_N_SHIFT_ADDS, P_E_ADC_PJ (ADC energy, all conversions), P_T_ADC_NS (ADC time, all conversions) and
P_T_FIXED_NS (integration and phase time) — are resolved from the card columns by ``energy.converters``."""

# ----------------------------------------------------------------------------- layer accumulators
(A_E_DAC_PJ, A_E_ARRAY_PJ, A_E_ADC_PJ, A_E_PERIPHERY_PJ, A_E_SRAM_PJ, A_E_NOC_PJ,
 A_N_DAC, A_N_ADC, A_N_COLUMN_READS, A_N_SHIFT_ADD, A_N_ACCUMULATE, A_TILES,
 A_SRAM_BITS, A_NOC_BIT_HOPS, A_MACS, A_MVMS, A_N_RANGE_OPS,
 A_E_SWITCH_PJ, A_E_LOCAL_PJ, A_E_CORE_PJ, A_N_INTEGRATIONS, A_N_WL_TOGGLES, A_N_LOCAL_OUTPUTS,
 A_TILE_NS) = range(24)
N_ACC = 24

PER_TOKEN, PER_HEAD, PER_PASS = 0, 1, 2


MAX_EXACT_INTERVALS = 256
"""Bits whose code period repeats more than this often over full scale use the smooth-density limit."""


@njit(cache=True)
def bit_serial_activity(mean_abs_x: float, bits: float) -> float:
    """Sum over the bit cycles of the fraction of rows driven (expected number of 1 bits per input).

    |x| is half-normal with mean ``mean_abs_x`` (full scale 1), quantized to m = bits − 1 magnitude bits
    (q = min(⌊|x| 2^m⌋, 2^m − 1)); bit k (weight w = 2^k / 2^m) is set on the intervals
    [(2j+1) w, (2j+2) w) and for clipped inputs (|x| ≥ 1): P = Σ_j S((2j+1)w) − S((2j+2)w) + S(1) with S the
    half-normal survival function erfc(x / (μ √π)). Beyond MAX_EXACT_INTERVALS intervals the smooth limit
    S(w) − S(2w)/2 is used. bits < 2: a 1-bit input, activity = mean |x|.
    """
    if bits < 2.0:
        return mean_abs_x
    if mean_abs_x <= 0.0:
        return 0.0
    m = int(bits) - 1
    inv = 1.0 / (mean_abs_x * math.sqrt(math.pi))
    clipped = math.erfc(inv)
    total = 0.0
    for k in range(m):
        w = 2.0 ** (k - m)
        n_int = 2 ** (m - k - 1)
        if n_int > MAX_EXACT_INTERVALS:
            total += math.erfc(w * inv) - 0.5 * math.erfc(2.0 * w * inv)
            continue
        for j in range(n_int):
            total += math.erfc((2 * j + 1) * w * inv) - math.erfc((2 * j + 2) * w * inv)
        total += clipped
    return total


def bit_serial_activity_np(mean_abs_x: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`bit_serial_activity`, broadcasting over both arguments."""
    from scipy.special import erfc as _erfc

    mu, bits = np.broadcast_arrays(np.asarray(mean_abs_x, float), np.asarray(bits, float))
    out = np.where(bits < 2.0, mu, 0.0)
    for b in np.unique(bits[(bits >= 2.0) & (mu > 0.0)]):
        sel = (bits == b) & (mu > 0.0)
        m = int(b) - 1
        inv = 1.0 / (mu[sel] * math.sqrt(math.pi))                       # (N,)
        total = np.zeros_like(inv)
        for k in range(m):
            w = 2.0 ** (k - m)
            n_int = 2 ** (m - k - 1)
            if n_int > MAX_EXACT_INTERVALS:
                total += _erfc(w * inv) - 0.5 * _erfc(2.0 * w * inv)
                continue
            j = np.arange(n_int)                                          # (J,)
            total += (_erfc(((2 * j + 1) * w)[None, :] * inv[:, None])
                      - _erfc(((2 * j + 2) * w)[None, :] * inv[:, None])).sum(axis=1) + _erfc(inv)
        out[sel] = total
    return out


@njit(cache=True)
def layer_kernel(in_f, out_f, copies, mvms, abs_x, x2, g_frac, params, acc, t_lat_ns, t_ii_ns):
    """Fill ``acc`` (P, N_ACC) with per-sequence sums over layers and ``t_lat_ns``/``t_ii_ns`` (P, L).

    in_f, out_f, copies, mvms: (L,) layer entries; abs_x, x2, g_frac: (L,) measured mean |x|/FS, x²/FS²
    and conductance fraction, NaN = the design point's default; params: (P, N_PARAMS).
    """
    n_points, n_layers = params.shape[0], in_f.shape[0]
    # bit-serial activity depends only on (mean |x|, bits): a table per measured layer over bits 0..16
    serial_table = np.full((n_layers, 17), np.nan)          # filled on first use
    # and for the default activity of the first design point (sweeps usually keep it)
    base_activity = params[0, P_ACTIVITY] if n_points else 0.0
    default_table = np.full(17, np.nan)
    for p in range(n_points):
        q = params[p]
        rows, cols, slices, repl = q[P_ROWS], q[P_COLS], q[P_SLICES], q[P_REPL]
        dac_on, adc_on = q[P_DAC_ON] > 0.5, q[P_ADC_ON] > 0.5
        serial = dac_on and q[P_DAC_SERIAL] > 0.5
        pwm = dac_on and (not serial) and q[P_DAC_PWM] > 0.5
        cycles, phases = q[P_N_CYCLES], q[P_READ_PHASES]
        outs_per_tile = math.floor(cols / slices)
        e_dev_pj = q[P_V_READ_V] ** 2 * q[P_T_ARRAY_NS] * 1e-3        # pJ per µS of device, full-scale read
        e_wl_pj = q[P_C_WL_FF] * q[P_V_WL_V] ** 2 * 1e-3               # fF·V² = 1e-3 pJ
        e_bl_pj = q[P_C_BL_FF] * q[P_V_BL_V] ** 2 * 1e-3
        dynamic = dac_on and q[P_DAC_DYNAMIC] > 0.5
        serial_default = 0.0
        if serial:
            if q[P_ACTIVITY] == base_activity:
                b = int(q[P_DAC_BITS])
                if math.isnan(default_table[b]):
                    default_table[b] = bit_serial_activity(base_activity, q[P_DAC_BITS])
                serial_default = default_table[b]
            else:
                serial_default = bit_serial_activity(q[P_ACTIVITY], q[P_DAC_BITS])
        for l in range(n_layers):
            n_in, n_out, n_mvm = in_f[l], out_f[l], mvms[l]
            measured = not math.isnan(abs_x[l])
            mu = abs_x[l] if measured else q[P_ACTIVITY]
            if serial:
                if measured:
                    b = int(q[P_DAC_BITS])
                    if math.isnan(serial_table[l, b]):
                        serial_table[l, b] = bit_serial_activity(abs_x[l], q[P_DAC_BITS])
                    act = serial_table[l, b]
                else:
                    act = serial_default
            elif pwm:
                act = mu
            elif not math.isnan(x2[l]):
                act = x2[l]
            else:
                act = min(1.0, 0.5 * math.pi * mu * mu)
            gf = g_frac[l] if not math.isnan(g_frac[l]) else q[P_G_FRAC]
            g_us = q[P_G_MIN_US] + gf * (q[P_G_MAX_US] - q[P_G_MIN_US])
            r = math.ceil(n_in / rows)
            c = math.ceil(n_out / outs_per_tile)
            n_dac = n_in * c * cycles if dac_on else 0.0
            n_rng = n_in if dynamic else 0.0                           # compares of the abs-max
            n_phys = r * n_out * slices                                # physical columns read
            n_col = n_phys * cycles
            n_adc = n_phys * q[P_N_CONVERSIONS] if adc_on else 0.0
            n_int = n_phys * q[P_N_INTEGRATIONS]
            n_sa = n_phys * q[P_N_SHIFT_ADDS]
            n_acc = (r - 1.0) * n_out
            n_wl = n_in * q[P_ROW_FACTOR] * c * cycles
            n_loc = r * n_out
            sram_bits = (n_in + n_out) * q[P_ACT_BITS]
            noc_bh = (n_in * c + n_out * r) * q[P_ACT_BITS] * q[P_HOPS]
            used_cols = min(n_out, outs_per_tile) * slices
            rounds = min(q[P_COLS_PER_ADC], used_cols) if adc_on else 0.0
            t_core = q[P_T_FIXED_NS] + (rounds * q[P_T_ADC_NS] if adc_on else 0.0)
            t_mvm = n_rng / q[P_DIGITAL_GOPS] + t_core
            t_local = min(n_out, outs_per_tile) * q[P_T_LOCAL_NS]
            a = acc[p]
            a[A_E_DAC_PJ] += n_mvm * (n_dac * q[P_E_DAC_PJ] + n_rng * q[P_E_ELEMENTWISE_PJ])
            a[A_N_RANGE_OPS] += n_mvm * n_rng
            a[A_E_ARRAY_PJ] += n_mvm * e_dev_pj * g_us * 2.0 * slices * n_in * n_out * act * phases
            a[A_E_ADC_PJ] += n_mvm * (n_phys * q[P_E_ADC_PJ] if adc_on else 0.0)
            a[A_E_PERIPHERY_PJ] += n_mvm * (n_int * q[P_E_INTEGRATOR_PJ] + n_col * q[P_E_SAMPLE_HOLD_PJ]
                                            + n_sa * q[P_E_SHIFT_ADD_PJ] + n_acc * q[P_E_ACCUMULATE_PJ])
            a[A_E_SWITCH_PJ] += n_mvm * (n_wl * e_wl_pj + n_col * e_bl_pj)
            a[A_E_LOCAL_PJ] += n_mvm * n_loc * q[P_E_LOCAL_PJ]
            a[A_E_CORE_PJ] += n_mvm * r * c * q[P_P_CORE_MW] * t_core
            a[A_E_SRAM_PJ] += n_mvm * sram_bits * q[P_E_SRAM_PJ_PER_BIT]
            a[A_E_NOC_PJ] += n_mvm * noc_bh * q[P_E_NOC_PJ_PER_BIT_HOP]
            a[A_N_DAC] += n_mvm * n_dac
            a[A_N_ADC] += n_mvm * n_adc
            a[A_N_COLUMN_READS] += n_mvm * n_col
            a[A_N_SHIFT_ADD] += n_mvm * n_sa
            a[A_N_ACCUMULATE] += n_mvm * n_acc
            a[A_N_INTEGRATIONS] += n_mvm * n_int
            a[A_N_WL_TOGGLES] += n_mvm * n_wl
            a[A_N_LOCAL_OUTPUTS] += n_mvm * n_loc
            a[A_TILE_NS] += n_mvm * r * c * t_core
            a[A_TILES] += r * c * repl * copies[l]
            a[A_SRAM_BITS] += n_mvm * sram_bits
            a[A_NOC_BIT_HOPS] += n_mvm * noc_bh
            a[A_MACS] += n_mvm * n_in * n_out
            a[A_MVMS] += n_mvm
            t_noc = n_in * q[P_ACT_BITS] / q[P_NOC_GBPS] if q[P_NOC_GBPS] > 0.0 else 0.0
            t_lat_ns[p, l] = t_mvm + t_local + t_noc
            t_ii_ns[p, l] = max(max(t_mvm, t_local) / repl, t_noc)


def layer_kernel_np(in_f, out_f, copies, mvms, abs_x, x2, g_frac, params):
    """NumPy twin of :func:`layer_kernel`: broadcasts over (P, L); returns (acc, t_lat_ns, t_ii_ns)."""
    q = params[:, :, None]                                    # (P, N_PARAMS, 1): q[:, k] is (P, 1)
    n_in, n_out, n_mvm = in_f[None, :], out_f[None, :], mvms[None, :]   # (1, L)
    rows, cols, slices, repl = q[:, P_ROWS], q[:, P_COLS], q[:, P_SLICES], q[:, P_REPL]
    dac_on, adc_on = q[:, P_DAC_ON] > 0.5, q[:, P_ADC_ON] > 0.5
    serial = dac_on & (q[:, P_DAC_SERIAL] > 0.5)
    pwm = dac_on & ~serial & (q[:, P_DAC_PWM] > 0.5)
    cycles = q[:, P_N_CYCLES]
    outs_per_tile = np.floor(cols / slices)
    mu = np.where(np.isnan(abs_x)[None, :], q[:, P_ACTIVITY], abs_x[None, :])           # (P, L)
    amp = np.where(np.isnan(x2)[None, :], np.minimum(1.0, 0.5 * np.pi * mu * mu), x2[None, :])
    act = np.where(pwm, mu, amp)
    serial_pl = np.broadcast_to(serial, mu.shape)
    if serial_pl.any():            # only where bit-serial, once per distinct (mean |x|, bits): erfc sums are costly
        bits_pl = np.broadcast_to(q[:, P_DAC_BITS], mu.shape)
        for b in np.unique(bits_pl[serial_pl]):
            sel = serial_pl & (bits_pl == b)
            uniq, inv = np.unique(mu[sel], return_inverse=True)
            act[sel] = bit_serial_activity_np(uniq, np.full(uniq.shape, b))[inv]
    gf = np.where(np.isnan(g_frac)[None, :], q[:, P_G_FRAC], g_frac[None, :])
    g_us = q[:, P_G_MIN_US] + gf * (q[:, P_G_MAX_US] - q[:, P_G_MIN_US])
    r = np.ceil(n_in / rows)
    c = np.ceil(n_out / outs_per_tile)
    n_dac = np.where(dac_on, n_in * c * cycles, 0.0)
    n_rng = np.where(dac_on & (q[:, P_DAC_DYNAMIC] > 0.5), n_in, 0.0)
    n_phys = r * n_out * slices
    n_col = n_phys * cycles
    n_adc = np.where(adc_on, n_phys * q[:, P_N_CONVERSIONS], 0.0)
    n_int = n_phys * q[:, P_N_INTEGRATIONS]
    n_sa = n_phys * q[:, P_N_SHIFT_ADDS]
    n_acc = (r - 1.0) * n_out
    n_wl = n_in * q[:, P_ROW_FACTOR] * c * cycles
    n_loc = r * n_out
    sram_bits = (n_in + n_out) * q[:, P_ACT_BITS]
    noc_bh = (n_in * c + n_out * r) * q[:, P_ACT_BITS] * q[:, P_HOPS]
    e_dev_pj = q[:, P_V_READ_V] ** 2 * q[:, P_T_ARRAY_NS] * 1e-3
    e_wl_pj = q[:, P_C_WL_FF] * q[:, P_V_WL_V] ** 2 * 1e-3
    e_bl_pj = q[:, P_C_BL_FF] * q[:, P_V_BL_V] ** 2 * 1e-3
    used_cols = np.minimum(n_out, outs_per_tile) * slices
    rounds = np.where(adc_on, np.minimum(q[:, P_COLS_PER_ADC], used_cols), 0.0)
    t_core = q[:, P_T_FIXED_NS] + np.where(adc_on, rounds * q[:, P_T_ADC_NS], 0.0)
    t_mvm = n_rng / q[:, P_DIGITAL_GOPS] + t_core
    t_local = np.minimum(n_out, outs_per_tile) * q[:, P_T_LOCAL_NS]
    per_layer = {
        A_E_DAC_PJ: n_mvm * (n_dac * q[:, P_E_DAC_PJ] + n_rng * q[:, P_E_ELEMENTWISE_PJ]),
        A_N_RANGE_OPS: n_mvm * n_rng,
        A_E_ARRAY_PJ: n_mvm * e_dev_pj * g_us * 2.0 * slices * n_in * n_out * act * q[:, P_READ_PHASES],
        A_E_ADC_PJ: n_mvm * np.where(adc_on, n_phys * q[:, P_E_ADC_PJ], 0.0),
        A_E_PERIPHERY_PJ: n_mvm * (n_int * q[:, P_E_INTEGRATOR_PJ] + n_col * q[:, P_E_SAMPLE_HOLD_PJ]
                                   + n_sa * q[:, P_E_SHIFT_ADD_PJ] + n_acc * q[:, P_E_ACCUMULATE_PJ]),
        A_E_SWITCH_PJ: n_mvm * (n_wl * e_wl_pj + n_col * e_bl_pj),
        A_E_LOCAL_PJ: n_mvm * n_loc * q[:, P_E_LOCAL_PJ],
        A_E_CORE_PJ: n_mvm * r * c * q[:, P_P_CORE_MW] * t_core,
        A_E_SRAM_PJ: n_mvm * sram_bits * q[:, P_E_SRAM_PJ_PER_BIT],
        A_E_NOC_PJ: n_mvm * noc_bh * q[:, P_E_NOC_PJ_PER_BIT_HOP],
        A_N_DAC: n_mvm * n_dac, A_N_ADC: n_mvm * n_adc, A_N_COLUMN_READS: n_mvm * n_col,
        A_N_SHIFT_ADD: n_mvm * n_sa, A_N_ACCUMULATE: n_mvm * n_acc, A_N_INTEGRATIONS: n_mvm * n_int,
        A_N_WL_TOGGLES: n_mvm * n_wl, A_N_LOCAL_OUTPUTS: n_mvm * n_loc, A_TILE_NS: n_mvm * r * c * t_core,
        A_TILES: r * c * repl * copies[None, :],
        A_SRAM_BITS: n_mvm * sram_bits, A_NOC_BIT_HOPS: n_mvm * noc_bh,
        A_MACS: n_mvm * n_in * n_out, A_MVMS: np.broadcast_to(n_mvm, r.shape),
    }
    acc = np.zeros((params.shape[0], N_ACC))
    for k, v in per_layer.items():
        acc[:, k] = np.broadcast_to(v, r.shape).sum(axis=1)
    noc = q[:, P_NOC_GBPS]
    t_noc = np.where(noc > 0.0, n_in * q[:, P_ACT_BITS] / np.where(noc > 0.0, noc, 1.0), 0.0)
    t_lat = np.broadcast_to(t_mvm + t_local + t_noc, r.shape).copy()
    t_ii = np.broadcast_to(np.maximum(np.maximum(t_mvm, t_local) / repl, t_noc), r.shape).copy()
    return acc, t_lat, t_ii


@njit(cache=True)
def latency_kernel(t_lat_ns, t_ii_ns, per, n_blocks, tok_ops, head_ops, attn_ops_per_pair,
                   reps, positions, head_positions, pairs, params, out_ns):
    """Fill ``out_ns`` (P,) with the wall time of all phases (ns).

    t_lat_ns, t_ii_ns: (P, L) from the layer kernel; per: (L,) PER_TOKEN | PER_HEAD | PER_PASS;
    tok_ops: digital ops per position per block outside attention; head_ops: per head position (final
    norm, sampling); attn_ops_per_pair: per (query, key) pair per layer; reps, positions, head_positions,
    pairs: (F,) phases with batch applied (pairs per pass, all sequences).

    A pass: ``n_blocks · (seg_lat + (n − 1)·seg_ii + attention)`` for the stack, then the LM head. The head
    has its own tiles (weight-stationary), so its stream of ``h`` rows overlaps the last block's stream of
    ``n`` rows: it adds its fill ``head_lat`` and only what its stream outlasts the block's,
    ``max(0, (h − 1)·head_ii − (n − 1)·seg_ii)`` — the two streams take the max of their times, not the sum.
    """
    n_points, n_layers = t_lat_ns.shape
    for p in range(n_points):
        ops_per_ns = params[p, P_DIGITAL_GOPS]
        t_tok = tok_ops / ops_per_ns
        t_head = head_ops / ops_per_ns
        seg_lat, seg_ii, head_lat, head_ii, cond_lat = t_tok, t_tok, t_head, t_head, 0.0
        for l in range(n_layers):
            if per[l] == PER_TOKEN:
                seg_lat += t_lat_ns[p, l]
                seg_ii = max(seg_ii, t_ii_ns[p, l])
            elif per[l] == PER_HEAD:
                head_lat += t_lat_ns[p, l]
                head_ii = max(head_ii, t_ii_ns[p, l])
            else:
                cond_lat += t_lat_ns[p, l]
        total = 0.0
        for f in range(reps.shape[0]):
            n, h = positions[f], head_positions[f]
            t_pass = n_blocks * (seg_lat + (n - 1.0) * seg_ii + attn_ops_per_pair * pairs[f] / ops_per_ns)
            if h > 0.0:
                t_pass += head_lat + max(0.0, (h - 1.0) * head_ii - (n - 1.0) * seg_ii)
            total += reps[f] * (t_pass + cond_lat)
        out_ns[p] = total


def latency_kernel_np(t_lat_ns, t_ii_ns, per, n_blocks, tok_ops, head_ops, attn_ops_per_pair,
                      reps, positions, head_positions, pairs, params):
    """NumPy twin of :func:`latency_kernel`; returns (P,) ns."""
    ops_per_ns = params[:, P_DIGITAL_GOPS][:, None]                       # (P, 1)
    t_tok, t_head = tok_ops / ops_per_ns, head_ops / ops_per_ns
    tok, head, cond = per == PER_TOKEN, per == PER_HEAD, per == PER_PASS
    seg_lat = t_tok + t_lat_ns[:, tok].sum(axis=1, keepdims=True)
    seg_ii = np.maximum(t_tok, t_ii_ns[:, tok].max(axis=1, initial=0.0, keepdims=True))
    head_lat = t_head + t_lat_ns[:, head].sum(axis=1, keepdims=True)
    head_ii = np.maximum(t_head, t_ii_ns[:, head].max(axis=1, initial=0.0, keepdims=True))
    cond_lat = t_lat_ns[:, cond].sum(axis=1, keepdims=True)
    n, h = positions[None, :], head_positions[None, :]                  # (1, F)
    t_pass = n_blocks * (seg_lat + (n - 1.0) * seg_ii + attn_ops_per_pair * pairs[None, :] / ops_per_ns)
    head_tail = np.maximum(0.0, (h - 1.0) * head_ii - (n - 1.0) * seg_ii)   # head stream past the block's
    t_pass = t_pass + np.where(h > 0.0, head_lat + head_tail, 0.0)
    return (reps[None, :] * (t_pass + cond_lat)).sum(axis=1)
