"""Conditional completion: both models continue the same held-out prompts, and the true continuation is scored.

    windows = prompt_windows(model.vocab, "test", n_prompts=48, prompt_len=96, n_new=32)   # (B, P + N)
    ids, info = complete(model, windows, n_new=32, steps=32, sampler="remdm", eta=0.05, seed=0)  # (B, N)
    nll = continuation_nll(model, windows, n_new=32)                                      # (B,) nats

Prompts are ``n_prompts`` windows of ``prompt_len + n_new`` characters at evenly spaced offsets of the split
(no randomness): the first ``prompt_len`` characters are the prompt, the rest the true continuation.

Generation (:func:`complete`): the AR model decodes left to right with its KV cache; the MDLM fills the
``n_new`` masked positions after the prompt by iterative denoising with one of the samplers of
:mod:`.sampling` (``ancestral``, ``remask``, ``remdm``). ``inject_pct`` = k corrupts ``round(k * n_new / 100)``
decoded characters per prompt midway (after step ``steps // 2``; AR: after ``n_new // 2`` characters), with
a uniformly drawn wrong character; ``info["repaired"]`` (B,) is the fraction of them that differ from the
written character at the end (the sampler revised them) — 0 by construction for AR and for every sampler
whose decoded tokens are final; ``info["revised_clean"]`` (B,) is the same fraction for the decoded characters
that were *not* corrupted (the sampler's base rate of revision), so repair above chance is the difference.

Log-loss of the true continuation (:func:`continuation_nll`, nats per prompt, summed over the N characters):

* AR: exact, ``-sum_i log p(x_{P+i} | x_{<P+i})`` in one forward.
* MDLM ``"l2r"``: the exact negative log-likelihood of the continuation under the MDLM decoded left to right
  one character per step, ``-sum_i log p(x_{P+i} | prompt, x_{P..P+i-1}, masks after)``: N forwards per
  prompt (rows batched). Each fixed order of revealing defines a proper distribution (the any-order
  autoregressive view of absorbing diffusion, Hoogeboom et al. 2022 / Ou et al. 2024), so this is an exact
  log-loss of one sampler of the model, not a bound.
* MDLM ``"nelbo"``: the continuous-time NELBO of the continuation given the prompt, ``E_t[(1/t) sum over
  masked continuation positions of -log p]``, ``t_samples`` stratified times per prompt. It equals the
  average of the any-order NLL over uniformly random orders, so it is an upper bound on the NLL of the
  order-averaged model (Jensen); its gap to ``"l2r"`` is what averaging over orders (mask rates) costs.

Every model call is recorded in ``trace``; its ``tokens`` grow by the characters generated or scored.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from analogdiff.checks import ConfigError

from ..trace import Trace
from . import corpus
from .diffusion import nelbo_weight, stratified_times
from .sampling import corrupt, n_ids, sample_ar, sample_mdlm

LOSSES = ("l2r", "nelbo")


def n_corrupt(inject_pct: float, n_new: int) -> int:
    """Characters corrupted per prompt at ``inject_pct`` percent of ``n_new``: Python's ``round``."""
    return int(round(inject_pct * n_new / 100.0))


def prompt_windows(vocab, split: str, n_prompts: int, prompt_len: int, n_new: int) -> torch.Tensor:
    """``n_prompts`` windows (B, prompt_len + n_new) of ``split`` at evenly spaced offsets."""
    ids = corpus.split_ids(split, vocab)
    W = prompt_len + n_new
    if ids.numel() < W + n_prompts:
        raise ConfigError(f"n_prompts: {split} has {ids.numel()} characters, too few for {n_prompts} windows of {W}")
    starts = torch.linspace(0, ids.numel() - W, n_prompts).long()  # (B,)
    return ids[starts[:, None] + torch.arange(W)]  # (B, W)


def _ar_nll(model, windows: torch.Tensor, n_new: int, batch_size: int, trace: Trace | None) -> torch.Tensor:
    """Exact NLL (nats) of the last ``n_new`` characters of each window under the AR ``model``: (B,)."""
    out = []
    for b in range(0, windows.shape[0], batch_size):
        x = windows[b:b + batch_size]  # (b, W)
        logits = model(x[:, :-1], head_last=n_new, trace=trace).double()  # (b, N, V)
        out.append(F.cross_entropy(logits.transpose(1, 2), x[:, -n_new:], reduction="none").sum(dim=1))
    return torch.cat(out)


def _l2r_nll(model, windows: torch.Tensor, n_new: int, batch_size: int, trace: Trace | None) -> torch.Tensor:
    """MDLM left-to-right any-order NLL (nats) of the last ``n_new`` characters of each window: (B,)."""
    B, W = windows.shape
    P = W - n_new
    i = torch.arange(n_new)
    rows = windows.repeat_interleave(n_new, dim=0)  # (B*N, W): row b*N + i reveals i characters
    hidden = (torch.arange(W)[None, :] >= P + i.repeat(B)[:, None])  # (B*N, W)
    xt = torch.where(hidden, torch.full_like(rows, model.mask_id), rows)
    target = windows[:, P:].reshape(-1)  # (B*N,)
    nll = []
    for b in range(0, B * n_new, batch_size):
        logits = model(xt[b:b + batch_size], head_last=n_new, trace=trace).double()  # (b, N, V)
        pos = i.repeat(B)[b:b + batch_size]  # (b,) the revealed position, within the last N
        picked = logits[torch.arange(logits.shape[0]), pos]  # (b, V)
        nll.append(F.cross_entropy(picked, target[b:b + batch_size], reduction="none"))
    return torch.cat(nll).view(B, n_new).sum(dim=1)


def _nelbo(model, windows: torch.Tensor, n_new: int, t_samples: int, seed: int, batch_size: int,
           trace: Trace | None) -> torch.Tensor:
    """MDLM conditional NELBO (nats) of the last ``n_new`` characters given the prompt: (B,)."""
    B, W = windows.shape
    gen = torch.Generator().manual_seed(seed)
    rows = windows.repeat(t_samples, 1)  # (S*B, W)
    t = stratified_times(rows.shape[0], gen)  # (S*B,)
    u = torch.rand(rows.shape, generator=gen)  # (S*B, W)
    masked = (u < t[:, None]) & (torch.arange(W) >= W - n_new)[None, :]  # continuation only
    xt = torch.where(masked, torch.full_like(rows, model.mask_id), rows)
    out = []
    for b in range(0, rows.shape[0], batch_size):
        logits = model(xt[b:b + batch_size], head_last=n_new, trace=trace).double()  # (b, N, V)
        nll = F.cross_entropy(logits.transpose(1, 2), rows[b:b + batch_size, -n_new:], reduction="none")  # (b, N)
        m = masked[b:b + batch_size, -n_new:]
        out.append(nelbo_weight(t[b:b + batch_size].double()) * torch.where(m, nll, torch.zeros_like(nll)).sum(1))
    return torch.cat(out).view(t_samples, B).mean(dim=0)


@torch.no_grad()
def continuation_nll(model, windows: torch.Tensor, n_new: int, method: str = "l2r", t_samples: int = 4,
                     seed: int = 0, batch_size: int = 64, trace: Trace | None = None) -> torch.Tensor:
    """Log-loss (nats, summed over the ``n_new`` characters) of each window's true continuation: (B,).

    AR: exact (``method`` is ignored). MDLM: ``method`` "l2r" (exact left-to-right any-order NLL) or "nelbo"
    (``t_samples`` stratified times, generator seeded with ``seed``). See the module docstring."""
    if model.kind == "mdlm" and method not in LOSSES:
        raise ConfigError(f"loss: must be one of {', '.join(LOSSES)}, got {method!r}")
    was_training = model.training
    model.eval()
    try:
        if model.kind == "ar":
            out = _ar_nll(model, windows, n_new, batch_size, trace)
        elif method == "l2r":
            out = _l2r_nll(model, windows, n_new, batch_size, trace)
        else:
            out = _nelbo(model, windows, n_new, t_samples, seed, batch_size, trace)
    finally:
        model.train(was_training)
    if trace is not None:
        trace.tokens += windows.shape[0] * n_new
    return out


@torch.no_grad()
def complete(model, windows: torch.Tensor, n_new: int, steps: int | None = None, sampler: str = "ancestral",
             eta: float = 0.0, temperature: float = 1.0, seed: int = 0, inject_pct: float = 0.0,
             trace: Trace | None = None) -> tuple[torch.Tensor, dict]:
    """The ``n_new`` characters each model writes after each window's prompt: (B, N), and info
    {"injected": (B, N) bool, "repaired": (B,) fraction of the injected characters revised (NaN: none),
    "trace"}. MDLM: ``steps`` denoising steps (default ``n_new``) with ``sampler`` (``eta``: ReMDM's cap).
    All randomness from one generator seeded with ``seed``."""
    trace = Trace() if trace is None else trace
    P = windows.shape[1] - n_new
    prompt = windows[:, :P]  # (B, P)
    n_bad = n_corrupt(inject_pct, n_new)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        if model.kind == "ar":
            trace.tokens += prompt.shape[0] * n_new
            if n_bad == 0:
                x = sample_ar(model, prompt, n_new, gen, temperature, trace=trace)  # (B, P+N)
                injected = torch.zeros(prompt.shape[0], n_new, dtype=torch.bool)
                written = x[:, P:]
            else:
                half = n_new // 2
                x = sample_ar(model, prompt, half, gen, temperature, trace=trace)  # (B, P+half)
                allowed = torch.zeros_like(x, dtype=torch.bool)
                allowed[:, P:] = True
                x, hit = corrupt(x, allowed, n_bad, gen, n_ids(model.vocab))
                written = x[:, P:].clone()
                x = sample_ar(model, x, n_new - half, gen, temperature, trace=trace)  # (B, P+N)
                injected = torch.cat([hit[:, P:], torch.zeros(prompt.shape[0], n_new - half, dtype=torch.bool)], 1)
                written = torch.cat([written, x[:, P + half:]], dim=1)
        else:
            steps = n_new if steps is None else steps
            x = torch.cat([prompt, torch.full((prompt.shape[0], n_new), model.mask_id, dtype=torch.long)], dim=1)
            inject = (steps // 2, n_bad) if n_bad else None
            x, info = sample_mdlm(model, x, steps, gen, sampler, temperature=temperature, trace=trace, eta=eta,
                                  inject=inject)
            injected, written = info["injected"][:, P:], info["injected_ids"][:, P:]
    finally:
        model.train(was_training)
    ids = x[:, P:]  # (B, N)
    revised = (ids != written) & injected
    counts = injected.sum(dim=1).double()  # (B,)
    nan = torch.full_like(counts, float("nan"))
    repaired = torch.where(counts > 0, revised.sum(dim=1) / counts.clamp(min=1), nan)
    # the base rate: of the decoded, uncorrupted characters at the injection, the fraction revised by the end
    # (AR and final-token samplers: 0 by construction)
    if model.kind == "ar" or n_bad == 0 or info.get("at_inject") is None:
        revised_clean = torch.where(counts > 0, torch.zeros_like(counts), nan)
    else:
        at = info["at_inject"][:, P:]  # (B, N)
        clean = (at != model.mask_id) & ~injected
        n_clean = clean.sum(dim=1).double()
        revised_clean = torch.where(n_clean > 0, ((ids != at) & clean).sum(dim=1) / n_clean.clamp(min=1), nan)
    return ids, {"injected": injected, "repaired": repaired, "revised_clean": revised_clean, "trace": trace}


@torch.no_grad()
def judge_nll(judge, windows: torch.Tensor, ids: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """NLL (nats, summed) of the written continuations ``ids`` (B, N) after each window's prompt under the
    digital AR ``judge``: (B,). Not traced: the judge is the digital referee, not part of the run."""
    if judge.kind != "ar":
        raise ConfigError(f"judge: must be an autoregressive model (kind 'ar'), got kind {judge.kind!r}")
    n_new = ids.shape[1]
    return _ar_nll(judge, torch.cat([windows[:, :-n_new], ids], dim=1), n_new, batch_size, None)
