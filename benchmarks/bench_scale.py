"""A 100M-parameter masked-diffusion model on the CPU: program it on ``pcm-ibm`` with exact IR drop on every
tile, move it to one drift time, and run a forward over 16k tokens, timing each phase (issue 13, item 3).

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--tokens 16384] [--batch 1] [--drift-time 86400]
                                               [--threads 2] [--sparse-tiles 2]

The model has GPT-2 small's shape as a masked-diffusion denoiser: the shipped MDLM's backbone
(``analogdiff.lm.model.Backbone``, bidirectional, rotary, GELU) with 12 layers, d_model 768, 12 heads, d_ff
3072, GPT-2's 50,257 tokens + 1 mask token, context 1024, the LM head tied to the token embedding as in
GPT-2 (≈124M parameters); random weights from a fixed seed (GPT-2 init). Every ``nn.Linear`` (the head
included) is programmed on ``pcm-ibm`` (every effect of the card on: programming and 1/f read noise, drift
with global compensation, exact IR drop on every tile through ``wires.effective_conductance``, 8-bit DAC/ADC,
converter ranges calibrated on 2 sequences). The model is programmed with ``analogize(...,
keep_state_cache=False)``: each layer keeps its float32/bfloat16 layer matrices, not the float64 tile state
behind them (the same outputs; ``--keep-state-cache`` keeps it, as ``analogize`` does by default).

Phases, each as wall and CPU seconds: ``build`` (the digital model), ``program`` (``analogize``: mapping,
programming noise, the IR-drop solve of every tile at t = 0, calibration), ``drift`` (``set_drift_time``: the
IR-drop solve of every tile again at the drift time), ``analog_forward`` and ``digital_forward`` (the same
batches of token ids, half of each sequence masked). The IR-drop solves inside ``program`` and ``drift`` are
timed separately. On a sample of ``--sparse-tiles`` programmed tiles the same resistive network is also
solved by one sparse LU (scipy ``splu``, ``wires.nodal_column_currents`` with the identity as inputs): the
time ratio and the largest difference go in the JSON. ``--layers``/``--vocab`` run a part of the model (fewer
layers, a smaller head) and project its CPU seconds to the full shape (``projected_full``: an estimate, per
tile and per weight). Peak memory is the process's peak resident set
(``resource.getrusage``) after each phase. The machine's load average is printed beside the times (the
machine may be shared). Goals (issue 13): programming with IR drop ≤ 3 min, whole run ≤ 10 min, peak memory
≤ 8 GB, on 2 cores. ``--quick``: a 1-layer d_model 32 model over 64 tokens, to test the script's logic in
seconds. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

GOALS = {"program_s": 180.0, "total_s": 600.0, "peak_rss_gb": 8.0}
FULL = dict(n_layers=12, d_model=768, n_heads=12, d_ff=3072, vocab_size=50258, context_len=1024)
QUICK = dict(n_layers=1, d_model=32, n_heads=2, d_ff=64, vocab_size=65, context_len=32)


def build_model(sizes: dict, seed: int):
    """GPT-2-small-shaped (or ``--quick``-shaped) bidirectional denoiser, head tied to the embedding."""
    from analogdiff.lm.model import Backbone, char_shape, init_weights

    shape = char_shape(name="gpt2-small-mdlm", n_kv_heads=sizes["n_heads"], **sizes)
    model = Backbone(shape, causal=False)
    init_weights(model, shape.n_layers, torch.Generator().manual_seed(seed))
    model.head.weight = model.tok_emb.weight  # tied, as GPT-2's lm_head
    return model.eval()


def token_batches(vocab_size: int, n_calls: int, batch: int, seq_len: int, seed: int) -> list[torch.Tensor]:
    """``n_calls`` batches (batch, seq_len) of random token ids, half of the positions masked (id V-1)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_calls):
        ids = torch.randint(0, vocab_size - 1, (batch, seq_len), generator=gen)
        out.append(ids.masked_fill(torch.rand(ids.shape, generator=gen) < 0.5, vocab_size - 1))
    return out


class Clock:
    """Wall and CPU seconds of a phase, and the peak resident set after it."""

    def __init__(self):
        self.phases: dict[str, dict] = {}

    def run(self, name: str, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        self.phases[name] = {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0,
                             "peak_rss_gb": peak_rss_gb()}
        p = self.phases[name]
        print(f"{name:16s} {p['wall_s']:8.1f} s wall {p['cpu_s']:8.1f} s CPU   peak RSS {p['peak_rss_gb']:.2f} GB   "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
        return out


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss: KiB on Linux


class SolveTimer:
    """Wraps ``wires.effective_conductance`` to count the arrays it solves and the wall time it takes."""

    def __init__(self):
        from analogdiff.crossbar import wires

        self.wires, self.inner = wires, wires.effective_conductance
        self.arrays, self.wall_s, self.cpu_s = 0, 0.0, 0.0
        wires.effective_conductance = self

    def __call__(self, g_s, r_row_ohm, r_col_ohm):
        t0, c0 = time.perf_counter(), time.process_time()
        out = self.inner(g_s, r_row_ohm, r_col_ohm)
        self.wall_s += time.perf_counter() - t0
        self.cpu_s += time.process_time() - c0
        self.arrays += int(np.prod(g_s.shape[:-2]))
        return out

    def take(self) -> dict:
        out = {"arrays": self.arrays, "wall_s": self.wall_s, "cpu_s": self.cpu_s}
        self.arrays, self.wall_s, self.cpu_s = 0, 0.0, 0.0
        return out


def linear_shapes(sizes: dict) -> list[tuple[int, int]]:
    """(in, out) of every ``nn.Linear`` of the model (what is programmed)."""
    d, f, V = sizes["d_model"], sizes["d_ff"], sizes["vocab_size"]
    return [(d, 3 * d), (d, d), (d, f), (f, d)] * sizes["n_layers"] + [(d, V)]


def tile_count(sizes: dict, rows: int, cols: int) -> int:
    return sum(math.ceil(i / rows) * math.ceil(o / cols) for i, o in linear_shapes(sizes))


def projection(ph: dict, sizes: dict, tokens: int, rows: int, cols: int) -> dict:
    """CPU seconds of the full GPT-2-small shape over 16,384 tokens, projected from this run's: programming
    and drift scale with the tiles, the forwards with the weights × tokens (attention is ignored: it is a few
    per cent of the work at context 1024). An estimate, not a measurement; ``wall_2_cores_s`` assumes both
    cores are busy (CPU / 2)."""
    t_ratio = tile_count(FULL, rows, cols) / tile_count(sizes, rows, cols)
    w_ratio = sum(i * o for i, o in linear_shapes(FULL)) / sum(i * o for i, o in linear_shapes(sizes))
    scale = {"build": w_ratio, "program": t_ratio, "drift": t_ratio, "analog_forward": w_ratio * 16384 / tokens,
             "digital_forward": w_ratio * 16384 / tokens}
    cpu = {k: ph[k]["cpu_s"] * scale[k] for k in scale}
    return {"tiles": tile_count(FULL, rows, cols), "cpu_s": cpu, "total_cpu_s": sum(cpu.values()),
            "wall_2_cores_s": {k: v / 2 for k, v in cpu.items()}, "total_wall_2_cores_s": sum(cpu.values()) / 2}


def sparse_comparison(amodel, hw, n_tiles: int) -> dict:
    """Our solve against one sparse LU of the full nodal matrix, on ``n_tiles`` programmed tiles of the
    first MLP up-projection (device arrays as programmed, t = 0; its first tile's used extent, the network
    both solvers see): time per tile and largest difference."""
    from analogdiff.crossbar.layers import analog_layers
    from analogdiff.crossbar.wires import effective_conductance, nodal_column_currents

    name, layer = next((n, m) for n, m in analog_layers(amodel) if n.endswith("mlp.up"))
    present = layer.tile.present[0]  # (rows, 2·cols): the used extent (a partly used tile's padding is cut)
    ru, cu = int(present.any(dim=1).sum()), int(present.any(dim=0).sum())
    g_all = layer.tile.g_prog_us[:, :ru, :cu].double().numpy() * 1e-6  # (K, ru, cu) S
    idx = np.linspace(0, len(g_all) - 1, min(n_tiles, len(g_all))).round().astype(int)
    r_row, r_col = hw.wire.r_row_ohm, hw.wire.r_col_ohm
    ours_s = sparse_s = 0.0
    max_rel = 0.0
    for k in idx:
        g = g_all[k]
        t0 = time.perf_counter()
        a = effective_conductance(g, r_row, r_col)  # (rows, 2·cols) S
        t1 = time.perf_counter()
        b = nodal_column_currents(g, np.eye(g.shape[0]), r_row, r_col)  # row i: unit volt on row i
        t2 = time.perf_counter()
        ours_s, sparse_s = ours_s + t1 - t0, sparse_s + t2 - t1
        max_rel = max(max_rel, float(np.abs(a - b).max() / np.abs(b).max()))
    n = len(idx)
    print(f"IR drop on {n} tile(s) of {name} ({g_all.shape[1]}x{g_all.shape[2]} devices): ours "
          f"{ours_s / n:.3f} s/tile, sparse LU (scipy splu) {sparse_s / n:.3f} s/tile, ratio "
          f"{sparse_s / ours_s:.1f}x, largest difference {max_rel:.1e} of the largest entry", flush=True)
    return {"layer": name, "tiles": n, "devices_per_tile": [int(g_all.shape[1]), int(g_all.shape[2])],
            "ours_s_per_tile": ours_s / n, "sparse_lu_s_per_tile": sparse_s / n,
            "ratio_sparse_to_ours": sparse_s / ours_s, "max_rel_difference": max_rel}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shape and 64 tokens (tests the logic)")
    ap.add_argument("--tokens", type=int, default=None, help="tokens fed (default 16384; quick 256)")
    ap.add_argument("--batch", type=int, default=1, help="sequences per forward call (default 1)")
    ap.add_argument("--drift-time", type=float, default=86400.0, help="seconds after programming (default 1 day)")
    ap.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2)")
    ap.add_argument("--sparse-tiles", type=int, default=2, help="tiles solved by the sparse LU too (default 2)")
    ap.add_argument("--layers", type=int, default=None, help="transformer layers (default 12; fewer for a part "
                    "of the model whose CPU seconds are projected to the full one)")
    ap.add_argument("--vocab", type=int, default=None, help="vocabulary incl. the mask (default 50258)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-state-cache", action="store_true",
                    help="keep each layer's float64 tile state (analogize's default; ≈ 8 B per device more)")
    args = ap.parse_args(argv)

    import numba

    from analogdiff.config import load_hardware
    from analogdiff.crossbar.layers import analog_layers, analogize, set_drift_time

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    warnings.filterwarnings("ignore")
    sizes = dict(QUICK if args.quick else FULL)
    if args.layers:
        sizes["n_layers"] = args.layers
    if args.vocab:
        sizes["vocab_size"] = args.vocab
    seq_len = sizes["context_len"]
    tokens = args.tokens or (64 if args.quick else 16384)
    n_calls = math.ceil(tokens / (args.batch * seq_len))
    load_start = os.getloadavg()
    print(f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}; load average "
          f"{load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} on {os.cpu_count()} CPUs", flush=True)

    clock, solves = Clock(), SolveTimer()
    hw = load_hardware("pcm-ibm")
    model = clock.run("build", lambda: build_model(sizes, args.seed))
    n_params = sum(p.numel() for p in model.parameters())  # the tied matrix once
    print(f"model: {model.shape.n_layers} layers, d_model {model.shape.d_model}, vocab {model.shape.vocab_size}, "
          f"{n_params / 1e6:.1f}M parameters (head tied to the embedding)", flush=True)
    calib = token_batches(sizes["vocab_size"], 1, 2, seq_len, args.seed + 1)[0]
    batches = token_batches(sizes["vocab_size"], n_calls, args.batch, seq_len, args.seed + 2)
    amodel = clock.run("program", lambda: analogize(model, hw, seed=args.seed, calibration=calib,
                                                    keep_state_cache=args.keep_state_cache))
    ir_program = solves.take()
    clock.run("drift", lambda: set_drift_time(amodel, args.drift_time))
    ir_drift = solves.take()
    solves.wires.effective_conductance = solves.inner
    layers = analog_layers(amodel)
    tiles = sum(m.tile.g_prog_us.shape[0] for _, m in layers)
    def forward_all(m) -> None:  # each call's logits are dropped before the next (none kept for the clock)
        for x in batches:
            m(x)

    with torch.no_grad():
        clock.run("analog_forward", lambda: forward_all(amodel))
        clock.run("digital_forward", lambda: forward_all(model))
    sparse = sparse_comparison(amodel, hw, args.sparse_tiles) if args.sparse_tiles > 0 else None
    load_end = os.getloadavg()

    ph = clock.phases
    total_s = sum(p["wall_s"] for k, p in ph.items())
    figures = {"program_s": ph["program"]["wall_s"], "total_s": total_s,
               "peak_rss_gb": max(p["peak_rss_gb"] for p in ph.values())}
    ratio = ph["analog_forward"]["wall_s"] / ph["digital_forward"]["wall_s"]
    print(f"analog forward / digital forward: {ratio:.2f}x wall, "
          f"{ph['analog_forward']['cpu_s'] / ph['digital_forward']['cpu_s']:.2f}x CPU")
    print(f"IR-drop solves: {ir_program['arrays']} tiles in {ir_program['wall_s']:.1f} s while programming, "
          f"{ir_drift['arrays']} in {ir_drift['wall_s']:.1f} s at the drift time")
    for key, goal in GOALS.items():
        print(f"{key:12s} measured {figures[key]:9.2f}   goal <= {goal:g}   "
              f"{'met' if figures[key] <= goal else 'NOT met'}")
    print(f"load average at the end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    proj = None
    if not args.quick and sizes != FULL:
        proj = projection(ph, sizes, n_calls * args.batch * seq_len, hw.tile.rows, hw.tile.cols)
        print(f"projected to the full shape ({proj['tiles']} tiles, 16384 tokens; an estimate from this run's CPU "
              f"seconds): " + ", ".join(f"{k} {v:.0f} s" for k, v in proj["wall_2_cores_s"].items())
              + f"; total {proj['total_wall_2_cores_s']:.0f} s on 2 busy cores")
    out = {
        "quick": args.quick, "card": hw.name, "drift_time_s": args.drift_time, "threads": args.threads,
        "keep_state_cache": args.keep_state_cache,
        "cpus": os.cpu_count(), "load_average_start": list(load_start), "load_average_end": list(load_end),
        "model": {**sizes, "n_params": n_params, "tied_head": True, "analog_layers": len(layers),
                  "analog_weights": sum(m.in_features * m.out_features for _, m in layers)},
        "tiles": tiles, "tile_shape": [hw.tile.rows, hw.tile.cols],
        "tokens": n_calls * args.batch * seq_len, "batch": args.batch, "seq_len": seq_len, "calls": n_calls,
        "phases": ph,
        "ir_drop": {"program": ir_program, "drift": ir_drift,
                    "s_per_tile": (ir_program["wall_s"] + ir_drift["wall_s"])
                    / max(ir_program["arrays"] + ir_drift["arrays"], 1),
                    "sparse_comparison": sparse},
        "ratio_analog_to_digital": ratio,
        "ratio_analog_to_digital_cpu": ph["analog_forward"]["cpu_s"] / ph["digital_forward"]["cpu_s"],
        "figures": figures, "goals": GOALS, "goals_met": {k: figures[k] <= g for k, g in GOALS.items()},
        "projected_full": proj,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
