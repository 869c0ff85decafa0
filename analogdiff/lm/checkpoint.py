"""Model checkpoints: weights as safetensors, the model card as JSON beside them. Nothing is ever unpickled.

A checkpoint ``NAME.safetensors`` holds the backbone's state dict; ``NAME.json`` is the model card, a dict
with at least ``kind`` ("mdlm"|"ar"), ``shape`` (the keys of :class:`~analogdiff.shapes.ModelShape`) and ``vocab``
(the characters, the mask token being one more id). Shipped checkpoints live in ``analogdiff/lm/checkpoints``.
"""
from __future__ import annotations

import os
import pathlib

import torch

from analogdiff import checks
from analogdiff.checks import ConfigError

from ..safe_io import load_tensors, read_json, save_tensors, write_json  # noqa: F401 (also for lm.hub, lm.train)
from ..shapes import SHIPPED, shape_from_dict
from .corpus import Vocab
from .model import KINDS, CharLM

CHECKPOINT_DIR = pathlib.Path(__file__).parent / "checkpoints"


def save_model(model: CharLM, path, extra_card: dict | None = None) -> pathlib.Path:
    """Write ``model`` to ``path`` (``.safetensors``) and its card to the ``.json`` beside it."""
    path = pathlib.Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    card = dict(model.card)
    card.update(extra_card or {})
    card["kind"] = model.kind
    card["shape"] = model.shape.to_dict()
    card["vocab"] = model.vocab.chars
    save_tensors(model.backbone.state_dict(), path, metadata={"kind": model.kind})
    write_json(card, path.with_suffix(".json"))
    return path


def resolve(name_or_path) -> pathlib.Path:
    """A shipped model name or a path → the ``.safetensors`` path."""
    if isinstance(name_or_path, str) and name_or_path in SHIPPED:
        return CHECKPOINT_DIR / f"{name_or_path}.safetensors"
    text = checks.text("model", str(name_or_path), checks.MAX_PATH_CHARS)
    path = pathlib.Path(text)
    weights = path.with_suffix(".safetensors")
    if path.suffix in (".safetensors", ".json") or checks.exists(path) or checks.exists(weights):
        return weights
    if os.sep in text:
        raise ConfigError(f"model: {checks.short(text)} does not exist (a checkpoint directory with config.json, "
                         f"or a .safetensors file beside its .json card)")
    raise ConfigError(f"model: unknown name {checks.short(text)}; shipped models: {', '.join(SHIPPED)} "
                     f"(or a path to a .safetensors file)")


def model_from_card(card: dict, where: str = "model card") -> CharLM:
    """An untrained :class:`CharLM` built from a card's ``kind``, ``shape`` and ``vocab``."""
    kind = card.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    shape_dict = card.get("shape")
    if not isinstance(shape_dict, dict):
        raise ConfigError(f"{where}: missing 'shape' object")
    shape = shape_from_dict({"name": card.get("name", "model"), **shape_dict}, where=f"{where}: shape")
    chars = card.get("vocab")
    if not isinstance(chars, str):
        raise ConfigError(f"{where}: 'vocab' must be a string of characters")
    vocab = Vocab(chars)
    if shape.vocab_size != vocab.size:
        raise ConfigError(f"{where}: shape.vocab_size={shape.vocab_size} disagrees with the vocabulary "
                         f"({len(chars)} characters + mask = {vocab.size})")
    return CharLM(kind, shape, vocab, card=card)


def load_model(name_or_path):
    """Load a shipped model (``shakespeare-mdlm``, ``shakespeare-ar``), a ``.safetensors`` path + card, or a
    published checkpoint directory.

    A directory holding a ``config.json`` is a published checkpoint (MDLM-OWT, LLaDA, Dream, GPT-2, Llama):
    see :mod:`analogdiff.lm.hub`. Errors (unknown name, missing/truncated/corrupt file, card and weights
    disagreeing) are one-line ``ConfigError``s. The model is returned in eval mode.
    """
    if not (isinstance(name_or_path, str) and name_or_path in SHIPPED) and checks.is_dir(name_or_path):
        from .hub import is_checkpoint_dir, load_checkpoint_dir

        if not is_checkpoint_dir(name_or_path):
            raise ConfigError(f"checkpoint: directory {name_or_path} has no config.json (a published checkpoint "
                             f"needs config.json, model.safetensors or its index, and tokenizer.json)")
        return load_checkpoint_dir(name_or_path)
    path = resolve(name_or_path)
    card = read_json(path.with_suffix(".json"))
    where = f"model card {path.with_suffix('.json')}"
    try:
        model = model_from_card(card, where)
    except ValueError as e:
        raise ConfigError(str(e) if str(e).startswith(where) else f"{where}: {e}") from None
    tensors, _ = load_tensors(path)
    expected = model.backbone.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ConfigError(f"checkpoint {path}: weights disagree with the card (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    for key, ref in expected.items():
        if tensors[key].shape != ref.shape:
            raise ConfigError(f"checkpoint {path}: {key} has shape {tuple(tensors[key].shape)}, the card's shape "
                             f"needs {tuple(ref.shape)}")
        if not torch.isfinite(tensors[key]).all():
            raise ConfigError(f"checkpoint {path}: {key} holds non-finite values")
    model.backbone.load_state_dict(tensors)
    return model.eval()
