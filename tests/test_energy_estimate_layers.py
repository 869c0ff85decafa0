"""estimate_layers: a list of analog layers priced by the layer kernel from their counted MVMs."""
import math

import pytest

import analogdiff as ad
from analogdiff.config import ConfigError
from analogdiff.energy.analog import MVM_LINES, mvm_energy


@pytest.mark.parametrize("card", ["pcm-ibm", "rram-wan2022", "ideal"])
def test_one_layer_is_mvms_times_one_mvm(card):
    """At the card's default activity, n MVMs of a layer cost n × the published per-MVM unit (mvm_energy)."""
    hw = ad.load_hardware(card)
    cost = ad.estimate_layers([(300, 70, 1000)], hw)
    one = mvm_energy(hw, 300, 70)
    converters_pj = sum(cost["breakdown_j"][k[:-3]] for k in MVM_LINES) * 1e12      # every tile line
    assert converters_pj == pytest.approx(1000 * one["total_pj"], rel=1e-12)
    assert cost["counts"]["mvms"] == 1000 and cost["counts"]["macs"] == 1000 * 300 * 70
    assert cost["energy_j"] == pytest.approx(sum(cost["breakdown_j"].values()))
    assert cost["layers"]["0"]["energy_j"] == pytest.approx(cost["energy_j"])


def test_layers_add_and_matrices_count_tiles():
    hw = ad.load_hardware("pcm-ibm")  # 256×256 tiles, one slice
    a = ad.estimate_layers([(300, 70, 10)], hw)
    b = ad.estimate_layers([{"in_features": 20, "out_features": 600, "mvms": 40, "matrices": 4}], hw)
    both = ad.estimate_layers([(300, 70, 10), {"in_features": 20, "out_features": 600, "mvms": 40,
                                               "matrices": 4}], hw)
    assert both["energy_j"] == pytest.approx(a["energy_j"] + b["energy_j"])
    # ⌈300/256⌉·⌈70/256⌉ = 2; 4·⌈20/256⌉·⌈600/256⌉ = 12
    assert (a["tiles"], b["tiles"], both["tiles"]) == (2, 12, 14)
    # utilization: weight cells over tile cells, by hand
    assert both["tile_utilization"] == pytest.approx((300 * 70 + 4 * 20 * 600) / (14 * 256 * 256))
    assert both["mvm_time_s"] == pytest.approx(a["mvm_time_s"] + b["mvm_time_s"])


def test_measured_activity_changes_the_array_energy():
    hw = ad.load_hardware("pcm-ibm")
    base = {"in_features": 64, "out_features": 64, "mvms": 100}
    lo = ad.estimate_layers({"layers": {"x": {**base, "mean_abs_x_norm": 0.05, "mean_x2_norm": 0.005}}}, hw)
    hi = ad.estimate_layers({"layers": {"x": {**base, "mean_abs_x_norm": 0.5, "mean_x2_norm": 0.4}}}, hw)
    assert lo["breakdown_j"]["array"] < hi["breakdown_j"]["array"]
    assert lo["breakdown_j"]["adc"] == hi["breakdown_j"]["adc"]
    assert lo["counts"] == hi["counts"]


@pytest.mark.parametrize("layers, match", [
    ([(0, 3, 1)], r"layers\.0\.in_features: 0 is outside"),
    ([(3, 3, 1.5)], r"layers\.0\.mvms: expected an integer"),
    ({"a": {"in_features": 3, "out_features": 3}}, r"layers\.a: expected"),
    ([{"in_features": 3, "out_features": 3, "mvms": 1, "mean_abs_x_norm": math.nan}],
     r"layers\.0\.mean_abs_x_norm"),
    ([], "no layers"),
    ("conv", "expected collect_stats"),
])
def test_bad_layers_are_one_line_errors(layers, match):
    with pytest.raises(ConfigError, match=match):
        ad.estimate_layers(layers, "pcm-ibm")


def test_gpu_card_refused():
    with pytest.raises(ConfigError, match="a100-sxm: estimate_layers prices analog cards"):
        ad.estimate_layers([(3, 3, 1)], "a100-sxm")
