"""What ``analogize`` maps and what it leaves digital: the plan it follows and the report it leaves.

    amodel = analogize(model, hw, seed=0)
    print(mapping_report(amodel).table())      # one row per layer; .to_dict() for JSON

Mapped to tiles: ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``. Every other module that holds parameters
stays digital and is listed with the reason; none is skipped in silence. Embeddings (a table lookup) and
normalizations (per-element scale and shift) are digital by design; any other parameterized module left
digital (Conv3d, ConvTranspose, nn.MultiheadAttention's functional projections, custom parameters) is
also named in a warning by ``analogize``.

Tiles of one matrix (in × out): ``bit_slices × ⌈in / rows⌉ × ⌈out / cols⌉`` (``mapping.tile_counts``);
a conv maps to one matrix per group. Utilization = weight cells / cells of the layer's tiles
= in · out / (R · C · rows · cols) (each slice holds every weight once).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from ..checks import ConfigError
from ..config import Hardware

MAPPED = (nn.Linear, nn.Conv1d, nn.Conv2d)
_NORMS = tuple(c for c in (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase,
                           getattr(nn, "RMSNorm", None)) if c is not None)


def _is_norm(module: nn.Module) -> bool:
    """torch's normalization layers, and a model's own norm classes (``RMSNorm``, ``LayerNorm`` written by
    hand, as in published modeling files): a class whose name ends in "Norm" and holds only a gain (and bias)."""
    if isinstance(module, _NORMS):
        return True
    own = {n for n, _ in module.named_parameters(recurse=False)}
    return type(module).__name__.endswith("Norm") and bool(own) and own <= {"weight", "bias", "scale", "shift"}


def _is_embedding(module: nn.Module) -> bool:
    """torch's embeddings, and a model's own embedding classes (a class named ``...Embedding...`` or
    ``...EmbeddingLayer`` holding one table, as MDLM's ``EmbeddingLayer``)."""
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return True
    own = [p for _, p in module.named_parameters(recurse=False)]
    return "Embedding" in type(module).__name__ and len(own) == 1 and own[0].dim() == 2


def digital_reason(module: nn.Module, parent: nn.Module | None = None) -> str | None:
    """Why ``module`` stays digital (None: it is mapped to tiles). ``parent``: the module holding it."""
    kind = type(module).__name__
    if isinstance(parent, nn.MultiheadAttention):
        return "inside nn.MultiheadAttention, whose forward reads this weight directly"
    if isinstance(module, MAPPED):
        return None
    if _is_embedding(module):
        return "lookup table: rows are read from memory, no matrix-vector product"
    if _is_norm(module):
        return "normalization: per-element scale and shift on the digital units"
    if isinstance(module, nn.MultiheadAttention):
        return ("applies its input projections through the functional API, which analogize cannot "
                "intercept (build attention from nn.Linear to map them)")
    if isinstance(module, nn.modules.conv._ConvNd):
        return f"{kind} is not mapped (analogize maps Conv1d and Conv2d)"
    own = ", ".join(n for n, _ in module.named_parameters(recurse=False))
    return f"{kind} uses its own parameters ({own}) in its forward; analogize maps nn.Linear, Conv1d, Conv2d"


def expected_digital(module: nn.Module) -> bool:
    """Embeddings and normalizations: digital by design (no warning)."""
    return _is_embedding(module) or _is_norm(module)


def plan(model: nn.Module) -> list[tuple[str, nn.Module, str | None]]:
    """Every module of ``model`` that is mapped or holds parameters of its own, in ``named_modules``
    order: (name, module, reason it stays digital or None when mapped)."""
    modules = dict(model.named_modules())
    rows = []
    for name, mod in modules.items():
        parent = modules[name.rpartition(".")[0]] if name else None
        if isinstance(mod, MAPPED) or any(True for _ in mod.parameters(recurse=False)):
            rows.append((name, mod, digital_reason(mod, parent)))
    return rows


@dataclass(frozen=True)
class LayerMapping:
    """One row of the mapping report."""

    name: str                     # module path ("" = the model itself)
    type: str                     # class of the original module
    status: str                   # "analog" | "digital"
    reason: str | None            # why it stays digital (None when analog)
    parameters: int               # weights and biases of the layer
    matrix: tuple[int, int] | None    # (in_features, out_features) of one matrix (analog)
    matrices: int                 # matrices on tiles: 1 for Linear, groups for a conv, 0 when digital
    tiles: tuple[int, int, int] | None  # (bit slices, row tiles, column tiles) per matrix (analog)
    tile_count: int               # matrices × slices × row tiles × column tiles
    utilization: float | None     # weight cells / cells of its tiles (analog)
    calibrated: bool | None       # ranges from recorded data (analog on a card that needs them, else None)


@dataclass(frozen=True)
class MappingReport:
    """Per layer of an analogized model: analog or digital (and why), tiles and their utilization."""

    hardware: str
    tile_shape: tuple[int, int]   # (rows, cols) of one tile
    layers: tuple[LayerMapping, ...]

    @property
    def analog_tiles(self) -> int:
        return sum(ly.tile_count for ly in self.layers)

    def to_dict(self) -> dict[str, Any]:
        analog = sum(ly.parameters for ly in self.layers if ly.status == "analog")
        total = sum(ly.parameters for ly in self.layers)
        return {"hardware": self.hardware, "tile_shape": list(self.tile_shape),
                "analog_tiles": self.analog_tiles, "analog_parameter_fraction": analog / total if total else 0.0,
                "layers": [{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(ly).items()}
                           for ly in self.layers]}

    def table(self) -> str:
        """A readable table: one line per layer, then the totals."""
        head = ("layer", "type", "status", "matrix in×out", "tiles G×S×R×C", "util", "note")
        rows = [(ly.name or "<model>", ly.type, ly.status,
                 f"{ly.matrix[0]}×{ly.matrix[1]}" if ly.matrix else "-",
                 f"{ly.matrices}×{'×'.join(map(str, ly.tiles))} = {ly.tile_count}" if ly.tiles else "-",
                 f"{ly.utilization:.1%}" if ly.utilization is not None else "-",
                 ly.reason or ("uncalibrated: dynamic input ranges" if ly.calibrated is False else ""))
                for ly in self.layers]
        widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in (head, *rows)]
        d = self.to_dict()
        lines.append(f"{d['analog_tiles']:,} tiles of {self.tile_shape[0]}×{self.tile_shape[1]} on "
                     f"{self.hardware}; {d['analog_parameter_fraction']:.1%} of the parameters are analog")
        return "\n".join(line.rstrip() for line in lines)


def needs_calibration(hw: Hardware) -> bool:
    return ((hw.dac is not None and hw.dac.input_range == "static")
            or (hw.adc is not None and hw.adc.output_range == "calibrated"))


def _analog_row(name: str, kind: str, mats: list) -> LayerMapping:
    """The row of a layer programmed as ``mats`` (its AnalogLinear matrices, all of one shape)."""
    m0, t = mats[0], mats[0].hw.tile
    tiles = (m0.n_slices, m0.n_row_tiles, m0.n_col_tiles)  # per matrix
    params = sum(m.in_features * m.out_features + (0 if m.bias is None else m.bias.numel()) for m in mats)
    util = m0.in_features * m0.out_features / (tiles[1] * tiles[2] * t.rows * t.cols)
    calibrated = all(m.calibrated for m in mats) if needs_calibration(m0.hw) else None
    return LayerMapping(name, kind, "analog", None, params, (m0.in_features, m0.out_features), len(mats),
                        tiles, len(mats) * tiles[0] * tiles[1] * tiles[2], util, calibrated)


def mapping_report(amodel: nn.Module) -> MappingReport:
    """The mapping report of a model returned by ``analogize`` (read from its layers, so it also holds
    for a copy or a reloaded model)."""
    from .conv import AnalogConv
    from .layers import AnalogLinear

    modules = dict(amodel.named_modules())
    inner = {id(m) for c in modules.values() if isinstance(c, AnalogConv) for m in c.matrices}
    rows, hw = [], None
    for name, mod in modules.items():
        if id(mod) in inner:
            continue
        if isinstance(mod, AnalogConv):
            rows.append(_analog_row(name, mod.geometry.kind, list(mod.matrices)))
            hw = mod.matrices[0].hw
        elif isinstance(mod, AnalogLinear):
            rows.append(_analog_row(name, "Linear", [mod]))
            hw = mod.hw
        elif own := list(mod.parameters(recurse=False)):
            parent = modules[name.rpartition(".")[0]] if name else None
            reason = digital_reason(mod, parent) or "not analogized"
            rows.append(LayerMapping(name, type(mod).__name__, "digital", reason, sum(p.numel() for p in own),
                                     None, 0, None, 0, None, None))
    if hw is None:
        raise ConfigError("the model has no analog layers; call analogize first")
    return MappingReport(hw.name, (hw.tile.rows, hw.tile.cols), tuple(rows))
