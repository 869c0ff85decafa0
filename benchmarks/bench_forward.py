"""Forward-pass speed of the shipped MDLM: digital vs analogdiff (every effect on) vs aihwkit, in one run.

    .venv/bin/python benchmarks/bench_forward.py [--batch 32] [--seq-len 256] [--reps 3] [--threads N]

Measures, on one batch of ``batch`` × ``seq_len`` characters (validation text, half the positions masked as
the denoiser sees them):

* digital: the plain torch model;
* analogdiff, card ``pcm-ibm`` 1 h after programming: exact IR drop (wires' effective matrix), programming
  noise, drift with global compensation, per-MVM 1/f read noise (output-level variance from the default
  bfloat16 matmul, per-output std within 0.59 %), 8-bit static-range DAC and 8-bit calibrated ADC per
  256×256 tile; also with the exact float32 variance (``device.read_noise_exact = true``), with the
  rank-16 read-noise variance (``read_noise_rank=16``) and with read noise off, to show where the time goes;
* aihwkit: ``TorchInferenceRPUConfig`` with ``PCMLikeNoiseModel``, ``GlobalDriftCompensation`` and 8-bit
  DAC/ADC (its IO defaults otherwise), no IR drop;
* the IR-drop solve (``wires.effective_conductance``) of one 256×256 tile.

Times are wall-clock medians over ``reps`` interleaved repetitions (after one warm-up each) and per-process
CPU time; ratios are to the digital forward. Each variant's ratio is also taken rep by rep (every rep runs
all variants back to back, so both sides of a ratio see the same machine load): the geometric mean with its
95% interval, and against each goal "met" (the whole interval at or below it), "not met" (all above) or "not
distinguishable". The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _model(name: str):
    from analogdiff.lm import load_model
    from analogdiff.lm.corpus import Vocab
    from analogdiff.lm.model import CharLM, char_shape

    try:
        return load_model(name), f"shipped checkpoint {name}"
    except ValueError as e:
        vocab = Vocab()
        shape = char_shape(name=name, n_layers=4, d_model=192, n_heads=4, n_kv_heads=4, d_ff=768,
                           vocab_size=vocab.size, context_len=256)
        return CharLM("mdlm", shape, vocab).eval(), f"RANDOMLY INITIALISED same-shape model ({e})"


def _batch(model, batch: int, seq_len: int, seed: int) -> torch.Tensor:
    from analogdiff.lm.corpus import random_windows, split_ids

    gen = torch.Generator().manual_seed(seed)
    try:
        ids = random_windows(split_ids("validation", model.vocab), batch, seq_len, gen)
    except Exception:  # corpus unavailable: random characters
        ids = torch.randint(0, model.vocab.size - 1, (batch, seq_len), generator=gen)
    mask = torch.rand(ids.shape, generator=gen) < 0.5
    return ids.masked_fill(mask, model.mask_id)


def _time(fns: dict, reps: int) -> tuple[dict, dict]:
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    with torch.no_grad():
        for f in fns.values():
            f()
        for _ in range(reps):
            for k, f in fns.items():
                t0, c0 = time.perf_counter(), time.process_time()
                f()
                wall[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}, wall


def paired_ratio(wall: dict, key: str) -> dict:
    """Ratio of ``key``'s wall time to the digital one, rep by rep (each rep times every variant back to back,
    so a rep's ratio sees the same machine load): geometric mean with the 95% t-interval of the mean log
    ratio (``analogdiff.stats.summary``)."""
    from analogdiff.stats import summary

    logs = [math.log(a / d) for a, d in zip(wall[key], wall["digital"])]
    s = summary(logs)
    return {"ratio": math.exp(s["mean"]), "ci95": [math.exp(s["ci95"][0]), math.exp(s["ci95"][1])], "n": s["n"]}


def verdict(ci95: list, limit: float) -> str:
    """'met' when the whole interval is at or below ``limit``, 'not met' when it is all above, else
    'not distinguishable'."""
    return "met" if ci95[1] <= limit else ("not met" if ci95[0] > limit else "not distinguishable")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shakespeare-mdlm")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch and numba threads (default: torch's)")
    ap.add_argument("--no-aihwkit", action="store_true")
    args = ap.parse_args(argv)
    from analogdiff import checks

    try:
        for key, hi in (("batch", 1 << 16), ("seq_len", 1 << 16), ("reps", 10_000)):
            checks.integer(f"--{key.replace('_', '-')}", getattr(args, key), 1, hi)
        if args.threads is not None:
            checks.integer("--threads", args.threads, 1, 1024)
    except checks.ConfigError as e:
        print(f"bench_forward: {e}", file=sys.stderr)
        raise SystemExit(2) from None

    import numba

    import analogdiff as ad
    from analogdiff.crossbar.layers import analog_layers, analogize, set_drift_time, set_read_noise_rank
    from analogdiff.crossbar.wires import effective_conductance

    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    warnings.filterwarnings("ignore")
    model, source = _model(args.model)
    print(f"model: {source}; batch {args.batch} x {args.seq_len}; torch threads {torch.get_num_threads()}, "
          f"numba threads {numba.get_num_threads()}", flush=True)
    ids = _batch(model, args.batch, args.seq_len, seed=0)
    calib = _batch(model, 4, args.seq_len, seed=1)

    hw = ad.load_hardware("pcm-ibm")  # wires, noise, drift + compensation, 8-bit DAC/ADC: all on
    t0 = time.perf_counter()
    full = analogize(model, hw, seed=0, calibration=calib)
    set_drift_time(full, 3600.0)
    setup_s = time.perf_counter() - t0
    print(f"analogdiff setup (program, IR-drop solves at t = 0 and 1 h, calibration): {setup_s:.1f} s",
          flush=True)
    exact = copy.deepcopy(full)
    hw_exact = ad.load_hardware(hw, overrides={"device.read_noise_exact": True})
    for _, layer in analog_layers(exact):  # bench only: the same programmed tiles, the float32 variance
        layer.hw = hw_exact
        layer.set_read_noise_rank(None)  # re-applies the drift state with the layer's card
    rank16 = copy.deepcopy(full)
    set_read_noise_rank(rank16, 16)
    no_read = copy.deepcopy(full)
    for _, layer in analog_layers(no_read):  # bench only: drop the read noise without reprogramming
        layer._var = layer._var_factors = None
    amodels = {"all_effects": full, "all_effects_exact": exact, "all_effects_rank16": rank16,
               "no_read_noise": no_read}

    fns = {"digital": lambda: model(ids)}
    fns.update({k: (lambda m=m: m(ids)) for k, m in amodels.items()})
    if not args.no_aihwkit:
        try:
            from analogdiff.crossbar.aihwkit_backend import convert, program_and_drift

            torch.manual_seed(0)
            amodel_aihw = convert(model, ad.load_hardware(hw, overrides={"wire": None}))
            program_and_drift(amodel_aihw, 3600.0)
            fns["aihwkit"] = lambda: amodel_aihw(ids)
        except ImportError as e:
            print(f"aihwkit unavailable: {e}")
    times, walls = _time(fns, args.reps)
    d_wall, d_cpu = times["digital"]
    paired = {k: paired_ratio(walls, k) for k in times if k != "digital"}
    limits = {"all_effects": [("goal", 1.5), ("bar", 2.0)], "all_effects_exact": [("goal", 2.2)]}
    for k, (w, c) in times.items():
        line = f"{k:20s} wall {w:7.3f} s  ratio {w / d_wall:5.2f}   cpu {c:7.3f} s  ratio {c / d_cpu:5.2f}"
        if k in paired:
            pr = paired[k]
            line += f"   paired {pr['ratio']:.2f} (95% CI {pr['ci95'][0]:.2f}-{pr['ci95'][1]:.2f}, {pr['n']} reps)"
            line += "".join(f"   {name} <= {lim}x: {verdict(pr['ci95'], lim)}" for name, lim in limits.get(k, []))
        print(line)

    g = np.random.default_rng(0).uniform(0.0, 25e-6, (256, 256))
    effective_conductance(g, hw.wire.r_row_ohm, hw.wire.r_col_ohm)
    t0 = time.perf_counter()
    effective_conductance(g, hw.wire.r_row_ohm, hw.wire.r_col_ohm)
    solve_s = time.perf_counter() - t0
    g2 = np.random.default_rng(1).uniform(0.0, 25e-6, (256, 512))
    t0 = time.perf_counter()
    effective_conductance(g2, hw.wire.r_row_ohm, hw.wire.r_col_ohm)
    solve_pair_s = time.perf_counter() - t0
    print(f"IR-drop solve, one 256x256 device array: {solve_s:.3f} s; one 256x256 tile of differential "
          f"pairs (256x512 devices, as programmed): {solve_pair_s:.3f} s")

    out = {
        "model": source, "batch": args.batch, "seq_len": args.seq_len, "threads": torch.get_num_threads(),
        "digital_s": d_wall,
        "analog_all_effects_s": times["all_effects"][0],
        "ratio_all_effects": times["all_effects"][0] / d_wall,
        "ratio_all_effects_exact": times["all_effects_exact"][0] / d_wall,
        "goal_ratio_all_effects": 1.5, "bar_ratio_all_effects": 2.0, "goal_ratio_all_effects_exact": 2.2,
        "ratio_all_effects_rank16": times["all_effects_rank16"][0] / d_wall,
        "ratio_no_read_noise": times["no_read_noise"][0] / d_wall,
        "ratio_all_effects_cpu": times["all_effects"][1] / d_cpu,
        "ratio_all_effects_exact_cpu": times["all_effects_exact"][1] / d_cpu,
        "ratio_all_effects_rank16_cpu": times["all_effects_rank16"][1] / d_cpu,
        "paired_ratios": paired,
        "verdicts": {f"{k}_{name}": verdict(paired[k]["ci95"], lim) for k, lst in limits.items()
                     for name, lim in lst},
        "aihwkit_s": times["aihwkit"][0] if "aihwkit" in times else None,
        "ratio_aihwkit": times["aihwkit"][0] / d_wall if "aihwkit" in times else None,
        "ratio_aihwkit_cpu": times["aihwkit"][1] / d_cpu if "aihwkit" in times else None,
        "ir_drop_solve_256x256_s": solve_s,
        "ir_drop_solve_256x512_s": solve_pair_s,
        "analog_setup_s": setup_s,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
