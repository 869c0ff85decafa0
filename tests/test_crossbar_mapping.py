"""Weights → conductance pairs → tiles, and back."""
import pytest
import torch

from analogdiff.crossbar import mapping


def _w(out=7, inp=11, seed=0):
    return torch.randn((out, inp), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("scale", ["per-layer", "per-column"])
@pytest.mark.parametrize("slices", [1, 2, 3])
def test_round_trip_and_window(scale, slices):
    w = _w()
    cmap = mapping.map_weights(w, 0.5, 25.0, scale, slices, bits_per_slice=2)
    back = mapping.weights_from_conductances(cmap.g_pos_us, cmap.g_neg_us, cmap)
    assert torch.allclose(back, w, atol=1e-12)
    for g in (cmap.g_pos_us, cmap.g_neg_us):
        assert g.min() >= 0.5 - 1e-12 and g.max() <= 25.0 + 1e-12
    # one device of each pair sits at g_min
    assert torch.all((cmap.g_pos_us == 0.5) | (cmap.g_neg_us == 0.5))
    assert cmap.significance.shape == (slices,)


def test_per_column_scale_uses_full_window():
    w = _w()
    cmap = mapping.map_weights(w, 0.0, 25.0, "per-column")
    g_on = torch.maximum(cmap.g_pos_us, cmap.g_neg_us)[0]  # (in, out)
    assert torch.allclose(g_on.amax(dim=0), torch.full((7,), 25.0, dtype=torch.float64))


def test_bit_slices_hold_digits():
    u = torch.rand(1000, dtype=torch.float64)
    levels, sig = mapping.slice_levels(u, 3, 2)
    assert torch.allclose((levels * sig[:, None]).sum(0), u)
    digits = levels[:2] * 3  # base 4: digits 0..3
    assert torch.allclose(digits, digits.round())
    assert levels.min() >= 0 and levels.max() <= 1


def test_unmappable_weights_rejected():
    with pytest.raises(ValueError, match="all zero"):
        mapping.map_weights(torch.zeros(3, 4), 0.0, 25.0, "per-layer")
    bad = _w()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mapping.map_weights(bad, 0.0, 25.0, "per-column")
    with pytest.raises(ValueError):
        mapping.map_weights(_w(), 25.0, 25.0, "per-layer")


def test_tiles_round_trip_with_padding():
    a = torch.randn(2, 70, 45, dtype=torch.float64)
    t = mapping.to_tiles(a, 32, 16)
    assert t.shape == (2, 3, 3, 32, 16)
    assert mapping.tile_counts(70, 45, 32, 16) == (3, 3)
    assert torch.equal(mapping.from_tiles(t, 70, 45), a)
    assert (t[:, 2, :, 6:, :] == 0).all() and (t[:, :, 2, :, 13:] == 0).all()


def test_interleave_and_difference():
    gp, gn = torch.rand(3, 4, 5), torch.rand(3, 4, 5)
    dev = mapping.interleave_pairs(gp, gn)
    assert dev.shape == (3, 4, 10)
    assert torch.equal(dev[..., 0::2], gp) and torch.equal(dev[..., 1::2], gn)
    assert torch.equal(mapping.pair_difference(dev), gp - gn)
