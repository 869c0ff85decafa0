"""An 8B-parameter analog forward on one GPU: a LLaDA-8B-shaped model with random weights on pcm-ibm, every
effect on, against its digital forward, in one run. Prepared for a GPU machine; never run by the tests.

    python benchmarks/bench_gpu_sim.py                       # LLaDA-8B shape on cuda, bf16 digital weights
    python benchmarks/bench_gpu_sim.py --shape tiny --device cpu   # the same script logic on a CPU, seconds

Steps: build the model (``analogdiff/lm/hub/llada.py``, shape ``llada-8b`` of ``analogdiff/shapes.py``, random
weights, ``--dtype`` bf16 by default: the digital reference and the digital parts of the analog model);
record calibration inputs of every linear layer on a short batch; program the layers one at a time on the
device (``AnalogLinear`` with ``device=``: programming noise, exact IR drop by ``wires_torch``, drift to
``--drift-time`` with global compensation, 1/f read noise from the default bfloat16 variance, 8-bit static
DAC and calibrated 8-bit ADC per 256×256 tile), each layer then frees its programming state
(``release_programming``) so that only the layer matrices stay: float32 effective conductances and the
bfloat16 read-noise variance. Then it times the digital and the analog forward of ``--batch`` ×
``--seq-len`` tokens (medians of ``--reps`` after one warm-up) and prints tokens/s, the ratio, peak device
memory and the memory estimate per component it printed before starting. The last line is one JSON object.

Without a CUDA device and ``--device cuda`` it stops with one line (exit 2).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

TINY = dict(n_layers=2, d_model=64, n_heads=4, n_kv_heads=4, d_ff=192, vocab_size=300, context_len=128)
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _shape_config(name: str, n_layers: int | None) -> dict:
    """config.json fields of a LLaDA model of the named shape (``analogdiff.shapes`` or TINY)."""
    if name == "tiny":
        s = dict(TINY)
    else:
        from analogdiff.shapes import load_shape

        sh = load_shape(name)
        s = dict(n_layers=sh.n_layers, d_model=sh.d_model, n_heads=sh.n_heads, n_kv_heads=sh.n_kv_heads,
                 d_ff=sh.d_ff, vocab_size=sh.vocab_size, context_len=sh.context_len)
    if n_layers is not None:
        s["n_layers"] = n_layers
    return {"model_type": "llada", "d_model": s["d_model"], "n_layers": s["n_layers"], "n_heads": s["n_heads"],
            "n_kv_heads": s["n_kv_heads"], "mlp_hidden_size": s["d_ff"], "vocab_size": s["vocab_size"],
            "embedding_size": s["vocab_size"], "max_sequence_length": s["context_len"], "block_type": "llama",
            "layer_norm_type": "rms", "activation_type": "silu", "rope": True, "rope_theta": 500000.0,
            "rms_norm_eps": 1e-5, "include_bias": False, "weight_tying": False}


def build_model(config: dict, device: torch.device, dtype: torch.dtype, seed: int):
    """A LLaDA model with random weights (nn.Linear's default init), built directly on ``device``."""
    from analogdiff.lm.hub import llada
    from analogdiff.lm.hub.files import Config
    from analogdiff.shapes import ModelShape

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config))
        cfg = Config(path)
        shape = ModelShape(**llada.shape_fields(cfg, "llada-random"), source="bench_gpu_sim random weights")
        torch.manual_seed(seed)
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                model = llada.LLaDA(cfg, shape, {"architecture": "llada", "source": "random"})
        finally:
            torch.set_default_dtype(default)
    return model.eval().requires_grad_(False), shape


class ColumnSplit(torch.nn.Module):
    """One nn.Linear as column blocks of at most ``max_out`` outputs (a multiple of the tile width): on a card
    with per-column weight scales, as pcm-ibm, the same tiles, ranges and noise laws as the whole layer —
    only programming memory is per block (the 126k-output head of LLaDA would need ~100 GB at once)."""

    def __init__(self, lin: torch.nn.Linear, max_out: int):
        super().__init__()
        w, b = lin.weight, lin.bias
        self.blocks = torch.nn.ModuleList()
        for o in range(0, w.shape[0], max_out):
            part = torch.nn.Linear(w.shape[1], min(max_out, w.shape[0] - o), bias=b is not None,
                                   device=w.device, dtype=w.dtype)
            part.weight.data = w.data[o:o + max_out]
            if b is not None:
                part.bias.data = b.data[o:o + max_out]
            self.blocks.append(part.requires_grad_(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([blk(x) for blk in self.blocks], dim=-1)


def split_columns(model: torch.nn.Module, max_out: int) -> None:
    """Replace (in place) every nn.Linear with more than ``max_out`` outputs by a ``ColumnSplit``."""
    for name, mod in list(model.named_modules()):
        if isinstance(mod, torch.nn.Linear) and mod.out_features > max_out:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, ColumnSplit(mod, max_out))


def memory_estimate(model, hw, dtype: torch.dtype, tokens: int) -> dict:
    """Bytes per component, from the shapes alone (printed before anything is allocated)."""
    from analogdiff.crossbar.mapping import tile_counts

    t = hw.tile
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    digital_b = sum(p.numel() for p in model.parameters()) * torch.finfo(dtype).bits // 8
    w_b = var_b = 0
    worst_program_b = worst_mvm_b = 0
    var_bytes = 4 if hw.device.read_noise_exact else 2
    for lin in linears:
        out_f, in_f = lin.weight.shape
        r, c = tile_counts(in_f, out_f, t.rows, t.cols)
        width = in_f if r == 1 else t.rows
        cells = r * width * t.bit_slices * out_f  # layer-matrix entries (R, width, S·out)
        w_b += 4 * cells
        var_b += var_bytes * cells if hw.device.read_noise is not None else 0
        k = t.bit_slices * r * c  # tiles
        devices = k * t.rows * t.cols * 2
        # programming: float64 targets, programmed conductances, spreads, normals, drift exponents, masks,
        # two cached states (effective matrix and variance, float64) — about 100 B per device, plus the
        # IR-drop sweep of 256 tiles at a time: outputs (256, 2·cols, rows), five (256, rows, rows) float64
        program_b = 100 * devices + 8 * min(k, 256) * (2 * t.cols * t.rows + 5 * t.rows * t.rows)
        worst_program_b = max(worst_program_b, program_b)
        # one MVM: partial sums y (P, R, N, S·out) float32 + their variance (bf16) + DAC planes and squares
        mvm_b = tokens * (r * t.bit_slices * out_f * (4 + var_bytes) + r * width * 8)
        worst_mvm_b = max(worst_mvm_b, mvm_b)
    return {"digital_weights": digital_b, "analog_layer_matrices_f32": w_b, "read_noise_variance": var_b,
            "programming_one_layer_peak": worst_program_b, "one_mvm_peak": worst_mvm_b,
            "logits": tokens * model.shape.vocab_size * 4,
            "total": digital_b + w_b + var_b + max(worst_program_b, worst_mvm_b) + tokens * model.shape.vocab_size * 4}


def analogize_lean(model, hw, device, calib_ids: torch.Tensor, drift_time_s: float, seed: int,
                   log, kernels: str = "auto") -> torch.nn.Module:
    """``model`` with every nn.Linear replaced, in place and one at a time, by a programmed ``AnalogLinear``
    at ``drift_time_s`` whose programming state is then released (the memory of an 8B model)."""
    from analogdiff.crossbar.layers import AnalogLinear, _record_inputs

    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    recorded = _record_inputs(model, calib_ids, 512, [(n, model.get_submodule(n)) for n in names])
    t0 = time.perf_counter()
    for index, name in enumerate(names):  # no list of the modules: each digital weight is freed when replaced
        lin = model.get_submodule(name)
        layer = AnalogLinear(lin.weight, lin.bias, hw, name=name, seed=seed, index=index,
                             x_calib=recorded.pop(name, None), device=device)
        del lin
        layer.set_drift_time(drift_time_s)
        layer.release_programming()
        if kernels == "torch":
            layer.kernels = "torch"
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, layer)
        if index % 16 == 15 or index == len(names) - 1:
            log(f"  programmed {index + 1}/{len(names)} matrices in {time.perf_counter() - t0:.0f} s")
    return model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, reps: int, device: torch.device) -> float:
    with torch.no_grad():
        fn()
        _sync(device)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="llada-8b", help="a model shape of analogdiff.shapes, or 'tiny'")
    ap.add_argument("--n-layers", type=int, default=None, help="override the shape's layer count")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES),
                    help="digital weights and activations (the analog matrices are float32)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq-len", type=int, default=None,
                    help="tokens per sequence (default 1024, or the shape's context where it is shorter)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--drift-time", type=float, default=3600.0, help="seconds after programming")
    ap.add_argument("--card", default="pcm-ibm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-out", type=int, default=4096,
                    help="program layers in column blocks of at most this many outputs (memory)")
    ap.add_argument("--kernels", default="auto", choices=["auto", "torch"],
                    help="torch: the torch kernels even on a CPU (to check the GPU path's logic here)")
    args = ap.parse_args(argv)

    from analogdiff import checks
    from analogdiff.checks import ConfigError

    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise SystemExit(f"bench_gpu_sim: --device {args.device!r} is not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu_sim: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU "
              "machine, or check the script with --shape tiny --device cpu", file=sys.stderr)
        raise SystemExit(2)
    try:
        for key in ("batch", "reps", "max_out"):
            checks.integer(f"--{key.replace('_', '-')}", getattr(args, key), 1, 1 << 20)
        if args.n_layers is not None:
            checks.integer("--n-layers", args.n_layers, 1, 1024)
        checks.drift_time_s("--drift-time", args.drift_time)
        import analogdiff as ad

        hw = ad.load_hardware(args.card)
        if hw.kind != "analog":
            raise ConfigError(f"--card: {args.card} is not an analog card")
        config = _shape_config(args.shape, args.n_layers)
        context = config["max_sequence_length"]
        if args.seq_len is None:
            args.seq_len = min(1024, context)
        checks.integer("--seq-len", args.seq_len, 1, context)
    except ConfigError as e:
        print(f"bench_gpu_sim: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    warnings.filterwarnings("ignore")
    log = lambda s: print(s, flush=True)  # noqa: E731
    dtype = DTYPES[args.dtype]
    tokens = args.batch * args.seq_len
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    t0 = time.perf_counter()
    model, shape = build_model(config, device, dtype, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    split_columns(model, args.max_out)
    log(f"model: LLaDA, shape {args.shape} ({shape.n_layers} layers, d {shape.d_model}, ff {shape.d_ff}, "
        f"vocab {shape.vocab_size}), {n_params / 1e9:.3f} B random parameters in {args.dtype} on {device}, "
        f"built in {time.perf_counter() - t0:.1f} s")
    est = memory_estimate(model, hw, dtype, tokens)
    log("memory estimate (GiB): " + ", ".join(f"{k} {v / 2**30:.2f}" for k, v in est.items()))
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, shape.vocab_size - 1, (args.batch, args.seq_len), generator=gen).to(device)
    calib = torch.randint(0, shape.vocab_size - 1, (1, min(args.seq_len, 256)), generator=gen).to(device)

    digital_s = _time(lambda: model(ids), args.reps, device)
    log(f"digital forward: {digital_s:.3f} s, {tokens / digital_s:.1f} tokens/s")
    digital_peak = _peak_bytes(device)
    with torch.no_grad():
        ref = model(ids).float()

    t0 = time.perf_counter()
    analogize_lean(model, hw, device, calib, args.drift_time, args.seed, log, args.kernels)  # in place: the digital copy is gone
    _sync(device)
    setup_s = time.perf_counter() - t0
    log(f"analog setup (program, IR drop at t = 0 and {args.drift_time:g} s, calibration): {setup_s:.1f} s")
    analog_s = _time(lambda: model(ids), args.reps, device)
    with torch.no_grad():
        out = model(ids).float()
    rel_err = float((out - ref).std() / ref.std())
    peak = _peak_bytes(device)
    ratio = analog_s / digital_s
    log(f"analog forward: {analog_s:.3f} s, {tokens / analog_s:.1f} tokens/s, ratio to digital {ratio:.2f}; "
        f"logit error std/std {rel_err:.3f}; peak memory {peak / 2**30:.2f} GiB (estimate "
        f"{est['total'] / 2**30:.2f} GiB; goal: fits one 80 GB GPU)")
    result = {"shape": args.shape, "n_layers": shape.n_layers, "n_params": n_params, "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "dtype": args.dtype, "card": hw.name, "tokens": tokens, "drift_time_s": args.drift_time,
              "digital_s": digital_s, "analog_s": analog_s, "ratio": ratio,
              "tokens_per_s_digital": tokens / digital_s, "tokens_per_s_analog": tokens / analog_s,
              "analog_setup_s": setup_s, "peak_memory_bytes": peak, "digital_peak_memory_bytes": digital_peak,
              "memory_estimate_bytes": est, "logit_rel_err": rel_err if math.isfinite(rel_err) else None,
              "fits_80gb": peak < 80e9}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
