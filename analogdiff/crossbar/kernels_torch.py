"""Torch implementations of the per-MVM kernels of ``kernels.py``, for tensors on any device (CUDA too).

The numba kernels stay the CPU fast path; these run wherever the tensors are and never leave the device
(no ``.numpy()``; the only host transfers are the few scalars the layer reports: input/output ranges and
the NaN check). They do the same arithmetic as the numba kernels in the same order — float32 where the
kernels use float32, float64 where they promote, sequential accumulation over bit planes, row tiles and
slices — so on the CPU they agree bit for bit (tests), except where a transcendental function comes from
a different library (the ADC S-curve's tanh: within a few float64 ulps) and in the float64 activity sums
(summation order; statistics only).

Random streams are the kernels' own: ``counter_normals`` computes the same splitmix64 hash (wrapping
int64 arithmetic, logical shifts by masking) and the same float32 Box-Muller polynomials as the numba
``_normal_pair``, so for the same key the torch and numba paths add the same read and ADC noise, on the
CPU and on a GPU alike.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import kernels as _k

if TYPE_CHECKING:
    from .converters import Adc, Dac


def _s64(u: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    u = int(u)
    return u - (1 << 64) if u >= 1 << 63 else u


_GOLDEN, _M1, _M2 = _s64(_k._GOLDEN), _s64(_k._M1), _s64(_k._M2)


def _shr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch shifts signed integers arithmetically)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _sqrt32(v: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float32 square root, as the numba kernels' (torch's CPU float32 sqrt is not,
    measured 1 ulp off in ~1 % of cases): the float64 root rounded to float32 is exact (53 ≥ 2·24 + 2)."""
    return torch.sqrt(v.double()).float()


def counter_normals(key: int, n_rows: int, m: int, device=None, row0: int = 0) -> torch.Tensor:
    """Rows ``row0 .. row0 + n_rows`` of stream ``key``: (n_rows, m) float32 standard normals, bit for bit
    those of the numba kernels' ``_fill_normals`` (pair counter row·ceil(m/2) + q; first elements to
    [:m//2], second to [ceil(m/2):])."""
    half = (m + 1) // 2
    ctr = torch.arange(row0 * half, (row0 + n_rows) * half, dtype=torch.int64, device=device)
    z = _s64(key) + ctr * _GOLDEN  # wraps modulo 2^64 as the uint64 hash
    z = (z ^ _shr(z, 30)) * _M1
    z = (z ^ _shr(z, 27)) * _M2
    h = z ^ _shr(z, 31)
    u1 = _shr(h, 32).to(torch.float32) * float(_k._TWO_M32) + float(_k._TWO_M33)  # (0, 1]
    w = (h & 0xFFFFFFFF).to(torch.float32) * float(_k._TWO_M32) - float(_k._HALF)
    bits = u1.view(torch.int32)
    e = ((bits >> 23) & 0xFF) - 127
    mm = ((bits & 0x7FFFFF) | 0x3F800000).view(torch.float32)
    big = mm > float(_k._SQRT2)
    mm = torch.where(big, mm * float(_k._HALF), mm)
    e = torch.where(big, e + 1, e)
    s = (mm - 1.0) / (mm + 1.0)
    s2 = s * s
    poly = s2 * float(_k._L9) + float(_k._L7)
    poly = s2 * poly + float(_k._L5)
    poly = s2 * poly + float(_k._L3)
    ln = e.to(torch.float32) * float(_k._LN2) + 2.0 * s * (1.0 + s2 * poly)
    r = _sqrt32(-2.0 * ln)
    b = w * float(_k._PI)
    b2 = b * b
    sb = b2 * float(_k._S5) + float(_k._S4)
    for c in (_k._S3, _k._S2, _k._S1, _k._S0):
        sb = b2 * sb + float(c)
    sb = b * sb
    cb = b2 * float(_k._C6) + float(_k._C5)
    for c in (_k._C4, _k._C3, _k._C2, _k._C1, _k._C0):
        cb = b2 * cb + float(c)
    za = (r * (cb * cb - sb * sb)).view(n_rows, half)
    zb = (r * (2.0 * sb * cb)).view(n_rows, half)
    return torch.cat([za, zb[:, :m - half]], dim=1)


def _div(a, b) -> torch.Tensor:
    """a / b correctly rounded, as the kernels divide. torch turns ``scalar / tensor`` into a reciprocal
    times the scalar, and CUDA ``tensor / scalar`` into a product with the scalar's reciprocal (1 ulp off
    in about a third of the cases, measured): a Python number becomes a 0-d tensor on the other's device."""
    ref = b if isinstance(b, torch.Tensor) else a
    if not isinstance(a, torch.Tensor):
        a = torch.tensor(a, dtype=ref.dtype, device=ref.device)
    if not isinstance(b, torch.Tensor):
        b = torch.tensor(b, dtype=ref.dtype, device=ref.device)
    return torch.div(a, b)


def _range_scalars(x: torch.Tensor) -> tuple[float, float]:
    """(min, max) of x, both NaN if x holds NaN or Inf, (0, 0) if empty: one host transfer."""
    if x.numel() == 0:
        return 0.0, 0.0
    lo, hi = torch.aminmax(x)
    bad = (~torch.isfinite(x)).any()
    lo, hi, bad = torch.stack([lo.double(), hi.double(), bad.double()]).tolist()
    return (math.nan, math.nan) if bad else (lo, hi)


def dac_encode(x: torch.Tensor, dac: "Dac", *, n_tiles: int, width: int, want_squares: bool,
               squares_dtype: torch.dtype = torch.float32) -> dict:
    """``kernels.dac_encode`` in torch on x's device: the same dict, with ``row_scale``, ``abs_sum`` and
    ``sq_sum`` as float64 tensors on that device."""
    _k.check_squares_dtype(squares_dtype)
    x = x.detach().to(torch.float32)
    n, k = x.shape
    dev = x.device
    quantize = dac.levels is not None
    levels = dac.levels if quantize else 1
    serial = quantize and dac.bit_serial
    xp = torch.zeros((n, n_tiles * width), dtype=torch.float32, device=dev)
    xp[:, :k] = x
    x64 = xp.double()
    if serial:
        if dac.x_range is None:
            a = x.abs().amax(1).double() if k else torch.zeros(n, dtype=torch.float64, device=dev)
            row_scale = torch.where(a > 0, a, torch.ones_like(a))
        else:
            row_scale = torch.full((n,), float(dac.x_range), dtype=torch.float64, device=dev)
        v = (x64 * _div(1.0, row_scale)[:, None]).clamp(-1.0, 1.0)
        mag = torch.round(v.abs() * levels).to(torch.int64)  # (N, K) 0..L
        sgn = torch.sign(v).float()
        planes = torch.stack([sgn * ((mag >> p) & 1).float() for p in range(dac.n_planes)])  # (P, N, K)
        squares = planes.abs() if want_squares else None
        abs_sum = _div(mag.sum(1).double(), levels)
        sq_sum = _div((mag * mag).sum(1).double(), levels * levels)
    else:
        if dac.x_range is None:
            a = x.abs().amax(1).double() if k else torch.zeros(n, dtype=torch.float64, device=dev)
            inv = torch.where(a > 0, _div(1.0, a), torch.ones_like(a))
        else:
            inv = torch.full((n,), 1.0 / dac.x_range, dtype=torch.float64, device=dev)
        row_scale = _div(1.0, inv)
        v = x64 * inv[:, None]
        if quantize:
            lv = torch.round(v.clamp(-1.0, 1.0) * levels)
            mag = lv.abs().to(torch.int64)
            inv_levels = 1.0 / levels
            v = lv * inv_levels
            abs_sum = mag.sum(1).double() * inv_levels
            sq_sum = (mag * mag).sum(1).double() * inv_levels * inv_levels
        else:
            abs_sum, sq_sum = v.abs().sum(1), (v * v).sum(1)
        planes = v.float()[None]
        squares = (v * v).float()[None] if want_squares else None
    shape = (planes.shape[0], n, n_tiles, width)
    planes = planes.view(shape).permute(0, 2, 1, 3).contiguous()  # (P, R, N, width)
    if squares is not None:
        squares = squares.view(shape).permute(0, 2, 1, 3).to(squares_dtype).contiguous()
    lo, hi = _range_scalars(x)
    return {"planes": planes, "squares": squares, "row_scale": row_scale, "abs_sum": abs_sum,
            "sq_sum": sq_sum, "lo": lo, "hi": hi}


def _on(a, dev: torch.device, dtype=torch.float64) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(dev, dtype)


def adc_accumulate(y: torch.Tensor, *, adc: "Adc | None", var: torch.Tensor | None, plane_weights,
                   keys: tuple[int, int], factor, row_scale, bias: torch.Tensor | None, n_out: int,
                   blocks: np.ndarray, sequential: bool | None = None, chunk_bytes: int = 1 << 30) -> dict:
    """``kernels.adc_accumulate`` in torch on y's device: same arguments (``factor``, ``row_scale`` and the
    converters' tables as NumPy arrays or tensors), same dict (``clip`` an int64 tensor).

    ``sequential`` (default: on the CPU only): add the tile outputs one (plane, row tile, slice) after the
    other in float64 as the numba kernel does — bit for bit; otherwise whole blocks of row tiles (at most
    ``chunk_bytes`` of float64 work each) are converted at once and summed by torch (another summation
    order: equal to ~1e-15 relative, a test), which is what a GPU wants."""
    p_n, r_n, n, m = y.shape
    dev = y.device
    if sequential is None:
        sequential = dev.type == "cpu"
    n_slices = m // n_out
    qscale = _on(factor, dev)[None] * _on(plane_weights, dev)[:, None, None]  # (P, R, M)
    half = adc.half if adc is not None else 0
    hh = float(max(half, 1))
    dynamic = adc is not None and adc.dynamic
    gain = None
    if adc is not None and not dynamic:
        gain, step_lsb = adc.tables_on(dev)
        qscale = qscale * step_lsb[None]
    rc = 1 if sequential else max(1, min(r_n, chunk_bytes // max(1, 4 * 8 * n * m)))  # row tiles per pass
    acc = torch.zeros((n, n_out), dtype=torch.float64, device=dev)
    clip = torch.zeros(n, dtype=torch.int64, device=dev)
    for p in range(p_n):
        for r0 in range(0, r_n, rc):
            r1 = min(r_n, r0 + rc)
            row0 = (p * r_n + r0) * n  # first noise-stream row of these tile outputs
            s = y[p, r0:r1]  # (rc, N, M) float32
            if var is not None:
                z = counter_normals(keys[0], (r1 - r0) * n, m, dev, row0).view(r1 - r0, n, m)
                s = s + _sqrt32(var[p, r0:r1].float().clamp(min=0)) * z
            qs = qscale[p, r0:r1, None, :]  # (rc, 1, M)
            if adc is None:
                term = s.double() * qs
            else:
                step = None
                if dynamic:  # full scale = abs-max of each vector's block of columns
                    g = torch.zeros(s.shape, dtype=torch.float64, device=dev)
                    step = torch.ones(s.shape, dtype=torch.float64, device=dev)
                    for m0, m1, _ in blocks:
                        if m1 > m0:
                            f = s[..., m0:m1].abs().amax(-1, keepdim=True).double()
                            pos = f > 0
                            g[..., m0:m1] = torch.where(pos, _div(hh, f), 0.0)
                            step[..., m0:m1] = torch.where(pos, _div(f, hh), 1.0)
                    u = s.double() * g
                else:
                    u = s.double() * gain[r0:r1, None, :]  # in LSB
                if adc.noise_lsb > 0:
                    u = u + adc.noise_lsb * counter_normals(keys[1], (r1 - r0) * n, m, dev, row0).view(r1 - r0, n, m)
                if adc.s_curve is not None:
                    u = _div(torch.tanh(_div(adc.s_curve * u, hh)), adc.s_curve) * hh
                clip += (u.abs() > hh).sum((0, 2))
                if half == 0:
                    q = torch.where(u >= 0, 0.5, -0.5).double()
                else:
                    q = torch.round(u.clamp(-hh, hh))
                term = q * qs
                if step is not None:  # dynamic range: LSB → units of this vector's block
                    term = term * step
            if sequential:
                for i in range(r1 - r0):
                    t = term[i].view(n, n_slices, n_out)
                    for k in range(n_slices):
                        acc += t[:, k]
            else:
                acc += term.sum(0).view(n, n_slices, n_out).sum(1)
    out = acc * _on(row_scale, dev)[:, None]
    if bias is not None:
        out = out + bias.detach().to(dev, torch.float64)
    out = out.float()
    lo, hi = _range_scalars(out) if n and n_out else (0.0, 0.0)
    return {"out": out, "clip": clip, "lo": lo, "hi": hi}
