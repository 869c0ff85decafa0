"""``estimate`` / ``estimate_many``: a tiny custom shape on a tiny hand-made card priced by hand, the GPU
roofline of a tiny case by hand, the default decode, and one-line errors for bad input."""
import pytest

from analogdiff.config import ConfigError, load_hardware
from analogdiff.energy import Autoregressive, Diffusion, estimate, estimate_many
from analogdiff.shapes import load_shape
from test_energy_analog import HAND_CARD
from test_energy_gpu import TOY_GPU as GPU_CARD

# One block, d_model 4, 2 heads of 2, d_ff 8, GELU, vocab 4, rotary positions, biases everywhere.
# Matrices (in → out): qkv 4→12, attn.out 4→4, mlp.up 4→8, mlp.down 8→4, head 4→4.
SHAPE_TOML = """
n_layers = 1
d_model = 4
n_heads = 2
n_kv_heads = 2
d_ff = 8
mlp = "gelu"
vocab_size = 4
context_len = 8
positions = "rotary"
norm = "layernorm"
norm_bias = true
bias = ["attn.qkv", "attn.out", "mlp.up", "mlp.down", "head"]
tied_embeddings = false
cond_dim = 0
"""

# The hand card of test_energy_analog with 4×4 tiles and one bit slice, switched to an amplitude DAC (1 pJ per
# conversion) and one ADC per column (8 bits, 2 pJ per conversion by its table); digital units: MAC 1 pJ,
# softmax 2, norm 3, elementwise 4, sampling 5 pJ per element.
ANALOG = {"dac.mode": "amplitude", "adc.cols_per_adc": 1}
# The toy GPU of test_energy_gpu (1 TFLOP/s, 1 TB/s, 1 W constant, 2 pJ per FLOP, 1 pJ per byte) with a 20 ps
# launch floor and a 100 W limit that never binds here: a kernel takes max(FLOPs, bytes, 20) ps.
TOY_GPU = GPU_CARD.replace("kernel_launch_us = 1e-4", "kernel_launch_us = 2e-5").replace(
    "power_max_w = 3.0", "power_max_w = 100.0")

# Autoregressive(seq_len=3) with the KV cache: 3 passes of one position each → 3 token-forwards, 3 head
# evaluations, 1 + 2 + 3 = 6 attention pairs, 3 generated tokens.
DECODE = Autoregressive(seq_len=3)


@pytest.fixture
def shape(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(SHAPE_TOML)
    return load_shape(p)


def card(tmp_path, tiles=9):
    p = tmp_path / "hand.toml"
    p.write_text(HAND_CARD.format(rows=4, cols=4, slices=1))
    return load_hardware(p, overrides={**ANALOG, "tile.tiles_per_chip": tiles})


def gpu_card(tmp_path):
    p = tmp_path / "toy-gpu.toml"
    p.write_text(TOY_GPU)
    return load_hardware(p)


def test_analog_estimate_by_hand(tmp_path, shape):
    r = estimate(shape, card(tmp_path), decode=DECODE)
    # tiles (row tiles × column tiles, 4×4): qkv 1×3, out 1×1, up 1×2, down 2×1, head 1×1 = 9
    assert r.tiles == 9 and r.extras["tile_utilization"] == pytest.approx((48 + 16 + 32 + 32 + 16) / (9 * 16))
    assert (r.counts["token_forwards"], r.counts["head_evals"], r.counts["attention_pairs"]) == (3, 3, 6)
    assert r.generated_tokens == 3
    # DAC, one conversion per input row per tile column per MVM: 4·3 + 4 + 4·2 + 8 + 4 = 36 per pass → 108 pJ
    # ADC, one per output column per row tile: 12 + 4 + 8 + 2·4 + 4 = 36 per pass → 108 × 2 pJ = 216
    assert (r.counts["dac_conversions"], r.counts["adc_conversions"]) == (108, 108)
    pj = {k: v * 1e12 for k, v in r.breakdown_j.items()}
    assert pj["dac"] == pytest.approx(108.0, rel=1e-12)
    assert pj["adc"] == pytest.approx(216.0, rel=1e-12)
    # attention: 6 pairs × 2 (QKᵀ, AV) × 2 heads × 2 = 48 MACs × 1 pJ + 6 × 2 heads softmax × 2 pJ = 72
    assert pj["attention"] == pytest.approx(72.0, rel=1e-12)
    # norms: 3 forwards × 2 × 4 + 3 head evaluations × 4 = 36 × 3 pJ = 108; elementwise per forward: residual
    # 2·4 + GELU 8 + rotary on q and k (2 + 2 heads) × 2 = 24, no position add → 72 × 4 pJ = 288
    assert pj["norm_elementwise"] == pytest.approx(108.0 + 288.0, rel=1e-12)
    assert pj["sampling"] == pytest.approx(3 * 4 * 5.0, rel=1e-12)
    assert r.energy_per_token_j == pytest.approx(r.energy_per_sequence_j / 3, rel=1e-12)


def test_learned_positions_price_the_add_and_no_rotation(tmp_path, shape):
    import dataclasses

    hw = card(tmp_path)
    rotary = estimate(shape, hw, decode=DECODE).breakdown_j["norm_elementwise"]
    learned = estimate(dataclasses.replace(shape, positions="learned"), hw, decode=DECODE)
    # learned: + d_model = 4 adds per token-forward, − 8 rotary ops: 3 × (4 − 8) × 4 pJ = −48 pJ
    assert (learned.breakdown_j["norm_elementwise"] - rotary) * 1e12 == pytest.approx(-48.0, rel=1e-9)


def test_shipped_mdlm_prices_no_position_add():
    shape = load_shape("shakespeare-mdlm")
    hw = load_hardware("pcm-ibm")
    r = estimate(shape, hw, decode=Diffusion(steps=4, seq_len=16))
    tf, heads = 4 * 16, 4 * 16
    assert (r.counts["token_forwards"], r.counts["head_evals"]) == (tf, heads)
    # per token-forward and block: residual 2·192 + GELU 768 + rotary (4 + 4 heads) × 48 = 1536; no
    # per-token position add (rotary has none); norms 2·192 per block + 192 per head evaluation
    elementwise = tf * 4 * (2 * 192 + 768 + 8 * 48)
    norms = tf * 4 * 2 * 192 + heads * 192
    d = hw.digital
    expected_pj = norms * d.e_norm_pj + elementwise * d.e_elementwise_pj
    assert r.breakdown_j["norm_elementwise"] * 1e12 == pytest.approx(expected_pj, rel=1e-12)


def test_estimate_many_agrees_with_estimate(tmp_path, shape):
    hw = card(tmp_path)
    many = estimate_many(shape, hw, DECODE, overrides={"dac.e_conv_pj": [1.0, 3.0]})
    assert list(many["breakdown_j"]["dac"] * 1e12) == pytest.approx([108.0, 324.0], rel=1e-12)
    one = estimate(shape, load_hardware(hw, overrides={"dac.e_conv_pj": 3.0}), decode=DECODE)
    assert many["energy_per_sequence_j"][1] == pytest.approx(one.energy_per_sequence_j, rel=1e-12)
    assert many["latency_per_sequence_s"][1] == pytest.approx(one.latency_per_sequence_s, rel=1e-12)


def test_default_decode_is_full_sequence_diffusion(tmp_path, shape):
    r = estimate(shape, card(tmp_path))
    assert r.decode == Diffusion(steps=8, seq_len=8).describe()          # L = min(1024, context_len 8)
    assert r.counts["token_forwards"] == 8 * 8


def test_gpu_roofline_by_hand(tmp_path, shape):
    r = estimate(shape, gpu_card(tmp_path), decode=Autoregressive(seq_len=1))
    # One pass of one position, one head evaluation, one attention pair; bf16 = 2 bytes. (FLOPs, bytes) → ps:
    #   norm + residual ×2 (8·4, 3·4·2) = (32, 24) → 32 each; qkv GEMM (96, 4·12·2 + 16·2 = 128) → 128
    #   rotary (6·4·2, 2·4·2·2) = (48, 32) → 48   attention (4·2·2 + 5·2, (8 + 8)·2) = (26, 32) → 32
    #   out GEMM (32, 32 + 16) → 48   up GEMM (64, 64 + 24) → 88   GELU (64, 16·2) → 64   down (64, 88) → 88
    #   embedding (4, 16) → launch floor 20   final norm (32, 16) → 32   head GEMM (32, 32 + 16) → 48
    #   sampling (20, 16) → 20
    # time = 64 + 128 + 48 + 32 + 48 + 88 + 64 + 88 + 20 + 32 + 48 + 20 = 680 ps; energy = 1 W × 680 ps static
    # + 2 pJ × 546 FLOPs + 1 pJ × 592 bytes (the sums of the pairs above)
    assert r.latency_per_sequence_s == pytest.approx(680e-12, rel=1e-12)
    assert r.energy_per_sequence_j == pytest.approx((680 + 2 * 546 + 592) * 1e-12, rel=1e-12)
    assert r.breakdown_j["static"] == pytest.approx(680e-12, rel=1e-12)
    assert r.counts["kernels"] == 13
    # weights held: matrices 48 + 16 + 32 + 32 + 16 = 144, biases 12 + 4 + 8 + 4 + 4 = 32, token embedding 16,
    # norms 3 × (gain + shift) × 4 = 24 → 216 parameters × 2 bytes
    assert shape.n_params() == 216 and r.counts["weight_bytes"] == 432


@pytest.mark.parametrize("kwargs, field", [
    (dict(batch=0), "batch"), (dict(batch=1.5), "batch"), (dict(batch=True), "batch"),
    (dict(decode="ar"), "decode"), (dict(decode=Autoregressive(seq_len=9)), "seq_len"),
    (dict(backend="cuda"), "backend"),
])
def test_bad_input_names_the_field(tmp_path, shape, kwargs, field):
    args = dict(decode=DECODE) | kwargs
    with pytest.raises(ConfigError, match=f"^{field}") as e:
        estimate(shape, card(tmp_path), **args)
    assert "\n" not in str(e.value)


def test_a_model_that_does_not_fit_and_gpu_only_errors(tmp_path, shape):
    with pytest.raises(ConfigError, match=r"^tile\.tiles_per_chip: tiny needs 9 tiles .* has 8"):
        estimate(shape, card(tmp_path, tiles=8), decode=DECODE)
    gpu = gpu_card(tmp_path)
    with pytest.raises(ConfigError, match="^stats"):
        estimate(shape, gpu, decode=DECODE, stats={"layers": {}})
    with pytest.raises(ConfigError, match="estimate_many sweeps analog cards"):
        estimate_many(shape, gpu, DECODE)
    with pytest.raises(ConfigError, match="^batch"):
        estimate_many(shape, card(tmp_path), DECODE, batch=0)
