"""Masked diffusion: hand-computed NELBO, schedule, forward process; AR loss by hand."""
import math

import pytest
import torch

from analogdiff.lm import diffusion
from analogdiff.lm.evaluate import bits_per_char
from analogdiff.lm.model import CharLM, char_shape

NEG_INF = float("-inf")


def test_nelbo_equals_hand_computation():
    # vocabulary {a=0, b=1, mask=2}; x0 = "b a a", x_t = "mask a mask", t = 0.5
    x0 = torch.tensor([[1, 0, 0]])
    xt = torch.tensor([[2, 0, 2]])
    logits = torch.tensor([[[0.0, math.log(3.0), NEG_INF],    # p = (1/4, 3/4): -log p(b) = log(4/3)
                            [5.0, -5.0, NEG_INF],              # unmasked: carried over, no loss
                            [0.0, 0.0, NEG_INF]]])             # p = (1/2, 1/2): -log p(a) = log 2
    got = diffusion.nelbo_per_sequence(logits, x0, xt, torch.tensor([0.5]), mask_id=2)
    expected = (1 / 0.5) * (math.log(4 / 3) + math.log(2))  # weight -alpha'/(1-alpha) = 1/t
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_uniform_denoiser_nelbo_is_log_vocab():
    # A denoiser that predicts uniformly over K characters costs log K per masked character; with weight 1/t
    # and E[#masked] = t L the NELBO is exactly L log K in expectation: bits/char = log2 K.
    shape = char_shape("u", 1, 8, 1, 1, 8, 64, 32)
    model = CharLM("mdlm", shape)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    bpc = bits_per_char(model, "validation", max_chars=32 * 64, t_samples=8, seed=0)
    assert bpc == pytest.approx(math.log2(63), rel=0.03)


def test_stratified_times_cover_each_stratum_once():
    t = diffusion.stratified_times(8, torch.Generator().manual_seed(1), dtype=torch.float64)
    assert ((t > 0) & (t <= 1)).all()
    strata = torch.floor((1 - t) * 8).long().clamp(max=7)
    assert sorted(strata.tolist()) == list(range(8))


def test_forward_process_masks_fraction_t():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.zeros(4, 20000, dtype=torch.long)
    t = torch.tensor([1.0, 0.75, 0.25, 1e-9])
    xt = diffusion.q_xt(x0, t, mask_id=9, gen=gen)
    frac = (xt == 9).double().mean(dim=1)
    assert frac[0] == 1.0 and frac[3] == 0.0
    assert abs(frac[1] - 0.75) < 0.015 and abs(frac[2] - 0.25) < 0.015
    assert torch.equal(xt[xt != 9], x0[xt != 9])  # unmasked tokens unchanged


def test_alpha_schedule_and_weight():
    t = torch.tensor([0.1, 0.5, 1.0])
    torch.testing.assert_close(diffusion.alpha(t), 1 - t)
    # -alpha'(t) / (1 - alpha(t)) with alpha' = -1
    torch.testing.assert_close(diffusion.nelbo_weight(t), 1 / (1 - diffusion.alpha(t)))


class FixedLogits(torch.nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = table  # (V, V): logits given the current token

    def forward(self, ids):
        return self.table[ids]


def test_ar_loss_by_hand():
    table = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    x = torch.tensor([[0, 1, 0]])  # p(1|0) = 0.5, p(0|1) = 0.9
    got = diffusion.ar_loss(FixedLogits(table), x)
    assert float(got) == pytest.approx((math.log(2) - math.log(0.9)) / 2, rel=1e-6)


def test_ar_bits_per_char_is_exact():
    # all-zero weights: uniform over the 63 characters (mask logit -inf) → exactly log2(63) bits per char
    model = CharLM("ar", char_shape("u", 1, 8, 1, 1, 8, 64, 32))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert bits_per_char(model, "test", max_chars=33 * 5) == pytest.approx(math.log2(63), abs=1e-9)
