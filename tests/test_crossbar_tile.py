"""Programmed tiles: hand computations on 2×2 tiles and physical invariants (ideal devices, drift, read noise,
stuck devices, drift compensation, padding)."""
import math

import pytest
import torch

from analogdiff.config import Device, Drift, Wire
from analogdiff.crossbar.tile import Tile

# One 2×2 tile of differential pairs, µS: W = g+ − g− = [[0.5, 2], [2, -1]].
G_POS = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
G_NEG = torch.tensor([[[0.5, 0.0], [1.0, 5.0]]])
ALL = torch.ones(1, 2, 2, dtype=torch.bool)
IDEAL = Device(technology="ideal", g_max_us=10.0)


def tile(device=IDEAL, drift=None, wire=None, g_pos=G_POS, g_neg=G_NEG, present=ALL, seed=0):
    return Tile(g_pos, g_neg, present, device, drift, wire, torch.Generator().manual_seed(seed))


def random_targets(k=3, rows=16, cols=8, lo=2.0, hi=8.0, seed=1):
    gen = torch.Generator().manual_seed(seed)
    g = lo + (hi - lo) * torch.rand((2, k, rows, cols), generator=gen, dtype=torch.float64)
    return g[0].float(), g[1].float(), torch.ones(k, rows, cols, dtype=torch.bool)


# ----------------------------------------------------------------------------- ideal devices

@pytest.mark.parametrize("wire", [None, Wire(r_row_ohm=0.0, r_col_ohm=0.0)])
def test_ideal_devices_without_wire_resistance_give_the_programmed_matrix(wire):
    t = tile(wire=wire)
    for t_s in (0.0, 3600.0, 1e8):                                   # no drift: the same at every time
        s = t.at_time(t_s)
        assert torch.equal(s.w_eff_us, torch.tensor([[[0.5, 2.0], [2.0, -1.0]]], dtype=torch.float64))
        assert s.read_var_us2 is None and torch.equal(s.alpha, torch.ones(1, dtype=torch.float64))
        assert s.mean_g_us == (1 + 2 + 3 + 4 + 0.5 + 0 + 1 + 5) / 8
    x = torch.tensor([[[1.0, -0.5], [0.25, 1.0]]])                   # (K=1, N=2, rows=2)
    y = Tile.mvm(x, t.at_time(0.0))
    # row 1: 1·[0.5, 2] − 0.5·[2, −1] = [−0.5, 2.5]; row 2: 0.25·[0.5, 2] + [2, −1] = [2.125, −0.5]
    assert torch.equal(y, torch.tensor([[[-0.5, 2.5], [2.125, -0.5]]], dtype=torch.float64))


def test_padding_holds_no_device():
    present = torch.tensor([[[True, False], [True, True]]])
    s = tile(present=present).at_time(0.0)
    assert s.w_eff_us[0, 0, 1] == 0.0 and s.w_eff_us[0, 1, 1] == -1.0
    assert s.mean_g_us == pytest.approx((1 + 0.5 + 3 + 1 + 4 + 5) / 6)   # over the 6 present devices


# ----------------------------------------------------------------------------- drift

def test_constant_drift_by_hand_and_compensation():
    nu, t0 = 0.05, 20.0
    dr = Drift(model="constant", nu_mean=nu, nu_std=0.0, t0_s=t0)
    t = tile(device=Device(technology="pcm", g_max_us=10.0), drift=dr)
    for t_s in (1.0, 3600.0, 86400.0):
        f = ((t_s + t0) / t0) ** -nu                                  # every device: g(t) = g_prog · f
        s = t.at_time(t_s)
        torch.testing.assert_close(s.w_eff_us, torch.tensor([[[0.5, 2.0], [2.0, -1.0]]],
                                                            dtype=torch.float64) * f, rtol=1e-6, atol=0)
        assert s.mean_g_us == pytest.approx(16.5 / 8 * f, rel=1e-6)
        assert s.alpha.item() == 1.0                                   # uncompensated
    comp = tile(device=Device(technology="pcm", g_max_us=10.0),
                drift=Drift(model="constant", nu_mean=nu, nu_std=0.0, t0_s=t0, compensation="global"))
    s = comp.at_time(3600.0)
    assert s.alpha.item() == pytest.approx(((3600.0 + t0) / t0) ** nu, rel=1e-6)   # undoes the uniform drift


@pytest.mark.parametrize("model", ["pcm-ibm", "pcm-hermes"])
def test_drift_lowers_mean_conductance_monotonically(model):
    g_pos, g_neg, present = random_targets()
    t = tile(device=Device(technology="pcm", g_max_us=10.0), drift=Drift(model=model), g_pos=g_pos,
             g_neg=g_neg, present=present)
    times = [0.0, 1.0, 60.0, 3600.0, 86400.0, 3e7]
    means = [t.at_time(ts).mean_g_us for ts in times]
    assert all(a > b for a, b in zip(means, means[1:])), means
    g = [t.conductances_at(ts) for ts in times]
    assert all((b <= a).all() for a, b in zip(g, g[1:]))               # every device, not only the mean


# ----------------------------------------------------------------------------- read noise

def test_read_noise_variance_of_a_2x2_tile_by_hand():
    g_max, t_read, t0 = 10.0, 250e-9, 20.0                             # no [drift]: the 1/f clock uses t0 = 20 s
    t = tile(device=Device(technology="pcm", g_max_us=g_max, read_noise="pcm-1f", t_read_s=t_read))
    t_s = 3600.0
    s = t.at_time(t_s)

    def std(g):                                                        # aihwkit pcm.py 1/f law
        q = min(0.0088 / max((g / g_max) ** 0.65, 1e-3), 0.2)
        return g * q * math.sqrt(math.log((t_s + t0 + t_read) / (2 * t_read)))

    expected = [[std(gp) ** 2 + std(gn) ** 2 for gp, gn in zip(rp, rn)]
                for rp, rn in zip(G_POS[0].tolist(), G_NEG[0].tolist())]
    torch.testing.assert_close(s.read_var_us2, torch.tensor([expected], dtype=torch.float64), rtol=1e-9, atol=0)
    # an MVM draws each output with variance Σ_i x_i² σ²_ij: with z = 1 the noise is exactly that std
    x = torch.tensor([[[1.0, -0.5]]])
    z = torch.ones(1, 1, 2)
    y = Tile.mvm(x, s, z)
    noise = [math.sqrt(1.0 * expected[0][j] + 0.25 * expected[1][j]) for j in range(2)]
    torch.testing.assert_close(y[0, 0], torch.tensor([-0.5 + noise[0], 2.5 + noise[1]], dtype=torch.float64))
    with pytest.raises(ValueError, match="standard normals"):
        Tile.mvm(x, s)


def test_gaussian_read_noise_and_wires_only_attenuate_it():
    dev = Device(technology="rram", g_max_us=10.0, read_noise="gaussian", read_noise_rel=0.02)
    s = tile(device=dev).at_time(0.0)
    assert torch.equal(s.read_var_us2, torch.full((1, 2, 2), 2 * 0.2 ** 2, dtype=torch.float64))
    g_pos, g_neg, present = random_targets(k=1, rows=8, cols=4)
    free = tile(device=dev, g_pos=g_pos, g_neg=g_neg, present=present).at_time(0.0)
    wired = tile(device=dev, wire=Wire(r_row_ohm=2.0, r_col_ohm=2.0), g_pos=g_pos, g_neg=g_neg,
                 present=present).at_time(0.0)
    assert (wired.read_var_us2 <= free.read_var_us2).all() and (wired.read_var_us2 < free.read_var_us2).any()
    assert (wired.w_eff_us.abs().sum() < free.w_eff_us.abs().sum())   # IR drop loses signal


# ----------------------------------------------------------------------------- stuck devices

@pytest.mark.parametrize("on, off", [(1.0, 0.0), (0.0, 1.0)])
def test_all_devices_stuck_where_the_card_says(on, off):
    dev = Device(technology="rram", g_max_us=10.0, g_min_us=1.0, stuck_on_fraction=on, stuck_off_fraction=off)
    present = torch.tensor([[[True, True], [True, False]]])
    t = tile(device=dev, present=present)
    g = t.conductances_at(0.0).view(2, 2, 2)                           # (rows, cols, g+/g−)
    level = 10.0 if on else 1.0
    assert (g[present[0]] == level).all()
    assert (g[1, 1] == 0.0).all()                                     # padding holds no device, never stuck


def test_stuck_fraction_follows_the_card_and_the_seed_and_does_not_drift():
    dev = Device(technology="pcm", g_max_us=10.0, g_min_us=1.0, stuck_on_fraction=0.1, stuck_off_fraction=0.05)
    dr = Drift(model="constant", nu_mean=0.1, nu_std=0.0)
    g_pos, g_neg, present = random_targets(k=4, rows=32, cols=32)      # 8192 devices with targets in [2, 8]
    t = tile(device=dev, drift=dr, g_pos=g_pos, g_neg=g_neg, present=present, seed=7)
    g0 = t.conductances_at(0.0)
    on, off = g0 == 10.0, g0 == 1.0
    n = g0.numel()
    for mask, p in ((on, 0.1), (off, 0.05)):                          # binomial: within 5 standard deviations
        assert abs(mask.sum().item() - p * n) < 5 * math.sqrt(n * p * (1 - p))
    g1 = t.conductances_at(86400.0)
    assert torch.equal(g1[on | off], g0[on | off]) and (g1[~(on | off)] < g0[~(on | off)]).all()
    again = tile(device=dev, drift=dr, g_pos=g_pos, g_neg=g_neg, present=present, seed=7)
    assert torch.equal(again.conductances_at(0.0), g0)                 # same seed, same devices


def test_bad_input():
    with pytest.raises(ValueError, match="K, rows, cols"):
        Tile(G_POS[0], G_NEG[0], ALL[0], IDEAL, None, None, torch.Generator())
    with pytest.raises(ValueError, match="drift time"):
        tile().conductances_at(-1.0)


# ----------------------------------------------------------------------------- chunked arithmetic

@pytest.mark.parametrize("card, k, rows, cols, chunk_devices", [
    ("pcm-ibm", 5, 8, 6, 2 * 8 * 12),        # two tiles per chunk: 3 chunks
    ("pcm-ibm", 21, 3, 5, 40),               # 30 devices per tile: chunks of 8 tiles (240 devices), 3 chunks
    ("rram-wan2022", 21, 3, 5, 40),          # the relaxation draws (targets, spreads, normals) too
    ("rram-wan2022", 17, 1, 1, 20),          # 2 devices per tile: chunks of 8 tiles; the 1-tile tail joins
    ("pcm-ibm, no read noise", 5, 8, 6, 2 * 8 * 12),  # the compensation read without noise
])
def test_chunks_of_tiles_give_the_same_state_as_one_pass(monkeypatch, card, k, rows, cols, chunk_devices):
    """The memory bounds (``_CHUNK_DEVICES``, ``devices._CHUNK``) change no value: programmed conductances,
    stuck masks, drift draws, effective matrices, read-noise variances and the compensation reference are
    the same bits, the mean conductance the same to rounding, also for tiles whose device count is no
    multiple of torch's 16-normal blocks."""
    from analogdiff.config import load_hardware
    from analogdiff.crossbar import devices, tile as tile_mod

    name, _, variant = card.partition(",")
    hw = load_hardware(name, overrides={"device.read_noise": None} if variant else None)
    g_pos, g_neg, present = random_targets(k=k, rows=rows, cols=cols)
    present[3, rows - 1, cols - 1:] = False                          # padding in one tile

    def build():
        return Tile(g_pos, g_neg, present, hw.device, hw.drift, Wire(r_row_ohm=2.0, r_col_ohm=3.0),
                    torch.Generator().manual_seed(7))

    whole = build()
    monkeypatch.setattr(tile_mod, "_CHUNK_DEVICES", chunk_devices)
    monkeypatch.setattr(devices, "_CHUNK", 37)                       # chunks that cut through tiles
    chunked = build()
    assert len(Tile._tile_chunks(k, rows * 2 * cols)) > 1           # the chunked path ran
    for key, value in whole.programmed().items():
        other = chunked.programmed()[key]
        assert (value is None and other is None) or torch.equal(value, other), key
    for t_s in (0.0, 86400.0):
        a, b = whole.at_time(t_s), chunked.at_time(t_s)
        assert torch.equal(a.w_eff_us, b.w_eff_us)
        if variant:
            assert a.read_var_us2 is None and b.read_var_us2 is None
        else:
            assert torch.equal(a.read_var_us2, b.read_var_us2)
        assert torch.equal(a.alpha, b.alpha) and a.mean_g_us == pytest.approx(b.mean_g_us, rel=1e-14)
