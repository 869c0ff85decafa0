"""Samplers: no mask left, committed tokens kept, schedules, caching, seeding, float64 categorical, errors."""
import math

import pytest
import torch

from analogdiff.lm.model import CharLM, char_shape
from analogdiff.lm.sampling import categorical, generate, generate_ids, sample_ar, sample_mdlm

SHAPE = char_shape("tiny", n_layers=1, d_model=16, n_heads=2, n_kv_heads=2, d_ff=32, vocab_size=64,
                   context_len=24)
MDLM = CharLM("mdlm", SHAPE, seed=0).eval()
AR = CharLM("ar", SHAPE, seed=0).eval()
MASK = MDLM.mask_id


class Counting(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0
        self.mask_id, self.shape, self.vocab, self.kind = model.mask_id, model.shape, model.vocab, model.kind

    def forward(self, ids, **kwargs):
        self.calls += 1
        return self.model(ids, **kwargs)


@pytest.mark.parametrize("sampler", ["ancestral", "remask"])
@pytest.mark.parametrize("steps,block_len", [(1, None), (5, None), (24, None), (6, 8), (24, 5)])
def test_no_mask_left_and_committed_tokens_kept(sampler, steps, block_len):
    x = torch.full((3, 24), MASK)
    x[:, 2] = 7  # a committed token (like a prompt character)
    states = []
    out, info = sample_mdlm(MDLM, x, steps, torch.Generator().manual_seed(1), sampler, block_len,
                            on_step=lambda k, s: states.append(s.clone()))
    assert not (out == MASK).any()
    assert (out[:, 2] == 7).all()
    assert len(states) == steps
    for before, after in zip([x] + states, states):
        committed = before != MASK
        assert torch.equal(after[committed], before[committed])  # once unmasked, never changed
    if block_len:  # semi-AR: a block is complete before the next one starts
        for s in states:
            done = (s != MASK).all(dim=0)
            first_open = int(done.logical_not().nonzero()[0]) if not done.all() else 24
            assert (s[:, (first_open // block_len + 1) * block_len:] == MASK).all()


def test_remask_commits_the_scheduled_number_per_step():
    x = torch.full((2, 24), MASK)
    counts = []
    sample_mdlm(MDLM, x, 5, torch.Generator().manual_seed(0), "remask",
                on_step=lambda k, s: counts.append((s == MASK).sum(dim=1).tolist()))
    # 24 masked positions over 5 steps: commit 5, 5, 5, 5, 4
    assert counts == [[19, 19], [14, 14], [9, 9], [4, 4], [0, 0]]


def test_ancestral_skips_the_network_when_nothing_changed():
    counting = Counting(MDLM)
    states = []
    x = torch.full((1, 24), MASK)
    _, info = sample_mdlm(counting, x, 24, torch.Generator().manual_seed(3), "ancestral",
                          on_step=lambda k, s: states.append(s.clone()))
    changed = [not torch.equal(a, b) for a, b in zip([x] + states[:-1], states[:-1])]
    # one call at the start, then one after each step (but the last) that changed the sequence
    assert counting.calls == info["nfe"] == 1 + sum(changed)
    assert info["nfe"] < 24  # with 24 steps for 24 positions some steps reveal nothing
    assert info["trace"].denoiser_calls == info["nfe"] and info["trace"].skipped_calls == 24 - info["nfe"]


@pytest.mark.parametrize("model", [MDLM, AR], ids=["mdlm", "ar"])
def test_same_seed_same_text(model):
    a = generate(model, steps=8, seed=11, top_k=10)
    assert a == generate(model, steps=8, seed=11, top_k=10)
    assert a != generate(model, steps=8, seed=12, top_k=10)
    assert len(a) == 24 and "\u2588" not in a


def test_prompt_and_show_steps():
    shown = []
    text = generate(MDLM, steps=4, seed=0, prompt="KING:", show_steps=lambda k, t: shown.append((k, t)))
    assert text.startswith("KING:") and [k for k, _ in shown] == [1, 2, 3, 4]
    assert shown[-1][1] == text and shown[0][1].count("\u2588") > 0
    assert generate(AR, seed=0, prompt="KING:", seq_len=12).startswith("KING:")


def test_categorical_matches_softmax_in_float64():
    p = torch.tensor([0.1, 0.2, 0.7])
    logits = torch.log(p).expand(200000, 3)
    ids, conf = categorical(logits, torch.Generator().manual_seed(0), temperature=1.0)
    freq = torch.bincount(ids, minlength=3).double() / ids.numel()
    torch.testing.assert_close(freq, p.double(), atol=4e-3, rtol=0)
    torch.testing.assert_close(conf, p.double()[ids])
    # temperature 2 flattens: p^(1/2) normalized
    ids2, _ = categorical(logits, torch.Generator().manual_seed(0), temperature=2.0)
    q = p.double().sqrt() / p.double().sqrt().sum()
    torch.testing.assert_close(torch.bincount(ids2, minlength=3).double() / ids2.numel(), q, atol=4e-3, rtol=0)
    greedy, _ = categorical(logits[:2], None, temperature=0)
    assert greedy.tolist() == [2, 2]
    top1, _ = categorical(logits[:5], torch.Generator().manual_seed(0), top_k=1)
    assert top1.tolist() == [2] * 5


def test_ar_top_k_one_is_greedy():
    assert generate(AR, seed=1, top_k=1) == generate(AR, seed=2, temperature=0)


@pytest.mark.parametrize("kwargs,field", [
    ({"steps": 0}, "steps"), ({"steps": 25}, "steps"), ({"temperature": -1.0}, "temperature"),
    ({"sampler": "greedy"}, "sampler"), ({"seq_len": 25}, "seq_len"), ({"top_k": 0}, "top_k"),
    ({"steps": 2, "block_len": 4}, "steps"), ({"prompt": "x" * 24}, "prompt"), ({"kv_cache": "yes"}, "kv_cache"),
    ({"steps": 2, "block_len": 4, "kv_cache": True}, "steps"),
])
def test_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        generate(MDLM, **{"steps": 8, **kwargs})


def test_generate_ids_batch_rows_are_distinct_samples():
    ids, _ = generate_ids(MDLM, n_samples=3, steps=6, seed=0)
    assert ids.shape == (3, 24) and not torch.equal(ids[0], ids[1])


def test_judge_perplexity_and_entropy_by_hand():
    from analogdiff.lm.evaluate import char_entropy, judge_perplexity

    uniform = CharLM("ar", SHAPE)
    with torch.no_grad():
        for p in uniform.parameters():
            p.zero_()
    ids = MDLM.vocab.encode("abab").expand(2, 4)
    assert judge_perplexity(uniform, ids) == pytest.approx(63.0, rel=1e-9)  # uniform judge: K
    assert char_entropy(ids, 64) == pytest.approx(1.0)  # two characters, equally often
    assert char_entropy(MDLM.vocab.encode("aaab")[None], 64) == pytest.approx(
        -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    with pytest.raises(ValueError, match="judge"):
        judge_perplexity(MDLM, ids)


def test_evaluate_keys_and_reproducibility():
    from analogdiff.lm.evaluate import evaluate

    kw = dict(max_chars=24 * 4, t_samples=2, judge=AR, n_samples=2, gen_steps=(4, 24), seed=3)
    m = evaluate(MDLM, **kw)
    assert set(m) == {"bits_per_char", "masked_acc@0.15", "masked_acc@0.5", "masked_acc@0.9", "token_accuracy",
                      "gen_ppl@4", "entropy@4", "gen_ppl@24", "entropy@24"}
    assert m == evaluate(MDLM, **kw)  # fixed seeds: identical
    assert m["token_accuracy"] == m["masked_acc@0.5"]
    a = evaluate(AR, split="validation", max_chars=100, gen_ppl=False)
    assert set(a) == {"bits_per_char", "next_char_accuracy", "token_accuracy"}
    with pytest.raises(ValueError, match="max_chars"):
        evaluate(AR, max_chars=0, gen_ppl=False)


def _fed_widths(model):
    """Hooks recording the width of every call's input ids (positions fed); returns (widths, remove)."""
    widths = []
    handle = model.backbone.tok_emb.register_forward_hook(lambda m, args, out: widths.append(args[0].shape[1]))
    return widths, handle.remove


@pytest.mark.parametrize("sampler", ["ancestral", "remask"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cached_sampler_with_one_block_equals_the_uncached_one(sampler, seed):
    """One block over the whole sequence, no prompt: nothing to cache, so the cached sampler is the uncached
    one, bit for bit (same calls, same draws)."""
    for block_len in (None, 24):
        kw = dict(n_samples=3, steps=10, seed=seed, sampler=sampler, block_len=block_len, top_k=20)
        a, ia = generate_ids(MDLM, kv_cache=True, **kw)
        b, ib = generate_ids(MDLM, **kw)
        assert torch.equal(a, b) and ia["nfe"] == ib["nfe"]
        assert ia["trace"] == ib["trace"]


@pytest.mark.parametrize("sampler", ["ancestral", "remask"])
def test_cached_blocks_feed_only_the_current_block(sampler):
    """Prompt of 5 prefilled once; blocks of 6 over positions 5..23 (6, 6, 6, 1); every denoising call
    feeds one block; a finished block is fed once more (not the last); no mask left, prompt kept."""
    widths, remove = _fed_widths(MDLM)
    try:
        states = []
        ids, info = generate_ids(MDLM, n_samples=2, steps=8, seed=4, sampler=sampler, block_len=6,
                                 prompt="KING:", kv_cache=True, on_step=lambda k, s: states.append(s.clone()))
    finally:
        remove()
    assert MDLM.vocab.decode(ids[0]).startswith("KING:") and not (ids == MASK).any()
    assert widths[0] == 5 and set(widths[1:]) <= {6, 1}
    # blocks (5..11, 11..17, 17..23, 23..24) get 2 steps each; each is written once after it is done
    denoise = len(widths) - 1 - 3  # calls less the prefill and the 3 writes
    assert info["nfe"] == len(widths) == info["trace"].denoiser_calls
    assert 1 <= widths.count(1) <= 2 and widths[-1] == 1  # the last block (1 position) is not written
    assert info["trace"].skipped_calls + denoise == 8  # every step either calls the model or reuses it
    assert info["trace"].tokens == 2 * 19
    for s in states:  # positions right of the open block are still masked
        open_cols = (s == MASK).any(dim=0).nonzero()
        if open_cols.numel():
            first = int(open_cols[0])
            end = 5 + ((first - 5) // 6 + 1) * 6
            assert (s[:, end:] == MASK).all()


def test_ar_kv_cache_switch():
    _, on = generate_ids(AR, n_samples=2, seed=0, seq_len=10)
    _, off = generate_ids(AR, n_samples=2, seed=0, seq_len=10, kv_cache=False)
    assert on["trace"].token_forwards == 2 * 10                # BOS, then each new character once
    assert off["trace"].token_forwards == 2 * sum(range(1, 11))  # the whole context every step
    assert on["trace"].head_evals == off["trace"].head_evals == 2 * 10  # the head on the last position only
    with pytest.raises(ValueError, match="^kv_cache:"):
        sample_ar(AR, torch.zeros(1, 20, dtype=torch.long), 6, torch.Generator(), kv_cache=True)
