"""Evaluation of the character LMs on a held-out split: :func:`evaluate` returns a flat dict of floats.

Keys (all computed on the first ``max_chars`` characters of the split's plays, fixed seeds):

``bits_per_char``
    AR: exact NLL in bits/char. MDLM: the continuous-time NELBO (an upper bound), Monte Carlo over
    ``t_samples`` stratified times per window.
``masked_acc@0.15``, ``masked_acc@0.5``, ``masked_acc@0.9`` (MDLM)
    Fraction of masked characters the denoiser's argmax gets right when each character is masked
    independently with that probability.
``next_char_accuracy`` (AR)
    Fraction of characters equal to the argmax of the next-character distribution.
``token_accuracy``
    The headline accuracy common to both kinds: ``masked_acc@0.5`` for the MDLM (the mid-point of the
    diffusion), ``next_char_accuracy`` for the AR model.
``gen_ppl@S``, ``entropy@S`` for S in ``gen_steps`` (MDLM) — ``gen_ppl``, ``entropy`` (AR)
    ``n_samples`` passages of ``gen_seq_len`` characters, sampled with ``seed`` (MDLM: ancestral sampler with S
    steps; AR: temperature 1, no top-k), judged by the AR twin ``judge``: ``gen_ppl`` is the judge's
    per-character perplexity exp(mean NLL) of the passages, each conditioned on a leading line break (how
    the AR model starts its own passages); ``entropy`` is the mean over passages of the Shannon entropy in
    bits of each passage's character histogram (a degenerate, repetitive sample has low gen_ppl *and* low
    entropy, so the two are always reported together). Skipped when ``gen_ppl=False``.

Default budget: 16,384 characters (64 windows of 256), 4 t-samples per window, 8 passages of 256 characters
at each of 16, 64 and 256 steps. Measured on the shipped models, digital, 2 torch threads on the shared 2-core
machine: about 28 s for the MDLM and 8 s for the AR model. Under analog simulation lower ``max_chars``,
``n_samples`` or ``gen_steps`` (or pass ``gen_ppl=False``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from analogdiff.checks import ConfigError

from ..trace import Trace

from . import corpus
from .diffusion import nelbo_per_sequence, q_xt, stratified_times
from .sampling import generate_ids

MASK_RATES = (0.15, 0.5, 0.9)
GEN_STEPS = (16, 64, 256)


@torch.no_grad()
def bits_per_char(model, split: str = "test", max_chars: int | None = None, t_samples: int = 1,
                  seed: int = 0, batch_size: int = 32, trace: Trace | None = None) -> float:
    """Bits per character of ``split`` (its first ``max_chars`` characters; all if None).

    AR: exact NLL of every character after the first of each window, the window being ``context_len + 1``
    consecutive characters (windows overlap by one, so each character is predicted once, with a context
    that restarts at each window). MDLM: the continuous-time NELBO bound on windows of ``context_len``
    characters, Monte Carlo over ``t`` with ``t_samples`` draws per window, the times stratified over all
    windows and draws (generator seeded with ``seed``). ``trace``: every model call is recorded there and
    its ``tokens`` grow by the characters scored (AR: n·L; MDLM: n·L·t_samples).
    """
    ids = corpus.split_ids(split, model.vocab)
    if max_chars is not None:
        ids = ids[:max_chars]
    L = model.shape.context_len
    was_training = model.training
    model.eval()
    total_nats, total_chars = 0.0, 0
    if model.kind == "ar":
        n = (ids.numel() - 1) // L
        if n < 1:
            raise ConfigError(f"max_chars: need at least {L + 1} characters, got {ids.numel()}")
        starts = torch.arange(n) * L
        windows = ids[starts[:, None] + torch.arange(L + 1)]  # (n, L+1)
        for b in range(0, n, batch_size):
            x = windows[b:b + batch_size]  # (b, L+1)
            logits = model(x[:, :-1], trace=trace)  # (b, L, V)
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2).double(), x[:, 1:], reduction="sum")
            total_nats += float(nll)
            total_chars += x[:, 1:].numel()
    else:
        windows = corpus.tiled_windows(ids, L)  # (n, L)
        n = windows.shape[0]
        if n < 1:
            raise ConfigError(f"max_chars: need at least {L} characters, got {ids.numel()}")
        gen = torch.Generator().manual_seed(seed)
        x0_all = windows.repeat(t_samples, 1)  # (n*S, L)
        t_all = stratified_times(x0_all.shape[0], gen)  # (n*S,)
        for b in range(0, x0_all.shape[0], batch_size):
            x0, t = x0_all[b:b + batch_size], t_all[b:b + batch_size]
            xt = q_xt(x0, t, model.mask_id, gen)  # (b, L)
            logits = model(xt, trace=trace).double()  # (b, L, V)
            total_nats += float(nelbo_per_sequence(logits, x0, xt, t.double(), model.mask_id).sum())
        total_chars = n * L * t_samples
    model.train(was_training)
    if trace is not None:
        trace.tokens += total_chars
    return total_nats / total_chars / math.log(2.0)


@torch.no_grad()
def masked_accuracy(model, split: str, rate: float, max_chars: int | None, seed: int, batch_size: int = 32,
                    trace: Trace | None = None) -> float:
    """Argmax accuracy on the characters masked independently with probability ``rate`` (MDLM only).
    ``trace``: every model call is recorded there; its ``tokens`` grow by the masked (scored) characters."""
    ids = corpus.split_ids(split, model.vocab)[:max_chars]
    windows = corpus.tiled_windows(ids, model.shape.context_len)  # (n, L)
    gen = torch.Generator().manual_seed(seed)
    right = total = 0
    for b in range(0, windows.shape[0], batch_size):
        x0 = windows[b:b + batch_size]  # (b, L)
        xt = q_xt(x0, torch.full((x0.shape[0],), rate), model.mask_id, gen)  # (b, L)
        masked = xt == model.mask_id
        pred = model(xt, trace=trace).argmax(dim=-1)  # (b, L)
        right += int((pred == x0)[masked].sum())
        total += int(masked.sum())
    if trace is not None:
        trace.tokens += total
    return right / max(total, 1)


@torch.no_grad()
def next_char_accuracy(model, split: str, max_chars: int | None, batch_size: int = 32,
                       trace: Trace | None = None) -> float:
    """Argmax next-character accuracy (AR only), on the windows :func:`bits_per_char` uses. ``trace``: every
    model call is recorded there; its ``tokens`` grow by the characters scored."""
    ids = corpus.split_ids(split, model.vocab)[:max_chars]
    L = model.shape.context_len
    n = (ids.numel() - 1) // L
    windows = ids[(torch.arange(n) * L)[:, None] + torch.arange(L + 1)]  # (n, L+1)
    right = total = 0
    for b in range(0, n, batch_size):
        x = windows[b:b + batch_size]  # (b, L+1)
        right += int((model(x[:, :-1], trace=trace).argmax(dim=-1) == x[:, 1:]).sum())
        total += x[:, 1:].numel()
    if trace is not None:
        trace.tokens += total
    return right / max(total, 1)


@torch.no_grad()
def judge_perplexity(judge, ids: torch.Tensor) -> float:
    """Per-character perplexity of passages ``ids`` (B, L) under the AR ``judge``, each after a line break."""
    if judge.kind != "ar":
        raise ConfigError(f"judge: must be an autoregressive model (kind 'ar'), got kind {judge.kind!r}")
    if ids.shape[1] > judge.shape.context_len:
        raise ConfigError(f"judge: context_len {judge.shape.context_len} is shorter than the passages ({ids.shape[1]})")
    start = judge.vocab.encode("\n").expand(ids.shape[0], 1)  # (B, 1)
    x = torch.cat([start, ids], dim=1)  # (B, L+1)
    was_training = judge.training
    judge.eval()
    nll = F.cross_entropy(judge(x[:, :-1]).transpose(1, 2).double(), x[:, 1:])  # mean nats/char
    judge.train(was_training)
    return math.exp(float(nll))


def char_entropy(ids: torch.Tensor, vocab_size: int) -> float:
    """Mean over rows of ``ids`` (B, L) of the entropy (bits) of each row's character histogram."""
    counts = torch.zeros(ids.shape[0], vocab_size, dtype=torch.float64)
    counts.scatter_add_(1, ids, torch.ones(ids.shape, dtype=torch.float64))  # (B, V)
    p = counts / counts.sum(dim=1, keepdim=True)
    h = -(p * torch.log2(p.where(p > 0, torch.ones_like(p)))).sum(dim=1)  # (B,)
    return float(h.mean())


def evaluate(model, split: str = "test", seed: int = 0, max_chars: int | None = 16384, t_samples: int = 4,
             gen_ppl: bool = True, judge="shakespeare-ar", n_samples: int = 8, gen_steps=GEN_STEPS,
             gen_seq_len: int | None = None) -> dict:
    """Metrics of ``model`` on ``split`` (see the module docstring for every key).

    Budget: ``max_chars`` characters of the split (None: all of it), ``t_samples`` NELBO times per window
    (MDLM), ``n_samples`` generated passages of ``gen_seq_len`` characters (default: the context) per entry of
    ``gen_steps``; ``gen_ppl=False`` skips generation. ``judge`` is the AR model (or its name/path) that scores
    the passages. Everything is seeded from ``seed``; the model's own RNG state is not touched.
    """
    corpus.split_plays(split)  # validates split
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        raise ConfigError(f"max_chars: must be None or a positive integer, got {max_chars!r}")
    if not isinstance(t_samples, int) or t_samples < 1:
        raise ConfigError(f"t_samples: must be a positive integer, got {t_samples!r}")
    metrics = {"bits_per_char": bits_per_char(model, split, max_chars, t_samples, seed)}
    was_training = model.training
    model.eval()
    if model.kind == "mdlm":
        for i, rate in enumerate(MASK_RATES):
            metrics[f"masked_acc@{rate}"] = masked_accuracy(model, split, rate, max_chars, seed + 1 + i)
        metrics["token_accuracy"] = metrics["masked_acc@0.5"]
    else:
        metrics["next_char_accuracy"] = next_char_accuracy(model, split, max_chars)
        metrics["token_accuracy"] = metrics["next_char_accuracy"]
    model.train(was_training)
    if gen_ppl:
        if isinstance(judge, (str, bytes)) or hasattr(judge, "__fspath__"):
            from .checkpoint import load_model

            judge = load_model(judge)
        if judge.vocab.chars != model.vocab.chars:
            raise ConfigError("judge: its vocabulary differs from the model's")
        if model.kind == "mdlm":
            for steps in gen_steps:
                ids, _ = generate_ids(model, n_samples, steps=steps, seed=seed, seq_len=gen_seq_len)
                metrics[f"gen_ppl@{steps}"] = judge_perplexity(judge, ids)
                metrics[f"entropy@{steps}"] = char_entropy(ids, model.vocab.size)
        else:
            ids, _ = generate_ids(model, n_samples, seed=seed, seq_len=gen_seq_len)
            metrics["gen_ppl"] = judge_perplexity(judge, ids)
            metrics["entropy"] = char_entropy(ids, model.vocab.size)
    return metrics
