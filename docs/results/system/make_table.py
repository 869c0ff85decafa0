"""The whole-system scale of every card for LLaDA-8B and shakespeare-mdlm (issue 11 item 2).

    PYTHONPATH=$PWD python docs/results/system/make_table.py > docs/results/system/scale.md

Default decode of `analogdiff estimate`: diffusion, steps = seq_len = min(1024, context), batch 1.
"""
from pathlib import Path

from analogdiff.energy import estimate
from analogdiff.energy.report import fmt_si

CARDS = Path(__file__).resolve().parents[3] / "circuits"
NAMES = ["pcm-ibm", "pcm-hermes", "rram-wan2022", "ecram", "ideal", "h100-sxm", "a100-sxm"]

print("| model | card | chips | area (mm²) | static power | energy / token | latency / token | static | interconnect | dram |")
print("|---|---|---|---|---|---|---|---|---|---|")
for model in ("llada-8b", "shakespeare-mdlm"):
    for name in NAMES:
        r = estimate(model, CARDS / f"{name}.toml")
        b, tot = r.breakdown_j, r.energy_per_sequence_j
        share = {k: f"{100 * b.get(k, 0.0) / tot:.1f} %" if k in b else "—" for k in ("static", "interconnect", "dram")}
        print(f"| {model} | {name} | {r.chips:,} | {r.area_mm2:,.0f} | {fmt_si(r.static_power_w, 'W')} | "
              f"{fmt_si(r.energy_per_token_j, 'J')} | {fmt_si(r.latency_per_token_s, 's')} | {share['static']} | "
              f"{share['interconnect']} | {share['dram']} |")
