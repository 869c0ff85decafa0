"""Save a programmed model and load it back bit for bit: program once, evaluate at many drift times later.

    save_programmed(amodel, "runs/mdlm-pcm")                 # runs/mdlm-pcm.safetensors + .json
    amodel = load_programmed("runs/mdlm-pcm", model)          # model: the digital architecture
    set_drift_time(amodel, 86400.0)                           # same outputs as the original at 1 day

Files (nothing is pickled):

* ``NAME.safetensors``: every tensor. ``analog/<layer>/<field>`` per analog layer: what programming drew
  (``Tile.programmed``: device presence, conductances as programmed with their noise (µS, float64), stuck
  masks, drift exponents or relaxation draws, the drift-compensation reference read), the weight mapping
  (``significance``, ``weight_per_us``), the ADC full scales, the IR-drop correction's per-column gains and
  offsets (``ir_gain``, ``ir_offset``: ``compensation.py``, when the card has ``tile.ir_compensation``), the
  bias and the state of the per-MVM noise stream (``read_gen_state``); ``digital/<key>`` for every other
  entry of the model's ``state_dict`` (embeddings, norms, ...).
* ``NAME.json``: the format, the SHA-256 of the tensor file, the hardware card as TOML text, the model
  card (``amodel.card`` when the model has one, e.g. ``CharLM``), per analog matrix (an ``AnalogLinear``;
  a convolution has one per group) its name, seeds, shape, tiling, calibrated DAC range, read-noise rank
  and current drift time, and the names of the analog convolutions.

``load_programmed`` needs the digital architecture (``crossbar`` knows nothing about language models): an
``nn.Module`` of the same structure, e.g. ``lm.checkpoint.model_from_card(card)``, or a callable that builds
one from the saved model card. Its weights are replaced by the saved ones. Any defect of the files
(missing, truncated, corrupt, another format, a card that no longer loads, a model that does not match)
is one ``ValueError`` line naming the file and what is wrong.
"""
from __future__ import annotations

import copy
import hashlib
import json
import pathlib
import tomllib
from typing import Callable

import torch
from torch import nn

from ..config import ConfigError, dump_hardware, hardware_from_dict
from ..safe_io import atomic_write_bytes, load_tensors, read_json, write_json
from .conv import AnalogConv, ConvGeometry
from .layers import AnalogLinear, analog_layers
from .tile import Tile

FORMAT, VERSION = "analogdiff-programmed", 1
_LAYER_KEYS = ("name", "index", "seed", "ref_seed", "in_features", "out_features", "n_slices",
               "read_noise_rank", "calibrated", "x_range", "t_s", "has_bias")


def _paths(path) -> tuple[pathlib.Path, pathlib.Path]:
    p = pathlib.Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _digital_keys(amodel: nn.Module, analog: set[str]) -> list[str]:
    """State-dict keys of ``amodel`` that do not belong to an analog layer."""
    def owner(key: str) -> str:
        return key.rpartition(".")[0]
    return [k for k in amodel.state_dict() if owner(k) not in analog]


def save_programmed(amodel: nn.Module, path) -> tuple[pathlib.Path, pathlib.Path]:
    """Write the programmed model ``amodel`` (from ``analogize``) to ``path``.safetensors + .json.

    Returns the two paths. Both files are written atomically (a crash leaves the old files or none).
    """
    from safetensors.torch import save

    layers = analog_layers(amodel)
    hw = layers[0][1].hw
    if any(layer.hw != hw for _, layer in layers):
        raise ConfigError("save_programmed: the analog layers were programmed on different cards")
    card = getattr(amodel, "card", None)
    try:
        model_card = json.loads(json.dumps(card)) if isinstance(card, dict) else None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"save_programmed: the model card is not JSON ({e})") from None
    tensors: dict[str, torch.Tensor] = {}
    meta = []
    for name, layer in layers:
        pre = f"analog/{name}/"
        if layer.tile is None:
            raise ConfigError(f"save_programmed: layer '{name}' released its programming (release_programming)")
        for key, value in layer.tile.programmed().items():
            if value is not None:
                tensors[pre + key] = value
        tensors[pre + "significance"] = layer.significance
        tensors[pre + "weight_per_us"] = layer.weight_per_us
        tensors[pre + "read_gen_state"] = layer._read_gen.get_state()
        if layer.bias is not None:
            tensors[pre + "bias"] = layer.bias
        if layer.adc is not None and layer.adc.full_scale is not None:
            tensors[pre + "adc_full_scale"] = torch.from_numpy(layer.adc.full_scale)
        if layer.ir_comp is not None:
            tensors[pre + "ir_gain"], tensors[pre + "ir_offset"] = layer.ir_comp["gain"], layer.ir_comp["offset"]
        meta.append({"name": name, "index": layer.index, "seed": layer.seed, "ref_seed": layer.tile.ref_seed,
                     "in_features": layer.in_features, "out_features": layer.out_features,
                     "n_slices": layer.n_slices, "read_noise_rank": layer.read_noise_rank,
                     "calibrated": layer.calibrated, "x_range": layer.dac.x_range, "t_s": layer.state.t_s,
                     "has_bias": layer.bias is not None,
                     "ir_vectors": layer.ir_comp["vectors"] if layer.ir_comp is not None else None})
    state = amodel.state_dict()
    for key in _digital_keys(amodel, {n for n, _ in layers}):
        tensors["digital/" + key] = state[key]
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                metadata={"format": FORMAT})
    convs = [n for n, m in amodel.named_modules() if isinstance(m, AnalogConv)]
    doc = {"format": FORMAT, "version": VERSION, "tensors_sha256": hashlib.sha256(data).hexdigest(),
           "hardware_toml": dump_hardware(hw), "model_card": model_card, "layers": meta, "convs": convs}
    st_path, js_path = _paths(path)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(st_path, data)
    write_json(doc, js_path)
    return st_path, js_path


def _read(path) -> tuple[dict, dict[str, torch.Tensor], pathlib.Path]:
    """The JSON document and the tensors, checked against each other; one-line ValueErrors."""
    st_path, js_path = _paths(path)
    doc = read_json(js_path, what="programmed-model description")
    if doc.get("format") != FORMAT:
        raise ConfigError(f"{js_path}: not a programmed analogdiff model (format must be '{FORMAT}')")
    if doc.get("version") != VERSION:
        raise ConfigError(f"{js_path}: version {doc.get('version')!r} is not supported (this is {VERSION})")
    missing = [k for k in ("tensors_sha256", "hardware_toml", "layers") if k not in doc]
    if missing:
        raise ConfigError(f"{js_path}: missing {', '.join(missing)}")
    if not st_path.is_file():
        raise ConfigError(f"{st_path}: no such file (a programmed model is NAME.safetensors + NAME.json)")
    data = st_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != doc["tensors_sha256"]:
        raise ConfigError(f"{st_path}: corrupt or truncated ({len(data)} bytes; its SHA-256 does not match "
                         f"{js_path.name})")
    return doc, load_tensors(st_path)[0], st_path


def _layer_meta(doc: dict, js_path: pathlib.Path) -> list[dict]:
    layers = doc["layers"]
    if not isinstance(layers, list) or not layers:
        raise ConfigError(f"{js_path}: 'layers' must be a non-empty list")
    for i, m in enumerate(layers):
        if not isinstance(m, dict) or any(k not in m for k in _LAYER_KEYS):
            raise ConfigError(f"{js_path}: layers[{i}] needs {', '.join(_LAYER_KEYS)}")
    return layers


def load_programmed(path, model: nn.Module | Callable[[dict | None], nn.Module]) -> nn.Module:
    """The programmed model saved at ``path``, bit-identical to the one saved (same outputs at every drift
    time, the noise streams where they were).

    ``model``: the digital architecture — an ``nn.Module`` with the same ``nn.Linear`` layers (it is
    copied, not changed), or a callable building one from the saved model card.
    """
    doc, tensors, st_path = _read(path)
    js_path = st_path.with_suffix(".json")
    try:
        hw = hardware_from_dict(tomllib.loads(doc["hardware_toml"]))
    except (tomllib.TOMLDecodeError, ConfigError) as e:
        raise ConfigError(f"{js_path}: the saved hardware card does not load ({e})") from None
    meta = _layer_meta(doc, js_path)
    base = model
    if callable(model) and not isinstance(model, nn.Module):
        try:
            base = model(doc.get("model_card"))
        except (ValueError, TypeError, KeyError) as e:
            raise ConfigError(f"{js_path}: the saved model card does not build a model "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(base, nn.Module):
        raise ConfigError(f"{js_path}: model must be an nn.Module or build one from the model card")
    amodel = copy.deepcopy(base)
    _conv_shells(amodel, doc.get("convs", []), js_path)

    def tensor(key: str, required: bool = True) -> torch.Tensor | None:
        if key not in tensors and required:
            raise ConfigError(f"{st_path}: missing tensor {key}")
        return tensors.get(key)

    linears = {n for n, m in amodel.named_modules() if isinstance(m, (nn.Linear, AnalogLinear))}
    saved = {m["name"] for m in meta}
    if linears != saved:
        extra, lost = sorted(linears - saved)[:3], sorted(saved - linears)[:3]
        raise ConfigError(f"{js_path}: the model does not match the saved layers (not saved: {extra}, "
                         f"not in the model: {lost})")
    for m in meta:
        name, pre = m["name"], f"analog/{m['name']}/"
        mod = amodel.get_submodule(name) if name else amodel
        if (mod.in_features, mod.out_features) != (m["in_features"], m["out_features"]):
            raise ConfigError(f"{js_path}: layer '{name}' is {m['in_features']}→{m['out_features']} in the "
                             f"file but {mod.in_features}→{mod.out_features} in the model")
        programmed = {k: tensor(pre + k, k in ("present", "g_prog_us", "stuck", "reference"))
                      for k in Tile.PROGRAMMED}
        try:
            tile = Tile.restore(programmed, hw.device, hw.drift, hw.wire, int(m["ref_seed"]))
            fs = tensor(pre + "adc_full_scale", False)
            comp = hw.tile.ir_compensation is not None
            ir_comp = ({"gain": tensor(pre + "ir_gain"), "offset": tensor(pre + "ir_offset"),
                        "vectors": int(m.get("ir_vectors") or 0)} if comp else None)
            layer = AnalogLinear.restore(
                hw, name=name, seed=int(m["seed"]), index=int(m["index"]), in_features=m["in_features"],
                out_features=m["out_features"], n_slices=int(m["n_slices"]),
                read_noise_rank=m["read_noise_rank"], bias=tensor(pre + "bias", bool(m["has_bias"])),
                tile=tile, significance=tensor(pre + "significance"),
                weight_per_us=tensor(pre + "weight_per_us"), calibrated=bool(m["calibrated"]),
                x_range=m["x_range"], adc_full_scale=None if fs is None else fs.numpy(),
                t_s=float(m["t_s"]), ir_comp=ir_comp)
            layer._read_gen.set_state(tensor(pre + "read_gen_state"))
        except (RuntimeError, ValueError, TypeError, KeyError) as e:
            raise ConfigError(f"{st_path}: layer '{name}' does not restore "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        if not name:
            return layer
        parent_name, _, child = name.rpartition(".")
        setattr(amodel.get_submodule(parent_name) if parent_name else amodel, child, layer)
    _load_digital(amodel, tensors, saved, st_path)
    return amodel


def _conv_shells(amodel: nn.Module, convs: list, js_path: pathlib.Path) -> None:
    """Replace the saved convolutions of the digital architecture by ``AnalogConv`` shells whose
    ``matrices`` are placeholder ``nn.Linear`` (one per group), restored like any other analog layer."""
    have = {n for n, m in amodel.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))}
    if not isinstance(convs, list) or set(convs) != have:
        raise ConfigError(f"{js_path}: the model's convolutions {sorted(have)[:3]} do not match the saved ones "
                         f"{sorted(convs)[:3] if isinstance(convs, list) else convs!r}")
    for name in convs:
        conv = amodel.get_submodule(name)
        shell = AnalogConv.__new__(AnalogConv)
        nn.Module.__init__(shell)
        shell.name, shell.geometry = name, ConvGeometry.of(conv, name)
        g = shell.geometry
        shell.matrices = nn.ModuleList(nn.Linear(g.in_features, g.out_features, bias=conv.bias is not None)
                                       for _ in range(g.groups))
        parent_name, _, child = name.rpartition(".")
        setattr(amodel.get_submodule(parent_name) if parent_name else amodel, child, shell)


def _load_digital(amodel: nn.Module, tensors: dict[str, torch.Tensor], analog: set[str],
                  st_path: pathlib.Path) -> None:
    want = _digital_keys(amodel, analog)
    have = sorted(k[len("digital/"):] for k in tensors if k.startswith("digital/"))
    if sorted(want) != have:
        extra, lost = sorted(set(have) - set(want))[:3], sorted(set(want) - set(have))[:3]
        raise ConfigError(f"{st_path}: the model's digital parameters do not match the file (only in the "
                         f"file: {extra}, only in the model: {lost})")
    state = amodel.state_dict()
    with torch.no_grad():
        for key in want:
            src, dst = tensors["digital/" + key], state[key]
            if src.shape != dst.shape or src.dtype != dst.dtype:
                raise ConfigError(f"{st_path}: digital/{key} is {src.dtype} {tuple(src.shape)}, the model "
                                 f"needs {dst.dtype} {tuple(dst.shape)}")
            dst.copy_(src)
