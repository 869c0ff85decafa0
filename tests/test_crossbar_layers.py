"""analogize / set_drift_time / collect_stats: ideal equals digital, effects separable, invariants."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import analogdiff as ad
from analogdiff.crossbar.layers import (AnalogLinear, analogize, collect_stats, reset_stats,
                                        set_drift_time, set_read_noise_rank)

# pcm-ibm with every non-ideality off, small tiles so that layers span several tiles
QUIET = {"device.prog_noise": None, "device.read_noise": None, "drift": None, "wire": None,
         "dac": None, "adc": None, "tile.rows": 24, "tile.cols": 16}


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(40, 30), nn.GELU(), nn.Linear(30, 20)).eval().requires_grad_(False)


class TinyBlock(nn.Module):
    """Transformer-like: embedding, LayerNorm, attention with softmax, MLP, head — linears *called*."""

    def __init__(self, vocab=17, d=32, heads=4):
        super().__init__()
        self.emb, self.ln, self.heads = nn.Embedding(vocab, d), nn.LayerNorm(d), heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.up, self.down, self.head = nn.Linear(d, 2 * d), nn.Linear(2 * d, d), nn.Linear(d, vocab)

    def forward(self, ids):
        x = self.emb(ids)  # (B, T, d)
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        x = x + self.down(F.gelu(self.up(self.ln(x))))
        return self.head(x)  # (B, T, vocab)


def _ids(b=3, t=10, seed=0):
    return torch.randint(0, 17, (b, t), generator=torch.Generator().manual_seed(seed))


def _x(n=64, d=40, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_ideal_card_equals_digital_mlp_and_transformer():
    mlp = _mlp()
    x = _x()
    for hw in ("ideal", ad.load_hardware("pcm-ibm", overrides=QUIET)):
        am = analogize(mlp, hw, seed=0)
        assert torch.allclose(am(x), mlp(x), rtol=1e-5, atol=1e-5)
    torch.manual_seed(1)
    block = TinyBlock().eval()
    ids = _ids()
    am = analogize(block, "ideal", seed=0)
    assert torch.allclose(am(ids), block(ids), rtol=1e-4, atol=1e-5)
    assert sum(isinstance(m, AnalogLinear) for m in am.modules()) == 5
    assert isinstance(am.emb, nn.Embedding) and isinstance(am.ln, nn.LayerNorm)


def test_original_untouched_and_bit_slices_exact():
    mlp = _mlp()
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, "tile.bit_slices": 3})
    am = analogize(mlp, hw)
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())
    assert isinstance(mlp[0], nn.Linear) and isinstance(am[0], AnalogLinear)
    assert torch.allclose(am(_x()), mlp(_x()), rtol=1e-5, atol=1e-5)


EFFECTS = {
    "prog_noise": {"device.prog_noise": "pcm-ibm"},
    "read_noise": {"device.read_noise": "pcm-1f"},
    "drift": {"drift": {"model": "pcm-ibm", "t0_s": 20.0}},
    "stuck": {"device.stuck_off_fraction": 0.05},
    "wire": {"wire": {"r_row_ohm": 20.0, "r_col_ohm": 20.0}},
    "dac": {"dac": {"bits": 4, "e_conv_pj": 0.1, "t_conv_ns": 1.0}},
    "adc": {"adc": {"bits": 4, "energy_model": "walden", "walden_fom_fj": 1.0, "t_conv_ns": 1.0}},
}


@pytest.mark.parametrize("effect", sorted(EFFECTS))
def test_each_effect_switches_on_alone(effect):
    mlp, x = _mlp(), _x()
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, **EFFECTS[effect]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        am = analogize(mlp, hw, seed=0, calibration=x)
    set_drift_time(am, 3600.0)
    err = float((am(x) - mlp(x)).std() / mlp(x).std())
    assert 1e-4 < err < 0.5, (effect, err)


def test_wires_match_column_currents_exactly():
    from analogdiff.crossbar.wires import column_currents

    lin = nn.Linear(50, 20, bias=False).requires_grad_(False)
    x = _x(30, 50)
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, "wire": {"r_row_ohm": 5.0, "r_col_ohm": 3.0},
                                                "tile.rows": 64, "tile.cols": 32,
                                                "tile.weight_scale": "per-layer"})
    am = analogize(lin, hw)
    g = am.tile.g_prog_us[0] * 1e-6  # (64, 64) devices, one tile
    scale = x.abs().amax(1, keepdim=True).double()  # dynamic input range (no calibration, no DAC)
    v = torch.zeros(30, 64, dtype=torch.float64)
    v[:, :50] = x.double() / scale * 0.2
    i = column_currents(g, v, 5.0, 3.0)  # (30, 64) A
    y_ref = (i[:, 0::2] - i[:, 1::2])[:, :20] / 0.2 * 1e6 * am.weight_per_us.double() * scale
    assert torch.allclose(am(x).double(), y_ref, rtol=1e-5, atol=1e-6 * float(y_ref.abs().max()))


def test_drift_lowers_mean_conductance_and_compensation_restores_scale():
    mlp, x = _mlp(), _x()
    y0 = mlp(x)
    for comp in ("global", None):
        drift = {"model": "pcm-ibm", "t0_s": 20.0, **({"compensation": comp} if comp else {})}
        am = analogize(mlp, ad.load_hardware("pcm-ibm", overrides={**QUIET, "drift": drift}), seed=0)
        g_prev, scales = math.inf, []
        for t in (0.0, 3600.0, 86400.0, 3.15e7):
            set_drift_time(am, t)
            g = collect_stats(am)["layers"]["0"]["mean_g_us"]
            assert g < g_prev
            g_prev = g
            y = am(x)
            scales.append(float((y * y0).sum() / (y0 * y0).sum()))
        if comp:
            assert all(abs(s - 1) < 0.05 for s in scales), scales
        else:
            assert scales[-1] < 0.8 and scales == sorted(scales, reverse=True), scales


def test_same_seed_bit_identical_and_fresh_read_noise():
    mlp, x = _mlp(), _x()
    hw = ad.load_hardware("pcm-ibm", overrides={"wire": None, "tile.rows": 24, "tile.cols": 16})
    runs = []
    for _ in range(2):
        am = analogize(mlp, hw, seed=7, calibration=x)
        set_drift_time(am, 3600.0)
        runs.append((am(x), am(x)))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][0], runs[0][1])  # read noise is drawn fresh at every MVM
    other = analogize(mlp, hw, seed=8, calibration=x)
    set_drift_time(other, 3600.0)
    assert not torch.equal(other(x), runs[0][0])
    set_drift_time(am, 3600.0)  # resets the per-MVM noise stream
    assert torch.equal(am(x), runs[1][0])


def test_dropping_the_state_cache_changes_no_output():
    """analogize(keep_state_cache=False) frees each layer's float64 tile state and gives the same outputs at
    programming, after a drift and after a change of read-noise rank (which then solves the state again)."""
    mlp, x = _mlp(), _x()
    hw = ad.load_hardware("pcm-ibm", overrides={"wire.r_row_ohm": 3.0, "tile.rows": 24, "tile.cols": 16})
    keep, lean = (analogize(mlp, hw, seed=3, calibration=x, keep_state_cache=k) for k in (True, False))
    layers = [m for m in lean.modules() if isinstance(m, AnalogLinear)]
    assert all(m.state.w_eff_us is None and m.tile._cache == (None, None) for m in layers)
    assert all(m.state.w_eff_us is not None for m in keep.modules() if isinstance(m, AnalogLinear))
    assert torch.equal(keep(x), lean(x))
    for step in (lambda am: set_drift_time(am, 86400.0), lambda am: set_read_noise_rank(am, 2)):
        step(keep), step(lean)
        assert torch.equal(keep(x), lean(x))
    assert all(m.state.w_eff_us is None for m in layers)


def test_non_finite_input_names_the_layer():
    block = TinyBlock()
    am = analogize(block, "ideal")
    with pytest.raises(ValueError, match="'up'"):
        am.up(torch.tensor([[float("nan")] * 32]))
    mlp = analogize(_mlp(), "ideal")
    x = _x()
    x[3, 4] = float("inf")
    with pytest.raises(ValueError, match="analog layer '0'"):
        mlp(x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="GPU"):
        analogize(_mlp(), "h100-sxm")
    with pytest.raises(ValueError, match="no nn.Linear"):
        analogize(nn.Sequential(nn.GELU()), "ideal")
    with pytest.raises(ValueError, match="all zero"):
        analogize(nn.Linear(3, 2).requires_grad_(False).apply(lambda m: m.weight.zero_()), "ideal")
    am = analogize(_mlp(), "ideal")
    with pytest.raises(ValueError):
        set_drift_time(am, -1.0)


def test_calibration_forms_and_fallback_warning():
    mlp, x = _mlp(), _x()
    hw = ad.load_hardware("pcm-ibm", overrides={"wire": None, "device.read_noise": None})
    a = analogize(mlp, hw, calibration=x)
    b = analogize(mlp, hw, calibration=lambda m: m(x))
    c = analogize(mlp, hw, calibration=[x[:32], x[32:]])
    assert torch.equal(a(x), b(x)) and torch.equal(a(x), c(x))
    assert a[0].dac.x_range == pytest.approx(float(x.abs().max()))
    with pytest.warns(UserWarning, match="calibration"):
        d = analogize(mlp, hw)
    assert d[0].dac.x_range is None  # dynamic per-vector ranges
    err = float((d(x) - mlp(x)).std() / mlp(x).std())
    assert err < 0.2


def test_collect_stats_schema():
    mlp, x = _mlp(), _x()
    hw = ad.load_hardware("pcm-ibm", overrides={"wire": None, "tile.rows": 24, "tile.cols": 16})
    am = analogize(mlp, hw, calibration=x[:16])
    am(x)
    am(x[:10])
    st = collect_stats(am)["layers"]
    assert set(st) == {"0", "2"}
    s = st["0"]
    assert set(s) == {"in_features", "out_features", "mvms", "mean_abs_x_norm", "mean_x2_norm",
                      "mean_g_us", "adc_clip_fraction", "x_range", "y_range"}
    assert (s["in_features"], s["out_features"], s["mvms"]) == (40, 30, 74)
    assert 0 < s["mean_x2_norm"] < s["mean_abs_x_norm"] < 1
    assert 0 < s["mean_g_us"] < 25.0 and 0 <= s["adc_clip_fraction"] < 0.05
    assert s["x_range"] == [pytest.approx(float(x.min())), pytest.approx(float(x.max()))]
    assert s["y_range"][0] < 0 < s["y_range"][1]
    reset_stats(am)
    assert collect_stats(am)["layers"]["0"]["mvms"] == 0


def test_bit_serial_and_row_tiles_close_to_digital():
    mlp, x = _mlp(), _x()
    hw = ad.load_hardware("pcm-ibm", overrides={
        **QUIET, "dac": {"bits": 6, "bit_serial": True, "e_conv_pj": 0.1, "t_conv_ns": 1.0},
        "adc": {"bits": 8, "energy_model": "walden", "walden_fom_fj": 1.0, "t_conv_ns": 1.0}})
    am = analogize(mlp, hw, calibration=x)
    assert am[0].n_row_tiles == 2
    err = float((am(x) - mlp(x)).std() / mlp(x).std())
    assert 1e-4 < err < 0.1


def test_low_rank_read_noise_keeps_the_noise_power():
    lin = nn.Linear(64, 48, bias=False).requires_grad_(False)
    x = _x(400, 64)
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, "device.read_noise": "pcm-1f",
                                                "tile.rows": 64, "tile.cols": 48})
    errs = []
    for rank in (None, 8):
        am = analogize(lin, hw, seed=0, read_noise_rank=rank)
        errs.append(float((am(x) - lin(x)).std()))
    assert errs[1] == pytest.approx(errs[0], rel=0.05)


def test_output_level_read_noise_equals_per_device_noise():
    """Drawing N(0, Σ x² σ²) per output is the same distribution as per-device Gaussian read noise."""
    from analogdiff.crossbar.tile import Tile

    lin = nn.Linear(24, 16, bias=False).requires_grad_(False)
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, "device.read_noise": "pcm-1f"})
    am = analogize(lin, hw)
    state = am.state  # one tile (K = 1), 24 × 16 pairs
    x = _x(1, 24).abs().double()[None]  # (1, 1, rows)
    gen = torch.Generator().manual_seed(0)
    reads = 20_000
    sigma = state.read_var_us2.sqrt()  # (1, rows, cols) µS per pair
    devicewise = torch.stack([(x[0] @ (state.w_eff_us[0] + sigma[0] * torch.randn(sigma[0].shape,
                                                                                    generator=gen,
                                                                                    dtype=torch.float64)))[0]
                              for _ in range(reads)])  # (reads, cols)
    z = torch.randn((1, reads, 16), generator=gen, dtype=torch.float64)
    outputwise = Tile.mvm(x.expand(1, reads, 24), state, z)[0]
    tol = 4 * float(devicewise.std(0).max()) / reads ** 0.5
    assert torch.allclose(outputwise.mean(0), devicewise.mean(0), atol=tol)
    assert torch.allclose(outputwise.std(0), devicewise.std(0), rtol=0.04)


def test_layer_kernels_match_the_tile_reference():
    """The fused per-MVM path equals Tile.mvm + converters on the same normals."""
    from analogdiff.crossbar import kernels
    from analogdiff.crossbar.layers import derive_seed
    from analogdiff.crossbar.tile import Tile

    lin = nn.Linear(24, 16).requires_grad_(False)
    x = _x(50, 24)
    hw = ad.load_hardware("pcm-ibm", overrides={**QUIET, "device.read_noise": "pcm-1f",
                                                "device.prog_noise": "pcm-ibm", "device.read_noise_exact": True})
    am = analogize(lin, hw, seed=3)
    set_drift_time(am, 100.0)
    y = am(x)
    key = torch.randint(0, 2 ** 62, (2,), generator=torch.Generator().manual_seed(derive_seed(3, 0, 3)))
    scale = x.abs().amax(1, keepdim=True)
    z = torch.from_numpy(kernels.counter_normals(int(key[0]), 50, 16)).double()[None]
    ref = Tile.mvm((x / scale).double()[None], am.state, z)[0] * am.weight_per_us.double() * scale.double()
    ref = ref * am.state.alpha[0] + lin.bias.double()
    assert torch.allclose(y.double(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("card", [c for c in ad.list_hardware() if ad.load_hardware(c).kind == "analog"])
def test_every_analog_preset_runs(card):
    mlp, x = _mlp(), _x()
    hw = ad.load_hardware(card, overrides={"wire": None, "tile.rows": 24, "tile.cols": 16})
    am = analogize(mlp, hw, seed=0, calibration=x)
    errs = []
    for t in (0.0, 86400.0, 3.15e7):
        set_drift_time(am, t)
        y = am(x)
        assert torch.isfinite(y).all()
        errs.append(float((y - mlp(x)).std() / mlp(x).std()))
    assert max(errs) < 1.0, errs
    if card == "ideal":
        assert max(errs) < 1e-5
    st = collect_stats(am)["layers"]["0"]
    assert 0 <= st["mean_abs_x_norm"] <= 1 and st["mvms"] == 3 * 64
