"""CostReport: what one estimate returns, and its readable table."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CostReport:
    """Energy and time of generating with a model on a card under a decode schedule.

    Per sequence = one sequence of the batch (the batch's total divided by ``batch``); per token = per
    *generated* token (prompt tokens excluded). ``latency_per_sequence_s`` is the wall time of the whole
    batch (all sequences run together), ``latency_per_token_s`` that time over the generated length —
    the time per token one user sees. ``breakdown_j`` sums to ``energy_per_sequence_j``; ``counts`` are
    per sequence.
    """

    model: str
    hardware: str
    kind: str                      # "analog" | "gpu"
    decode: dict
    batch: int
    generated_tokens: int
    energy_per_token_j: float
    latency_per_token_s: float
    energy_per_sequence_j: float
    latency_per_sequence_s: float
    tokens_per_s: float
    breakdown_j: dict[str, float]
    counts: dict[str, float]
    tiles: int
    extras: dict[str, Any] = field(default_factory=dict)
    chips: int = 1                 # chips holding the model (analog: [system]; GPU: GPUs by memory)
    area_mm2: float = 0.0          # silicon area of those chips, mm²
    static_power_w: float = 0.0    # their static power, W (its energy is the breakdown's "static")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "hardware": self.hardware, "kind": self.kind, **self.decode,
            "batch": self.batch, "generated_tokens": self.generated_tokens,
            "energy_per_token_j": self.energy_per_token_j, "latency_per_token_s": self.latency_per_token_s,
            "energy_per_sequence_j": self.energy_per_sequence_j,
            "latency_per_sequence_s": self.latency_per_sequence_s, "tokens_per_s": self.tokens_per_s,
            "breakdown_j": dict(self.breakdown_j), "counts": dict(self.counts), "tiles": self.tiles,
            "chips": self.chips, "area_mm2": self.area_mm2, "static_power_w": self.static_power_w,
            **self.extras,
        }

    def table(self) -> str:
        """A readable multi-line summary."""
        d = self.decode
        if d["decode"] == "trace":
            sched = (f"a simulated run's trace: {d['denoiser_calls']} model calls ({d['skipped_calls']} skipped), "
                     f"{d['token_forwards']:,} token-forwards, {d['kv_cache_hits']:,} KV-cache hits, "
                     f"{d['tokens']:,} tokens")
        elif d["decode"] == "diffusion":
            sched = f"diffusion, {d['steps']} steps over {d['seq_len']} positions"
            if d.get("block_len"):
                sched += f", blocks of {d['block_len']}" + ("" if d.get("kv_cache") else " (no KV reuse)")
                if d.get("kv_cache") and d.get("cache_mode", "block") != "block":
                    sched += f" (Fast-dLLM {'PrefixCache' if d['cache_mode'] == 'prefix' else 'DualCache'})"
            if d.get("tokens_per_step") is not None:
                sched += f", parallel decoding at {d['tokens_per_step']:g} tokens/step"
        else:
            sched = f"autoregressive, {d['seq_len']} tokens" + ("" if d.get("kv_cache") else " (no KV cache)")
        if d.get("prompt_len"):
            sched += f", prompt {d['prompt_len']}"
        lines = [f"{self.model} on {self.hardware} ({self.kind}) — {sched}, batch {self.batch}",
                 f"  energy / token     {fmt_si(self.energy_per_token_j, 'J')}",
                 f"  latency / token    {fmt_si(self.latency_per_token_s, 's')}",
                 f"  energy / sequence  {fmt_si(self.energy_per_sequence_j, 'J')}   "
                 f"({self.generated_tokens} generated tokens)",
                 f"  latency / sequence {fmt_si(self.latency_per_sequence_s, 's')}   "
                 f"({self.tokens_per_s:,.0f} tokens/s over the batch)"]
        if self.kind == "analog":
            lines.append(f"  tiles              {self.tiles:,}")
        what = "GPUs" if self.kind == "gpu" else "chips"
        area = f"{self.area_mm2:,.0f} mm²" if self.area_mm2 else "area not stated"
        lines.append(f"  {what:<18} {self.chips:,}   ({area}, static power {fmt_si(self.static_power_w, 'W')})")
        lines.append("  energy breakdown (per sequence):")
        total = self.energy_per_sequence_j or 1.0
        for k, v in sorted(self.breakdown_j.items(), key=lambda kv: -kv[1]):
            lines.append(f"    {k:<18} {fmt_si(v, 'J'):>12}  {100 * v / total:5.1f}%")
        lines.append("  counts (per sequence):")
        for k, v in self.counts.items():
            lines.append(f"    {k:<22} {v:.4g}")
        return "\n".join(lines)


def fmt_si(x: float, unit: str) -> str:
    """3 significant digits with an SI prefix: 1.23 mJ, 456 µs."""
    if x == 0:
        return f"0 {unit}"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
                          (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"
