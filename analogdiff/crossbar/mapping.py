"""Weights → differential conductance pairs, bit slices and tiles.

A layer's weight ``W`` (out, in) (``nn.Linear`` layout) is programmed transposed: input i drives row i,
output j is read at column j. Each weight is one differential pair per slice, w ∝ g+ − g−: the sign picks
the device, the magnitude sets it between g_min and g_max, the other device stays at g_min.

Scale: ``per-column`` maps each output column's max |w| to the full window (g_max − g_min), ``per-layer``
the layer's max |w|. The digital side multiplies column j's result by ``weight_per_us[j]`` (weight units
per µS of g+ − g−).

Bit slicing (``bit_slices`` S > 1, ``bits_per_slice`` b, base B = 2^b): u = |w| / scale ∈ [0, 1] is split
into S levels v_k ∈ [0, 1] with significances f_k, u = Σ_k f_k v_k: the S − 1 most significant slices
hold base-B digits d_k (v_k = d_k / (B − 1), f_k = (B − 1) / B^(k+1)), the least significant slice holds
the analog remainder (f = 1 / B^(S−1)). S = 1 is the plain analog mapping (f = 1, v = u). The ideal
reconstruction is exact; noise on a low slice costs its significance f_k less.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ConductanceMap:
    """Target conductances of a layer (all µS) and how to read weights back from them."""

    g_pos_us: torch.Tensor      # (S, in, out) µS, device carrying positive weights
    g_neg_us: torch.Tensor      # (S, in, out) µS, device carrying negative weights
    significance: torch.Tensor  # (S,) shift-add weight f_k of each slice (1 for one slice)
    weight_per_us: torch.Tensor  # (out,) weight units per µS of (g+ − g−) at significance 1

    @property
    def bit_slices(self) -> int:
        return self.g_pos_us.shape[0]


def weight_scales(w: torch.Tensor, weight_scale: str) -> torch.Tensor:
    """Max |w| per output column (``per-column``) or of the whole layer (``per-layer``), shape (out,).

    Raises ValueError for non-finite or all-zero weights (nothing to map); an all-zero column under
    ``per-column`` gets the layer's scale (its devices all sit at g_min).
    """
    if w.dim() != 2:
        raise ValueError(f"weights must be 2-D (out, in), got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError("weights hold NaN or Inf: cannot be mapped to conductances")
    layer_max = w.abs().max()
    if layer_max == 0:
        raise ValueError("weights are all zero: no conductance scale can be derived")
    if weight_scale == "per-layer":
        return layer_max.expand(w.shape[0]).clone()
    if weight_scale == "per-column":
        col = w.abs().amax(dim=1)  # (out,)
        return torch.where(col > 0, col, layer_max)
    raise ValueError(f"weight_scale must be 'per-layer' or 'per-column', got {weight_scale!r}")


def slice_levels(u: torch.Tensor, bit_slices: int,
                 bits_per_slice: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split magnitudes u ∈ [0, 1] into (S, ...) levels v_k ∈ [0, 1] and significances f (S,),
    u = Σ_k f_k v_k (see module docstring)."""
    if bit_slices < 1 or bits_per_slice < 1:
        raise ValueError("bit_slices and bits_per_slice must be >= 1")
    base = 2 ** bits_per_slice
    levels, sig = [], []
    r = u
    for k in range(bit_slices - 1):
        d = torch.floor(r * base).clamp(max=base - 1)
        levels.append(d / (base - 1))
        sig.append((base - 1) / base ** (k + 1))
        r = (r * base - d).clamp(0.0, 1.0)
    levels.append(r)
    sig.append(1.0 / base ** (bit_slices - 1))
    return torch.stack(levels), torch.tensor(sig, dtype=u.dtype, device=u.device)


def map_weights(w: torch.Tensor, g_min_us: float, g_max_us: float, weight_scale: str,
                bit_slices: int = 1, bits_per_slice: int = 2) -> ConductanceMap:
    """Target conductance pairs for weight ``w`` (out, in). See the module docstring."""
    if not g_max_us > g_min_us >= 0:
        raise ValueError(f"need 0 <= g_min_us < g_max_us, got {g_min_us}, {g_max_us}")
    w = w.detach().to(torch.float64)
    scale = weight_scales(w, weight_scale)  # (out,) weight units at full window
    window = g_max_us - g_min_us
    u = (w.abs() / scale[:, None]).clamp(max=1.0).T  # (in, out) ∈ [0, 1]
    levels, sig = slice_levels(u, bit_slices, bits_per_slice)  # (S, in, out)
    pos = (w.T > 0).expand_as(levels)
    g_on = g_min_us + levels * window
    g_pos = torch.where(pos, g_on, torch.full_like(g_on, g_min_us))
    g_neg = torch.where(pos, torch.full_like(g_on, g_min_us), g_on)
    return ConductanceMap(g_pos_us=g_pos, g_neg_us=g_neg, significance=sig,
                          weight_per_us=scale / window)


def weights_from_conductances(g_pos_us: torch.Tensor, g_neg_us: torch.Tensor,
                              cmap: ConductanceMap) -> torch.Tensor:
    """Weights (out, in) that pairs (S, in, out) represent: Σ_k f_k (g+ − g−) · weight_per_us."""
    diff = ((g_pos_us - g_neg_us) * cmap.significance.to(g_pos_us.dtype)[:, None, None]).sum(0)
    return (diff * cmap.weight_per_us.to(g_pos_us.dtype)).T


def tile_counts(n_in: int, n_out: int, rows: int, cols: int) -> tuple[int, int]:
    """(R, C): row tiles covering the inputs, column tiles covering the outputs."""
    return -(-n_in // rows), -(-n_out // cols)


def to_tiles(a: torch.Tensor, rows: int, cols: int, fill: float = 0.0) -> torch.Tensor:
    """(S, in, out) → (S, R, C, rows, cols), the last tiles padded with ``fill``."""
    s, n_in, n_out = a.shape
    r, c = tile_counts(n_in, n_out, rows, cols)
    padded = a.new_full((s, r * rows, c * cols), fill)
    padded[:, :n_in, :n_out] = a
    return padded.view(s, r, rows, c, cols).permute(0, 1, 3, 2, 4).contiguous()


def from_tiles(t: torch.Tensor, n_in: int, n_out: int) -> torch.Tensor:
    """(S, R, C, rows, cols) → (S, in, out), dropping the padding."""
    s, r, c, rows, cols = t.shape
    return t.permute(0, 1, 3, 2, 4).reshape(s, r * rows, c * cols)[:, :n_in, :n_out]


def interleave_pairs(g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
    """Device layout of a tile: (..., rows, cols) pairs → (..., rows, 2·cols) device columns, the g+ of
    output j in column 2j and its g− in column 2j + 1 (a pair shares the row wire)."""
    return torch.stack((g_pos, g_neg), dim=-1).flatten(-2)


def pair_difference(g_dev: torch.Tensor) -> torch.Tensor:
    """(..., rows, 2·cols) device matrix → (..., rows, cols) differential matrix g+ − g−."""
    return g_dev[..., 0::2] - g_dev[..., 1::2]
