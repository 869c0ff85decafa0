"""Conditional completion, the MDLM's continuation log-loss, ReMDM remasking and error injection (tiny models)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analogdiff.lm import CharLM, Vocab, char_shape
from analogdiff.lm.completion import complete, continuation_nll, judge_nll, n_corrupt, prompt_windows
from analogdiff.lm.sampling import corrupt, sample_mdlm
from analogdiff.stats import bootstrap
from analogdiff.trace import Trace

VOCAB = Vocab()
V = VOCAB.size
SHAPE = char_shape("tiny", n_layers=1, d_model=16, n_heads=2, n_kv_heads=2, d_ff=32, vocab_size=V,
                   context_len=64)


class Bigram(torch.nn.Module):
    """A known conditional model: p(x_i | everything) = B[x_{i-1}] for a fixed bigram table B.

    As an AR model it predicts position i+1 from position i. As an MDLM denoiser it predicts, at a masked
    position, B[left neighbour] when the left neighbour is revealed and the uniform-free marginal ``u``
    otherwise. Left to right one character at a time, the left neighbour of the next masked position is
    always revealed, so the MDLM's left-to-right NLL must equal the AR's exact NLL."""

    def __init__(self, kind: str, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.kind, self.vocab = kind, VOCAB
        self.table = torch.randn(V, V, generator=g)  # (V, V) logits of the next id given the previous one
        self.table[:, VOCAB.mask_id] = float("-inf")
        self.marginal = torch.randn(V, generator=g)
        self.marginal[VOCAB.mask_id] = float("-inf")
        self.calls = 0

    @property
    def mask_id(self):
        return VOCAB.mask_id

    def forward(self, ids, cache=None, write_cache=True, head_last=None, trace=None):
        self.calls += 1
        if trace is not None:
            B, T = ids.shape
            trace.record(sequences=B, queries=T, heads=head_last or T, attn_pairs=T * T, kv_len=T)
        if self.kind == "ar":
            logits = self.table[ids]  # (B, T, V): next id given this one
        else:
            left = torch.cat([torch.full_like(ids[:, :1], self.mask_id), ids[:, :-1]], dim=1)  # (B, T)
            logits = torch.where((left == self.mask_id)[..., None], self.marginal.expand(*ids.shape, V),
                                 self.table[left.clamp(max=V - 1)])
        return logits if head_last is None else logits[:, -head_last:]


class Unigram(Bigram):
    """p(x_i | anything) = softmax(marginal) for both kinds: every order gives the same NLL."""

    def forward(self, ids, cache=None, write_cache=True, head_last=None, trace=None):
        self.calls += 1
        logits = self.marginal.expand(*ids.shape, V).clone()
        return logits if head_last is None else logits[:, -head_last:]


def _windows(n=6, P=10, N=12):
    return prompt_windows(VOCAB, "test", n, P, N)


def test_left_to_right_nll_equals_the_exact_ar_nll_on_a_bigram_model():
    w = _windows()
    ar, mdlm = Bigram("ar", seed=3), Bigram("mdlm", seed=3)
    exact = continuation_nll(ar, w, 12)
    l2r = continuation_nll(mdlm, w, 12, "l2r", batch_size=7)  # batches cut across prompts
    # hand computation for the first prompt
    x = w[0]
    by_hand = -sum(float(torch.log_softmax(ar.table[x[i - 1]].double(), -1)[x[i]]) for i in range(10, 22))
    assert float(exact[0]) == pytest.approx(by_hand, rel=1e-9)
    assert torch.allclose(l2r, exact, rtol=1e-9)


def test_nelbo_is_unbiased_for_an_order_free_model_and_above_on_a_bigram():
    w = _windows()
    uni = Unigram("mdlm", seed=1)
    exact = continuation_nll(Unigram("ar", seed=1), w, 12)
    nelbo = continuation_nll(uni, w, 12, "nelbo", t_samples=400, seed=0)
    assert float(nelbo.mean()) == pytest.approx(float(exact.mean()), rel=0.03)
    # the bigram denoiser sees its left neighbour less often in random orders: NELBO >= left-to-right NLL
    bi = Bigram("mdlm", seed=3)
    assert float(continuation_nll(bi, w, 12, "nelbo", t_samples=64).mean()) > float(continuation_nll(bi, w, 12).mean())


def _tiny(kind="mdlm", seed=0):
    return CharLM(kind, SHAPE, VOCAB, seed=seed).eval()


def test_remdm_with_eta_zero_equals_ancestral_bit_for_bit():
    m = _tiny()
    x = torch.full((3, 24), m.mask_id)
    x[:, :8] = _windows(3, 8, 16)[:, :8]
    a, _ = sample_mdlm(m, x, 12, torch.Generator().manual_seed(5), "ancestral")
    b, _ = sample_mdlm(m, x, 12, torch.Generator().manual_seed(5), "remdm", eta=0.0)
    c, _ = sample_mdlm(m, x, 12, torch.Generator().manual_seed(5), "remdm", eta=0.5)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(c[:, :8], x[:, :8])  # the prompt is never re-masked


def test_injection_zero_changes_nothing_and_k_corrupts_round_k_n_over_100():
    m = _tiny()
    w = _windows(4, 8, 20)
    plain, info0 = complete(m, w, 20, 10, "remask", seed=2)
    again, _ = complete(m, w, 20, 10, "remask", seed=2, inject_pct=0.0)
    assert torch.equal(plain, again) and not info0["injected"].any()
    for k in (5, 10, 20, 25):
        ids, info = complete(m, w, 20, 10, "remask", seed=2, inject_pct=k)
        assert info["injected"].sum(dim=1).tolist() == [round(k * 20 / 100)] * 4
        assert (info["repaired"] == 0).all()  # LLaDA remasking never revises a decoded character
        assert (info["revised_clean"] == 0).all()  # nor an uncorrupted one: its base rate is 0


def test_corrupt_writes_a_different_id_at_exactly_n_allowed_positions():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 62, (5, 30), generator=g)
    allowed = torch.rand(5, 30, generator=g) < 0.5
    y, hit = corrupt(x, allowed, 3, g, 62)
    assert (hit.sum(1) == torch.minimum(allowed.sum(1), torch.tensor(3))).all()
    assert not (hit & ~allowed).any()
    assert (y[hit] != x[hit]).all() and torch.equal(y[~hit], x[~hit]) and int(y.max()) < 62


def test_remdm_revises_injected_characters_and_ar_cannot():
    m = _tiny()
    w = _windows(8, 8, 24)
    _, info = complete(m, w, 24, 24, "remdm", eta=1.0, seed=0, inject_pct=20)
    assert float(info["repaired"].mean()) > 0
    assert 0 < float(info["revised_clean"].mean()) <= 1  # ReMDM also revises uncorrupted characters: a base rate
    ar = _tiny("ar", seed=1)
    ids, info = complete(ar, w, 24, seed=0, inject_pct=20)
    assert info["injected"].sum(1).tolist() == [n_corrupt(20, 24)] * 8
    assert (info["repaired"] == 0).all() and (info["revised_clean"] == 0).all()
    assert not info["injected"][:, 12:].any()  # injected midway, among the first half


def test_judge_nll_is_the_ar_loss_of_the_written_text():
    ar = Bigram("ar", seed=2)
    w = _windows()
    assert torch.allclose(judge_nll(ar, w, w[:, -12:]), continuation_nll(ar, w, 12))


def test_completion_traces_every_call_and_counts_tokens():
    m = Bigram("mdlm", seed=0)
    w = _windows(4, 6, 8)
    trace = Trace()
    complete(m, w, 8, 8, "ancestral", seed=0, trace=trace)
    continuation_nll(m, w, 8, "l2r", batch_size=5, trace=trace)
    assert trace.denoiser_calls == m.calls
    assert trace.tokens == 2 * 4 * 8


def test_bootstrap_covers_a_known_mean_at_about_the_stated_rate():
    rng = np.random.default_rng(0)
    hits = 0
    n_rep = 200
    for r in range(n_rep):
        draws = rng.normal(1.5, 2.0, size=(3, 40)) + rng.normal(0, 0.3, size=(3, 1))  # seeds × prompts
        b = bootstrap(lambda a: a.mean(), [draws], n_boot=400, seed=r)
        hits += b["ci95"][0] <= 1.5 <= b["ci95"][1]
    assert 0.88 <= hits / n_rep <= 0.995


def test_bootstrap_is_seeded_and_checks_prompt_counts():
    a = np.arange(12.0).reshape(2, 6)
    assert bootstrap(np.mean, [a], seed=3) == bootstrap(np.mean, [a], seed=3)
    with pytest.raises(ValueError, match="prompts"):
        bootstrap(lambda x, y: 0.0, [a, np.zeros((1, 5))])
    assert math.isclose(bootstrap(np.mean, [a])["mean"], 5.5)
