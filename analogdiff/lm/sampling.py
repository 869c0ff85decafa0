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
* ``"remdm"`` (ReMDM-cap, Wang et al. 2025, arXiv 2503.00307, "Remasking discrete diffusion models with
  inference-time scaling"): from ``t`` to ``s`` every decoded (non-prompt) token of the block is re-masked
  with probability ``sigma = min(eta, sigma_max)``, ``sigma_max = min(1, (1 - alpha_s) / alpha_t)``, and each
  masked position is revealed with probability ``(alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)``, so the
  marginal masking schedule is MDLM's; a re-masked token is drawn again later, so decoded tokens can be
  revised. ``eta = 0`` is the ancestral sampler, draw for draw.
* ``inject=(k, n)`` (error injection): after step k, ``n`` decoded positions of the block per row are
  overwritten with a uniformly drawn wrong character; ``info["injected"]`` (B, L) marks them and
  ``info["injected_ids"]`` holds what was written, so a caller can count which ones the sampler revised;
  ``info["at_inject"]`` is the whole sequence right after the corruption (None without injection), so a caller
  can also count how many of the *uncorrupted* decoded tokens the sampler revised (its base rate).
* ``"threshold"`` (confidence-threshold parallel decoding, Fast-dLLM, Wu et al. 2025): every step draws a
  token for every masked position of the block and commits those whose probability under the denoiser
  reaches ``threshold`` (default 0.9, Fast-dLLM's), and at least the most confident one, so a step unmasks a
  variable number of tokens; a block runs until it is unmasked, at most its share of ``steps`` (its last
  allowed step commits what is left). ``info["steps"]`` is the number of steps taken; the Trace records the
  calls, so tokens per step is measured, not assumed.
* ``block_len`` (semi-autoregressive, LLaDA): the sequence is denoised block by block, left to right, each
  block with its share of the steps (``steps`` split as evenly as possible), with either sampler above;
  positions right of the current block stay masked. Every step feeds the whole sequence.
* ``kv_cache=True`` (block diffusion with a prefix KV cache, BD3-LM / Fast-dLLM): the prompt is prefilled
  once; each step feeds only the current block, which attends to the cached prefix and to itself; a
  finished block is fed once more to cache its clean keys and values.

Every model call is recorded in a :class:`analogdiff.trace.Trace` (``info["trace"]``), which the cost model
prices: positions fed, head rows, attention pairs, cache hits, and the calls skipped by reuse.
"""
from __future__ import annotations

from typing import Callable

import torch

from analogdiff.checks import ConfigError

from ..trace import Trace

SAMPLERS = ("ancestral", "remask", "remdm", "threshold")


def _check(name: str, ok: bool, allowed: str, value) -> None:
    if not ok:
        raise ConfigError(f"{name}: must be {allowed}, got {value!r}")


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


def corrupt(x: torch.Tensor, allowed: torch.Tensor, n: int, gen: torch.Generator, vocab_size: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Overwrite ``n`` positions per row of ``x`` (B, L), drawn uniformly among ``allowed`` (B, L), with a
    uniformly drawn different id in ``[0, vocab_size)``: returns (new x, the corrupted positions (B, L)).
    A row with fewer than ``n`` allowed positions has all of them corrupted. ``n = 0`` draws nothing."""
    hit = torch.zeros_like(allowed)
    if n <= 0:
        return x, hit
    u = torch.rand(x.shape, generator=gen, dtype=torch.float64)  # (B, L)
    order = torch.where(allowed, u, torch.full_like(u, 2.0)).argsort(dim=1)  # allowed positions first, shuffled
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(x.shape[1]).expand_as(order))  # (B, L)
    hit = allowed & (rank < n)
    shift = torch.randint(1, vocab_size, x.shape, generator=gen)  # (B, L) in [1, V): never the same id
    return torch.where(hit, (x + shift) % vocab_size, x), hit


def n_ids(vocab) -> int:
    """The ids that are text (characters or BPE tokens), 0..n-1: the mask id excluded where it is last."""
    chars = getattr(vocab, "chars", None)
    return len(chars) if chars is not None else vocab.size


def _split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` non-negative integers differing by at most one, larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _confident(masked: torch.Tensor, logits: torch.Tensor, ids: torch.Tensor, threshold: float) -> torch.Tensor:
    """Positions to commit (B, W): masked ones whose drawn id has probability >= ``threshold`` under the
    denoiser (softmax of ``logits`` (B, W, V)), plus the most probable masked position of every row."""
    prob = torch.softmax(logits.double(), dim=-1).gather(-1, ids[..., None]).squeeze(-1)  # (B, W)
    score = torch.where(masked, prob, torch.full_like(prob, -1.0))  # (B, W)
    best = torch.zeros_like(masked).scatter_(1, score.argmax(dim=1, keepdim=True), True)  # (B, W)
    return masked & ((prob >= threshold) | best)


def _blocks(x: torch.Tensor, mask_id: int, steps: int, block_len: int | None, kv_cache: bool
            ) -> tuple[int, list[tuple[int, int, int]]]:
    """(prefix length P, blocks [(start, end, steps)]) of the semi-AR schedule; checks ``steps``/``block_len``.

    Without the cache blocks tile the whole sequence from position 0 (LLaDA's sampler); with it they tile
    the positions after the prefix P — the leading columns that hold no mask in any row (the prompt),
    which is prefilled once — as the cost model's ``Diffusion(block_len=..., kv_cache=True)`` does.
    """
    B, L = x.shape
    _check("steps", isinstance(steps, int) and 1 <= steps <= L, f"an integer from 1 to the sequence length {L}",
           steps)
    masked_cols = (x == mask_id).any(dim=0).nonzero()
    P = int(masked_cols[0]) if kv_cache and masked_cols.numel() else 0
    block_len = block_len or L - P
    _check("block_len", isinstance(block_len, int) and 1 <= block_len <= L, f"an integer from 1 to {L}", block_len)
    n_blocks = -(-(L - P) // block_len)
    _check("steps", steps >= n_blocks, f">= the number of blocks ({n_blocks}) when block_len={block_len}", steps)
    return P, [(P + b * block_len, min(P + (b + 1) * block_len, L), block_steps)
               for b, block_steps in enumerate(_split_evenly(steps, n_blocks))]


@torch.no_grad()
def sample_mdlm(model, x: torch.Tensor, steps: int, gen: torch.Generator, sampler: str = "ancestral",
                block_len: int | None = None, temperature: float = 1.0, top_k: int | None = None,
                on_step: Callable[[int, torch.Tensor], None] | None = None, kv_cache: bool = False,
                trace: Trace | None = None, eta: float = 0.0, inject: tuple[int, int] | None = None,
                threshold: float = 0.9) -> tuple[torch.Tensor, dict]:
    """Denoise ``x`` (B, L) — masked positions hold ``model.mask_id``, others are committed and kept.

    Returns (ids (B, L) without masks, info {"nfe": denoiser calls, "steps": steps taken, "trace": Trace}).
    ``on_step(k, x)`` is called with the state after each step k = 1..steps. ``trace``: record into this
    Trace (a new one by default); its ``tokens`` grow by the number of masked positions.

    ``kv_cache`` (block diffusion with a prefix KV cache, BD3-LM / Fast-dLLM style): the prefix (leading
    columns without masks) is fed once and its keys and values cached; block b is denoised feeding only its
    own positions, which attend bidirectionally to the cached prefix and to the block; a finished block is
    fed once more to write its clean keys and values (not after the last block); positions right of the
    block are not fed. Without ``block_len`` the whole rest after the prefix is one block.

    ``eta`` (``"remdm"``): the cap on the re-masking probability, 0 to 1. ``inject=(k, n)``: corrupt ``n``
    decoded positions per row of the current block after step k (see the module docstring).
    """
    _check("sampler", sampler in SAMPLERS, f"one of {', '.join(SAMPLERS)}", sampler)
    _check("eta", isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0, "a number from 0 to 1", eta)
    _check("threshold", isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
           and 0.0 < threshold <= 1.0, "a number in (0, 1]", threshold)
    B, L = x.shape
    mask_id = model.mask_id
    P, blocks = _blocks(x, mask_id, steps, block_len, kv_cache)
    trace = Trace() if trace is None else trace
    calls0 = trace.denoiser_calls
    trace.tokens += int((x == mask_id).sum())
    prompt = x != mask_id  # (B, L): never re-masked or corrupted
    x = x.clone()
    injected = torch.zeros_like(prompt)
    injected_ids = x.clone()
    at_inject = None
    cache = [] if kv_cache else None
    if kv_cache and P:
        model(x[:, :P], cache=cache, head_last=0, trace=trace)  # prefill the prompt: K/V only
    k = 0
    for b, (start, end, block_steps) in enumerate(blocks):
        lo, hi = (start, end) if kv_cache else (0, L)  # the positions fed: the block, or everything
        in_block = torch.zeros(hi - lo, dtype=torch.bool)
        in_block[start - lo:end - lo] = True  # (W,)
        W = hi - lo
        logits, n_masked0 = None, int(((x[:, lo:hi] == mask_id) & in_block).sum(dim=1).max())
        remask_counts = None
        for j in range(block_steps):
            xv = x[:, lo:hi]  # (B, W)
            masked = (xv == mask_id) & in_block  # (B, W)
            if sampler == "threshold" and not masked.any():
                break  # the block is unmasked: threshold decoding stops early
            if logits is None:
                logits = model(xv, cache=cache, write_cache=False, trace=trace) if kv_cache else \
                    model(xv, trace=trace)  # (B, W, V)
            else:
                trace.skip()  # input unchanged: the last output is reused
            ids, conf = categorical(logits, gen, temperature, top_k)  # (B, W), (B, W)
            remasked = None
            if sampler == "threshold":
                commit = masked if j == block_steps - 1 else _confident(masked, logits, ids, threshold)
            elif sampler in ("ancestral", "remdm"):
                t, s = 1.0 - j / block_steps, 1.0 - (j + 1) / block_steps
                sigma = min(eta, 1.0, s / (1.0 - t)) if sampler == "remdm" and eta > 0 and t < 1.0 else 0.0
                p_reveal = (t - s) / t if sigma == 0.0 else ((1.0 - s) - (1.0 - sigma) * (1.0 - t)) / t
                reveal = torch.rand((B, W), generator=gen, dtype=torch.float64) < p_reveal  # (B, W)
                commit = masked & reveal
                if sigma > 0.0:
                    decoded = ~masked & in_block & ~prompt[:, lo:hi]  # (B, W)
                    remasked = decoded & (torch.rand((B, W), generator=gen, dtype=torch.float64) < sigma)
            else:
                if remask_counts is None:
                    remask_counts = _split_evenly(n_masked0, block_steps)
                n_left = sum(remask_counts[j + 1:])  # positions to leave masked after this step
                score = torch.where(masked, conf, torch.full_like(conf, -1.0))  # (B, W)
                order = score.argsort(dim=1, descending=True, stable=True)  # (B, W)
                rank = torch.empty_like(order).scatter_(1, order, torch.arange(W).expand(B, W))  # (B, W)
                n_commit = masked.sum(dim=1, keepdim=True) - n_left  # (B, 1)
                commit = masked & (rank < n_commit)
            new = torch.where(commit, ids, xv)  # (B, W)
            if remasked is not None and remasked.any():
                new = torch.where(remasked, torch.full_like(new, mask_id), new)
                commit = commit | remasked
            if commit.any():
                x = torch.cat([x[:, :lo], new, x[:, hi:]], dim=1)  # (B, L)
                logits = None  # input changed: recompute next step
            k += 1
            if inject is not None and k == inject[0]:
                allowed = torch.zeros_like(prompt)
                allowed[:, start:end] = (x[:, start:end] != mask_id) & ~prompt[:, start:end]
                x, hit = corrupt(x, allowed, inject[1], gen, n_ids(model.vocab))
                injected |= hit
                injected_ids = torch.where(hit, x, injected_ids)
                at_inject = x.clone()  # (B, L): every decoded token right after the corruption
                if hit.any():
                    logits = None
            if on_step is not None:
                on_step(k, x)
        if kv_cache and b < len(blocks) - 1:
            model(x[:, start:end], cache=cache, head_last=0, trace=trace)  # write the final block's K/V
    if (x == mask_id).any():  # cannot happen: the last step of each block reveals everything left
        raise RuntimeError("sampler left masked positions")
    return x, {"nfe": trace.denoiser_calls - calls0, "steps": k, "trace": trace, "injected": injected,
               "injected_ids": injected_ids, "at_inject": at_inject}


@torch.no_grad()
def sample_ar(model, context: torch.Tensor, n_new: int, gen: torch.Generator, temperature: float = 1.0,
              top_k: int | None = None, on_step: Callable[[int, torch.Tensor], None] | None = None,
              kv_cache: bool | None = None, trace: Trace | None = None) -> torch.Tensor:
    """Extend ``context`` (B, P) by ``n_new`` characters, one at a time: returns (B, P + n_new).

    ``kv_cache`` (None: whenever everything fed fits the context, P + n_new - 1 <= context_len): decode with
    a KV cache, as AR hardware does: the context once, then each new character once (on analog tiles: one
    MVM per layer per character, with its own read noise). Otherwise each step is one full forward over the
    last ``context_len`` ids. Either way the LM head runs on the last position only. ``trace``: every
    call is recorded there.
    """
    x = context.clone()
    C = model.shape.context_len
    fits = context.shape[1] + n_new - 1 <= C
    _check("kv_cache", not kv_cache or fits, f"off when prompt + new characters - 1 exceed context_len {C}",
           kv_cache)
    cache = [] if (fits if kv_cache is None else kv_cache) else None
    for i in range(n_new):
        if cache is None:
            logits = model(x[:, -C:], head_last=1, trace=trace)[:, -1]  # (B, V)
        else:
            logits = model(x if i == 0 else x[:, -1:], cache=cache, head_last=1, trace=trace)[:, -1]  # (B, V)
        nxt, _ = categorical(logits, gen, temperature, top_k)  # (B,)
        x = torch.cat([x, nxt[:, None]], dim=1)  # (B, P + i + 1)
        if on_step is not None:
            on_step(i + 1, x)
    return x


def generate_ids(model, n_samples: int = 1, steps: int = 64, seed: int = 0, seq_len: int | None = None,
                 sampler: str = "ancestral", block_len: int | None = None, temperature: float = 1.0,
                 top_k: int | None = None, prompt: str | None = None,
                 on_step: Callable[[int, torch.Tensor], None] | None = None, kv_cache: bool | None = None,
                 threshold: float = 0.9) -> tuple[torch.Tensor, dict]:
    """``n_samples`` sequences of ``seq_len`` ids (prompt included): (n_samples, seq_len), plus info
    {"nfe": model calls, "steps": steps taken (None for AR), "trace": the run's Trace (tokens = generated ones)}.
    ``threshold``: the confidence threshold of ``sampler="threshold"`` (see ``sample_mdlm``).

    ``kv_cache``: MDLM — prefix KV cache for block diffusion (default off, see ``sample_mdlm``); AR — None
    uses the cache whenever the sequence fits the context, True/False force it on/off.
    """
    C = model.shape.context_len
    seq_len = C if seq_len is None else seq_len
    _check("seq_len", isinstance(seq_len, int) and 1 <= seq_len <= C, f"an integer from 1 to context_len {C}", seq_len)
    _check("temperature", isinstance(temperature, (int, float)) and temperature >= 0, "a number >= 0", temperature)
    _check("top_k", top_k is None or (isinstance(top_k, int) and top_k >= 1), "None or an integer >= 1", top_k)
    _check("n_samples", isinstance(n_samples, int) and n_samples >= 1, "an integer >= 1", n_samples)
    _check("kv_cache", kv_cache is None or isinstance(kv_cache, bool), "None, true or false", kv_cache)
    prompt_ids = model.vocab.encode(prompt or "")
    _check("prompt", prompt_ids.numel() < seq_len, f"shorter than seq_len={seq_len}", prompt)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        if model.kind == "ar":
            ctx = prompt_ids if prompt else model.vocab.encode("\n")  # no prompt: start after a line break
            ctx = ctx.expand(n_samples, -1)  # (B, P)
            n_new = seq_len - (ctx.shape[1] if prompt else 0)
            trace = Trace(tokens=n_samples * n_new)
            out = sample_ar(model, ctx, n_new, gen, temperature, top_k, on_step, kv_cache, trace)
            ids = out if prompt else out[:, 1:]  # (B, seq_len)
            return ids, {"nfe": trace.denoiser_calls, "steps": None, "trace": trace}
        x = torch.full((n_samples, seq_len), model.mask_id, dtype=torch.long)  # (B, L)
        x[:, :prompt_ids.numel()] = prompt_ids
        return sample_mdlm(model, x, steps, gen, sampler, block_len, temperature, top_k, on_step, bool(kv_cache),
                           threshold=threshold)
    finally:
        model.train(was_training)


def generate(model, steps: int = 64, seed: int = 0, seq_len: int | None = None, sampler: str = "ancestral",
             block_len: int | None = None, temperature: float = 1.0, top_k: int | None = None,
             prompt: str | None = None, show_steps: Callable[[int, str], None] | None = None,
             kv_cache: bool | None = None) -> str:
    """One passage of ``seq_len`` characters (default: the model's context) from ``model``.

    MDLM: ``steps`` denoising steps (1..seq_len) with ``sampler`` ("ancestral" or "remask"), semi-AR blocks of
    ``block_len`` characters if given. AR: ``steps`` is not used (one step per character); sampling with
    ``temperature`` (0 = greedy) and ``top_k``. ``prompt`` is kept as the passage's beginning.
    ``show_steps(k, text)`` is called after every step with the passage so far (masks print as ``█``).
    ``kv_cache``: see ``generate_ids`` (MDLM block diffusion with a prefix cache; AR on/off).
    Same arguments, same text: all randomness comes from a generator seeded with ``seed``.
    """
    on_step = None
    if show_steps is not None:
        def on_step(k, x):
            show_steps(k, model.vocab.decode(x[0]))
    ids, _ = generate_ids(model, 1, steps, seed, seq_len, sampler, block_len, temperature, top_k, prompt, on_step,
                          kv_cache)
    return model.vocab.decode(ids[0])
