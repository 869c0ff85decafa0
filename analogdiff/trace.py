"""What a run did, call by call: the record that the language models write and the cost model prices.

Torch-free and neutral: ``lm`` (samplers, scorers, the backbone) records into a :class:`Trace`, ``energy``
prices it (``estimate(shape, hw, decode=trace)``); neither imports the other.

Per model call the trace keeps, per sequence of the batch::

    sequences    sequences in the batch of this call
    queries      positions fed through every block (token-forwards per sequence)
    heads        positions whose LM-head logits were computed (head evaluations per sequence)
    attn_pairs   (query, key) pairs per layer, summed over the fed positions
    kv_len       keys read per layer by the call (cached prefix + fed positions)

Consecutive identical calls are merged (``repeats``), so a 1,000-step run with the same call shape stores
one row. Counters: ``denoiser_calls`` (model calls made; ``nfe``), ``skipped_calls`` (calls a sampler
did not make because the model's input had not changed and its output was reused), ``kv_cache_hits``
((sequence, position) pairs whose keys and values were read from a cache instead of recomputed, summed over
calls). ``tokens`` is the per-token denominator: generated tokens for a sampler, scored characters for a
scorer. ``to_dict()`` / ``from_dict()`` round-trip through plain JSON.

    t = Trace()
    t.record(sequences=2, queries=24, heads=24, attn_pairs=24 * 24, kv_len=24)
    t.token_forwards      # 48
"""
from __future__ import annotations

from typing import Any, Mapping

from analogdiff import checks

COLUMNS = ("repeats", "sequences", "queries", "heads", "attn_pairs", "kv_len")
COUNTERS = ("denoiser_calls", "skipped_calls", "kv_cache_hits", "tokens")
_MAX = 2 ** 62  # any count a run can reach; keeps every product of two counts inside int64-free Python ints


class Trace:
    """The model calls of one run (see the module docstring for the fields)."""

    def __init__(self, tokens: int = 0) -> None:
        self.calls: list[list[int]] = []  # rows of COLUMNS
        self.denoiser_calls = 0
        self.skipped_calls = 0
        self.kv_cache_hits = 0
        self.tokens = checks.integer("tokens", tokens, 0, _MAX)

    def record(self, sequences: int, queries: int, heads: int, attn_pairs: int, kv_len: int,
               cache_hits: int = 0) -> None:
        """One model call: ``sequences`` in the batch; per sequence ``queries`` positions fed, ``heads``
        logits rows, ``attn_pairs`` (query, key) pairs per layer, ``kv_len`` keys per layer, of which
        ``cache_hits`` came from a KV cache."""
        row = [1, sequences, queries, heads, attn_pairs, kv_len]
        for name, value in zip(COLUMNS[1:], row[1:]):
            checks.integer(name, value, 1 if name in ("sequences", "queries", "kv_len") else 0, _MAX)
        checks.integer("cache_hits", cache_hits, 0, kv_len)
        if heads > queries:
            checks.fail("heads", f"{heads} exceeds the positions fed ({queries})")
        if self.calls and self.calls[-1][1:] == row[1:]:
            self.calls[-1][0] += 1
        else:
            self.calls.append(row)
        self.denoiser_calls += 1
        self.kv_cache_hits += sequences * cache_hits

    def record_forward(self, sequences: int, queries: int, heads: int, past: int, causal: bool) -> None:
        """One transformer forward: ``queries`` new positions after ``past`` cached ones, attending causally
        (query i sees past + i + 1 keys) or bidirectionally (all past + queries keys)."""
        pairs = queries * past + (queries * (queries + 1) // 2 if causal else queries * queries)
        self.record(sequences, queries, heads, pairs, past + queries, cache_hits=past)

    def skip(self, n: int = 1) -> None:
        """``n`` calls a sampler saved by reusing the model's previous output (its input was unchanged)."""
        self.skipped_calls += checks.integer("skipped_calls", n, 0, _MAX)

    def extend(self, other: "Trace") -> "Trace":
        """Append ``other``'s calls and add its counters (one trace for several scorers or batches)."""
        for row in other.calls:
            if self.calls and self.calls[-1][1:] == row[1:]:
                self.calls[-1][0] += row[0]
            else:
                self.calls.append(list(row))
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def _sum(self, col: str) -> int:
        i = COLUMNS.index(col)
        return sum(r[0] * r[1] * r[i] for r in self.calls)

    @property
    def token_forwards(self) -> int:
        """Positions fed through the stack, summed over calls and sequences."""
        return self._sum("queries")

    @property
    def head_evals(self) -> int:
        """LM-head rows computed, summed over calls and sequences."""
        return self._sum("heads")

    @property
    def forward_passes(self) -> int:
        """Forward passes of one sequence, summed over sequences (a call of B sequences counts B)."""
        return sum(r[0] * r[1] for r in self.calls)

    @property
    def attention_pairs(self) -> int:
        """(query, key) pairs per layer, summed over calls and sequences."""
        return self._sum("attn_pairs")

    def totals(self) -> dict[str, int]:
        return {"token_forwards": self.token_forwards, "head_evals": self.head_evals,
                "forward_passes": self.forward_passes, "attention_pairs": self.attention_pairs}

    def summary(self) -> dict[str, int]:
        """Counters and totals, flat (what a cost report shows of the run)."""
        return {**{name: getattr(self, name) for name in COUNTERS}, **self.totals()}

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(COLUMNS), "calls": [list(r) for r in self.calls],
                **{name: getattr(self, name) for name in COUNTERS}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Trace":
        """Inverse of :meth:`to_dict`; every field is checked (ConfigError naming it)."""
        if not isinstance(data, Mapping):
            checks.fail("trace", f"expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"columns", "calls", *COUNTERS}
        if unknown:
            checks.fail(f"trace.{sorted(unknown)[0]}", f"unknown key; allowed: columns, calls, {', '.join(COUNTERS)}")
        if list(data.get("columns", COLUMNS)) != list(COLUMNS):
            checks.fail("trace.columns", f"must be {list(COLUMNS)}")
        t = cls(tokens=checks.integer("trace.tokens", data.get("tokens", 0), 0, _MAX))
        calls = data.get("calls", [])
        if not isinstance(calls, list):
            checks.fail("trace.calls", "expected a list of rows")
        for i, row in enumerate(calls):
            if not isinstance(row, (list, tuple)) or len(row) != len(COLUMNS):
                checks.fail(f"trace.calls[{i}]", f"expected {len(COLUMNS)} integers ({', '.join(COLUMNS)})")
            vals = [checks.integer(f"trace.calls[{i}].{c}", v, 1 if c in ("repeats", "sequences", "queries",
                                                                          "kv_len") else 0, _MAX)
                    for c, v in zip(COLUMNS, row)]
            if vals[3] > vals[2]:
                checks.fail(f"trace.calls[{i}].heads", f"{vals[3]} exceeds queries ({vals[2]})")
            t.calls.append(vals)
        for name in ("denoiser_calls", "skipped_calls", "kv_cache_hits"):
            setattr(t, name, checks.integer(f"trace.{name}", data.get(name, 0), 0, _MAX))
        if t.denoiser_calls != sum(r[0] for r in t.calls):
            checks.fail("trace.denoiser_calls", f"{t.denoiser_calls} disagrees with the calls' repeats "
                                                f"({sum(r[0] for r in t.calls)})")
        return t

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"Trace({self.denoiser_calls} calls, {self.skipped_calls} skipped, {self.token_forwards} "
                f"token-forwards, {self.head_evals} head evals, {self.tokens} tokens)")
