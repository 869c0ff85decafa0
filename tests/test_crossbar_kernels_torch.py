"""The torch kernels (the GPU path) equal the numba kernels (the CPU path) on the CPU.

Random streams: both paths draw their read and ADC noise from the same counter-based stream (the key of
the call, the element's counter), so the comparisons are element by element, not statistical."""
import math

import numpy as np
import pytest
import torch

from analogdiff.config import load_hardware
from analogdiff.crossbar import converters as cv
from analogdiff.crossbar import kernels, kernels_torch
from adc_cases import adc_case


def test_counter_normals_bit_exact_for_any_row_window():
    full = kernels_torch.counter_normals(77, 12, 11)
    assert torch.equal(kernels_torch.counter_normals(77, 5, 11, row0=4), full[4:9])
    y = torch.zeros(1, 1, 12, 11)
    res = kernels.adc_accumulate(y, adc=None, var=torch.ones_like(y), plane_weights=np.ones(1), keys=(77, 1),
                                 factor=np.ones((1, 11)), row_scale=np.ones(12), bias=None, n_out=11,
                                 blocks=np.array([[0, 11, 0]]))
    assert torch.equal(res["out"], full)  # the numba kernel's own draws


@pytest.mark.parametrize("x_range,bits,serial", [(1.5, 8, False), (None, 6, False), (None, None, False),
                                                 (0.7, None, False), (2.0, 4, True), (None, 5, True)])
def test_dac_encode_bit_for_bit(x_range, bits, serial):
    x = torch.randn(33, 70, generator=torch.Generator().manual_seed(1)) * 1.3
    x[3] = 0.0  # an all-zero vector (dynamic range: scale 1)
    card = None if bits is None else load_hardware("pcm-ibm", {"dac.bits": bits, "dac.bit_serial": serial}).dac
    dac = cv.Dac(card, x_range)
    a = kernels.dac_encode(x, dac, n_tiles=3, width=32, want_squares=True)
    b = kernels_torch.dac_encode(x, dac, n_tiles=3, width=32, want_squares=True)
    assert torch.equal(a["planes"], b["planes"]) and torch.equal(a["squares"], b["squares"])
    assert np.array_equal(a["row_scale"], b["row_scale"].numpy())
    exact_sums = bits is not None  # integer DAC levels: exact sums; else float64 sums in another order
    tol = 0 if exact_sums else 1e-12
    assert np.allclose(a["abs_sum"], b["abs_sum"].numpy(), rtol=tol, atol=0)
    assert np.allclose(a["sq_sum"], b["sq_sum"].numpy(), rtol=tol, atol=0)
    assert (a["lo"], a["hi"]) == (b["lo"], b["hi"]) == (float(x.min()), float(x.max()))
    assert kernels_torch.dac_encode(x, dac, n_tiles=3, width=32, want_squares=False)["squares"] is None
    # bfloat16 squares, written by the kernel from the bits: exactly torch's cast of the float32 squares
    a16 = kernels.dac_encode(x, dac, n_tiles=3, width=32, want_squares=True, squares_dtype=torch.bfloat16)
    b16 = kernels_torch.dac_encode(x, dac, n_tiles=3, width=32, want_squares=True, squares_dtype=torch.bfloat16)
    assert a16["squares"].dtype == b16["squares"].dtype == torch.bfloat16
    assert torch.equal(a16["squares"], a["squares"].to(torch.bfloat16)) and torch.equal(a16["squares"], b16["squares"])
    assert torch.equal(a16["planes"], a["planes"])


def test_bfloat16_squares_round_to_nearest_even_as_torch():
    """The kernel's own float32 → bfloat16 rounding (``kernels._bf16_bits``) against torch's cast: on
    exact ties (both ways), one bit either side of them, carries into the exponent, subnormals, zero, the
    largest finite float32 and Inf, and on random bit patterns."""
    base = torch.tensor([1.0, 1.5, 3.0, 2.0 ** -130, 1.9999999, 7.0e-3], dtype=torch.float32).view(torch.int32)
    crafted = torch.cat([base + d for d in (0, 0x7FFF, 0x8000, 0x8001, 0x18000, 0xFFFF)])
    rand = torch.randint(0, 0x7F800000, (20000,), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    edges = torch.tensor([0, 1, 0x7F7FFFFF, 0x7F800000], dtype=torch.int32)
    values = torch.cat([crafted, rand, edges]).view(torch.float32)
    ours = torch.tensor([int(kernels._bf16_bits(np.float32(v))) for v in values.tolist()], dtype=torch.int16)
    assert torch.equal(ours, values.to(torch.bfloat16).view(torch.int16))
    x = torch.randn(2, 40)
    for impl in (kernels, kernels_torch):
        with pytest.raises(ValueError, match="squares_dtype"):
            impl.dac_encode(x, cv.Dac(None, 1.0), n_tiles=1, width=40, want_squares=True, squares_dtype=torch.float16)


def test_dac_encode_flags_non_finite():
    x = torch.randn(4, 5)
    x[2, 3] = float("nan")
    enc = kernels_torch.dac_encode(x, cv.Dac(load_hardware("pcm-ibm").dac, 1.0), n_tiles=1, width=5,
                                   want_squares=False)
    assert math.isnan(enc["lo"]) and math.isnan(enc["hi"])


@pytest.mark.parametrize("cfg", [
    dict(adc_bits=8), dict(adc_bits=None), dict(adc_bits=5, dynamic=True), dict(adc_bits=6, noise_lsb=1.5),
    dict(adc_bits=7, s_curve=2.0), dict(adc_bits=1), dict(adc_bits=8, var=True), dict(adc_bits=8, var="bf16"),
    dict(adc_bits=None, var=True), dict(adc_bits=4, dynamic=True, noise_lsb=0.7, var=True)])
def test_adc_accumulate_bit_for_bit(cfg):
    y, args = adc_case(cfg)
    adc, (n, m) = args["adc"], y.shape[2:]
    a = kernels.adc_accumulate(y, **args)
    b = kernels_torch.adc_accumulate(y, **args)
    if cfg.get("s_curve") is None:
        assert torch.equal(a["out"], b["out"])
    else:  # tanh from two libraries: equal to a few float64 ulps, and so equal ADC codes here
        assert torch.allclose(a["out"], b["out"], rtol=0, atol=1e-6)
    if adc is not None:
        assert np.array_equal(a["clip"], b["clip"].numpy())
    assert (a["lo"], a["hi"]) == (b["lo"], b["hi"])
    # the GPU's order (row tiles converted together, summed by torch): the same codes, sums to rounding
    for chunk in (1 << 30, 4 * 8 * n * m):  # all row tiles in one pass; one at a time
        c = kernels_torch.adc_accumulate(y, **args, sequential=False, chunk_bytes=chunk)
        assert torch.allclose(c["out"], b["out"], rtol=1e-6, atol=1e-6)
        assert torch.equal(c["clip"], b["clip"])


@pytest.mark.parametrize("overrides", [{}, {"dac.bit_serial": True, "dac.bits": 5, "adc.noise_lsb": 0.5},
                                       {"adc.output_range": "dynamic", "dac.input_range": "dynamic"}])
def test_whole_model_torch_path_equals_numba_path(overrides):
    """Every effect of pcm-ibm (IR drop, programming and read noise, drift, DAC, ADC) on a two-layer MLP
    spanning several tiles: the torch kernels give the same outputs, bit for bit, and the same statistics."""
    from torch import nn

    from analogdiff.crossbar.layers import analog_layers, analogize, collect_stats, reset_stats, set_drift_time

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(40, 30), nn.GELU(), nn.Linear(30, 20)).eval().requires_grad_(False)
    x = torch.randn(64, 40, generator=torch.Generator().manual_seed(0))
    hw = load_hardware("pcm-ibm", {"tile.rows": 24, "tile.cols": 16, **overrides})
    am = analogize(mlp, hw, seed=0, calibration=x[:32], device="cpu")
    set_drift_time(am, 3600.0)
    y_numba = am(x)
    st_numba = collect_stats(am)
    for _, layer in analog_layers(am):
        layer.kernels = "torch"
    set_drift_time(am, 3600.0)  # resets the per-MVM noise streams
    reset_stats(am)
    y_torch = am(x)
    assert torch.equal(y_numba, y_torch)
    st_torch = collect_stats(am)
    for name, s in st_numba["layers"].items():
        for key, v in s.items():
            assert st_torch["layers"][name][key] == pytest.approx(v, rel=1e-12), (name, key)


def test_release_programming_keeps_the_outputs_and_refuses_to_drift():
    from torch import nn

    from analogdiff.checks import ConfigError
    from analogdiff.crossbar.layers import AnalogLinear

    lin = nn.Linear(30, 20).requires_grad_(False)
    x = torch.randn(16, 30, generator=torch.Generator().manual_seed(0))
    hw = load_hardware("pcm-ibm", {"tile.rows": 24, "tile.cols": 16})
    layer = AnalogLinear(lin.weight, lin.bias, hw, seed=1, x_calib=x)
    layer.set_drift_time(60.0)
    y = layer(x)
    layer.set_drift_time(60.0)  # the same noise stream again
    layer.release_programming()
    assert layer.tile is None and torch.equal(layer(x), y)
    with pytest.raises(ConfigError, match="released"):
        layer.set_drift_time(120.0)
