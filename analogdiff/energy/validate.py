"""``analogdiff validate-cards``: every card against published measurements of its own chip.

Each :class:`Figure` is one published number — card, metric, value, unit, where it is published — with the
estimator call that reproduces it and a tolerance (the estimate must lie within [value / tol, value · tol]).
Its ``role`` says what it may prove:

* ``"fitted"``: the card's values were fitted to it (:func:`calibrate` reproduces the fit). Shown, never
  counted as validation.
* ``"validation"``: the card was not fitted to it. Every such row must pass.
* ``"context"``: published, but not comparable closely enough to count (a different software stack or part);
  shown with the reason in ``note``.

    rows = validate_cards()                     # list of dicts, one per figure
    ok = all(r["passed"] for r in rows if r["role"] == "validation")

GPU rows: ML.ENERGY's measured serving of Llama-3.1-8B-Instruct (bf16, vLLM, one GPU; steady-state GPU energy
per output token). Llama-3.1-8B has the layer shapes of the ``llama3-8b`` shape (its config.json differs only
in rope scaling and context length). A served batch is priced as ``Autoregressive(seq_len=P + G,
prompt_len=P)`` at the measured average batch: prefill of the prompt counted, G = the run's published average
output length, P = the mean prompt length (not published in the data files; see ``PROMPT_LEN_*``).

Analog rows: a chip's published MVM figures against :func:`analogdiff.energy.analog.mvm_energy` of one full tile
(its array-and-converter time ``t_mvm_ns``; chip throughput = cores × 2·rows·cols / t_mvm; efficiency = ops over
the lines the paper's figure covers). HERMES (Le Gallo et al. 2023) reports array + ADC + PWM (+ static) with the
local digital excluded; NeuRRAM (Wan et al. 2022) reports input and output stages at 100 % utilisation, partial
sums (on the FPGA) excluded. ``wire_check`` rows (given a checker, see ``analogdiff.crossbar.wire_check``): every
analog card's relative MVM error from IR drop alone on one tile, against the stated limit.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Mapping

from analogdiff.config import Hardware, list_hardware, load_hardware

MODEL = "llama3-8b"
PROMPT_LEN_V3 = 256
"""Mean prompt tokens of ML.ENERGY v3's lm-arena-chat requests: an assumption. Each request is one turn of an
LMArena conversation with the history before it (``mlenergy/llm/datasets.py``, LMArenaHumanPreferenceDataset),
so prompts are longer than single first turns (v2: ~90 tokens); the data files do not publish the mean.
Refitted (:func:`calibrate`) at P = 128 or 320 every held-out row stays within 0.86–1.12×; the fitted
e_flop_bf16_pj moves most (2.26 pJ at P = 128, 1.38 pJ at 320). Above P ≈ 300 the lockstep batch of 691
sequences no longer fits in 80 GB (a paged server holds shorter average contexts)."""
PROMPT_LEN_V2 = 128
"""ML.ENERGY v2's chat prompts: first turns of 500 ShareGPT conversations
(``benchmark/llm_text_generation/chat/sharegpt/ShareGPT_V3_filtered_500.json``), mean 350 characters ≈ 90
Llama-3 tokens, plus the Llama-3.1 chat template (system header with dates, role headers) ≈ 30 tokens."""

V3 = ("ML.ENERGY leaderboard v3, ml-energy/leaderboard@0cd52dab "
      "public/data/models/meta-llama__Llama-3.1-8B-Instruct__lm-arena-chat.json, H100, max_num_seqs {}")
V2 = ("ML.ENERGY leaderboard v2 (deprecated), ml-energy/leaderboard-v2@c3af7f31 "
      "data/llm_text_generation/chat/{}/meta-llama/Meta-Llama-3.1-8B-Instruct/bs{}+tp1+pp1.json")
A100_40GB = {"gpu.hbm_bandwidth_tbs": 1.555, "gpu.hbm_capacity_gb": 40.0}
"""The A100-SXM4-40GB that v2 measured: 1,555 GB/s HBM2, 40 GB (NVIDIA A100 datasheet); the a100-sxm card
models the 80 GB part (2,039 GB/s). Its other values (peak FLOP/s, TDP) are the same on both parts."""
V2_STACK = {"gpu.host_us_per_seq_step": 306.3, "gpu.bandwidth_efficiency": 0.472}
"""ML.ENERGY v2's serving stack (vLLM 0.4.2), as two values of the GPU time model, fitted (:func:`calibrate`) together
with the a100-sxm card's ``power_const_w`` to v2's three A100 fitted figures (``A100_FIT``). Host time per sequence
per step, during which the GPU waits: vLLM's own profile of v0.5.3 serving Llama-3-8B on one H100 spent 33% of the
time in the HTTP server and 29% in scheduling and input preparation, the GPU busy 38% ("vLLM v0.6.0: 1.8-2.7x
Throughput Improvement and 5x Latency Reduction", blog.vllm.ai/2024/09/05/perf-update.html). v2's A100 rows say the
same: their power is flat (188–202 W at every batch) while throughput grows only 1.85× from batch 32 to 256. The
cards themselves are priced with host time 0 (the h100-sxm card fits v3's rows within 0.87–1.10× without one). The
fitted bandwidth_efficiency (0.472 of peak at batch 32, vs 0.673 fitted to v3 on the H100) is the older stack's."""
V2_NOTE = ("context: the v2 stack (V2_STACK, fitted on the A100 rows) carried to the H100 card: throughput "
           "1.07–1.16×, power 0.72–0.77× (the h100-sxm card's power_const_w = 70 W is an assumption that v2's "
           "waits expose), so J/token 0.62–0.71×: the stack's time transfers, the H100's constant power is not known")

Metric = Literal["J/token", "W", "tokens/s"]


def serving_metric(hw: Hardware, metric: Metric, batch: int, prompt_len: int, output_len: int) -> float:
    """``metric`` of ``batch`` sequences of MODEL served together on ``hw``: J per generated token, average
    board power (W) or generated tokens/s over the batch."""
    from analogdiff.energy import Autoregressive, estimate

    r = estimate(MODEL, hw, Autoregressive(seq_len=prompt_len + output_len, prompt_len=prompt_len), batch=batch)
    if metric == "J/token":
        return r.energy_per_token_j
    if metric == "W":
        return r.energy_per_sequence_j * batch / r.latency_per_sequence_s
    return r.tokens_per_s


def diffusion_step_s(hw: Hardware, shape: str, steps: int, seq_len: int, prompt_len: int, block_len: int) -> float:
    """Seconds per denoising step of LLaDA's original semi-autoregressive sampler (every step feeds all
    ``seq_len`` positions: no cache), batch 1."""
    from analogdiff.energy import Diffusion, estimate

    d = Diffusion(steps=steps, seq_len=seq_len, prompt_len=prompt_len, block_len=block_len, kv_cache=False)
    return estimate(shape, hw, d).latency_per_sequence_s / steps


@dataclass(frozen=True)
class Figure:
    """One published figure and how the estimator reproduces it."""

    card: str
    metric: str
    published: float
    unit: str
    source: str
    ref: str
    call: str
    role: Literal["fitted", "validation", "context"]
    estimator: Callable[[Hardware], float] = field(repr=False, compare=False)
    tolerance: float = 1.3
    overrides: Mapping = field(default_factory=dict)
    note: str = ""


def _serving(card: str, metric: Metric, published: float, batch: float, output_len: float, source: str,
             ref: str, role: str, prompt_len: int | None = None, overrides: Mapping | None = None,
             note: str = "") -> Figure:
    b, g = round(batch), round(output_len)
    prompt_len = PROMPT_LEN_V3 if prompt_len is None else prompt_len
    unit = {"J/token": "J/token", "W": "W", "tokens/s": "tokens/s"}[metric]
    call = (f"estimate('{MODEL}', '{card}'{', ' + str(dict(overrides)) if overrides else ''}, "
            f"Autoregressive(seq_len={prompt_len + g}, prompt_len={prompt_len}), batch={b})")
    return Figure(card=card, metric=f"{metric} @ batch {b}", published=published, unit=unit, source=source,
                  ref=ref, call=call, role=role, overrides=dict(overrides or {}), note=note,
                  estimator=functools.partial(serving_metric, metric=metric, batch=b, prompt_len=prompt_len,
                                              output_len=g))


# ML.ENERGY v3, H100, Llama-3.1-8B-Instruct, lm-arena-chat: (max_num_seqs, avg batch, avg output tokens,
# J/token, avg power W, output tokens/s)
H100_V3 = ((8, 7.98, 388.7, 0.4548, 486.4, 1069.6), (16, 15.95, 404.2, 0.2627, 513.3, 1953.6),
           (32, 31.91, 390.3, 0.1651, 559.7, 3391.1), (64, 63.92, 395.5, 0.1186, 610.3, 5147.2),
           (96, 95.70, 392.8, 0.1029, 644.0, 6260.1), (128, 127.62, 404.6, 0.0951, 669.2, 7036.5),
           (192, 191.66, 396.8, 0.0837, 688.3, 8223.3), (256, 255.19, 404.2, 0.0766, 690.5, 9009.6),
           (384, 383.01, 394.3, 0.0742, 686.5, 9248.0), (512, 510.87, 396.7, 0.0702, 688.3, 9805.6),
           (768, 690.87, 397.4, 0.0713, 685.1, 9602.8))
H100_FIT = {("tokens/s", 8), ("W", 8), ("tokens/s", 256)}
"""The three figures the h100-sxm card was fitted to (bandwidth_efficiency, e_hbm_pj_per_byte,
e_flop_bf16_pj); J/token at these two batch sizes is their product and is marked fitted too."""
H100_SHOWN = {"W": (8, 32, 128, 512), "tokens/s": (8, 32, 128, 256, 512)}
# ML.ENERGY v2 (deprecated; vLLM 0.4.2, ShareGPT): (GPU directory, max batch, avg batch, avg output tokens,
# J/token = Energy/req ÷ Avg Output Tokens, output tokens/s = Token tput). Not shown: A100 bs320 and H100 bs1024,
# whose lockstep batch at the full context (our model of a batch) exceeds 40 / 80 GB (vLLM's paged cache holds
# the running average context).
V2_ROWS = (("A100-SXM4-40GB", 32, 31.94, 485.7, 0.2113, 938.5), ("A100-SXM4-40GB", 64, 63.88, 481.3, 0.1622, 1245.2),
           ("A100-SXM4-40GB", 128, 127.76, 480.9, 0.1239, 1516.8),
           ("A100-SXM4-40GB", 192, 191.63, 484.4, 0.1204, 1597.9),
           ("A100-SXM4-40GB", 256, 255.45, 483.7, 0.1090, 1736.5),
           ("H100 80GB HBM3", 64, 63.88, 482.8, 0.1711, 1784.7), ("H100 80GB HBM3", 128, 127.77, 483.1, 0.1307, 2152.5),
           ("H100 80GB HBM3", 192, 191.62, 483.0, 0.1188, 2474.6), ("H100 80GB HBM3", 256, 255.44, 482.8, 0.1205, 2289.1),
           ("H100 80GB HBM3", 320, 319.19, 483.5, 0.1171, 2342.6), ("H100 80GB HBM3", 512, 509.84, 481.3, 0.1215, 2022.0),
           ("H100 80GB HBM3", 768, 761.75, 483.0, 0.1155, 2176.7))
A100_FIT = {("tokens/s", 32), ("W", 32), ("tokens/s", 256)}
"""The three v2 A100 figures the a100-sxm card's power_const_w and V2_STACK were fitted to; J/token at these two
batch sizes is their product and is marked fitted too. Every other v2 A100 row is held out."""
V2_H100_SHOWN = (64, 256, 768)


FAST_DLLM_PROMPT_LEN = 1000
"""GSM8K 8-shot prompt of Fast-dLLM's LLaDA runs (lm-eval ``gsm8k``, ``num_fewshot=8``: eight training problems
with worked answers, then the question), in tokens: an assumption, not published."""


def _fast_dllm_step() -> Figure:
    P, G = FAST_DLLM_PROMPT_LEN, 1024
    return Figure(
        card="a100-sxm", metric="s/step LLaDA full pass", published=0.26, unit="s/step",
        source="Wu et al. 2025 (Fast-dLLM), arXiv:2505.22618 Fig. 1c (NVlabs/Fast-dLLM@24cc59e7 "
               "paper/fast_dllm.pdf): LLaDA-8B-Instruct, GSM8K 8-shot, gen 1024, 1024 steps, block 32, no cache, "
               "266 s per sample on an A100 80GB",
        ref="Fast-dLLM Fig. 1c, A100 80GB", role="context",
        call=(f"estimate('llada-8b', 'a100-sxm', Diffusion(steps=1024, seq_len={P + G}, prompt_len={P}, "
              f"block_len=32, kv_cache=False)).latency_per_sequence_s / 1024"),
        note=(f"context only: the prompt length ({P} tokens) is assumed (600–1,200 tokens give 0.88–1.21×); "
              "the only published time of full-width diffusion passes (large GEMMs, power-limited) on a card's "
              "own part. The pure roofline (no power limit) gave 0.47–0.66×"),
        estimator=functools.partial(diffusion_step_s, shape="llada-8b", steps=1024, seq_len=P + G, prompt_len=P,
                                    block_len=32))


# ----------------------------------------------------------------------------- analog chips

LE_GALLO = ("Le Gallo et al., Nat. Electron. 6, 680 (2023), doi:10.1038/s41928-023-01010-1 "
            "(arXiv:2212.02872v1), Table I: MVM at max. utilization, 64 cores, {}")
KHADDAM = ("Khaddam-Aljameh et al., IEEE JSSC 57, 1027 (2022), doi:10.1109/JSSC.2022.3140414, §V-C: HERMES core "
           "1.008 TOPS at 10.5 TOPS/W, 1 GHz, 0.8 V (MNIST run)")
WAN = ("Wan et al., Nature 608, 504 (2022), doi:10.1038/s41586-022-04992-8, Extended Data Fig. 12, as digitised by "
       "CiMLoop (mit-emze/cimloop@d6e13900 workspace/models/arch/1_macro/wan_nature_2022/_tests.py l. 50-63), "
       "{} inputs / {} outputs")
WAN_IBM = ("NeuRRAM as tabulated by Le Gallo et al. 2023 (arXiv:2212.02872v1), Extended Data Table II: 48 cores, "
           "4b in / 6b out, 0.754 TOPS, 16 TOPS/W")
WAN_NOTE = ("the card's component energies and step times are CiMLoop's NeuRRAM model, which CiMLoop chose to "
            "reproduce this figure: agreement checks the card's event counts (integrations, ADC steps, word-line "
            "toggles, phases), not independent component values")
ISAAC = ("Shafiee et al., ISCA 2016 (corrected version, Oct 2016), Table I: one IMA (8 arrays 128×128, 2 bits/cell, "
         "16-bit inputs one bit per 100 ns) 24.08 mW for 8·128·16·2 ops / 1.6 µs = 20.48 GOPS → 850.5 GOPS/W")
ISAAC_GEOMETRY = {"tile.rows": 128, "tile.cols": 128, "tile.bit_slices": 8, "dac.bits": 16, "dac.bit_serial": True,
                  "dac.mode": "amplitude", "dac.t_conv_ns": 100.0, "adc.cols_per_adc": 128}
"""ISAAC's IMA in the card's terms: 128×128 arrays, 16-bit weights in 8 slices (16 outputs per array), bit-serial
inputs (16 bits with the sign: 15 magnitude cycles; ISAAC feeds 16 unsigned bits), one ADC per array."""
HERMES_CORES, NEURRAM_CORES = 64, 48
"""Cores of the HERMES chip (Le Gallo 2023, Ext. Data Table I) and of NeuRRAM (Wan 2022, p. 505)."""


def mvm_metric(hw: Hardware, metric: str, cores: int = 1) -> float:
    """One full tile's MVM on ``hw``: ``"TOPS/W"`` (ops over every tile line but the local digital, the scope
    HERMES reports; the other cards have no local digital line) or ``"TOPS"`` (``cores`` × ops / t_mvm)."""
    from analogdiff.energy.analog import mvm_energy

    t = hw.tile
    m = mvm_energy(hw, t.rows, t.cols // t.bit_slices)
    if metric == "TOPS":
        return cores * m["ops"] / m["t_mvm_ns"] * 1e-3
    return m["ops"] / (m["total_pj"] - m["local_digital_pj"])


def _mvm(card: str, metric: str, published: float, source: str, ref: str, role: str, cores: int = 1,
         overrides: Mapping | None = None, note: str = "") -> Figure:
    """A published MVM figure; ``metric`` starts with its unit: TOPS/W, GOPS/W or TOPS."""
    unit = metric.split()[0]
    kind, scale = ("TOPS/W", 1e3) if unit == "GOPS/W" else (unit, 1.0)
    call = (f"mvm_energy(load_hardware('{card}'{', ' + str(dict(overrides)) if overrides else ''}), rows, cols): "
            + ("ops / (energy less the local digital)" if kind == "TOPS/W" else f"{cores} cores × ops / t_mvm"))
    return Figure(card=card, metric=metric, published=published, unit=unit, source=source, ref=ref, call=call,
                  role=role, overrides=dict(overrides or {}), note=note,
                  estimator=lambda hw: scale * mvm_metric(hw, kind, cores))


def analog_figures() -> list[Figure]:
    """The analog chips' published MVM figures, in table order."""
    out = [
        _mvm("pcm-hermes", "TOPS/W core", 10.5, KHADDAM, "HERMES core, JSSC 2022 §V-C", "fitted",
             note="periphery.p_core_mw is this measured core power less the card's itemised lines"),
        _mvm("pcm-hermes", "TOPS/W 1-phase", 9.76, LE_GALLO.format("1-phase"), "HERMES chip, Table I, 1-phase",
             "validation"),
        _mvm("pcm-hermes", "TOPS 1-phase", 63.1, LE_GALLO.format("1-phase"), "HERMES chip, Table I, 1-phase",
             "fitted", HERMES_CORES, note="adc.t_conv_ns = 133 − 128 ns was read from this row's 133 ns latency"),
        _mvm("pcm-hermes", "TOPS/W 4-phase", 2.48, LE_GALLO.format("4-phase"), "HERMES chip, Table I, 4-phase",
             "validation", overrides={"tile.read_phases": 4}),
        _mvm("pcm-hermes", "TOPS 4-phase", 16.1, LE_GALLO.format("4-phase"), "HERMES chip, Table I, 4-phase",
             "validation", HERMES_CORES, overrides={"tile.read_phases": 4}),
    ]
    for (b_in, b_out), (tops_w, tops) in {(2, 4): (40.33, 1.793), (4, 6): (15.95, 0.7439), (6, 8): (8.257, 0.4177),
                                          (8, 10): (6.437, 0.2639)}.items():
        ov = {"dac.bits": b_in, "adc.bits": b_out}
        src, ref = WAN.format(b_in, b_out), f"NeuRRAM ED Fig. 12 (CiMLoop), {b_in}b/{b_out}b"
        out.append(_mvm("rram-wan2022", f"TOPS/W {b_in}b/{b_out}b", tops_w, src, ref, "validation", overrides=ov,
                        note=WAN_NOTE))
        out.append(_mvm("rram-wan2022", f"TOPS {b_in}b/{b_out}b", tops, src, ref, "validation", NEURRAM_CORES,
                        overrides=ov, note=WAN_NOTE))
    ov = {"dac.bits": 4, "adc.bits": 6}
    out.append(_mvm("rram-wan2022", "TOPS/W 4b/6b (IBM)", 16.0, WAN_IBM, "NeuRRAM in HERMES ED Table II", "validation",
                    overrides=ov, note=WAN_NOTE))
    out.append(_mvm("rram-wan2022", "TOPS 4b/6b (IBM)", 0.754, WAN_IBM, "NeuRRAM in HERMES ED Table II", "validation",
                    NEURRAM_CORES, overrides=ov, note=WAN_NOTE))
    out.append(_mvm("pcm-ibm", "GOPS/W ISAAC IMA", 850.5, ISAAC, "ISAAC Table I, one IMA", "context",
                    overrides=ISAAC_GEOMETRY,
                    note="context only: the card borrows ISAAC's DAC, S+H and S+A energies (Table I) and its ADC law, "
                         "not its memristor array: its own PCM devices (25 µS at 0.2 V for 100 ns) read at ≈ 6× "
                         "ISAAC's 30 pJ per array read. ISAAC's chip figures (Table IV: 627.5 GOPS/W, 478.95 GOPS/mm², "
                         "with eDRAM and HyperTransport) are not this card's"))
    return out


def figures() -> list[Figure]:
    """Every published figure, in table order."""
    out = []
    for seqs, batch, out_len, j_tok, power_w, tok_s in H100_V3:
        for metric, value in (("J/token", j_tok), ("W", power_w), ("tokens/s", tok_s)):
            if metric != "J/token" and seqs not in H100_SHOWN[metric]:
                continue
            fitted = (metric, seqs) in H100_FIT or (metric == "J/token" and seqs in (8, 256))
            out.append(_serving("h100-sxm", metric, value, batch, out_len, V3.format(seqs),
                                f"ML.ENERGY v3, H100, max_num_seqs {seqs}", "fitted" if fitted else "validation"))
    for gpu, seqs, batch, out_len, j_tok, tok_s in V2_ROWS:
        a100 = gpu.startswith("A100")
        for metric, value in (("J/token", j_tok), ("W", j_tok * tok_s), ("tokens/s", tok_s)):
            if not a100 and metric != "J/token" and seqs not in V2_H100_SHOWN:
                continue
            if a100:
                fitted = (metric, seqs) in A100_FIT or (metric == "J/token" and seqs in (32, 256))
                role, ov, note = ("fitted" if fitted else "validation"), {**A100_40GB, **V2_STACK}, ""
            else:
                role, ov, note = "context", V2_STACK, V2_NOTE
            out.append(_serving("a100-sxm" if a100 else "h100-sxm", metric, value, batch, out_len,
                                V2.format(gpu, seqs), f"ML.ENERGY v2, {gpu}, bs{seqs}", role, PROMPT_LEN_V2, ov, note))
    out.append(_fast_dllm_step())
    out.extend(fast_dllm_speedups())
    return analog_figures() + out


FAST_DLLM_PROMPT_LEN_5SHOT = 640
"""GSM8K 5-shot prompt of Fast-dLLM's Table 1 runs, in tokens: an assumption (5/8 of the 8-shot assumption,
rounded). The prefix-cache speed-up grows with it: at gen 256, 400 / 640 / 900 prompt tokens give 3.3× / 4.2× /
5.2× on the a100-sxm card against the published 3.2×."""
FAST_DLLM_SRC = ("Wu et al. 2025 (Fast-dLLM), arXiv:2505.22618, NVlabs/Fast-dLLM@24cc59e7 paper/fast_dllm.pdf {}; "
                 "settings llada/eval_gsm8k.sh: LLaDA-8B-Instruct, block 32, threshold 0.9, batch 1, A100 80GB")
# (label: cache, par(allel), dual(cache), prompt, gen, cache_mode or None, tokens per step or None, published speed-up, where, tokens/step source)
FAST_DLLM_ROWS = (
    ("cache", FAST_DLLM_PROMPT_LEN_5SHOT, 256, "prefix", None, 3.2, "Table 1, GSM8K 5-shot, gen 256", ""),
    ("cache", FAST_DLLM_PROMPT_LEN_5SHOT, 512, "prefix", None, 3.3, "Table 1, GSM8K 5-shot, gen 512", ""),
    ("par", FAST_DLLM_PROMPT_LEN_5SHOT, 256, None, 3.25, 2.5, "Table 1, GSM8K 5-shot, gen 256",
     "3.25 tokens/step, Fig. 1b"),
    ("cache+par", FAST_DLLM_PROMPT_LEN_5SHOT, 256, "prefix", 3.01, 8.1, "Table 1, GSM8K 5-shot, gen 256",
     "3.01 tokens/step, Fig. 1b"),
    ("par", FAST_DLLM_PROMPT_LEN, 1024, None, 1024 / 100, 13.3, "Tables 3-4, GSM8K 8-shot, gen 1024",
     "~100 steps, Fig. 1c"),
    ("cache+par", FAST_DLLM_PROMPT_LEN, 1024, "prefix", 1024 / 140, 18.6, "Tables 3-4, GSM8K 8-shot, gen 1024",
     "~140 steps, Fig. 1c"),
    ("dual+par", FAST_DLLM_PROMPT_LEN, 1024, "dual", 1024 / 140, 27.6,
     "Tables 3-4, GSM8K 8-shot, gen 1024", "~140 steps, Fig. 1c"),
)


def fast_dllm_decode(prompt_len: int, gen_len: int, cache_mode: str | None, tokens_per_step: float | None):
    """The Diffusion schedule of one Fast-dLLM column (block 32): ``cache_mode`` None = no cache (every step
    feeds the whole sequence), ``tokens_per_step`` None = one token per step (steps = gen length)."""
    from analogdiff.energy import Diffusion

    return Diffusion(steps=None if tokens_per_step else gen_len, seq_len=prompt_len + gen_len,
                     prompt_len=prompt_len, block_len=32, kv_cache=cache_mode is not None,
                     cache_mode=cache_mode or "block", tokens_per_step=tokens_per_step)


def dllm_speedup(hw: Hardware, shape: str, prompt_len: int, gen_len: int, cache_mode: str | None,
                 tokens_per_step: float | None) -> float:
    """Latency of LLaDA's baseline sampler (1 token/step, no cache) over that of the given column, batch 1."""
    from analogdiff.energy import estimate

    def latency(cm, m):
        return estimate(shape, hw, fast_dllm_decode(prompt_len, gen_len, cm, m)).latency_per_sequence_s
    return latency(None, None) / latency(cache_mode, tokens_per_step)


def fast_dllm_speedups() -> list[Figure]:
    """Fast-dLLM's speed-ups over the LLaDA baseline: validation rows on the a100-sxm card (the paper's
    GPU), the same ratios on h100-sxm as context. Tokens per step are the paper's own measured means (its
    figures), not fitted; the published speed-ups are throughput ratios (tokens to <eos> per second), the
    estimate a latency ratio for the same generated length."""
    out = []
    for card, role in (("a100-sxm", "validation"), ("h100-sxm", "context")):
        for label, P, G, cm, m, published, where, m_src in FAST_DLLM_ROWS:
            d = fast_dllm_decode(P, G, cm, m)
            note = (f"prompt {P} tokens assumed" + (f"; {m_src}" if m_src else "")
                    + ("" if role == "validation" else "; context only: the paper measured an A100"))
            out.append(Figure(
                card=card, metric=f"speed-up {label} {G}", published=published, unit="x",
                source=FAST_DLLM_SRC.format(where), ref=f"{where} (Fast-dLLM)", role=role, tolerance=1.5,
                call=(f"dllm_speedup('{card}', 'llada-8b', {P}, {G}, {cm!r}, {m!r})  # "
                      f"baseline / {d.describe()}"), note=note,
                estimator=functools.partial(dllm_speedup, shape="llada-8b", prompt_len=P, gen_len=G,
                                            cache_mode=cm, tokens_per_step=m)))
    return out


def _card(name: str, card_dir: str | Path | None, overrides: Mapping | None = None) -> Hardware:
    where = name if card_dir is None else Path(card_dir) / f"{name}.toml"
    return load_hardware(where, overrides=dict(overrides or {}))


def figure_row(f: Figure, card_dir: str | Path | None = None) -> dict:
    """One figure estimated with the shipped card (or the one in ``card_dir``): the validate-cards row."""
    est = float(f.estimator(_card(f.card, card_dir, f.overrides)))
    ratio = est / f.published
    within = 1.0 / f.tolerance <= ratio <= f.tolerance
    return {"card": f.card, "metric": f.metric, "published": f.published, "estimate": est, "unit": f.unit,
            "ratio": ratio, "tolerance": f.tolerance, "role": f.role,
            "passed": within if f.role == "validation" else None, "within_tolerance": within,
            "source": f.source, "ref": f.ref, "call": f.call, "note": f.note}


def find_figure(card: str, metric: str) -> Figure:
    """The published figure of ``card`` named ``metric`` (the one home of every published anchor)."""
    for f in figures():
        if f.card == card and f.metric == metric:
            return f
    raise KeyError(f"{card}: no published figure {metric!r}")


def _card_names(card_dir: str | Path | None) -> list[str]:
    if card_dir is None:
        return list_hardware()
    return sorted(p.stem for p in Path(card_dir).glob("*.toml"))


WireCheck = Callable[[Hardware], "tuple[float, float] | None"]


def wire_rows(check: WireCheck, limit: float, card_dir: str | Path | None = None,
              cards: tuple[str, ...] | None = None) -> list[dict]:
    """One row per analog card: its relative MVM error from IR drop alone on one tile after per-column gains
    (``check(hw)`` → (that error, the raw error)), against ``limit``. Role ``wire``: a card above the limit is
    wire-dominated (``estimate`` and ``eval`` warn); it does not fail validate-cards."""
    rows = []
    for name in _card_names(card_dir):
        if cards is not None and name not in cards:
            continue
        hw = _card(name, card_dir)
        errs = check(hw) if hw.kind == "analog" else None
        if errs is None:
            continue
        err, raw = float(errs[0]), float(errs[1])
        rows.append({"card": name, "metric": "IR-drop MVM error", "published": limit, "estimate": err,
                     "unit": "relative", "ratio": err / limit, "tolerance": 1.0, "role": "wire", "passed": None,
                     "within_tolerance": err <= limit, "ref": "limit (stated); raw error without gains "
                     f"{raw:.3f}", "source": "analogdiff.crossbar.wire_check: exact nodal IR drop on one "
                     f"{hw.tile.rows}x{hw.tile.cols}-weight tile, Gaussian weights and inputs, seed 0",
                     "call": f"ir_drop_errors(load_hardware('{name}'))",
                     "note": "" if err <= limit else "wire-dominated: estimate and eval warn"})
    return rows


def validate_cards(card_dir: str | Path | None = None, cards: tuple[str, ...] | None = None,
                   wire_check: WireCheck | None = None, wire_limit: float | None = None) -> list[dict]:
    """Estimate every figure (of ``cards`` if given) with the shipped cards, or those in ``card_dir`` (figures
    of cards absent there are skipped). ``passed`` is None for fitted, context and wire rows. With
    ``wire_check`` (and its ``wire_limit``), one wire row per analog card follows."""
    present = set(_card_names(card_dir))
    rows = [figure_row(f, card_dir) for f in figures()
            if (cards is None or f.card in cards) and f.card in present]
    if wire_check is not None:
        rows += wire_rows(wire_check, wire_limit, card_dir, cards)
    return rows


def calibrate(card: str, fields: tuple[str, ...], start: Mapping[str, float] | None = None,
              card_dir: str | Path | None = None) -> dict[str, float]:
    """Refit the card's ``fields`` to its ``fitted`` figures by least squares on log ratios (as many
    figures as fields: the fit is exact when it exists). Returns {field: value}; the card holds them rounded.
    A field may be one the figures override (the a100-sxm's v2 rows: ``V2_STACK``): the fitted value replaces
    the override, and ``V2_STACK`` holds it rounded."""
    import numpy as np
    from scipy.optimize import least_squares

    fit = [f for f in figures() if f.card == card and f.role == "fitted" and not f.metric.startswith("J/token")]
    base = _card(card, card_dir)
    keys = [f"gpu.{k}" for k in fields]
    x0 = np.array([(start or {}).get(k, getattr(base.gpu, k)) for k in fields], dtype=float)

    def residuals(x):                       # each figure with its own overrides (part, stack), the fields last
        return [np.log(f.estimator(load_hardware(base, overrides={**f.overrides, **dict(zip(keys, x.tolist()))}))
                       / f.published) for f in fit]

    sol = least_squares(residuals, x0, bounds=(x0 * 0.05, x0 * 20.0), x_scale=x0, xtol=1e-12, ftol=1e-12)
    return dict(zip(fields, sol.x.tolist()))


def format_table(rows: list[dict]) -> str:
    """The readable table ``analogdiff validate-cards`` prints."""
    head = (f"{'card':<12} {'metric':<22} {'published':>10} {'estimate':>10} {'unit':<9} {'ratio':>6}  "
            f"{'role':<10} {'check':<6} source (--json: file and estimator call)")
    lines = [head, "-" * len(head)]
    for r in rows:
        check = ({True: "pass", False: "FAIL", None: "-"}[r["passed"]] if r["role"] != "wire"
                 else ("ok" if r["within_tolerance"] else "WARN"))
        lines.append(f"{r['card']:<12} {r['metric']:<22} {r['published']:>10.4g} {r['estimate']:>10.4g} "
                     f"{r['unit']:<9} {r['ratio']:>6.2f}  {r['role']:<10} {check:<6} {r['ref']}")
    val = [r for r in rows if r["role"] == "validation"]
    lines.append(f"{sum(r['passed'] for r in val)}/{len(val)} validation rows within tolerance "
                 f"(fitted and context rows are shown, not counted; wire rows: WARN = wire-dominated card)")
    return "\n".join(lines)
