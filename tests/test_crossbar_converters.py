"""DAC/ADC reference functions, and the fused kernels against their twins."""
import numpy as np
import pytest
import torch

from analogdiff.config import load_hardware
from analogdiff.crossbar import converters as cv
from analogdiff.crossbar import kernels
from adc_cases import adc_case


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8])
def test_adc_has_at_most_2_to_the_bits_levels(bits):
    y = torch.linspace(-3, 3, 20001, dtype=torch.float64)
    q, clipped = cv.adc_quantize(y, 2.0, bits)
    assert q.unique().numel() <= 2 ** bits
    assert q.abs().max() <= 2.0 + 1e-12
    assert torch.equal(clipped, y.abs() > 2.0)


def test_adc_noise_and_s_curve():
    y = torch.linspace(-1, 1, 1001, dtype=torch.float64)
    z = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    clean, _ = cv.adc_quantize(y, 1.0, 8)
    noisy, _ = cv.adc_quantize(y, 1.0, 8, noise_lsb=2.0, z=z)
    assert (noisy != clean).any()
    curved, _ = cv.adc_quantize(y, 1.0, 8, s_curve=1.5)
    assert (torch.diff(curved) >= 0).all() and curved.abs().max() < clean.abs().max()


def test_dac_levels_and_bit_planes():
    x = torch.linspace(-1.5, 1.5, 3001, dtype=torch.float64)
    q = cv.dac_quantize(x, 4)
    assert q.unique().numel() <= 2 ** 4 - 1 and q.abs().max() == 1.0
    planes, weights = cv.dac_bit_planes(q, 4)
    assert planes.shape[0] == 3 and set(planes.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.allclose((planes * weights[:, None]).sum(0), q)


def test_calibrated_range_percentile():
    v = torch.arange(1, 1001, dtype=torch.float64)
    assert cv.calibrated_range(v, 100.0) == 1000.0
    assert cv.calibrated_range(-v, 99.0) == 990.0


def test_converters_own_levels_planes_and_full_scale():
    hw = load_hardware("pcm-ibm", overrides={"dac.bits": 4, "dac.bit_serial": True})
    dac = cv.Dac(hw.dac, x_range=2.0)
    assert (dac.levels, dac.n_planes) == (7, 3)
    np.testing.assert_array_equal(dac.plane_weights, [1 / 7, 2 / 7, 4 / 7])
    x = torch.tensor([[3.0, -1.0, 0.5]])
    planes = dac.encode(x, 1, 3)["planes"][:, 0]                       # (P, N, width)
    assert torch.allclose((planes * torch.tensor(dac.plane_weights, dtype=torch.float32)[:, None, None]).sum(0)
                          * 2.0, torch.tensor([[2.0, -1.0, 0.5]]), atol=2.0 / 7 / 2 + 1e-6)
    assert cv.Dac(None, None).levels is None                           # no DAC: exact inputs
    assert cv.Dac.calibrated(hw.dac, torch.arange(1.0, 101.0)[:, None]).x_range == 100.0
    assert cv.Dac.calibrated(load_hardware("pcm-ibm", {"dac.input_range": "dynamic"}).dac,
                             torch.ones(4, 3)).x_range is None
    with pytest.raises(ValueError, match="x_range"):
        cv.Dac(hw.dac, x_range=0.0)
    adc = cv.Adc(hw.adc, full_scale=np.full((1, 2), 2.0))
    assert adc.half == 127 and np.allclose(adc.gain, 127 / 2.0) and np.allclose(adc.step, 2.0 / 127)
    with pytest.raises(ValueError, match="full_scale"):
        cv.Adc(hw.adc, None)
    assert cv.Adc(load_hardware("pcm-ibm", {"adc.output_range": "dynamic"}).adc, None).gain is None


def test_counter_normals_twin_is_bit_exact_and_gaussian():
    y = torch.zeros(1, 1, 7, 9)
    var = torch.ones(1, 1, 7, 9)
    res = kernels.adc_accumulate(y, adc=None, var=var, plane_weights=np.ones(1), keys=(1234, 1),
                                 factor=np.ones((1, 9)), row_scale=np.ones(7), bias=None, n_out=9,
                                 blocks=np.array([[0, 9, 0]]))
    assert np.array_equal(res["out"].numpy(), kernels.counter_normals(1234, 7, 9))
    z = kernels.counter_normals(99, 400, 1001).astype(np.float64).ravel()
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1) < 0.005
    assert abs(((z - z.mean()) ** 4).mean() / z.var() ** 2 - 3) < 0.03
    assert abs((np.abs(z) > 1.96).mean() - 0.05) < 0.002


@pytest.mark.parametrize("x_range,bits,serial", [(1.5, 8, False), (None, 6, False), (None, None, False),
                                                 (2.0, 4, True)])
def test_dac_kernel_matches_twin(x_range, bits, serial):
    x = torch.randn(33, 70, generator=torch.Generator().manual_seed(1))
    card = None if bits is None else load_hardware("pcm-ibm", {"dac.bits": bits, "dac.bit_serial": serial}).dac
    dac = cv.Dac(card, x_range)
    enc = dac.encode(x, 3, 32, want_squares=True)
    ref = kernels.dac_encode_ref(x, dac, n_tiles=3, width=32)
    assert torch.allclose(enc["planes"], ref, atol=1e-6)
    assert torch.allclose(enc["squares"], ref * ref, atol=1e-6)
    assert enc["lo"] == float(x.min()) and enc["hi"] == float(x.max())


def test_dac_kernel_flags_non_finite():
    x = torch.randn(4, 5)
    x[2, 3] = float("inf")
    enc = cv.Dac(load_hardware("pcm-ibm").dac, 1.0).encode(x, 1, 5)
    assert np.isnan(enc["lo"]) and np.isnan(enc["hi"])


@pytest.mark.parametrize("cfg", [
    dict(adc_bits=8), dict(adc_bits=None), dict(adc_bits=5, dynamic=True), dict(adc_bits=6, noise_lsb=1.5),
    dict(adc_bits=7, s_curve=2.0), dict(adc_bits=1), dict(adc_bits=8, var=True),
    dict(adc_bits=None, var=True)])
def test_adc_kernel_matches_twin(cfg):
    y, args = adc_case(cfg)
    got = kernels.adc_accumulate(y, **args)
    ref = kernels.adc_accumulate_ref(y, **args)
    assert torch.allclose(got["out"].double(), ref, rtol=1e-5, atol=1e-5)
    assert got["lo"] == float(got["out"].min()) and got["hi"] == float(got["out"].max())
