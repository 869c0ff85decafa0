"""Whole-system scale (energy.system): chips, area, static energy, chip-to-chip links and DRAM spill by hand,
and the invariants (one chip has no link traffic; a smaller model never needs more chips)."""
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analogdiff.config import ConfigError, load_hardware
from analogdiff.energy import Autoregressive, ModelShape, estimate
from analogdiff.energy import analog, system
from analogdiff.energy.decode import schedule_work
from test_energy_analog import DECODE, HAND_CARD, TINY

CARDS = Path(__file__).resolve().parents[1] / "circuits"      # this checkout's cards, whatever is installed
ANALOG_CARDS = ["pcm-ibm", "pcm-hermes", "rram-wan2022", "ecram", "ideal"]

# TINY (test_energy_analog) on 8×8 tiles: qkv 8→24 on 1×3 tiles, out 8→8 on 1, up 8→16 on 1×2, down 16→8 on
# 2×1, head 8→4 on 1: 3 + 1 + 2 + 2 + 1 = 9 tiles, laid out in that order. DECODE: 2 passes of 4 positions,
# 8 token-forwards and 8 head evaluations; activations 8 bits.
SYSTEM = """
[system]
node_nm = 14
chip_area_mm2 = 10.0
tile_area_mm2 = 1.0
sram_mb_per_chip = {sram_mb}
sram_leakage_mw_per_mb = 3.0
link_pj_per_bit = 0.5
link_gbps = {gbps}
dram_pj_per_bit = 4.0
dram_gbps_per_chip = 100.0
"""


def card(tmp_path, tiles_per_chip, sram_mb=1.0, gbps=1000.0, system_table=True):
    p = tmp_path / f"sys_{tiles_per_chip}_{sram_mb}_{gbps}_{system_table}.toml"
    text = HAND_CARD.format(rows=8, cols=8, slices=1).replace("tiles_per_chip = 1000",
                                                              f"tiles_per_chip = {tiles_per_chip}")
    p.write_text(text + (SYSTEM.format(sram_mb=sram_mb, gbps=gbps) if system_table else ""))
    return load_hardware(p)


def test_chips_area_and_static_energy_by_hand(tmp_path):
    r = estimate(TINY, card(tmp_path, tiles_per_chip=5), decode=DECODE)
    assert r.tiles == 9 and r.chips == 2                        # ⌈9 / 5⌉
    assert r.area_mm2 == pytest.approx(2 * 10.0)                # whole chips
    assert r.extras["core_area_mm2"] == pytest.approx(9 * 1.0)  # the tiles alone
    assert r.static_power_w == pytest.approx(2 * 1.0 * 3.0e-3)  # 2 chips × 1 MB × 3 mW/MB
    assert r.breakdown_j["static"] == pytest.approx(r.static_power_w * r.latency_per_sequence_s, rel=1e-12)
    b4 = estimate(TINY, card(tmp_path, tiles_per_chip=5), decode=DECODE, batch=4)   # per sequence of the batch
    assert b4.breakdown_j["static"] == pytest.approx(b4.static_power_w * b4.latency_per_sequence_s / 4, rel=1e-12)
    assert math.fsum(r.breakdown_j.values()) == pytest.approx(r.energy_per_sequence_j, rel=1e-12)


def test_link_energy_of_a_two_chip_model_by_hand(tmp_path):
    # 5 tiles per chip: qkv [0, 3) and out [3, 4) on chip 0; up [4, 6) spans chips 0 and 1; down, head on chip 1.
    # Only up crosses: chip 1 gets its input and returns its outputs, (8 + 16) × 8 bits = 192 bits per MVM,
    # 8 MVMs → 1536 bits × 0.5 pJ = 768 pJ.
    r = estimate(TINY, card(tmp_path, tiles_per_chip=5), decode=DECODE)
    assert r.counts["interconnect_bytes"] == pytest.approx(1536 / 8)
    assert r.breakdown_j["interconnect"] * 1e12 == pytest.approx(768.0, rel=1e-12)
    # 4 per chip, 3 chips: up starts on chip 1 (hand-off of its 8 inputs, 64 bits per token-forward), the head
    # on chip 2 (64 bits per head evaluation): 8 × 64 + 8 × 64 = 1024 bits → 512 pJ
    r3 = estimate(TINY, card(tmp_path, tiles_per_chip=4), decode=DECODE)
    assert r3.chips == 3 and r3.breakdown_j["interconnect"] * 1e12 == pytest.approx(512.0, rel=1e-12)


def test_link_time_by_hand(tmp_path):
    # Links slow enough to be the slowest stage: per pass of n = 4 positions, up's transfer of 192 bits takes
    # 192 / g ns for the first position and 192 / g − (slowest stage interval) more for each of the other
    # three; the difference between two link speeds is therefore 2 passes × 4 × 192 × (1/g1 − 1/g2) ns.
    slow = estimate(TINY, card(tmp_path, 5, gbps=0.001), decode=DECODE)
    fast = estimate(TINY, card(tmp_path, 5, gbps=0.002), decode=DECODE)
    dt_ns = (slow.latency_per_sequence_s - fast.latency_per_sequence_s) * 1e9
    assert dt_ns == pytest.approx(2 * 4 * 192 * (1 / 0.001 - 1 / 0.002), rel=1e-9)


def test_kv_cache_and_embeddings_spill_to_dram_by_hand(tmp_path):
    # Diffusion over 4 positions (context 4): KV cache 4 × 1 layer × 2 × 2 heads × 4 = 64 bytes; embeddings
    # 4 × 8 tokens + 8 × 8 learned positions = 96 bytes. SRAM 40 bytes per chip × 2 chips = 80 bytes: the KV
    # cache fits, 16 bytes remain for the embeddings → 5/6 of the embedding reads (8 forwards × 8 elements × 8
    # bits = 512 bits) go to DRAM: 426.67 bits × 4 pJ, taken off SRAM at 0.01 pJ/bit.
    big = estimate(TINY, card(tmp_path, 5, sram_mb=1.0), decode=DECODE)
    small = estimate(TINY, card(tmp_path, 5, sram_mb=40e-6), decode=DECODE)
    bits = 5 / 6 * 512
    assert big.breakdown_j["dram"] == 0.0
    assert small.breakdown_j["dram"] * 1e12 == pytest.approx(bits * 4.0, rel=1e-12)
    assert (big.breakdown_j["sram"] - small.breakdown_j["sram"]) * 1e12 == pytest.approx(bits * 0.01, rel=1e-12)
    # DRAM time: the spilled bits over 2 chips × 100 Gbit/s, not overlapped
    assert (small.latency_per_sequence_s - big.latency_per_sequence_s) * 1e9 == pytest.approx(bits / 200, rel=1e-9)
    # no SRAM: every KV write (4 × 2 passes × 16 = 128) and read (once per query tile of 64 ≥ the 4 queries:
    # 2 passes × 4 keys × 16 = 128) and embedding read (64)
    none = estimate(TINY, card(tmp_path, 5, sram_mb=0.0), decode=DECODE)
    assert none.breakdown_j["dram"] * 1e12 == pytest.approx((128 + 128 + 64) * 8 * 4.0, rel=1e-12)


def test_one_chip_has_no_link_traffic_and_matches_a_card_without_system(tmp_path):
    one = estimate(TINY, card(tmp_path, 9), decode=DECODE)
    bare = estimate(TINY, card(tmp_path, 9, system_table=False), decode=DECODE)
    assert one.chips == 1 and one.breakdown_j["interconnect"] == 0.0 and one.counts["interconnect_bytes"] == 0.0
    assert one.latency_per_sequence_s == pytest.approx(bare.latency_per_sequence_s, rel=1e-12)
    for k, v in bare.breakdown_j.items():
        if k != "static":
            assert one.breakdown_j[k] == pytest.approx(v, rel=1e-12, abs=1e-30), k
    assert bare.chips == 1 and bare.area_mm2 == 0.0 and bare.breakdown_j["static"] == 0.0


def test_without_a_system_table_a_model_must_fit_one_chip(tmp_path):
    with pytest.raises(ConfigError, match=r"^tile\.tiles_per_chip: tiny needs 9 tiles .* no \[system\] table"):
        estimate(TINY, card(tmp_path, 8, system_table=False), decode=DECODE)


def _chips(shape, tiles_per_chip=64.0):
    q = analog.design_row(load_hardware(CARDS / "pcm-hermes.toml"))[None, :].copy()
    q[0, analog.K.P_TILES_PER_CHIP] = tiles_per_chip
    la = analog.layer_arrays(shape, schedule_work(Autoregressive(seq_len=2)))
    return float(system.chips_needed(la, q)[0])


dims = st.tuples(st.integers(1, 8), st.integers(1, 2048), st.integers(1, 8192), st.integers(2, 60000))


@settings(max_examples=40, deadline=None)
@given(big=dims, shrink=st.tuples(*(st.floats(0.0, 1.0) for _ in range(4))))
def test_a_smaller_model_never_needs_more_chips(big, shrink):
    small = tuple(max(1 if i != 3 else 2, int(v * s)) for i, (v, s) in enumerate(zip(big, shrink)))

    def shape(n_layers, d_model, d_ff, vocab):
        return ModelShape(name="s", n_layers=n_layers, d_model=d_model, n_heads=1, n_kv_heads=1, d_ff=d_ff,
                          mlp="swiglu", vocab_size=vocab, context_len=4, positions="rotary", norm="rmsnorm",
                          norm_bias=False, bias=[], tied_embeddings=False, cond_dim=0)
    assert _chips(shape(*small)) <= _chips(shape(*big))


def test_digital_throughput_is_per_chip_and_a_block_uses_its_chips(tmp_path):
    la = analog.layer_arrays(TINY, schedule_work(DECODE))
    q = analog.design_row(card(tmp_path, 5))[None, :]
    assert system.digital_scale(la, q, n_layers=1)[0] == 2.0      # 2 chips hold the one block
    assert system.digital_scale(la, q, n_layers=4)[0] == 1.0      # never below one chip


@pytest.mark.parametrize("name", ANALOG_CARDS)
def test_shipped_analog_cards_carry_their_chip(name):
    hw = load_hardware(CARDS / f"{name}.toml")
    assert hw.system is not None and hw.tile.tiles_per_chip < 10 ** 5
    assert hw.tile.tiles_per_chip * hw.system.tile_area_mm2 <= hw.system.chip_area_mm2


def test_llada_on_hermes_chips_and_area_by_hand():
    hw = load_hardware(CARDS / "pcm-hermes.toml")
    assert (hw.tile.tiles_per_chip, hw.system.chip_area_mm2, hw.system.tile_area_mm2) == (64, 144.0, 1.392)
    r = estimate("llada-8b", hw, Autoregressive(seq_len=16))
    assert r.chips == math.ceil(r.tiles / 64) and r.area_mm2 == pytest.approx(r.chips * 144.0)
    assert r.extras["core_area_mm2"] == pytest.approx(r.tiles * 1.392)
    assert r.breakdown_j["interconnect"] > 0.0


def test_gpu_scale_is_its_die_and_its_constant_power():
    hw = load_hardware(CARDS / "h100-sxm.toml")
    r = estimate("llama3-8b", hw, Autoregressive(seq_len=64))
    assert (r.chips, r.area_mm2, r.static_power_w) == (1, 814.0, 70.0)
    assert r.breakdown_j["interconnect"] == 0.0
    # static is the roofline's constant power over the run, not charged twice
    assert r.breakdown_j["static"] == pytest.approx(70.0 * r.latency_per_sequence_s, rel=1e-12)


def test_estimate_json_and_table_carry_the_scale(capsys):
    from analogdiff.cli import main

    args = ["estimate", "--model", "gpt2-small", "--hardware", str(CARDS / "pcm-hermes.toml"), "--seq-len", "16"]
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["chips"] > 1 and d["area_mm2"] == pytest.approx(d["chips"] * 144.0) and d["static_power_w"] >= 0.0
    assert {"static", "interconnect", "dram"} <= set(d["breakdown_j"])
    assert main(args) == 0
    assert f"chips              {d['chips']:,}" in capsys.readouterr().out


@pytest.mark.parametrize("old, new, match", [
    ("chip_area_mm2 = 10.0", "chip_area_mm2 = 4.0", r"^system\.chip_area_mm2: 4 is less than tile\.tiles_per_chip"),
    ("link_gbps = 1000.0", "link_gbps = 0.0", r"^system\.link_gbps: "),
    ("node_nm = 14", "node_nm = 14.5", r"^system\.node_nm: "),
    ("sram_mb_per_chip = 1.0", "sram_mb_per_chip = -1.0", r"^system\.sram_mb_per_chip: "),
    ("dram_pj_per_bit = 4.0", 'dram_pj_per_bit = "a lot"', r"^system\.dram_pj_per_bit: "),
])
def test_bad_system_tables_name_the_field(tmp_path, old, new, match):
    text = HAND_CARD.format(rows=8, cols=8, slices=1).replace("tiles_per_chip = 1000", "tiles_per_chip = 5")
    text += SYSTEM.format(sram_mb=1.0, gbps=1000.0)
    assert old in text
    p = tmp_path / "bad.toml"
    p.write_text(text.replace(old, new))
    with pytest.raises(ConfigError, match=match):
        load_hardware(p)


def test_a_gpu_card_has_no_system_table(tmp_path):
    from test_energy_gpu import TOY_GPU

    p = tmp_path / "g.toml"
    p.write_text(TOY_GPU + SYSTEM.format(sram_mb=1.0, gbps=1.0))
    with pytest.raises(ConfigError, match=r"\[system\] describes analog chips"):
        load_hardware(p)
