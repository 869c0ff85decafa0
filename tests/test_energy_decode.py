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


# ----------------------------------------------------------------------------- traces of simulated runs

def _tiny():
    from analogdiff.lm.model import CharLM, char_shape

    shape = char_shape("tiny", n_layers=1, d_model=16, n_heads=2, n_kv_heads=2, d_ff=32, vocab_size=64,
                       context_len=24)
    energy = shape  # the shared torch-free shape the estimator prices
    return CharLM("mdlm", shape, seed=0).eval(), CharLM("ar", shape, seed=0).eval(), energy


def test_work_from_trace_by_hand():
    from analogdiff.energy.decode import work_from_trace
    from analogdiff.trace import Trace

    t = Trace(tokens=12)
    t.record(sequences=2, queries=4, heads=0, attn_pairs=16, kv_len=4)            # a prompt prefill
    t.record(sequences=2, queries=6, heads=6, attn_pairs=60, kv_len=10, cache_hits=4)
    t.record(sequences=2, queries=6, heads=6, attn_pairs=60, kv_len=10, cache_hits=4)
    t.record(sequences=1, queries=3, heads=3, attn_pairs=9, kv_len=3)
    (w1, one), (w2, two) = work_from_trace(t)
    assert (w1, w2) == (1, 2)
    assert two.repeats.tolist() == [1, 2] and two.positions.tolist() == [4, 6]
    assert two.head_positions.tolist() == [0, 6] and two.attn_pairs.tolist() == [16, 60]
    assert two.kv_len.tolist() == [4, 10] and two.context_needed == 10 and two.generated_tokens == 12
    assert two.totals == {"forward_passes": 3, "token_forwards": 16, "head_evals": 12, "attention_pairs": 136}
    assert one.totals["token_forwards"] == 3 and one.context_needed == 3
    assert t.kv_cache_hits == 2 * 2 * 4


SAME_RUNS = [  # (model kind, generate_ids keyword arguments, the schedule that describes the same run)
    ("ar", dict(seq_len=24), Autoregressive(seq_len=24)),
    ("ar", dict(seq_len=24, prompt="KING"), Autoregressive(seq_len=24, prompt_len=4)),
    ("ar", dict(seq_len=20, kv_cache=False), Autoregressive(seq_len=20, kv_cache=False)),
    ("mdlm", dict(steps=6, sampler="remask"), Diffusion(steps=6, seq_len=24)),
    ("mdlm", dict(steps=6, sampler="remask", block_len=8), Diffusion(steps=6, seq_len=24, block_len=8,
                                                                     kv_cache=False)),
    ("mdlm", dict(steps=6, sampler="remask", block_len=8, kv_cache=True),
     Diffusion(steps=6, seq_len=24, block_len=8)),
    ("mdlm", dict(steps=10, sampler="remask", block_len=4, prompt="KING", kv_cache=True),
     Diffusion(steps=10, seq_len=24, block_len=4, prompt_len=4)),
]


@pytest.mark.parametrize("n_samples", [1, 3])
@pytest.mark.parametrize("card", ["pcm-ibm", "h100-sxm"])
@pytest.mark.parametrize("kind, kwargs, schedule", SAME_RUNS)
def test_a_trace_and_the_schedule_of_the_same_run_price_the_same(kind, kwargs, schedule, card, n_samples):
    """Where a run does exactly what a schedule describes (AR; diffusion with no skipped call), the trace
    of the run and the schedule at batch = n_samples give the same phases and the same figures."""
    from analogdiff.energy import estimate
    from analogdiff.lm.sampling import generate_ids

    mdlm, ar, shape = _tiny()
    _, info = generate_ids(mdlm if kind == "mdlm" else ar, n_samples=n_samples, seed=2, **kwargs)
    trace = info["trace"]
    assert trace.skipped_calls == 0
    by_trace = estimate(shape, card, decode=trace)
    by_schedule = estimate(shape, card, decode=schedule, batch=n_samples)
    for key in ("energy_per_token_j", "latency_per_token_s", "energy_per_sequence_j", "latency_per_sequence_s",
                "tokens_per_s", "breakdown_j", "counts", "batch", "generated_tokens", "tiles"):
        assert getattr(by_trace, key) == getattr(by_schedule, key), key
