"""Absorbing-state masked diffusion (MDLM, Sahoo et al. 2024, arXiv 2406.07524): schedule, q(x_t|x_0), NELBO.

Schedule: linear in the keep-probability, ``alpha(t) = 1 - t`` for ``t`` in (0, 1] (MDLM's "log-linear"
noise ``sigma(t) = -log(1 - t)`` with ``eps = 0``). A token is masked at time ``t`` with probability ``t``;
at ``t = 1`` every token is masked, so the prior term of the ELBO is zero, and at ``t -> 0`` nothing is
masked, so the reconstruction term is zero. The continuous-time NELBO of a sequence ``x_0`` of length L is

    NELBO(x_0) = E_{t ~ U(0,1]} E_{x_t ~ q(.|x_0)} [ -alpha'(t) / (1 - alpha(t)) * sum_{l: x_t^l = mask} -log p(x_0^l | x_t) ]
               = E_t E_{x_t} [ (1/t) * sum_{masked l} -log p(x_0^l | x_t) ]          (nats; /(L ln 2) → bits/char)

SUBS parameterization: the denoiser never predicts the mask (its logit is -inf, see ``CharLM.forward``), and
unmasked positions are carried over unchanged (they do not enter the loss, and samplers never change them).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def alpha(t: torch.Tensor) -> torch.Tensor:
    """Probability that a token is still unmasked at time ``t``: ``1 - t``."""
    return 1.0 - t


def nelbo_weight(t: torch.Tensor) -> torch.Tensor:
    """``-alpha'(t) / (1 - alpha(t)) = 1 / t`` for the linear schedule."""
    return 1.0 / t


def stratified_times(n: int, gen: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    """``n`` times in (0, 1], one per stratum: ``t_i = 1 - ((u + i/n) mod 1)`` with one ``u ~ U[0,1)``: (n,)."""
    u = torch.rand((), generator=gen, dtype=torch.float64)
    t = 1.0 - torch.remainder(u + torch.arange(n, dtype=torch.float64) / n, 1.0)  # (n,) in (0, 1]
    return t.to(dtype)


def q_xt(x0: torch.Tensor, t: torch.Tensor, mask_id: int, gen: torch.Generator) -> torch.Tensor:
    """Mask each token of ``x0`` (B, L) independently with probability ``t`` (B,): x_t, (B, L)."""
    u = torch.rand(x0.shape, generator=gen)  # (B, L)
    return torch.where(u < t[:, None], torch.full_like(x0, mask_id), x0)


def masked_nll(logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, mask_id: int) -> torch.Tensor:
    """-log p(x0 | xt) at the masked positions, 0 elsewhere (carried over, no loss), nats: (B, L).

    logits (B, L, V) from the denoiser on ``xt``; ``x0``, ``xt`` (B, L). Computed in the logits' precision
    when it is float64, else float32."""
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    nll = F.cross_entropy(logits.transpose(1, 2).to(dtype), x0, reduction="none")  # (B, L) nats
    return torch.where(xt == mask_id, nll, torch.zeros_like(nll))


def nelbo_per_sequence(logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                       mask_id: int) -> torch.Tensor:
    """One-sample NELBO estimate per sequence, in nats: (B,).

    logits (B, L, V) from the denoiser on ``xt``; ``x0``, ``xt`` (B, L); ``t`` (B,).
    """
    nll = masked_nll(logits.float(), x0, xt, mask_id)  # (B, L)
    return nelbo_weight(t.to(nll.dtype)) * nll.sum(dim=1)  # (B,)


def nelbo_per_token(logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                    mask_id: int) -> torch.Tensor:
    """The one-sample NELBO estimate attributed to each token, nats: (B, L), ``1/t`` × its masked NLL (0 for
    unmasked tokens); its row sums are :func:`nelbo_per_sequence` up to rounding (and precision: float64
    logits stay float64)."""
    nll = masked_nll(logits, x0, xt, mask_id)  # (B, L)
    return nelbo_weight(t.to(nll.dtype))[:, None] * nll


def mdlm_loss(model, x0: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mean NELBO in nats per character over the batch ``x0`` (B, L), one stratified ``t`` per sequence."""
    t = stratified_times(x0.shape[0], gen)  # (B,)
    xt = q_xt(x0, t, model.mask_id, gen)  # (B, L)
    return nelbo_per_sequence(model(xt), x0, xt, t, model.mask_id).mean() / x0.shape[1]


def ar_loss(model, x: torch.Tensor) -> torch.Tensor:
    """Mean next-character NLL in nats of ``x[:, 1:]`` given its prefix; ``x`` is (B, L+1)."""
    logits = model(x[:, :-1])  # (B, L, V)
    return F.cross_entropy(logits.transpose(1, 2), x[:, 1:])


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2.0)
