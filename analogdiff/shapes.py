"""Model shapes: the published models as cited facts, our shipped models, and custom TOML shapes.

A shape is everything the cost model needs to know about a transformer — never its weights. It is the one
description both halves share: ``analogdiff.lm`` builds its character models from a ``ModelShape`` and writes
it into their model cards; ``analogdiff.energy`` prices it. Torch-free (imports only the config schema).

Its linear layers (``linear_layers``) are what the analog estimator maps onto tiles and the GPU roofline
streams; ``n_params`` is the exact parameter count of the model it describes (weights, biases, embeddings,
norm gains and shifts; a tied matrix once), so it equals ``sum(p.numel() for p in model.parameters())``.

    shape = load_shape("llada-8b")                  # published
    shape = load_shape("shakespeare-mdlm")          # from analogdiff/lm/checkpoints/<name>.json ("shape")
    shape = load_shape("my_model.toml")             # custom: the ModelShape keys below

Every field that changes a count or a price must be given (a card or TOML file that leaves one out is an
error naming it): a default is how the cost model once priced a position add for rotary models.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from analogdiff import checks
from analogdiff.checks import ConfigError

TIME_FREQ_DIM = 256
"""Sinusoidal time-embedding width feeding the adaLN conditioning MLP (``TimestepEmbedder`` in MDLM/SEDD's
``models/dit.py``, ``frequency_embedding_size=256``)."""

MLPS = ("gelu", "swiglu")
POSITIONS = ("learned", "rotary")
NORMS = ("layernorm", "rmsnorm")
COUNT_FIELDS: dict[str, tuple[int, int]] = checks.SHAPE_BOUNDS
"""The integer fields and the range each may take (``analogdiff.checks.SHAPE_BOUNDS``: a few times the largest
published models, so that no product of them can overflow)."""


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"shape.{field}: {checks.short(value)} is not one of {', '.join(map(repr, allowed))}")


def _flag(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"shape.{field}: expected true or false, got {checks.short(value)}")


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """A transformer's shape: pre-norm blocks (norm → attention, norm → MLP), a final norm, an LM head."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    """Key/value heads (grouped-query attention when fewer than ``n_heads``)."""
    d_ff: int
    mlp: Literal["gelu", "swiglu"]
    """GELU: up (d_model → d_ff), down. SwiGLU: gate and up (d_model → d_ff each), down."""
    vocab_size: int
    context_len: int
    positions: Literal["learned", "rotary"]
    """Learned absolute position embeddings (context_len × d_model parameters, an add per token) or rotary
    (no parameters; an elementwise rotation of q and k)."""
    norm: Literal["layernorm", "rmsnorm"]
    """Kind of the 2·n_layers + 1 norms (two per block, one final): each holds a gain of d_model."""
    norm_bias: bool
    """Norms also hold a shift (bias) of d_model: GPT-2's and our LayerNorms do; MDLM/SEDD's LayerNorm and
    every RMSNorm do not."""
    bias: tuple[str, ...]
    """Kinds of linear layers (``LinearLayer.kind``) that add a bias vector: e.g. all of them in our
    models, Qwen2's (Dream's) ``attn.qkv`` only, none in LLaMA. A list in TOML/JSON."""
    tied_embeddings: bool
    """LM head shares the token-embedding matrix (GPT-2): counted once. The head still runs on its own
    tiles; the embedding lookup reads a digital copy. Only the GPU's weight footprint changes."""
    cond_dim: int
    """adaLN time-conditioning width (MDLM/SEDD DiT); 0 = no time conditioning."""
    source: str = dataclasses.field(default="", compare=False)
    """Where the numbers come from (config and modeling files, model card); provenance, not compared."""

    def __post_init__(self) -> None:  # one check per field, then the relations between fields
        checks.text("shape.name", self.name)
        checks.text("shape.source", self.source, 10_000, empty=True)
        for field, (lo, hi) in COUNT_FIELDS.items():
            object.__setattr__(self, field, checks.integer(f"shape.{field}", getattr(self, field), lo, hi))
        _choice("mlp", self.mlp, MLPS)
        _choice("positions", self.positions, POSITIONS)
        _choice("norm", self.norm, NORMS)
        _flag("norm_bias", self.norm_bias)
        _flag("tied_embeddings", self.tied_embeddings)
        if self.d_model % self.n_heads:
            raise ConfigError(f"shape.n_heads: {self.n_heads} must divide d_model = {self.d_model}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"shape.n_kv_heads: {self.n_kv_heads} must divide n_heads = {self.n_heads}")
        object.__setattr__(self, "bias", self._bias_kinds(self.bias))

    def _bias_kinds(self, value: Any) -> tuple[str, ...]:
        kinds = [spec[0] for spec in self._layer_specs()]
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"shape.bias: expected a list of layer kinds (from {', '.join(kinds)}), "
                              f"got {checks.short(value)}")
        for kind in value:
            if not isinstance(kind, str) or kind not in kinds:
                raise ConfigError(f"shape.bias: {checks.short(kind)} is not a linear layer of this shape; allowed: "
                                  f"{', '.join(kinds)}")
        if len(set(value)) != len(value):
            raise ConfigError(f"shape.bias: holds duplicates: {list(value)!r}")
        return tuple(k for k in kinds if k in value)  # the order of linear_layers()

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def linear_layers(self) -> list[LinearLayer]:
        """Every weight matrix that runs as an MVM, with how often it runs (see ``LinearLayer.per``)."""
        return [LinearLayer(*spec, bias=spec[0] in self.bias) for spec in self._layer_specs()]

    def _layer_specs(self) -> list[tuple[str, int, int, int, str]]:
        """(kind, in_features, out_features, copies, per) of every weight matrix."""
        d, hd, L = self.d_model, self.head_dim, self.n_layers
        out = [("attn.qkv", d, (self.n_heads + 2 * self.n_kv_heads) * hd, L, "token"),
               ("attn.out", self.n_heads * hd, d, L, "token")]
        if self.mlp == "swiglu":
            out.append(("mlp.gate", d, self.d_ff, L, "token"))
        out += [("mlp.up", d, self.d_ff, L, "token"),
                ("mlp.down", self.d_ff, d, L, "token"),
                ("head", d, self.vocab_size, 1, "head")]
        if self.cond_dim:
            c = self.cond_dim
            out += [("cond.mlp1", TIME_FREQ_DIM, c, 1, "pass"),
                    ("cond.mlp2", c, c, 1, "pass"),
                    ("cond.adaln", c, 6 * d, L, "pass"),
                    ("cond.final", c, 2 * d, 1, "pass")]
        return out

    def weight_params(self) -> int:
        """Parameters held in MVM weight matrices (what the analog chip stores), biases excluded."""
        return sum(ly.in_features * ly.out_features * ly.copies for ly in self.linear_layers())

    def embedding_params(self) -> int:
        """Token embeddings, plus learned position embeddings."""
        pos = self.context_len * self.d_model if self.positions == "learned" else 0
        return self.vocab_size * self.d_model + pos

    def norm_params(self) -> int:
        """The 2·n_layers + 1 norms: a gain each, and a shift with ``norm_bias``."""
        return (2 * self.n_layers + 1) * self.d_model * (2 if self.norm_bias else 1)

    def bias_params(self) -> int:
        return sum(ly.out_features * ly.copies for ly in self.linear_layers() if ly.bias)

    def n_params(self) -> int:
        """All parameters of the model (what the GPU holds), a tied embedding/head matrix counted once."""
        tied = self.vocab_size * self.d_model if self.tied_embeddings else 0
        return self.weight_params() + self.bias_params() + self.embedding_params() + self.norm_params() - tied

    def summary(self) -> str:
        kv = f"/{self.n_kv_heads}kv" if self.n_kv_heads != self.n_heads else ""
        return (f"{self.n_layers}L d={self.d_model} {self.n_heads}h{kv} ff={self.d_ff} {self.mlp} "
                f"V={self.vocab_size} ctx={self.context_len} ({self.n_params() / 1e6:,.1f}M params)")

    def to_dict(self) -> dict[str, Any]:
        """The keys a model card's ``"shape"`` or a TOML shape holds (``source`` only when set)."""
        out = dataclasses.asdict(self)
        out["bias"] = list(self.bias)
        if not self.source:
            del out["source"]
        return out


@dataclass(frozen=True)
class LinearLayer:
    """One kind of weight matrix. ``copies`` instances exist (one per block for block layers).

    ``per``: "token" = runs once per token-forward (every position through every block);
    "head" = once per position whose logits are needed; "pass" = once per sequence per forward pass
    (adaLN time conditioning, the same for every position). ``bias``: it adds a bias vector.
    """

    kind: str
    in_features: int
    out_features: int
    copies: int
    per: Literal["token", "head", "pass"]
    bias: bool = False


# --------------------------------------------------------------------------- published shapes
# Facts from each model's own config and modeling files (shared/REFERENCES.md, "Model shapes").
_DIT_BIAS = ["mlp.up", "mlp.down", "head", "cond.mlp1", "cond.mlp2", "cond.adaln", "cond.final"]
_DIT = dict(positions="rotary", norm="layernorm", norm_bias=False, bias=_DIT_BIAS, tied_embeddings=False,
            mlp="gelu", cond_dim=128)
_DIT_NOTE = ("DDiTBlock: attn_qkv, attn_out bias=False, MLP ratio 4 with biases, adaLN_modulation with bias; "
             "LayerNorm holds a weight only; DDitFinalLayer linear and adaLN with biases; TimestepEmbedder "
             "256→cond_dim→cond_dim with biases; Rotary (no parameters); EmbeddingLayer untied")
_GPT2 = dict(mlp="gelu", positions="learned", norm="layernorm", norm_bias=True,
             bias=["attn.qkv", "attn.out", "mlp.up", "mlp.down"], tied_embeddings=True, cond_dim=0)
_GPT2_NOTE = ("n_inner null = 4·n_embd; transformers modeling_gpt2.py: Conv1D c_attn, c_proj, c_fc with "
              "biases, LayerNorm ln_1/ln_2/ln_f with bias, learned wpe, lm_head bias=False tied to wte")
_LLAMA = dict(mlp="swiglu", positions="rotary", norm="rmsnorm", norm_bias=False, bias=[],
              tied_embeddings=False, cond_dim=0)

_PUBLISHED: dict[str, dict[str, Any]] = {
    "mdlm-owt": dict(
        n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=3072, vocab_size=50258, context_len=1024,
        **_DIT, source="kuleshov-group/mdlm configs/model/small.yaml (hidden_size 768, n_blocks 12, n_heads 12, "
        "cond_dim 128, length 1024, tie_word_embeddings False), models/dit.py (" + _DIT_NOTE + "); vocab GPT-2 "
        "50257 + [MASK] (diffusion.py)"),
    "sedd-small": dict(
        n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=3072, vocab_size=50258, context_len=1024,
        **_DIT, source="louaaron/Score-Entropy-Discrete-Diffusion configs/model/small.yaml, model/transformer.py "
        "(the same DDiT: " + _DIT_NOTE + "); vocab 50257 + absorbing state"),
    "sedd-medium": dict(
        n_layers=24, d_model=1024, n_heads=16, n_kv_heads=16, d_ff=4096, vocab_size=50258, context_len=1024,
        **_DIT, source="louaaron/Score-Entropy-Discrete-Diffusion configs/model/medium.yaml, model/transformer.py "
        "(the same DDiT as sedd-small); vocab 50257 + absorbing state"),
    "llada-8b": dict(
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=32, d_ff=12288, vocab_size=126464, context_len=4096,
        **_LLAMA, source="GSAI-ML/LLaDA-8B-Base config.json (d_model, n_layers, n_heads, n_kv_heads, "
        "mlp_hidden_size 12288 for ff_proj, up_proj and ff_out, vocab_size, max_sequence_length 4096, "
        "include_bias false, RMSNorm weights only, weight_tying false, rope); 8.02 B parameters, 6.98 B "
        "non-embedding (LLaDA paper, arXiv 2502.09992)"),
    "dream-7b": dict(
        n_layers=28, d_model=3584, n_heads=28, n_kv_heads=4, d_ff=18944, vocab_size=152064, context_len=2048,
        **dict(_LLAMA, bias=["attn.qkv"]), source="Dream-org/Dream-v0-Base-7B config.json and "
        "modeling_dream.py (Qwen2.5-7B body: q/k/v_proj bias=True, o_proj, MLP and lm_head bias=False, RMSNorm "
        "weight only, untied lm_head); context 2048 as documented for generation"),
    "gpt2-small": dict(
        n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=3072, vocab_size=50257, context_len=1024,
        **_GPT2, source="openai-community/gpt2 config.json (n_layer, n_embd, n_head, n_ctx, vocab_size; "
        + _GPT2_NOTE + ")"),
    "gpt2-medium": dict(
        n_layers=24, d_model=1024, n_heads=16, n_kv_heads=16, d_ff=4096, vocab_size=50257, context_len=1024,
        **_GPT2, source="openai-community/gpt2-medium config.json (" + _GPT2_NOTE + ")"),
    "llama3-8b": dict(
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=128256, context_len=8192,
        **_LLAMA, source="meta-llama/Meta-Llama-3-8B config.json (tie_word_embeddings false, attention_bias "
        "false, mlp_bias false; transformers modeling_llama.py: LlamaRMSNorm weight only)"),
}

SHIPPED = ("shakespeare-mdlm", "shakespeare-ar", "shakespeare-mdlm-hwa", "shakespeare-ar-hwa")
_FIELDS = {f.name for f in dataclasses.fields(ModelShape)}
_REQUIRED = [f.name for f in dataclasses.fields(ModelShape) if f.default is dataclasses.MISSING]


def _checkpoint_card(name: str) -> Path | None:
    """``analogdiff/lm/checkpoints/<name>.json`` if shipped. Found from the top-level package so that
    ``analogdiff.lm`` (and torch) is never imported by the cost model."""
    path = resources.files("analogdiff") / "lm" / "checkpoints" / f"{name}.json"
    return Path(str(path)) if path.is_file() else None


def shape_from_card(path: str | Path, name: str | None = None) -> ModelShape:
    """The shape of a shipped model from its JSON model card (key ``"shape"``)."""
    path = Path(path)
    card = checks.parse_json(checks.shown_path(path), checks.read_text("model card", path))
    data = card.get("shape") if isinstance(card, dict) else None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: missing 'shape' object")
    data = dict(data)
    data.setdefault("name", name or path.stem)
    data.setdefault("source", f"model card {path.name}")
    return shape_from_dict(data, where=str(path))


def shape_from_dict(data: Mapping[str, Any], where: str = "shape") -> ModelShape:
    """A shape from a card's or TOML file's keys; unknown and missing keys are errors naming the key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a table of shape fields, got {checks.short(data)}")
    unknown = sorted(map(str, set(data) - _FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {checks.short(unknown[0])}; allowed: {', '.join(sorted(_FIELDS))}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"{where}: missing key '{missing[0]}'; required: {', '.join(_REQUIRED)}")
    return ModelShape(**data)


def list_shapes() -> list[str]:
    """Published shapes, then shipped models whose checkpoint card exists."""
    return list(_PUBLISHED) + [n for n in SHIPPED if _checkpoint_card(n) is not None]


def load_shape(shape: str | Path | ModelShape) -> ModelShape:
    """A shape by name (``list_shapes()``), path to a TOML shape or JSON model card, or a ModelShape."""
    if isinstance(shape, ModelShape):
        return shape
    text = checks.text("--model", str(shape), checks.MAX_PATH_CHARS)
    if text in _PUBLISHED:
        return ModelShape(name=text, **_PUBLISHED[text])
    if text in SHIPPED and _checkpoint_card(text) is not None:
        return shape_from_card(_checkpoint_card(text), text)
    if text.endswith((".toml", ".json")) or "/" in text or checks.is_file(text):
        path = Path(text)
        if path.suffix == ".json":
            return shape_from_card(path)
        data = checks.parse_toml(checks.shown_path(path), checks.read_text("shape", path))
        data.setdefault("name", path.stem[:checks.MAX_NAME_CHARS])
        return shape_from_dict(data, where=checks.shown_path(path))
    raise ConfigError(f"unknown model shape {checks.short(text)}; available: {', '.join(list_shapes())} "
                      f"(or a path to a .toml shape)")
