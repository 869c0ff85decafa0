"""Trace: the record of a run; what the estimator prices equals what a counting module saw the model do."""
import json

import pytest
import torch

from analogdiff.config import ConfigError
from analogdiff.energy import estimate, estimate_many
from analogdiff.lm.evaluate import bits_per_char, masked_accuracy, next_char_accuracy
from analogdiff.lm.model import CharLM, char_shape
from analogdiff.lm.sampling import generate_ids
from analogdiff.trace import Trace

SHAPE = char_shape("tiny", n_layers=1, d_model=16, n_heads=2, n_kv_heads=2, d_ff=32, vocab_size=64,
                   context_len=24)
MDLM = CharLM("mdlm", SHAPE, seed=0).eval()
AR = CharLM("ar", SHAPE, seed=0).eval()
ENERGY_SHAPE = MDLM.shape  # the one torch-free shape: what the model is, the estimator prices


class Counter:
    """Counts, by forward hooks on the model's own modules, what each call actually ran: calls of the
    backbone, positions fed (ids into the token embedding) and logits rows produced (rows into the head).
    Independent of the Trace, which the backbone writes from its arguments."""

    def __init__(self, model):
        bb = model.backbone
        self.calls = self.fed = self.head_rows = 0
        self.handles = [
            bb.register_forward_pre_hook(lambda m, args: self._add("calls", 1)),
            bb.tok_emb.register_forward_hook(lambda m, args, out: self._add("fed", args[0].numel())),
            bb.head.register_forward_hook(lambda m, args, out: self._add("head_rows", args[0][..., 0].numel())),
        ]

    def _add(self, name, n):
        setattr(self, name, getattr(self, name) + n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


RUNS = {  # sampler configurations: (model, generate_ids keyword arguments)
    "ancestral": (MDLM, dict(n_samples=3, steps=24)),                      # 24 steps on 24 positions: skips
    "remask": (MDLM, dict(n_samples=2, steps=6, sampler="remask")),
    "blocks": (MDLM, dict(n_samples=2, steps=8, block_len=6, prompt="KING:")),
    "blocks-cached": (MDLM, dict(n_samples=2, steps=8, block_len=6, prompt="KING:", kv_cache=True)),
    "blocks-cached-remask": (MDLM, dict(n_samples=1, steps=12, block_len=4, sampler="remask", kv_cache=True)),
    "ar-cached": (AR, dict(n_samples=2, seq_len=20)),
    "ar-cached-prompt": (AR, dict(n_samples=2, prompt="KING:")),
    "ar-uncached": (AR, dict(n_samples=2, seq_len=20, kv_cache=False)),
}


@pytest.mark.parametrize("card", ["pcm-ibm", "h100-sxm"])
@pytest.mark.parametrize("run", RUNS)
def test_priced_work_equals_the_counted_work(run, card):
    model, kw = RUNS[run]
    with Counter(model) as c:
        ids, info = generate_ids(model, seed=1, **kw)
    trace = info["trace"]
    assert c.calls == info["nfe"] == trace.denoiser_calls
    report = estimate(ENERGY_SHAPE, card, decode=trace)
    assert report.decode["decode"] == "trace"
    assert report.decode["token_forwards"] == c.fed
    assert report.decode["head_evals"] == c.head_rows
    assert report.counts["token_forwards"] * report.batch == c.fed
    assert report.counts["head_evals"] * report.batch == c.head_rows
    generated = int((ids.shape[1] - (len(kw["prompt"]) if "prompt" in kw else 0)) * ids.shape[0])
    assert trace.tokens == generated
    assert report.energy_per_token_j == pytest.approx(report.energy_per_sequence_j * report.batch / generated,
                                                      rel=1e-12)
    if model.kind == "mdlm":
        assert trace.denoiser_calls + trace.skipped_calls >= kw["steps"]  # cached blocks add prefill/writes


def test_ancestral_skips_are_not_priced():
    """64 steps over 24 positions: many steps reveal nothing; the priced passes are the calls made."""
    _, info = generate_ids(MDLM, n_samples=1, steps=24, seed=0)
    trace = info["trace"]
    assert trace.skipped_calls > 0 and trace.denoiser_calls + trace.skipped_calls == 24
    r = estimate(ENERGY_SHAPE, "pcm-ibm", decode=trace)
    assert r.counts["forward_passes"] == trace.denoiser_calls
    assert r.counts["token_forwards"] == 24 * trace.denoiser_calls


@pytest.mark.parametrize("scorer", ["bpc-mdlm", "masked", "bpc-ar", "next-char"])
def test_scorers_record_every_call(scorer):
    from analogdiff.lm import corpus

    model = AR if scorer in ("bpc-ar", "next-char") else MDLM
    text = corpus.split_ids("test", model.vocab)
    if model.kind == "mdlm":  # windows of 24 (twice for two NELBO times), in batches of 4
        n_chars, bs = 24 * 5, 4
        n = corpus.tiled_windows(text[:n_chars], 24).shape[0] * (2 if scorer == "bpc-mdlm" else 1)
    else:  # windows of 25 characters overlapping by one, in batches of 3
        n_chars, bs, n = 24 * 5 + 1, 3, 5
    with Counter(model) as c:
        trace = Trace()
        if scorer == "bpc-mdlm":
            bits_per_char(MDLM, "test", n_chars, t_samples=2, seed=0, batch_size=bs, trace=trace)
        elif scorer == "masked":
            masked_accuracy(MDLM, "test", 0.5, n_chars, seed=0, batch_size=bs, trace=trace)
        elif scorer == "bpc-ar":
            bits_per_char(AR, "test", n_chars, batch_size=bs, trace=trace)
        else:
            next_char_accuracy(AR, "test", n_chars, batch_size=bs, trace=trace)
    widths = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    assert [r[1] for r in trace.calls for _ in range(r[0])] == widths
    assert c.calls == trace.denoiser_calls == len(widths)
    assert c.fed == trace.token_forwards == c.head_rows == trace.head_evals == 24 * n
    if scorer == "masked":
        assert 0 < trace.tokens < 24 * n  # the masked characters are the scored ones
    else:
        assert trace.tokens == 24 * n
    r = estimate(ENERGY_SHAPE, "pcm-ibm", decode=trace)
    assert r.decode["token_forwards"] == c.fed and r.batch == max(widths)
    assert r.energy_per_token_j * trace.tokens == pytest.approx(r.energy_per_sequence_j * r.batch, rel=1e-12)


def test_a_trace_of_two_batch_widths_is_the_sum_of_its_parts():
    """Pricing is linear in the calls: a trace with calls of 4 and 2 sequences costs the sum of the two
    traces priced alone (energy and time), per token of the whole run."""
    a, b = Trace(tokens=96), Trace(tokens=48)
    a.record(4, 24, 24, 24 * 24, 24)
    b.record(2, 24, 24, 24 * 24, 24)
    both = Trace().extend(a).extend(b)
    ra, rb, r = (estimate(ENERGY_SHAPE, "pcm-ibm", decode=t) for t in (a, b, both))
    e_run = ra.energy_per_sequence_j * 4 + rb.energy_per_sequence_j * 2
    assert r.energy_per_sequence_j * r.batch == pytest.approx(e_run, rel=1e-12)
    assert r.latency_per_sequence_s == pytest.approx(ra.latency_per_sequence_s + rb.latency_per_sequence_s,
                                                     rel=1e-12)
    assert r.energy_per_token_j == pytest.approx(e_run / 144, rel=1e-12)
    many = estimate_many(ENERGY_SHAPE, "pcm-ibm", both, overrides={"adc.bits": [6, 8]})
    assert many["energy_per_token_j"][1] == pytest.approx(r.energy_per_token_j, rel=1e-12)


def test_record_merges_identical_consecutive_calls_and_totals_by_hand():
    t = Trace(tokens=10)
    for _ in range(3):
        t.record(sequences=2, queries=5, heads=5, attn_pairs=25, kv_len=5)
    t.record(sequences=2, queries=1, heads=1, attn_pairs=6, kv_len=6, cache_hits=5)
    t.skip(2)
    assert t.calls == [[3, 2, 5, 5, 25, 5], [1, 2, 1, 1, 6, 6]]
    assert (t.denoiser_calls, t.skipped_calls, t.kv_cache_hits) == (4, 2, 2 * 5)
    assert t.token_forwards == 2 * (3 * 5 + 1) and t.head_evals == 32
    assert t.forward_passes == 2 * 4 and t.attention_pairs == 2 * (3 * 25 + 6)


def test_json_round_trip():
    _, info = generate_ids(MDLM, n_samples=2, steps=8, seed=3, block_len=6, prompt="KING:", kv_cache=True)
    t = info["trace"]
    back = Trace.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t and back.summary() == t.summary()


@pytest.mark.parametrize("data, field", [
    ([], "trace"), ({"calls": [[1, 1, 1]]}, r"trace.calls\[0\]"), ({"calls": [[1, 0, 1, 1, 1, 1]]}, "sequences"),
    ({"calls": [[1, 1, 2, 3, 4, 2]], "denoiser_calls": 1}, "heads"), ({"tokens": -1}, "trace.tokens"),
    ({"calls": [[2, 1, 1, 1, 1, 1]], "denoiser_calls": 1}, "denoiser_calls"), ({"nfe": 3}, "trace.nfe"),
    ({"calls": [[1, 1, True, 1, 1, 1]]}, "queries"),
])
def test_bad_trace_dicts(data, field):
    with pytest.raises(ConfigError, match=field):
        Trace.from_dict(data)


def test_bad_traces_for_the_estimator():
    with pytest.raises(ConfigError, match="^decode: the trace recorded no model calls"):
        estimate(ENERGY_SHAPE, "pcm-ibm", decode=Trace(tokens=1))
    t = Trace()
    t.record(1, 4, 4, 16, 4)
    with pytest.raises(ConfigError, match="^decode: the trace has tokens = 0"):
        estimate(ENERGY_SHAPE, "pcm-ibm", decode=t)
    t.tokens = 4
    with pytest.raises(ConfigError, match="^batch:"):
        estimate(ENERGY_SHAPE, "pcm-ibm", decode=t, batch=2)
    long = Trace(tokens=1)
    long.record(1, 30, 1, 900, 30)
    with pytest.raises(ConfigError, match="^decode: the trace reads 30 keys"):
        estimate(ENERGY_SHAPE, "pcm-ibm", decode=long)
