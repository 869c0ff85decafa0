"""Backbone: causal vs bidirectional masks, plain nn.Linear matmuls, SUBS mask logit, parameter count."""
import copy

import pytest
import torch
from torch import nn

from analogdiff.lm.model import CharLM, char_shape, n_params

SHAPE = char_shape("tiny", n_layers=2, d_model=16, n_heads=2, n_kv_heads=2, d_ff=32, vocab_size=64,
                   context_len=12)


def _ids(seed=0):
    return torch.randint(0, 63, (2, 12), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", ["ar", "mdlm"])
def test_attention_mask(kind):
    model = CharLM(kind, SHAPE, seed=1).eval()
    x = _ids()
    y = x.clone()
    j = 7
    y[:, j] = (y[:, j] + 1) % 63  # change one position
    with torch.no_grad():
        dx, dy = model(x)[..., :-1], model(y)[..., :-1]  # drop the -inf mask column
    before = (dx[:, :j] - dy[:, :j]).abs().max()
    if kind == "ar":
        assert before == 0  # the future is hidden from every earlier position
    else:
        assert before > 1e-6  # bidirectional: earlier positions see the change
    assert (dx[:, j:] - dy[:, j:]).abs().max() > 1e-6


class PlainMatmul(nn.Module):
    """A non-Linear stand-in: what analogize() will do (swap every nn.Linear)."""

    def __init__(self, linear):
        super().__init__()
        self.w = linear.weight.detach().clone()
        self.b = linear.bias.detach().clone()

    def forward(self, x):
        return torch.einsum("...i,oi->...o", x, self.w) + self.b


def _swap_linears(module):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, PlainMatmul(child))
        else:
            _swap_linears(child)


@pytest.mark.parametrize("kind", ["ar", "mdlm"])
def test_every_matmul_is_a_swappable_linear(kind):
    model = CharLM(kind, SHAPE, seed=2).eval()
    kinds = {type(m) for m in model.modules() if not list(m.children())}
    assert kinds <= {nn.Linear, nn.Embedding, nn.LayerNorm}
    swapped = copy.deepcopy(model)
    _swap_linears(swapped)
    assert not any(isinstance(m, nn.Linear) for m in swapped.modules())
    with torch.no_grad():
        torch.testing.assert_close(swapped(_ids(1)), model(_ids(1)), rtol=1e-5, atol=1e-5)


def test_mask_is_never_predicted():
    model = CharLM("mdlm", SHAPE)
    logits = model(_ids())
    assert torch.isneginf(logits[..., model.mask_id]).all()
    assert torch.isfinite(logits[..., :model.mask_id]).all()


def test_parameter_count_by_hand():
    d, f, v, n = 16, 32, 64, 2
    per_layer = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d)
    expected = v * d + n * per_layer + 2 * d + (d * v + v)  # rotary positions: no parameters
    assert n_params(CharLM("ar", SHAPE)) == expected == n_params(CharLM("mdlm", SHAPE)) == SHAPE.n_params()


def test_same_seed_same_init_and_bad_shapes():
    a, b = CharLM("ar", SHAPE, seed=5), CharLM("ar", SHAPE, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="n_heads"):
        char_shape("x", 1, 10, 3, 3, 8, 64, 8)
    with pytest.raises(ValueError, match="kind"):
        CharLM("gpt", SHAPE)
    with pytest.raises(ValueError, match="context_len"):
        CharLM("ar", SHAPE)(torch.zeros(1, 13, dtype=torch.long))


@pytest.mark.parametrize("n_kv_heads", [2, 1])
def test_kv_cache_gives_the_full_forward_logits(n_kv_heads):
    """Decoding with a KV cache (a prefix, then a chunk, then one position at a time) reproduces the
    logits of one full causal forward, position by position (also with grouped KV heads)."""
    shape = char_shape("tiny", n_layers=2, d_model=16, n_heads=2, n_kv_heads=n_kv_heads, d_ff=32,
                       vocab_size=64, context_len=12)
    model = CharLM("ar", shape, seed=3).eval()
    x = _ids(5)
    with torch.no_grad():
        full = model(x)[..., :-1]                                      # drop the -inf mask column
        cache: list = []
        parts = [model(x[:, :4], cache=cache), model(x[:, 4:7], cache=cache)]
        parts += [model(x[:, t:t + 1], cache=cache) for t in range(7, 12)]
    inc = torch.cat(parts, dim=1)[..., :-1]
    torch.testing.assert_close(inc, full, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="exceeds context_len"):
        model(x[:, :1], cache=cache)                                   # a 13th position


def _reference_logits(model, ids: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """The backbone's forward written out with an explicit (T, T) visibility mask ``allowed`` (query, key)."""
    bb = model.backbone
    x = bb.tok_emb(ids)  # (B, T, C)
    B, T, _ = x.shape
    for blk in bb.blocks:
        at = blk.attn
        nh, nkv, hd = at.n_heads, at.n_kv_heads, at.head_dim
        q, k, v = at.qkv(blk.ln1(x)).split([nh * hd, nkv * hd, nkv * hd], dim=-1)
        q, k, v = (t.view(B, T, -1, hd).transpose(1, 2) for t in (q, k, v))  # (B, heads, T, hd)
        cos, sin = bb.rope_cos[:T], bb.rope_sin[:T]
        half = hd // 2
        rot = lambda t: torch.cat([t[..., :half] * cos - t[..., half:] * sin,  # noqa: E731
                                   t[..., :half] * sin + t[..., half:] * cos], dim=-1)
        q, k = rot(q), rot(k)
        k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / hd ** 0.5  # (B, nh, T, T)
        att = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, nh * hd)
        x = x + at.out(y)
        x = x + blk.mlp(blk.ln2(x))
    return bb.head(bb.ln_f(x))[..., :-1]  # (B, T, V - 1): without the mask column


@pytest.mark.parametrize("n_kv_heads", [2, 1])
def test_prefix_cached_block_equals_a_masked_full_forward(n_kv_heads):
    """Block diffusion with a prefix KV cache: a prompt (4) and two finished blocks (3, 3) are cached chunk
    by chunk, then a noisy block (2) is fed against the cache without being written. Its logits equal a
    full forward of all 12 positions under the block-causal mask that gives the same visibility (each
    position sees its own chunk and every chunk before it), to 1e-5; the cache keeps only the 10 finals."""
    shape = char_shape("tiny", n_layers=2, d_model=16, n_heads=2, n_kv_heads=n_kv_heads, d_ff=32,
                       vocab_size=64, context_len=12)
    model = CharLM("mdlm", shape, seed=5).eval()
    x = _ids(2)
    chunks = [(0, 4), (4, 7), (7, 10), (10, 12)]
    chunk_of = torch.tensor([i for i, (a, b) in enumerate(chunks) for _ in range(a, b)])  # (12,)
    allowed = chunk_of[:, None] >= chunk_of[None, :]  # (12, 12) query sees key
    with torch.no_grad():
        ref = _reference_logits(model, x, allowed)
        cache: list = []
        outs = [model(x[:, a:b], cache=cache) for a, b in chunks[:-1]]  # prefill / write finished blocks
        block = model(x[:, 10:12], cache=cache, write_cache=False)[..., :-1]
        again = model(x[:, 10:12], cache=cache, write_cache=False)[..., :-1]
    torch.testing.assert_close(block, ref[:, 10:12], rtol=1e-5, atol=1e-5)
    for (a, b), out in zip(chunks, outs):
        torch.testing.assert_close(out[..., :-1], ref[:, a:b], rtol=1e-5, atol=1e-5)
    assert all(c["k"].shape[2] == 10 for c in cache)  # the noisy block was not appended
    assert torch.equal(block, again)
    # one chunk and no cache: plain bidirectional attention, the reference with everything visible
    full = torch.ones(12, 12, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[..., :-1], _reference_logits(model, x, full), rtol=1e-5, atol=1e-5)


def test_head_last_computes_only_the_last_rows():
    model = CharLM("ar", SHAPE, seed=1).eval()
    x = _ids()
    with torch.no_grad():
        full = model(x)
        assert torch.equal(model(x, head_last=3), full[:, -3:])
        assert model(x, head_last=0).shape == (2, 0, 64)