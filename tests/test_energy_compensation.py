"""The IR-drop correction's price (tile.ir_compensation): one multiply-add per tile column and MVM, by hand."""
import pytest
from test_energy_analog import DECODE, TINY, hand_card

from analogdiff.config import load_hardware
from analogdiff.energy import estimate, estimate_calibration, estimate_layers, estimate_many

ON = {"tile.ir_compensation": "per-column-affine"}


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_one_tile_columns_times_mvms_times_e_mac(tmp_path, backend):
    hw = hand_card(tmp_path, rows=32, cols=32)          # r = c = 1 for every matrix
    off = estimate(TINY, hw, decode=DECODE, backend=backend)
    on = estimate(TINY, load_hardware(hw, overrides=ON), decode=DECODE, backend=backend)
    # 8 MVMs per matrix × out columns (qkv 24, out 8, up 16, down 8, head 4) = 480 multiply-adds × 1 pJ
    assert on.counts["ir_compensation_macs"] == 480
    assert on.breakdown_j["ir_compensation"] * 1e12 == pytest.approx(480.0, rel=1e-12)
    assert "ir_compensation" not in off.breakdown_j and "ir_compensation_macs" not in off.counts
    for k, v in off.breakdown_j.items():
        assert on.breakdown_j[k] == v
    assert on.energy_per_sequence_j - off.energy_per_sequence_j == pytest.approx(480e-12, rel=1e-9)
    # latency: a digital stage of out / (1 op/ns) after each MVM; intervals stay 104 ns (> 24 ns), so each
    # pass adds the block's 24 + 8 + 16 + 8 = 56 ns and the head's 4 ns: 2 passes × 60 = 120 ns
    assert on.latency_per_sequence_s - off.latency_per_sequence_s == pytest.approx(120e-9, rel=1e-9)


def test_several_tiles_and_bit_serial_count_columns_once_per_mvm(tmp_path):
    hw = load_hardware(hand_card(tmp_path, rows=4, cols=8, slices=2), overrides=ON)
    r = estimate(TINY, hw, decode=DECODE)
    # r × out × 2 slices per MVM: 8 × (2·24 + 2·8 + 2·16 + 4·8 + 2·4) × 2 = 2176, as the column reads
    assert r.counts["ir_compensation_macs"] == r.counts["column_reads"] == 2176
    assert r.breakdown_j["ir_compensation"] * 1e12 == pytest.approx(2176.0, rel=1e-12)
    serial = load_hardware(hand_card(tmp_path, 32, 32), overrides={**ON, "dac.bit_serial": True, "dac.bits": 4,
                                                                   "dac.mode": "amplitude"})
    s = estimate(TINY, serial, decode=DECODE)
    # after the shift-add over the 3 magnitude bits: once per column, not per bit (ADC: 1440 conversions)
    assert s.counts["ir_compensation_macs"] == 480 and s.counts["adc_conversions"] == 1440


def test_sweeps_and_layer_pricing_agree(tmp_path):
    hw = hand_card(tmp_path, rows=32, cols=32)
    cards = [hw, load_hardware(hw, overrides=ON)]
    sweep = estimate_many(TINY, cards, DECODE)
    assert sweep["breakdown_j"]["ir_compensation"][0] == 0.0
    assert sweep["breakdown_j"]["ir_compensation"][1] * 1e12 == pytest.approx(480.0)
    layers = estimate_layers([(8, 24, 10), (16, 8, 5)], cards[1])
    assert layers["breakdown_j"]["ir_compensation"] * 1e12 == pytest.approx(10 * 24 + 5 * 8)


def test_calibration_is_priced_once(tmp_path):
    hw = load_hardware(hand_card(tmp_path, rows=4, cols=32), overrides=ON)
    cal = estimate_calibration([(8, 4, 10)], hw)   # one 8→4 matrix on 2 row tiles, 10 calibration vectors
    reads = estimate_layers([(8, 4, 10)], load_hardware(hw, overrides={"tile.ir_compensation": None}))
    # reference: 10 × 8 × 4 MACs; least-squares sums: 3 × 10 × 2 row tiles × 4 columns = 240 → 560 pJ
    assert cal["breakdown_j"]["reads"] == pytest.approx(reads["energy_j"], rel=1e-12)
    assert cal["breakdown_j"]["reference"] * 1e12 == pytest.approx(320.0)
    assert cal["breakdown_j"]["fit"] * 1e12 == pytest.approx(240.0)
    assert cal["macs"] == 560 and cal["vectors"] == 10
    assert cal["time_s"] == pytest.approx(reads["mvm_time_s"] + 2 * 560 / 1e9, rel=1e-9)


def test_cli_refuses_an_unknown_choice_in_one_line(capsys):
    from analogdiff.cli import main

    code = main(["estimate", "--model", "gpt2-small", "--hardware", "pcm-ibm", "--set", "tile.ir_compensation=per-row"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "tile.ir_compensation: 'per-row' is not one of 'per-column-affine' (or none: off)" in err[0]
