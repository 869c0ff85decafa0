"""mapping_report: every parameterized layer listed once, analog or digital with its reason; tiles and
utilization by hand."""
import json
import warnings

import pytest
import torch
from torch import nn

import analogdiff as ad
from analogdiff.crossbar.layers import analogize

SMALL = {"tile.rows": 24, "tile.cols": 16, "tile.bit_slices": 2, "wire": None}


class Mixed(nn.Module):
    """Embedding + LayerNorm + Conv1d + Conv2d (groups) + Linear, a parameter of its own, a GELU."""

    def __init__(self):
        super().__init__()
        self.emb, self.ln = nn.Embedding(11, 6), nn.LayerNorm(6)
        self.pos = nn.Parameter(torch.zeros(6))
        self.conv1 = nn.Conv1d(6, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 20, 3, padding=1, groups=2)
        self.act = nn.GELU()
        self.head = nn.Linear(40, 30)

    def forward(self, ids):                                        # ids (B, T)
        h = self.ln(self.emb(ids) + self.pos).transpose(1, 2)      # (B, 6, T)
        h = self.act(self.conv1(h)).unsqueeze(-1)                  # (B, 6, T, 1)
        h = self.conv2(h.expand(-1, -1, -1, 2)).flatten(2)         # (B, 20, 2T)
        return self.head(h.reshape(h.shape[0], -1, 40))            # T = 2: (B, 2, 30)


def test_every_parameterized_layer_listed_once_with_status():
    torch.manual_seed(0)
    model = Mixed().eval()
    ids = torch.randint(0, 11, (3, 2), generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match=r"1 layer\(s\) with parameters stay digital: '<model>' \(Mixed"):
        am = analogize(model, ad.load_hardware("pcm-ibm", overrides=SMALL), calibration=ids)
    am(ids)
    rep = ad.mapping_report(am)
    rows = {ly.name: ly for ly in rep.layers}
    assert len(rows) == len(rep.layers)
    expected = {n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))}
    assert set(rows) == expected == {"", "emb", "ln", "conv1", "conv2", "head"}
    status = {n: (ly.status, ly.type) for n, ly in rows.items()}
    assert status == {"": ("digital", "Mixed"), "emb": ("digital", "Embedding"), "ln": ("digital", "LayerNorm"),
                      "conv1": ("analog", "Conv1d"), "conv2": ("analog", "Conv2d"), "head": ("analog", "Linear")}
    assert "lookup" in rows["emb"].reason and "normalization" in rows["ln"].reason
    assert "pos" in rows[""].reason
    assert sum(ly.parameters for ly in rep.layers) == sum(p.numel() for p in model.parameters())
    assert all(ly.calibrated for ly in rep.layers if ly.status == "analog")
    d = rep.to_dict()
    assert json.loads(json.dumps(d)) == d
    table = rep.table().splitlines()
    assert len(table) == 1 + len(rep.layers) + 1 and table[1].startswith("<model>")


@pytest.mark.filterwarnings("ignore::UserWarning")  # the digital pos parameter; no calibration data
def test_tiles_and_utilization_by_hand():
    torch.manual_seed(0)
    am = analogize(Mixed().eval(), ad.load_hardware("pcm-ibm", overrides=SMALL))
    rows = {ly.name: ly for ly in ad.mapping_report(am).layers}
    # head 40×30 on 24×16 tiles, 2 slices: R = ⌈40/24⌉ = 2, C = ⌈30/16⌉ = 2 → 2·2·2 = 8 tiles;
    # utilization = 40·30 / (2·2·24·16) = 1200 / 1536
    h = rows["head"]
    assert (h.matrix, h.matrices, h.tiles, h.tile_count) == ((40, 30), 1, (2, 2, 2), 8)
    assert h.utilization == pytest.approx(1200 / 1536)
    # conv2: per group 6/2·3·3 = 27 inputs × 20/2 = 10 outputs: R = 2, C = 1; 2 groups × 2 slices → 8 tiles
    c = rows["conv2"]
    assert (c.matrix, c.matrices, c.tiles, c.tile_count) == ((27, 10), 2, (2, 2, 1), 8)
    assert c.utilization == pytest.approx(270 / (2 * 1 * 24 * 16))
    # conv1: 6·3 = 18 × 6: one row tile, one column tile
    assert (rows["conv1"].matrix, rows["conv1"].tile_count) == ((18, 6), 2)
    assert rows["conv1"].utilization == pytest.approx(108 / 384)
    rep = ad.mapping_report(am)
    assert rep.analog_tiles == 18 and rep.tile_shape == (24, 16)
    assert all(ly.tiles is None and ly.tile_count == 0 for ly in rep.layers if ly.status == "digital")


def test_unmapped_layers_are_named_in_a_warning_and_the_report():
    torch.manual_seed(0)
    model = nn.ModuleDict({"c3": nn.Conv3d(2, 2, 1), "mha": nn.MultiheadAttention(8, 2), "fc": nn.Linear(4, 4),
                           "bn": nn.BatchNorm1d(4)})
    with pytest.warns(UserWarning) as rec:
        am = analogize(model, "ideal")
    msg = " ".join(str(w.message) for w in rec)
    assert "'c3' (Conv3d" in msg and "'mha' (MultiheadAttention" in msg and "'mha.out_proj'" in msg
    assert "'bn'" not in msg and "'fc'" not in msg
    rows = {ly.name: ly for ly in ad.mapping_report(am).layers}
    assert set(rows) == {"c3", "mha", "mha.out_proj", "fc", "bn"}
    assert [n for n, ly in rows.items() if ly.status == "analog"] == ["fc"]
    assert isinstance(am["mha"].out_proj, nn.Linear)  # left for its parent to read


def test_shipped_model_report_counts_every_parameter():
    model = ad.load_model("shakespeare-ar")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # embeddings and norms are digital by design: no warning
        am = analogize(model, "ideal")
    rep = ad.mapping_report(am)
    assert sum(ly.parameters for ly in rep.layers) == sum(p.numel() for p in model.parameters())
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert [ly.name for ly in rep.layers if ly.status == "analog"] == linears


def test_report_needs_an_analogized_model():
    with pytest.raises(ValueError, match="call analogize first"):
        ad.mapping_report(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="no nn.Linear, nn.Conv1d or nn.Conv2d"):
        analogize(nn.Sequential(nn.Embedding(3, 3), nn.LayerNorm(3)), "ideal")
