"""Tiny untrained character LMs and suite files for the bench tests (never used in any report)."""
from __future__ import annotations

from pathlib import Path

TINY = dict(n_layers=1, d_model=32, n_heads=2, n_kv_heads=2, d_ff=64, context_len=64)


def tiny_models(dir_: Path) -> dict[str, str]:
    """Write a tiny MDLM and AR twin (seeded random weights) to ``dir_``; returns {kind: path}."""
    from analogdiff.lm import CharLM, Vocab, char_shape, save_model

    vocab = Vocab()
    out = {}
    for i, kind in enumerate(("mdlm", "ar")):
        shape = char_shape(name=f"tiny-{kind}", vocab_size=vocab.size, **TINY)
        path = Path(dir_) / f"tiny-{kind}.safetensors"
        if not path.exists():
            save_model(CharLM(kind, shape, vocab, seed=i), path)
        out[kind] = str(path)
    return out


def write_suite(path: Path, models: dict[str, str], *, cards=("ideal", "pcm-ibm"), drift=(1.0, 86400.0),
                seeds=(0, 1), gen=True, estimate=True, estimator=False, no_wires=True) -> Path:
    """A small suite over the tiny models (analog cards without wire resistance unless ``no_wires=False``:
    the exact IR-drop solve is tested with the crossbar)."""
    ov = 'overrides = { "wire" = "none" }\n' if no_wires else ""
    def lst(xs):
        return "[" + ", ".join(repr(x) if not isinstance(x, str) else f'"{x}"' for x in xs) + "]"

    text = f'''name = "tiny"
description = "tiny untrained models (test only)"
headline_steps = 16
headline_drift_time_s = 3600.0
[budget]
eval_chars = 256
t_samples = 1
batch_size = 8
gen_samples = 1
gen_len = 32

[[section]]
name = "drift"
kind = "accuracy"
models = {lst([models["mdlm"], models["ar"]])}
cards = {lst(cards)}
drift_times_s = {lst(drift)}
seeds = {lst(seeds)}
{ov}'''
    if gen:
        text += f'''
[[section]]
name = "steps"
kind = "generation"
models = {lst([models["mdlm"], models["ar"]])}
cards = ["pcm-ibm", "h100-sxm"]
steps = [4, 16]
drift_times_s = [3600.0]
seeds = [0]
{ov}'''
    if estimator:
        text += '''
[[section]]
name = "estimator"
kind = "estimator"
quick = true
'''
    if estimate:
        text += '''
[[section]]
name = "headline"
kind = "estimate"
cards = ["pcm-ibm", "h100-sxm"]
[[section.runs]]
shape = "llada-8b"
decode = "diffusion"
steps = 256
seq_len = 1024
[[section.runs]]
shape = "llama3-8b"
decode = "ar"
seq_len = 1024
'''
    path = Path(path)
    path.write_text(text)
    return path
