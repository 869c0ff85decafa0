"""Relative output error of one full 256×256 layer from IR drop alone, with and without the per-column affine
compensation (tile.ir_compensation), against the same layer without wires, on every analog card.

Weights and inputs N(0, 1) (seeded); the correction is fitted on 1024 calibration vectors and tested on 512 others.
Every effect but the wires is off (no programming/read noise, no DAC/ADC), so the error is the IR drop's.

    python benchmarks/bench_ir_compensation.py [CARD ...]
    python benchmarks/bench_ir_compensation.py --price      # its price per token on published and shipped shapes
"""
from __future__ import annotations

import sys

import torch
from torch import nn

import analogdiff as ad
from analogdiff.crossbar.compensation import relative_error
from analogdiff.crossbar.layers import analogize

QUIET = {"device.prog_noise": None, "device.read_noise": None, "dac": None, "adc": None, "drift": None}


def main(cards: list[str]) -> None:
    torch.manual_seed(0)
    lin = nn.Linear(256, 256).eval().requires_grad_(False)
    x = torch.randn(512, 256, generator=torch.Generator().manual_seed(1))
    calib = torch.randn(1024, 256, generator=torch.Generator().manual_seed(2))
    print("| card | r_row/r_col (Ω per cell) | g_max (µS) | error, uncompensated | error, compensated |")
    print("|---|---|---|---|---|")
    for card in cards:
        hw = ad.load_hardware(card, overrides=QUIET)
        if hw.wire is None:
            continue
        ideal = analogize(lin, ad.load_hardware(hw, overrides={"wire": None}), calibration=calib)(x)
        errs = [relative_error(analogize(lin, ad.load_hardware(hw, overrides={"tile.ir_compensation": c}),
                                         calibration=calib)(x), ideal) for c in (None, "per-column-affine")]
        print(f"| {hw.name} | {hw.wire.r_row_ohm:g}/{hw.wire.r_col_ohm:g} | {hw.device.g_max_us:g} | "
              f"{errs[0]:.3f} | {errs[1]:.3f} |")


def price() -> None:
    """Energy and latency per token with the correction off and on (``estimate``, the run's counters)."""
    from analogdiff.energy import Autoregressive, Diffusion

    on = {"tile.ir_compensation": "per-column-affine"}
    for shape, card, dec in [("shakespeare-mdlm", "circuits/pcm-hermes.toml", Diffusion(steps=64, seq_len=256)),
                             ("shakespeare-mdlm", "pcm-ibm", Diffusion(steps=64, seq_len=256)),
                             ("shakespeare-mdlm", "ecram", Diffusion(steps=64, seq_len=256)),
                             ("llada-8b", "pcm-ibm", Diffusion(steps=256, seq_len=1024)),
                             ("llama3-8b", "pcm-ibm", Autoregressive(seq_len=1024))]:
        hw = ad.load_hardware(card, overrides=on)
        off = ad.estimate(shape, ad.load_hardware(hw, overrides={"tile.ir_compensation": None}), decode=dec)
        r = ad.estimate(shape, hw, decode=dec)
        c = r.breakdown_j["ir_compensation"]
        print(f"{shape} on {hw.name}: energy/token {off.energy_per_token_j:.4g} -> {r.energy_per_token_j:.4g} J "
              f"(correction {100 * c / r.energy_per_sequence_j:.2f}%, "
              f"{r.counts['ir_compensation_macs'] / r.generated_tokens:.3g} multiply-adds/token), latency/token "
              f"{100 * (r.latency_per_token_s / off.latency_per_token_s - 1):+.2f}%")


if __name__ == "__main__":
    if sys.argv[1:] == ["--price"]:
        price()
    else:
        main(sys.argv[1:] or ["pcm-ibm", "pcm-hermes", "rram-wan2022", "ecram"])
