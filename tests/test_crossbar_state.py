"""Programmed state: saved to safetensors + JSON, loaded bit-identically (also in a later process)."""
import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import analogdiff as ad
from analogdiff.crossbar.layers import analogize, set_drift_time
from analogdiff.crossbar.state import load_programmed, save_programmed
from analogdiff.lm.checkpoint import load_model, model_from_card
from bench_fixtures import tiny_models

ROOT = Path(__file__).resolve().parents[1]
TIMES_S = (0.0, 3600.0, 30 * 86400.0)
# every programmed quantity on: programming and read noise, stuck devices, drift + compensation, wires
CARD = {"tile.rows": 24, "tile.cols": 16, "device.stuck_on_fraction": 0.01, "device.stuck_off_fraction": 0.02}


def _ids(n=3, t=20):
    return torch.randint(0, 60, (n, t), generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tiny = tiny_models(tmp_path_factory.mktemp("models"))  # d_model 32, one block, untrained
    model, ids = load_model(tiny["mdlm"]), _ids()
    am = analogize(model, ad.load_hardware("pcm-ibm", CARD), seed=7, calibration=ids)
    set_drift_time(am, 60.0)
    am(ids)  # the noise stream moves on: the file keeps where it is
    path = tmp_path_factory.mktemp("prog") / "tiny-pcm"
    save_programmed(am, path)
    return am, path, ids, tiny


def _outputs(am, ids) -> list[torch.Tensor]:
    out = [am(ids)]  # first from the saved stream state, then at each drift time (streams reset)
    for t in TIMES_S:
        set_drift_time(am, t)
        out += [am(ids), am(ids)]
    return out


def test_round_trip_is_bit_identical_at_every_drift_time(saved):
    am, path, ids, _ = saved
    loaded = load_programmed(path, model_from_card)  # built from the saved model card
    assert loaded.card == am.card
    for a, b in zip(_outputs(am, ids), _outputs(loaded, ids)):
        assert torch.equal(a, b)
    digital = {k: v for k, v in am.state_dict().items()}
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, digital[k]), k


def test_a_later_process_gets_the_same_bytes(saved, tmp_path):
    am, path, ids, _ = saved
    script = tmp_path / "load.py"
    script.write_text(f"""
import hashlib, sys, torch
from analogdiff.crossbar.layers import set_drift_time
from analogdiff.crossbar.state import load_programmed
from analogdiff.lm.checkpoint import model_from_card
am = load_programmed({str(path)!r}, model_from_card)
ids = torch.randint(0, 60, (3, 20), generator=torch.Generator().manual_seed(2))
h = hashlib.sha256(am(ids).numpy().tobytes())
for t in {TIMES_S!r}:
    set_drift_time(am, t)
    h.update(am(ids).numpy().tobytes())
print(h.hexdigest())
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    clone = load_programmed(path, model_from_card)
    h = hashlib.sha256(clone(ids).numpy().tobytes())
    for t in TIMES_S:
        set_drift_time(clone, t)
        h.update(clone(ids).numpy().tobytes())
    assert res.stdout.strip() == h.hexdigest()


def _same_at_every_drift_time(am, loaded, x):
    for t in TIMES_S:
        set_drift_time(am, t)
        set_drift_time(loaded, t)
        assert torch.equal(am(x), loaded(x))


@pytest.mark.parametrize("overrides", [{"adc.output_range": "dynamic", "dac.input_range": "dynamic"},
                                       {"adc": None, "drift.model": "rram-wan2022", "wire": None},
                                       {"dac.bit_serial": True, "dac.bits": 4, "tile.bit_slices": 2}])
def test_round_trip_of_an_mlp_without_a_card(tmp_path, overrides):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(40, 30), nn.GELU(), nn.Linear(30, 20)).requires_grad_(False)
    x = torch.randn(16, 40, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        am = analogize(mlp, ad.load_hardware("pcm-ibm", {**CARD, **overrides}), seed=1, calibration=x)
    save_programmed(am, tmp_path / "mlp.safetensors")
    _same_at_every_drift_time(am, load_programmed(tmp_path / "mlp", mlp), x)
    assert isinstance(mlp[0], nn.Linear)  # the architecture passed in is not changed


def test_a_conv_net_round_trips(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, groups=2),  # 2 matrices
                        nn.Flatten(), nn.Linear(6 * 4 * 4, 5)).requires_grad_(False)
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    am = analogize(net, ad.load_hardware("pcm-ibm", CARD), seed=4, calibration=x)
    save_programmed(am, tmp_path / "net")
    _same_at_every_drift_time(am, load_programmed(tmp_path / "net", net), x)
    _one_line_error(tmp_path / "net", nn.Sequential(nn.Linear(3, 3)), "convolutions")


def test_a_single_linear_round_trips(tmp_path):
    lin = nn.Linear(20, 10).requires_grad_(False)
    x = torch.randn(5, 20, generator=torch.Generator().manual_seed(3))
    am = analogize(lin, ad.load_hardware("pcm-ibm", CARD), seed=2, calibration=x)
    save_programmed(am, tmp_path / "lin")
    assert torch.equal(load_programmed(tmp_path / "lin", nn.Linear(20, 10))(x), am(x))


def _one_line_error(path, model, match):
    with pytest.raises(ValueError, match=match) as e:
        load_programmed(path, model)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_bad_files_are_one_line_errors(saved, tmp_path):
    am, path, ids, _ = saved
    st, js = path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")
    data, doc = st.read_bytes(), json.loads(js.read_text())

    def copy_as(name, st_bytes=data, js_doc=doc):
        (tmp_path / f"{name}.safetensors").write_bytes(st_bytes)
        (tmp_path / f"{name}.json").write_text(json.dumps(js_doc))
        return tmp_path / name

    msg = _one_line_error(tmp_path / "absent", model_from_card, "does not exist")
    assert "absent.json" in msg
    p = copy_as("truncated", data[: len(data) // 2])
    assert "truncated.safetensors" in _one_line_error(p, model_from_card, "corrupt or truncated")
    flipped = bytearray(data)
    flipped[-10] ^= 1
    _one_line_error(copy_as("flipped", bytes(flipped)), model_from_card, "corrupt or truncated")
    garbage = b"not a safetensors file"
    p = copy_as("garbage", garbage, {**doc, "tensors_sha256": hashlib.sha256(garbage).hexdigest()})
    _one_line_error(p, model_from_card, "not a readable safetensors file")
    p = copy_as("badjson")
    (tmp_path / "badjson.json").write_text("{ nope")
    _one_line_error(p, model_from_card, "badjson.json: malformed JSON")
    _one_line_error(copy_as("other", js_doc={**doc, "format": "x"}), model_from_card, "not a programmed")
    p = copy_as("badcard", js_doc={**doc, "hardware_toml": doc["hardware_toml"] + "\n[adc]\nbits = 0\n"})
    _one_line_error(p, model_from_card, "saved hardware card does not load")
    wrong = load_model(saved[3]["mdlm"])
    wrong.backbone.head = nn.Linear(32, 7)  # another vocabulary size
    _one_line_error(path, wrong, "'backbone.head' is 32→.* in the file but 32→7 in the model")
    _one_line_error(path, nn.Sequential(nn.Linear(3, 3)), "does not match the saved layers")
