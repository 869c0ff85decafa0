"""crossbar/hwa.py: the injected programming noise has the device law's statistics, the quantizers pass
gradients straight through, clipping keeps every channel within ±sigma·std, drift times are log-uniform."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import analogdiff as ad
from analogdiff.checks import ConfigError
from analogdiff.crossbar import hwa
from analogdiff.crossbar.converters import dac_quantize

QUIET = {"device.prog_noise": None, "device.read_noise": None, "drift": None, "wire": None, "dac": None,
         "adc": None}
PCM_G0_STD_US = 0.26348  # aihwkit pcm.py prog_coeff[0]: the programming-noise std of a device at x = 0


@pytest.mark.parametrize("x", [0.25, 0.5, 1.0])
def test_programming_noise_is_the_device_law(x):
    """Weights at relative conductance x (row 0 at 1 fixes each column's scale; g_max 25 µS, g_min 0):
    the g+ device is programmed to 25x µS with sigma(x) = 0.26348 + 1.9650x - 1.1731x² µS (aihwkit
    PCMLikeNoiseModel), the g- device to 0 µS with sigma(0) = 0.26348 µS, clipped at 0 µS. So the error of
    g+ - g-, in µS, has mean -sigma0/sqrt(2 pi) and variance sigma(x)² + sigma0²(1/2 - 1/(2 pi)) (a normal
    minus a rectified normal). 65,280 draws: the std is checked to 2 % (its standard error is 0.3 %), the
    mean to 0.02 µS (standard error 0.004 µS)."""
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, "device.prog_noise": "pcm-ibm"})
    w = torch.full((64, 256), x)  # (out, in): one 256-row tile
    w[:, 0] = 1.0
    layer = hwa.attach(nn.Sequential(nn.Linear(256, 64)), hw, torch.Generator().manual_seed(7))[0]
    with torch.no_grad():
        layer.weight.copy_(w)
    errors = []
    for _ in range(4):  # four programmings
        w_eff, var, _ = layer.programmed_weights()
        assert var is None  # read noise off
        errors.append(((w_eff - w) * 25.0)[:, 1:].double().flatten())  # µS: weight per µS is 1/25
    e = torch.cat(errors)
    sigma = 0.26348 + 1.9650 * x - 1.1731 * x ** 2
    s0 = PCM_G0_STD_US
    assert float(e.std()) == pytest.approx(math.sqrt(sigma ** 2 + s0 ** 2 * (0.5 - 0.5 / math.pi)), rel=0.02)
    assert float(e.mean()) == pytest.approx(-s0 / math.sqrt(2 * math.pi), abs=0.02)


def test_drift_is_compensated_and_read_noise_follows_the_law():
    """One day of PCM drift with global compensation: the compensated weights keep their mean (to 1 %), and
    the read-noise variance handed to the forward pass is the device law's: |g(t)| Q(x) sqrt(ln((t + t0 +
    t_read)/(2 t_read))) on the g+ device (x = 0.5: Q = 0.0088 / 0.5^0.65), 0 on the g- device at 0 µS."""
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, "drift": {"model": "pcm-ibm", "t0_s": 20.0,
                                                                   "compensation": "global"},
                                                "device.read_noise": "pcm-1f"})
    layer = hwa.attach(nn.Sequential(nn.Linear(256, 64)), hw, torch.Generator().manual_seed(1))[0]
    w = torch.full((64, 256), 0.5)
    w[:, 0] = 1.0
    with torch.no_grad():
        layer.weight.copy_(w)
    hwa.set_step([layer], 86400.0)
    w_eff, var, us_to_w = layer.programmed_weights()
    assert float(w_eff[:, 1:].mean()) == pytest.approx(0.5, rel=0.01)
    alpha = float(us_to_w[0, 0]) * 25.0  # compensation factor (weight per µS is 1/25)
    assert alpha > 1.0  # drift lowers conductances, compensation scales back up
    g_t = w_eff[:, 1:].T.double() * 25.0 / alpha  # (in-1, out) drifted conductances of g+, µS (no prog noise)
    q = 0.0088 / 0.5 ** 0.65
    f = math.sqrt(math.log((86400.0 + 20.0 + 250e-9) / (2 * 250e-9)))
    expected = (g_t * q * f) ** 2 * (alpha / 25.0) ** 2  # weight units²
    assert torch.allclose(var[1:].double(), expected, rtol=1e-4)


def test_quantizers_pass_gradients_straight_through():
    """4-bit DAC and ADC, two row tiles, noise off: the forward pass is quantized (differs from nn.Linear),
    the backward pass is nn.Linear's at the quantized inputs: dL/dx = c W, dL/dW = cᵀ x_q, dL/db = Σ c."""
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, "tile.rows": 24, "tile.cols": 16,
                                                "dac": {"bits": 4, "e_conv_pj": 0.1, "t_conv_ns": 1.0},
                                                "adc": {"bits": 4, "energy_model": "walden", "walden_fom_fj": 1.0,
                                                        "t_conv_ns": 1.0}})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 30))
    layers = hwa.attach(model, hw, torch.Generator().manual_seed(0))
    layer = layers[0]
    x_cal = torch.randn(256, 40)
    hwa.calibrate(model, layers, lambda m: m(x_cal))
    assert layer.x_range is not None and layer.adc_fs_us.shape == (2, 2)
    model.train()
    x = torch.randn(8, 40, requires_grad=True)
    y = model(x)
    digital = F.linear(x, layer.weight, layer.bias)
    assert not torch.allclose(y, digital, atol=1e-3)  # the converters do act
    c = torch.randn(8, 30)
    (y * c).sum().backward()
    xq = dac_quantize(x.detach() / layer.x_range, 4) * layer.x_range
    assert torch.allclose(x.grad, c @ layer.weight.detach(), atol=1e-6)
    assert torch.allclose(layer.weight.grad, c.T @ xq, atol=1e-5)
    assert torch.allclose(layer.bias.grad, c.sum(0), atol=1e-6)


def test_ste_is_the_identity_backwards():
    x = torch.linspace(-3, 3, 101, requires_grad=True)
    q = hwa.ste(x, torch.round(x.detach()).clamp(-1, 1))
    assert torch.equal(q, torch.round(x.detach()).clamp(-1, 1))
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_weights_stay_within_the_clip_range_after_steps():
    """AdamW steps with a large learning rate push weights outward; after every step's clip each output
    channel lies within ±sigma·(its std before the clip), entries inside are untouched and entries outside
    sit exactly on the bound (a hand computation per row)."""
    sigma = 1.5
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 8))
    layers = hwa.attach(model, ad.load_hardware("ideal"), torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=0.5)
    clipped = 0
    for step in range(5):
        loss = (model(torch.randn(16, 32)) ** 2).sum() * (-1.0)  # grow the outputs
        opt.zero_grad()
        loss.backward()
        opt.step()
        before = layers[0].weight.detach().clone()
        hwa.clip_weights_(layers, sigma)
        after = layers[0].weight.detach()
        for row_b, row_a in zip(before, after):
            bound = sigma * float(row_b.std())
            assert float(row_a.abs().max()) <= bound * (1 + 1e-6)
            inside = row_b.abs() <= bound
            assert torch.equal(row_a[inside], row_b[inside])
            assert torch.allclose(row_a[~inside].abs(), torch.full_like(row_a[~inside], bound))
            clipped += int((~inside).sum())
    assert clipped > 0  # the clip did act


def test_drift_times_are_log_uniform():
    """log10 of 4000 draws between 1 s and 1 year is uniform on [0, 7.5]: mean 3.75, std 7.5/sqrt(12)."""
    gen = torch.Generator().manual_seed(0)
    t = torch.tensor([hwa.sample_drift_time_s(gen) for _ in range(4000)], dtype=torch.float64)
    lo = torch.log10(t)
    span = math.log10(hwa.YEAR_S)
    assert float(t.min()) >= 1.0 and float(t.max()) <= hwa.YEAR_S
    assert float(lo.mean()) == pytest.approx(span / 2, abs=0.12)  # standard error 0.034
    assert float(lo.std()) == pytest.approx(span / math.sqrt(12), rel=0.03)


def test_eval_mode_is_the_digital_layer():
    model = nn.Sequential(nn.Linear(12, 5))
    ref = model[0].weight.detach().clone(), model[0].bias.detach().clone()
    hwa.attach(model, ad.load_hardware("pcm-ibm"), torch.Generator().manual_seed(0))
    assert list(model.state_dict()) == ["0.weight", "0.bias"]
    x = torch.randn(3, 12)
    assert torch.equal(model.eval()(x), F.linear(x, *ref))


@pytest.mark.parametrize("card, needle", [("h100-sxm", "not an analog card"), ("rram-wan2022", "bit-serial")])
def test_unsupported_cards_are_refused(card, needle):
    with pytest.raises(ConfigError, match=needle):
        hwa.check_card(ad.load_hardware(card))
