"""benchmarks/bench_gpu.py without a GPU: it refuses in one line, and its decoder's KV cache is exact."""
import importlib.util
from pathlib import Path

import pytest
import torch

from analogdiff.energy import ModelShape

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)                     # importing needs no CUDA
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the script would run")
def test_refuses_without_a_gpu(capsys):
    assert _script().main(["--batches", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU" in err


@pytest.mark.parametrize("positions, mlp", [("rotary", "swiglu"), ("learned", "gelu")])
def test_cached_decode_matches_a_full_forward(positions, mlp):
    bench = _script()
    shape = ModelShape(name="t", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, d_ff=48, mlp=mlp,
                       vocab_size=50, context_len=16, positions=positions, norm="rmsnorm", norm_bias=False, bias=[],
                       tied_embeddings=False, cond_dim=0)
    tokens = torch.randint(0, 50, (3, 9), generator=torch.Generator().manual_seed(1))
    cached = bench.Decoder(shape, 3, 9, "cpu", torch.float32, seed=0)
    cached.step(tokens[:, :6], 0)
    for t in range(6, 8):
        cached.step(tokens[:, t:t + 1], t)
    last = cached.step(tokens[:, 8:9], 8)            # (3, V): logits after 9 tokens, 4 passes, cache reused
    full = bench.Decoder(shape, 3, 9, "cpu", torch.float32, seed=0).step(tokens, 0)   # one causal pass
    torch.testing.assert_close(last, full, rtol=1e-4, atol=1e-5)
