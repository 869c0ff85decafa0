"""GPU roofline in time and energy: a one-block model priced by hand, the weight-streaming floor, invariants."""
from pathlib import Path

import pytest

from analogdiff.config import ConfigError, load_hardware
from analogdiff.energy import Autoregressive, Diffusion, ModelShape, estimate, load_shape
from analogdiff.energy.gpu import kernel_cost, streamed_params, weight_streaming_floor_s

CARDS = Path(__file__).resolve().parents[1] / "circuits"      # this checkout's cards, whatever is installed
H100 = load_hardware(CARDS / "h100-sxm.toml")
A100 = load_hardware(CARDS / "a100-sxm.toml")

TINY = ModelShape(name="tiny", n_layers=1, d_model=8, n_heads=2, n_kv_heads=2, d_ff=16, mlp="gelu",
                  vocab_size=4, context_len=8, positions="learned", norm="layernorm", norm_bias=True, bias=[],
                  tied_embeddings=False, cond_dim=0)

# 1 TFLOP/s and 1 TB/s: one FLOP or one byte takes 1 ps; launch floor 100 ps. Constant power 1 W (1 pJ/ps),
# 2 pJ per FLOP, 1 pJ per byte, power limit 3 W: a kernel above 3 W is slowed to (2·F + B) / 2 ps.
TOY_GPU = """
name = "toy-gpu"
[gpu]
model = "toy"
dtype = "bf16"
peak_tflops_bf16 = 1.0
hbm_bandwidth_tbs = 1.0
hbm_capacity_gb = 1.0
power_max_w = 3.0
power_const_w = 1.0
e_hbm_pj_per_byte = 1.0
e_flop_bf16_pj = 2.0
kernel_launch_us = 1e-4
compute_efficiency = 1.0
bandwidth_efficiency = 1.0
"""


def test_one_block_energy_roofline_by_hand(tmp_path):
    p = tmp_path / "toy.toml"
    p.write_text(TOY_GPU)
    r = estimate(TINY, load_hardware(p), decode=Autoregressive(seq_len=1))
    # One pass of 1 position (the BOS), 1 head evaluation, 1 attention pair, bf16 = 2 bytes. Per kernel
    # (FLOPs F, bytes B) → t = max(F, B, 100, F + B/2) ps (the last term: the 3 W limit), E_dyn = 2F + B pJ:
    #   norm ×2 (64, 48) → 100, 176        qkv GEMM (384, 448) → 608 (limited), 1216
    #   attention (42, 64) → 100, 148        out GEMM (128, 160) → 208 (limited), 416
    #   up GEMM (256, 304) → 408 (limited), 816      GELU (128, 64) → 160 (limited), 320
    #   down GEMM (256, 304) → 408, 816     embedding gather (8, 32) → 100, 48
    #   final norm (64, 32) → 100, 160      head GEMM (64, 88) → 108 (limited), 216      sampling (20, 16) → 100, 56
    # time = 2·100 + 608 + 100 + 208 + 408 + 160 + 408 + 100 + 100 + 108 + 100 = 2500 ps; static 1 W × 2500 ps
    assert r.latency_per_sequence_s == pytest.approx(2500e-12, rel=1e-12)
    expected_pj = {"static": 2500.0, "linear": 1216.0 + 416.0 + 816.0 + 816.0, "attention": 148.0,
                   "elementwise": 2 * 176.0 + 320.0 + 48.0 + 160.0, "lm_head": 216.0, "sampling": 56.0,
                   "interconnect": 0.0}  # one GPU: nothing crosses a chip boundary
    assert {k: v * 1e12 for k, v in r.breakdown_j.items()} == pytest.approx(expected_pj, rel=1e-12)
    assert r.energy_per_token_j == pytest.approx(7064e-12, rel=1e-12)
    assert r.counts["kernels"] == 12                  # 2 norms + 10 others
    assert r.counts["flops"] == 2 * 64 + 384 + 42 + 128 + 256 + 128 + 256 + 8 + 64 + 64 + 20


def test_kernel_cost_power_limit():
    # 1e12 FLOPs at 2e11 FLOP/s is 5 s of compute; at 1 pJ/FLOP that is 1 J/5 s = 0.2 W dynamic + 0.1 W
    # constant: under a 1 W limit, so the roofline time stands; under 0.25 W it is 1 J / (0.25 − 0.1) W.
    args = dict(peak_flops=2e11, bandwidth_bps=1e15, launch_s=0.0, p_const_w=0.1, e_flop_j=1e-12, e_byte_j=0.0)
    t, e = kernel_cost(1e12, 0.0, p_max_w=1.0, **args)
    assert (float(t), float(e)) == pytest.approx((5.0, 1.0))
    t, _ = kernel_cost(1e12, 0.0, p_max_w=0.25, **args)
    assert float(t) == pytest.approx(1.0 / 0.15)


def test_streamed_weights_exclude_the_gathered_embedding():
    llama = load_shape("llama3-8b")
    assert streamed_params(llama) == 7_504_658_432 + 65 * 4096      # 32 blocks + LM head + 65 RMSNorm gains
    assert llama.n_params() - streamed_params(llama) == 128256 * 4096  # the input table: gathered, not streamed
    gpt2 = load_shape("gpt2-small")                                 # tied: the LM head streams the table
    assert gpt2.n_params() - streamed_params(gpt2) == 1024 * 768    # learned positions: gathered


def test_llama3_8b_batch1_decode_respects_the_weight_streaming_floor():
    r = estimate("llama3-8b", H100, decode=Autoregressive(seq_len=1024), batch=1)
    floor_s = weight_streaming_floor_s(load_shape("llama3-8b"), H100)
    assert floor_s == pytest.approx(7_504_924_672 * 2 / 3.35e12)   # 15.0 GB / 3.35 TB/s ≈ 4.48 ms
    # no decoder beats the floor; the card reaches bandwidth_efficiency of it (plus launches, KV, sampling)
    assert 1.0 / H100.gpu.bandwidth_efficiency <= r.latency_per_token_s / floor_s <= 1.15 / H100.gpu.bandwidth_efficiency


def test_memory_bound_decode_draws_well_below_tdp_and_no_workload_exceeds_it():
    g = H100.gpu
    r = estimate("llama3-8b", H100, decode=Autoregressive(seq_len=1024), batch=1)
    power_w = r.energy_per_sequence_j / r.latency_per_sequence_s
    # HBM-bound: P_const + e_hbm × achieved bandwidth (≈ 473 W), not the 700 W TDP
    achieved_bps = r.counts["hbm_bytes"] / r.latency_per_sequence_s
    assert power_w == pytest.approx(g.power_const_w + g.e_hbm_pj_per_byte * 1e-12 * achieved_bps, rel=0.03)
    assert g.power_const_w < power_w < 0.75 * g.power_max_w
    for card in (H100, A100):
        for decode, batch in ((Autoregressive(seq_len=512), 1), (Autoregressive(seq_len=512, prompt_len=256), 128),
                              (Diffusion(steps=64, seq_len=512), 8)):
            r = estimate("llama3-8b", card, decode=decode, batch=batch)
            assert r.energy_per_sequence_j * batch / r.latency_per_sequence_s <= card.gpu.power_max_w * (1 + 1e-9)


def test_gpu_energy_is_linear_in_steps():
    e = [estimate("llada-8b", H100, decode=Diffusion(steps=t, seq_len=512)).energy_per_sequence_j for t in (2, 8)]
    assert e[1] == pytest.approx(4 * e[0], rel=1e-12)


def test_fp8_streams_half_the_bytes():
    d = Autoregressive(seq_len=256)
    bf16 = estimate("llama3-8b", H100, d)
    fp8 = estimate("llama3-8b", load_hardware(H100, {"gpu.dtype": "fp8"}), d)
    # everything but the fp32 logits read by sampling halves
    assert fp8.counts["hbm_bytes"] == pytest.approx(bf16.counts["hbm_bytes"] / 2, rel=1e-4)
    assert 0.5 < fp8.latency_per_token_s / bf16.latency_per_token_s < 0.6   # launch floors do not halve
    with pytest.raises(ConfigError, match="fp8"):
        load_hardware(A100, {"gpu.dtype": "fp8"})


def test_batch_amortizes_weight_streaming():
    d = Autoregressive(seq_len=256)
    b1, b64 = estimate("llama3-8b", H100, d), estimate("llama3-8b", H100, d, batch=64)
    assert b64.energy_per_token_j < b1.energy_per_token_j / 10
    assert b64.counts["hbm_bytes"] < b1.counts["hbm_bytes"] / 10


def test_gpu_rejects_what_does_not_fit_and_stats():
    with pytest.raises(ConfigError, match=r"h100-sxm: llama3-8b needs [\d.]+ GB .*hbm_capacity_gb = 80"):
        estimate("llama3-8b", H100, decode=Autoregressive(seq_len=8192), batch=64)
    with pytest.raises(ConfigError, match="analog cards only"):
        estimate("gpt2-small", H100, decode=Autoregressive(seq_len=8), stats={"layers": {}})


@pytest.mark.parametrize("key, value", [("gpu.power_const_w", 700.0), ("gpu.e_hbm_pj_per_byte", 1e4),
                                        ("gpu.e_flop_bf16_pj", -1.0), ("gpu.power_const_w", 2500.0)])
def test_power_fields_are_bounded(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_hardware(H100, {key: value})
