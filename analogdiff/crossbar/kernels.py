"""Fused numba kernels of an analog layer's per-MVM work, each with a NumPy/torch twin for the tests.

``dac_encode``: one pass over the inputs — finiteness check, normalization (static range or per-vector
abs-max), DAC rounding or bit-serial planes, squares for the read-noise variance, cheap statistics —
writing straight into the (P, R, N, width) layout of the batched tile matmul.

``adc_accumulate``: one pass over the tile partial sums — read noise, ADC noise, S-curve, clipping and
rounding per tile, shift-add over bit planes and slices, accumulation over row tiles, drift
compensation, digital scale and bias.

Randomness: counter-based standard normals. Number ``ctr`` of stream ``key`` is a ziggurat sample
(Doornik 2005, 128 layers; exact up to the 53-bit resolution of its uniforms) driven by splitmix64
hashes of (key, ctr, draw). The key of each call is drawn from the layer's ``torch.Generator`` and the
counter is the element's index, so results do not depend on the number of threads, and the NumPy twin
``counter_normals`` reproduces the kernels' draws.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

from .converters import adc_half_levels, adc_quantize, dac_bit_planes, dac_half_levels, dac_quantize

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SALT = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_LOW7 = np.uint64(127)
_TWO_M53 = 2.0 ** -53

_ZIG_R = 3.442619855899          # start of the tail (Doornik 2005, 128 layers)
_ZIG_V = 9.91256303526217e-3     # area of each layer


def _zig_tables() -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros(129)
    f = math.exp(-0.5 * _ZIG_R * _ZIG_R)
    x[0], x[1] = _ZIG_V / f, _ZIG_R
    for i in range(2, 128):
        x[i] = math.sqrt(-2.0 * math.log(_ZIG_V / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    return x, x[1:] / x[:-1]


ZIG_X, ZIG_RATIO = _zig_tables()


@numba.njit(inline="always", cache=True)
def _bits(key, ctr, draw):
    z = np.uint64(key) + np.uint64(ctr) * _GOLDEN + np.uint64(draw) * _SALT
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(inline="always", cache=True)
def _unit(h):
    return (float(h >> _S11) + 0.5) * _TWO_M53  # (0, 1)


@numba.njit(cache=True)
def _normal_slow(key, ctr, h, zx, zr):
    """The ziggurat beyond its fast path: wedges, the tail, retries (about 1% of draws)."""
    draw = 0
    while True:
        i = int(h & _LOW7)
        u = 2.0 * _unit(h) - 1.0
        if abs(u) < zr[i]:
            return u * zx[i]
        if i == 0:  # tail beyond R (Marsaglia 1964)
            while True:
                draw += 1
                xt = np.log(_unit(_bits(key, ctr, draw))) / _ZIG_R
                draw += 1
                yt = np.log(_unit(_bits(key, ctr, draw)))
                if -2.0 * yt >= xt * xt:
                    return xt - _ZIG_R if u < 0 else _ZIG_R - xt
        x = u * zx[i]
        f0 = np.exp(-0.5 * (zx[i] * zx[i] - x * x))
        f1 = np.exp(-0.5 * (zx[i + 1] * zx[i + 1] - x * x))
        draw += 1
        if f1 + _unit(_bits(key, ctr, draw)) * (f0 - f1) < 1.0:
            return x
        draw += 1
        h = _bits(key, ctr, draw)


@numba.njit(inline="always", cache=True)
def _normal(key, ctr, zx, zr):
    """Standard normal number ``ctr`` of stream ``key``."""
    h = _bits(key, ctr, 0)
    i = int(h & _LOW7)
    u = 2.0 * _unit(h) - 1.0
    if abs(u) < zr[i]:
        return u * zx[i]
    return _normal_slow(key, ctr, h, zx, zr)


def counter_normals(key: int, counters: np.ndarray) -> np.ndarray:
    """NumPy twin of the kernels' normals: z(key, counter) for an array of counters (float64)."""
    ctr = np.asarray(counters).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(key) + ctr * _GOLDEN
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        h = z ^ (z >> _S31)
    i = (h & _LOW7).astype(np.int64)
    u = 2.0 * (((h >> _S11).astype(np.float64) + 0.5) * _TWO_M53) - 1.0
    out = u * ZIG_X[i]
    for idx in zip(*np.nonzero(np.abs(u) >= ZIG_RATIO[i])):
        out[idx] = _normal_slow(np.uint64(key), ctr[idx], h[idx], ZIG_X, ZIG_RATIO)
    return out


# --------------------------------------------------------------------------- DAC

@numba.njit(inline="always", cache=True)
def _scan_row(x, n):
    lo, hi, amax, finite = np.inf, -np.inf, 0.0, True
    for i in range(x.shape[1]):
        v = x[n, i]
        finite &= np.isfinite(v)
        lo = min(lo, v)
        hi = max(hi, v)
        amax = max(amax, abs(v))
    return lo, hi, amax, finite


@numba.njit(parallel=True, cache=True)
def _dac_encode(x, inv_range, dynamic, levels, out, sq, want_sq, row_scale, abs_sum, sq_sum, xmin,
                xmax, bad):
    n_rows, k = x.shape
    n_tiles, width = out.shape[1], out.shape[3]
    for n in numba.prange(n_rows):
        lo, hi, amax, finite = _scan_row(x, n)
        bad[n], xmin[n], xmax[n] = not finite, lo, hi
        scale = (amax if amax > 0 else 1.0) if dynamic else 1.0 / inv_range
        row_scale[n] = scale
        inv = 1.0 / scale
        s_abs, s_sq = 0.0, 0.0
        for r in range(n_tiles):
            for c in range(width):
                i = r * width + c
                v = 0.0
                if i < k:
                    v = x[n, i] * inv
                    if levels > 0:
                        v = np.rint(min(max(v, -1.0), 1.0) * levels) / levels
                    s_abs += abs(v)
                    s_sq += v * v
                out[0, r, n, c] = v
                if want_sq:
                    sq[0, r, n, c] = v * v
        abs_sum[n], sq_sum[n] = s_abs, s_sq


@numba.njit(parallel=True, cache=True)
def _dac_encode_serial(x, inv_range, dynamic, levels, out, sq, want_sq, row_scale, abs_sum, sq_sum,
                       xmin, xmax, bad):
    n_rows, k = x.shape
    n_planes, n_tiles, width = out.shape[0], out.shape[1], out.shape[3]
    for n in numba.prange(n_rows):
        lo, hi, amax, finite = _scan_row(x, n)
        bad[n], xmin[n], xmax[n] = not finite, lo, hi
        scale = (amax if amax > 0 else 1.0) if dynamic else 1.0 / inv_range
        row_scale[n] = scale
        inv = 1.0 / scale
        s_abs, s_sq = 0.0, 0.0
        for r in range(n_tiles):
            for c in range(width):
                i = r * width + c
                mag, sgn = 0, 0.0
                if i < k:
                    v = min(max(x[n, i] * inv, -1.0), 1.0)
                    mag = int(np.rint(abs(v) * levels))
                    sgn = 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)
                    s_abs += mag / levels
                    s_sq += (mag / levels) ** 2
                for p in range(n_planes):
                    b = sgn * ((mag >> p) & 1)
                    out[p, r, n, c] = b
                    if want_sq:
                        sq[p, r, n, c] = abs(b)
        abs_sum[n], sq_sum[n] = s_abs, s_sq


def dac_encode(x: torch.Tensor, x_range: float | None, bits: int | None, bit_serial: bool,
               n_tiles: int, width: int, want_sq: bool) -> dict:
    """Encode inputs x (N, K) for the tiles.

    ``x_range``: static full scale, or None for per-vector abs-max. ``bits``: DAC resolution, None = no
    DAC (exact normalized inputs). Returns ``planes`` (P, R, N, width) float32 with zero padding (P = 1
    unless bit-serial, then P = bits - 1 planes in {-1, 0, 1}), ``squares`` (same shape, or None),
    ``row_scale`` (N,) full scale per vector, per-vector ``abs_sum`` and ``sq_sum`` of the normalized
    DAC levels, ``xmin``, ``xmax``, and ``bad`` (N,) non-finite flags.
    """
    x = x.detach().to(torch.float32).contiguous()
    n = x.shape[0]
    levels = dac_half_levels(bits) if bits is not None else 0
    serial = bits is not None and bit_serial
    n_planes = max(bits - 1, 1) if serial else 1
    planes = torch.empty((n_planes, n_tiles, n, width), dtype=torch.float32)
    squares = torch.empty_like(planes) if want_sq else torch.empty((1, 1, 1, 1), dtype=torch.float32)
    res = {k: np.empty(n, dtype=np.float64) for k in ("row_scale", "abs_sum", "sq_sum", "xmin", "xmax")}
    bad = np.empty(n, dtype=np.bool_)
    inv = 1.0 / x_range if x_range else 1.0
    fn = _dac_encode_serial if serial else _dac_encode
    fn(x.numpy(), inv, x_range is None, levels, planes.numpy(), squares.numpy(), want_sq,
       res["row_scale"], res["abs_sum"], res["sq_sum"], res["xmin"], res["xmax"], bad)
    res.update(planes=planes, squares=squares if want_sq else None, bad=bad)
    return res


def dac_encode_ref(x: torch.Tensor, x_range: float | None, bits: int | None, bit_serial: bool,
                   n_tiles: int, width: int) -> torch.Tensor:
    """Twin of ``dac_encode``'s planes, from ``converters``: (P, R, N, width) float32."""
    x = x.to(torch.float64)
    scale = (x.abs().amax(1, keepdim=True).clamp(min=1e-300) if x_range is None
             else torch.full((x.shape[0], 1), x_range, dtype=torch.float64))
    xn = x / scale
    if bits is None:
        planes = xn[None]
    else:
        xq = dac_quantize(xn, bits)
        planes = dac_bit_planes(xq, bits)[0] if bit_serial else xq[None]
    p, n, k = planes.shape
    pad = torch.zeros((p, n, n_tiles * width), dtype=torch.float64)
    pad[:, :, :k] = planes
    return pad.view(p, n, n_tiles, width).permute(0, 2, 1, 3).to(torch.float32)


# --------------------------------------------------------------------------- ADC + accumulation

@numba.njit(inline="always", cache=True)
def _convert(u, hh, half, noise, s_curve):
    """One conversion of u (in LSB, full scale at ±hh): noise (LSB), S-curve, clip, round."""
    u += noise
    if s_curve > 0:
        u = math.tanh(s_curve * u / hh) / s_curve * hh
    if half == 0:
        return 0.5 if u >= 0 else -0.5
    return np.rint(min(max(u, -hh), hh))


@numba.njit(parallel=True, cache=True)
def _adc_accumulate(y, var, has_var, key_read, key_adc, gain, qscale, blocks, row_scale, bias,
                    has_bias, n_out, half, noise_lsb, s_curve, dynamic, zx, zr, out, clip, ymin, ymax):
    n_planes, n_tiles, n_rows, m_cols = y.shape
    n_slices = m_cols // n_out
    do_adc = half >= 0
    general = do_adc and (dynamic or noise_lsb > 0 or s_curve > 0 or half == 0)
    hh = float(max(half, 1))
    chunk = 32
    for ch in numba.prange((n_rows + chunk - 1) // chunk):
        acc = np.empty(n_out)
        s_row = np.empty(m_cols, dtype=np.float32)
        for n in range(ch * chunk, min(n_rows, ch * chunk + chunk)):
            acc[:] = 0.0
            n_clip = 0
            for p in range(n_planes):
                for r in range(n_tiles):
                    base = ((p * n_tiles + r) * n_rows + n) * m_cols
                    src = y[p, r, n]
                    if has_var:  # read noise, drawn exactly at output level
                        for m in range(m_cols):
                            s_row[m] = src[m] + math.sqrt(max(var[p, r, n, m], 0.0)) * \
                                _normal(key_read, base + m, zx, zr)
                        src = s_row
                    if not do_adc:
                        for k in range(n_slices):
                            mb = k * n_out
                            for j in range(n_out):
                                acc[j] += src[mb + j] * qscale[p, r, mb + j]
                    elif not general:  # static range, no noise, linear: vectorizable
                        for k in range(n_slices):
                            mb = k * n_out
                            for j in range(n_out):
                                u = src[mb + j] * gain[r, mb + j]  # in LSB
                                n_clip += abs(u) > hh
                                acc[j] += np.rint(min(max(u, -hh), hh)) * qscale[p, r, mb + j]
                    else:
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
                                    u += noise_lsb * _normal(key_adc, base + m, zx, zr)
                                if s_curve > 0:
                                    u = math.tanh(s_curve * u / hh) / s_curve * hh
                                n_clip += abs(u) > hh
                                if half == 0:
                                    q = 0.5 if u >= 0 else -0.5
                                else:
                                    q = np.rint(min(max(u, -hh), hh))
                                acc[off + m] += q * qscale[p, r, m] * step
            lo, hi = np.inf, -np.inf
            sc = row_scale[n]
            for j in range(n_out):
                v = acc[j] * sc
                if has_bias:
                    v += bias[j]
                out[n, j] = v
                lo = min(lo, v)
                hi = max(hi, v)
            clip[n], ymin[n], ymax[n] = n_clip, lo, hi


def adc_accumulate(y: torch.Tensor, var: torch.Tensor | None, plane_w: np.ndarray, key_read: int,
                   key_adc: int, full_scale: np.ndarray | None, factor: np.ndarray,
                   row_scale: np.ndarray, bias: torch.Tensor | None, n_out: int, blocks: np.ndarray,
                   adc_bits: int | None, noise_lsb: float = 0.0, s_curve: float | None = None,
                   dynamic: bool = False) -> dict:
    """Partial sums y (P, R, N, M) (M = slices × n_out, µS × normalized volts) → outputs (N, n_out).

    Per element: s = y + sqrt(var)·z (read noise); ADC per tile with full scale ``full_scale`` (R, M)
    (``dynamic``: the abs-max of each vector's block; ``adc_bits`` None: no ADC); then
    out[n, j] = row_scale[n] · Σ_{p,r,m→j} plane_w[p] · factor[r, m] · s + bias[j]. ``blocks`` (B, 3):
    [m0, m1, j0] column ranges of one physical tile and the output index of m0.
    Returns ``out`` (N, n_out) float32 and per-vector ``clip`` counts, ``ymin``, ``ymax``.
    """
    p, r, n, m = y.shape
    out = torch.empty((n, n_out), dtype=torch.float32)
    clip = np.empty(n, dtype=np.int64)
    ymin, ymax = np.empty(n), np.empty(n)
    v = var.numpy() if var is not None else np.empty((1, 1, 1, 1), dtype=np.float32)
    b = bias.detach().to(torch.float32).numpy() if bias is not None else np.empty(1, dtype=np.float32)
    half = adc_half_levels(adc_bits) if adc_bits is not None else -1
    hh = max(half, 1)
    qscale = factor[None, :, :] * np.asarray(plane_w, np.float64)[:, None, None]  # (P, R, M)
    if adc_bits is not None and not dynamic:
        fs = np.maximum(full_scale, 1e-30)
        gain = hh / fs
        qscale = qscale * (fs / hh)[None]
    else:
        gain = np.ones((1, 1))
    _adc_accumulate(y.numpy(), v, var is not None, np.uint64(key_read), np.uint64(key_adc), gain,
                    np.ascontiguousarray(qscale), blocks, row_scale, b, bias is not None, n_out, half,
                    noise_lsb, s_curve or 0.0, dynamic, ZIG_X, ZIG_RATIO, out.numpy(), clip, ymin, ymax)
    return {"out": out, "clip": clip, "ymin": ymin, "ymax": ymax}


def adc_accumulate_ref(y, var, plane_w, key_read, key_adc, full_scale, factor, row_scale, bias, n_out,
                       blocks, adc_bits, noise_lsb=0.0, s_curve=None, dynamic=False) -> torch.Tensor:
    """Twin of ``adc_accumulate`` built from ``converters.adc_quantize`` (float64), for the tests."""
    p, r, n, m = y.shape
    ctr = np.arange(p * r * n * m, dtype=np.uint64).reshape(p, r, n, m)
    s = y.to(torch.float64)
    if var is not None:
        z = torch.from_numpy(counter_normals(key_read, ctr))
        s = s + var.to(torch.float64).clamp(min=0).sqrt() * z
    if adc_bits is not None:
        zq = torch.from_numpy(counter_normals(key_adc, ctr)) if noise_lsb > 0 else None
        if dynamic:
            full = torch.zeros_like(s)
            for m0, m1, _ in blocks:
                full[..., m0:m1] = s[..., m0:m1].abs().amax(-1, keepdim=True)
        else:
            full = torch.from_numpy(np.asarray(full_scale, dtype=np.float64))[None, :, None, :]
        s = adc_quantize(s, full.clamp(min=1e-30), adc_bits, noise_lsb, s_curve, zq)[0]
    s = s * torch.from_numpy(np.asarray(factor, np.float64))[None, :, None, :]
    s = (s * torch.from_numpy(np.asarray(plane_w, np.float64))[:, None, None, None]).sum((0, 1))
    out = torch.zeros((n, n_out), dtype=torch.float64)
    for m0, m1, j0 in blocks:
        out[:, j0:j0 + m1 - m0] += s[:, m0:m1]
    out = out * torch.from_numpy(np.asarray(row_scale, np.float64))[:, None]
    if bias is not None:
        out = out + bias.to(torch.float64)
    return out
