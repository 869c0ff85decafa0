"""The same model through aihwkit's pure-torch inference tiles, for cross-checks.

aihwkit is optional and imported inside the functions (STYLE 8). With torch 2.13 its C++ tiles
(``InferenceRPUConfig``) do not load; its torch tiles (``TorchInferenceRPUConfig``) do, and that is what
is used here, with ``PCMLikeNoiseModel`` and ``GlobalDriftCompensation``.

Matching settings (card ``pcm-ibm``): PCMLikeNoiseModel(g_max = device.g_max_us, t_read = t_read_s,
t_0 = drift.t0_s, prog/read noise scales); aihwkit maps each tile's abs-max weight to g_max, i.e. our
``tile.weight_scale = "per-layer"``. Converters: ``forward.is_perfect = True`` when the card's DAC and ADC
are off; otherwise ``inp_res``/``out_res`` = 1 / (2^bits - 2) and aihwkit's IO defaults (output bound 12,
abs-max noise management, iterative bound management, output noise 0.06).

One modelling difference remains by design: aihwkit applies the accumulated 1/f noise once per
``drift_analog_weights`` (static for all later reads); analogdiff draws it fresh at every MVM with the
same magnitude. Over many inputs the relative output-error std is the same.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import Hardware, load_hardware


def rpu_config(hw: Hardware):
    """A ``TorchInferenceRPUConfig`` matching a PCM card (see module docstring)."""
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.simulator.configs import TorchInferenceRPUConfig

    d = hw.device
    if d is None or d.prog_noise not in ("pcm-ibm", None):
        raise ValueError(f"{hw.name}: the aihwkit backend models PCMLikeNoiseModel cards only")
    rpu = TorchInferenceRPUConfig()
    if hw.dac is None and hw.adc is None:
        rpu.forward.is_perfect = True
    else:
        if hw.dac is not None:
            rpu.forward.inp_res = 1.0 / (2 ** hw.dac.bits - 2)
        if hw.adc is not None:
            rpu.forward.out_res = 1.0 / (2 ** hw.adc.bits - 2)
    t0 = hw.drift.t0_s if hw.drift is not None else 20.0
    rpu.noise_model = PCMLikeNoiseModel(
        g_max=d.g_max_us, t_read=d.t_read_s, t_0=t0,
        prog_noise_scale=d.prog_noise_scale if d.prog_noise else 0.0,
        read_noise_scale=d.read_noise_scale if d.read_noise else 0.0,
        drift_scale=1.0 if hw.drift is not None else 0.0)
    if hw.drift is not None and hw.drift.compensation == "global":
        rpu.drift_compensation = GlobalDriftCompensation()
    rpu.mapping.max_input_size = hw.tile.rows if hw.tile else 512
    rpu.mapping.max_output_size = hw.tile.cols if hw.tile else 512
    return rpu


def convert(model: nn.Module, hw: Hardware | str) -> nn.Module:
    """A copy of ``model`` with every nn.Linear an aihwkit analog layer (eval mode, not yet programmed)."""
    from aihwkit.nn.conversion import convert_to_analog

    hw = load_hardware(hw) if not isinstance(hw, Hardware) else hw
    return convert_to_analog(model, rpu_config(hw), inplace=False).eval()


def program_and_drift(amodel: nn.Module, t_s: float) -> None:
    """Program the aihwkit model (fresh programming noise, from torch's global RNG) and drift it."""
    amodel.program_analog_weights()
    amodel.drift_analog_weights(t_s)


def relative_error(y: torch.Tensor, y_ref: torch.Tensor) -> float:
    """Relative output-error std: std(y - y_ref) / std(y_ref)."""
    return float((y - y_ref).std() / y_ref.std())


def compare_backends(times_s=(3600.0, 365.25 * 86400.0), converters_bits: int | None = None,
                     size: int = 256, n_inputs: int = 2000, seeds: int = 3, seed: int = 0) -> dict:
    """Relative output-error std of analogdiff and aihwkit on the same random ``size``² layer.

    Weights and inputs uniform in [-1, 1]. Both sides: card ``pcm-ibm`` with wires off and per-layer weight
    scale; ``converters_bits`` None: DAC and ADC off (aihwkit ``is_perfect``), else DAC/ADC of that many
    bits on both (ours calibrated on the inputs, aihwkit with its IO defaults). Averaged over ``seeds``
    programmings. Returns {"times_s": [...], "analogdiff": [...], "aihwkit": [...], "ratio": [...]}.
    """
    from .layers import analogize, set_drift_time

    overrides: dict = {"wire": None, "tile.weight_scale": "per-layer"}
    if converters_bits is None:
        overrides.update({"dac": None, "adc": None})
    else:
        overrides.update({"dac.bits": converters_bits, "adc.bits": converters_bits})
    hw = load_hardware("pcm-ibm", overrides=overrides)
    gen = torch.Generator().manual_seed(seed)
    lin = nn.Linear(size, size, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.rand((size, size), generator=gen) * 2 - 1)
    x = torch.rand((n_inputs, size), generator=gen) * 2 - 1
    y_ref = lin(x).detach()
    ours, theirs = [], []
    rng_state = torch.get_rng_state()
    torch.manual_seed(seed)  # aihwkit draws its noise from torch's global generator
    try:
        alin = convert(lin, hw)
        for t in times_s:
            e_ours, e_aihw = [], []
            for s in range(seeds):
                amodel = analogize(lin, hw, seed=seed + s, calibration=x)
                set_drift_time(amodel, t)
                e_ours.append(relative_error(amodel(x), y_ref))
                program_and_drift(alin, t)
                with torch.no_grad():
                    e_aihw.append(relative_error(alin(x), y_ref))
            ours.append(sum(e_ours) / seeds)
            theirs.append(sum(e_aihw) / seeds)
    finally:
        torch.set_rng_state(rng_state)
    return {"times_s": list(times_s), "analogdiff": ours, "aihwkit": theirs,
            "ratio": [a / b if b > 0 else math.nan for a, b in zip(ours, theirs)],
            "converters_bits": converters_bits}
