"""The confidence-threshold (Fast-dLLM) sampler: no mask left, at least one token per step, its trace priced
like the parallel schedule of the same forward count."""
import pytest
import torch

from analogdiff.energy import Diffusion, schedule_work
from analogdiff.energy.decode import work_from_trace
from analogdiff.lm.model import CharLM, char_shape
from analogdiff.lm.sampling import generate_ids, sample_mdlm

SHAPE = char_shape("tiny", n_layers=1, d_model=16, n_heads=2, n_kv_heads=2, d_ff=32, vocab_size=64,
                   context_len=24)
MDLM = CharLM("mdlm", SHAPE, seed=0).eval()


def _run(threshold, kv_cache=True, block_len=8, seed=0):
    x = torch.full((2, 24), MDLM.mask_id, dtype=torch.long)
    states = []
    ids, info = sample_mdlm(MDLM, x, 24, torch.Generator().manual_seed(seed), "threshold", block_len,
                            on_step=lambda k, s: states.append(s.clone()), kv_cache=kv_cache, threshold=threshold)
    return ids, info, states


def test_threshold_leaves_no_mask_and_unmasks_at_least_one_per_step():
    ids, info, states = _run(0.9)
    assert not (ids == MDLM.mask_id).any() and info["steps"] == len(states) <= 24
    masked = [int((s == MDLM.mask_id).sum(dim=1).min()) for s in states]
    assert all(a > b for a, b in zip([24, *masked], masked))   # every step commits in every row with masks left


def test_threshold_one_commits_one_token_per_step_and_tiny_commits_a_block():
    # an untrained tiny model is never sure: at 1.0 every step commits only the most confident position
    _, info, _ = _run(1.0)
    assert info["steps"] == 24
    # near 0 every position passes: one step per block of 8 → 3 steps, 3 denoising calls + 2 K/V writes
    _, info, _ = _run(1e-12)
    assert info["steps"] == 3 and info["trace"].denoiser_calls == 3 + 2


def test_threshold_trace_is_priced_as_the_parallel_schedule_of_its_forward_count():
    # one block step each: the trace is the schedule at 8 tokens per step (block 8, prefix cache)
    _, info, _ = _run(1e-12)
    (sequences, work), = work_from_trace(info["trace"])
    ref = schedule_work(Diffusion(steps=None, seq_len=24, block_len=8, tokens_per_step=8))
    assert sequences == 2 and work.totals == ref.totals


def test_threshold_is_checked():
    with pytest.raises(Exception, match="threshold"):
        generate_ids(MDLM, steps=24, seq_len=24, sampler="threshold", threshold=0.0)
