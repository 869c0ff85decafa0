"""Published checkpoint formats: tiny random checkpoints written here in the published layouts (config.json keys,
safetensors parameter names, a BPE tokenizer.json), loaded through ``load_model`` and checked against a plain
reference forward written from each published architecture, parameter counts by formula, the ideal card, and
one-line errors for bad directories."""
import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import analogdiff as ad
from analogdiff.lm import load_model
from analogdiff.lm.sampling import generate_ids

TEXT = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
        "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n")
MASK_TOKEN = "<|mdm_mask|>"


# --------------------------------------------------------------------------- files in the published layouts
def write_tokenizer(directory, with_mask: bool = False) -> int:
    """A byte-level BPE tokenizer.json trained on TEXT (GPT-2 style); returns its number of tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=60, show_progress=False))
    if with_mask:
        tok.add_special_tokens([MASK_TOKEN])
    tok.save(str(directory / "tokenizer.json"))
    return tok.get_vocab_size()


def rnd(gen, *shape, scale=0.3):
    return torch.randn(shape, generator=gen) * scale


def gain(gen, n):
    return 1.0 + rnd(gen, n, scale=0.1)


def gpt2_tensors(c, gen, prefix="transformer."):
    d, f, V, P = c["n_embd"], c["n_inner"] or 4 * c["n_embd"], c["vocab_size"], c["n_positions"]
    t = {f"{prefix}wte.weight": rnd(gen, V, d), f"{prefix}wpe.weight": rnd(gen, P, d),
         f"{prefix}ln_f.weight": gain(gen, d), f"{prefix}ln_f.bias": rnd(gen, d, scale=0.1)}
    for i in range(c["n_layer"]):
        h = f"{prefix}h.{i}."
        t.update({h + "ln_1.weight": gain(gen, d), h + "ln_1.bias": rnd(gen, d, scale=0.1),
                  h + "attn.c_attn.weight": rnd(gen, d, 3 * d), h + "attn.c_attn.bias": rnd(gen, 3 * d, scale=0.1),
                  h + "attn.c_proj.weight": rnd(gen, d, d), h + "attn.c_proj.bias": rnd(gen, d, scale=0.1),
                  h + "ln_2.weight": gain(gen, d), h + "ln_2.bias": rnd(gen, d, scale=0.1),
                  h + "mlp.c_fc.weight": rnd(gen, d, f), h + "mlp.c_fc.bias": rnd(gen, f, scale=0.1),
                  h + "mlp.c_proj.weight": rnd(gen, f, d), h + "mlp.c_proj.bias": rnd(gen, d, scale=0.1)})
        if not prefix:  # old checkpoints carry the causal-mask buffers
            t[h + "attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
    return t


def llama_tensors(c, gen, qkv_bias=False):
    d, f, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = d // nh
    t = {"model.embed_tokens.weight": rnd(gen, V, d), "model.norm.weight": gain(gen, d),
         "lm_head.weight": rnd(gen, V, d)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t.update({p + "input_layernorm.weight": gain(gen, d), p + "post_attention_layernorm.weight": gain(gen, d),
                  p + "self_attn.q_proj.weight": rnd(gen, nh * hd, d),
                  p + "self_attn.k_proj.weight": rnd(gen, nkv * hd, d),
                  p + "self_attn.v_proj.weight": rnd(gen, nkv * hd, d),
                  p + "self_attn.o_proj.weight": rnd(gen, d, nh * hd),
                  p + "mlp.gate_proj.weight": rnd(gen, f, d), p + "mlp.up_proj.weight": rnd(gen, f, d),
                  p + "mlp.down_proj.weight": rnd(gen, d, f)})
        if qkv_bias:
            for n, width in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
                t[p + f"self_attn.{n}_proj.bias"] = rnd(gen, width, scale=0.1)
    return t


def llada_tensors(c, gen):
    d, f, V = c["d_model"], c["mlp_hidden_size"], c["embedding_size"]
    hd, nkv = d // c["n_heads"], c["n_kv_heads"]
    p = "model.transformer."
    t = {p + "wte.weight": rnd(gen, V, d), p + "ln_f.weight": gain(gen, d), p + "ff_out.weight": rnd(gen, V, d)}
    for i in range(c["n_layers"]):
        b = f"{p}blocks.{i}."
        t.update({b + "attn_norm.weight": gain(gen, d), b + "ff_norm.weight": gain(gen, d),
                  b + "q_proj.weight": rnd(gen, d, d), b + "k_proj.weight": rnd(gen, nkv * hd, d),
                  b + "v_proj.weight": rnd(gen, nkv * hd, d), b + "attn_out.weight": rnd(gen, d, d),
                  b + "ff_proj.weight": rnd(gen, f, d), b + "up_proj.weight": rnd(gen, f, d),
                  b + "ff_out.weight": rnd(gen, d, f)})
    return t


def mdlm_tensors(c, gen):
    d, cd, V, hd = c["hidden_dim"], c["cond_dim"], c["vocab_size"], c["hidden_dim"] // c["n_heads"]
    p = "backbone."
    t = {p + "vocab_embed.embedding": rnd(gen, V, d),
         p + "sigma_map.mlp.0.weight": rnd(gen, cd, 256, scale=0.1), p + "sigma_map.mlp.0.bias": rnd(gen, cd),
         p + "sigma_map.mlp.2.weight": rnd(gen, cd, cd), p + "sigma_map.mlp.2.bias": rnd(gen, cd),
         p + "rotary_emb.inv_freq": 1.0 / 10000 ** (torch.arange(0, hd, 2).float() / hd),
         p + "output_layer.norm_final.weight": gain(gen, d), p + "output_layer.linear.weight": rnd(gen, V, d),
         p + "output_layer.linear.bias": rnd(gen, V, scale=0.1),
         p + "output_layer.adaLN_modulation.weight": rnd(gen, 2 * d, cd),
         p + "output_layer.adaLN_modulation.bias": rnd(gen, 2 * d, scale=0.1)}
    for i in range(c["n_blocks"]):
        b = f"{p}blocks.{i}."
        t.update({b + "norm1.weight": gain(gen, d), b + "norm2.weight": gain(gen, d),
                  b + "attn_qkv.weight": rnd(gen, 3 * d, d), b + "attn_out.weight": rnd(gen, d, d),
                  b + "mlp.0.weight": rnd(gen, 4 * d, d), b + "mlp.0.bias": rnd(gen, 4 * d, scale=0.1),
                  b + "mlp.2.weight": rnd(gen, d, 4 * d), b + "mlp.2.bias": rnd(gen, d, scale=0.1),
                  b + "adaLN_modulation.weight": rnd(gen, 6 * d, cd), b + "adaLN_modulation.bias": rnd(gen, 6 * d)})
    return t


def write_checkpoint(directory, config, tensors, shards: int = 1):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    if shards == 1:
        save_file(tensors, str(directory / "model.safetensors"))
        return
    names = sorted(tensors)
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        save_file(part, str(directory / file))
        weight_map.update(dict.fromkeys(part, file))
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))


def make(tmp_path, arch, shards=1, gpt2_prefix="transformer."):
    """A tiny checkpoint of ``arch`` in its published layout: (directory, config, tensors)."""
    gen = torch.Generator().manual_seed(0)
    directory = tmp_path / arch
    directory.mkdir()
    n_tok = write_tokenizer(directory, with_mask=arch in ("llada", "dream"))
    if arch == "gpt2":
        c = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
             "embd_pdrop": 0.1, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 16, "n_embd": 16,
             "n_head": 2, "n_inner": None, "n_layer": 2, "n_positions": 16, "resid_pdrop": 0.1, "vocab_size": n_tok}
        t = gpt2_tensors(c, gen, gpt2_prefix)
    elif arch == "llama":
        c = {"architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "hidden_size": 16,
             "intermediate_size": 24, "max_position_embeddings": 16, "model_type": "llama",
             "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
             "rope_scaling": None, "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
             "vocab_size": n_tok}
        t = llama_tensors(c, gen)
    elif arch == "dream":
        c = {"architectures": ["DreamModel"], "attention_dropout": 0.0, "hidden_act": "silu", "hidden_size": 16,
             "intermediate_size": 24, "mask_token_id": n_tok - 1, "max_position_embeddings": 16,
             "model_type": "Dream", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
             "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None,
             "tie_word_embeddings": False, "use_sliding_window": False, "vocab_size": n_tok + 4}
        t = llama_tensors(c, gen, qkv_bias=True)
    elif arch == "llada":
        c = {"activation_type": "silu", "alibi": False, "architectures": ["LLaDAModelLM"],
             "attention_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": 16,
             "embedding_size": n_tok + 4, "include_bias": False, "include_qkv_bias": False, "input_emb_norm": False,
             "layer_norm_type": "rms", "mask_token_id": n_tok - 1, "max_sequence_length": 16, "mlp_hidden_size": 24,
             "mlp_ratio": 4, "model_type": "llada", "n_heads": 4, "n_kv_heads": 4, "n_layers": 2,
             "rms_norm_eps": 1e-05, "rope": True, "rope_theta": 500000.0, "scale_logits": False,
             "vocab_size": n_tok + 4, "weight_tying": False}
        t = llada_tensors(c, gen)
    else:
        c = {"architectures": ["MDLM"], "cond_dim": 8, "dropout": 0.1, "hidden_dim": 16, "model_length": 16,
             "model_type": "mdlm", "n_blocks": 2, "n_heads": 2, "return_dict": False, "time_conditioning": False,
             "torch_dtype": "float32", "vocab_size": n_tok + 1}
        t = mdlm_tensors(c, gen)
    write_checkpoint(directory, c, t, shards)
    return directory, c, t


# --------------------------------------------------------------------------- plain reference forwards
def rms(x, w, eps):
    return w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rope(x, theta):
    """Rotate-half rotary on (B, h, T, hd), angles pos * theta^(-2k/hd) computed here in float64."""
    T, hd = x.shape[2], x.shape[3]
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv
    emb = torch.cat([ang, ang], dim=-1)
    rot = torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], dim=-1)
    return x * emb.cos().float() + rot * emb.sin().float()


def softmax_attention(q, k, v, causal):
    """q (B, h, T, hd), k/v (B, hkv, T, hd) → (B, T, h*hd), scores scaled by 1/sqrt(hd)."""
    B, h, T, hd = q.shape
    k = k.repeat_interleave(h // k.shape[1], dim=1)
    v = v.repeat_interleave(h // v.shape[1], dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if causal:
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, h * hd)


def heads(x, n):
    B, T, _ = x.shape
    return x.view(B, T, n, -1).transpose(1, 2)


def ref_gpt2(t, c, ids):
    g = lambda n: t[n] if n in t else t["transformer." + n]  # noqa: E731
    d, nh = c["n_embd"], c["n_head"]
    x = g("wte.weight")[ids] + g("wpe.weight")[: ids.shape[1]]
    for i in range(c["n_layer"]):
        p = f"h.{i}."
        h = F.layer_norm(x, (d,), g(p + "ln_1.weight"), g(p + "ln_1.bias"), 1e-5)
        qkv = h @ g(p + "attn.c_attn.weight") + g(p + "attn.c_attn.bias")  # Conv1D: x W + b
        q, k, v = qkv.split(d, dim=-1)
        a = softmax_attention(heads(q, nh), heads(k, nh), heads(v, nh), causal=True)
        x = x + a @ g(p + "attn.c_proj.weight") + g(p + "attn.c_proj.bias")
        h = F.layer_norm(x, (d,), g(p + "ln_2.weight"), g(p + "ln_2.bias"), 1e-5)
        u = h @ g(p + "mlp.c_fc.weight") + g(p + "mlp.c_fc.bias")
        u = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))  # gelu_new
        x = x + u @ g(p + "mlp.c_proj.weight") + g(p + "mlp.c_proj.bias")
    x = F.layer_norm(x, (d,), g("ln_f.weight"), g("ln_f.bias"), 1e-5)
    return x @ g("wte.weight").T  # tied head


def ref_llama(t, c, ids, causal=True, bias=False):
    nh, nkv, eps, theta = c["num_attention_heads"], c["num_key_value_heads"], c["rms_norm_eps"], c["rope_theta"]
    x = t["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        lin = lambda n, h: h @ t[p + n + ".weight"].T + (t[p + n + ".bias"] if bias and n[-6] in "qkv" else 0)  # noqa
        h = rms(x, t[p + "input_layernorm.weight"], eps)
        q = rope(heads(lin("self_attn.q_proj", h), nh), theta)
        k = rope(heads(lin("self_attn.k_proj", h), nkv), theta)
        v = heads(lin("self_attn.v_proj", h), nkv)
        x = x + softmax_attention(q, k, v, causal) @ t[p + "self_attn.o_proj.weight"].T
        h = rms(x, t[p + "post_attention_layernorm.weight"], eps)
        x = x + (F.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h)) @ t[p + "mlp.down_proj.weight"].T
    head = t["model.embed_tokens.weight"] if c["tie_word_embeddings"] else t["lm_head.weight"]
    return rms(x, t["model.norm.weight"], eps) @ head.T


def ref_dream(t, c, ids):
    logits = ref_llama(t, c, ids, causal=False, bias=True)
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)  # Dream's sampler: output i-1 predicts token i


def ref_llada(t, c, ids):
    nh, eps, theta, p0 = c["n_heads"], c["rms_norm_eps"], c["rope_theta"], "model.transformer."
    x = t[p0 + "wte.weight"][ids] * (c["d_model"] ** 0.5 if c["input_emb_norm"] else 1.0)
    for i in range(c["n_layers"]):
        W = lambda n: t[f"{p0}blocks.{i}.{n}.weight"].T  # noqa: E731
        h = rms(x, t[f"{p0}blocks.{i}.attn_norm.weight"], eps)
        q, k = rope(heads(h @ W("q_proj"), nh), theta), rope(heads(h @ W("k_proj"), nh), theta)
        v = heads(h @ W("v_proj"), nh)
        x = x + softmax_attention(q, k, v, causal=False) @ W("attn_out")
        h = rms(x, t[f"{p0}blocks.{i}.ff_norm.weight"], eps)
        x = x + (F.silu(h @ W("ff_proj")) * (h @ W("up_proj"))) @ W("ff_out")
    head = t[p0 + "wte.weight"] if c["weight_tying"] else t[p0 + "ff_out.weight"]
    return rms(x, t[p0 + "ln_f.weight"], eps) @ head.T / (c["d_model"] ** 0.5 if c["scale_logits"] else 1.0)


def ref_mdlm(t, c, ids):
    d, nh, p0 = c["hidden_dim"], c["n_heads"], "backbone."
    lin = lambda n, x: x @ t[n + ".weight"].T + (t[n + ".bias"] if n + ".bias" in t else 0)  # noqa: E731
    ln = lambda x, n: F.layer_norm(x, (d,)) * t[n]  # noqa: E731
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    sigma = torch.zeros(ids.shape[0])  # time_conditioning = False
    emb = torch.cat([torch.cos(sigma[:, None] * freqs), torch.sin(sigma[:, None] * freqs)], dim=-1)
    cnd = F.silu(lin(p0 + "sigma_map.mlp.2", F.silu(lin(p0 + "sigma_map.mlp.0", emb))))[:, None]  # (B, 1, c)
    x = t[p0 + "vocab_embed.embedding"][ids]
    for i in range(c["n_blocks"]):
        b = f"{p0}blocks.{i}."
        sh1, sc1, g1, sh2, sc2, g2 = lin(b + "adaLN_modulation", cnd).chunk(6, dim=-1)
        qkv = lin(b + "attn_qkv", ln(x, b + "norm1.weight") * (1 + sc1) + sh1)
        q, k, v = qkv.split(d, dim=-1)
        a = softmax_attention(rope(heads(q, nh), 10000.0), rope(heads(k, nh), 10000.0), heads(v, nh), False)
        x = x + g1 * lin(b + "attn_out", a)
        u = lin(b + "mlp.0", ln(x, b + "norm2.weight") * (1 + sc2) + sh2)
        x = x + g2 * lin(b + "mlp.2", F.gelu(u, approximate="tanh"))
    sh, sc = lin(p0 + "output_layer.adaLN_modulation", cnd).chunk(2, dim=-1)
    out = lin(p0 + "output_layer.linear", ln(x, p0 + "output_layer.norm_final.weight") * (1 + sc) + sh)
    out[..., c["vocab_size"] - 1] = float("-inf")  # SUBS: the mask is never predicted
    return out


REFERENCES = {"gpt2": ref_gpt2, "llama": ref_llama, "dream": ref_dream, "llada": ref_llada, "mdlm": ref_mdlm}
KINDS = {"gpt2": "ar", "llama": "ar", "dream": "mdlm", "llada": "mdlm", "mdlm": "mdlm"}


def param_count(arch, c):
    """Every parameter, by formula from config.json (tied heads counted once)."""
    if arch == "gpt2":
        d, f, V, P, L = c["n_embd"], c["n_inner"] or 4 * c["n_embd"], c["vocab_size"], c["n_positions"], c["n_layer"]
        return V * d + P * d + L * (4 * d + 3 * d * d + 3 * d + d * d + d + 2 * d * f + f + d) + 2 * d
    if arch in ("llama", "dream"):
        d, f, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
        hd, nh, nkv = d // c["num_attention_heads"], c["num_attention_heads"], c["num_key_value_heads"]
        bias = (nh + 2 * nkv) * hd if arch == "dream" else 0
        return 2 * V * d + L * (2 * d + 2 * d * nh * hd + 2 * d * nkv * hd + 3 * d * f + bias) + d
    if arch == "llada":
        d, f, V, L = c["d_model"], c["mlp_hidden_size"], c["embedding_size"], c["n_layers"]
        return 2 * V * d + L * (2 * d + 4 * d * d + 3 * d * f) + d
    d, cd, V, L = c["hidden_dim"], c["cond_dim"], c["vocab_size"], c["n_blocks"]
    block = 2 * d + 3 * d * d + d * d + 2 * 4 * d * d + 4 * d + d + cd * 6 * d + 6 * d
    return V * d + 256 * cd + cd + cd * cd + cd + L * block + d + d * V + V + cd * 2 * d + 2 * d


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("arch", ["gpt2", "llama", "dream", "llada", "mdlm"])
@pytest.mark.parametrize("shards", [1, 3])
def test_forward_matches_published_architecture(tmp_path, arch, shards):
    directory, c, t = make(tmp_path, arch, shards)
    model = load_model(str(directory))
    assert model.kind == KINDS[arch]
    assert sum(p.numel() for p in model.parameters()) == param_count(arch, c)
    ids = torch.randint(0, model.vocab.size - 1, (2, 12), generator=torch.Generator().manual_seed(1))
    if model.mask_id is not None:
        ids[0, ::3] = model.mask_id
    with torch.no_grad():
        out, ref = model(ids), REFERENCES[arch](t, c, ids)
    if model.kind == "mdlm":
        ref[..., model.mask_id] = float("-inf")
    assert out.shape == (2, 12, model.shape.vocab_size)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "dream", "llada", "mdlm"])
def test_shape_agrees_with_energy_estimator(tmp_path, arch):
    """The shape the estimator prices: its parameter count is the model's, its linear layers (weights and
    biases) exactly the model's nn.Linear layers (what analogize programs)."""
    directory, c, _ = make(tmp_path, arch)
    model = load_model(directory)
    assert model.shape.n_params() == sum(p.numel() for p in model.parameters()) == param_count(arch, c)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert model.shape.weight_params() == sum(m.weight.numel() for m in linears)
    assert model.shape.bias_params() == sum(m.bias.numel() for m in linears if m.bias is not None)
    assert model.card["shape"] == model.shape.to_dict() and model.card["kind"] == model.kind


@pytest.mark.parametrize("arch", ["gpt2", "mdlm", "dream"])
def test_ideal_card_reproduces_digital_logits(tmp_path, arch):
    directory, _, _ = make(tmp_path, arch)
    model = load_model(directory)
    ids = torch.randint(0, model.vocab.size - 1, (2, 10), generator=torch.Generator().manual_seed(2))
    amodel = ad.analogize(model, "ideal", seed=0)
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert sum(isinstance(m, ad.AnalogLinear) for m in amodel.modules()) == n_linear
    with torch.no_grad():
        torch.testing.assert_close(amodel(ids), model(ids), rtol=1e-4, atol=1e-5)


def test_gpt2_without_prefix_and_mask_buffers_loads_the_same(tmp_path):
    """openai-community/gpt2's file: names without 'transformer.', causal-mask buffers 'h.{i}.attn.bias'."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = make(tmp_path / "a", "gpt2")[0], make(tmp_path / "b", "gpt2", gpt2_prefix="")[0]
    ids = torch.arange(10)[None]
    with torch.no_grad():
        assert torch.equal(load_model(a)(ids), load_model(b)(ids))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_kv_cache_decoding_equals_full_forward(tmp_path, arch):
    directory, _, _ = make(tmp_path, arch)
    model = load_model(directory)
    ids = torch.randint(0, model.vocab.size, (2, 9), generator=torch.Generator().manual_seed(3))
    cache = []
    with torch.no_grad():
        steps = [model(ids[:, :5], cache=cache)] + [model(ids[:, i:i + 1], cache=cache) for i in range(5, 9)]
        torch.testing.assert_close(torch.cat(steps, dim=1), model(ids), rtol=1e-5, atol=1e-5)


def test_tokenizer_round_trip_and_samplers(tmp_path):
    directory, _, _ = make(tmp_path, "mdlm")
    model = load_model(directory)
    ids = model.vocab.encode("To be, or not")
    assert ids.dtype == torch.long and ids.max() < model.vocab.size - 1
    assert model.vocab.decode(ids) == "To be, or not"
    assert model.mask_id == model.vocab.size - 1 and model.vocab.decode([model.mask_id]) == "\u2588"
    out, info = generate_ids(model, 2, steps=4, seed=0, seq_len=8)
    assert out.shape == (2, 8) and not (out == model.mask_id).any() and info["nfe"] <= 4
    again, _ = generate_ids(model, 2, steps=4, seed=0, seq_len=8)
    assert torch.equal(out, again)
    ar = load_model(make(tmp_path, "gpt2")[0])
    assert isinstance(ad.generate(ar, seq_len=6, seed=0), str)


def _error(directory) -> str:
    with pytest.raises(ValueError) as e:
        load_model(str(directory))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_bad_directories_give_one_line_errors(tmp_path):
    directory, c, t = make(tmp_path, "llama")
    assert "has no config.json" in _error(tmp_path)
    (directory / "model.safetensors").write_bytes(b"\x00garbage")
    assert "model.safetensors is not a readable safetensors" in _error(directory)
    (directory / "model.safetensors").unlink()
    (directory / "pytorch_model.bin").write_bytes(b"pickle")
    msg = _error(directory)
    assert "neither model.safetensors nor model.safetensors.index.json" in msg and "never loaded" in msg
    write_checkpoint(directory, c, {k: v for k, v in t.items() if "layers.1.mlp.up" not in k})
    assert "'model.layers.1.mlp.up_proj.weight' is missing" in _error(directory)
    write_checkpoint(directory, c, {**t, "model.extra.weight": torch.zeros(2)})
    assert "model.safetensors: unexpected tensor 'model.extra.weight'" in _error(directory)
    bad = dict(t, **{"model.norm.weight": torch.full((16,), float("nan"))})
    write_checkpoint(directory, c, bad)
    assert "'model.norm.weight' holds non-finite values" in _error(directory)
    write_checkpoint(directory, {**c, "hidden_size": 32}, t)
    assert "has shape (" in _error(directory) and "config.json needs" in _error(directory)
    for config, expected in [({**c, "model_type": "bert"}, "field 'model_type' = 'bert' is not supported"),
                             ({k: v for k, v in c.items() if k != "num_hidden_layers"},
                              "missing field 'num_hidden_layers'"),
                             ({**c, "num_attention_heads": 3}, "n_heads"),
                             ({**c, "rope_scaling": {"rope_type": "llama3"}}, "field 'rope_scaling'"),
                             ({**c, "hidden_act": "gelu"}, "field 'hidden_act' = 'gelu' is not supported")]:
        write_checkpoint(directory, config, t)
        msg = _error(directory)
        assert "config.json" in msg and expected in msg, msg
    (directory / "config.json").write_text("{not json")
    assert "config.json: malformed JSON" in _error(directory)


def test_bad_shards_and_tokenizer(tmp_path):
    directory, c, t = make(tmp_path, "mdlm", shards=2)
    index = directory / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["backbone.blocks.0.norm1.weight"] = "model-00002-of-00002.safetensors"
    index.write_text(json.dumps(data))
    msg = _error(directory)
    assert "model-00002-of-00002.safetensors: tensor 'backbone.blocks.0.norm1.weight' listed in" in msg
    data["weight_map"] = {"x": "../outside.safetensors"}
    index.write_text(json.dumps(data))
    assert "must be a .safetensors file name inside" in _error(directory)
    write_checkpoint(directory, c, t)
    (directory / "tokenizer.json").write_text("{}")
    assert "tokenizer.json is not a readable tokenizer.json" in _error(directory)
    (directory / "tokenizer.json").unlink()
    assert "tokenizer" in _error(directory) and "does not exist" in _error(directory)
    write_checkpoint(directory, {**c, "time_conditioning": True}, t)
    assert "field 'time_conditioning' = True is not supported" in _error(directory)


@pytest.mark.parametrize("field, value, expected", [
    ("num_hidden_layers", 10 ** 6, "outside the allowed range [1, 1000]"),
    ("hidden_size", "16", "expected an integer"),
    ("vocab_size", 0, "outside the allowed range"),
    ("rms_norm_eps", -1.0, "outside the allowed range"),
    ("tie_word_embeddings", "no", "must be true or false"),
])
def test_hostile_config_values(tmp_path, field, value, expected):
    directory, c, t = make(tmp_path, "llama")
    write_checkpoint(directory, {**c, field: value}, t)
    msg = _error(directory)
    assert f"config.json: field '{field}'" in msg and expected in msg, msg


@pytest.mark.parametrize("arch, changes, drop", [
    ("llama", {"tie_word_embeddings": True}, "lm_head.weight"),
    ("llada", {"weight_tying": True, "input_emb_norm": True, "scale_logits": True}, "model.transformer.ff_out.weight"),
])
def test_tied_heads_and_llada_options(tmp_path, arch, changes, drop):
    """Tied heads (the file has no head; the embedding serves) and LLaDA's embedding and logit scalings."""
    directory, c, t = make(tmp_path, arch)
    c, t = {**c, **changes}, {k: v for k, v in t.items() if k != drop}
    write_checkpoint(directory, c, t)
    model = load_model(directory)
    ids = torch.randint(0, model.vocab.size - 1, (2, 12), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out, ref = model(ids), REFERENCES[arch](t, c, ids)
    if model.kind == "mdlm":
        ref[..., model.mask_id] = float("-inf")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    V, d = model.shape.vocab_size, model.shape.d_model
    assert sum(p.numel() for p in model.parameters()) == param_count(arch, c) - V * d


PUBLISHED_CONFIGS = {  # the size fields of each release's config.json
    "mdlm-owt": {"architectures": ["MDLM"], "model_type": "mdlm", "cond_dim": 128, "hidden_dim": 768,
                 "model_length": 1024, "n_blocks": 12, "n_heads": 12, "time_conditioning": False, "vocab_size": 50258},
    "llada-8b": {"architectures": ["LLaDAModelLM"], "model_type": "llada", "activation_type": "silu",
                 "block_type": "llama", "d_model": 4096, "embedding_size": 126464, "include_bias": False,
                 "include_qkv_bias": False, "layer_norm_type": "rms", "max_sequence_length": 4096,
                 "mlp_hidden_size": 12288, "mlp_ratio": 4, "n_heads": 32, "n_kv_heads": 32, "n_layers": 32,
                 "vocab_size": 126464, "weight_tying": False},
    "dream-7b": {"architectures": ["DreamModel"], "model_type": "Dream", "hidden_size": 3584,
                 "intermediate_size": 18944, "max_position_embeddings": 131072, "num_attention_heads": 28,
                 "num_hidden_layers": 28, "num_key_value_heads": 4, "tie_word_embeddings": False,
                 "vocab_size": 152064},
    "gpt2-small": {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 768, "n_head": 12,
                   "n_inner": None, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257},
    "llama3-8b": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                  "intermediate_size": 14336, "max_position_embeddings": 8192, "num_attention_heads": 32,
                  "num_hidden_layers": 32, "num_key_value_heads": 8, "tie_word_embeddings": False,
                  "attention_bias": False, "mlp_bias": False, "vocab_size": 128256},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_CONFIGS))
def test_config_maps_to_the_published_shape(tmp_path, name):
    """What the loader reads from a release's config.json is the shape the estimator prices by name (cited
    separately in analogdiff/shapes.py); Dream's config allows 131,072 positions, the shape prices 2,048."""
    from analogdiff.lm.hub import read_config
    from analogdiff.shapes import load_shape

    (tmp_path / "config.json").write_text(json.dumps(PUBLISHED_CONFIGS[name]))
    _, _, ours = read_config(tmp_path)
    ours, published = dataclasses.replace(ours, name=name), load_shape(name)
    if name == "dream-7b":
        ours = dataclasses.replace(ours, context_len=published.context_len)
    assert ours == published
