"""Issue 11 item 4: parallel decoding and Fast-dLLM's caches as schedules, K/V read per query tile, the
Fast-dLLM speed-ups within 1.5×, and the crossover detection of the regime map — against hand counts."""
import pytest

from analogdiff.cli import main
from analogdiff.config import ConfigError, load_hardware
from analogdiff.energy import Diffusion, estimate, load_shape
from analogdiff.energy.analog import kv_reads
from analogdiff.energy.decode import schedule_work
from analogdiff.energy.validate import dllm_speedup, fast_dllm_speedups


def test_threshold_schedule_forward_count_by_hand():
    # gen 256 at 4 tokens/step: 256 / 4 = 64 forwards; without the cache each feeds all 256 positions
    d = Diffusion(steps=None, seq_len=256, block_len=32, kv_cache=False, tokens_per_step=4)
    w = schedule_work(d)
    assert d.steps == 64 and w.totals["forward_passes"] == 64 and w.token_forwards == 64 * 256
    # with the prefix cache: 64 denoising passes of 32 positions, plus 7 passes writing a finished block's K/V
    w = schedule_work(Diffusion(steps=None, seq_len=256, block_len=32, tokens_per_step=4))
    assert w.totals["forward_passes"] == 64 + 7 and w.token_forwards == 71 * 32
    # 3 tokens/step: round(256 / 3) = 85 forwards over 8 blocks = 11, 11, 11, 11, 11, 10, 10, 10
    d = Diffusion(steps=None, seq_len=256, block_len=32, tokens_per_step=3)
    assert d.steps == 85 and d.block_steps().tolist() == [11] * 5 + [10] * 3
    # the same as a uniform schedule of the same forward count: its cost does not depend on which step
    # unmasks how many tokens
    assert Diffusion(steps=None, seq_len=256, tokens_per_step=4).steps == 64
    assert schedule_work(Diffusion(steps=None, seq_len=256, tokens_per_step=4)).totals == \
        schedule_work(Diffusion(steps=64, seq_len=256)).totals


@pytest.mark.parametrize("kwargs, field", [
    ({"steps": 60, "tokens_per_step": 4}, "steps"),                  # disagrees with 256 / 4 = 64
    ({"steps": None, "tokens_per_step": 0.5}, "tokens_per_step"),     # below one token per step
    ({"steps": None, "tokens_per_step": 33, "block_len": 32}, "tokens_per_step"),   # more than a block
    ({"steps": None}, "steps"),
    ({"steps": 8, "cache_mode": "dual"}, "cache_mode"),               # needs blocks
    ({"steps": 8, "block_len": 32, "cache_mode": "suffix"}, "cache_mode"),
])
def test_bad_schedules_name_their_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        Diffusion(seq_len=256, **kwargs)


def test_fast_dllm_caches_by_hand():
    # prompt 4, gen 8, blocks of 4, 8 steps (4 per block); L = 12
    base = dict(steps=8, seq_len=12, prompt_len=4, block_len=4)
    # PrefixCache: per block one full pass (12 queries × 12 keys), then 3 passes feeding the block and all
    # positions right of it: block 0 feeds 8, block 1 feeds 4, each against all 12 keys; logits on all fed
    w = schedule_work(Diffusion(**base, cache_mode="prefix")).totals
    assert w["forward_passes"] == 8
    assert w["token_forwards"] == w["head_evals"] == 12 + 3 * 8 + 12 + 3 * 4
    assert w["attention_pairs"] == 2 * 144 + 3 * 8 * 12 + 3 * 4 * 12
    # DualCache: the later passes feed only the block's 4 positions, against all 12 keys
    w = schedule_work(Diffusion(**base, cache_mode="dual")).totals
    assert w["token_forwards"] == 2 * 12 + 6 * 4 and w["attention_pairs"] == 2 * 144 + 6 * 4 * 12


def test_kv_read_once_per_query_tile_by_hand():
    # full-sequence diffusion: 2 passes × 100 queries × 100 keys = 20,000 pairs per layer
    w = schedule_work(Diffusion(steps=2, seq_len=100))
    assert kv_reads(w, 1) == 20_000 == w.totals["attention_pairs"]   # per pair: the old charge
    assert kv_reads(w, 64) == 2 * 2 * 100                            # ceil(100 / 64) = 2 tiles read 100 keys
    assert kv_reads(w, 100) == 2 * 100
    # DualCache, prompt 32, gen 64, blocks of 32, 4 steps per block: per block a full pass (96 queries: 2
    # tiles × 96 keys) and 3 passes of 32 queries (1 tile × 96 keys) → 2 × (192 + 288) = 960
    w = schedule_work(Diffusion(steps=8, seq_len=96, prompt_len=32, block_len=32, cache_mode="dual"))
    assert kv_reads(w, 64) == 960 and w.totals["attention_pairs"] == 2 * (96 * 96 + 3 * 32 * 96)


def test_kv_tile_changes_only_sram_by_the_hand_count():
    sh = load_shape("llada-8b")
    d = Diffusion(steps=8, seq_len=96, prompt_len=32, block_len=32, cache_mode="dual")
    per_pair = estimate(sh, load_hardware("pcm-ibm", overrides={"digital.attention_query_tile": 1}), d)
    tiled = estimate(sh, load_hardware("pcm-ibm"), d)   # default tile: 64 queries
    hw = load_hardware("pcm-ibm")
    kv_bits = 2 * sh.n_kv_heads * sh.head_dim * sh.n_layers * hw.digital.activation_bits
    saved_pj = (36_864 - 960) * kv_bits * hw.memory.e_sram_pj_per_bit
    got = {k: per_pair.breakdown_j[k] - tiled.breakdown_j[k] for k in per_pair.breakdown_j}
    assert got.pop("sram") * 1e12 == pytest.approx(saved_pj, rel=1e-9)
    assert all(v == 0 for v in got.values())


def test_parallel_alone_speedup_is_the_forward_ratio():
    # without a cache every forward feeds all positions: the speed-up is the forward count ratio, exactly
    assert dllm_speedup(load_hardware("a100-sxm"), "llada-8b", 1000, 1024, None, 1024 / 100) == \
        pytest.approx(1024 / 100, rel=1e-12)


def test_fast_dllm_speedups_within_1_5x():
    rows = fast_dllm_speedups()
    settings = {f.metric for f in rows}
    assert {"speed-up cache 256", "speed-up par 1024", "speed-up cache+par 1024", "speed-up dual+par 1024"} \
        <= settings
    for f in rows:
        ratio = f.estimator(load_hardware(f.card)) / f.published
        assert 1 / 1.5 <= ratio <= 1.5, (f.card, f.metric, ratio)
    assert {f.role for f in rows if f.card == "a100-sxm"} == {"validation"}   # the paper's GPU


def test_cli_parallel_and_dual_cache(capsys):
    args = ["estimate", "--model", "llada-8b", "--hardware", "h100-sxm", "--seq-len", "1280", "--prompt-len",
            "256", "--block-len", "32", "--cache-mode", "dual", "--tokens-per-step", "4", "--json"]
    assert main(args) == 0
    assert '"steps": 256' in capsys.readouterr().out                 # 1024 / 4
    assert main(["estimate", "--model", "llada-8b", "--hardware", "h100-sxm", "--decode", "ar",
                 "--tokens-per-step", "4"]) == 2
    assert "--tokens-per-step" in capsys.readouterr().err
