"""The regime map (issue 11, item 4): where diffusion decoding beats autoregressive decoding, and where not.

One model shape (LLaDA-8B), one prompt and one generated length, priced on every card — analog and both
GPUs — under AR with a KV cache and under diffusion over three axes:

* steps per generated token (1/8 … 2; below 1 is parallel decoding: a confidence-threshold sampler's mean
  tokens per step is 1 / steps-per-token, and its cost is its forward count — see ``energy.decode``);
* block length (8, 32, 128 positions) with the prefix cache (BD3-LM-style blocks feeding only the block),
  Fast-dLLM's DualCache (blocks of 32), and no cache (every step feeds the whole sequence: MDLM, and
  LLaDA's semi-AR sampler at any block length — the same cost);
* batch size 1 … 256 (sequences decoded together).

Both schedules run the same shape, so the map isolates the schedule. A **crossover** is the steps per
generated token at which diffusion's J/token (or tokens/s) equals AR's on the same card and batch, found by
log–log interpolation between grid points (:func:`crossover`); diffusion wins on energy below it.

    result = regime_map()                      # dict: meta (the assumptions), points, crossovers
    print(format_regime_table(result))
"""
from __future__ import annotations

import math
from typing import Any, Sequence

SHAPE = "llada-8b"
PROMPT_LEN, GEN_LEN = 128, 256
CARDS = ("pcm-ibm", "pcm-hermes", "rram-wan2022", "ecram", "h100-sxm", "a100-sxm")
STEPS_PER_TOKEN = (1 / 32, 1 / 16, 0.125, 0.25, 0.5, 1.0, 2.0)
BLOCKS = ((None, None), (128, "block"), (32, "block"), (8, "block"), (32, "dual"))
"""(block_len, cache): (None, None) = no cache, every step feeds all positions — the cost of the whole
sequence as one block (MDLM) and of LLaDA's semi-AR blocks alike; "block" = prefix cache (BD3-LM: feed the
block only); "dual" = Fast-dLLM's DualCache. A point needs at least one step per block (steps ≥ blocks)."""
BATCHES = (1, 4, 16, 64, 256)
QUICK = {"cards": ("pcm-ibm", "h100-sxm"), "steps_per_token": (0.25, 1.0), "blocks": ((None, None), (32, "block")),
         "batches": (1, 64)}
SYSTEM_KEYS = ("chips", "area_mm2", "static_power_w")
"""Whole-system figures an estimate report may carry (issue 11, item 2); shown beside analog figures when present."""


def crossover(x: Sequence[float], y_diffusion: Sequence[float], y_ar: float | Sequence[float]) -> float | None:
    """The x where ``y_diffusion`` first equals ``y_ar``: log–log interpolation between the two grid points
    where log(y_diffusion / y_ar) changes sign; the grid point itself where the ratio is exactly 1; None
    when the ratio keeps one sign over the grid. ``x`` increasing and positive."""
    ar = list(y_ar) if isinstance(y_ar, Sequence) else [y_ar] * len(x)
    r = [math.log(d / a) for d, a in zip(y_diffusion, ar)]
    for i in range(len(r)):
        if r[i] == 0.0:
            return float(x[i])
        if i and (r[i - 1] < 0.0) != (r[i] < 0.0):
            lx0, lx1 = math.log(x[i - 1]), math.log(x[i])
            return float(math.exp(lx0 + (lx1 - lx0) * r[i - 1] / (r[i - 1] - r[i])))
    return None


def schedule_label(block_len: int | None, cache: str | None) -> str:
    if cache is None:
        return "no cache (any block length)"
    return f"blocks of {block_len}, " + ("prefix cache" if cache == "block" else "Fast-dLLM DualCache")


def _decode(spt: float, block_len: int | None, cache: str | None):
    """The schedule at ``spt`` steps per generated token, or None where it needs fewer steps than blocks."""
    from analogdiff.energy import Diffusion

    steps = round(GEN_LEN * spt)
    if steps < GEN_LEN // (block_len or GEN_LEN):
        return None
    return Diffusion(steps=steps, seq_len=PROMPT_LEN + GEN_LEN, prompt_len=PROMPT_LEN,
                     block_len=block_len if cache else None, kv_cache=cache is not None, cache_mode=cache or "block")


def _point(report) -> dict[str, Any]:
    d = report.to_dict()
    return {"tokens_per_s": report.tokens_per_s, "energy_per_token_j": report.energy_per_token_j,
            **{k: d[k] for k in SYSTEM_KEYS if d.get(k) is not None}}


def regime_map(quick: bool = False, progress: bool = False) -> dict[str, Any]:
    """Price the grid on every card; returns {"meta", "ar", "points", "crossovers", "skipped"}.

    ``ar``: [{card, batch, tokens_per_s, energy_per_token_j, [chips, area_mm2, static_power_w]}];
    ``points``: the same per (card, batch, block_len, cache, steps_per_token); ``crossovers``: per
    (card, batch, block_len, cache) the steps per token where diffusion's J/token and tokens/s equal
    AR's (None: no crossing on the grid; ``energy_wins`` / ``speed_wins`` say which side holds there at
    the smallest steps per token); ``skipped``: cards or batches the estimator refused, with its message.
    """
    from tqdm import tqdm

    from analogdiff.config import ConfigError, load_hardware
    from analogdiff.energy import Autoregressive, estimate

    grid = QUICK if quick else {"cards": CARDS, "steps_per_token": STEPS_PER_TOKEN, "blocks": BLOCKS,
                                "batches": BATCHES}
    spt = grid["steps_per_token"]
    ar_rows, points, crossings, skipped = [], [], [], []
    ar_decode = Autoregressive(seq_len=PROMPT_LEN + GEN_LEN, prompt_len=PROMPT_LEN)
    units = [(c, b) for c in grid["cards"] for b in grid["batches"]]
    for card, batch in tqdm(units, desc="regime map", unit="card×batch", disable=not progress, dynamic_ncols=True):
        hw = load_hardware(card)
        try:
            ar = estimate(SHAPE, hw, ar_decode, batch=batch)
        except ConfigError as e:
            skipped.append({"card": card, "batch": batch, "reason": str(e)})
            continue
        ar_rows.append({"card": card, "kind": hw.kind, "batch": batch, **_point(ar)})
        for block_len, cache in grid["blocks"]:
            xs = [s for s in spt if _decode(s, block_len, cache) is not None]
            series = [_point(estimate(SHAPE, hw, _decode(s, block_len, cache), batch=batch)) for s in xs]
            for s, p in zip(xs, series):
                points.append({"card": card, "batch": batch, "block_len": block_len, "cache": cache,
                               "steps_per_token": s, **p})
            e = [p["energy_per_token_j"] for p in series]
            # tokens/s: diffusion matches AR where AR's time per token equals diffusion's
            t = [1.0 / p["tokens_per_s"] for p in series]
            crossings.append({
                "card": card, "batch": batch, "block_len": block_len, "cache": cache,
                "energy_crossover": crossover(xs, e, ar.energy_per_token_j),
                "speed_crossover": crossover(xs, t, 1.0 / ar.tokens_per_s),
                "energy_wins": "diffusion" if e[0] < ar.energy_per_token_j else "ar",
                "speed_wins": "diffusion" if t[0] < 1.0 / ar.tokens_per_s else "ar"})
    meta = {"shape": SHAPE, "prompt_len": PROMPT_LEN, "gen_len": GEN_LEN, "cards": list(grid["cards"]),
            "steps_per_token": list(spt), "blocks": [list(b) for b in grid["blocks"]],
            "batches": list(grid["batches"]), "quick": quick, "assumptions": assumptions()}
    return {"meta": meta, "ar": ar_rows, "points": points, "crossovers": crossings, "skipped": skipped}


def assumptions() -> list[str]:
    """What the map assumes, printed beside it."""
    return [
        f"Model: {SHAPE} shape for both AR and diffusion (same weights and FLOPs per token-forward; the map "
        f"isolates the schedule). Prompt {PROMPT_LEN} tokens, {GEN_LEN} generated; batch = sequences decoded "
        "together.",
        "AR: KV cache, prompt prefilled once, one token per step, LM head on the newest position only.",
        "Diffusion: steps per generated token = steps / generated length; below 1 it is parallel decoding "
        "(a confidence-threshold sampler with mean tokens per step = 1 / steps-per-token, e.g. Fast-dLLM's "
        "τ = 0.9 gives ≈ 3 tokens/step on GSM8K); its cost is its forward count, uniform over blocks. "
        "Accuracy at each point is not priced here: fewer steps per token costs quality.",
        "Prefix cache: BD3-LM-style blocks feeding only the block, attending to the cached prefix; a finished "
        "block is fed once more to write its K/V. DualCache (Fast-dLLM): per block one full pass, then passes "
        "feeding only the block against all cached keys. No cache: every step feeds all positions — MDLM over "
        "the whole sequence and LLaDA's semi-AR sampler at any block length cost the same.",
        "Analog cards: weight-stationary; attention, norms and sampling on the card's digital units at "
        "digital.throughput_gops (an assumption on most cards: it sets their latency); K/V read from SRAM "
        "once per query tile (digital.attention_query_tile); the LM head overlaps the last block's stream; "
        "whole-system terms (chips, static power × run time, chip-to-chip links, KV spill to DRAM) as the "
        "card's [system] table prices them — chips, area and static power are printed beside each card.",
        "GPUs: the roofline in time and energy with the board power limit (h100-sxm fitted to ML.ENERGY; "
        "a100-sxm: datasheet peaks, constant power fitted to ML.ENERGY v2's A100 rows, the current stack's "
        "values carried over from h100-sxm), bf16; the Fast-dLLM speed-ups of validate-cards check its "
        "diffusion schedules.",
        "Crossover: the steps per generated token where diffusion's J/token (or time per token) equals AR's "
        "on the same card and batch, by log–log interpolation; diffusion wins below it.",
    ]


def best_points(result: dict) -> dict[str, tuple[dict, dict]]:
    """Per card: the diffusion point with the lowest J/token relative to AR at its batch, and the one with
    the highest tokens/s relative to AR (each a point of ``result["points"]`` with ``ratio`` added)."""
    ar = {(r["card"], r["batch"]): r for r in result["ar"]}
    out = {}
    for card in dict.fromkeys(p["card"] for p in result["points"]):
        pts = [p for p in result["points"] if p["card"] == card]
        e = min(pts, key=lambda p: p["energy_per_token_j"] / ar[(card, p["batch"])]["energy_per_token_j"])
        t = max(pts, key=lambda p: p["tokens_per_s"] / ar[(card, p["batch"])]["tokens_per_s"])
        out[card] = ({**e, "ratio": e["energy_per_token_j"] / ar[(card, e["batch"])]["energy_per_token_j"]},
                     {**t, "ratio": t["tokens_per_s"] / ar[(card, t["batch"])]["tokens_per_s"]})
    return out


def _fmt_x(x: float | None, wins: str) -> str:
    if x is None:
        return "diff" if wins == "diffusion" else "AR"
    return f"{x:.2g}"


def _system(row: dict) -> str:
    parts = []
    if row.get("chips") is not None:
        parts.append(f"{row['chips']:,.0f} chips")
    if row.get("area_mm2") is not None:
        parts.append(f"{row['area_mm2']:,.0f} mm²")
    if row.get("static_power_w") is not None:
        parts.append(f"{row['static_power_w']:.3g} W static")
    return ", ".join(parts)


def format_regime_table(result: dict) -> str:
    """Two tables: AR per card and batch (the reference), and the crossovers per card and diffusion
    schedule, one column per batch; the assumptions under them."""
    m = result["meta"]
    batches = m["batches"]
    lines = [f"Regime map: {m['shape']}, prompt {m['prompt_len']} tokens, {m['gen_len']} generated, batch "
             f"{batches[0]}–{batches[-1]}, steps per generated token {min(m['steps_per_token']):.3g}–"
             f"{max(m['steps_per_token']):.3g}.", "",
             "AR reference (KV cache): tokens/s | J/token" + " per batch", ""]
    head = f"{'card':<13}" + "".join(f" {'batch ' + str(b):>19}" for b in batches) + "  whole system"
    lines += [head, "-" * len(head)]
    ar = {(r["card"], r["batch"]): r for r in result["ar"]}
    for card in dict.fromkeys(r["card"] for r in result["ar"]):
        cells = [ar.get((card, b)) for b in batches]
        sys_ = next((_system(c) for c in cells if c and c.get("kind") == "analog"), "")
        lines.append(f"{card:<13}" + "".join(
            f" {c['tokens_per_s']:>9.4g} | {c['energy_per_token_j']:<7.2g}" if c else f" {'—':>19}" for c in cells)
            + (f"  {sys_}" if sys_ else ""))
    lines += ["", "Crossovers: steps per generated token where diffusion's J/token | time per token equals AR's "
              "(diffusion wins below it; 'diff' / 'AR': that side wins over the whole grid)", ""]
    head = f"{'card':<13} {'diffusion schedule':<34}" + "".join(f" {'batch ' + str(b):>15}" for b in batches)
    lines += [head, "-" * len(head)]
    rows: dict[tuple, dict[int, dict]] = {}
    for c in result["crossovers"]:
        rows.setdefault((c["card"], c["block_len"], c["cache"]), {})[c["batch"]] = c
    for (card, block_len, cache), by_batch in rows.items():
        cells = []
        for b in batches:
            c = by_batch.get(b)
            cells.append(f"{_fmt_x(c['energy_crossover'], c['energy_wins'])} | "
                         f"{_fmt_x(c['speed_crossover'], c['speed_wins'])}" if c else "—")
        lines.append(f"{card:<13} {schedule_label(block_len, cache):<34}" + "".join(f" {x:>15}" for x in cells))
    lines += ["", "Best diffusion point per card (over schedules, steps per token and batches; ratio to AR at the "
              "same batch):"]
    for card, (e, t) in best_points(result).items():
        lines.append(f"{card:<13} J/token {e['ratio']:.3g}× AR's ({schedule_label(e['block_len'], e['cache'])}, "
                     f"{e['steps_per_token']:.3g} steps/token, batch {e['batch']}); tokens/s {t['ratio']:.3g}× AR's "
                     f"({schedule_label(t['block_len'], t['cache'])}, {t['steps_per_token']:.3g} steps/token, "
                     f"batch {t['batch']})")
    skipped: dict[tuple[str, str], list[int]] = {}
    for s in result["skipped"]:
        skipped.setdefault((s["card"], s["reason"]), []).append(s["batch"])
    for (card, reason), bs in skipped.items():
        lines.append(f"not priced: {card} at batch {', '.join(map(str, bs))}: {reason}")
    lines += ["", "Assumptions:"] + [f"- {a}" for a in m["assumptions"]]
    return "\n".join(lines)
