"""AnalogConv: ideal card reproduces nn.Conv1d/nn.Conv2d exactly; MVM counts, calibration, pricing."""
import pytest
import torch
from torch import nn

import analogdiff as ad
from analogdiff.crossbar.conv import AnalogConv
from analogdiff.crossbar.layers import AnalogLinear, analogize, collect_stats, reset_stats, set_drift_time
from analogdiff.energy.estimate import estimate_layers

# pcm-ibm with every non-ideality off and small tiles: the conv matrices span several row and column tiles
QUIET = {"device.prog_noise": None, "device.read_noise": None, "drift": None, "wire": None,
         "dac": None, "adc": None, "tile.rows": 24, "tile.cols": 16}


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _conv(cls, *args, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(*args, **kw).eval().requires_grad_(False)


CASES = [  # (layer, in channels, out channels, input shape, keywords)
    (nn.Conv1d, 8, 36, (3, 8, 23), dict(kernel_size=3)),
    (nn.Conv1d, 8, 36, (3, 8, 23), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    (nn.Conv1d, 8, 36, (3, 8, 23), dict(kernel_size=4, padding="same", padding_mode="reflect")),  # asymmetric
    (nn.Conv1d, 8, 36, (3, 8, 23), dict(kernel_size=5, stride=3, padding=2, padding_mode="replicate",
                                        bias=False)),
    (nn.Conv1d, 8, 36, (3, 8, 23), dict(kernel_size=3, padding=2, dilation=3, padding_mode="circular")),
    (nn.Conv1d, 8, 36, (3, 8, 23), dict(kernel_size=3, padding="valid", groups=2)),
    (nn.Conv2d, 6, 18, (2, 6, 11, 9), dict(kernel_size=3)),
    (nn.Conv2d, 6, 18, (2, 6, 11, 9), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2))),
    (nn.Conv2d, 6, 18, (2, 6, 11, 9), dict(kernel_size=(2, 4), padding="same", dilation=(2, 1),
                                           padding_mode="reflect")),
    (nn.Conv2d, 6, 18, (2, 6, 11, 9), dict(kernel_size=3, stride=2, padding=1, padding_mode="replicate",
                                           bias=False)),
    (nn.Conv2d, 6, 18, (2, 6, 11, 9), dict(kernel_size=3, padding=(2, 1), padding_mode="circular", groups=3)),
    (nn.Conv2d, 6, 18, (2, 6, 11, 9), dict(kernel_size=1, stride=2, groups=6)),  # depthwise-like 1×1
]


@pytest.mark.parametrize("cls, c_in, c_out, shape, kw", CASES)
@pytest.mark.parametrize("card", ["ideal", "quiet"])
def test_conv_equals_torch(cls, c_in, c_out, shape, kw, card):
    """The 'quiet' card splits each matrix over several 24×16 tiles; both reproduce torch exactly."""
    conv = _conv(cls, c_in, c_out, **kw)
    hw = ad.load_hardware("pcm-ibm", overrides=QUIET) if card == "quiet" else "ideal"
    am = analogize(conv, hw)
    assert isinstance(am, AnalogConv)
    x = _x(*shape)
    assert torch.allclose(am(x), conv(x), rtol=1e-5, atol=1e-5)
    assert torch.allclose(am(x[0]), conv(x[0]), rtol=1e-5, atol=1e-5)  # unbatched input


class ConvNet(nn.Module):
    """Conv1d over a sequence, Conv2d with groups over an image, a Linear head."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2)
        self.c2 = nn.Conv2d(6, 8, 3, padding=1, groups=2)
        self.head = nn.Linear(8, 5)

    def forward(self, x):                                   # x (B, 4, 17)
        h = torch.relu(self.c1(x))                          # (B, 6, 8)
        h = self.c2(h.unsqueeze(-1).expand(-1, -1, -1, 3))  # (B, 8, 8, 3)
        return self.head(h.mean((2, 3)))                    # (B, 5)


def test_convnet_equals_torch_and_stats_count_output_positions():
    torch.manual_seed(0)
    net = ConvNet().eval()
    am = analogize(net, "ideal")
    x = _x(2, 4, 17)
    assert torch.allclose(am(x), net(x), rtol=1e-5, atol=1e-6)
    st = collect_stats(am)["layers"]
    assert set(st) == {"c1", "c2", "head"}  # one entry per layer, not per group matrix
    # hand count: c1 L_out = ⌊(17 + 2·1 − 2·(3 − 1) − 1) / 2⌋ + 1 = 8 → 2·8 MVMs;
    # c2: 8×3 positions, 2 groups (matrices 3·9 = 27 × 4) → 2·24·2 MVMs; head: 2 vectors
    assert (st["c1"]["in_features"], st["c1"]["out_features"], st["c1"]["mvms"]) == (12, 6, 16)
    assert (st["c2"]["in_features"], st["c2"]["out_features"], st["c2"]["matrices"], st["c2"]["mvms"]) == \
        (27, 4, 2, 96)
    assert st["head"]["mvms"] == 2
    am(x[:1])
    assert collect_stats(am)["layers"]["c1"]["mvms"] == 24
    reset_stats(am)
    assert all(s["mvms"] == 0 for s in collect_stats(am)["layers"].values())


def test_priced_mvms_equal_counted():
    torch.manual_seed(0)
    am = analogize(ConvNet().eval(), "pcm-ibm", calibration=_x(4, 4, 17, seed=1))
    am(_x(3, 4, 17))
    stats = collect_stats(am)
    cost = estimate_layers(stats, "pcm-ibm")
    counted = {name: s["mvms"] for name, s in stats["layers"].items()}
    assert counted == {"c1": 3 * 8, "c2": 3 * 24 * 2, "head": 3}
    assert {name: ly["mvms"] for name, ly in cost["layers"].items()} == counted
    assert cost["counts"]["mvms"] == sum(counted.values())
    assert cost["counts"]["macs"] == 24 * 12 * 6 + 144 * 27 * 4 + 3 * 8 * 5
    assert cost["tiles"] == ad.mapping_report(am).analog_tiles == 4  # one slice: the two tilings agree


def test_calibration_records_patches_and_seeds_are_reproducible():
    conv = _conv(nn.Conv2d, 3, 5, 3, padding=1, groups=1)
    x = _x(4, 3, 8, 8)
    hw = ad.load_hardware("pcm-ibm", overrides={"wire": None, "dac.range_percentile": 100.0})
    a = analogize(conv, hw, seed=3, calibration=x)
    m = a.matrices[0]
    assert m.calibrated and m.dac.x_range == pytest.approx(float(x.abs().max()))  # padding adds zeros only
    set_drift_time(a, 3600.0)
    b = analogize(conv, hw, seed=3, calibration=x)
    set_drift_time(b, 3600.0)
    assert torch.equal(a(x), b(x))
    err = float((a(x) - conv(x)).std() / conv(x).std())
    assert 0 < err < 0.3


def test_groups_use_independent_noise_streams():
    conv = _conv(nn.Conv1d, 4, 4, 1, groups=2, bias=False)
    with torch.no_grad():  # both groups hold the same 2×2 matrix
        conv.weight[2:] = conv.weight[:2]
    am = analogize(conv, ad.load_hardware("pcm-ibm", overrides={"wire": None}), calibration=_x(2, 4, 50))
    g0, g1 = (m.state.w_eff_us for m in am.matrices)
    assert not torch.equal(g0, g1)  # programming noise drawn per group


def test_bad_input_names_the_layer():
    am = analogize(nn.Sequential(_conv(nn.Conv2d, 3, 4, 3)), "ideal")
    with pytest.raises(ValueError, match="'0'.*Conv2d expects"):
        am(_x(2, 5, 8, 8))
    with pytest.raises(ValueError, match="'0'.*smaller than the dilated kernel"):
        am(_x(1, 3, 2, 2))


def test_every_output_position_is_one_mvm_of_the_kernel_matrix():
    """With every non-ideality on, the conv equals the same seeded AnalogLinear fed torch's im2col patches,
    bit for bit, also after drift: the conv adds nothing but the patch bookkeeping."""
    conv = _conv(nn.Conv2d, 3, 7, 3, stride=2, padding=1)
    x = _x(2, 3, 9, 9)
    hw = ad.load_hardware("pcm-ibm", overrides={"tile.rows": 16, "tile.cols": 8})
    am = analogize(conv, hw, seed=5, calibration=x)
    patches = torch.nn.functional.unfold(x, 3, padding=1, stride=2).transpose(1, 2)  # (2, 25, 27)
    lin = AnalogLinear(conv.weight.reshape(7, 27), conv.bias, hw, seed=5, index=0,
                       x_calib=patches.reshape(-1, 27))
    for t_s in (0.0, 3600.0):
        set_drift_time(am, t_s)
        lin.set_drift_time(t_s)
        ref = lin(patches).transpose(1, 2).reshape(2, 7, 5, 5)
        assert torch.equal(am(x), ref)
