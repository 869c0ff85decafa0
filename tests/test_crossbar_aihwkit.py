"""Cross-check against aihwkit's torch inference tiles (PCMLikeNoiseModel, GlobalDriftCompensation)."""
import pytest

pytest.importorskip("aihwkit")

from analogdiff.crossbar.aihwkit_backend import compare_backends  # noqa: E402


def test_device_noise_error_agrees_with_aihwkit_at_1h_and_1y():
    # random 256×256 layer, converters and wires off on both sides; aihwkit gives about 0.096 and 0.15
    res = compare_backends(seeds=2, n_inputs=1000)
    for t, ours, theirs in zip(res["times_s"], res["analogdiff"], res["aihwkit"]):
        assert abs(ours / theirs - 1) < 0.30, (t, ours, theirs)
    assert 0.07 < res["aihwkit"][0] < 0.13 and 0.11 < res["aihwkit"][1] < 0.2
    assert res["analogdiff"][1] > res["analogdiff"][0]  # drift: error grows with time


def test_8_bit_converters_both_sides_reported():
    res = compare_backends(times_s=(3600.0,), converters_bits=8, seeds=1, n_inputs=1000)
    ours, theirs = res["analogdiff"][0], res["aihwkit"][0]
    assert 0.05 < ours < 0.5 and 0.05 < theirs < 0.5
