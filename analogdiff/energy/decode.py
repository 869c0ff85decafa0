"""Decode schedules and the work they do, independent of hardware.

A schedule becomes a list of *phases*: ``repeats`` identical forward passes, each feeding ``positions``
positions of one sequence through the stack, evaluating the LM head at ``head_positions`` of them, with
``attn_pairs`` (query, key) pairs per layer and ``kv_len`` keys read per layer. Costs are linear in the
phases, so the estimators price a phase once and multiply. Batch is applied by the estimators (every
sequence of a batch does the same work in the same pass).

Conventions (counted exactly, see the tests):

* ``Autoregressive(seq_len, prompt_len=P)``: generates ``G = seq_len − P`` tokens (``P = 0``: a BOS token
  starts the sequence and ``G = seq_len``). Step 1 feeds the prompt (or the BOS) and yields the first token;
  each later step feeds the newest token. With the KV cache every fed position is computed once, so
  ``max(P, 1) + G − 1`` token-forwards (``seq_len`` when ``P = 0``); without it step ``s`` re-feeds the
  whole context of ``max(P, 1) + s − 1`` positions. Causal attention; one head evaluation per step.
* ``Diffusion(steps=T, seq_len=L, prompt_len=P)`` (``block_len=None``): every step feeds all ``L``
  positions with bidirectional attention (MDLM, SEDD, LLaDA without caching); the head runs on all ``L``
  positions, as the reference samplers do. ``G = L − P``.
* ``Diffusion(..., block_len=B)`` semi-autoregressive with prefix KV reuse (BD3-LM-style block diffusion;
  Fast-dLLM's prefix cache): the prompt is prefilled once; block ``b`` is denoised for ``T / n_blocks``
  steps feeding only its ``B`` positions, attending to the cached prefix plus itself; a finished block
  is fed once more to write its clean K/V (not after the last block). ``kv_cache=False`` gives LLaDA's
  original semi-AR sampler: block order, but every step feeds all ``L`` positions.
* ``cache_mode="prefix"`` (Fast-dLLM's PrefixCache, ``generate_with_prefix_cache``): the first step of each
  block is a full forward over all ``L`` positions (it rebuilds the cache; no separate prefill or K/V write);
  each later step feeds the block **and every position right of it**, attending to all ``L`` keys.
  ``cache_mode="dual"`` (Fast-dLLM's DualCache): the same first step; later steps feed only the block's
  ``B`` positions, attending to all ``L`` keys (prefix and suffix cached). Logits on every fed position.
* Parallel (confidence-threshold) decoding, Fast-dLLM style: ``tokens_per_step=m`` instead of ``steps``.
  A threshold sampler unmasks a variable number of tokens per step; its cost is its forward count, so the
  schedule takes the measured mean: ``steps = max(n_blocks, round(G / m))`` forwards, split over the blocks
  as evenly as integers allow (larger first, as the sampler's ``_split_evenly``). A measured per-step record
  is a :class:`~analogdiff.trace.Trace` (``sample_mdlm(..., threshold=τ)``), priced call by call.

A :class:`~analogdiff.trace.Trace` (what a simulated run did, call by call) becomes the same phases with
:func:`work_from_trace`: one :class:`Work` per batch width (sequences per call), per sequence, whose phases
are the recorded calls — so a simulated run is priced from its own counters, not from a schedule.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analogdiff.checks import MAX_SEQ_LEN, MAX_STEPS, ConfigError, integer, number
from analogdiff.trace import Trace


def _kv_cache(value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"kv_cache: expected true or false, got {value!r}")
    return bool(value)


CACHE_MODES = ("block", "prefix", "dual")


@dataclass(frozen=True)
class Diffusion:
    """Masked-diffusion decoding: ``steps`` denoising passes over ``seq_len`` positions.

    ``block_len``: semi-autoregressive blocks of this many generated positions (None = whole sequence).
    ``prompt_len``: conditioning positions at the start (not generated). ``kv_cache``: reuse K/V across
    blocks (only with ``block_len``); ``cache_mode`` says how: ``"block"`` (BD3-LM: feed the block only,
    attend the cached prefix), ``"prefix"`` or ``"dual"`` (Fast-dLLM's PrefixCache / DualCache; see the
    module docstring). ``tokens_per_step``: parallel (confidence-threshold) decoding's measured mean tokens
    unmasked per step; give it instead of ``steps`` (``steps=None``), which it then determines
    (``max(n_blocks, round(G / tokens_per_step))``; the blocks may then get unequal step counts).
    """

    steps: int | None
    seq_len: int
    block_len: int | None = None
    prompt_len: int = 0
    kv_cache: bool = True
    cache_mode: str = "block"
    tokens_per_step: float | None = None

    def __post_init__(self) -> None:
        integer("seq_len", self.seq_len, 1, MAX_SEQ_LEN)
        integer("prompt_len", self.prompt_len, 0, self.seq_len - 1)
        _kv_cache(self.kv_cache)
        gen = self.seq_len - self.prompt_len
        n_blocks = 1
        if self.block_len is not None:
            integer("block_len", self.block_len, 1, gen)
            if gen % self.block_len:
                raise ConfigError(f"block_len: {self.block_len} must divide the generated length "
                                  f"seq_len − prompt_len = {gen}")
            n_blocks = gen // self.block_len
        if self.cache_mode not in CACHE_MODES:
            raise ConfigError(f"cache_mode: {self.cache_mode!r} is not one of {', '.join(CACHE_MODES)}")
        if self.cache_mode != "block" and (self.block_len is None or not self.kv_cache):
            raise ConfigError(f"cache_mode: {self.cache_mode!r} needs block_len and kv_cache=true")
        if self.tokens_per_step is not None:
            m = number("tokens_per_step", self.tokens_per_step, 1.0, float(self.block_len or gen))
            derived = max(n_blocks, round(gen / m))
            if self.steps is not None and self.steps != derived:
                raise ConfigError(f"steps: {self.steps} disagrees with tokens_per_step {m:g} (which gives "
                                  f"{derived} steps for {gen} generated tokens); give one of the two")
            object.__setattr__(self, "steps", derived)
            return
        if self.steps is None:
            raise ConfigError("steps: give the number of denoising steps, or tokens_per_step")
        integer("steps", self.steps, 1, MAX_STEPS)
        if self.steps % n_blocks:
            raise ConfigError(f"steps: {self.steps} must be a multiple of the number of blocks "
                              f"({n_blocks} = {gen} / block_len {self.block_len})")

    def block_steps(self) -> np.ndarray:
        """Denoising steps of each block (n_blocks,), as even as integers allow, larger first."""
        n = (self.seq_len - self.prompt_len) // self.block_len if self.block_len else 1
        return self.steps // n + (np.arange(n) < self.steps % n).astype(np.int64)

    @property
    def kind(self) -> str:
        return "diffusion"

    @property
    def context_needed(self) -> int:
        """Positions the model must hold at once (checked against its context before any schedule)."""
        return self.seq_len

    def describe(self) -> dict:
        return {"decode": "diffusion", "steps": self.steps, "seq_len": self.seq_len,
                "block_len": self.block_len, "prompt_len": self.prompt_len, "kv_cache": self.kv_cache,
                "cache_mode": self.cache_mode, "tokens_per_step": self.tokens_per_step}


@dataclass(frozen=True)
class Autoregressive:
    """Left-to-right decoding of ``seq_len`` tokens (prompt included), with or without a KV cache."""

    seq_len: int
    kv_cache: bool = True
    prompt_len: int = 0

    def __post_init__(self) -> None:
        integer("seq_len", self.seq_len, 1, MAX_SEQ_LEN)
        integer("prompt_len", self.prompt_len, 0, self.seq_len - 1)
        _kv_cache(self.kv_cache)

    @property
    def kind(self) -> str:
        return "ar"

    @property
    def context_needed(self) -> int:
        """Positions the model must hold at once: the prompt (or the BOS) plus all generated but the last."""
        return max(self.prompt_len, 1) + self.seq_len - self.prompt_len - 1

    def describe(self) -> dict:
        return {"decode": "ar", "seq_len": self.seq_len, "prompt_len": self.prompt_len,
                "kv_cache": self.kv_cache}


@dataclass(frozen=True)
class Work:
    """The work of one sequence under a schedule, as phases (arrays of equal length F).

    repeats:         identical forward passes in the phase
    positions:       positions fed through every block per pass (queries)
    head_positions:  positions whose logits are computed per pass (and sampled)
    attn_pairs:      (query, key) pairs per layer per pass, summed over the fed positions
    kv_len:          keys read per layer per pass (the longest context in the pass)
    """

    repeats: np.ndarray
    positions: np.ndarray
    head_positions: np.ndarray
    attn_pairs: np.ndarray
    kv_len: np.ndarray
    generated_tokens: int
    context_needed: int
    totals: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.totals
        t["forward_passes"] = int(self.repeats.sum())
        t["token_forwards"] = int(round(float((self.repeats * self.positions).sum())))
        t["head_evals"] = int(round(float((self.repeats * self.head_positions).sum())))
        t["attention_pairs"] = int(round(float((self.repeats * self.attn_pairs).sum())))

    @property
    def token_forwards(self) -> int:
        return self.totals["token_forwards"]

    def compressed(self) -> "Work":
        """Merge phases with equal (positions, head_positions): costs that are linear in the phase
        (energy, and pipeline time given the pair count) do not change."""
        keys = np.stack([self.positions, self.head_positions], axis=1)  # (F, 2)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        reps = np.bincount(inv, weights=self.repeats, minlength=len(uniq))
        pairs = np.bincount(inv, weights=self.repeats * self.attn_pairs, minlength=len(uniq))
        kv = np.bincount(inv, weights=self.repeats * self.kv_len, minlength=len(uniq))
        reps_i = reps.astype(np.int64)
        # per-pass averages so that repeats × value reproduces the totals
        return Work(repeats=reps_i, positions=uniq[:, 0].copy(), head_positions=uniq[:, 1].copy(),
                    attn_pairs=pairs / reps, kv_len=kv / reps, generated_tokens=self.generated_tokens,
                    context_needed=self.context_needed)


def _phases(repeats, positions, head_positions, attn_pairs, kv_len, generated: int, context: int) -> Work:
    """A Work from per-phase columns (scalars or arrays of one length F)."""
    cols = np.broadcast_arrays(*(np.asarray(c, dtype=np.float64) for c in
                                 (repeats, positions, head_positions, attn_pairs, kv_len)))
    a = np.stack([np.atleast_1d(c) for c in cols], axis=1)  # (F, 5)
    return Work(repeats=a[:, 0].astype(np.int64), positions=a[:, 1].astype(np.int64),
                head_positions=a[:, 2].astype(np.int64), attn_pairs=a[:, 3], kv_len=a[:, 4],
                generated_tokens=generated, context_needed=context)


def schedule_work(decode: Diffusion | Autoregressive) -> Work:
    """The phases of one sequence under ``decode`` (see the module docstring for the conventions)."""
    if isinstance(decode, Autoregressive):
        return _ar_work(decode)
    if isinstance(decode, Diffusion):
        return _diffusion_work(decode)
    raise ConfigError(f"decode: expected Diffusion(...) or Autoregressive(...), got {decode!r}")


def _ar_work(d: Autoregressive) -> Work:
    """One phase per step (vectorized: G ≤ the model's context, checked before this runs)."""
    P, G = d.prompt_len, d.seq_len - d.prompt_len
    first = max(P, 1)                                  # prompt positions, or the BOS
    s = np.arange(1, G + 1, dtype=np.float64)          # steps 1..G
    ctx = first + s - 1                                # context length after feeding step s
    if d.kv_cache:
        pos = np.where(s == 1, first, 1)
        pairs = np.where(s == 1, first * (first + 1) / 2, ctx)   # causal prefill, then one query
    else:
        pos = ctx
        pairs = ctx * (ctx + 1) / 2                   # causal attention over the whole context
    return _phases(1, pos, 1, pairs, ctx, G, d.context_needed)


def _diffusion_work(d: Diffusion) -> Work:
    """Closed form without blocks; one vectorized row per block and per K/V write with them."""
    L, P, T = d.seq_len, d.prompt_len, d.steps
    G = L - P
    if d.block_len is None or not d.kv_cache:
        return _phases(T, L, L, float(L) * L, L, G, L)
    if d.cache_mode != "block":
        return _fast_dllm_work(d)
    B = d.block_len
    n_blocks = G // B
    t_b = d.block_steps().astype(np.float64)                    # (n_blocks,) steps per block
    ctx = P + (np.arange(n_blocks, dtype=np.float64) + 1) * B   # (n_blocks,) cached prefix + this block
    rows = np.empty((n_blocks, 2, 5))   # per block: its denoising steps, then one pass writing its clean K/V
    rows[:, 0] = np.stack([t_b, np.full(n_blocks, float(B)), np.full(n_blocks, float(B)), B * ctx, ctx], axis=1)
    rows[:, 1] = np.stack([np.ones(n_blocks), np.full(n_blocks, float(B)), np.zeros(n_blocks), B * ctx, ctx], axis=1)
    rows = rows.reshape(-1, 5)[:-1]     # no K/V write after the last block
    if P:                               # prompt prefill, bidirectional within the prompt
        rows = np.concatenate([[[1.0, P, 0.0, float(P) * P, P]], rows])
    return _phases(*rows.T, G, L)


def _fast_dllm_work(d: Diffusion) -> Work:
    """Fast-dLLM's PrefixCache / DualCache: per block one full forward (all L positions, logits on all),
    then ``t_b − 1`` steps feeding the block (+ the suffix with "prefix"), attending to all L keys."""
    L, P, B = d.seq_len, d.prompt_len, d.block_len
    n_blocks = (L - P) // B
    t_b = d.block_steps().astype(np.float64)                     # (n_blocks,)
    start = P + np.arange(n_blocks, dtype=np.float64) * B        # (n_blocks,) first position of the block
    fed = L - start if d.cache_mode == "prefix" else np.full(n_blocks, float(B))
    rows = np.empty((n_blocks, 2, 5))   # per block: the full refresh step, then the cached steps
    rows[:, 0] = np.stack([np.ones(n_blocks), np.full(n_blocks, float(L)), np.full(n_blocks, float(L)),
                           np.full(n_blocks, float(L) * L), np.full(n_blocks, float(L))], axis=1)
    rows[:, 1] = np.stack([t_b - 1.0, fed, fed, fed * L, np.full(n_blocks, float(L))], axis=1)
    rows = rows.reshape(-1, 5)
    return _phases(*rows[rows[:, 0] > 0].T, L - P, L)


def work_from_trace(trace: Trace) -> list[tuple[int, Work]]:
    """The recorded calls of ``trace`` as phases: ``[(sequences, work)]``, one entry per batch width.

    Each ``work`` holds, per sequence, the calls made with that many sequences in the batch (one phase per
    merged call: repeats, positions fed, head rows, attention pairs, keys read), so that pricing it at
    ``batch = sequences`` prices exactly those calls. ``generated_tokens`` is the trace's ``tokens`` (the
    run's denominator; the caller divides the summed cost by it) and ``context_needed`` the longest
    ``kv_len`` of those calls. Raises ConfigError for a trace with no calls or no tokens.
    """
    if not isinstance(trace, Trace):
        raise ConfigError(f"decode: expected a Trace, got {trace!r}")
    if not trace.calls:
        raise ConfigError("decode: the trace recorded no model calls; nothing to price")
    if trace.tokens < 1:
        raise ConfigError("decode: the trace has tokens = 0; a run's trace needs its generated or scored "
                          "token count (trace.tokens >= 1) to price per token")
    groups: dict[int, list[list[int]]] = {}
    for repeats, sequences, queries, heads, pairs, kv_len in trace.calls:
        groups.setdefault(sequences, []).append([repeats, queries, heads, pairs, kv_len])
    return [(b, _phases(*np.array(rows, dtype=np.float64).T, trace.tokens, max(r[4] for r in rows)))
            for b, rows in sorted(groups.items())]
