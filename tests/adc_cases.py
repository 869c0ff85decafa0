"""One ADC-accumulate test case, shared by the tests that compare two implementations of
``kernels.adc_accumulate`` (numba vs its NumPy twin; numba vs torch): the same inputs for both."""
import numpy as np
import torch

from analogdiff.config import load_hardware
from analogdiff.crossbar import converters as cv


def adc_case(cfg: dict) -> tuple[torch.Tensor, dict]:
    """(y (p, r, n, m), keyword arguments of ``adc_accumulate``) for ``cfg``: ``adc_bits`` (None: no ADC),
    ``dynamic``, ``noise_lsb``, ``s_curve``, ``var`` (True: float32 read-noise variance; "bf16": bfloat16)."""
    gen = torch.Generator().manual_seed(3)
    p, r, n, n_out, slices = 2, 2, 9, 13, 2
    m = slices * n_out
    y = torch.randn(p, r, n, m, generator=gen)
    var = torch.rand(p, r, n, m, generator=gen) * 0.1 if cfg.get("var") else None
    if cfg.get("var") == "bf16":
        var = var.to(torch.bfloat16)
    blocks = np.array([[k * n_out + c, k * n_out + min(c + 8, n_out), c]
                       for k in range(slices) for c in range(0, n_out, 8)])
    adc = None
    if cfg.get("adc_bits") is not None:
        card = load_hardware("pcm-ibm", {"adc.bits": cfg["adc_bits"], "adc.noise_lsb": cfg.get("noise_lsb", 0.0),
                                         "adc.s_curve": cfg.get("s_curve"),
                                         "adc.output_range": "dynamic" if cfg.get("dynamic") else "calibrated"}).adc
        adc = cv.Adc(card, np.random.default_rng(0).uniform(1, 3, (r, m)))
    args = dict(adc=adc, var=var, plane_weights=np.array([1.0, 0.5]), keys=(11, 12),
                factor=np.random.default_rng(1).uniform(0.5, 1.5, (r, m)),
                row_scale=np.random.default_rng(2).uniform(0.5, 2, n), bias=torch.randn(n_out, generator=gen),
                n_out=n_out, blocks=blocks)
    return y, args
