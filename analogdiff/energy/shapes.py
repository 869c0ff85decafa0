"""Model shapes: the published models as cited facts, our shipped models, and custom TOML shapes.

A shape is everything the cost model needs to know about a transformer — never its weights. Its linear
layers (``linear_layers``) are what the analog estimator maps onto tiles and the GPU roofline streams.

    shape = load_shape("llada-8b")                  # published
    shape = load_shape("shakespeare-mdlm")          # from analogdiff/lm/checkpoints/<name>.json ("shape")
    shape = load_shape("my_model.toml")             # custom: the ModelShape keys below
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from analogdiff.config import ConfigError

TIME_FREQ_DIM = 256
"""Sinusoidal time-embedding width feeding the adaLN conditioning MLP (``TimestepEmbedder`` in MDLM/SEDD's
``models/dit.py``, ``frequency_embedding_size=256``)."""


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """A transformer's shape. The first nine fields are the contract shared with ``analogdiff.lm``."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    mlp: Literal["gelu", "swiglu"]
    vocab_size: int
    context_len: int
    tied_embeddings: bool = False
    """LM head shares the token-embedding matrix (GPT-2). The head still runs on its own tiles; the
    embedding lookup reads a digital copy. Only the GPU's weight footprint changes."""
    cond_dim: int = 0
    """adaLN time-conditioning width (MDLM/SEDD DiT); 0 = no time conditioning."""
    positions: Literal["learned", "rotary"] = "learned"
    """Learned absolute position embeddings (an add per token) or rotary (elementwise on q and k)."""
    source: str = ""
    """Where the numbers come from (config file), for published shapes."""

    def __post_init__(self) -> None:
        for f in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ff", "vocab_size", "context_len"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"shape.{f}: {v!r} is outside the allowed range [1, inf) (an integer)")
        if not isinstance(self.cond_dim, int) or isinstance(self.cond_dim, bool) or self.cond_dim < 0:
            raise ConfigError(f"shape.cond_dim: {self.cond_dim!r} is outside the allowed range [0, inf)")
        if self.mlp not in ("gelu", "swiglu"):
            raise ConfigError(f"shape.mlp: {self.mlp!r} is not one of 'gelu', 'swiglu'")
        if self.positions not in ("learned", "rotary"):
            raise ConfigError(f"shape.positions: {self.positions!r} is not one of 'learned', 'rotary'")
        if not isinstance(self.tied_embeddings, bool):
            raise ConfigError(f"shape.tied_embeddings: expected true or false, got {self.tied_embeddings!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"shape.n_heads: {self.n_heads} must divide d_model = {self.d_model}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"shape.n_kv_heads: {self.n_kv_heads} must divide n_heads = {self.n_heads}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def linear_layers(self) -> list[LinearLayer]:
        """Every weight matrix that runs as an MVM, with how often it runs (see ``LinearLayer.per``)."""
        d, hd, L = self.d_model, self.head_dim, self.n_layers
        out = [LinearLayer("attn.qkv", d, (self.n_heads + 2 * self.n_kv_heads) * hd, L, "token"),
               LinearLayer("attn.out", self.n_heads * hd, d, L, "token")]
        if self.mlp == "swiglu":
            out.append(LinearLayer("mlp.gate", d, self.d_ff, L, "token"))
        out += [LinearLayer("mlp.up", d, self.d_ff, L, "token"),
                LinearLayer("mlp.down", self.d_ff, d, L, "token"),
                LinearLayer("head", d, self.vocab_size, 1, "head")]
        if self.cond_dim:
            c = self.cond_dim
            out += [LinearLayer("cond.mlp1", TIME_FREQ_DIM, c, 1, "pass"),
                    LinearLayer("cond.mlp2", c, c, 1, "pass"),
                    LinearLayer("cond.adaln", c, 6 * d, L, "pass"),
                    LinearLayer("cond.final", c, 2 * d, 1, "pass")]
        return out

    def weight_params(self) -> int:
        """Parameters held in MVM weight matrices (what the analog chip stores), biases excluded."""
        return sum(ly.in_features * ly.out_features * ly.copies for ly in self.linear_layers())

    def n_params(self) -> int:
        """All parameters the GPU holds: MVM weights plus embeddings (norm gains and biases ignored)."""
        emb = self.vocab_size * self.d_model
        if self.positions == "learned":
            emb += self.context_len * self.d_model
        head = self.vocab_size * self.d_model if self.tied_embeddings else 0
        return self.weight_params() + emb - head

    def summary(self) -> str:
        kv = f"/{self.n_kv_heads}kv" if self.n_kv_heads != self.n_heads else ""
        return (f"{self.n_layers}L d={self.d_model} {self.n_heads}h{kv} ff={self.d_ff} {self.mlp} "
                f"V={self.vocab_size} ctx={self.context_len} ({self.n_params() / 1e6:,.1f}M params)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LinearLayer:
    """One kind of weight matrix. ``copies`` instances exist (one per block for block layers).

    ``per``: "token" = runs once per token-forward (every position through every block);
    "head" = once per position whose logits are needed; "pass" = once per sequence per forward pass
    (adaLN time conditioning, the same for every position).
    """

    kind: str
    in_features: int
    out_features: int
    copies: int
    per: Literal["token", "head", "pass"]


# --------------------------------------------------------------------------- published shapes
# Facts from each model's own config file (shared/REFERENCES.md, "Model shapes").
_PUBLISHED: dict[str, dict[str, Any]] = {
    "mdlm-owt": dict(  # kuleshov-group/mdlm configs/model/small.yaml + models/dit.py (GELU-tanh MLP ratio 4,
        n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=3072, mlp="gelu",  # rotary, adaLN cond)
        vocab_size=50258, context_len=1024, cond_dim=128, positions="rotary",
        source="kuleshov-group/mdlm configs/model/small.yaml, models/dit.py; vocab GPT-2 50257 + [MASK]"),
    "sedd-small": dict(  # louaaron/Score-Entropy-Discrete-Diffusion configs/model/small.yaml (same DDiT)
        n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=3072, mlp="gelu",
        vocab_size=50258, context_len=1024, cond_dim=128, positions="rotary",
        source="louaaron/Score-Entropy-Discrete-Diffusion configs/model/small.yaml; vocab 50257 + absorbing"),
    "sedd-medium": dict(  # louaaron/Score-Entropy-Discrete-Diffusion configs/model/medium.yaml
        n_layers=24, d_model=1024, n_heads=16, n_kv_heads=16, d_ff=4096, mlp="gelu",
        vocab_size=50258, context_len=1024, cond_dim=128, positions="rotary",
        source="louaaron/Score-Entropy-Discrete-Diffusion configs/model/medium.yaml; vocab 50257 + absorbing"),
    "llada-8b": dict(  # GSAI-ML/LLaDA-8B-Base config.json: d_model, n_layers, n_heads, n_kv_heads,
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=32, d_ff=12288, mlp="swiglu",  # mlp_hidden_size,
        vocab_size=126464, context_len=4096, positions="rotary",  # vocab_size, max_sequence_length
        source="GSAI-ML/LLaDA-8B-Base config.json (weight_tying false, rope, silu)"),
    "dream-7b": dict(  # Dream-org/Dream-v0-Base-7B config.json (Qwen2.5-7B body)
        n_layers=28, d_model=3584, n_heads=28, n_kv_heads=4, d_ff=18944, mlp="swiglu",
        vocab_size=152064, context_len=2048, positions="rotary",
        source="Dream-org/Dream-v0-Base-7B config.json; context 2048 as documented for generation"),
    "gpt2-small": dict(  # openai-community/gpt2 config.json: n_layer, n_embd, n_head, n_ctx, vocab_size
        n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=3072, mlp="gelu",
        vocab_size=50257, context_len=1024, tied_embeddings=True, positions="learned",
        source="openai-community/gpt2 config.json (n_inner = 4 n_embd, tied wte)"),
    "gpt2-medium": dict(  # openai-community/gpt2-medium config.json
        n_layers=24, d_model=1024, n_heads=16, n_kv_heads=16, d_ff=4096, mlp="gelu",
        vocab_size=50257, context_len=1024, tied_embeddings=True, positions="learned",
        source="openai-community/gpt2-medium config.json (n_inner = 4 n_embd, tied wte)"),
    "llama3-8b": dict(  # meta-llama/Meta-Llama-3-8B config.json
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, mlp="swiglu",
        vocab_size=128256, context_len=8192, positions="rotary",
        source="meta-llama/Meta-Llama-3-8B config.json (tie_word_embeddings false)"),
}

SHIPPED = ("shakespeare-mdlm", "shakespeare-ar")
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
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: malformed JSON at line {e.lineno}: {e.msg}") from None
    data = card.get("shape") if isinstance(card, dict) else None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: missing 'shape' object")
    data = dict(data)
    data.setdefault("name", name or path.stem)
    data.setdefault("source", f"model card {path.name}")
    return shape_from_dict(data, where=str(path))


def shape_from_dict(data: Mapping[str, Any], where: str = "shape") -> ModelShape:
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(_FIELDS))}")
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
    text = str(shape)
    if text in _PUBLISHED:
        return ModelShape(name=text, **_PUBLISHED[text])
    card = _checkpoint_card(text)
    if card is not None:
        return shape_from_card(card, text)
    path = Path(text)
    if path.suffix in (".toml", ".json") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: no such shape file")
        if path.suffix == ".json":
            return shape_from_card(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: malformed TOML: {e}") from None
        data.setdefault("name", path.stem)
        return shape_from_dict(data, where=str(path))
    raise ConfigError(f"unknown model shape '{text}'; available: {', '.join(list_shapes())} "
                      f"(or a path to a .toml shape)")
