"""Published checkpoints from a local directory: MDLM-OWT, LLaDA, Dream (masked diffusion) and GPT-2, Llama
(autoregressive baselines), read from the files a model hub serves — never downloaded here::

    model = load_checkpoint_dir("~/models/mdlm-owt")   # or analogdiff.load_model(path): it dispatches here
    model.kind, model.shape, model.vocab               # "mdlm" | "ar", ModelShape, BPEVocab
    logits = model(model.vocab.encode("Hello"))        # (B, T, V)

The directory holds ``config.json``, ``model.safetensors`` (or shards + ``model.safetensors.index.json``) and
``tokenizer.json``. The architecture is chosen by ``config.json``'s ``model_type`` (else ``architectures``);
each module cites the published modeling code whose parameter names it uses. Weights are loaded in float32.
"""
from __future__ import annotations

import pathlib

import torch

from analogdiff.config import ConfigError
from analogdiff.shapes import ModelShape

from ..tokenizer import BPEVocab
from . import gpt2, llada, llama, mdlm
from .files import CONFIG, TOKENIZER, Config, is_checkpoint_dir, read_weights
from .layers import HubLM

#: model_type (lower case) → (shape_fields(cfg, name), builder(cfg, shape, card), mask id from the config)
ARCHITECTURES = {
    "mdlm": (mdlm.shape_fields, mdlm.MDLM, lambda cfg: cfg.int("vocab_size") - 1),
    "llada": (llada.shape_fields, llada.LLaDA, lambda cfg: cfg.int("mask_token_id", llada.MASK_ID, lo=0)),
    "dream": (llama.dream_shape_fields, lambda cfg, s, card: llama.LlamaLike(cfg, s, card, "mdlm"),
              lambda cfg: cfg.int("mask_token_id", llama.DREAM_MASK_ID, lo=0)),
    "gpt2": (gpt2.shape_fields, gpt2.GPT2, lambda cfg: None),
    "llama": (llama.shape_fields, lambda cfg, s, card: llama.LlamaLike(cfg, s, card, "ar"), lambda cfg: None),
}
#: ``architectures[0]`` → model_type, for configs without ``model_type``
CLASS_NAMES = {"MDLM": "mdlm", "LLaDAModelLM": "llada", "DreamModel": "dream", "GPT2LMHeadModel": "gpt2",
               "LlamaForCausalLM": "llama"}

__all__ = ["ARCHITECTURES", "HubLM", "is_checkpoint_dir", "load_checkpoint_dir", "read_config"]


def model_type(cfg: Config) -> str:
    """The supported architecture ``config.json`` names (``model_type``, else ``architectures[0]``)."""
    kind = cfg.data.get("model_type")
    if kind is None:
        names = cfg.data.get("architectures")
        if not isinstance(names, list) or not names:
            raise ConfigError(f"{cfg.path}: missing field 'model_type' (and no 'architectures' list)")
        kind = CLASS_NAMES.get(names[0], names[0])
    if not isinstance(kind, str) or kind.lower() not in ARCHITECTURES:
        raise ConfigError(f"{cfg.path}: field 'model_type' = {kind!r} is not supported; supported: "
                         f"{', '.join(ARCHITECTURES)}")
    return kind.lower()


def _origin(name: str, origin: dict[str, str], directory: pathlib.Path) -> str:
    for key in (name, name.removeprefix("transformer.")):
        if key in origin:
            return origin[key]
    return f"checkpoint {directory}"


def _check_tensors(model: HubLM, tensors: dict, origin: dict, directory: pathlib.Path) -> dict:
    """The loaded tensors, checked against the parameters the config implies, in float32."""
    expected = dict(model.named_parameters())  # shared (tied) weights once, under the embedding's name
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing:
        raise ConfigError(f"checkpoint {directory}: tensor '{missing[0]}' is missing from the weights "
                         f"({len(missing)} missing; {CONFIG} describes a {model.card['architecture']} model)")
    if unexpected:
        raise ConfigError(f"{_origin(unexpected[0], origin, directory)}: unexpected tensor '{unexpected[0]}' "
                         f"({len(unexpected)} unexpected; not a parameter of the {model.card['architecture']} "
                         f"model {CONFIG} describes)")
    out = {}
    for name, ref in expected.items():
        t, where = tensors.pop(name), _origin(name, origin, directory)  # pop: one copy per tensor at a time
        if tuple(t.shape) != tuple(ref.shape):
            raise ConfigError(f"{where}: tensor '{name}' has shape {tuple(t.shape)}, {CONFIG} needs "
                             f"{tuple(ref.shape)}")
        if not t.is_floating_point():
            raise ConfigError(f"{where}: tensor '{name}' has dtype {t.dtype}; weights must be floating point")
        t = t.to(torch.float32)
        if not torch.isfinite(t).all():
            raise ConfigError(f"{where}: tensor '{name}' holds non-finite values")
        out[name] = t
    return out


def read_config(path) -> tuple[Config, str, ModelShape]:
    """``config.json`` of checkpoint directory ``path``: (the config, its architecture, the model's shape).
    Reads nothing else: enough to price the model (``analogdiff.estimate(shape, ...)``) without its weights."""
    directory = pathlib.Path(path).expanduser()
    cfg = Config(directory / CONFIG)
    kind = model_type(cfg)
    try:
        shape = ModelShape(**ARCHITECTURES[kind][0](cfg, directory.name), source=str(cfg.path))
    except ConfigError as e:
        raise ConfigError(f"{cfg.path}: {e}") from None
    if shape.positions == "rotary" and shape.head_dim % 2:
        raise ConfigError(f"{cfg.path}: head dimension {shape.head_dim} must be even for rotary positions")
    return cfg, kind, shape


def load_checkpoint_dir(path) -> HubLM:
    """The model in checkpoint directory ``path`` (see the module docstring), in eval mode.

    Anything missing, malformed or unsupported is a one-line ``ConfigError`` naming the file and field.
    """
    directory = pathlib.Path(path).expanduser()
    cfg, kind, shape = read_config(directory)
    _, build, mask_id = ARCHITECTURES[kind]
    card = {"architecture": kind, "source": str(directory)}
    with torch.device("meta"):  # no memory for weights until they are loaded
        model = build(cfg, shape, card)
        model.tie_weights()
    bos = cfg.int("bos_token_id", -1, lo=-1)  # absent or null: -1, no BOS token
    vocab = BPEVocab.from_file(directory / TOKENIZER, shape.vocab_size, mask_id(cfg), None if bos < 0 else bos)
    tensors, origin = read_weights(directory)
    tensors = _check_tensors(model, model.rename(tensors), origin, directory)
    model.load_state_dict(tensors, strict=False, assign=True)  # strict check done above (tied heads absent)
    model.tie_weights()
    model.vocab = vocab
    return model.eval()
