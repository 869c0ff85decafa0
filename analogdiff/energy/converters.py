"""Energy and time laws of the DAC and the ADC: the one home of how converter fields set the cost.

``analog.py`` resolves every design point's converter columns through these functions; ``config.py``
only describes the fields. Every converter field that changes the physics of the cost changes it here:

* ``dac.bits`` under ``pwm``: an input is a pulse of |x| · 2^(bits-1) slots of ``dac.t_conv_ns`` (the PWM
  clock). The window sets the time to apply an input and how long a device conducts at full scale, so
  the array energy V²·G·t follows it (Le Gallo et al., Nat. Electron. 2023: 8-bit PWM, 128 slots). With
  amplitude or bit-serial inputs a device conducts for the integration time ``tile.t_integrate_ns``.
* ``dac.input_range = "dynamic"``: the abs-max of every input vector is found before conversion, a
  max-reduction of ``in_features`` compares per MVM on the card's digital units (priced at
  ``digital.e_elementwise_pj`` each, timed at ``digital.throughput_gops``).
* ``adc.bits``: the energy law (``adc.energy_model``: the Murmann ADC-survey fit at ``adc.node_nm`` and the
  sample rate of back-to-back conversions for SAR-class ADCs; ``e_step_pj`` per step for counting, ramp and
  binary-search ADCs; a measured ``table``; Walden; Schreier) and the time law (``adc.time_model``).
* ``dac.bit_serial`` (bits − 1 cycles), ``dac.accumulate`` (each cycle converted, or integrated 2^k times and
  converted once per phase), ``tile.read_phases``: the per-column work of one MVM (:func:`column_work`);
  ``adc.cols_per_adc`` (conversion rounds) acts in the layer kernel.

Not priced, said here so that it is a decision and not an omission: ``adc.output_range = "dynamic"`` is
idealized auto-ranging (its cost has no card figure); ``dac.range_percentile``, ``adc.range_percentile``,
``adc.noise_lsb`` and ``adc.s_curve`` change the numbers, not the work. An amplitude DAC's energy per
conversion is the card's ``dac.e_conv_pj`` at any resolution (the card gives no law for it).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from analogdiff.config import ADC


# Murmann ADC-survey fit (B. Murmann, "ADC Performance Survey 1997–2023", github.com/bmurmann/ADC-survey) as
# Accelergy's ADC plug-in fits it (Accelergy-Project/hwcomponents-adc@246af7e0, hwcomponents_adc/model.py
# get_energy, coefficients in adc_data/model.yaml; byte-identical in accelergy-adc-plug-in@ff0fb48a; method:
# Andrulis et al., CiMLoop, arXiv:2404.06553). Natural logs; f = per-ADC sample rate in S/s.
SURVEY_FOMS_INTERCEPT_DB = 213.7807      # FOM_S frequency envelope: 213.7807 − 2.87190·ln f
SURVEY_FOMS_PER_LN_HZ_DB = -2.87190
SURVEY_FOMS_CAP_DB = (128.3068, 3.22051)  # FOM_S cap by resolution: 128.3068 + 3.22051·ceil(bits)
SURVEY_MIN_BITS = 4
"""The plug-in refuses fewer bits (hwcomponents-adc main.py: assert n_bits >= 4): below it the fit leaves its data
(its −2.83·ln bits term makes 1–3 bits dearer than 4). A coarser ADC is priced as a 4-bit one, an upper bound."""
SURVEY_LN_E = (26.0496215686518, 1.8800369206815004, -2.8291256050594527, -1.4702022133784405)
"""ln of the node/resolution factor: intercept, ·ln(node_nm), ·ln(bits), residual (model.yaml)."""


def survey_adc_energy_pj(bits: float, node_nm: float, sample_rate_hz: float) -> float:
    """Energy of one conversion (pJ) by the survey fit: the best FOM_S at this rate and resolution,
    FOM_S = min(213.7807 − 2.87190·ln f, 128.3068 + 3.22051·⌈bits⌉) dB; SNDR = 6.0206·bits + 1.7609 dB;
    E0 = 1 / (2·10^((FOM_S − SNDR)/10)) (Schreier FOM → energy per conversion); E = E0 · exp(26.0496 +
    1.88004·ln node_nm − 2.82913·ln bits − 1.47020) pJ. This is the law's total; the plug-in books 80 % of it
    per conversion and 20 % as leakage — priced here as one conversion energy. 8 b, 14 nm, 200 MS/s: 0.362 pJ.
    """
    sndr_db = 6.0206 * bits + 1.7609
    foms_db = min(SURVEY_FOMS_INTERCEPT_DB + SURVEY_FOMS_PER_LN_HZ_DB * math.log(sample_rate_hz),
                  SURVEY_FOMS_CAP_DB[0] + SURVEY_FOMS_CAP_DB[1] * math.ceil(bits))
    e0 = 1.0 / (2.0 * 10.0 ** ((foms_db - sndr_db) / 10.0))
    a, b_node, b_bits, resid = SURVEY_LN_E
    return e0 * math.exp(a + b_node * math.log(node_nm) + b_bits * math.log(bits) + resid)


def adc_energy_pj(adc: ADC, bits: int, sample_rate_hz: float | None = None) -> float:
    """Energy of one conversion of ``adc`` at resolution ``bits`` (pJ), by ``adc.energy_model``.

    survey: :func:`survey_adc_energy_pj` at ``adc.node_nm`` and ``sample_rate_hz`` (default: back-to-back
    conversions, 1 / the conversion time at ``bits``), from ``SURVEY_MIN_BITS`` up. per-step: ``e_step_pj`` × the steps of
    ``adc.time_model`` at ``bits``. table: linear interpolation between listed resolutions, geometric (×2 per
    bit, Walden) beyond them. walden: E = FoM_W · 2^bits (Walden, IEEE JSAC 1999). schreier: P/fs with
    fs = 2·BW and SNDR = 6.02·bits + 1.76 dB: E = 10^((SNDR - FoM_S) / 10) / 2 (J) (Murmann, ADC survey).
    """
    if adc.energy_model == "survey":
        if sample_rate_hz is None:
            sample_rate_hz = 1e9 / float(adc_time_ns(adc.time_model, np.array([adc.t_conv_ns]),
                                                     np.array([float(bits)]))[0])
        return survey_adc_energy_pj(max(bits, SURVEY_MIN_BITS), adc.node_nm, sample_rate_hz)
    if adc.energy_model == "per-step":
        return adc.e_step_pj * float(ADC_TIME_STEPS[adc.time_model](np.array([float(bits)]))[0])
    if adc.energy_model == "walden":
        return adc.walden_fom_fj * 2.0 ** bits * 1e-3
    if adc.energy_model == "schreier":
        sndr_db = 6.02 * bits + 1.76
        return 10.0 ** ((sndr_db - adc.schreier_fom_db) / 10.0) / 2.0 * 1e12
    table = sorted((int(k), v) for k, v in adc.e_conv_pj_by_bits.items())
    xs = [b for b, _ in table]
    if bits <= xs[0]:
        return table[0][1] * 2.0 ** (bits - xs[0])
    if bits >= xs[-1]:
        return table[-1][1] * 2.0 ** (bits - xs[-1])
    for (b0, e0), (b1, e1) in zip(table, table[1:]):
        if b0 <= bits <= b1:
            return e0 + (e1 - e0) * (bits - b0) / (b1 - b0)
    raise AssertionError("unreachable")


def adc_energy_pj_points(adc: ADC, bits: np.ndarray, walden_fom_fj: np.ndarray | None = None,
                         schreier_fom_db: np.ndarray | None = None, t_conv_ns: np.ndarray | None = None,
                         node_nm: np.ndarray | None = None, e_step_pj: np.ndarray | None = None) -> np.ndarray:
    """``adc_energy_pj`` per design point (N,): resolutions and, optionally, swept figures of merit, step
    times (the survey law's sample rate), nodes and step energies."""
    n = bits.shape[0]

    def col(given, value):
        return given if given is not None else np.full(n, math.nan if value is None else value)

    cols = (col(walden_fom_fj, adc.walden_fom_fj), col(schreier_fom_db, adc.schreier_fom_db),
            col(t_conv_ns, adc.t_conv_ns), col(node_nm, adc.node_nm), col(e_step_pj, adc.e_step_pj))
    out = np.empty(n)
    cache: dict[tuple, float] = {}
    for i in range(n):
        key = (int(bits[i]), *(float(c[i]) for c in cols))
        if key not in cache:
            w, s_db, t, node, step = (None if math.isnan(v) else v for v in key[1:])
            law = dataclasses.replace(adc, bits=key[0], walden_fom_fj=w, schreier_fom_db=s_db, t_conv_ns=t,
                                      node_nm=node, e_step_pj=step)
            cache[key] = adc_energy_pj(law, key[0])
        out[i] = cache[key]
    return out


ADC_TIME_STEPS = {"fixed": lambda bits: np.ones_like(bits), "sar": lambda bits: bits,
                  "binary-search": lambda bits: bits, "ramp": lambda bits: 2.0 ** bits}
"""Clock steps of one conversion at ``bits``: a SAR ADC resolves one bit per comparator cycle (Kull et
al., ISSCC 2013: 8 cycles in 0.833 ns); NeuRRAM's neuron a binary search, one charge add/subtract and
comparison per bit (Wan et al., Nature 2022, Methods: "n cycles for a n-bit output"); a ramp/counting ADC
counts up to 2^bits."""


def adc_time_ns(time_model: str, t_conv_ns: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Time of one conversion (N,) ns: ``t_conv_ns`` times the clock steps of ``time_model`` at ``bits``."""
    return t_conv_ns * ADC_TIME_STEPS[time_model](np.asarray(bits, float))


def dac_window_ns(bits: np.ndarray, t_slot_ns: np.ndarray) -> np.ndarray:
    """PWM window (N,) ns: 2^(bits-1) slots — the sign is the pulse polarity, the magnitude its width."""
    return 2.0 ** (np.asarray(bits, float) - 1.0) * t_slot_ns


def dac_times_ns(pwm: np.ndarray, bits: np.ndarray, t_conv_ns: np.ndarray,
                 t_integrate_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(time to apply one input, time a device conducts at full scale) per design point, ns.

    pwm (N,) bool (PWM and not bit-serial): the window for both; else ``t_conv_ns`` to apply and the
    integration time to conduct (the integrator reads the column for ``t_integrate_ns``).
    """
    window = dac_window_ns(bits, t_conv_ns)
    return np.where(pwm, window, t_conv_ns), np.where(pwm, window, t_integrate_ns)



def phase_split(magnitude_bits: np.ndarray, charge: np.ndarray, phase_bits: np.ndarray) -> tuple[np.ndarray, ...]:
    """(phases, MSB-phase bits, LSB-phase bits) per design point (N,): with charge accumulation, inputs of more
    magnitude bits than ``phase_bits`` run in two phases of ⌈m/2⌉ and ⌊m/2⌋ bits (NeuRRAM: inputs above 4
    bits, sign included, take two phases — Wan et al. 2022, Methods; the split as CiMLoop's
    ``wan_nature_2022/helper_functions.py``); else one phase of all m bits."""
    m = np.asarray(magnitude_bits, float)
    two = charge & (m > phase_bits)
    m1 = np.where(two, np.ceil(m / 2.0), m)
    return np.where(two, 2.0, 1.0), m1, np.where(two, m - m1, 0.0)


def column_work(adc: ADC | None, *, bit_serial: np.ndarray, charge: np.ndarray, dac_bits: np.ndarray,
                phase_bits: np.ndarray, read_phases: np.ndarray, slices: np.ndarray, adc_bits: np.ndarray,
                t_conv_ns: np.ndarray, t_cycle_ns: np.ndarray, t_phase_ns: np.ndarray,
                adc_law: dict | None = None) -> dict[str, np.ndarray]:
    """Work of one physical column (and of each row driver) in one MVM, per design point (N,).

    * ``cycles``: input cycles = (dac.bits − 1 magnitude bits if bit-serial, else 1) × tile.read_phases: each
      drives the rows once (DAC conversion, word-line toggle, sample-and-hold, array read).
    * ``integrations``: 'digital' accumulation: one per cycle; 'charge': Σ over phases of 2^{m_p} − 1 (the
      bit of weight 2^k integrated 2^k times; Wan et al. 2022: "2^(n−1) − 1 sampling and integration
      cycles" for n-bit signed inputs), × read_phases.
    * conversions: 'digital': one per bit cycle (read phases accumulate before it); 'charge': one per phase,
      phase p resolving adc.bits − (magnitude bits of the earlier phases) bits (CiMLoop's NeuRRAM model).
    * ``e_adc_pj`` / ``t_adc_ns``: Σ over the conversions of :func:`adc_energy_pj` / :func:`adc_time_ns`;
      ``adc_steps``: Σ of their clock steps. ``shift_adds``: 'charge': one per ADC step (the neuron shifts in
      one bit per search step); 'digital': one per conversion when bit slices or cycles are combined.
    * ``t_fixed_ns``: integrations × the cycle time + phases × ``t_phase_ns`` (everything but the ADC).
    """
    adc_law = adc_law or {}
    serial_m = np.where(bit_serial, np.maximum(dac_bits - 1.0, 1.0), 1.0)
    phases, m1, m2 = phase_split(serial_m, charge, phase_bits)
    integ = np.where(charge, (2.0 ** m1 - 1.0) + np.where(phases > 1, 2.0 ** m2 - 1.0, 0.0), serial_m) * read_phases
    n_conv = np.where(charge, phases, serial_m)
    out = {"cycles": serial_m * read_phases, "integrations": integ, "conversions": n_conv,
           "phases": np.where(charge, phases, 0.0)}
    if adc is None:
        zero = np.zeros_like(serial_m)
        out.update(e_adc_pj=zero, t_adc_ns=zero, adc_steps=zero, conversions=zero,
                   shift_adds=np.where(slices * serial_m > 1.0, serial_m, 0.0))
    else:
        b1 = adc_bits
        b2 = np.maximum(adc_bits - m1, 1.0)                       # the LSB phase resolves what is left
        e1 = adc_energy_pj_points(adc, b1, t_conv_ns=t_conv_ns, **adc_law)
        e2 = adc_energy_pj_points(adc, b2, t_conv_ns=t_conv_ns, **adc_law)
        t1, t2 = adc_time_ns(adc.time_model, t_conv_ns, b1), adc_time_ns(adc.time_model, t_conv_ns, b2)
        s1, s2 = ADC_TIME_STEPS[adc.time_model](b1), ADC_TIME_STEPS[adc.time_model](b2)
        second = charge & (phases > 1)
        out["e_adc_pj"] = np.where(charge, e1 + np.where(second, e2, 0.0), n_conv * e1)
        out["t_adc_ns"] = np.where(charge, t1 + np.where(second, t2, 0.0), n_conv * t1)
        out["adc_steps"] = np.where(charge, s1 + np.where(second, s2, 0.0), n_conv * s1)
        out["shift_adds"] = np.where(charge, out["adc_steps"], np.where(slices * serial_m > 1.0, serial_m, 0.0))
    out["t_fixed_ns"] = integ * t_cycle_ns + out["phases"] * t_phase_ns
    return out
