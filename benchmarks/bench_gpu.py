"""Measured tokens/s and J/token of a transformer of known shape on this machine's GPU: a calibration file a
GPU card can cite. Never needed for tests; without a CUDA GPU it refuses (one line, exit code 2).

    python benchmarks/bench_gpu.py [--shape llama3-8b] [--batches 1,8,32,128] [--prompt-len 256]
                                   [--gen-len 128] [--layers N] [--device 0] [--seed 0] [--out gpu_calibration.json]

The model is the shape's decoder (``analogdiff.energy.load_shape``: RMSNorm, fused QKV with grouped K/V heads,
rotary or learned positions, SDPA attention over a static KV cache, SwiGLU or GELU MLP, LM head, greedy
sampling; no time conditioning) with random bf16 weights, in eager PyTorch (no CUDA graphs, no paged
attention: more host overhead per step than a serving stack). Per batch size it prefills ``prompt_len``
tokens and decodes ``gen_len`` more, and
reports tokens/s, J per generated token (prefill included, as ML.ENERGY counts it) and average board power,
plus the decode steps alone. Energy comes from NVML's energy counter (``pynvml``, Volta and newer), else from
``nvidia-smi`` power readings every 50 ms integrated over time. Idle power (clocked, no kernels, 3 s) is
measured first: the card's ``power_const_w``.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class EnergyMeter:
    """Board energy (J) between start() and stop(): NVML's counter if pynvml is present, else nvidia-smi."""

    def __init__(self, index: int):
        self.index, self.nvml = index, None
        try:
            import pynvml
            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)      # refuses on pre-Volta GPUs
            self.source = "nvml-energy-counter"
        except Exception:                                                # no pynvml, or no counter
            self.nvml, self.source = None, "nvidia-smi-power-polling-50ms"

    def info(self) -> dict:
        q = subprocess.run(["nvidia-smi", f"--id={self.index}", "--query-gpu=name,driver_version,power.limit",
                            "--format=csv,noheader,nounits"], capture_output=True, text=True, check=True)
        name, driver, limit = (s.strip() for s in q.stdout.strip().split(","))
        return {"gpu": name, "driver": driver, "power_limit_w": float(limit), "energy_source": self.source}

    def start(self) -> None:
        self.t0 = time.perf_counter()
        if self.nvml:
            self.e0 = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)   # mJ
            return
        self.samples: list[tuple[float, float]] = []
        self.proc = subprocess.Popen(["nvidia-smi", f"--id={self.index}", "--query-gpu=power.draw",
                                      "--format=csv,noheader,nounits", "-lms", "50"],
                                     stdout=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line)))
            except ValueError:
                continue

    def stop(self) -> tuple[float, float]:
        """(energy J, seconds) since start()."""
        t1 = time.perf_counter()
        if self.nvml:
            return (self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - self.e0) / 1e3, t1 - self.t0
        self.proc.terminate()
        self.proc.wait()
        self.reader.join(timeout=1.0)
        s = [(t, p) for t, p in self.samples if self.t0 <= t <= t1]
        if len(s) < 2:
            raise RuntimeError("nvidia-smi returned fewer than 2 power readings; run a longer --gen-len")
        joules = sum(0.5 * (p0 + p1) * (t1_ - t0_) for (t0_, p0), (t1_, p1) in zip(s, s[1:]))
        return joules * (t1 - self.t0) / (s[-1][0] - s[0][0]), t1 - self.t0


class Decoder:
    """The shape's autoregressive decoder with random weights (no time conditioning): ``step(tokens, pos)``
    feeds (B, T) tokens at positions pos..pos+T−1, writes their K/V into a static cache and returns the
    logits (B, V) of the last position."""

    def __init__(self, shape, batch: int, max_len: int, device, dtype, seed: int):
        import torch
        self.torch, self.s = torch, shape
        g = torch.Generator(device=device).manual_seed(seed)
        d, hd, kvh = shape.d_model, shape.head_dim, shape.n_kv_heads

        def w(i: int, o: int):                                      # (out, in), std 1/sqrt(in)
            return torch.randn(o, i, generator=g, device=device, dtype=dtype) / math.sqrt(i)

        mlp_in = 2 * shape.d_ff if shape.mlp == "swiglu" else shape.d_ff
        self.layers = [dict(qkv=w(d, (shape.n_heads + 2 * kvh) * hd), out=w(shape.n_heads * hd, d),
                            up=w(d, mlp_in), down=w(shape.d_ff, d)) for _ in range(shape.n_layers)]
        self.embed = torch.randn(shape.vocab_size, d, generator=g, device=device, dtype=dtype)
        self.head = w(d, shape.vocab_size)
        self.pos_emb = (torch.randn(max_len, d, generator=g, device=device, dtype=dtype)
                        if shape.positions == "learned" else None)
        self.cache = torch.zeros(shape.n_layers, 2, batch, kvh, max_len, hd, device=device, dtype=dtype)
        inv = 1.0 / 10000 ** (torch.arange(0, hd, 2, device=device, dtype=torch.float32) / hd)
        ang = torch.arange(max_len, device=device, dtype=torch.float32)[:, None] * inv   # (L, hd/2)
        self.cos, self.sin = ang.cos().to(dtype), ang.sin().to(dtype)

    def _rope(self, x, pos: int):                                   # (B, h, T, hd)
        if self.pos_emb is not None:
            return x
        T = x.shape[2]
        c, s = self.cos[pos:pos + T], self.sin[pos:pos + T]
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return self.torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)

    def step(self, tokens, pos: int):
        torch, s, F = self.torch, self.s, self.torch.nn.functional
        B, T = tokens.shape
        h, kvh, hd = s.n_heads, s.n_kv_heads, s.head_dim
        x = self.embed[tokens]                                      # (B, T, d): a gather, not a stream
        if self.pos_emb is not None:
            x = x + self.pos_emb[pos:pos + T]
        for i, ly in enumerate(self.layers):
            q, k, v = F.linear(F.rms_norm(x, (s.d_model,)), ly["qkv"]).split((h * hd, kvh * hd, kvh * hd), -1)
            q = self._rope(q.view(B, T, h, hd).transpose(1, 2), pos)
            k = self._rope(k.view(B, T, kvh, hd).transpose(1, 2), pos)
            self.cache[i, 0, :, :, pos:pos + T] = k
            self.cache[i, 1, :, :, pos:pos + T] = v.view(B, T, kvh, hd).transpose(1, 2)
            kk, vv = self.cache[i, 0, :, :, :pos + T], self.cache[i, 1, :, :, :pos + T]
            a = F.scaled_dot_product_attention(q, kk, vv, is_causal=T > 1 and pos == 0, enable_gqa=kvh != h)
            x = x + F.linear(a.transpose(1, 2).reshape(B, T, h * hd), ly["out"])
            u = F.linear(F.rms_norm(x, (s.d_model,)), ly["up"])
            u = F.silu(u[..., :s.d_ff]) * u[..., s.d_ff:] if s.mlp == "swiglu" else F.gelu(u)
            x = x + F.linear(u, ly["down"])
        return F.linear(F.rms_norm(x[:, -1], (s.d_model,)), self.head)   # (B, V)


def generate(model, batch: int, prompt_len: int, gen_len: int, seed: int):
    """Prefill a random prompt, then greedy-decode: ``gen_len`` generated tokens (B, gen_len)."""
    torch = model.torch
    g = torch.Generator(device=model.cache.device).manual_seed(seed)
    prompt = torch.randint(0, model.s.vocab_size, (batch, prompt_len), generator=g, device=model.cache.device)
    out = [model.step(prompt, 0).argmax(-1)]
    for t in range(gen_len - 1):
        out.append(model.step(out[-1][:, None], prompt_len + t).argmax(-1))
    return torch.stack(out, dim=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="llama3-8b")
    p.add_argument("--batches", default="1,8,32,128")
    p.add_argument("--prompt-len", type=int, default=256)
    p.add_argument("--gen-len", type=int, default=128)
    p.add_argument("--layers", type=int, default=None, help="fewer blocks than the shape (recorded)")
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="gpu_calibration.json")
    a = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench_gpu: torch is not installed; run it where torch with CUDA is", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU is visible (torch.cuda.is_available() is False); run it on a GPU machine",
              file=sys.stderr)
        return 2
    import dataclasses

    from analogdiff.energy import load_shape

    shape = load_shape(a.shape)
    if a.layers is not None:
        shape = dataclasses.replace(shape, n_layers=a.layers)
    batches = [int(b) for b in a.batches.split(",")]
    dev = torch.device("cuda", a.device)
    torch.cuda.set_device(dev)
    meter = EnergyMeter(a.device)
    out = {**meter.info(), "torch": torch.__version__, "cuda": torch.version.cuda, "shape": shape.to_dict(),
           "dtype": "bf16", "prompt_len": a.prompt_len, "gen_len": a.gen_len, "seed": a.seed, "runs": []}
    time.sleep(1.0)
    meter.start()
    time.sleep(3.0)
    e, t = meter.stop()
    out["idle_power_w"] = e / t
    for b in batches:
        model = Decoder(shape, b, a.prompt_len + a.gen_len, dev, torch.bfloat16, a.seed)
        generate(model, b, a.prompt_len, min(a.gen_len, 8), a.seed)   # warm-up (kernels, allocator)
        torch.cuda.synchronize()
        meter.start()
        generate(model, b, a.prompt_len, a.gen_len, a.seed)
        torch.cuda.synchronize()
        e_all, t_all = meter.stop()
        meter.start()                                                # the decode steps alone
        nxt = torch.zeros(b, dtype=torch.long, device=dev)
        for i in range(a.gen_len - 1):
            nxt = model.step(nxt[:, None], a.prompt_len + i).argmax(-1)
        torch.cuda.synchronize()
        e_dec, t_dec = meter.stop()
        n, n_dec = b * a.gen_len, b * (a.gen_len - 1)
        run = {"batch": b, "seconds": t_all, "tokens_per_s": n / t_all, "j_per_token": e_all / n,
               "avg_power_w": e_all / t_all, "decode_tokens_per_s": n_dec / t_dec,
               "decode_j_per_token": e_dec / n_dec, "decode_avg_power_w": e_dec / t_dec}
        out["runs"].append(run)
        print(json.dumps(run), flush=True)
        del model
        torch.cuda.empty_cache()
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"written: {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
