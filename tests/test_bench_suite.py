"""Suite files: the shipped suites load, bad ones are rejected (one line naming the field) before any work."""
import pytest
from bench_fixtures import tiny_models, write_suite

from analogdiff.bench.suite import SuiteError, load_suite, resolve_suite
from analogdiff.cli import main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("models"))


def test_expansion_collapses_what_cannot_matter(tmp_path, models):
    s = load_suite(write_suite(tmp_path / "s.toml", models))
    units = s.units()
    acc = [u for u in units if u["kind"] == "accuracy"]
    # ideal: no drift, no noise → one run per model; pcm-ibm: 2 drift times × 2 seeds per model
    assert sorted((u["card"], u["drift_time_s"], u["seed"]) for u in acc if u["model_kind"] == "mdlm") == [
        ("ideal", None, None), ("pcm-ibm", 1.0, 0), ("pcm-ibm", 1.0, 1), ("pcm-ibm", 86400.0, 0),
        ("pcm-ibm", 86400.0, 1)]
    gen = [u for u in units if u["kind"] == "generation"]
    # MDLM: 2 steps × (pcm-ibm, h100); AR: one run per card; GPU runs once (no drift, no seed)
    assert len(gen) == 4 + 2 and all(u["judge"] == models["ar"] for u in gen)
    assert {(u["card"], u["seed"], u["drift_time_s"]) for u in gen if u["card"] == "h100-sxm"} == {("h100-sxm", None, None)}
    assert len({u["unit_id"] for u in units}) == len(units)
    assert [u["unit_id"] for u in load_suite(tmp_path / "s.toml").units()] == [u["unit_id"] for u in units]


def test_shipped_suites_are_found():
    assert resolve_suite(None).name == "default.toml"
    assert resolve_suite(None, quick=True).name == "quick.toml"
    assert resolve_suite("estimator") == "estimator"
    with pytest.raises(SuiteError, match="unknown suite 'nope'"):
        resolve_suite("nope")


BAD = [
    ('drift_times_s = [1.0, 86400.0]', 'drift_times_s = [1.0, -5.0]', "drift_times_s[1]: -5 is outside the allowed range [0, 1e+09]"),
    ('cards = ["ideal", "pcm-ibm"]', 'cards = ["ideal", "pcm-nope"]', "pcm-nope"),
    ('cards = ["ideal", "pcm-ibm"]', 'cards = ["ideal", "h100-sxm"]', "h100-sxm is a GPU card"),
    ('steps = [4, 16]', 'steps = [4, 999]', "steps"),
    ('seeds = [0, 1]', 'seeds = [0, 0]', "duplicates"),
    ('seeds = [0, 1]', 'seeds = [0, 1]\ncolour = "red"', "colour: unknown key"),
    ('kind = "accuracy"', 'kind = "acuracy"', "'acuracy' is not one of"),
    ('eval_chars = 256', 'eval_chars = 0', "budget.eval_chars"),
    ('overrides = { "wire" = "none" }', 'overrides = { "adc.bitz" = 6 }', "adc.bitz"),
    ('decode = "ar"', 'decode = "autoregressive"', "decode"),
    ('name = "drift"', 'name = "drift" ]]', "malformed TOML"),
    ('cards = ["pcm-ibm", "h100-sxm"]\n[[section.runs]]',
     'cards = ["pcm-hermes"]\noverrides = { "system" = "none" }\n[[section.runs]]', "llada-8b needs"),
]


@pytest.mark.parametrize("old,new,msg", BAD, ids=[b[2][:20] for b in BAD])
def test_bad_suite_rejected_before_work(tmp_path, models, old, new, msg, capsys):
    path = write_suite(tmp_path / "bad.toml", models)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SuiteError, match=None) as e:
        load_suite(path)
    assert msg in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)
    out = tmp_path / "out"
    assert main(["bench", "--suite", str(path), "--out", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("analogdiff bench: error: suite ") and msg in err and "Traceback" not in err
    assert not out.exists()  # nothing was started


def test_missing_model_rejected(tmp_path, models):
    path = write_suite(tmp_path / "s.toml", {**models, "mdlm": str(tmp_path / "absent.safetensors")})
    with pytest.raises(SuiteError, match=r"models\[0\].*does not exist"):
        load_suite(path)
