"""Every converter field, swept: the direction of its effect on accuracy and on cost.

Accuracy: relative output error ‖y_analog − y_digital‖ / ‖y_digital‖ of one 512→256 analog layer (two row
tiles of 256) on pcm-ibm with device noise, drift and wires off, so that only the converters err; fixed
seeds, calibrated on the inputs it is evaluated on. Cost: energy and latency per token of the
shakespeare-mdlm shape on the same card (``estimate``). The physics of each expected direction is in
``analogdiff/energy/converters.py`` (cost) and ``analogdiff/crossbar/converters.py`` (accuracy).
"""
import functools
import warnings

import pytest
import torch
from torch import nn

import analogdiff as ad
from analogdiff.crossbar.layers import analogize
from analogdiff.energy import Diffusion, estimate

QUIET = {"wire": None, "drift": None, "device.prog_noise": None, "device.read_noise": None}
UP, DOWN, SAME, NOT_UP = "up", "down", "same", "not up"

# field: (values in sweep order, (error, energy, latency) direction along the sweep)
SWEEPS = {
    # fewer input levels: coarser inputs; shorter PWM window: less conduction time, and the MVM waits
    # max(window, t_integrate = 100 ns), so 64 → 8 → 2 slots stop shortening it below 6 bits
    "dac.bits": ([8, 6, 4, 2], (UP, DOWN, NOT_UP)),
    # same charge (linear devices), so the same numbers; PWM conducts |x|·128 ns vs amplitude x²·100 ns
    "dac.mode": (["amplitude", "pwm"], (SAME, UP, UP)),
    # per-vector full scale resolves each vector finer than the layer's abs-max; costs a max-reduction
    "dac.input_range": (["static", "dynamic"], (DOWN, UP, UP)),
    # 7 magnitude planes, each partial sum rounded by the ADC; 7 cycles of conversions
    "dac.bit_serial": ([False, True], (UP, UP, UP)),
    # coarser outputs; the ISAAC table and a SAR conversion of fewer bit cycles
    "adc.bits": ([8, 6, 4], (UP, DOWN, DOWN)),
    # per-vector auto-ranging resolves finer; idealized, not priced (energy/converters.py)
    "adc.output_range": (["calibrated", "dynamic"], (DOWN, SAME, SAME)),
    # time-sharing an ADC changes when columns convert, not how many or how: the conversions cost the same,
    # but the longer MVM keeps the chips' SRAM leaking for longer (energy/system.py: static = power × time)
    "adc.cols_per_adc": ([1, 128, 256], (SAME, UP, UP)),
    "adc.noise_lsb": ([0.0, 2.0], (UP, SAME, SAME)),
    "adc.s_curve": ([None, 1.0], (UP, SAME, SAME)),
    # Gaussian inputs: clipping the top 1 % costs more than the finer step gains
    "dac.range_percentile": ([100.0, 99.0], (UP, SAME, SAME)),
    "adc.range_percentile": ([100.0, 99.0], (UP, SAME, SAME)),
}


@functools.lru_cache(maxsize=None)
def _layer():
    lin = nn.Linear(512, 256).requires_grad_(False)
    torch.nn.init.normal_(lin.weight, generator=torch.Generator().manual_seed(0))
    x = torch.randn(256, 512, generator=torch.Generator().manual_seed(1))
    return lin, x, lin(x)


@functools.lru_cache(maxsize=None)
def _point(key: str, value) -> tuple[float, float, float]:
    lin, x, y = _layer()
    hw = ad.load_hardware("pcm-ibm", {**QUIET, key: value})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        am = analogize(lin, hw, seed=0, calibration=x)
    err = float((am(x) - y).norm() / y.norm())
    r = estimate("shakespeare-mdlm", hw, Diffusion(steps=8, seq_len=64))
    return err, r.energy_per_token_j, r.latency_per_token_s


def _check(name: str, seq: list[float], direction: str) -> None:
    pairs = list(zip(seq, seq[1:]))
    ok = {UP: all(b > a for a, b in pairs), DOWN: all(b < a for a, b in pairs),
          SAME: all(b == a for a, b in pairs), NOT_UP: all(b <= a for a, b in pairs)}[direction]
    assert ok, f"{name}: expected {direction} along the sweep, got {seq}"


@pytest.mark.parametrize("key", list(SWEEPS))
def test_converter_field_moves_accuracy_and_cost(key):
    values, directions = SWEEPS[key]
    points = [_point(key, v) for v in values]
    for i, (what, direction) in enumerate(zip(("error", "energy", "latency"), directions)):
        _check(f"{key} {what}", [p[i] for p in points], direction)


def test_pwm_window_shortens_latency_until_the_integration_time():
    """dac.bits 8 → 6: the window falls from 128 to 32 slots of 1 ns, the MVM from 128 to 100 ns."""
    (_, e8, t8), (_, e6, t6) = _point("dac.bits", 8), _point("dac.bits", 6)
    assert t6 < t8 and e6 < e8
