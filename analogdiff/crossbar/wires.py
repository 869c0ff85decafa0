"""Exact IR drop in a resistive crossbar, by nodal analysis of its linear circuit.

Topology (drawn in ``circuits/spice/README.md``): row ``i`` is driven at its column-0 end by an ideal
source ``v_rows[i]`` through one wire segment of ``r_row_ohm`` and continues with one segment between each
pair of neighbouring cells; device ``(i, j)`` of conductance ``g_s[i, j]`` joins row node ``(i, j)`` to
column node ``(i, j)``; column ``j`` runs one segment of ``r_col_ohm`` between neighbouring cells and one
more from its last row (``i = rows - 1``) to its sense amplifier, a virtual ground. The output is the
current flowing from each column into its sense amplifier.

The circuit is linear, so a programmed array reduces to an effective conductance matrix ``G_eff`` with
``column_currents(g, v) == v @ G_eff``: computed once per programming/drift state, each later MVM is one
matmul. ``effective_conductance`` computes it exactly (to rounding) by a hierarchical Schur complement,
i.e. nested dissection by hand: the array is split recursively into boxes; each box is summarised by the
admittance matrix on its port nodes (the nodes its wires share with neighbouring boxes), two neighbouring
boxes merge by eliminating the nodes they share, and the whole array leaves the admittance between the row
sources and the sense amplifiers. Boxes of equal shape merge in one batched LAPACK call. All box matrices
are Laplacians (no ground inside a box), so their diagonals are recomputed from the off-diagonals after
every merge (the Grassmann–Taksar–Heyman trick): no cancellation even with 1 Ω wires and 1 µS devices.

``nodal_column_currents`` is an independent second implementation (one sparse LU of the full nodal
matrix per call), slower, kept as a cross-check for the tests.

Inputs may be NumPy arrays or torch tensors; the solve runs in float64 NumPy (no autograd through it).
"""
from __future__ import annotations

import contextlib
import functools
import math

import numpy as np

__all__ = ["column_currents", "effective_conductance", "nodal_column_currents"]


# --------------------------------------------------------------------------- input handling

def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _as_float64(x, name: str) -> np.ndarray:
    if _is_torch(x):
        x = x.detach().cpu().double().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from None
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or Inf")
    return a


def _check_conductances(g_s) -> np.ndarray:
    g = _as_float64(g_s, "g_s")
    if g.ndim != 2 or g.shape[0] == 0 or g.shape[1] == 0:
        raise ValueError(f"g_s must be a non-empty (rows, cols) matrix, got shape {g.shape}")
    if np.any(g < 0):
        raise ValueError(f"g_s must be >= 0 siemens, got minimum {g.min():g}")
    return g


def _check_resistance(r, name: str) -> float:
    if _is_torch(r) or isinstance(r, np.ndarray):
        if np.ndim(r) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(np.shape(r))}")
        r = float(r)
    if isinstance(r, bool) or not isinstance(r, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {type(r).__name__}")
    r = float(r)
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"{name} must be a finite resistance >= 0 ohm, got {r}")
    return r


def _check_voltages(v_rows, rows: int) -> np.ndarray:
    v = _as_float64(v_rows, "v_rows")
    if v.ndim == 0 or v.shape[-1] != rows:
        raise ValueError(f"v_rows must have shape (..., {rows}) to match g_s rows, got {v.shape}")
    return v


def _like(result: np.ndarray, ref):
    """``result`` as the kind of ``ref``: a torch tensor of ref's float dtype and device, else NumPy."""
    if not _is_torch(ref):
        return result
    import torch

    dtype = ref.dtype if ref.is_floating_point() else torch.float64
    return torch.from_numpy(result).to(device=ref.device, dtype=dtype)


# --------------------------------------------------------------------------- public API

def column_currents(g_s, v_rows, r_row_ohm: float, r_col_ohm: float):
    """Currents from each column into its sense amplifier, with exact IR drop on the wires.

    g_s: (rows, cols) device conductances, S (>= 0). v_rows: (..., rows) row source voltages, V.
    r_row_ohm, r_col_ohm: resistance of one wire segment, Ω (>= 0; 0 is an ideal wire).
    Returns (..., cols) A, the kind of ``v_rows`` (NumPy float64, or a torch tensor of v_rows' float
    dtype and device). Equal to ``v_rows @ effective_conductance(g_s, r_row_ohm, r_col_ohm)``; compute
    the effective matrix once yourself when the same array serves many calls.
    """
    g = _check_conductances(g_s)                                       # (rows, cols) S
    v = _check_voltages(v_rows, g.shape[0])                            # (..., rows) V
    g_eff = _effective_conductance(g, _check_resistance(r_row_ohm, "r_row_ohm"),
                                   _check_resistance(r_col_ohm, "r_col_ohm"))
    return _like(v @ g_eff, v_rows)                                    # (..., cols) A


def effective_conductance(g_s, r_row_ohm: float, r_col_ohm: float):
    """The (rows, cols) matrix ``G_eff``, S, with ``column_currents(g_s, v) == v @ G_eff`` for all v.

    ``G_eff[i, j]`` is the current into sense amplifier j per volt on row i, all other rows at 0 V.
    Ideal wires (both resistances 0) give ``g_s`` itself. Returned as the kind of ``g_s``.
    About 0.4 s of one core for 256×256, 2.4 s for 512×512 (``benchmarks/bench_irdrop.py``).
    """
    g = _check_conductances(g_s)
    out = _effective_conductance(g, _check_resistance(r_row_ohm, "r_row_ohm"),
                                 _check_resistance(r_col_ohm, "r_col_ohm"))
    return _like(out, g_s)


def _effective_conductance(g: np.ndarray, r_row_ohm: float, r_col_ohm: float) -> np.ndarray:
    if r_row_ohm == 0.0 and r_col_ohm == 0.0:
        return g.copy()
    if r_row_ohm == 0.0:
        return _ideal_rows(g, 1.0 / r_col_ohm)
    if r_col_ohm == 0.0:
        return _ideal_cols(g, 1.0 / r_row_ohm)
    with _blas_one_thread():
        return _hierarchical_schur(g, 1.0 / r_row_ohm, 1.0 / r_col_ohm)


def _blas_one_thread():
    """BLAS limited to one thread for the solve (threadpoolctl, when installed). The many small
    batched LAPACK/BLAS calls only lose from threading, and lose 10× on a busy machine, where each
    call waits for a starved helper thread (measured: 256×256 in 2.8 s wall with 2 threads vs 0.6 s)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


# --------------------------------------------------------------------------- one ideal wire direction

def _series(a: np.ndarray, b: float | np.ndarray) -> np.ndarray:
    """Series combination of conductances a and b, 0 where both are 0."""
    s = a + b
    return np.divide(a * b, s, out=np.zeros(np.broadcast(a, b).shape), where=s > 0)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b with 0 where b == 0 (then a == 0 too: both are sums of the same non-negative terms)."""
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


def _ideal_rows(g: np.ndarray, gc: float) -> np.ndarray:
    """r_row = 0: every row node sits at its source voltage; each column is a ladder on its own.

    Walking down column j, the part above and including row i is a Norton equivalent: conductance
    h[i] to a voltage that is a weighted mean of the row voltages. The weight of row i reaching the
    sense amplifier is g[i]/h[i] · Π_{k>i} s[k-1]/h[k], where s is h in series with one wire segment.
    Only sums and products of positive numbers: no cancellation.
    """
    rows, cols = g.shape
    h = np.empty_like(g)                                               # (rows, cols) S, Norton conductance
    s = np.empty_like(g)                                               # h in series with the next segment
    h[0] = g[0]
    s[0] = _series(h[0], gc)
    for i in range(1, rows):
        h[i] = s[i - 1] + g[i]
        s[i] = _series(h[i], gc)
    step = np.ones_like(g)                                             # weight kept from row i-1 to row i
    step[1:] = _ratio(s[:-1], h[1:])
    # carry[i] = Π_{k=i+1}^{rows-1} step[k]
    carry = np.ones_like(g)
    for i in range(rows - 2, -1, -1):
        carry[i] = carry[i + 1] * step[i + 1]
    return s[-1] * _ratio(g, h) * carry                                # (rows, cols) S


def _ideal_cols(g: np.ndarray, gr: float) -> np.ndarray:
    """r_col = 0: every column node sits at 0 V; each row is a ladder on its own.

    a[j] is the conductance seen looking east from row node j (device j plus the rest of the row);
    node voltage j = V · Π_{k<=j} gr/(gr + a[k]); the current into column j is g[j] times it.
    """
    rows, cols = g.shape
    a = np.empty_like(g)                                               # (rows, cols) S
    a[:, -1] = g[:, -1]
    for j in range(cols - 2, -1, -1):
        a[:, j] = g[:, j] + _series(a[:, j + 1], gr)
    node_v = np.cumprod(gr / (gr + a), axis=1)                         # (rows, cols) V per source volt
    return g * node_v


# --------------------------------------------------------------------------- general case: box merging
#
# A box covers cells [i0, i1) × [j0, j1) together with the west wire segment of each of its cells (from
# the row node of the cell to its west, or from the row source) and the south segment of each cell (to
# the column node of the cell below, or to the sense amplifier). Its ports, in this order:
#   W (h): the west ends of its west-most segments      — row node (i, j0-1), or the source of row i
#   E (h): its east-most row nodes (i, j1-1)           — the W ports of the box to the east
#   N (w): its north-most column nodes (i0, j)         — the S ports of the box to the north
#   S (w): the south ends of its south-most segments    — column node (i1, j), or sense amplifier j
# A box is summarised by its (P, P) admittance matrix on these P = 2h + 2w ports (current into the box
# = matrix @ port voltages), all its inner nodes eliminated. A box holds no ground, so rows sum to 0.


def _cell_boxes(g: np.ndarray, gr: float, gc: float) -> np.ndarray:
    """(rows*cols, 4, 4) admittance of each single cell on ports [W, E, N, S] = [west, row, col, south]."""
    d = g.ravel()
    k = np.zeros((d.size, 4, 4))
    k[:, 0, 0] = gr
    k[:, 0, 1] = k[:, 1, 0] = -gr
    k[:, 1, 1] = gr + d
    k[:, 1, 2] = k[:, 2, 1] = -d
    k[:, 2, 2] = d + gc
    k[:, 2, 3] = k[:, 3, 2] = -gc
    k[:, 3, 3] = gc
    return k


def _laplacian_diagonal(s: np.ndarray) -> np.ndarray:
    """Set each diagonal of a batch of Laplacians (B, n, n) to minus the sum of its row's off-diagonal
    entries, in place: exact in exact arithmetic (a box holds no ground) and free of cancellation."""
    n = s.shape[-1]
    diag = s.reshape(s.shape[0], n * n)[:, :: n + 1]                  # (B, n) view
    diag -= s.sum(axis=2)
    return s


def _schur(k: np.ndarray, keep: int) -> np.ndarray:
    """Eliminate the nodes after the first ``keep`` from Laplacians (B, n, n) -> (B, keep, keep)."""
    kpi = np.ascontiguousarray(k[:, :keep, keep:])
    s = k[:, :keep, :keep] - kpi @ np.linalg.solve(k[:, keep:, keep:], k[:, keep:, :keep])
    return _laplacian_diagonal(s)


def _merge(a: np.ndarray, b: np.ndarray, segs_a, segs_b, p: int) -> np.ndarray:
    """Merge two batches of boxes (B, Pa, Pa), (B, Pb, Pb) that share m port nodes into (B, p, p).

    ``segs_*`` list, for each run of a child's ports, (start in the child, length, start in the merged
    ports); the shared run has destination ``p``. With R (m, p) the shared nodes' coupling to the merged
    ports and K the shared nodes' own block: S = (children's blocks placed) - Rᵀ K⁻¹ R.
    """
    (ia, m, _), = [sg for sg in segs_a if sg[2] == p]
    (ib, _, _), = [sg for sg in segs_b if sg[2] == p]
    r = np.zeros((a.shape[0], m, p))                                   # (B, m, p)
    for child, segs, i in ((a, segs_a, ia), (b, segs_b, ib)):
        for s0, ln, d in segs:
            if d != p:
                r[:, :, d:d + ln] = child[:, i:i + m, s0:s0 + ln]
    k_shared = a[:, ia:ia + m, ia:ia + m] + b[:, ib:ib + m, ib:ib + m]  # (B, m, m)
    x = r / k_shared if m == 1 else np.linalg.solve(k_shared, r)       # (B, m, p)
    s = r.transpose(0, 2, 1) @ x                                       # (B, p, p)
    np.negative(s, out=s)
    for child, segs in ((a, segs_a), (b, segs_b)):
        for s1, l1, d1 in segs:
            for s2, l2, d2 in segs:
                if d1 != p and d2 != p:
                    s[:, d1:d1 + l1, d2:d2 + l2] += child[:, s1:s1 + l1, s2:s2 + l2]
    return _laplacian_diagonal(s)


@functools.lru_cache(maxsize=256)
def _col_merge_maps(h: int, wa: int, wb: int):
    """A (west) + B (east), height h: merged ports [W, E, N_A N_B, S_A S_B] then the shared A.E = B.W."""
    w = wa + wb
    p = 2 * h + 2 * w
    segs_a = ((0, h, 0), (h, h, p), (2 * h, wa, 2 * h), (2 * h + wa, wa, 2 * h + w))
    segs_b = ((0, h, p), (h, h, h), (2 * h, wb, 2 * h + wa), (2 * h + wb, wb, 2 * h + w + wa))
    return segs_a, segs_b, p


@functools.lru_cache(maxsize=256)
def _row_merge_maps(ha: int, hb: int, w: int):
    """A (north) + B (south), width w: merged ports [W_A W_B, E_A E_B, N, S] then the shared A.S = B.N."""
    h = ha + hb
    p = 2 * h + 2 * w
    segs_a = ((0, ha, 0), (ha, ha, h), (2 * ha, w, 2 * h), (2 * ha + w, w, p))
    segs_b = ((0, hb, ha), (hb, hb, h + ha), (2 * hb, w, p), (2 * hb + w, w, 2 * h + w))
    return segs_a, segs_b, p


def _halves(sizes: tuple[int, ...]) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """Split each group in two (ceil, floor); groups of 1 stay. Returns child sizes and, per parent,
    the indices of its children."""
    child, parents = [], []
    for s in sizes:
        if s == 1:
            parents.append((len(child),))
            child.append(1)
        else:
            parents.append((len(child), len(child) + 1))
            child += [(s + 1) // 2, s // 2]
    return tuple(child), parents


@functools.lru_cache(maxsize=64)
def _plan(rows: int, cols: int):
    """Top-down splitting of the array, returned bottom-up as (axis, parents, parent sizes).

    Each step halves every group along the axis whose largest group is larger (columns on ties), so
    boxes stay near square (nested dissection) and at most two sizes occur per axis per step.
    """
    rs, cs = (rows,), (cols,)
    steps = []
    while max(rs) > 1 or max(cs) > 1:
        if max(cs) >= max(rs):
            child, parents = _halves(cs)
            steps.append(("cols", parents, cs))
            cs = child
        else:
            child, parents = _halves(rs)
            steps.append(("rows", parents, rs))
            rs = child
    return steps[::-1]


def _hierarchical_schur(g: np.ndarray, gr: float, gc: float) -> np.ndarray:
    rows, cols = g.shape
    rs = np.ones(rows, dtype=int)                                      # row group sizes
    cs = np.ones(cols, dtype=int)                                      # column group sizes
    store = {(1, 1): _cell_boxes(g, gr, gc)}                           # box shape -> (count, P, P)
    pos = np.arange(rows * cols).reshape(rows, cols)                   # box -> index in its shape's array
    for axis, parents, parent_sizes in _plan(rows, cols):
        first = np.array([p[0] for p in parents])                      # child group indices
        second = np.array([p[-1] for p in parents])
        paired = np.array([len(p) == 2 for p in parents])
        psz = np.asarray(parent_sizes)
        pr, pc = (rs, psz) if axis == "cols" else (psz, cs)            # parent grid group sizes
        new_store, new_pos = {}, np.empty((len(pr), len(pc)), dtype=int)
        for h in np.unique(pr):                                        # boxes of one shape at once
            for w in np.unique(pc):
                r_idx, q_idx = np.nonzero((pr[:, None] == h) & (pc[None, :] == w))
                if axis == "cols":
                    ra, qa, rb, qb, pair = r_idx, first[q_idx], r_idx, second[q_idx], paired[q_idx[0]]
                else:
                    ra, qa, rb, qb, pair = first[r_idx], q_idx, second[r_idx], q_idx, paired[r_idx[0]]
                shape_a = (int(rs[ra[0]]), int(cs[qa[0]]))
                box = store[shape_a][pos[ra, qa]]
                if pair:                                               # else a 1-wide group passes through
                    shape_b = (int(rs[rb[0]]), int(cs[qb[0]]))
                    if axis == "cols":
                        segs = _col_merge_maps(int(h), shape_a[1], shape_b[1])
                    else:
                        segs = _row_merge_maps(shape_a[0], shape_b[0], int(w))
                    box = _merge(box, store[shape_b][pos[rb, qb]], *segs)
                new_store[(int(h), int(w))] = box
                new_pos[r_idx, q_idx] = np.arange(len(r_idx))
        store, pos = new_store, new_pos
        rs, cs = pr, pc
    (root,) = store.values()                                           # (1, P, P), ports [W, E, N, S]
    keep = np.concatenate([np.arange(rows), 2 * rows + cols + np.arange(cols)])     # sources, amplifiers
    drop = np.concatenate([rows + np.arange(rows), 2 * rows + np.arange(cols)])     # dangling edges
    order = np.concatenate([keep, drop])
    top = _schur(root[:, order[:, None], order[None, :]], rows + cols)[0]
    # current into the box at amplifier j per volt on source i; the amplifier receives its negative
    return -top[rows:, :rows].T                                        # (rows, cols) S


# --------------------------------------------------------------------------- independent reference

def nodal_column_currents(g_s, v_rows, r_row_ohm: float, r_col_ohm: float):
    """``column_currents`` by one sparse LU of the full nodal matrix (rows·cols row nodes and as many
    column nodes; ideal wires merge their nodes into the source or amplifier node). Same arguments
    and result; slower — an independent cross-check of ``effective_conductance``."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    g = _check_conductances(g_s)
    rows, cols = g.shape
    v = _check_voltages(v_rows, rows)
    r_row = _check_resistance(r_row_ohm, "r_row_ohm")
    r_col = _check_resistance(r_col_ohm, "r_col_ohm")
    batch_shape = v.shape[:-1]
    vb = v.reshape(-1, rows)                                           # (B, rows) V
    n_cells = rows * cols
    cell = np.arange(n_cells).reshape(rows, cols)
    # node ids: unknowns first, then known nodes: sources (rows), amplifiers (cols, 0 V)
    n_unknown = (n_cells if r_row > 0 else 0) + (n_cells if r_col > 0 else 0)
    src = n_unknown + np.arange(rows)
    amp = n_unknown + rows + np.arange(cols)
    row_node = cell if r_row > 0 else np.broadcast_to(src[:, None], (rows, cols))
    col_base = n_cells if r_row > 0 else 0
    col_node = col_base + cell if r_col > 0 else np.broadcast_to(amp[None, :], (rows, cols))
    edges = [(row_node, col_node, g)]                                  # (from, to, conductance S)
    if r_row > 0:
        west = np.concatenate([src[:, None], row_node[:, :-1]], axis=1)
        edges.append((west, row_node, np.full((rows, cols), 1 / r_row)))
    if r_col > 0:
        south = np.concatenate([col_node[1:], amp[None, :]], axis=0)
        edges.append((col_node, south, np.full((rows, cols), 1 / r_col)))
    a, b, w = (np.concatenate([np.ravel(e[k]) for e in edges]) for k in range(3))
    n_all = n_unknown + rows + cols
    lap = sp.coo_matrix((np.concatenate([w, w, -w, -w]),
                         (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a]))),
                        shape=(n_all, n_all)).tocsc()
    known = np.zeros((n_all - n_unknown, vb.shape[0]))
    known[:rows] = vb.T                                                # source voltages; amplifiers 0 V
    volts = np.zeros((n_all, vb.shape[0]))
    volts[n_unknown:] = known
    if n_unknown:
        rhs = -(lap[:n_unknown, n_unknown:] @ known)
        volts[:n_unknown] = spla.splu(lap[:n_unknown, :n_unknown].tocsc()).solve(rhs)
    currents = -(lap[amp] @ volts)                                     # (cols, B): into each amplifier
    return _like(currents.T.reshape(*batch_shape, cols), v_rows)
