"""Model shapes: one torch-free definition for lm and energy; exact parameter counts against published figures
and the shipped models; custom TOML shapes and model cards with one-line errors."""
import dataclasses
import importlib.util
import json
import subprocess
import sys

import pytest

import analogdiff
from analogdiff import shapes as shapes_mod
from analogdiff.config import ConfigError
from analogdiff.shapes import ModelShape, list_shapes, load_shape

PUBLISHED = {  # shared/REFERENCES.md "Model shapes": layers, d_model, heads, kv heads, d_ff, mlp, vocab, context
    "mdlm-owt": (12, 768, 12, 12, 3072, "gelu", 50258, 1024),
    "sedd-small": (12, 768, 12, 12, 3072, "gelu", 50258, 1024),
    "sedd-medium": (24, 1024, 16, 16, 4096, "gelu", 50258, 1024),
    "llada-8b": (32, 4096, 32, 32, 12288, "swiglu", 126464, 4096),
    "dream-7b": (28, 3584, 28, 4, 18944, "swiglu", 152064, 2048),
    "gpt2-small": (12, 768, 12, 12, 3072, "gelu", 50257, 1024),
    "gpt2-medium": (24, 1024, 16, 16, 4096, "gelu", 50257, 1024),
    "llama3-8b": (32, 4096, 32, 8, 14336, "swiglu", 128256, 8192),
}

# A custom shape with every required key (TOML).
TINY_TOML = """n_layers = 2
d_model = 64
n_heads = 4
n_kv_heads = 2
d_ff = 256
mlp = "swiglu"
vocab_size = 100
context_len = 128
positions = "rotary"
norm = "rmsnorm"
norm_bias = false
bias = ["attn.qkv"]
tied_embeddings = false
cond_dim = 0
"""


# ----------------------------------------------------------------------------- one definition, torch-free

def test_one_definition_exported_everywhere():
    import analogdiff.energy as energy
    import analogdiff.lm.model as lm_model

    assert analogdiff.ModelShape is energy.ModelShape is lm_model.ModelShape is ModelShape
    assert analogdiff.load_shape is energy.load_shape is load_shape
    assert analogdiff.list_shapes is energy.list_shapes is list_shapes
    assert importlib.util.find_spec("analogdiff.energy.shapes") is None   # no second copy
    assert not hasattr(lm_model, "Shape")


def test_shapes_and_energy_import_without_torch():
    code = ("import sys, analogdiff.shapes, analogdiff.energy; "
            "analogdiff.energy.estimate('shakespeare-mdlm', 'pcm-ibm'); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("name", ["shakespeare-mdlm", "shakespeare-ar"])
def test_shipped_count_equals_the_loaded_model(name):
    from analogdiff.lm import load_model

    model = load_model(name)
    shape = load_shape(name)
    assert shape.n_params() == sum(p.numel() for p in model.parameters())
    assert shape == model.shape                                     # the card the loader reads is the shape
    assert shape.positions == "rotary" and shape.source == f"model card {name}.json"
    assert shape.n_params() == model.card["n_params"] == 1_804_480


@pytest.mark.parametrize("name, params", [
    ("gpt2-small", 124_439_808),     # transformers GPT2LMHeadModel.num_parameters() (tied wte/lm_head once)
    ("gpt2-medium", 354_823_168),    # the same count for openai-community/gpt2-medium
    ("llama3-8b", 8_030_261_248),    # Meta-Llama-3-8B model.safetensors.index.json total_size 16,060,522,496 B / 2
    ("dream-7b", 7_615_616_512),     # its Qwen2.5-7B body: index total_size 15,231,233,024 B (bf16) / 2
])
def test_published_counts_exactly(name, params):
    assert load_shape(name).n_params() == params


def _non_embedding(s: ModelShape) -> int:
    """Parameters outside the token embedding and the LM head weight (as LLaDA's and Qwen's tables count)."""
    return s.n_params() - s.vocab_size * s.d_model * (1 if s.tied_embeddings else 2)


def test_llada_count_to_the_digits_published():
    # LLaDA paper (arXiv 2502.09992), architecture table: 8.02 B total, 6.98 B non-embedding parameters
    s = load_shape("llada-8b")
    assert abs(s.n_params() - 8.02e9) <= 0.005e9
    assert abs(_non_embedding(s) - 6.98e9) <= 0.005e9


def test_mdlm_owt_count_from_the_dit_modules():
    # kuleshov-group/mdlm models/dit.py, small config (768, 12 blocks, 12 heads, cond 128), vocab 50258:
    d, c, v, nb = 768, 128, 50258, 12
    embed = v * d                                                    # EmbeddingLayer: Parameter (vocab, dim)
    sigma_map = (256 * c + c) + (c * c + c)                          # TimestepEmbedder MLP, biases
    block = (d                                                       # norm1: LayerNorm weight only
             + d * 3 * d + d * d                                     # attn_qkv, attn_out: bias=False
             + d                                                     # norm2
             + (d * 4 * d + 4 * d) + (4 * d * d + d)                 # MLP with biases
             + (c * 6 * d + 6 * d))                                  # adaLN_modulation
    final = d + (d * v + v) + (c * 2 * d + 2 * d)                    # norm_final, linear, adaLN_modulation
    total = embed + sigma_map + nb * block + final
    s = load_shape("mdlm-owt")
    assert s.n_params() == total == 169_627_218
    # the HF model card: "approximately 130 million non-embedding parameters"
    assert (s.n_params() - embed) / 130e6 == pytest.approx(1.0, abs=0.01)
    assert load_shape("sedd-small").n_params() == total               # the same DDiT


def test_count_parts_by_hand():
    s = ModelShape(name="x", n_layers=1, d_model=8, n_heads=2, n_kv_heads=1, d_ff=16, mlp="gelu", vocab_size=4,
                   context_len=8, positions="learned", norm="layernorm", norm_bias=True,
                   bias=["head", "attn.qkv"], tied_embeddings=True, cond_dim=0)
    assert s.bias == ("attn.qkv", "head")                            # put in layer order
    assert s.weight_params() == 8 * 16 + 8 * 8 + 8 * 16 + 16 * 8 + 8 * 4
    assert s.bias_params() == 16 + 4
    assert s.embedding_params() == 4 * 8 + 8 * 8                     # tokens + learned positions
    assert s.norm_params() == 3 * 2 * 8                              # 2 per block + final, gain and shift
    assert s.n_params() == 480 + 20 + 96 + 48 - 4 * 8                # the tied head counted once
    rotary = dataclasses.replace(s, positions="rotary", norm="rmsnorm", norm_bias=False)
    assert s.n_params() - rotary.n_params() == 8 * 8 + 3 * 8         # no position table, no norm shifts


# ----------------------------------------------------------------------------- published facts

@pytest.mark.parametrize("name", PUBLISHED)
def test_published_shapes_match_the_reference_table(name):
    s = load_shape(name)
    assert (s.n_layers, s.d_model, s.n_heads, s.n_kv_heads, s.d_ff, s.mlp, s.vocab_size,
            s.context_len) == PUBLISHED[name]
    assert s.source and name in list_shapes()
    assert name.split("-")[0] in s.summary().lower() or "L d=" in s.summary()
    assert s.positions == ("learned" if name.startswith("gpt2") else "rotary")


def test_llama_linear_layers():
    ly = {x.kind: x for x in load_shape("llama3-8b").linear_layers()}
    assert (ly["attn.qkv"].in_features, ly["attn.qkv"].out_features) == (4096, (32 + 2 * 8) * 128)
    assert ly["mlp.gate"].out_features == ly["mlp.up"].out_features == 14336
    assert (ly["head"].out_features, ly["head"].copies, ly["head"].per) == (128256, 1, "head")
    assert "cond.adaln" not in ly and not any(x.bias for x in ly.values())


def test_dit_time_conditioning_layers():
    ly = {x.kind: x for x in load_shape("mdlm-owt").linear_layers()}
    assert (ly["cond.mlp1"].in_features, ly["cond.mlp1"].out_features) == (256, 128)
    assert (ly["cond.adaln"].out_features, ly["cond.adaln"].copies, ly["cond.adaln"].per) == (6 * 768, 12, "pass")
    assert [k for k, x in ly.items() if not x.bias] == ["attn.qkv", "attn.out"]


# ----------------------------------------------------------------------------- custom shapes and cards

def test_custom_shape_from_toml(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY_TOML)
    s = load_shape(p)
    assert s.name == "tiny" and s.n_kv_heads == 2 and s.head_dim == 16 and s.bias == ("attn.qkv",)
    assert shapes_mod.shape_from_dict({"name": "tiny", **s.to_dict()}) == s   # to_dict round-trips


def _edit(text, key, line):
    out = [ln for ln in text.splitlines() if not ln.startswith(f"{key} =")]
    return "\n".join(out + ([line] if line else [])) + "\n"


@pytest.mark.parametrize("key, line, message", [
    ("n_layers", "n_layers = 0", "shape.n_layers"),
    ("n_heads", "n_heads = 5", "shape.n_heads"),
    ("n_kv_heads", "n_kv_heads = 3", "shape.n_kv_heads"),
    ("mlp", "mlp = 'relu'", "shape.mlp"),
    ("positions", "positions = 'alibi'", "shape.positions"),
    ("norm", "norm = 'batchnorm'", "shape.norm"),
    ("norm_bias", "norm_bias = 1", "shape.norm_bias"),
    ("bias", "bias = 'all'", "shape.bias"),
    ("bias", "bias = ['attn.qkv', 'attn.qkv']", "shape.bias: holds duplicates"),
    ("bias", "bias = ['cond.adaln']", "shape.bias: 'cond.adaln' is not a linear layer"),
    ("tied_embeddings", "tied_embeddings = 'yes'", "shape.tied_embeddings"),
    ("cond_dim", "cond_dim = -1", "shape.cond_dim"),
    ("bogus", "bogus = 1", "unknown key 'bogus'"),
    ("positions", None, "missing key 'positions'"),
    ("bias", None, "missing key 'bias'"),
    ("n_layers", "n_layers = = 1", "line"),
])
def test_bad_custom_shapes(tmp_path, key, line, message):
    p = tmp_path / "bad.toml"
    p.write_text(_edit(TINY_TOML, key, line))
    with pytest.raises(ConfigError, match=message) as e:
        load_shape(p)
    assert "\n" not in str(e.value)


def test_unknown_shape_lists_the_names():
    with pytest.raises(ConfigError) as e:
        load_shape("gpt5")
    assert all(n in str(e.value) for n in PUBLISHED)


def test_model_card_shape(tmp_path, monkeypatch):
    """The estimator reads a card's "shape" object: every key of ModelShape, nothing else."""
    shape = load_shape("shakespeare-mdlm")
    card = {"kind": "mdlm", "shape": dict(shape.to_dict(), d_model=128, vocab_size=66)}
    p = tmp_path / "shakespeare-mdlm.json"
    p.write_text(json.dumps(card))
    monkeypatch.setattr(shapes_mod, "_checkpoint_card", lambda n: p if n == "shakespeare-mdlm" else None)
    assert "shakespeare-mdlm" in list_shapes() and "shakespeare-ar" not in list_shapes()
    s = load_shape("shakespeare-mdlm")
    assert (s.n_layers, s.d_model, s.vocab_size, s.positions) == (4, 128, 66, "rotary")
    assert load_shape(p) == s                                      # also by path
    del card["shape"]["norm"]
    p.write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="missing key 'norm'"):
        load_shape(p)


def test_cli_names_the_bad_card_field(tmp_path):
    """A model card whose shape lacks a key: one line naming it, exit 2 (estimate reads the card's shape;
    generate loads the model from it)."""
    import shutil

    from analogdiff.lm.checkpoint import CHECKPOINT_DIR

    for f in ("shakespeare-ar.json", "shakespeare-ar.safetensors"):
        shutil.copy(CHECKPOINT_DIR / f, tmp_path / f)
    card_path = tmp_path / "shakespeare-ar.json"
    card = json.loads(card_path.read_text())
    del card["shape"]["positions"]
    card_path.write_text(json.dumps(card))
    for args in (["estimate", "--model", str(card_path), "--hardware", "pcm-ibm", "--decode", "ar"],
                 ["generate", "--model", str(tmp_path / "shakespeare-ar.safetensors"), "--hardware", "ideal"]):
        out = subprocess.run([sys.executable, "-m", "analogdiff", *args], capture_output=True, text=True)
        assert out.returncode == 2, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "missing key 'positions'" in out.stderr, out.stderr
