"""The default read-noise variance (bfloat16 matmul) against the exact one, on the shipped MDLM's tiles."""
import warnings

import pytest
import torch

import analogdiff as ad
from analogdiff.crossbar.layers import _record_inputs, _tile_matmul, analog_layers, analogize


def _mdlm_batch(model, batch=4, seq_len=128, seed=0):
    from analogdiff.lm.corpus import random_windows, split_ids

    gen = torch.Generator().manual_seed(seed)
    ids = random_windows(split_ids("validation", model.vocab), batch, seq_len, gen)
    mask = torch.rand(ids.shape, generator=gen) < 0.5
    return ids.masked_fill(mask, model.mask_id)


def test_bf16_variance_std_within_one_percent_on_the_shipped_mdlm():
    """Per-output read-noise std of every tile of every layer, on real layer inputs, 1 h after programming.

    The IR drop is left out (it only scales σ² by each device's attenuation; the bound does not depend on
    σ²) to keep the test short: programming the wires costs ~50 s of one core."""
    model = ad.load_model("shakespeare-mdlm")
    ids = _mdlm_batch(model)
    hw = ad.load_hardware("pcm-ibm", overrides={"wire": None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        amodel = analogize(model, hw, seed=0, calibration=ids)
    ad.set_drift_time(amodel, 3600.0)
    layers = analog_layers(amodel)
    inputs = _record_inputs(model, ids, 512, [(n, model.get_submodule(n)) for n, _ in layers])
    worst = 0.0
    for name, layer in layers:
        assert layer._var.dtype == torch.bfloat16  # the default
        sq = layer.dac.encode(inputs[name], layer.n_row_tiles, layer.width, want_squares=True)["squares"]
        sigma2 = layer._layer_matrix(layer.state.read_var_us2)  # (R, width, M) µS², float32
        exact = _tile_matmul(sq.double(), sigma2.double())  # (P, R, N, M) µS²
        approx = _tile_matmul(sq.to(torch.bfloat16), layer._var).double()
        on = exact > 0
        rel = (approx[on].sqrt() / exact[on].sqrt() - 1).abs()
        worst = max(worst, float(rel.max()))
    assert worst <= 0.01
    assert worst <= (1 + 2.0 ** -8) ** 1.5 - 1  # the rounding bound of the layers docstring
    print(f"max relative std error of the bfloat16 variance: {worst:.4%}")


def test_exact_card_field_keeps_float32_and_both_agree_in_distribution():
    lin = torch.nn.Linear(64, 48, bias=False).requires_grad_(False)
    x = torch.randn(2000, 64, generator=torch.Generator().manual_seed(0))
    quiet = {"device.prog_noise": None, "drift": None, "wire": None, "dac": None, "adc": None,
             "tile.rows": 64, "tile.cols": 48}
    outs = {}
    for exact in (False, True):
        hw = ad.load_hardware("pcm-ibm", overrides={**quiet, "device.read_noise_exact": exact})
        am = analogize(lin, hw, seed=0)
        assert am._var.dtype == (torch.float32 if exact else torch.bfloat16)
        outs[exact] = am(x) - lin(x)  # read noise only
    # same normals (same seed and stream): each output's noise differs by its std's error, < 0.6 %
    ratio = outs[False] / outs[True]
    assert torch.allclose(ratio[outs[True].abs() > 1e-3], torch.ones(()), atol=0.006)


def test_exact_field_is_validated():
    with pytest.raises(ad.ConfigError, match="device.read_noise_exact"):
        ad.load_hardware("pcm-ibm", overrides={"device.read_noise_exact": "yes"})
