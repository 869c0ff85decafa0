"""The work of decode schedules (token-forwards, head evaluations, attention pairs), counted by hand."""
import pytest

from analogdiff.config import ConfigError
from analogdiff.energy import Autoregressive, Diffusion, schedule_work


@pytest.mark.parametrize("L", [1, 2, 17, 1024])
def test_ar_with_kv_cache_does_seq_len_token_forwards(L):
    w = schedule_work(Autoregressive(seq_len=L))
    assert w.totals["token_forwards"] == L
    assert w.totals["head_evals"] == w.totals["forward_passes"] == w.generated_tokens == L
    assert w.totals["attention_pairs"] == L * (L + 1) // 2         # causal: position i sees i + 1 keys


def test_ar_with_prompt_prefills_once():
    w = schedule_work(Autoregressive(seq_len=10, prompt_len=4))
    # step 1 feeds the 4 prompt positions; steps 2..6 feed one generated token each
    assert (w.generated_tokens, w.totals["forward_passes"], w.totals["token_forwards"]) == (6, 6, 4 + 5)
    assert w.totals["attention_pairs"] == (1 + 2 + 3 + 4) + (5 + 6 + 7 + 8 + 9)


def test_ar_without_cache_recomputes_the_context():
    w = schedule_work(Autoregressive(seq_len=5, kv_cache=False))
    assert w.totals["token_forwards"] == 1 + 2 + 3 + 4 + 5
    assert w.totals["attention_pairs"] == 1 + 3 + 6 + 10 + 15


def test_full_sequence_diffusion():
    w = schedule_work(Diffusion(steps=7, seq_len=12, prompt_len=2))
    assert (w.totals["token_forwards"], w.totals["head_evals"], w.totals["attention_pairs"]) == (84, 84, 7 * 144)
    assert w.generated_tokens == 10


def test_semi_ar_blocks_with_prefix_kv_reuse():
    w = schedule_work(Diffusion(steps=8, seq_len=10, block_len=4, prompt_len=2))
    # prefill 2; block 1: 4 steps × 4 positions + commit 4; block 2: 4 steps × 4 positions (no commit)
    assert w.totals["token_forwards"] == 2 + 16 + 4 + 16
    assert w.totals["head_evals"] == 32
    assert w.totals["attention_pairs"] == 2 * 2 + (4 * 4 * 6 + 4 * 6) + 4 * 4 * 10
    no_cache = schedule_work(Diffusion(steps=8, seq_len=10, block_len=4, prompt_len=2, kv_cache=False))
    assert no_cache.totals["token_forwards"] == 8 * 10


def test_compressed_work_keeps_totals():
    w = schedule_work(Autoregressive(seq_len=50, prompt_len=5))
    c = w.compressed()
    assert c.totals == w.totals and len(c.repeats) == 2


@pytest.mark.parametrize("kwargs, field", [
    (dict(steps=0, seq_len=8), "steps"), (dict(steps=1, seq_len=0), "seq_len"),
    (dict(steps=1, seq_len=8, prompt_len=8), "prompt_len"), (dict(steps=4, seq_len=8, block_len=3), "block_len"),
    (dict(steps=3, seq_len=8, block_len=4), "steps"), (dict(steps=2.5, seq_len=8), "steps"),
])
def test_bad_diffusion_schedules(kwargs, field):
    with pytest.raises(ConfigError, match=f"^{field}"):
        Diffusion(**kwargs)

