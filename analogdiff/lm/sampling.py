"""Samplers: MDLM ancestral, LLaDA low-confidence remasking, semi-autoregressive blocks; AR temperature/top-k.

All randomness comes from one ``torch.Generator`` seeded by ``seed``; categorical draws are Gumbel-max in
float64 (float32 Gumbel noise silently lowers the temperature, arXiv 2409.02908).

Masked diffusion, ``steps`` denoising steps over the time grid ``t_k = 1 - k/steps`` (k = 0..steps):

* ``"ancestral"`` (MDLM, Sahoo et al. 2024): going from ``t`` to ``s < t`` each masked position is revealed
  with probability ``(alpha_s - alpha_t) / (1 - alpha_t) = (t - s) / t`` (all of them at ``s = 0``), its token
  drawn from the denoiser; committed tokens never change. When no token changed in a step the denoiser's
  input is unchanged, so its output is reused instead of recomputed (the cache; see ``nfe``).
* ``"remask"`` (LLaDA low-confidence remasking, Nie et al. 2025): every step draws a token for every masked
  position and commits the ``n_k`` most confident ones (probability of the drawn token), the others stay
  masked; ``n_k`` splits the masked count as evenly as possible over the steps.
* ``block_len`` (semi-autoregressive, LLaDA): the sequence is denoised block by block, left to right, each
  block with its share of the steps (``steps`` split as evenly as possible), with either sampler above;
  positions right of the current block stay masked.
"""
from __future__ import annotations

from typing import Callable

import torch

SAMPLERS = ("ancestral", "remask")


def _check(name: str, ok: bool, allowed: str, value) -> None:
    if not ok:
        raise ValueError(f"{name}: must be {allowed}, got {value!r}")


def categorical(logits: torch.Tensor, gen: torch.Generator, temperature: float = 1.0,
                top_k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one id per row of ``logits`` (..., V) in float64; returns (ids (...), probability of each id (...)).

    ``temperature == 0`` is greedy (argmax). ``top_k`` keeps the k largest logits.
    """
    logits = logits.double()  # (..., V)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if temperature == 0:
        ids = logits.argmax(dim=-1)
        return ids, torch.ones(ids.shape, dtype=torch.float64)
    logp = torch.log_softmax(logits / temperature, dim=-1)  # (..., V)
    u = torch.rand(logp.shape, generator=gen, dtype=torch.float64).clamp_(min=1e-300)  # (..., V)
    ids = (logp - torch.log(-torch.log(u))).argmax(dim=-1)  # Gumbel-max, (...)
    return ids, logp.gather(-1, ids[..., None]).squeeze(-1).exp()


def _split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` non-negative integers differing by at most one, larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@torch.no_grad()
def sample_mdlm(model, x: torch.Tensor, steps: int, gen: torch.Generator, sampler: str = "ancestral",
                block_len: int | None = None, temperature: float = 1.0, top_k: int | None = None,
                on_step: Callable[[int, torch.Tensor], None] | None = None) -> tuple[torch.Tensor, dict]:
    """Denoise ``x`` (B, L) — masked positions hold ``model.mask_id``, others are committed and kept.

    Returns (ids (B, L) without masks, info {"nfe": denoiser calls, "steps": steps}). ``on_step(k, x)`` is
    called with the state after each step k = 1..steps.
    """
    _check("sampler", sampler in SAMPLERS, f"one of {', '.join(SAMPLERS)}", sampler)
    B, L = x.shape
    _check("steps", isinstance(steps, int) and 1 <= steps <= L, f"an integer from 1 to the sequence length {L}",
           steps)
    block_len = block_len or L
    _check("block_len", isinstance(block_len, int) and 1 <= block_len <= L, f"an integer from 1 to {L}", block_len)
    n_blocks = -(-L // block_len)
    _check("steps", steps >= n_blocks, f">= the number of blocks ({n_blocks}) when block_len={block_len}", steps)
    x = x.clone()
    mask_id = model.mask_id
    nfe, k = 0, 0
    for b, block_steps in enumerate(_split_evenly(steps, n_blocks)):
        in_block = torch.zeros(L, dtype=torch.bool)
        in_block[b * block_len:(b + 1) * block_len] = True  # (L,)
        logits, n_masked0 = None, int(((x == mask_id) & in_block).sum(dim=1).max())
        remask_counts = None
        for j in range(block_steps):
            masked = (x == mask_id) & in_block  # (B, L)
            if logits is None:
                logits = model(x)  # (B, L, V)
                nfe += 1
            ids, conf = categorical(logits, gen, temperature, top_k)  # (B, L), (B, L)
            if sampler == "ancestral":
                t, s = 1.0 - j / block_steps, 1.0 - (j + 1) / block_steps
                reveal = torch.rand((B, L), generator=gen, dtype=torch.float64) < (t - s) / t  # (B, L)
                commit = masked & reveal
            else:
                if remask_counts is None:
                    remask_counts = _split_evenly(n_masked0, block_steps)
                n_left = sum(remask_counts[j + 1:])  # positions to leave masked after this step
                score = torch.where(masked, conf, torch.full_like(conf, -1.0))  # (B, L)
                order = score.argsort(dim=1, descending=True, stable=True)  # (B, L)
                rank = torch.empty_like(order).scatter_(1, order, torch.arange(L).expand(B, L))  # (B, L)
                n_commit = masked.sum(dim=1, keepdim=True) - n_left  # (B, 1)
                commit = masked & (rank < n_commit)
            if commit.any():
                x = torch.where(commit, ids, x)
                logits = None  # input changed: recompute next step
            k += 1
            if on_step is not None:
                on_step(k, x)
    if (x == mask_id).any():  # cannot happen: the last step of each block reveals everything left
        raise RuntimeError("sampler left masked positions")
    return x, {"nfe": nfe, "steps": steps}


@torch.no_grad()
def sample_ar(model, context: torch.Tensor, n_new: int, gen: torch.Generator, temperature: float = 1.0,
              top_k: int | None = None, on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Extend ``context`` (B, P) by ``n_new`` characters, one at a time: returns (B, P + n_new).

    When everything fed fits the context (P + n_new - 1 <= context_len) the model decodes with a KV cache,
    as AR hardware does: the context once, then each new character once (on analog tiles: one MVM per layer
    per character, with its own read noise). Otherwise each step is one full forward over the last
    ``context_len`` ids.
    """
    x = context.clone()
    C = model.shape.context_len
    cache = [] if context.shape[1] + n_new - 1 <= C else None
    for i in range(n_new):
        if cache is None:
            logits = model(x[:, -C:])[:, -1]  # (B, V)
        else:
            logits = model(x if i == 0 else x[:, -1:], cache=cache)[:, -1]  # (B, V)
        nxt, _ = categorical(logits, gen, temperature, top_k)  # (B,)
        x = torch.cat([x, nxt[:, None]], dim=1)  # (B, P + i + 1)
        if on_step is not None:
            on_step(i + 1, x)
    return x


def generate_ids(model, n_samples: int = 1, steps: int = 64, seed: int = 0, seq_len: int | None = None,
                 sampler: str = "ancestral", block_len: int | None = None, temperature: float = 1.0,
                 top_k: int | None = None, prompt: str | None = None,
                 on_step: Callable[[int, torch.Tensor], None] | None = None) -> tuple[torch.Tensor, dict]:
    """``n_samples`` sequences of ``seq_len`` ids (prompt included): (n_samples, seq_len), plus info."""
    C = model.shape.context_len
    seq_len = C if seq_len is None else seq_len
    _check("seq_len", isinstance(seq_len, int) and 1 <= seq_len <= C, f"an integer from 1 to context_len {C}", seq_len)
    _check("temperature", isinstance(temperature, (int, float)) and temperature >= 0, "a number >= 0", temperature)
    _check("top_k", top_k is None or (isinstance(top_k, int) and top_k >= 1), "None or an integer >= 1", top_k)
    _check("n_samples", isinstance(n_samples, int) and n_samples >= 1, "an integer >= 1", n_samples)
    prompt_ids = model.vocab.encode(prompt or "")
    _check("prompt", prompt_ids.numel() < seq_len, f"shorter than seq_len={seq_len}", prompt)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        if model.kind == "ar":
            ctx = prompt_ids if prompt else model.vocab.encode("\n")  # no prompt: start after a line break
            ctx = ctx.expand(n_samples, -1)  # (B, P)
            out = sample_ar(model, ctx, seq_len - (ctx.shape[1] if prompt else 0), gen, temperature, top_k,
                            on_step)
            ids = out if prompt else out[:, 1:]  # (B, seq_len)
            return ids, {"nfe": seq_len - (ctx.shape[1] if prompt else 0), "steps": None}
        x = torch.full((n_samples, seq_len), model.mask_id, dtype=torch.long)  # (B, L)
        x[:, :prompt_ids.numel()] = prompt_ids
        return sample_mdlm(model, x, steps, gen, sampler, block_len, temperature, top_k, on_step)
    finally:
        model.train(was_training)


def generate(model, steps: int = 64, seed: int = 0, seq_len: int | None = None, sampler: str = "ancestral",
             block_len: int | None = None, temperature: float = 1.0, top_k: int | None = None,
             prompt: str | None = None, show_steps: Callable[[int, str], None] | None = None) -> str:
    """One passage of ``seq_len`` characters (default: the model's context) from ``model``.

    MDLM: ``steps`` denoising steps (1..seq_len) with ``sampler`` ("ancestral" or "remask"), semi-AR blocks of
    ``block_len`` characters if given. AR: ``steps`` is not used (one step per character); sampling with
    ``temperature`` (0 = greedy) and ``top_k``. ``prompt`` is kept as the passage's beginning.
    ``show_steps(k, text)`` is called after every step with the passage so far (masks print as ``█``).
    Same arguments, same text: all randomness comes from a generator seeded with ``seed``.
    """
    on_step = None
    if show_steps is not None:
        def on_step(k, x):
            show_steps(k, model.vocab.decode(x[0]))
    ids, _ = generate_ids(model, 1, steps, seed, seq_len, sampler, block_len, temperature, top_k, prompt, on_step)
    return model.vocab.decode(ids[0])
