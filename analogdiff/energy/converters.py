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
* ``adc.bits``: the energy law (``adc.energy_model``) and the time law (``adc.time_model``).
* ``dac.bit_serial`` (bits − 1 cycles), ``adc.cols_per_adc`` (conversion rounds) act in the layer kernel.

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


def adc_energy_pj(adc: ADC, bits: int) -> float:
    """Energy of one conversion of ``adc`` at resolution ``bits`` (pJ), by ``adc.energy_model``.

    table: linear interpolation between listed resolutions, geometric (×2 per bit, Walden) beyond them.
    walden: E = FoM_W · 2^bits (Walden, IEEE JSAC 1999).  schreier: P/fs with fs = 2·BW and
    SNDR = 6.02·bits + 1.76 dB: E = 10^((SNDR - FoM_S) / 10) / 2 (J) (Murmann, ADC survey).
    """
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
                         schreier_fom_db: np.ndarray | None = None) -> np.ndarray:
    """``adc_energy_pj`` per design point (N,): resolutions and, optionally, swept figures of merit."""
    n = bits.shape[0]
    walden = walden_fom_fj if walden_fom_fj is not None else np.full(n, adc.walden_fom_fj or math.nan)
    schreier = (schreier_fom_db if schreier_fom_db is not None
                else np.full(n, adc.schreier_fom_db or math.nan))
    out = np.empty(n)
    cache: dict[tuple, float] = {}
    for i in range(n):
        key = (int(bits[i]), float(walden[i]), float(schreier[i]))
        if key not in cache:
            law = dataclasses.replace(adc, bits=key[0],
                                      walden_fom_fj=None if math.isnan(key[1]) else key[1],
                                      schreier_fom_db=None if math.isnan(key[2]) else key[2])
            cache[key] = adc_energy_pj(law, key[0])
        out[i] = cache[key]
    return out


ADC_TIME_STEPS = {"fixed": lambda bits: np.ones_like(bits), "sar": lambda bits: bits,
                  "ramp": lambda bits: 2.0 ** bits}
"""Clock steps of one conversion at ``bits``: a SAR ADC resolves one bit per comparator cycle (Kull et
al., ISSCC 2013: 8 cycles in 0.833 ns); a ramp/counting ADC counts up to 2^bits (Wan et al., Nature 2022)."""


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

