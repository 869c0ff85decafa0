"""GPU roofline: a one-block model priced by hand, the weight-streaming bound, invariants."""
import pytest

from analogdiff.config import ConfigError, load_hardware
from analogdiff.energy import Autoregressive, Diffusion, ModelShape, estimate

TINY = ModelShape(name="tiny", n_layers=1, d_model=8, n_heads=2, n_kv_heads=2, d_ff=16, mlp="gelu",
                  vocab_size=4, context_len=8, positions="learned", norm="layernorm", norm_bias=True, bias=[],
                  tied_embeddings=False, cond_dim=0)

# 1e6 FLOP/s, 1e6 B/s, 100 µs launch floor, 1 W idle, 2 W max: a kernel takes max(FLOPs, bytes, 100) µs
TOY_GPU = """
name = "toy-gpu"
[gpu]
model = "toy"
dtype = "bf16"
peak_tflops_bf16 = 1e-6
hbm_bandwidth_tbs = 1e-6
hbm_capacity_gb = 1.0
power_max_w = 2.0
power_idle_w = 1.0
kernel_launch_us = 100.0
compute_efficiency = 1.0
bandwidth_efficiency = 1.0
"""


def test_one_block_roofline_by_hand(tmp_path):
    p = tmp_path / "toy.toml"
    p.write_text(TOY_GPU)
    r = estimate(TINY, load_hardware(p), decode=Autoregressive(seq_len=1))
    # One pass of 1 position (the BOS), 1 head evaluation, 1 attention pair, bf16 = 2 bytes. (FLOPs, bytes):
    #   norm ×2 (8·d, 3·d·2) = (64, 48) → 100 µs each, dynamic 64     qkv GEMM (2·8·24, 8·24·2 + 32·2) = (384, 448)
    #   attention (4·2·4 + 5·2, (2·2·4 + 2·2·4)·2) = (42, 64) → 100     out GEMM (128, 128 + 32) = (128, 160)
    #   up GEMM (256, 256 + 48) = (256, 304)     GELU (8·16, 32·2) = (128, 64)     down GEMM (256, 304)
    #   embedding (8, 32) → 100    final norm (64, 32) → 100    head GEMM (64, 64 + 24) → 100    sampling (20, 16) → 100
    # time = 2·100 + 448 + 100 + 160 + 304 + 128 + 304 + 4·100 = 2044 µs
    # dynamic (1 W × max(compute, memory) µs): linear 448 + 160 + 304 + 304 = 1216; attention 64;
    #   elementwise 2·64 + 128 + 32 + 64 = 352; lm_head 88; sampling 20; idle 1 W × 2044 µs
    assert r.latency_per_sequence_s == pytest.approx(2044e-6, rel=1e-12)
    expected_uj = {"idle": 2044.0, "linear": 1216.0, "attention": 64.0, "elementwise": 352.0, "lm_head": 88.0,
                   "sampling": 20.0}
    assert {k: v * 1e6 for k, v in r.breakdown_j.items()} == pytest.approx(expected_uj, rel=1e-12)
    assert r.energy_per_token_j == pytest.approx(3784e-6, rel=1e-12)
    assert r.counts["kernels"] == 12                  # 2 norms + 10 others
    assert r.counts["flops"] == 2 * 64 + 384 + 42 + 128 + 256 + 128 + 256 + 8 + 64 + 64 + 20


def test_llama3_8b_batch1_decode_respects_the_weight_streaming_bound():
    r = estimate("llama3-8b", "h100-sxm", decode=Autoregressive(seq_len=1024), batch=1)
    bound_s = 16.06e9 / 3.35e12                       # 16.06 GB of bf16 weights over 3.35 TB/s ≈ 4.8 ms
    assert 1.0 <= r.latency_per_token_s / bound_s <= 1.25


def test_gpu_energy_is_linear_in_steps():
    e = [estimate("llada-8b", "h100-sxm", decode=Diffusion(steps=t, seq_len=512)).energy_per_sequence_j
         for t in (2, 8)]
    assert e[1] == pytest.approx(4 * e[0], rel=1e-12)


def test_fp8_streams_half_the_bytes():
    d = Autoregressive(seq_len=256)
    bf16 = estimate("llama3-8b", "h100-sxm", d)
    fp8 = estimate("llama3-8b", load_hardware("h100-sxm", {"gpu.dtype": "fp8"}), d)
    # everything but the fp32 logits read by sampling halves
    assert fp8.counts["hbm_bytes"] == pytest.approx(bf16.counts["hbm_bytes"] / 2, rel=1e-4)
    assert 0.5 < fp8.latency_per_token_s / bf16.latency_per_token_s < 0.6   # launch floors do not halve
    with pytest.raises(ConfigError, match="fp8"):
        load_hardware("a100-sxm", {"gpu.dtype": "fp8"})


def test_batch_amortizes_weight_streaming():
    d = Autoregressive(seq_len=256)
    b1, b64 = estimate("llama3-8b", "h100-sxm", d), estimate("llama3-8b", "h100-sxm", d, batch=64)
    assert b64.energy_per_token_j < b1.energy_per_token_j / 10
    assert b64.counts["hbm_bytes"] < b1.counts["hbm_bytes"] / 10


def test_gpu_rejects_what_does_not_fit_and_stats():
    with pytest.raises(ConfigError, match=r"h100-sxm: llama3-8b needs [\d.]+ GB .*hbm_capacity_gb = 80"):
        estimate("llama3-8b", "h100-sxm", decode=Autoregressive(seq_len=8192), batch=64)
    with pytest.raises(ConfigError, match="analog cards only"):
        estimate("gpt2-small", "h100-sxm", decode=Autoregressive(seq_len=8), stats={"layers": {}})
