"""Checkpoint files, written atomically and read with one-line errors: safetensors for tensors, JSON beside
them. Nothing is ever unpickled. Used by ``lm.checkpoint`` (model weights, training state) and
``crossbar.state`` (programmed models)."""
from __future__ import annotations

import json
import os
import pathlib

import torch

from analogdiff import checks
from analogdiff.checks import ConfigError


def atomic_write_bytes(path: pathlib.Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_tensors(tensors: dict[str, torch.Tensor], path, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` to ``path`` (safetensors), atomically."""
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    atomic_write_bytes(pathlib.Path(path), data)


def load_tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file; any defect (missing, truncated, corrupt) is a one-line ``ConfigError``."""
    from safetensors import safe_open

    path = pathlib.Path(path)
    if not checks.is_file(path):
        raise ConfigError(f"checkpoint: weights file {checks.shown_path(path)} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # safetensors raises several types for bad files
        raise ConfigError(f"checkpoint: {path} is not a readable safetensors file ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'corrupt'})") from None


def write_json(obj, path) -> None:
    atomic_write_bytes(pathlib.Path(path), (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path, what: str = "model card") -> dict:
    """A JSON object from ``path``; missing, malformed or non-object files are one-line ``ConfigError``s that
    call the file ``what``."""
    path = pathlib.Path(path)
    if not checks.is_file(path):
        raise ConfigError(f"checkpoint: {what} {checks.shown_path(path)} does not exist")
    obj = checks.parse_json(f"checkpoint: {what} {checks.shown_path(path)}",
                            checks.read_text(f"checkpoint: {what}", path))
    if not isinstance(obj, dict):
        raise ConfigError(f"checkpoint: {what} {checks.shown_path(path)} must hold a JSON object")
    return obj
