"""Device physics: programming noise, drift, read (1/f) noise, stuck devices.

Pure functions of conductance tensors (µS) and explicit ``torch.Generator``s; no config objects (the
tile binds a card's ``Device``/``Drift`` to them). The statistics mirror aihwkit's phenomenological
inference noise models — the formulas are restated here, the code is not copied:

* ``pcm-ibm``: ``aihwkit/inference/noise/pcm.py`` (``PCMLikeNoiseModel``; Nandakumar et al., ICECS 2019)
* ``pcm-hermes``: ``aihwkit/inference/noise/hermes.py`` (``HermesNoiseModel``, ``num_devices=2``;
  Le Gallo et al., Nat. Electron. 2023)
* ``rram-wan2022``: ``aihwkit/inference/noise/reram.py`` (``ReRamWan2022NoiseModel``; Wan et al.,
  Nature 2022)

Symbols: ``x = g / g_max`` is the relative conductance, ``nu`` the drift exponent, ``t0_s`` the time after
programming at which the drift fit starts (aihwkit's ``t_0``), ``t_read_s`` the 1/f bandwidth parameter.
Time ``t_s`` always counts from the end of programming; as in aihwkit the fits' clock reads ``t_s + t0_s``.
"""
from __future__ import annotations

import math

import torch

# Programming-noise polynomials sigma(x) = sum_i c_i x^i, in µS at the reference g_max they were fitted
# at (the result scales with g_max / g_ref).
PROG_POLY: dict[str, tuple[tuple[float, ...], float]] = {
    # aihwkit pcm.py PCMLikeNoiseModel prog_coeff, fitted at g_max = 25 µS
    "pcm-ibm": ((0.26348, 1.9650, -1.1731), 25.0),
    # aihwkit hermes.py HermesNoiseModel(num_devices=2) prog_coeff, fitted at g_max = 20.7 µS
    "pcm-hermes": ((0.16603222, 4.71806468, -8.48101252, 4.68961419), 20.7),
    # aihwkit reram.py ReRamWan2022NoiseModel coeff_dic[1 s], fitted at g_max = 40 µS
    "rram-wan2022": ((0.348, 16.030, -43.853, 45.393, -16.815), 40.0),
}

# ReRamWan2022NoiseModel: deviation from target at 1 s, 1 day and 2 days (aihwkit reram.py coeff_dic).
RRAM_RELAX_POLY: tuple[tuple[float, tuple[float, ...]], ...] = (
    (1.0, (0.348, 16.030, -43.853, 45.393, -16.815)),
    (86400.0, (0.701, 22.086, -50.773, 47.095, -16.458)),
    (172800.0, (0.782, 20.274, -43.507, 37.062, -11.934)),
)
RRAM_G_REF_US = 40.0

_ZERO_CLIP = 1e-7  # relative conductance floor before log(x) (aihwkit's _ZERO_CLIP)
_CHUNK = 1 << 23
"""Elements per chunk of the elementwise arithmetic of programming (bounds a large layer's float64 temporaries)."""


def _chunks(n: int):
    """Slices of ``_CHUNK`` elements covering ``range(n)``: elementwise work on flat views, chunk by chunk."""
    return (slice(i, i + _CHUNK) for i in range(0, n, _CHUNK))


def _poly(x: torch.Tensor, coeffs: tuple[float, ...]) -> torch.Tensor:
    out = torch.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):  # Horner
        out = out * x + c
    return out


def prog_noise_std_us(g_target_us: torch.Tensor, model: str, g_max_us: float,
                      std_us: float | None = None, scale: float = 1.0) -> torch.Tensor:
    """Std of the programming error of each device, µS (same shape as ``g_target_us``).

    ``pcm-ibm`` / ``pcm-hermes`` / ``rram-wan2022``: sigma = poly(g_target / g_max) · g_max / g_ref
    (the fitted polynomial and its reference g_ref, see ``PROG_POLY``); ``gaussian``: ``std_us``.
    """
    if model == "gaussian":
        if std_us is None:
            raise ValueError("prog_noise_std_us: 'gaussian' needs std_us")
        return torch.full_like(g_target_us, std_us * scale)
    if model not in PROG_POLY:
        raise ValueError(f"prog_noise_std_us: unknown model {model!r}")
    coeffs, g_ref = PROG_POLY[model]
    out = torch.empty_like(g_target_us)
    flat_g, flat_out = g_target_us.reshape(-1), out.view(-1)
    for c in _chunks(flat_out.numel()):
        flat_out[c] = _poly(flat_g[c] / g_max_us, coeffs) * (g_max_us / g_ref) * scale
    return out


def program_conductances(g_target_us: torch.Tensor, std_us: torch.Tensor,
                         gen: torch.Generator) -> torch.Tensor:
    """One program-and-verify result per device: g_target + std · N(0, 1), clipped at 0 µS (as aihwkit)."""
    z = torch.randn(g_target_us.shape, generator=gen, dtype=g_target_us.dtype, device=gen.device)
    flat_g, flat_s, flat_z = g_target_us.reshape(-1), std_us.reshape(-1), z.view(-1)
    for c in _chunks(flat_z.numel()):  # in place
        flat_z[c] = (flat_g[c] + flat_s[c] * flat_z[c]).clamp_(min=0.0)
    return z


def drift_nu_stats(g_target_us: torch.Tensor, model: str, g_max_us: float,
                   nu_mean: float | None = None,
                   nu_std: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the drift exponent nu of each device (before taking |·|).

    ``pcm-ibm`` (pcm.py): mu = clip(-0.0155 ln x + 0.0244, 0.049, 0.1), s = clip(-0.0125 ln x - 0.0059,
    0.008, 0.045). ``pcm-hermes`` (hermes.py, 2 devices): branch fits in x split at 0.0945 (mean) and
    0.3055 (std). ``constant``: ``nu_mean``, ``nu_std`` everywhere.
    """
    x = (g_target_us.abs() / g_max_us).clamp(min=_ZERO_CLIP)
    if model == "pcm-ibm":
        mu = (-0.0155 * torch.log(x) + 0.0244).clamp(0.049, 0.1)
        sd = (-0.0125 * torch.log(x) - 0.0059).clamp(0.008, 0.045)
    elif model == "pcm-hermes":
        mu = torch.where(x < 0.0945, (-0.0387 * torch.log(x) - 0.0182).clamp(0.0720, 0.13),
                         -0.0436 * x ** 2 - 0.0126 * x + 0.0736)
        sd = torch.where(x < 0.3055, (-0.0117 * torch.log(x) - 0.0057).clamp(0.0091, 0.04),
                         -0.0118 * x ** 2 + 0.0093 * x + 0.0073)
    elif model == "constant":
        if nu_mean is None or nu_std is None:
            raise ValueError("drift_nu_stats: 'constant' needs nu_mean and nu_std")
        mu, sd = torch.full_like(x, nu_mean), torch.full_like(x, nu_std)
    else:
        raise ValueError(f"drift_nu_stats: no power-law drift for model {model!r}")
    return mu, sd


def sample_drift_nu(g_target_us: torch.Tensor, model: str, g_max_us: float, gen: torch.Generator,
                    nu_mean: float | None = None, nu_std: float | None = None) -> torch.Tensor:
    """Drift exponent of each device, nu = |N(mu(x), s(x))| (aihwkit ``generate_drift_coefficients``)."""
    z = torch.randn(g_target_us.shape, generator=gen, dtype=g_target_us.dtype, device=gen.device)
    flat_g, flat_z = g_target_us.reshape(-1), z.view(-1)
    for c in _chunks(flat_z.numel()):  # in place
        mu, sd = drift_nu_stats(flat_g[c], model, g_max_us, nu_mean, nu_std)
        flat_z[c] = (mu + sd * flat_z[c]).abs()
    return z


def drift_conductances(g_prog_us: torch.Tensor, nu: torch.Tensor, t_s: float,
                       t0_s: float) -> torch.Tensor:
    """Power-law drift g(t) = g_prog · ((t_s + t0_s) / t0_s)^-nu; g(0) = g_prog; monotone for nu >= 0."""
    if t_s < 0:
        raise ValueError(f"drift time must be >= 0 s, got {t_s}")
    if t_s == 0:
        return g_prog_us.clone()
    return g_prog_us * torch.exp(-nu * math.log((t_s + t0_s) / t0_s))


def rram_relaxation_std_us(g_target_us: torch.Tensor, t_s: float, g_max_us: float) -> torch.Tensor:
    """Std of an RRAM device's deviation from its target t_s after programming, µS.

    aihwkit reram.py fits the spread at 1 s, 1 day and 2 days; in between we interpolate the std
    linearly in log time, before 1 s we hold the 1-s value (the programming noise) and beyond 2 days the
    2-day value (no data there).
    """
    x = g_target_us / g_max_us
    times = [t for t, _ in RRAM_RELAX_POLY]
    t = min(max(t_s, times[0]), times[-1])
    for (ta, ca), (tb, cb) in zip(RRAM_RELAX_POLY, RRAM_RELAX_POLY[1:]):
        if ta <= t <= tb:
            w = (math.log(t) - math.log(ta)) / (math.log(tb) - math.log(ta))
            sd = (1 - w) * _poly(x, ca) + w * _poly(x, cb)
            return sd.clamp(min=0.0) * (g_max_us / RRAM_G_REF_US)
    raise AssertionError("unreachable")


def relax_conductances(g_prog_us: torch.Tensor, g_target_us: torch.Tensor, z: torch.Tensor,
                       t_s: float, g_max_us: float, prog_std_us: torch.Tensor) -> torch.Tensor:
    """RRAM conductance relaxation: one trajectory per device, continuous in time.

    aihwkit redraws g(t) = g_target + sigma_t · N(0,1) at each inference time. We keep one standard
    normal ``z`` per device (drawn at programming) and add the spread grown since programming,
    g(t) = g_prog + sqrt(max(sigma_t² - sigma_prog², 0)) · z, so the deviation from target has std
    ~sigma_t as in aihwkit while a device's state is one trajectory. Clipped at 0 µS.
    """
    grow = (rram_relaxation_std_us(g_target_us, t_s, g_max_us) ** 2 - prog_std_us ** 2).clamp(min=0.0)
    return (g_prog_us + grow.sqrt() * z).clamp(min=0.0)


def one_over_f_factor(t_s: float, t0_s: float, t_read_s: float) -> float:
    """sqrt(ln((t + t_read) / (2 t_read))) with t = t_s + t0_s: accumulated 1/f noise (aihwkit pcm.py)."""
    t = t_s + t0_s
    return math.sqrt(max(math.log((t + t_read_s) / (2.0 * t_read_s)), 0.0))


def read_noise_std_us(g_now_us: torch.Tensor, g_prog_us: torch.Tensor, model: str, g_max_us: float,
                      t_s: float, t0_s: float, t_read_s: float, rel: float | None = None,
                      scale: float = 1.0) -> torch.Tensor:
    """Std of one read of each device, µS (drawn fresh at every MVM by the caller).

    ``pcm-1f`` (pcm.py): |g(t)| · Q · sqrt(ln((t + t_read)/(2 t_read))), Q = min(0.0088 / max(x^0.65,
    1e-3), 0.2), x = g_prog / g_max. ``pcm-hermes-1f`` (hermes.py, 2 devices): Q = clip(-0.0117 ln x -
    0.0069, 0.015, 0.04) below x = 0.16, 0.0069x³ - 0.0280x² + 0.0211x + 0.0123 above. ``gaussian``:
    ``rel`` · g_max, independent of g and t.
    """
    if model == "gaussian":
        if rel is None:
            raise ValueError("read_noise_std_us: 'gaussian' needs rel")
        return torch.full_like(g_now_us, rel * g_max_us * scale)
    x = g_prog_us.abs() / g_max_us
    if model == "pcm-1f":
        q = (0.0088 / (x ** 0.65).clamp(min=1e-3)).clamp(max=0.2)
    elif model == "pcm-hermes-1f":
        low = (-0.0117 * torch.log(x.clamp(min=_ZERO_CLIP)) - 0.0069).clamp(0.015, 0.04)
        high = 0.0069 * x ** 3 - 0.0280 * x ** 2 + 0.0211 * x + 0.0123
        q = torch.where(x < 0.16, low, high)
    else:
        raise ValueError(f"read_noise_std_us: unknown model {model!r}")
    return g_now_us.abs() * q * (one_over_f_factor(t_s, t0_s, t_read_s) * scale)


def stuck_masks(shape: tuple[int, ...], on_fraction: float, off_fraction: float,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent per-device draws: stuck-on with probability ``on_fraction``, stuck-off with
    ``off_fraction`` (disjoint). Returns boolean (on, off) masks of ``shape``."""
    if not (0 <= on_fraction <= 1 and 0 <= off_fraction <= 1 and on_fraction + off_fraction <= 1):
        raise ValueError(f"stuck fractions must lie in [0, 1] and sum to <= 1, got {on_fraction}, "
                         f"{off_fraction}")
    u = torch.rand(shape, generator=gen, dtype=torch.float64, device=gen.device)
    on = u < on_fraction
    off = (u >= on_fraction) & (u < on_fraction + off_fraction)
    return on, off
