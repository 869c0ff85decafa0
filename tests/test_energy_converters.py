"""Converter energy and time laws (energy/converters.py), checked by hand and through the estimator."""
import numpy as np
import pytest

from analogdiff.config import load_hardware
from analogdiff.energy import Diffusion, estimate, estimate_many
from analogdiff.energy import converters as cv


def test_adc_energy_laws():
    isaac = {"4": 0.79, "5": 0.99, "6": 1.20, "7": 1.42, "8": 1.67, "9": 1.97, "10": 2.38}
    hw = load_hardware("pcm-ibm", overrides={"adc.energy_model": "table", "adc.e_conv_pj_by_bits": isaac})
    assert cv.adc_energy_pj(hw.adc, 8) == pytest.approx(1.67)
    assert cv.adc_energy_pj(hw.adc, 6) == pytest.approx(1.20)                  # ISAAC table entry
    assert cv.adc_energy_pj(hw.adc, 3) == pytest.approx(0.79 / 2)              # below the table: ×2 per bit
    w = load_hardware("pcm-ibm", overrides={"adc.energy_model": "walden", "adc.walden_fom_fj": 1.0})
    assert cv.adc_energy_pj(w.adc, 8) == pytest.approx(256e-3)                 # 1 fJ/step × 2^8
    s = load_hardware("pcm-ibm", overrides={"adc.energy_model": "schreier", "adc.schreier_fom_db": 180.0})
    # SNDR 8 bits = 49.92 dB; P/fs = 10^((49.92 − 180)/10) / 2 J
    assert cv.adc_energy_pj(s.adc, 8) == pytest.approx(10 ** (-13.008) / 2 * 1e12)
    pts = cv.adc_energy_pj_points(hw.adc, np.array([3, 6, 8, 6]))
    np.testing.assert_allclose(pts, [0.79 / 2, 1.20, 1.67, 1.20])


def test_adc_and_dac_time_laws():
    bits = np.array([2.0, 4.0, 8.0])
    np.testing.assert_allclose(cv.adc_time_ns("fixed", np.full(3, 5.0), bits), [5.0, 5.0, 5.0])
    np.testing.assert_allclose(cv.adc_time_ns("sar", np.full(3, 0.104125), bits), [0.20825, 0.4165, 0.833])
    np.testing.assert_allclose(cv.adc_time_ns("ramp", np.full(3, 0.390625), bits), [1.5625, 6.25, 100.0])
    apply, on = cv.dac_times_ns(np.array([True, True, False]), bits, np.full(3, 1.0), np.full(3, 100.0))
    np.testing.assert_allclose(apply, [2.0, 8.0, 1.0])      # PWM window 2^(bits−1) slots; amplitude: t_conv
    np.testing.assert_allclose(on, [2.0, 8.0, 100.0])       # conducts for the window; amplitude: t_int


def test_pwm_window_prices_array_energy_and_time():
    """pcm-ibm, one MVM of a 256×256 layer by hand: PWM slot 1 ns, t_int 100 ns, 128 columns per SAR ADC."""
    from analogdiff.energy.analog import mvm_energy

    out = {}
    for b in (8, 4):
        out[b] = mvm_energy(load_hardware("pcm-ibm", {"dac.bits": b}), 256, 256)
    # array: V² Ḡ t · 2 · in · out · duty = 0.04 V² × 3.125 µS × t × 2 × 65536 × 0.25 (×1e-3 pJ per µS·ns)
    for b, window in ((8, 128.0), (4, 8.0)):
        assert out[b]["array_pj"] == pytest.approx(0.04 * 3.125 * window * 1e-3 * 2 * 65536 * 0.25)
    # time: max(window, t_int) + 128 rounds × 0.833 ns
    assert out[8]["t_mvm_ns"] == pytest.approx(128.0 + 128 * 0.833)
    assert out[4]["t_mvm_ns"] == pytest.approx(100.0 + 128 * 0.833)


def test_dynamic_input_range_is_a_priced_max_reduction():
    d = Diffusion(steps=4, seq_len=64)
    static = estimate("gpt2-small", "pcm-ibm", d)
    dyn = estimate("gpt2-small", load_hardware("pcm-ibm", {"dac.input_range": "dynamic"}), d)
    # one compare per input element per MVM: Σ mvms × in_features, priced at digital.e_elementwise_pj
    ops = (static.counts["token_forwards"] * 12 * (768 + 768 + 768 + 3072)   # blocks: qkv, out, up, down
           + static.counts["head_evals"] * 768)                              # LM head
    assert dyn.counts["dac_range_ops"] == pytest.approx(ops) and static.counts["dac_range_ops"] == 0
    assert dyn.breakdown_j["dac"] - static.breakdown_j["dac"] == pytest.approx(ops * 1.5e-12)
    assert dyn.latency_per_token_s > static.latency_per_token_s
    sweep = estimate_many("gpt2-small", "pcm-ibm", d, overrides={"dac.input_range": ["static", "dynamic"]})
    assert sweep["energy_per_token_j"] == pytest.approx([static.energy_per_token_j, dyn.energy_per_token_j])
