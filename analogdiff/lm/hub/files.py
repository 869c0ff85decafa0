"""The files of a downloaded checkpoint directory: ``config.json``, the safetensors weights, ``tokenizer.json``.

Weights are ``model.safetensors`` (one file) or shards listed in ``model.safetensors.index.json``
(``{"weight_map": {tensor name: shard file}}``), the layout Hugging Face ``save_pretrained`` writes. A single
file wins when both exist (as in ``transformers``). Pickled weights (``pytorch_model.bin``, ``*.pt``) are
never opened. Every defect is a one-line ``ConfigError`` naming the file and, where there is one, the field.
"""
from __future__ import annotations

import pathlib
from typing import Any

import torch

from analogdiff import checks
from analogdiff.checks import ConfigError

from ..checkpoint import load_tensors, read_json

CONFIG = "config.json"
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
TOKENIZER = "tokenizer.json"
MAX_SIZE = 2 ** 31 - 1
"""Largest width, count or token id a config may give (int32 indexing); layer counts are bounded separately."""
MAX_LAYERS = 1000
"""Largest layer count (published models have at most a few hundred); bounds the work of building modules."""


def is_checkpoint_dir(path) -> bool:
    """True for a directory holding a ``config.json`` (a published-format checkpoint)."""
    path = pathlib.Path(path)
    return path.is_dir() and (path / CONFIG).is_file()


class Config:
    """``config.json`` with typed, one-line-error field access: ``cfg.int("hidden_size")``."""

    def __init__(self, path: pathlib.Path):
        self.path, self.data = path, read_json(path, "config")

    def _get(self, key: str, default: Any):
        if key in self.data and self.data[key] is not None:
            return self.data[key]
        if default is _REQUIRED:
            raise ConfigError(f"{self.path}: missing field '{key}'")
        return default

    def int(self, key: str, default: Any = None, lo: int = 1, hi: int = MAX_SIZE):
        """An integer field in [lo, hi]; absent or null → ``default`` (None: required)."""
        value = self._get(key, _REQUIRED if default is None else default)
        return checks.integer(f"{self.path}: field '{key}'", value, lo, hi)

    def layers(self, key: str) -> int:
        """A layer count, at most :data:`MAX_LAYERS`."""
        return self.int(key, hi=MAX_LAYERS)

    def float(self, key: str, default: Any = None) -> float:
        """A positive finite number (norm epsilons, rotary bases)."""
        value = self._get(key, _REQUIRED if default is None else default)
        return checks.number(f"{self.path}: field '{key}'", value, 0.0, 1e30, lo_open=True)

    def bool(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path}: field '{key}' must be true or false, got {value!r}")
        return value

    def choice(self, key: str, allowed: tuple, default: Any = None):
        """A field that must equal one of ``allowed`` (what this loader implements); absent → ``default``."""
        value = self._get(key, _REQUIRED if default is None else default)
        if value not in allowed:
            raise ConfigError(f"{self.path}: field '{key}' = {value!r} is not supported; supported: "
                             f"{', '.join(map(repr, allowed))}")
        return value


_REQUIRED = object()


def read_weights(directory: pathlib.Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors of the checkpoint in ``directory``, and for each the file it came from (for messages)."""
    single, index = directory / SINGLE, directory / INDEX
    if single.is_file():
        tensors, _ = load_tensors(single)
        return tensors, dict.fromkeys(tensors, str(single))
    if not index.is_file():
        pickled = sorted(p.name for p in directory.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        extra = f"; {pickled[0]} is pickled and never loaded: convert it to safetensors" if pickled else ""
        raise ConfigError(f"checkpoint: {directory} has neither {SINGLE} nor {INDEX}{extra}")
    weight_map = read_json(index, "shard index").get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise ConfigError(f"{index}: field 'weight_map' must map tensor names to shard file names")
    tensors, origin = {}, {}
    for shard in sorted(set(weight_map.values())):
        path = directory / shard
        if pathlib.Path(shard).name != shard or not shard.endswith(".safetensors"):
            raise ConfigError(f"{index}: shard {shard!r} must be a .safetensors file name inside {directory}")
        listed = {k for k, v in weight_map.items() if v == shard}
        found, _ = load_tensors(path)
        absent = sorted(listed - set(found))
        if absent:
            raise ConfigError(f"{path}: tensor '{absent[0]}' listed in {INDEX} is not in this shard")
        for name in listed:
            tensors[name], origin[name] = found[name], str(path)
    return tensors, origin
