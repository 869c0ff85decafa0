"""The experiment with IR-drop compensation: its calibration is priced once per chip, from the vectors it read."""
import pytest
from bench_fixtures import tiny_models

from analogdiff.bench import experiment as ex
from analogdiff.crossbar.layers import analog_layers
from analogdiff.energy import estimate_calibration


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("irexp"))


def test_calibration_is_reported_once_and_priced_from_the_programmed_chip(models):
    on = {"tile.ir_compensation": "per-column-affine", "tile.rows": 32, "tile.cols": 32}
    spec = ex.Experiment(model=models["mdlm"], card="ecram", overrides=on, seeds=(0, 1),
                         score=ex.Score(eval_chars=200, batch_size=4))
    out = ex.run(spec)
    hw = ex.hardware("ecram", on)
    chip = ex.program(models["mdlm"], hw, 0, 0.0)
    layers = [(m.in_features, m.out_features, m.ir_comp["vectors"]) for _, m in analog_layers(chip)]
    positions = ex.calibration_ids(ex.model(models["mdlm"])).numel()   # validation windows × context
    assert min(n for *_, n in layers) > 0 and max(n for *_, n in layers) == min(positions, 4096)
    assert out["calibration"] == estimate_calibration(layers, hw)
    assert out["calibration"]["vectors"] == sum(n for *_, n in layers)
    assert all(p["calibration"] == out["calibration"] for p in out["per_seed"])
    assert "ir_compensation" in out["per_seed"][0]["cost"]["score"]["breakdown_j"]
    off = ex.run(ex.Experiment(model=models["mdlm"], card="ecram", overrides={"tile.rows": 32, "tile.cols": 32},
                               seeds=(0, 1), score=ex.Score(eval_chars=200, batch_size=4)))
    assert "calibration" not in off and "ir_compensation" not in off["per_seed"][0]["cost"]["score"]["breakdown_j"]
    assert off["per_seed"][0]["metrics"]["bits_per_char"] != out["per_seed"][0]["metrics"]["bits_per_char"]
