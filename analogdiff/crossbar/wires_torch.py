"""Exact IR drop in torch, for conductances on any device (the GPU path of ``wires.effective_conductance``).

Same circuit as ``wires.py`` (drawn in ``circuits/spice/README.md``): row i driven at its column-0 end
through one segment of ``r_row_ohm``, one segment between neighbouring cells; device (i, j) from row node
(i, j) to column node (i, j); column j with one segment of ``r_col_ohm`` between neighbouring cells and
one more from its last row to its sense amplifier (virtual ground). ``effective_conductance`` returns
G_eff with column currents = v @ G_eff.

Method: a sweep over the columns from the open end of the rows towards the sources, batched over tiles
with dense linear algebra (Cholesky). Column j seen from its row nodes V_j is the admittance
A_col = D − D T⁻¹ D with D = diag(g[:, j]) and T the column wire's ladder plus D; its output current is
o·V_j with o = g_c · (T⁻¹ D)[last row]. The part of the array right of V_j draws A·V_j (passive: no source
inside) and its outputs are Q·V_j. One row segment further left, V_{j+1} = W V_j with
W = g_r (A + g_r I)⁻¹, so A ← W A + A_col(j) (the series form W A = g_r (A + g_r I)⁻¹ A subtracts nothing)
and Q ← Q W; at the sources V_0 = W v and G_effᵀ = Q W. Cost O(cols · rows³ + cols² · rows²) per tile,
in float64 (a test compares it with ``wires.effective_conductance``: equal to 1e-9 relative).
"""
from __future__ import annotations

import torch

__all__ = ["effective_conductance"]


def _column_ladder(rows: int, gc: float, dtype, device) -> torch.Tensor:
    """(rows, rows) nodal matrix of one column wire: segments gc between neighbours and gc to the amplifier
    below the last row."""
    lap = torch.zeros((rows, rows), dtype=dtype, device=device)
    i = torch.arange(rows - 1, device=device)
    lap[i, i + 1] = lap[i + 1, i] = -gc
    deg = torch.full((rows,), 2 * gc, dtype=dtype, device=device)
    deg[0] = gc
    lap[range(rows), range(rows)] = deg if rows > 1 else torch.full((1,), gc, dtype=dtype, device=device)
    return lap


def effective_conductance(g_s: torch.Tensor, r_row_ohm: float, r_col_ohm: float,
                          dtype: torch.dtype = torch.float64, tiles_per_batch: int = 256) -> torch.Tensor:
    """G_eff (..., rows, cols) S of device conductances ``g_s`` (..., rows, cols) S (>= 0) with wire
    segments ``r_row_ohm``, ``r_col_ohm`` (>= 0; 0 is an ideal wire), computed in ``dtype`` on g_s's
    device and returned in g_s's dtype. Equals ``wires.effective_conductance`` (module docstring).
    Solves ``tiles_per_batch`` arrays at a time (work memory ≈ tiles_per_batch · (cols + 5·rows) · rows · 8 B)."""
    if g_s.dim() >= 3 and g_s.shape[:-2].numel() > tiles_per_batch:
        flat = g_s.reshape(-1, *g_s.shape[-2:])
        parts = [effective_conductance(flat[i:i + tiles_per_batch], r_row_ohm, r_col_ohm, dtype, tiles_per_batch)
                 for i in range(0, flat.shape[0], tiles_per_batch)]
        return torch.cat(parts).reshape(g_s.shape)
    if g_s.dim() < 2:
        raise ValueError(f"g_s must be (..., rows, cols), got shape {tuple(g_s.shape)}")
    if r_row_ohm < 0 or r_col_ohm < 0:
        raise ValueError(f"wire resistances must be >= 0 ohm, got {r_row_ohm}, {r_col_ohm}")
    lead, (rows, cols) = g_s.shape[:-2], g_s.shape[-2:]
    if r_row_ohm == 0 and r_col_ohm == 0:
        return g_s.clone()
    g = g_s.reshape(-1, rows, cols).to(dtype)  # (K, rows, cols) S
    dev = g.device
    gc = 1.0 / r_col_ohm if r_col_ohm > 0 else None
    ladder = _column_ladder(rows, gc, dtype, dev) if gc is not None else None
    eye = torch.eye(rows, dtype=dtype, device=dev)

    def column(j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Admittance (K, rows, rows) and output vector (K, rows) of column j seen from its row nodes."""
        gj = g[:, :, j]  # (K, rows)
        if gc is None:  # ideal column wire: every column node at 0 V
            return torch.diag_embed(gj), gj
        t = ladder + torch.diag_embed(gj)
        x = torch.cholesky_solve(torch.diag_embed(gj), torch.linalg.cholesky(t))  # T⁻¹ D
        a = torch.diag_embed(gj) - gj[:, :, None] * x
        return 0.5 * (a + a.mT), gc * x[:, -1, :]

    if r_row_ohm == 0:  # ideal row wires: every row node at its source voltage
        out = torch.stack([column(j)[1] for j in range(cols)], dim=-1)  # (K, rows, cols)
        return out.reshape(*lead, rows, cols).to(g_s.dtype)
    gr = 1.0 / r_row_ohm
    q = torch.zeros((g.shape[0], cols, rows), dtype=dtype, device=dev)  # outputs = q · V_j
    a = torch.zeros((g.shape[0], rows, rows), dtype=dtype, device=dev)
    for j in range(cols - 1, -1, -1):
        if j < cols - 1:  # one row segment towards the sources: V_{j+1} = W V_j
            chol = torch.linalg.cholesky(a + gr * eye)
            a = gr * torch.cholesky_solve(a, chol)  # W A
            a = 0.5 * (a + a.mT)
            q[:, j + 1:] = gr * torch.cholesky_solve(q[:, j + 1:].mT, chol).mT  # Q W (W symmetric)
        a_col, o = column(j)
        a = a + a_col
        q[:, j] = o
    chol = torch.linalg.cholesky(a + gr * eye)
    out = (gr * torch.cholesky_solve(q.mT, chol))  # (K, rows, cols) = (Q W)ᵀ
    return out.reshape(*lead, rows, cols).to(g_s.dtype)
