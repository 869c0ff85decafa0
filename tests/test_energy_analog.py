"""Analog cost model: a one-layer model priced by hand on one and on several tiles, invariants, twins."""
import math

import numpy as np
import pytest

from analogdiff.config import ConfigError, load_hardware
from analogdiff.energy import Autoregressive, Diffusion, ModelShape, estimate, estimate_many
from analogdiff.energy.analog import mvm_energy

# A one-block model: d_model 8, 2 heads of 4, d_ff 16, GELU, vocab 4, learned positions.
# Its matrices (in → out): qkv 8→24, attn.out 8→8, mlp.up 8→16, mlp.down 16→8, head 8→4.
TINY = ModelShape(name="tiny", n_layers=1, d_model=8, n_heads=2, n_kv_heads=2, d_ff=16, mlp="gelu",
                  vocab_size=4, context_len=8, positions="learned", norm="layernorm", norm_bias=True, bias=[],
                  tied_embeddings=False, cond_dim=0)

HAND_CARD = """
name = "hand"
[device]
technology = "pcm"
g_max_us = 10.0
g_min_us = 0.0
read_voltage_v = 0.5
[dac]
bits = 8
mode = "pwm"
e_conv_pj = 1.0
t_conv_ns = 0.78125
[adc]
bits = 8
energy_model = "table"
e_conv_pj_by_bits = {{ "8" = 2.0 }}
cols_per_adc = 4
t_conv_ns = 1.0
[tile]
rows = {rows}
cols = {cols}
bit_slices = {slices}
t_integrate_ns = 50.0
tiles_per_chip = 1000
mean_g_fraction = 0.2
input_activity = 0.5
[periphery]
e_integrator_pj = 0.1
e_sample_hold_pj = 0.2
e_shift_add_pj = 0.3
e_accumulate_pj = 0.4
[digital]
e_mac_pj = 1.0
e_softmax_pj = 2.0
e_norm_pj = 3.0
e_elementwise_pj = 4.0
e_sample_pj = 5.0
throughput_gops = 1.0
activation_bits = 8
[memory]
e_sram_pj_per_bit = 0.01
e_noc_pj_per_bit_hop = 0.02
avg_hops = 1.0
noc_bandwidth_gbps = 8.0
"""

# Diffusion(steps=2, seq_len=4): 2 passes × 4 positions = 8 token-forwards, 8 head evaluations,
# 2 × 4 × 4 = 32 attention pairs, 4 generated tokens. Every matrix runs 8 MVMs (head included).
DECODE = Diffusion(steps=2, seq_len=4)

# Work that does not depend on the tiling (pJ):
#   attention: MACs 32 pairs × 2 (QK, AV) × 2 heads × 4 = 512 × 1 pJ; softmax 32 × 2 heads = 64 × 2 pJ → 640
#   norms: 8 forwards × 2 × 8 + 8 head evals × 8 = 192 × 3 pJ = 576
#   elementwise: 8 × (2 × 8 residual + 16 GELU + 8 position add) = 320 × 4 pJ = 1280
#   sampling: 8 head evals × 4 vocab = 32 × 5 pJ = 160
#   SRAM outside the MVMs: K,V written 8 × 2 × 2 × 4 = 128; read once per query tile (default 64 queries
#     ≥ the 4 fed): 2 passes × 1 tile × 4 keys × 16 = 128 (per pair it was 32 × 16 = 512); embeddings 8 × 8 = 64
#     → 320 elements × 8 bits × 0.01 pJ = 25.6
#   SRAM of the MVMs: 8 × [(8+24) + (8+8) + (8+16) + (16+8) + (8+4)] = 864 elements × 8 × 0.01 = 69.12
# Array: a device conducts for the PWM window 2^7 slots × 0.78125 ns = 100 ns (not t_integrate = 50 ns):
#   V² Ḡ t = 0.25 V² × 2 µS × 100 ns = 0.05 pJ per device per read, × PWM duty 0.5 = 0.025 pJ;
#   devices read per MVM = 2 · slices · in · out; Σ 8 MVMs × in · out = 8 × (192 + 64 + 128 + 128 + 32) = 4352
DIGITAL_PJ = {"attention": 640.0, "norm_elementwise": 576.0 + 1280.0, "sampling": 160.0}


def hand_card(tmp_path, rows, cols, slices=1):
    p = tmp_path / f"hand_{rows}x{cols}x{slices}.toml"
    p.write_text(HAND_CARD.format(rows=rows, cols=cols, slices=slices))
    return load_hardware(p)


def assert_breakdown(report, expected_pj):
    expected_pj = {"static": 0.0, "interconnect": 0.0, "dram": 0.0, **expected_pj}  # no [system]: one chip
    got = {k: v * 1e12 for k, v in report.breakdown_j.items()}
    assert set(expected_pj) <= set(got)
    expected_pj = {**{k: 0.0 for k in got}, **expected_pj}       # lines the hand card has no values for are 0
    for k, v in expected_pj.items():
        assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-9), k
    assert report.energy_per_sequence_j * 1e12 == pytest.approx(sum(expected_pj.values()), rel=1e-12)
    assert math.fsum(report.breakdown_j.values()) == pytest.approx(report.energy_per_sequence_j, rel=1e-12)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_one_layer_on_one_tile_by_hand(tmp_path, backend):
    hw = hand_card(tmp_path, rows=32, cols=32)        # every matrix fits one tile: r = c = 1
    r = estimate(TINY, hw, decode=DECODE, backend=backend)
    # DAC: one conversion per input row per MVM: 8 × (8 + 8 + 8 + 16 + 8) = 384 × 1 pJ
    # ADC: one per output column per MVM:      8 × (24 + 8 + 16 + 8 + 4) = 480 × 2 pJ = 960
    # periphery: 480 column reads × (0.1 + 0.2) pJ = 144; no shift-add (1 slice, 1 cycle), no accumulation (r = 1)
    # array: 4352 × 2 devices × 0.025 pJ = 217.6
    # NoC: input to c = 1 tile column, outputs from r = 1 row tile: 864 elements × 8 bits × 1 hop × 0.02 = 138.24
    assert r.counts["dac_conversions"] == 384 and r.counts["adc_conversions"] == 480
    assert r.counts["mvms"] == 40 and r.counts["shift_adds"] == 0 and r.counts["accumulations"] == 0
    assert r.tiles == 5 and r.counts["token_forwards"] == 8 and r.counts["attention_pairs"] == 32
    assert_breakdown(r, {"dac": 384.0, "adc": 960.0, "periphery": 144.0, "array": 217.6,
                         "sram": 69.12 + 25.6, "noc": 138.24, **DIGITAL_PJ})
    assert r.energy_per_token_j * 1e12 == pytest.approx(4594.56 / 4)
    # Latency, one pass of 4 positions (ns): every MVM = max(PWM window 100, integrate 50) + min(4 cols/ADC, outputs) × 1
    #   = 104; NoC = in × 8 bits / 8 Gbit/s = in ns; digital at 1 op/ns.
    # block: norms 2·8 + residual 16 + GELU 16 = 48 ops; latencies 48 + (104+8) × 3 + (104+16) = 504;
    #   slowest interval 104; attention 16 pairs × (4·2·4 + 2) = 544 → 504 + 3 × 104 + 544 = 1360
    # head: final norm 8 + sampling 4 = 12 ops; fill 12 + 112 = 124; its stream 3 × 104 overlaps the last
    #   block's stream 3 × 104 (own tiles), adding max(0, 312 − 312) = 0.  Two passes: 2 × 1484 = 2968 ns
    #   (summed, without the overlap, it was 2 × 1796 = 3592 ns)
    assert r.latency_per_sequence_s == pytest.approx(2968e-9, rel=1e-12)
    assert r.latency_per_token_s == pytest.approx(742e-9, rel=1e-12)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_one_layer_on_several_tiles_by_hand(tmp_path, backend):
    hw = hand_card(tmp_path, rows=4, cols=8, slices=2)  # 4 rows; 8 columns hold 4 outputs × 2 bit slices
    r = estimate(TINY, hw, decode=DECODE, backend=backend)
    # tiles (r × c): qkv 2 × 6, out 2 × 2, up 2 × 4, down 4 × 2, head 2 × 1 → 12 + 4 + 8 + 8 + 2 = 34
    # DAC (in × c per MVM): 8 × (48 + 16 + 32 + 32 + 8) = 1088 × 1 pJ
    # column reads (r × out × 2 slices): 8 × (96 + 32 + 64 + 64 + 16) = 2176 → ADC 2176 × 2 pJ = 4352
    # periphery: 2176 × (0.1 + 0.2) + 2176 shift-adds × 0.3 + accumulations 8 × (24 + 8 + 16 + 24 + 4) = 608 × 0.4
    #   = 652.8 + 652.8 + 243.2 = 1548.8
    # array: two slices double the devices: 4352 × 4 × 0.025 = 435.2
    # NoC (in × c + out × r per MVM): 8 × (48+48 + 16+16 + 32+32 + 32+32 + 8+8) = 2176 × 8 bits × 0.02 = 348.16
    assert r.tiles == 34
    assert (r.counts["dac_conversions"], r.counts["adc_conversions"]) == (1088, 2176)
    assert (r.counts["shift_adds"], r.counts["accumulations"]) == (2176, 608)
    assert_breakdown(r, {"dac": 1088.0, "adc": 4352.0, "periphery": 1548.8, "array": 435.2,
                         "sram": 69.12 + 25.6, "noc": 348.16, **DIGITAL_PJ})
    assert r.extras["tile_utilization"] == pytest.approx(
        2 * (192 + 64 + 128 + 128 + 32) / (34 * 4 * 8))


def test_bit_serial_counts_a_conversion_per_magnitude_bit(tmp_path):
    hw = load_hardware(hand_card(tmp_path, 32, 32), overrides={"dac.bit_serial": True, "dac.bits": 4,
                                                               "dac.mode": "amplitude"})
    r = estimate(TINY, hw, decode=DECODE)
    # 4-bit signed inputs: 3 magnitude cycles (sign = pulse polarity): DAC 384 × 3, column reads 480 × 3,
    # every column read shift-added; MVM time 3 × (max(DAC 0.78, integrate 50) + 4) ns
    assert (r.counts["dac_conversions"], r.counts["adc_conversions"], r.counts["shift_adds"]) == (1152, 1440, 1440)
    # expected 1 bits over 3 magnitude bits of half-normal |x| with mean 0.5 (Monte Carlo below)
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(0.0, 0.5 * math.sqrt(math.pi / 2), 2_000_000))
    q = np.minimum(np.floor(x * 8), 7).astype(int)
    ones = sum(((q >> k) & 1).mean() for k in range(3))
    assert r.breakdown_j["array"] * 1e12 == pytest.approx(4352 * 2 * 0.025 * ones, rel=3e-3)


def test_energy_is_linear_in_steps():
    hw = load_hardware("pcm-ibm")
    e = [estimate("gpt2-small", hw, decode=Diffusion(steps=t, seq_len=256)).energy_per_sequence_j
         for t in (1, 3, 64)]
    assert e[1] == pytest.approx(3 * e[0], rel=1e-12) and e[2] == pytest.approx(64 * e[0], rel=1e-12)


def test_fewer_adc_bits_cost_less():
    sweep = estimate_many("gpt2-small", "pcm-ibm", Autoregressive(seq_len=128),
                          overrides={"adc.bits": np.arange(2, 13)})
    adc = sweep["breakdown_j"]["adc"]
    assert np.all(np.diff(adc[2:]) > 0) and np.all(np.diff(sweep["energy_per_token_j"][2:]) > 0)
    assert adc[0] == adc[2] and adc[1] == adc[2]    # below 4 bits the survey law prices a 4-bit conversion
    six = estimate("gpt2-small", load_hardware("pcm-ibm", {"adc.bits": 6}), Autoregressive(seq_len=128))
    eight = estimate("gpt2-small", "pcm-ibm", Autoregressive(seq_len=128))
    # survey law at 32 nm, one SAR cycle 0.104 ns per bit: 6 b at 1.6 GS/s 1.065 pJ, 8 b at 1.2 GS/s 1.849 pJ
    assert six.breakdown_j["adc"] / eight.breakdown_j["adc"] == pytest.approx(1.065 / 1.849, rel=2e-3)


# no [system] and room for any model here: one chip of unlimited SRAM, no static power (energy.system)
ONE_CHIP = {"system": None, "tile.tiles_per_chip": 10 ** 6}


def test_replication_trades_tiles_for_latency_not_energy():
    d = Diffusion(steps=8, seq_len=512)
    one = estimate("gpt2-small", load_hardware("pcm-ibm", ONE_CHIP), d)
    two = estimate("gpt2-small", load_hardware("pcm-ibm", {**ONE_CHIP, "tile.replication": 2}), d)
    assert two.tiles == 2 * one.tiles
    assert two.energy_per_sequence_j == pytest.approx(one.energy_per_sequence_j, rel=1e-12)
    assert two.latency_per_sequence_s < one.latency_per_sequence_s


def test_batch_changes_latency_not_energy_per_sequence():
    d, hw = Autoregressive(seq_len=64), load_hardware("pcm-ibm", ONE_CHIP)
    b1, b8 = estimate("gpt2-small", hw, d), estimate("gpt2-small", hw, d, batch=8)
    assert b8.energy_per_sequence_j == pytest.approx(b1.energy_per_sequence_j, rel=1e-12)
    assert b1.latency_per_sequence_s < b8.latency_per_sequence_s < 8 * b1.latency_per_sequence_s


def test_estimate_many_matches_estimate_point_by_point():
    rows = np.array([64, 128, 256, 512])
    sweep = estimate_many("sedd-small", "rram-wan2022", Diffusion(steps=16, seq_len=256),
                          overrides={"tile.rows": rows, "dac.bits": np.array([2, 4, 6, 8])})
    for i, (n, b) in enumerate(zip(rows, [2, 4, 6, 8])):
        one = estimate("sedd-small", load_hardware("rram-wan2022", {"tile.rows": int(n), "dac.bits": b}),
                       Diffusion(steps=16, seq_len=256))
        assert sweep["energy_per_token_j"][i] == pytest.approx(one.energy_per_token_j, rel=1e-12)
        assert sweep["latency_per_token_s"][i] == pytest.approx(one.latency_per_token_s, rel=1e-12)
        assert sweep["tiles"][i] == one.tiles


@pytest.mark.parametrize("card", ["pcm-ibm", "rram-wan2022", "ideal", "ecram"])
def test_numba_equals_numpy_twin(card):
    rng = np.random.default_rng(1)
    n = 300
    ov = {"tile.rows": rng.choice([32, 64, 256, 1024], n), "tile.cols": rng.choice([16, 64, 256], n),
          "tile.bit_slices": rng.integers(1, 4, n), "tile.replication": rng.integers(1, 4, n),
          "tile.input_activity": rng.uniform(0.0, 1.0, n), "digital.throughput_gops": rng.uniform(10, 1e4, n),
          "device.read_voltage_v": rng.uniform(0.05, 0.5, n)}
    if card != "ideal":
        serial = rng.integers(0, 2, n).astype(bool)
        ov.update({"dac.bits": rng.integers(1, 12, n), "adc.bits": rng.integers(1, 12, n),
                   "dac.bit_serial": serial, "adc.cols_per_adc": rng.integers(1, 300, n),
                   "dac.accumulate": np.where(serial & rng.integers(0, 2, n).astype(bool), "charge", "digital"),
                   "dac.phase_bits": rng.integers(1, 6, n), "tile.read_phases": rng.integers(1, 5, n),
                   "periphery.c_wordline_ff": rng.uniform(0, 600, n), "periphery.v_wordline_v": rng.uniform(0, 2, n),
                   "periphery.c_bitline_ff": rng.uniform(0, 600, n), "periphery.v_bitline_v": rng.uniform(0, 2, n),
                   "periphery.e_local_digital_pj": rng.uniform(0, 5, n),
                   "periphery.t_local_digital_ns": rng.uniform(0, 5, n), "periphery.p_core_mw": rng.uniform(0, 100, n)})
    for decode in (Diffusion(steps=32, seq_len=128, block_len=32), Autoregressive(seq_len=100, prompt_len=10)):
        a = estimate_many("mdlm-owt", card, decode, overrides=ov, batch=3, backend="numba")
        b = estimate_many("mdlm-owt", card, decode, overrides=ov, batch=3, backend="numpy")
        for k in ("energy_per_sequence_j", "latency_per_sequence_s", "tiles", "tile_utilization"):
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12, err_msg=k)
        for group in ("breakdown_j", "counts"):
            for k in a[group]:
                np.testing.assert_allclose(a[group][k], b[group][k], rtol=1e-12, atol=1e-30, err_msg=k)


def test_bit_serial_activity_twin_and_limits():
    from analogdiff.energy.kernels import bit_serial_activity, bit_serial_activity_np

    mu = np.array([0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 0.3, 0.3])
    bits = np.array([8, 8, 4, 8, 2, 16, 1, 12])
    np.testing.assert_allclose(bit_serial_activity_np(mu, bits),
                               [bit_serial_activity(m, b) for m, b in zip(mu, bits)], rtol=1e-13)
    assert bit_serial_activity(0.3, 1) == 0.3                 # 1-bit input: the mean is the duty
    # one magnitude bit: set when |x| ≥ 1/2: P = erfc(0.5 / (μ √π))
    assert bit_serial_activity(0.25, 2) == pytest.approx(math.erfc(0.5 / (0.25 * math.sqrt(math.pi))))


def test_measured_stats_replace_the_defaults():
    shape, d = "gpt2-small", Autoregressive(seq_len=64)
    base = estimate(shape, "pcm-ibm", d)
    g_us = 0.125 * 25.0                                          # the card's default conductance
    layers = {}
    for b in range(12):
        for kind, (i, o) in {"attn.qkv": (768, 2304), "attn.out": (768, 768), "mlp.up": (768, 3072),
                             "mlp.down": (3072, 768)}.items():
            layers[f"backbone.blocks.{b}.{kind}"] = {"in_features": i, "out_features": o, "mvms": 64,
                                                    "mean_abs_x_norm": 0.5, "mean_x2_norm": 0.3,
                                                    "mean_g_us": g_us, "adc_clip_fraction": 0.0}
    layers["backbone.head"] = {"in_features": 768, "out_features": 50257, "mvms": 64, "mean_abs_x_norm": 0.5,
                               "mean_x2_norm": 0.3, "mean_g_us": g_us}
    r = estimate(shape, "pcm-ibm", d, stats={"layers": layers})
    # PWM: array energy ∝ mean |x|: 0.5 measured vs 0.25 default doubles it; nothing else moves
    assert r.breakdown_j["array"] == pytest.approx(2 * base.breakdown_j["array"], rel=1e-12)
    for k in base.breakdown_j:
        if k != "array":
            assert r.breakdown_j[k] == pytest.approx(base.breakdown_j[k], rel=1e-12)
    bad = {"layers": {"backbone.blocks.0.attn.qkv": dict(layers["backbone.blocks.0.attn.qkv"], out_features=99)}}
    with pytest.raises(ConfigError, match="does not match attn.qkv"):
        estimate(shape, "pcm-ibm", d, stats=bad)


def test_model_larger_than_the_chip_is_rejected_without_a_system_table():
    one_chip = load_hardware("pcm-hermes", overrides={"system": None})
    with pytest.raises(ConfigError, match=r"tile\.tiles_per_chip: gpt2-small needs [\d,]+ tiles .* pcm-hermes has 64"):
        estimate("gpt2-small", one_chip, Autoregressive(seq_len=16))
    sweep = estimate_many("gpt2-small", load_hardware("pcm-ibm", overrides={"system": None}),
                          Autoregressive(seq_len=16), overrides={"tile.tiles_per_chip": np.array([10, 10**6])})
    assert list(sweep["fits"]) == [False, True]


@pytest.mark.parametrize("kwargs, match", [
    (dict(decode=Diffusion(steps=1, seq_len=2048)), r"seq_len: 2048 .* context_len 1024"),
    (dict(decode=Autoregressive(seq_len=1025)), r"seq_len: 1025"),
    (dict(decode=Autoregressive(seq_len=8), batch=0), r"batch"),
])
def test_bad_estimate_inputs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        estimate("gpt2-small", "pcm-ibm", **kwargs)


def test_estimate_many_rejects_out_of_range_sweeps():
    with pytest.raises(ConfigError, match=r"adc\.bits\[1\]: 0 is outside the allowed range \[1, 16\]"):
        estimate_many("gpt2-small", "pcm-ibm", Autoregressive(seq_len=8), overrides={"adc.bits": [4, 0]})
    with pytest.raises(ConfigError, match=r"device\.g_min_us\[0\]"):
        estimate_many("gpt2-small", "pcm-ibm", Autoregressive(seq_len=8), overrides={"device.g_min_us": [30.0]})
    with pytest.raises(ConfigError, match="not a cost-model parameter"):
        estimate_many("gpt2-small", "pcm-ibm", Autoregressive(seq_len=8), overrides={"drift.t0_s": [1.0]})
    with pytest.raises(ConfigError, match="component 'dac' is off"):
        estimate_many("gpt2-small", "ideal", Autoregressive(seq_len=8), overrides={"dac.bits": [4]})


def test_estimate_many_takes_a_list_of_cards():
    cards = [load_hardware("pcm-ibm"), load_hardware("rram-wan2022"), load_hardware("ecram")]
    d = Diffusion(steps=4, seq_len=64)
    sweep = estimate_many("gpt2-small", cards, d)
    for i, hw in enumerate(cards):
        assert sweep["energy_per_sequence_j"][i] == pytest.approx(estimate("gpt2-small", hw, d).energy_per_sequence_j,
                                                                  rel=1e-12)
