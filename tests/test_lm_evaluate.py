"""lm/evaluate.py against hand computations, with models whose output is known in closed form.

``Fixed`` models give the same logits at every position (a uniform model, a constant model) or copy their
input (the "copy" model: the character at each position is its own prediction, which exposes any shift
between predictions and targets). They record every input, so the NELBO and the masked accuracy can be
recomputed by hand from the masks the evaluator drew.
"""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from analogdiff.lm import corpus
from analogdiff.lm.corpus import Vocab
from analogdiff.lm.diffusion import stratified_times
from analogdiff.lm.evaluate import (bits_per_char, char_entropy, evaluate, judge_perplexity, masked_accuracy,
                                    next_char_accuracy)

VOCAB = Vocab()
V = VOCAB.size  # 63 characters + the mask
K = V - 1
MASK = VOCAB.mask_id
L = 16  # context length of the test models
SPACE = int(VOCAB.encode(" ")[0])


class Fixed(nn.Module):
    """Logits ``row`` (V,) at every position, plus ``copy`` on the input character; mask logit -inf (as the
    real models). Records every input (B, T)."""

    def __init__(self, kind: str, row: torch.Tensor | None = None, copy: float = 0.0, vocab: Vocab = VOCAB,
                 context_len: int = L):
        super().__init__()
        self.kind, self.vocab, self.copy = kind, vocab, copy
        self.shape = SimpleNamespace(context_len=context_len)
        self.row = torch.zeros(vocab.size) if row is None else row.clone()
        self.row[vocab.mask_id] = float("-inf")
        self.inputs: list[torch.Tensor] = []

    @property
    def mask_id(self) -> int:
        return self.vocab.mask_id

    def forward(self, ids: torch.Tensor, **_) -> torch.Tensor:  # cache/trace keywords: nothing to do here
        self.inputs.append(ids.clone())
        logits = self.row.expand(*ids.shape, -1).clone()  # (B, T, V)
        if self.copy:
            seen = ids != self.mask_id
            logits[seen] += self.copy * nn.functional.one_hot(ids[seen], self.vocab.size)
        return logits


def constant(kind: str, char: str = " ", margin: float = 1e4, **kw) -> Fixed:
    row = torch.zeros(V)
    row[VOCAB.encode(char)] = margin  # margin 1e4: every other character has probability exactly 0
    return Fixed(kind, row, **kw)


def test_ar_bits_per_char_uniform_and_copy_by_hand():
    ids = corpus.split_ids("test")[: 5 * L + 3]
    n = (ids.numel() - 1) // L  # 5 windows of L+1 characters, overlapping by one
    uniform = Fixed("ar")
    assert bits_per_char(uniform, "test", max_chars=5 * L + 3, batch_size=2) == pytest.approx(math.log2(K),
                                                                                                 abs=1e-12)
    assert torch.equal(torch.cat(uniform.inputs), ids[: n * L].view(n, L))  # each character once as context

    a = 3.0  # copy model: p(next = current) = e^a / Z, any other character 1 / Z, Z = e^a + K - 1
    z = math.exp(a) + K - 1
    repeats = float((ids[1:n * L + 1] == ids[:n * L]).double().mean())
    expected = -(repeats * math.log2(math.exp(a) / z) + (1 - repeats) * math.log2(1 / z))
    assert bits_per_char(Fixed("ar", copy=a), "test", max_chars=5 * L + 3) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="max_chars"):
        bits_per_char(uniform, "test", max_chars=L)  # one window needs L + 1 characters


def test_mdlm_nelbo_by_hand():
    # Uniform denoiser: each masked character costs log K nats, weighted 1/t: NELBO_i = m_i log K / t_i.
    n, S, seed = 6, 3, 7
    model = Fixed("mdlm")
    bpc = bits_per_char(model, "validation", max_chars=n * L + 5, t_samples=S, seed=seed, batch_size=4)
    x0 = corpus.split_ids("validation")[: n * L].view(n, L).repeat(S, 1)  # (n S, L), windows × t-samples
    xt = torch.cat(model.inputs)  # (n S, L)
    masked = xt == MASK
    assert torch.equal(xt[~masked], x0[~masked])  # unmasked characters are the text
    m = masked.sum(dim=1).double()  # (n S,)
    t = stratified_times(n * S, torch.Generator().manual_seed(seed)).double()  # the generator's first draw
    assert 0 < m.sum() < n * S * L
    expected = float((m / t).sum()) * math.log(K) / (n * S * L) / math.log(2)
    assert bpc == pytest.approx(expected, rel=1e-6)  # the per-character NLL is float32


def test_masked_accuracy_of_a_constant_model():
    n, rate = 24, 0.5
    model = constant("mdlm", " ")
    acc = masked_accuracy(model, "test", rate, max_chars=n * L, seed=3, batch_size=5)
    x0 = corpus.split_ids("test")[: n * L].view(n, L)
    xt = torch.cat(model.inputs)
    masked = xt == MASK
    assert torch.equal(xt[~masked], x0[~masked])
    assert abs(float(masked.double().mean()) - rate) < 5 * math.sqrt(rate * (1 - rate) / (n * L))
    assert acc == float((x0[masked] == SPACE).double().mean())  # right exactly where the text has a space
    assert 0 < acc < 1


def test_next_char_accuracy_of_constant_and_copy_models():
    ids = corpus.split_ids("validation")[: 7 * L + 1]
    targets, contexts = ids[1:], ids[:-1]  # 7 windows of L+1: every character after the first is a target
    acc = next_char_accuracy(constant("ar", " "), "validation", max_chars=7 * L + 1, batch_size=3)
    assert acc == float((targets == SPACE).double().mean())
    acc = next_char_accuracy(Fixed("ar", copy=1.0), "validation", max_chars=7 * L + 1)
    assert acc == float((targets == contexts).double().mean())  # right exactly at a repeated character


def test_judge_perplexity_by_hand():
    ids = VOCAB.encode("aaab")[None].expand(2, 4)
    assert judge_perplexity(Fixed("ar"), ids) == pytest.approx(K, rel=1e-12)  # uniform judge
    # Copy judge after the leading line break: "\n"→a: 1/Z; a→a twice: e^a/Z; a→b: 1/Z.
    a = 2.0
    z = math.exp(a) + K - 1
    nll = (2 * math.log(z) + 2 * (math.log(z) - a)) / 4
    assert judge_perplexity(Fixed("ar", copy=a), ids) == pytest.approx(math.exp(nll), rel=1e-12)
    with pytest.raises(ValueError, match="judge"):
        judge_perplexity(Fixed("mdlm"), ids)
    with pytest.raises(ValueError, match="judge: context_len 3"):
        judge_perplexity(Fixed("ar", context_len=3), ids)


def test_char_entropy_of_hand_made_histograms():
    rows = torch.stack([VOCAB.encode(s) for s in ("aabb", "aaaa", "abcd", "aaab")])
    h = [1.0, 0.0, 2.0, -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))]
    for row, expected in zip(rows, h):
        assert char_entropy(row[None], V) == pytest.approx(expected, abs=1e-12)
    assert char_entropy(rows, V) == pytest.approx(sum(h) / 4, abs=1e-12)  # mean over rows


@pytest.mark.parametrize("kind", ["mdlm", "ar"])
def test_evaluate_end_to_end_by_hand(kind):
    """A constant model generates only spaces: entropy 0; a uniform judge gives them perplexity K; the
    accuracy keys are the constant model's hand values; the model's train/eval mode is left as it was."""
    model = constant(kind, " ").train()
    m = evaluate(model, "test", seed=1, max_chars=4 * L + 1, t_samples=1, judge=Fixed("ar"), n_samples=2,
                 gen_steps=(4, L))
    assert model.training
    if kind == "mdlm":
        assert m["token_accuracy"] == m["masked_acc@0.5"]
        assert m["masked_acc@0.5"] == masked_accuracy(model, "test", 0.5, 4 * L + 1, seed=1 + 2)  # rate i: seed+1+i
        gens = [(m["gen_ppl@4"], m["entropy@4"]), (m[f"gen_ppl@{L}"], m[f"entropy@{L}"])]
    else:
        targets = corpus.split_ids("test")[1: 4 * L + 1]
        assert m["token_accuracy"] == m["next_char_accuracy"] == float((targets == SPACE).double().mean())
        gens = [(m["gen_ppl"], m["entropy"])]
    for ppl, entropy in gens:
        assert entropy == 0.0 and ppl == pytest.approx(K, rel=1e-12)
    with pytest.raises(ValueError, match="judge: its vocabulary"):
        evaluate(model, max_chars=4 * L + 1, judge=Fixed("ar", vocab=Vocab("ab \n")), gen_steps=(4,))
    with pytest.raises(ValueError, match="t_samples"):
        evaluate(model, t_samples=0, gen_ppl=False)
