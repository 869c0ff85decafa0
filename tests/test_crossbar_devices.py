"""Device statistics against the cards' formulas (aihwkit's fits) and physical invariants."""
import math

import pytest
import torch

from analogdiff.config import ConfigError, load_hardware
from analogdiff.crossbar import devices

G_MAX = {"pcm-ibm": 25.0, "pcm-hermes": 20.7, "rram-wan2022": 40.0, "gaussian": 200.0}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("model", ["pcm-ibm", "pcm-hermes", "rram-wan2022", "gaussian"])
def test_programming_noise_std_matches_card_polynomial(model):
    g_max = G_MAX[model]
    levels = torch.tensor([0.25, 0.5, 0.75, 1.0], dtype=torch.float64) * g_max
    g_target = levels.repeat_interleave(40_000)
    std = devices.prog_noise_std_us(g_target, model, g_max, std_us=0.39)
    g_prog = devices.program_conductances(g_target, std, _gen())
    for lv in levels:
        sel = g_target == lv
        x = float(lv / g_max)
        if model == "gaussian":
            expect = 0.39
        else:
            coeffs, g_ref = devices.PROG_POLY[model]
            expect = sum(c * x ** i for i, c in enumerate(coeffs)) * g_max / g_ref
        got = float((g_prog[sel] - lv).std())
        assert got == pytest.approx(expect, rel=0.03), (model, x)


def test_programming_noise_polynomials_are_the_published_ones():
    # sigma at x = 1 from the fits quoted in shared/REFERENCES.md (aihwkit pcm.py, reram.py)
    one = torch.tensor([25.0], dtype=torch.float64)
    assert float(devices.prog_noise_std_us(one, "pcm-ibm", 25.0)) == pytest.approx(0.26348 + 1.9650 - 1.1731)
    forty = torch.tensor([40.0], dtype=torch.float64)
    assert float(devices.prog_noise_std_us(forty, "rram-wan2022", 40.0)) == pytest.approx(
        0.348 + 16.03 - 43.853 + 45.393 - 16.815)


def test_conductances_never_negative():
    g = torch.zeros(10_000, dtype=torch.float64)
    out = devices.program_conductances(g, devices.prog_noise_std_us(g, "pcm-ibm", 25.0), _gen())
    assert (out >= 0).all() and (out > 0).any()


def test_pcm_drift_exponent_statistics():
    x = torch.full((200_000,), 0.5, dtype=torch.float64)
    nu = devices.sample_drift_nu(x * 25.0, "pcm-ibm", 25.0, _gen())
    mu = min(max(-0.0155 * math.log(0.5) + 0.0244, 0.049), 0.1)
    sd = min(max(-0.0125 * math.log(0.5) - 0.0059, 0.008), 0.045)
    # nu = |N(mu, sd)|; with mu >> sd the fold is negligible
    assert float(nu.mean()) == pytest.approx(mu, rel=0.01)
    assert float(nu.std()) == pytest.approx(sd, rel=0.02)
    assert (nu >= 0).all()


def test_drift_lowers_every_conductance_monotonically():
    g0 = torch.rand(5000, dtype=torch.float64, generator=_gen(1)) * 25.0
    nu = devices.sample_drift_nu(g0, "pcm-ibm", 25.0, _gen(2))
    prev = devices.drift_conductances(g0, nu, 0.0, 20.0)
    assert torch.equal(prev, g0)
    for t in (1.0, 3600.0, 86400.0, 3.15e7):
        now = devices.drift_conductances(g0, nu, t, 20.0)
        assert (now <= prev).all() and now.mean() < prev.mean()
        prev = now


def test_rram_relaxation_spread_grows_to_the_day_fit():
    g_t = torch.full((100_000,), 20.0, dtype=torch.float64)
    prog = devices.prog_noise_std_us(g_t, "rram-wan2022", 40.0)
    g_p = devices.program_conductances(g_t, prog, _gen(0))
    z = torch.randn(g_t.shape, generator=_gen(1), dtype=torch.float64)
    day = devices.relax_conductances(g_p, g_t, z, 86400.0, 40.0, prog)
    expect = devices.rram_relaxation_std_us(g_t[:1], 86400.0, 40.0)
    assert float((day - g_t).std()) == pytest.approx(float(expect), rel=0.03)
    assert float(expect) > float(prog[0])


def test_read_noise_pcm_1f_formula():
    g = torch.tensor([25.0, 12.5, 0.5], dtype=torch.float64)
    got = devices.read_noise_std_us(g, g, "pcm-1f", 25.0, 3600.0, 20.0, 250e-9)
    x = g / 25.0
    q = torch.clamp(0.0088 / x ** 0.65, max=0.2)
    expect = g * q * math.sqrt(math.log((3620.0 + 250e-9) / (2 * 250e-9)))
    assert torch.allclose(got, expect)
    gauss = devices.read_noise_std_us(g, g, "gaussian", 40.0, 0.0, 1.0, 1e-8, rel=0.01)
    assert torch.allclose(gauss, torch.full_like(g, 0.4))


def test_stuck_fractions_match():
    on, off = devices.stuck_masks((1_000_000,), 0.01, 0.03, _gen())
    assert not (on & off).any()
    for mask, p in ((on, 0.01), (off, 0.03)):
        frac = float(mask.double().mean())
        assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / 1e6)


def test_bad_device_parameters_rejected():
    with pytest.raises(ValueError):
        devices.stuck_masks((10,), 0.7, 0.5, _gen())
    with pytest.raises(ValueError):
        devices.drift_conductances(torch.ones(3), torch.ones(3), -1.0, 20.0)
    with pytest.raises(ConfigError):
        load_hardware("pcm-ibm", overrides={"device.g_min_us": 30.0})
    with pytest.raises(ConfigError):
        load_hardware("pcm-ibm", overrides={"device.stuck_on_fraction": 1.5})
