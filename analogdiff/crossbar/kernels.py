"""Fused numba kernels of an analog layer's per-MVM work, each with a NumPy/torch twin for the tests.

``dac_encode``: one pass over the inputs — normalization (static range or per-vector abs-max), DAC
rounding or bit-serial planes, squares for the read-noise variance, activity statistics — writing
straight into the (P, R, N, width) layout of the batched tile matmul.

``adc_accumulate``: one pass over the tile partial sums — read noise, ADC noise, S-curve, clipping and
rounding per tile, shift-add over bit planes and slices, accumulation over row tiles, drift
compensation, digital scale and bias.

Randomness: counter-based standard normals, Box-Muller in float32. Pair ``ctr`` of stream ``key``
comes from one splitmix64 hash: 32 bits give u1 ∈ (0, 1] (resolution 2^-32, so |z| ≤ 6.7), 32 bits the
angle; ln, sin and cos are polynomials accurate to float32 rounding (no libm calls, so the loop
vectorizes: about 1.6 ns per normal on one core, 2.5× faster than ``torch.randn``). The key of each call
is drawn from the layer's ``torch.Generator`` and the counter is the element's index, so results do not
depend on the number of threads, and the NumPy twin ``counter_normals`` reproduces the kernels' draws
bit for bit.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba
import numpy as np
import torch
from numba import types
from numba.extending import intrinsic

if TYPE_CHECKING:
    from .converters import Adc, Dac

# --------------------------------------------------------------------------- normals

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)

_f = np.float32
_ONE, _TWO, _HALF, _MINUS2 = _f(1.0), _f(2.0), _f(0.5), _f(-2.0)
_LN2, _SQRT2, _PI = _f(math.log(2.0)), _f(math.sqrt(2.0)), _f(math.pi)
_TWO_M32, _TWO_M33 = _f(2.0 ** -32), _f(2.0 ** -33)
_L3, _L5, _L7, _L9 = _f(1 / 3), _f(1 / 5), _f(1 / 7), _f(1 / 9)  # 2·atanh series of ln
_S0, _S1, _S2, _S3, _S4, _S5 = (_f((-1) ** k / math.factorial(2 * k + 1)) for k in range(6))  # sin
_C0, _C1, _C2, _C3, _C4, _C5, _C6 = (_f((-1) ** k / math.factorial(2 * k)) for k in range(7))  # cos


@intrinsic
def _f32_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.int32))
    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, i):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return types.float32(types.int32), codegen


@numba.njit(inline="always", error_model="numpy", cache=True)
def _hash(key, ctr):
    z = np.uint64(key) + np.uint64(ctr) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(inline="always", error_model="numpy", cache=True)
def _ln(x):
    """ln x for float32 x > 0: x = m·2^e, m ∈ [√½, √2), ln m = 2·atanh(s), s = (m-1)/(m+1)."""
    bits = _f32_bits(x)
    e = ((bits >> 23) & 0xFF) - 127
    m = _bits_f32((bits & 0x7FFFFF) | 0x3F800000)
    big = m > _SQRT2
    m = m * _HALF if big else m
    e = e + 1 if big else e
    s = (m - _ONE) / (m + _ONE)
    s2 = s * s
    return _f(e) * _LN2 + _TWO * s * (_ONE + s2 * (_L3 + s2 * (_L5 + s2 * (_L7 + s2 * _L9))))


@numba.njit(inline="always", error_model="numpy", cache=True)
def _normal_pair(key, ctr):
    """Two independent standard normals (float32): Box-Muller on one 64-bit hash of (key, ctr)."""
    h = _hash(key, ctr)
    u1 = _f(np.int64(h >> _S32)) * _TWO_M32 + _TWO_M33  # (0, 1]
    w = _f(np.int64(h & _LOW32)) * _TWO_M32 - _HALF  # [-1/2, 1/2): half-angle / π
    r = np.sqrt(_MINUS2 * _ln(u1))
    b = _PI * w
    b2 = b * b
    sb = b * (_S0 + b2 * (_S1 + b2 * (_S2 + b2 * (_S3 + b2 * (_S4 + b2 * _S5)))))
    cb = _C0 + b2 * (_C1 + b2 * (_C2 + b2 * (_C3 + b2 * (_C4 + b2 * (_C5 + b2 * _C6)))))
    return r * (cb * cb - sb * sb), r * (_TWO * sb * cb)  # r·cos 2b, r·sin 2b


@numba.njit(inline="always", error_model="numpy", cache=True)
def _normal_pairs(za, zb, key, base):
    """za[q], zb[q] = the pair of counter base + q. Two arrays that cannot alias: the loop vectorizes
    (measured 1.8 ns per normal against 6.9 ns when both halves were stored into one array)."""
    for q in range(za.shape[0]):
        a, b = _normal_pair(key, base + q)
        za[q] = a
        zb[q] = b


@numba.njit(inline="always", error_model="numpy", cache=True)
def _fill_normals(z, key, row, tmp):
    """z[:] = the normals of row ``row`` of stream ``key`` (pair counters row·ceil(M/2) + q: first
    elements to z[:M//2], second to z[ceil(M/2):]). ``tmp``: scratch, at least M//2 long."""
    m = z.shape[0]
    half = (m + 1) // 2
    n2 = m // 2
    base = row * half
    _normal_pairs(z[:n2], tmp[:n2], key, base)
    z[half:half + n2] = tmp[:n2]
    if m % 2:
        a, _ = _normal_pair(key, base + n2)
        z[n2] = a


def counter_normals(key: int, n_rows: int, m: int) -> np.ndarray:
    """Twin of the kernels' normals: (n_rows, m) float32, row r as ``_fill_normals(z, key, r, tmp)``
    (computed by the torch implementation, ``kernels_torch.counter_normals``, on the CPU)."""
    from .kernels_torch import counter_normals as torch_normals

    return torch_normals(key, n_rows, m).numpy()


# --------------------------------------------------------------------------- order keys
# A float32's bits, with the magnitude bits flipped for negative numbers, order like the floats:
# min/max reductions and NaN/Inf counts then run on integers, which vectorize without fastmath.

@numba.njit(inline="always", error_model="numpy", cache=True)
def _order_key(v):
    b = _f32_bits(v)
    return b ^ ((b >> 31) & 0x7FFFFFFF)


def key_to_float(k: int) -> float:
    """Inverse of the kernels' order key (the transform is an involution)."""
    b = np.int32(k)
    return float(np.array([b ^ ((b >> 31) & 0x7FFFFFFF)], dtype=np.int32).view(np.float32)[0])


_KEY_MAX, _KEY_MIN = np.int32(2 ** 31 - 1), np.int32(-2 ** 31)


@numba.njit(inline="always", error_model="numpy", cache=True)
def _not_finite(v):
    return ((_f32_bits(v) >> 23) & 0xFF) == 0xFF


# --------------------------------------------------------------------------- DAC

@numba.njit(parallel=True, error_model="numpy", cache=True)
def _scan(x, bad, kmin, kmax):
    """Per row of x (N, K) float32: count of NaN/Inf, min and max order keys."""
    for n in numba.prange(x.shape[0]):
        nb, lo, hi = 0, _KEY_MAX, _KEY_MIN
        for i in range(x.shape[1]):
            v = x[n, i]
            nb += _not_finite(v)
            kk = _order_key(v)
            lo = min(lo, kk)
            hi = max(hi, kk)
        bad[n], kmin[n], kmax[n] = nb, lo, hi


@numba.njit(inline="always", error_model="numpy", cache=True)
def _dac_level(xv, inv, levels):
    """One input's DAC level, float64: rint(clip(x·inv, -1, 1)·L)."""
    return np.rint(min(max(xv * inv, -1.0), 1.0) * levels)


@numba.njit(inline="always", error_model="numpy", cache=True)
def _dac_value(xv, inv, quantize, levels, inv_levels):
    """One DAC output as float64: its level / L, or x·inv without a DAC."""
    if quantize:
        return _dac_level(xv, inv, levels) * inv_levels
    return xv * inv


@numba.njit(inline="always", error_model="numpy", cache=True)
def _squares_f32(xr, inv, quantize, levels, inv_levels, q):
    """q[:len(xr)] = float32 of each DAC output's float64 square; the padding after it 0."""
    c_end = xr.shape[0]
    for c in range(c_end):
        v = _dac_value(xr[c], inv, quantize, levels, inv_levels)
        q[c] = np.float32(v * v)
    q[c_end:] = 0.0


@numba.njit(inline="always", error_model="numpy", cache=True)
def _squares_bf16(xr, inv, quantize, levels, inv_levels, q16):
    """``_squares_f32`` then rounded to bfloat16 (nearest, ties to even, as torch's cast; squares are >= 0),
    stored as the bfloat16 bits (int16)."""
    c_end = xr.shape[0]
    for c in range(c_end):
        v = _dac_value(xr[c], inv, quantize, levels, inv_levels)
        q16[c] = _bf16_bits(np.float32(v * v))
    q16[c_end:] = 0


@numba.njit(inline="always", error_model="numpy", cache=True)
def _bf16_bits(v):
    """The bits (int16) of float32 v >= 0 rounded to bfloat16: nearest, ties to even (torch's cast)."""
    b = _f32_bits(v)
    return np.int16((b + 0x7FFF + ((b >> 16) & 1)) >> 16)


@numba.njit(parallel=True, error_model="numpy", cache=True)
def _dac_encode(x, inv_range, dynamic, quantize, levels, out, sq, sq16, want_sq, sq_bf16, row_scale, abs_sum,
                sq_sum, bad, kmin, kmax):
    n_rows, k = x.shape
    n_tiles, width = out.shape[1], out.shape[3]
    inv_levels = 1.0 / levels
    for n in numba.prange(n_rows):
        lo, hi, nb = _KEY_MAX, _KEY_MIN, 0
        inv = inv_range
        if dynamic:  # per-vector abs-max, as an integer max over the magnitude bits
            amax = np.int32(0)
            for i in range(k):
                amax = max(amax, _f32_bits(x[n, i]) & 0x7FFFFFFF)
            a = _bits_f32(amax)
            inv = 1.0 / a if a > 0 else 1.0
        row_scale[n] = 1.0 / inv
        s_abs, s_sq = 0, 0  # integer DAC levels: exact, vectorizable sums
        f_abs, f_sq = 0.0, 0.0
        for r in range(n_tiles):
            o = out[0, r, n]
            c_end = min(width, k - r * width)
            xr = x[n, r * width:r * width + c_end]
            if quantize:
                for c in range(c_end):
                    xv = xr[c]
                    b = _f32_bits(xv)
                    nb += ((b >> 23) & 0xFF) == 0xFF  # NaN or Inf
                    kk = b ^ ((b >> 31) & 0x7FFFFFFF)
                    lo = min(lo, kk)
                    hi = max(hi, kk)
                    lv = _dac_level(xv, inv, levels)
                    mag = np.int64(abs(lv))
                    s_abs += mag
                    s_sq += mag * mag
                    o[c] = lv * inv_levels
            else:
                for c in range(c_end):
                    xv = xr[c]
                    b = _f32_bits(xv)
                    nb += ((b >> 23) & 0xFF) == 0xFF
                    kk = b ^ ((b >> 31) & 0x7FFFFFFF)
                    lo = min(lo, kk)
                    hi = max(hi, kk)
                    v = xv * inv
                    f_abs += abs(v)
                    f_sq += v * v
                    o[c] = v
            o[c_end:] = 0.0
            if want_sq:  # squares of the same float64 values, in a loop of their own
                if sq_bf16:
                    _squares_bf16(xr, inv, quantize, levels, inv_levels, sq16[0, r, n])
                else:
                    _squares_f32(xr, inv, quantize, levels, inv_levels, sq[0, r, n])
        if quantize:
            abs_sum[n] = s_abs * inv_levels
            sq_sum[n] = s_sq * inv_levels * inv_levels
        else:
            abs_sum[n], sq_sum[n] = f_abs, f_sq
        bad[n], kmin[n], kmax[n] = nb, lo, hi


@numba.njit(parallel=True, error_model="numpy", cache=True)
def _dac_encode_serial(x, inv_scale, levels, out, sq, want_sq, abs_sum, sq_sum):
    n_rows, k = x.shape
    n_planes, n_tiles, width = out.shape[0], out.shape[1], out.shape[3]
    for n in numba.prange(n_rows):
        inv = inv_scale[n]
        s_abs, s_sq = 0, 0
        for r in range(n_tiles):
            for c in range(width):
                i = r * width + c
                mag, sgn = 0, 0.0
                if i < k:
                    v = min(max(x[n, i] * inv, -1.0), 1.0)
                    mag = np.int64(np.rint(abs(v) * levels))
                    sgn = 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)
                    s_abs += mag
                    s_sq += mag * mag
                for p in range(n_planes):
                    b = sgn * ((mag >> p) & 1)
                    out[p, r, n, c] = b
                    if want_sq:
                        sq[p, r, n, c] = abs(b)
        abs_sum[n] = s_abs / levels
        sq_sum[n] = s_sq / (levels * levels)


SQUARES_DTYPES = (torch.float32, torch.bfloat16)
"""What ``dac_encode`` (both implementations) can write the squares as: the read-noise variance's dtypes."""


def check_squares_dtype(dtype: torch.dtype) -> None:
    if dtype not in SQUARES_DTYPES:
        raise ValueError(f"dac_encode: squares_dtype must be torch.float32 or torch.bfloat16, got {dtype}")


def dac_encode(x: torch.Tensor, dac: "Dac", *, n_tiles: int, width: int, want_squares: bool,
               squares_dtype: torch.dtype = torch.float32) -> dict:
    """Encode inputs x (N, K) for the tiles through the row drivers ``dac`` (``converters.Dac``: its
    levels L, None = exact normalized inputs; bit-serial planes; static range, None = per-vector abs-max).

    Returns ``planes`` (P, R, N, width) float32 with zero padding (P = ``dac.n_planes``: 1 unless
    bit-serial, then planes in {-1, 0, 1}), ``squares`` (same shape, or None; of ``squares_dtype``, float32
    or bfloat16: the float32 squares rounded as torch's cast rounds them), ``row_scale`` (N,) full
    scale per vector, per-vector ``abs_sum`` and ``sq_sum`` of the normalized DAC levels, and ``lo``,
    ``hi``: min and max of x (both NaN if x holds any NaN or Inf).
    """
    x = x.detach().to(torch.float32).contiguous()
    n = x.shape[0]
    bad, kmin, kmax = np.zeros(n, np.int64), np.zeros(n, np.int32), np.zeros(n, np.int32)
    row_scale = np.empty(n)
    quantize = dac.levels is not None  # False: no DAC, exact normalized inputs
    levels = dac.levels if quantize else 1
    serial = quantize and dac.bit_serial
    check_squares_dtype(squares_dtype)
    planes = torch.empty((dac.n_planes, n_tiles, n, width), dtype=torch.float32)
    squares = (torch.empty(planes.shape, dtype=squares_dtype) if want_squares
               else torch.empty((1, 1, 1, 1), dtype=squares_dtype))
    sq_bf16 = squares_dtype == torch.bfloat16
    sq32 = np.empty((1, 1, 1, 1), np.float32) if sq_bf16 else squares.numpy()  # the kernel's two views
    sq16 = squares.view(torch.int16).numpy() if sq_bf16 and want_squares else np.empty((1, 1, 1, 1), np.int16)
    abs_sum, sq_sum = np.empty(n), np.empty(n)
    x_range = dac.x_range
    if serial:
        _scan(x.numpy(), bad, kmin, kmax)
        if x_range is None:
            a = x.abs().amax(dim=1).to(torch.float64).numpy() if x.shape[1] else np.zeros(n)
            row_scale[:] = np.where(a > 0, a, 1.0)
        else:
            row_scale[:] = x_range
        _dac_encode_serial(x.numpy(), 1.0 / row_scale, levels, planes.numpy(), sq32, want_squares and not sq_bf16,
                           abs_sum, sq_sum)
        if want_squares and sq_bf16:  # planes in {-1, 0, 1}: their squares are exact in bfloat16
            squares.copy_(planes.abs())
    else:
        _dac_encode(x.numpy(), inv_range=1.0 / x_range if x_range is not None else 1.0,
                    dynamic=x_range is None, quantize=quantize, levels=levels, out=planes.numpy(),
                    sq=sq32, sq16=sq16, want_sq=want_squares, sq_bf16=sq_bf16, row_scale=row_scale,
                    abs_sum=abs_sum, sq_sum=sq_sum, bad=bad, kmin=kmin, kmax=kmax)
    if n == 0 or x.shape[1] == 0:
        lo = hi = 0.0
    elif bad.any():
        lo = hi = math.nan
    else:
        lo, hi = key_to_float(kmin.min()), key_to_float(kmax.max())
    return {"planes": planes, "squares": squares if want_squares else None, "row_scale": row_scale,
            "abs_sum": abs_sum, "sq_sum": sq_sum, "lo": lo, "hi": hi}


def dac_encode_ref(x: torch.Tensor, dac: "Dac", *, n_tiles: int, width: int) -> torch.Tensor:
    """Twin of ``dac_encode``'s planes, from ``converters``' reference functions: (P, R, N, width) float32."""
    from .converters import dac_bit_planes, dac_quantize

    x = x.to(torch.float64)
    scale = (x.abs().amax(1, keepdim=True) if dac.x_range is None
             else torch.full((x.shape[0], 1), dac.x_range, dtype=torch.float64))
    xn = x / torch.where(scale > 0, scale, torch.ones_like(scale))
    if dac.bits is None:
        planes = xn[None]
    else:
        xq = dac_quantize(xn, dac.bits)
        planes = dac_bit_planes(xq, dac.bits)[0] if dac.bit_serial else xq[None]
    p, n, k = planes.shape
    pad = torch.zeros((p, n, n_tiles * width), dtype=torch.float64)
    pad[:, :, :k] = planes
    return pad.view(p, n, n_tiles, width).permute(0, 2, 1, 3).to(torch.float32)


# --------------------------------------------------------------------------- ADC + accumulation

@numba.njit(parallel=True, error_model="numpy", cache=True)
def _adc_accumulate(y, var, var16, has_var, var_bf16, key_read, key_adc, gain, qscale, blocks, row_scale, bias,
                    has_bias, n_out, do_adc, half, noise_lsb, has_s_curve, s_curve, dynamic, out, clip, kmin,
                    kmax):
    n_planes, n_tiles, n_rows, m_cols = y.shape
    n_slices = m_cols // n_out
    general = do_adc and (dynamic or noise_lsb > 0 or has_s_curve or half == 0)
    hh = float(max(half, 1))
    chunk = 32
    for ch in numba.prange((n_rows + chunk - 1) // chunk):
        acc = np.empty(n_out)
        s_row = np.empty(m_cols, dtype=np.float32)
        z_row = np.empty(m_cols, dtype=np.float32)
        z_tmp = np.empty(m_cols, dtype=np.float32)
        for n in range(ch * chunk, min(n_rows, ch * chunk + chunk)):
            acc[:] = 0.0
            n_clip = 0
            for p in range(n_planes):
                for r in range(n_tiles):
                    row = (p * n_tiles + r) * n_rows + n  # noise stream row of this tile output
                    src = y[p, r, n]
                    if has_var:  # read noise, drawn exactly at output level: N(0, Σ_i x_i² σ_ij²)
                        _fill_normals(z_row, key_read, row, z_tmp)
                        if var_bf16:  # bfloat16 bits: the float32 with the same upper 16 bits
                            vr16 = var16[p, r, n]
                            for m in range(m_cols):
                                v = _bits_f32(np.int32(np.int32(vr16[m]) << 16))
                                s_row[m] = src[m] + np.sqrt(max(v, np.float32(0.0))) * z_row[m]
                        else:
                            vrow = var[p, r, n]
                            for m in range(m_cols):
                                s_row[m] = src[m] + np.sqrt(max(vrow[m], np.float32(0.0))) * z_row[m]
                        src = s_row
                    if not do_adc:
                        for k in range(n_slices):
                            mb = k * n_out
                            for j in range(n_out):
                                acc[j] += src[mb + j] * qscale[p, r, mb + j]
                    elif not general:  # static range, no ADC noise, linear: vectorizable
                        for k in range(n_slices):
                            mb = k * n_out
                            for j in range(n_out):
                                u = src[mb + j] * gain[r, mb + j]  # in LSB
                                n_clip += abs(u) > hh
                                acc[j] += np.rint(min(max(u, -hh), hh)) * qscale[p, r, mb + j]
                    else:
                        if noise_lsb > 0:
                            _fill_normals(z_row, key_adc, row, z_tmp)
                        for b in range(blocks.shape[0]):
                            m0, m1, off = blocks[b, 0], blocks[b, 1], blocks[b, 2] - blocks[b, 0]
                            g_dyn, step = 0.0, 1.0
                            if dynamic:
                                f = 0.0
                                for m in range(m0, m1):
                                    f = max(f, abs(src[m]))
                                if f > 0:
                                    g_dyn, step = hh / f, f / hh
                            for m in range(m0, m1):
                                u = src[m] * (g_dyn if dynamic else gain[r, m])
                                if noise_lsb > 0:
                                    u += noise_lsb * z_row[m]
                                if has_s_curve:
                                    u = math.tanh(s_curve * u / hh) / s_curve * hh
                                n_clip += abs(u) > hh
                                if half == 0:
                                    q = 0.5 if u >= 0 else -0.5
                                else:
                                    q = np.rint(min(max(u, -hh), hh))
                                acc[off + m] += q * qscale[p, r, m] * step
            sc = row_scale[n]
            lo, hi = _KEY_MAX, _KEY_MIN
            for j in range(n_out):
                v = np.float32(acc[j] * sc + (bias[j] if has_bias else 0.0))
                out[n, j] = v
                kk = _order_key(v)
                lo = min(lo, kk)
                hi = max(hi, kk)
            clip[n], kmin[n], kmax[n] = n_clip, lo, hi


def adc_accumulate(y: torch.Tensor, *, adc: "Adc | None", var: torch.Tensor | None,
                   plane_weights: np.ndarray, keys: tuple[int, int], factor: np.ndarray,
                   row_scale: np.ndarray, bias: torch.Tensor | None, n_out: int, blocks: np.ndarray) -> dict:
    """Partial sums y (P, R, N, M) (M = slices × n_out, µS × normalized volts) → outputs (N, n_out).

    Per element: s = y + sqrt(var)·z (read noise, stream ``keys[0]``; ``var`` float32 or bfloat16, None:
    none); conversion by
    ``adc`` (``converters.Adc``: full scale per tile and column, or the abs-max of each vector's block when
    dynamic; ADC noise from stream ``keys[1]``; None: no ADC); then
    out[n, j] = row_scale[n] · Σ_{p,r,m→j} plane_weights[p] · factor[r, m] · s + bias[j]. ``blocks`` (B, 3):
    [m0, m1, j0] column ranges of one physical tile and the output index of m0.
    Returns ``out`` (N, n_out) float32, per-vector ADC ``clip`` counts and the outputs' ``lo``, ``hi``.
    """
    p, r, n, m = y.shape
    out = torch.empty((n, n_out), dtype=torch.float32)
    clip = np.empty(n, dtype=np.int64)
    kmin, kmax = np.zeros(n, np.int32), np.zeros(n, np.int32)
    qscale = factor[None, :, :] * np.asarray(plane_weights, np.float64)[:, None, None]  # (P, R, M)
    gain = np.ones((1, 1))
    if adc is not None and not adc.dynamic:
        gain, qscale = adc.gain, qscale * adc.step[None]  # in LSB; LSB → output units
    bf16 = var is not None and var.dtype == torch.bfloat16
    _adc_accumulate(
        y.numpy(), var=var.numpy() if var is not None and not bf16 else np.empty((1, 1, 1, 1), np.float32),
        var16=var.view(torch.int16).numpy() if bf16 else np.empty((1, 1, 1, 1), np.int16),
        has_var=var is not None, var_bf16=bf16, key_read=np.uint64(keys[0]), key_adc=np.uint64(keys[1]), gain=gain,
        qscale=np.ascontiguousarray(qscale), blocks=blocks, row_scale=row_scale,
        bias=bias.detach().to(torch.float32).numpy() if bias is not None else np.empty(1, dtype=np.float32),
        has_bias=bias is not None, n_out=n_out, do_adc=adc is not None,
        half=adc.half if adc is not None else 0, noise_lsb=adc.noise_lsb if adc is not None else 0.0,
        has_s_curve=adc is not None and adc.s_curve is not None,
        s_curve=adc.s_curve if adc is not None and adc.s_curve is not None else 1.0,
        dynamic=adc is not None and adc.dynamic, out=out.numpy(), clip=clip, kmin=kmin, kmax=kmax)
    lo, hi = (key_to_float(kmin.min()), key_to_float(kmax.max())) if n and n_out else (0.0, 0.0)
    return {"out": out, "clip": clip, "lo": lo, "hi": hi}


def adc_accumulate_ref(y, *, adc, var, plane_weights, keys, factor, row_scale, bias, n_out,
                       blocks) -> torch.Tensor:
    """Twin of ``adc_accumulate`` built from ``converters.adc_quantize`` (float64), for the tests."""
    from .converters import adc_quantize

    p, r, n, m = y.shape
    s = y.to(torch.float64)
    if var is not None:
        z = torch.from_numpy(counter_normals(keys[0], p * r * n, m)).view(p, r, n, m)
        s = s + (var.float().clamp(min=0).sqrt() * z).to(torch.float64)
    if adc is not None:
        zq = (torch.from_numpy(counter_normals(keys[1], p * r * n, m)).view(p, r, n, m).to(torch.float64)
              if adc.noise_lsb > 0 else None)
        if adc.dynamic:
            full = torch.zeros_like(s)
            for m0, m1, _ in blocks:
                full[..., m0:m1] = s[..., m0:m1].abs().amax(-1, keepdim=True)
        else:
            full = torch.from_numpy(adc.full_scale)[None, :, None, :]
        s = adc_quantize(s, full.clamp(min=1e-30), adc.bits, adc.noise_lsb, adc.s_curve, zq)[0]
    s = s * torch.from_numpy(np.asarray(factor, np.float64))[None, :, None, :]
    s = (s * torch.from_numpy(np.asarray(plane_weights, np.float64))[:, None, None, None]).sum((0, 1))
    out = torch.zeros((n, n_out), dtype=torch.float64)
    for m0, m1, j0 in blocks:
        out[:, j0:j0 + m1 - m0] += s[:, m0:m1]
    out = out * torch.from_numpy(np.asarray(row_scale, np.float64))[:, None]
    if bias is not None:
        out = out + bias.to(torch.float64)
    return out
