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
from .diffusion import nelbo_per_token, q_xt, stratified_times
from .sampling import generate_ids

MASK_RATES = (0.15, 0.5, 0.9)
GEN_STEPS = (16, 64, 256)


def index_windows(n: int, width: int, overlap: int, tail: bool = False) -> list[torch.Tensor]:
    """Windows of ``width`` positions over ``n`` tokens, consecutive windows sharing ``overlap`` positions:
    a list of index groups (k, width) — the full windows — and, with ``tail``, one shorter window (1, w)
    holding the tokens after them when any is left to score (w > overlap)."""
    stride = width - overlap
    k = (n - overlap) // stride if n >= width else 0
    groups = [torch.arange(k)[:, None] * stride + torch.arange(width)] if k else []
    if tail and n - k * stride > overlap:
        groups.append(torch.arange(k * stride, n)[None])
    return groups


def _context_first(model) -> bool:
    """Whether position 0 of every window is given context, never masked nor scored: an AR model (it
    predicts token i+1 at position i) or a diffusion model whose logits are shifted by one (Dream: output
    i-1 predicts token i, so position 0 has no prediction of its own)."""
    return model.kind == "ar" or bool(getattr(model, "logits_shifted", False))


def _with_bos(model, ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``ids`` with the vocabulary's BOS token in front when the first position is context (so that the
    first token of the text is scored too), and the number of tokens put in front (0 or 1)."""
    bos = getattr(model.vocab, "bos_id", None)
    if bos is None or not _context_first(model):
        return ids, 0
    return torch.cat([torch.tensor([bos], dtype=ids.dtype), ids]), 1


def scored_tokens(model, ids: torch.Tensor, tail: bool = True) -> int:
    """How many tokens of ``ids`` :func:`token_nats` scores (with ``tail``: all but a context first
    position, unless a BOS token stands in for it)."""
    ids, _ = _with_bos(model, ids)
    given = int(_context_first(model))
    width = model.shape.context_len + (1 if model.kind == "ar" else 0)
    return sum(g[:, given:].numel() for g in index_windows(ids.numel(), width, given, tail))


def _batches(groups: list[torch.Tensor], batch_size: int):
    for group in groups:
        for b in range(0, group.shape[0], batch_size):
            yield group[b:b + batch_size]  # (b, width) token indices


@torch.no_grad()
def token_nats(model, ids: torch.Tensor, t_samples: int = 1, seed: int = 0, batch_size: int = 32,
               trace: Trace | None = None, tail: bool = False) -> torch.Tensor:
    """Negative log-likelihood of each token of ``ids`` (n,), nats, float64 (n,); NaN where not scored.

    AR: exact NLL of each token given the window before it; windows of ``context_len + 1`` tokens share
    one (the first of each is context). Diffusion: the continuous-time NELBO bound, each window's share of
    it attributed to its masked tokens, the mean over ``t_samples`` draws of t per window (times stratified
    over all windows and draws, generator seeded with ``seed``); windows of ``context_len`` tokens, or,
    for shifted-logit models (Dream), windows sharing one token that is given, never masked. With a BOS
    token (a vocabulary's ``bos_id``) and a context first position, BOS is put in front so the first token
    is scored too. ``tail``: the tokens after the last full window are scored in one shorter window (else
    they are not scored). ``trace``: every model call is recorded there; its ``tokens`` grow by the tokens
    scored (times ``t_samples`` for diffusion).
    """
    ids, front = _with_bos(model, ids)
    n, L = ids.numel(), model.shape.context_len
    nats = torch.zeros(n, dtype=torch.float64)
    scored = torch.zeros(n, dtype=torch.bool)
    was_training = model.training
    model.eval()
    if model.kind == "ar":
        groups = index_windows(n, L + 1, 1, tail)
        if not groups:
            raise ConfigError(f"max_chars: need at least {L + 1} tokens, got {n}")
        for idx in _batches(groups, batch_size):
            x = ids[idx]  # (b, w)
            logits = model(x[:, :-1], trace=trace)  # (b, w-1, V)
            nll = F.cross_entropy(logits.transpose(1, 2).double(), x[:, 1:], reduction="none")  # (b, w-1)
            nats.index_add_(0, idx[:, 1:].reshape(-1), nll.reshape(-1))
            scored[idx[:, 1:].reshape(-1)] = True
        draws = 1
    else:
        given = int(_context_first(model))
        groups = index_windows(n, L, given, tail)
        if not groups:
            raise ConfigError(f"max_chars: need at least {L} tokens, got {n}")
        gen = torch.Generator().manual_seed(seed)
        rows = [g.repeat(t_samples, 1) for g in groups]  # windows × t-samples, per group
        t_all = stratified_times(sum(r.shape[0] for r in rows), gen).split([r.shape[0] for r in rows])
        for idx_all, t_grp in zip(rows, t_all):
            for b in range(0, idx_all.shape[0], batch_size):
                idx, t = idx_all[b:b + batch_size], t_grp[b:b + batch_size]  # (b, w), (b,)
                x0 = ids[idx]
                xt = q_xt(x0, t, model.mask_id, gen)  # (b, w)
                if given:
                    xt[:, 0] = x0[:, 0]
                logits = model(xt, trace=trace).double()  # (b, w, V)
                per_token = nelbo_per_token(logits, x0, xt, t.double(), model.mask_id)  # (b, w) nats
                nats.index_add_(0, idx[:, given:].reshape(-1), per_token[:, given:].reshape(-1) / t_samples)
                scored[idx[:, given:].reshape(-1)] = True
        draws = t_samples
    model.train(was_training)
    if trace is not None:
        trace.tokens += int(scored.sum()) * draws
    return nats.masked_fill(~scored, float("nan"))[front:]


def _split(model, split: str, max_chars: int | None) -> torch.Tensor:
    ids = corpus.split_ids(split, model.vocab)
    return ids if max_chars is None else ids[:max_chars]


@torch.no_grad()
def bits_per_char(model, split: str = "test", max_chars: int | None = None, t_samples: int = 1,
                  seed: int = 0, batch_size: int = 32, trace: Trace | None = None) -> float:
    """Bits per character of ``split`` (its first ``max_chars`` characters; all if None): :func:`token_nats`
    over the full windows (AR: ``context_len + 1`` characters sharing one, the context restarting at each
    window; MDLM: the NELBO bound on windows of ``context_len``, ``t_samples`` draws each). ``trace``:
    every model call is recorded there and its ``tokens`` grow by the characters scored (AR: n·L; MDLM:
    n·L·t_samples)."""
    nats = token_nats(model, _split(model, split, max_chars), t_samples, seed, batch_size, trace)
    scored = ~torch.isnan(nats)
    return float(nats[scored].sum()) / int(scored.sum()) / math.log(2.0)


@torch.no_grad()
def masked_token_accuracy(model, ids: torch.Tensor, rate: float, seed: int, batch_size: int = 32,
                          trace: Trace | None = None, tail: bool = False) -> float:
    """Argmax accuracy on the tokens of ``ids`` masked independently with probability ``rate`` (diffusion
    models only), on :func:`token_nats`'s windows (a shifted-logit model's given first position is never
    masked). ``trace``: every model call is recorded there; its ``tokens`` grow by the masked (scored)
    tokens."""
    given = int(_context_first(model))
    gen = torch.Generator().manual_seed(seed)
    right = total = 0
    for idx in _batches(index_windows(ids.numel(), model.shape.context_len, given, tail), batch_size):
        x0 = ids[idx]  # (b, w)
        xt = q_xt(x0, torch.full((x0.shape[0],), rate), model.mask_id, gen)  # (b, w)
        if given:
            xt[:, 0] = x0[:, 0]
        masked = xt == model.mask_id
        pred = model(xt, trace=trace).argmax(dim=-1)  # (b, w)
        right += int((pred == x0)[masked].sum())
        total += int(masked.sum())
    if trace is not None:
        trace.tokens += total
    return right / max(total, 1)


def masked_accuracy(model, split: str, rate: float, max_chars: int | None, seed: int, batch_size: int = 32,
                    trace: Trace | None = None) -> float:
    """:func:`masked_token_accuracy` on the first ``max_chars`` characters of ``split`` (full windows)."""
    return masked_token_accuracy(model, _split(model, split, max_chars), rate, seed, batch_size, trace)


@torch.no_grad()
def next_token_accuracy(model, ids: torch.Tensor, batch_size: int = 32, trace: Trace | None = None,
                        tail: bool = False) -> float:
    """Argmax next-token accuracy (AR only) on :func:`token_nats`'s windows of ``ids``. ``trace``: every
    model call is recorded there; its ``tokens`` grow by the tokens scored."""
    ids, _ = _with_bos(model, ids)
    right = total = 0
    for idx in _batches(index_windows(ids.numel(), model.shape.context_len + 1, 1, tail), batch_size):
        x = ids[idx]  # (b, w)
        right += int((model(x[:, :-1], trace=trace).argmax(dim=-1) == x[:, 1:]).sum())
        total += x[:, 1:].numel()
    if trace is not None:
        trace.tokens += total
    return right / max(total, 1)


def next_char_accuracy(model, split: str, max_chars: int | None, batch_size: int = 32,
                       trace: Trace | None = None) -> float:
    """:func:`next_token_accuracy` on the first ``max_chars`` characters of ``split`` (full windows)."""
    return next_token_accuracy(model, _split(model, split, max_chars), batch_size, trace)


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
