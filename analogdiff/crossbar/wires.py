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
sources and the sense amplifiers. Boxes of one kind merge together: small ones in one compiled (numba) loop,
large ones by Cholesky, triangular solve and symmetric rank-k update (LAPACK/BLAS called from compiled
code, so two threads solve two arrays at once); nodes on the north and east edges of the array are
eliminated as soon as they stop being ports, so the last merges carry only sources and amplifiers. All box
matrices are Laplacians (no ground inside a box), so their diagonals are recomputed from the off-diagonals
after every merge (the Grassmann–Taksar–Heyman trick): no cancellation even with 1 Ω wires and 1 µS devices.

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


def _check_conductances(g_s, batched: bool = False) -> np.ndarray:
    g = _as_float64(g_s, "g_s")
    if g.ndim < 2 or (g.ndim > 2 and not batched) or g.size == 0:
        want = "(..., rows, cols) matrices" if batched else "(rows, cols) matrix"
        raise ValueError(f"g_s must be a non-empty {want}, got shape {g.shape}")
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
    ``g_s`` may hold a batch (..., rows, cols) of arrays of one geometry, each solved on its own (merged
    together they overflow the caches: measured slower), as many at once as numba has threads
    (``numba.set_num_threads``). About 0.10 s of one core for 256×256, 0.25 s for 256×512, 0.7 s for
    512×512 (``benchmarks/bench_irdrop.py``, 2026-12-01).
    """
    g = _check_conductances(g_s, batched=True)
    lead, (rows, cols) = g.shape[:-2], g.shape[-2:]
    out = _effective_conductance(g.reshape(-1, rows, cols), _check_resistance(r_row_ohm, "r_row_ohm"),
                                 _check_resistance(r_col_ohm, "r_col_ohm"))
    return _like(out.reshape(*lead, rows, cols), g_s)


def _effective_conductance(g: np.ndarray, r_row_ohm: float, r_col_ohm: float) -> np.ndarray:
    """g (rows, cols) or (K, rows, cols) → G_eff of the same shape.

    Rows and columns without any device at the far ends (south, east) — the padding of a partly used
    tile — are cut off exactly before the solve: the east ends of the row wires then carry no current,
    and the column wires below the last used row only add their segments in series to the last one."""
    if g.ndim == 3:
        if len(g) < 2 or _threads() < 2:
            return np.stack([_effective_conductance(gk, r_row_ohm, r_col_ohm) for gk in g]) if len(g) else g.copy()
        from concurrent.futures import ThreadPoolExecutor

        with _blas_one_thread(), ThreadPoolExecutor(min(_threads(), len(g))) as pool:
            return np.stack(list(pool.map(lambda gk: _effective_conductance(gk, r_row_ohm, r_col_ohm), g)))
    if r_row_ohm == 0.0 and r_col_ohm == 0.0:
        return g.copy()
    rows_used = np.nonzero(g.any(axis=1))[0]
    cols_used = np.nonzero(g.any(axis=0))[0]
    out = np.zeros_like(g)
    if rows_used.size == 0:
        return out
    ru, cu = rows_used[-1] + 1, cols_used[-1] + 1
    sub = g[:ru, :cu]
    gc_last = 1.0 / (r_col_ohm * (1 + g.shape[0] - ru)) if r_col_ohm > 0 else math.inf
    if r_row_ohm == 0.0:
        out[:ru, :cu] = _ideal_rows(sub, 1.0 / r_col_ohm, gc_last)
    elif r_col_ohm == 0.0:
        out[:ru, :cu] = _ideal_cols(sub, 1.0 / r_row_ohm)
    else:
        with _blas_one_thread():
            out[:ru, :cu] = _hierarchical_schur(sub, 1.0 / r_row_ohm, 1.0 / r_col_ohm, gc_last)
    return out


def _threads() -> int:
    """Arrays of a batch solved at once, one per thread: numba's thread count (``NUMBA_NUM_THREADS``,
    ``numba.set_num_threads``), the library's one knob for CPU parallelism. The compiled merges and LAPACK
    release the GIL, so the threads run on separate cores."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a core dependency
        return 1
    return numba.get_num_threads()


def _blas_one_thread():
    """BLAS limited to one thread for the solve (threadpoolctl, when installed). The many small
    batched LAPACK/BLAS calls only lose from threading, and lose 10× on a busy machine, where each
    call waits for a starved helper thread (measured: 256×256 in 2.8 s wall with 2 threads vs 0.6 s)."""
    _lapack_blas()  # loads SciPy's BLAS (a library of its own, not NumPy's) so that the limit reaches it too
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


def _ideal_rows(g: np.ndarray, gc: float, gc_last: float) -> np.ndarray:
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
    s[-1] = _series(h[-1], gc_last)                                     # the segment to the amplifier
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
# A box on the east edge of the array has no E ports and one on the north edge no N ports: those nodes
# touch nothing outside the box and are eliminated with its inner nodes, so the whole array ends with
# ports [W, S] = [sources, amplifiers] only. A box is summarised by its (P, P) admittance matrix on its
# ports (current into the box = matrix @ port voltages), all other nodes eliminated. A box holds no
# ground, so rows sum to 0.
#
# Kinds: (h, w, north, east), the flags saying whether the box lies on the north / east edge. All boxes
# of one kind share one port layout and merge in one batch: small ones in a compiled loop, large ones
# through LAPACK/BLAS (``_schur_update``).

_SMALL_NODES = 192  # merges with at most this many nodes run in the compiled loop (measured crossover)


def _layout(h: int, w: int, north: bool, east: bool) -> dict[str, np.ndarray]:
    """Port indices of each side of a box of this kind (an absent side has none)."""
    sizes = {"W": h, "E": 0 if east else h, "N": 0 if north else w, "S": w}
    out, at = {}, 0
    for side in "WENS":
        out[side] = np.arange(at, at + sizes[side])
        at += sizes[side]
    return out


def _n_ports(layout: dict[str, np.ndarray]) -> int:
    return sum(v.size for v in layout.values())


@functools.lru_cache(maxsize=1024)
def _merge_maps(axis: str, kind_a: tuple, kind_b: tuple):
    """Where each child port goes in the merged node list: [merged ports (p) | shared nodes (m)].

    cols: A (west) + B (east) share A.E = B.W; rows: A (north) + B (south) share A.S = B.N.
    Returns (map_a, map_b, p, m)."""
    (ha, wa, na, ea), (hb, wb, nb, eb) = kind_a, kind_b
    la, lb = _layout(*kind_a), _layout(*kind_b)
    if axis == "cols":
        kind = (ha, wa + wb, na, eb)
        lm = _layout(*kind)
        p, m = _n_ports(lm), ha
        shared = p + np.arange(m)
        north = {"A": lm["N"][:wa], "B": lm["N"][wa:]}
        place_a = {"W": lm["W"], "E": shared, "N": north["A"], "S": lm["S"][:wa]}
        place_b = {"W": shared, "E": lm["E"], "N": north["B"], "S": lm["S"][wa:]}
    else:
        kind = (ha + hb, wa, na, ea)
        lm = _layout(*kind)
        p, m = _n_ports(lm), wa
        shared = p + np.arange(m)
        place_a = {"W": lm["W"][:ha], "E": lm["E"][:ha], "N": lm["N"], "S": shared}
        place_b = {"W": lm["W"][ha:], "E": lm["E"][ha:], "N": shared, "S": lm["S"]}
    maps = []
    for lay, place in ((la, place_a), (lb, place_b)):
        mp = np.empty(_n_ports(lay), dtype=np.int64)
        for side in "WENS":
            mp[lay[side]] = place[side]
        maps.append(mp)
    return maps[0], maps[1], p, m


def _laplacian_diagonal(s: np.ndarray) -> np.ndarray:
    """Set each diagonal of a batch of Laplacians (B, n, n) to minus the sum of its row's off-diagonal
    entries, in place: exact in exact arithmetic (a box holds no ground) and free of cancellation."""
    n = s.shape[-1]
    diag = s.reshape(s.shape[0], n * n)[:, :: n + 1]                  # (B, n) view
    diag -= s.sum(axis=2)
    return s


def _take(boxes: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    """boxes[idx]: a view when idx is all of them or evenly spaced, else a copy."""
    if idx is None:
        return boxes
    if idx.size == 1 or (idx.size > 1 and idx[1] > idx[0] and np.all(np.diff(idx) == idx[1] - idx[0])):
        step = int(idx[1] - idx[0]) if idx.size > 1 else 1
        return boxes[int(idx[0]):int(idx[-1]) + 1:step]
    return boxes[idx]


def _merge(a: np.ndarray, b: np.ndarray, map_a: np.ndarray, map_b: np.ndarray, p: int, m: int,
           ia: np.ndarray | None = None, ib: np.ndarray | None = None, block: int | None = None) -> np.ndarray:
    """Boxes a[ia] (B, Pa, Pa) and b[ib] (B, Pb, Pb) (ia, ib: None = all, in order) scattered onto p + m
    nodes by map_a, map_b; the last m nodes eliminated (Schur complement) → (B, p, p), diagonals recomputed
    from the off-diagonals. The compiled loop reads the boxes in place; no copy of a or b is made for it.

    ``block=w`` (the last merge): only the block [w:, :w] (B, p-w, w) of the result, the one the array's
    effective conductance is read from; the elimination then solves for the first w ports only."""
    if p + m <= _SMALL_NODES:
        ia = np.arange(a.shape[0]) if ia is None else ia
        ib = np.arange(b.shape[0]) if ib is None else ib
        out = _merge_small(a, ia, b, ib, map_a, map_b, p, m)
        return out if block is None else out[:, block:, :block]
    a, b = _take(a, ia), _take(b, ib)
    nb = a.shape[0]
    s = np.zeros((nb, p, p))
    k_pe = np.zeros((nb, p, m))
    k_ee = np.zeros((nb, m, m))
    for child, mp in ((a, map_a), (b, map_b)):
        for s1, d1, l1 in _runs(mp, p):
            for s2, d2, l2 in _runs(mp, p):
                blk = child[:, s1:s1 + l1, s2:s2 + l2]
                if d1 < p and d2 < p:
                    s[:, d1:d1 + l1, d2:d2 + l2] += blk
                elif d1 < p:
                    k_pe[:, d1:d1 + l1, d2 - p:d2 - p + l2] += blk
                elif d2 >= p:
                    k_ee[:, d1 - p:d1 - p + l1, d2 - p:d2 - p + l2] += blk
    if block is not None:
        x = np.linalg.solve(k_ee, k_pe[:, :block].transpose(0, 2, 1))  # (B, m, w)
        return s[:, block:, :block] - k_pe[:, block:] @ x
    _schur_update(s, k_ee, k_pe)
    return _laplacian_diagonal(s)


@functools.lru_cache(maxsize=4096)
def _runs_cached(mp_bytes: bytes, p: int) -> tuple:
    mp = np.frombuffer(mp_bytes, dtype=np.int64).tolist()
    out, start = [], 0
    for i in range(1, len(mp) + 1):
        if i == len(mp) or mp[i] != mp[i - 1] + 1 or mp[i] == p:
            out.append((start, mp[start], i - start))
            start = i
    return tuple(out)


def _runs(mp: np.ndarray, p: int) -> tuple:
    """Maximal runs of consecutive destinations, split where the kept ports [0, p) end:
    ((source start, destination start, length), ...)."""
    return _runs_cached(mp.astype(np.int64).tobytes(), p)


def _njit(fn):
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a core dependency
        return fn
    return numba.njit(cache=True, nogil=True)(fn)


def _schur_update(s: np.ndarray, k_ee: np.ndarray, k_pe: np.ndarray) -> None:
    """s -= k_pe k_ee⁻¹ k_peᵀ, in place, per box: Cholesky k_ee = UᵀU (LAPACK potrf), Y = U⁻ᵀ k_peᵀ (BLAS
    trsm), s -= YᵀY (BLAS syrk, one triangle: half the flops of the general product), the other triangle
    mirrored from it, so every box comes out exactly symmetric. k_ee is a principal block of a connected
    network's Laplacian (positive definite). k_ee and k_pe are overwritten.

    The calls go to SciPy's BLAS/LAPACK from compiled code without the GIL (SciPy's Python wrappers hold
    it: two tiles' solves on two threads would take turns). Each C-ordered matrix is handed to Fortran as
    its transpose: k_ee and s are symmetric, so that is the same matrix (for s, up to rounding: its lower
    triangle is updated, then mirrored), and k_peᵀ is the right-hand side the solve wants. Nothing is copied."""
    info = _schur_update_compiled(s, k_ee, k_pe, *_lapack_blas())
    if info != 0:  # pragma: no cover - a connected network's block is positive definite
        raise np.linalg.LinAlgError(f"IR-drop solve: elimination block not positive definite (potrf {info})")


@functools.lru_cache(maxsize=1)
def _lapack_blas():
    """ctypes handles of SciPy's dpotrf, dtrsm and dsyrk (``scipy.linalg.cython_lapack`` / ``cython_blas``),
    callable from numba."""
    import ctypes

    from numba.extending import get_cython_function_address

    vp = ctypes.c_void_p
    return (ctypes.CFUNCTYPE(None, *[vp] * 5)(get_cython_function_address("scipy.linalg.cython_lapack", "dpotrf")),
            ctypes.CFUNCTYPE(None, *[vp] * 11)(get_cython_function_address("scipy.linalg.cython_blas", "dtrsm")),
            ctypes.CFUNCTYPE(None, *[vp] * 10)(get_cython_function_address("scipy.linalg.cython_blas", "dsyrk")))


@_njit
def _schur_update_compiled(s, k_ee, k_pe, dpotrf, dtrsm, dsyrk):  # pragma: no cover - compiled
    """``_schur_update``'s loop; returns potrf's info of the first box that fails (0: none)."""
    up, left = np.array([ord("U")], np.uint8), np.array([ord("L")], np.uint8)
    tr, nonunit = np.array([ord("T")], np.uint8), np.array([ord("N")], np.uint8)
    m, p = np.array([k_pe.shape[2]], np.int32), np.array([k_pe.shape[1]], np.int32)
    info = np.zeros(1, np.int32)
    one, minus_one = np.array([1.0]), np.array([-1.0])
    for t in range(s.shape[0]):
        a, b, c = k_ee[t], k_pe[t], s[t]
        dpotrf(up.ctypes, m.ctypes, a.ctypes, m.ctypes, info.ctypes)  # a = UᵀU, U in its upper triangle
        if info[0] != 0:
            return info[0]
        dtrsm(left.ctypes, up.ctypes, tr.ctypes, nonunit.ctypes, m.ctypes, p.ctypes, one.ctypes, a.ctypes,
              m.ctypes, b.ctypes, m.ctypes)  # b := U⁻ᵀ b, b = k_peᵀ (m, p) in Fortran order
        dsyrk(up.ctypes, tr.ctypes, p.ctypes, m.ctypes, minus_one.ctypes, b.ctypes, m.ctypes, one.ctypes, c.ctypes,
              p.ctypes)  # upper triangle of cᵀ (Fortran) = lower of c: c -= bᵀ b
        for i in range(c.shape[0]):  # mirror the lower triangle onto the upper one
            for j in range(i):
                c[j, i] = c[i, j]
    return 0


@_njit
def _merge_small(a, ia, b, ib, map_a, map_b, p, m):  # pragma: no cover - compiled (Python twin: _merge)
    """``_merge`` for small boxes a[ia], b[ib]: per box, scatter into a dense (p+m)² matrix and eliminate
    the last m nodes one at a time (the block is a principal submatrix of a connected network's
    Laplacian: positive definite, no pivoting needed)."""
    nb = ia.size
    n = p + m
    out = np.empty((nb, p, p))
    f = np.empty((n, n))
    for t in range(nb):
        f[:, :] = 0.0
        ta, tb = ia[t], ib[t]
        for u in range(map_a.size):
            for v in range(map_a.size):
                f[map_a[u], map_a[v]] += a[ta, u, v]
        for u in range(map_b.size):
            for v in range(map_b.size):
                f[map_b[u], map_b[v]] += b[tb, u, v]
        for e in range(n - 1, p - 1, -1):
            piv = f[e, e]
            for i in range(e):
                c = f[i, e] / piv
                if c != 0.0:
                    for j in range(e):
                        f[i, j] -= c * f[e, j]
        for i in range(p):
            s = 0.0
            for j in range(p):
                if j != i:
                    out[t, i, j] = f[i, j]
                    s += f[i, j]
            out[t, i, i] = -s
    return out


def _cell_boxes(g: np.ndarray, gr: float, gc: np.ndarray, north: bool, east: bool) -> np.ndarray:
    """(n, P, P) admittance of single cells (conductances g, shape (n,)) of one kind: ports [W, E, N, S]
    = [west, row node, column node, south], with the row node (east edge) and the column node (north
    edge) eliminated when they are no ports."""
    k = np.zeros((g.size, 4, 4))
    k[:, 0, 0] = gr
    k[:, 0, 1] = k[:, 1, 0] = -gr
    k[:, 1, 1] = gr + g
    k[:, 1, 2] = k[:, 2, 1] = -g
    k[:, 2, 2] = g + gc
    k[:, 2, 3] = k[:, 3, 2] = -gc
    k[:, 3, 3] = gc
    if not (north or east):
        return k
    lay = _layout(1, 1, north, east)
    p = _n_ports(lay)
    place = {"W": 0, "E": lay["E"][0] if lay["E"].size else None, "N": lay["N"][0] if lay["N"].size else None,
             "S": lay["S"][0]}
    dropped = [side for side in "EN" if place[side] is None]
    for d, side in enumerate(dropped):
        place[side] = p + d
    mp = np.array([place[side] for side in "WENS"], dtype=np.int64)
    return _merge(k, np.zeros((g.size, 0, 0)), mp, np.zeros(0, dtype=np.int64), p, len(dropped),
                  ib=np.zeros(g.size, dtype=np.int64))


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


def _classes(sizes: np.ndarray, edge_first: bool):
    """Group indices of a 1-D list of group sizes into classes (size, on-edge): {(size, edge): indices}.
    The edge is the first group (north) or the last (east)."""
    edge = np.zeros(len(sizes), dtype=bool)
    edge[0 if edge_first else -1] = True
    return {(int(h), bool(e)): np.nonzero((sizes == h) & (edge == e))[0]
            for h in np.unique(sizes) for e in (True, False) if np.any((sizes == h) & (edge == e))}


def _hierarchical_schur(g: np.ndarray, gr: float, gc: float, gc_last: float) -> np.ndarray:
    """g (rows, cols) S → (rows, cols) effective conductances; the last row's south segments (to the
    amplifiers) have conductance ``gc_last``, all others ``gc``.

    A box's kind depends on its row group (height, north edge) and its column group (width, east edge)
    separately, so the boxes of one kind form a sub-grid: rows r_idx × columns q_idx of the box grid."""
    rows, cols = g.shape
    rs = np.ones(rows, dtype=int)                                      # row group sizes
    cs = np.ones(cols, dtype=int)                                      # column group sizes
    # store: kind -> (count, P, P); pos[i, j]: index of box (i, j) in its kind's array
    store, pos = {}, np.empty((rows, cols), dtype=int)
    south = np.full((rows, cols), gc)                                  # south segment of each cell, S
    south[-1] = gc_last
    for (_, north), r_idx in _classes(rs, True).items():
        for (_, east), q_idx in _classes(cs, False).items():
            sub = np.ix_(r_idx, q_idx)
            store[(1, 1, north, east)] = _cell_boxes(g[sub].ravel(), gr, south[sub].ravel(), north, east)
            pos[sub] = np.arange(r_idx.size * q_idx.size).reshape(r_idx.size, -1)
    plan = _plan(rows, cols)
    for step, (axis, parents, parent_sizes) in enumerate(plan):
        first = np.array([q[0] for q in parents])                      # child group indices
        second = np.array([q[-1] for q in parents])
        paired = np.array([len(q) == 2 for q in parents])
        psz = np.asarray(parent_sizes)
        pr, pc = (rs, psz) if axis == "cols" else (psz, cs)            # parent grid group sizes
        new_store, new_pos = {}, np.empty((len(pr), len(pc)), dtype=int)
        for (h, north), r_idx in _classes(pr, True).items():
            for (w, east), q_idx in _classes(pc, False).items():
                if axis == "cols":
                    ra, qa, rb, qb, pair = r_idx, first[q_idx], r_idx, second[q_idx], paired[q_idx[0]]
                else:
                    ra, qa, rb, qb, pair = first[r_idx], q_idx, second[r_idx], q_idx, paired[r_idx[0]]
                ka = (int(rs[ra[0]]), int(cs[qa[0]]), ra[0] == 0, qa[0] == len(cs) - 1)
                ia = pos[np.ix_(ra, qa)].ravel()                       # the boxes' places in their kinds
                if pair:                                               # else a 1-wide group passes through
                    kb = (int(rs[rb[0]]), int(cs[qb[0]]), rb[0] == 0, qb[0] == len(cs) - 1)
                    last = step == len(plan) - 1                       # the whole array: [W, S] ports
                    box = _merge(store[ka], store[kb], *_merge_maps(axis, ka, kb), ia=ia,
                                 ib=pos[np.ix_(rb, qb)].ravel(), block=rows if last else None)
                    if last:                                           # (1, cols, rows): amplifiers × sources
                        return -box[0].T
                else:
                    box = _take(store[ka], ia)                         # (n, P, P)
                new_store[(h, w, north, east)] = box
                new_pos[np.ix_(r_idx, q_idx)] = np.arange(r_idx.size * q_idx.size).reshape(r_idx.size, -1)
        store, pos = new_store, new_pos
        rs, cs = pr, pc
    (root,) = store.values()                                           # (1, rows+cols, rows+cols): [W, S]
    # current into the box at amplifier j per volt on source i; the amplifier receives its negative
    return -root[0, rows:, :rows].T                                    # (rows, cols) S


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
        volts[:n_unknown] = spla.splu(lap[:n_unknown, :n_unknown].tocsc(),  # symmetric: minimum degree
                                     permc_spec="MMD_AT_PLUS_A").solve(rhs)
    currents = -(lap[amp] @ volts)                                     # (cols, B): into each amplifier
    return _like(currents.T.reshape(*batch_shape, cols), v_rows)
