"""Every hostile input of issue 10 gives one line on stderr naming the file or field, exit code 2, and writes
nothing; the single-rule checks of ``analogdiff.checks`` behave the same from the CLI, suites and spaces."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from analogdiff.cli import main

DEEP = 1000  # nesting depth that made the parsers raise RecursionError


def run(argv, capsys, cwd: Path | None = None):
    """(exit code, stdout, stderr lines) of ``analogdiff ARGV`` in this process."""
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        code = main([str(a) for a in argv])
    finally:
        os.chdir(old)
    cap = capsys.readouterr()
    return code, cap.out, cap.err.strip().splitlines()


def refused(argv, capsys, needle: str, cwd: Path | None = None) -> str:
    code, out, err = run(argv, capsys, cwd)
    assert code == 2, (code, out, err)
    assert len(err) == 1 and needle in err[0], err
    assert "Traceback" not in err[0]
    return err[0]


REST = ('positions = "rotary"\nnorm = "layernorm"\nnorm_bias = false\nbias = []\ntied_embeddings = false\n'
        'cond_dim = 0\n')  # the shape fields that do not matter here
EST = ["estimate", "--model", "gpt2-small", "--hardware", "pcm-ibm"]


def _card(tmp_path: Path, extra: str = "", name: str = "card.toml") -> Path:
    text = (Path(__file__).parents[1] / "circuits" / "pcm-ibm.toml").read_text()
    p = tmp_path / name
    p.write_text(text + extra)
    return p


# --------------------------------------------------------------------------- overflow, bounds, wrap-around

@pytest.mark.parametrize("argv, needle", [
    (EST + ["--set", "digital.e_mac_pj=" + "9" * 400], "digital.e_mac_pj: a number of more than 30 digits"),
    (EST + ["--steps", str(10 ** 30)], "argument --steps: expected an integer in [1, 1048576]"),
    (EST + ["--batch", str(10 ** 30)], "argument --batch: expected an integer in [1, 65536]"),
    (EST + ["--steps", "1e19"], "argument --steps: expected an integer"),
    (EST + ["--seq-len", "1e19", "--block-len", "8192"], "argument --seq-len"),
    (EST + ["--decode", "ar", "--seq-len", str(10 ** 12)], "argument --seq-len"),
    (EST + ["--decode", "ar", "--seq-len", str(2 ** 20)], "seq_len: 1048576 needs 1048576 positions"),
    (EST + ["--set", "digital.e_mac_pj=1e308"], "digital.e_mac_pj: 1e+308 is outside the allowed range [0, 1e+06]"),
    (EST + ["--set", "digital.throughput_gops=5e-324"], "digital.throughput_gops: 4.94066e-324 is outside"),
    (EST + ["--set", "tile.cols=9223372036854775807"], "tile.cols: 9223372036854775807 is outside the allowed range"),
    (EST + ["--set", "adc.e_conv_pj_by_bits={}"], "adc.e_conv_pj_by_bits: expected a non-empty table"),
    (EST + ["--set", 'adc.e_conv_pj_by_bits={ "²" = 1 }'], "adc.e_conv_pj_by_bits: key '²' must be a bit count"),
    (EST + ["--set", "device.g_max_us=nan"], "device.g_max_us: nan is outside"),
    (["estimate", "--model", "x" * 300, "--hardware", "pcm-ibm"], "unknown model shape 'xxx"),
    (["estimate", "--model", "gpt2-small", "--hardware", "x" * 300], "unknown hardware 'xxx"),
    (["estimate", "--model", "gpt2-small", "--hardware", "x" * 300 + ".toml"], "cannot read (File name too long)"),
    (["eval", "--model", "shakespeare-ar", "--hardware", "ideal", "--seeds", "1e20"], "argument --seeds"),
    (["eval", "--model", "shakespeare-ar", "--hardware", "ideal", "--seeds", str(10 ** 20)],
     "argument --seeds: expected an integer in [1, 1000]"),
    (["eval", "--model", "shakespeare-ar", "--hardware", "ideal", "--drift-time", "inf"], "argument --drift-time"),
    (["generate", "--model", "shakespeare-ar", "--hardware", "ideal", "--seed", str(2 ** 70)], "argument --seed"),
    (["train", "--model", "ar", "--threads", "-1"], "--threads: -1 is outside the allowed range [1, 4096]"),
    (["train", "--model", "ar", "--grad-clip", "-1"], "--grad-clip: -1 is outside the allowed range (0, 1e+06]"),
    (["train", "--model", "ar", "--checkpoint-every", "nan"], "--checkpoint-every: nan is outside"),
    (["train", "--model", "ar", "--d-model", "16384", "--n-layers", "256"], "parameters; at most"),
    (["train", "--model", "ar", "--hwa", "pcm-ibm"], "--hwa: hardware-aware training fine-tunes a trained model"),
    (["train", "--model", "ar", "--init", "shakespeare-ar", "--hwa", "h100-sxm"], "--hwa: h100-sxm is not an analog"),
    (["train", "--model", "ar", "--init", "shakespeare-ar", "--hwa", "rram-wan2022"], "--hwa: rram-wan2022 has a bit-s"),
    (["train", "--model", "ar", "--init", "shakespeare-ar", "--hwa", "nope"], "--hwa: unknown hardware 'nope'"),
    (["train", "--model", "ar", "--init", "shakespeare-mdlm"], "--init: 'shakespeare-mdlm' is a 'mdlm' model"),
    (["train", "--model", "ar", "--init", "nope"], "--init: model: unknown name 'nope'"),
    (["train", "--model", "ar", "--hwa-clip-sigma", "-1"], "--hwa-clip-sigma: -1 is outside the allowed range"),
    (["train", "--model", "ar", "--hwa-t-min-s", "0"], "--hwa-t-min-s: must be > 0 s"),
    (["train", "--model", "ar", "--hwa-t-max-s", "inf"], "--hwa-t-max-s: inf is outside"),
    (["tune", "--trials", str(10 ** 30), "--out", "x"], "argument --trials"),
    (["plot", "--results", "r", "--token-rate", "inf"], "argument --token-rate"),
    (["bench", "--workers", "-1"], "argument --workers"),
])
def test_out_of_range_numbers_are_one_line(argv, needle, capsys, tmp_path):
    refused(argv, capsys, needle, cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_every_numeric_card_field_declares_its_range():
    import dataclasses
    import typing

    from analogdiff.config import COMPONENTS

    for section, cls in COMPONENTS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if any(t in str(hints[f.name]) for t in ("int", "float")):
                assert f.metadata.get("lo") is not None and f.metadata.get("hi") is not None, f"{section}.{f.name}"


def test_shape_fields_are_bounded_before_any_arithmetic(tmp_path, capsys):
    shape = tmp_path / "big.toml"
    shape.write_text('n_layers = 2\nd_model = 1' + "0" * 200 + '\nn_heads = 2\nn_kv_heads = 2\nd_ff = 8\n'
                     'mlp = "gelu"\nvocab_size = 8\ncontext_len = 8\n' + REST)
    refused(["estimate", "--model", shape, "--hardware", "pcm-ibm"], capsys,
            "shape.d_model: a number of more than 30 digits is outside the allowed range [1, 131072]")


def test_the_block_schedule_is_vectorized(tmp_path, capsys):
    """2^18 positions in blocks of one: 262,144 blocks, priced (formerly a Python loop per block)."""
    shape = tmp_path / "long.toml"
    shape.write_text('n_layers = 1\nd_model = 8\nn_heads = 2\nn_kv_heads = 2\nd_ff = 8\nmlp = "gelu"\n'
                     f'vocab_size = 8\ncontext_len = {2 ** 18}\n' + REST)
    code, out, err = run(["estimate", "--model", shape, "--hardware", "h100-sxm", "--seq-len", 2 ** 18,
                          "--steps", 2 ** 18, "--block-len", 1, "--json"], capsys)
    import json

    assert code == 0, err
    assert json.loads(out)["counts"]["forward_passes"] == 2 ** 18 + 2 ** 18 - 1  # steps + K/V writes


# --------------------------------------------------------------------------- files: nesting, binary, malformed

@pytest.mark.parametrize("kind", ["card", "shape_toml", "shape_json", "suite", "space", "results", "cases"])
def test_deeply_nested_files_are_one_line(kind, tmp_path, capsys):
    deep_toml = "x = " + "[" * DEEP + "]" * DEEP + "\n"
    deep_json = "[" * 100_000 + "]" * 100_000
    files = {"card": ("c.toml", deep_toml, ["estimate", "--model", "gpt2-small", "--hardware"]),
             "shape_toml": ("s.toml", deep_toml, ["estimate", "--hardware", "pcm-ibm", "--model"]),
             "shape_json": ("s.json", deep_json, ["estimate", "--hardware", "pcm-ibm", "--model"]),
             "suite": ("u.toml", deep_toml, ["bench", "--out", tmp_path / "o", "--suite"]),
             "space": ("p.toml", deep_toml, ["tune", "--trials", "1", "--out", tmp_path / "o", "--space"]),
             "results": ("results.json", deep_json, ["plot", "--results"]),
             "cases": ("cases.json", deep_json, ["validate-circuits", "--cases"])}
    name, text, argv = files[kind]
    (tmp_path / name).write_text(text)
    refused(argv + [tmp_path / name], capsys, "nested too deeply")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_binary_card_names_the_file(tmp_path, capsys):
    card = tmp_path / "bin.toml"
    card.write_bytes(bytes(range(256)) * 4)
    refused(EST[:3] + ["--hardware", card], capsys, f"hardware card {card}: not UTF-8 text")


def test_malformed_card_meets_an_override(tmp_path, capsys):
    card = tmp_path / "scalar.toml"
    card.write_text("memory = 5\n[tile]\nrows = 8\n")
    refused(EST[:3] + ["--hardware", card, "--set", "memory.avg_hops=1.5"], capsys, "memory: expected a table")


def test_directory_given_as_cases_file(tmp_path, capsys):
    refused(["validate-circuits", "--cases", tmp_path], capsys, f"cases file {tmp_path}: cannot read")


# --------------------------------------------------------------------------- --out, storage, states

def test_bench_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[[section]]\nname = "e"\nkind = "estimate"\ncards = ["pcm-ibm"]\n'
                     '[[section.runs]]\nshape = "gpt2-small"\ndecode = "ar"\nseq_len = 64\n')
    refused(["bench", "--suite", suite, "--out", tmp_path / "f", "--no-progress"], capsys, str(tmp_path / "f"))
    refused(["bench", "--suite", suite, "--out", "/dev/null/x", "--no-progress"], capsys, "/dev/null/x")


def test_tune_out_is_a_file_and_a_corrupt_study(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    refused(["tune", "--quick", "--trials", "1", "--out", tmp_path / "f"], capsys, str(tmp_path / "f"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "study.db").write_bytes(b"not a database" * 100)
    refused(["tune", "--quick", "--trials", "1", "--out", bad], capsys, "study.db is not an SQLite database")
    (bad / "study.db").write_bytes(b"SQLite format 3\x00" + bytes(200))
    refused(["tune", "--quick", "--trials", "1", "--out", bad], capsys, "--storage: cannot open")
    refused(["plot", "--study", bad], capsys, "--study: cannot read the study")
    (bad / "study.db").write_bytes(b"junk")
    refused(["plot", "--study", bad], capsys, "is not an SQLite database")


def test_tune_space_with_infinite_drift_time(tmp_path, capsys):
    space = tmp_path / "inf.toml"
    quick = (Path(__file__).parents[1] / "analogdiff" / "bench" / "spaces" / "quick.toml").read_text()
    space.write_text(quick.replace("drift_time_s = 86400.0", "drift_time_s = inf"))
    refused(["tune", "--space", space, "--trials", "1", "--out", tmp_path / "o"], capsys,
            "drift_time_s: inf is outside the allowed range [0, 1e+09]")
    assert not (tmp_path / "o").exists()


def test_plot_out_is_under_dev_null(tmp_path, capsys):
    rows = tmp_path / "results.json"
    rows.write_text('[{"kind": "estimate", "card": "pcm-ibm", "shape": "gpt2-small", "decode": "ar", '
                    '"steps": null, "energy_per_token_j": 1e-3, "latency_per_token_s": 1e-3, '
                    '"energy_per_sequence_j": 0.1, "breakdown_j.adc": 0.05, "breakdown_j.dac": 0.05}]')
    refused(["plot", "--results", rows, "--out", "/dev/null/figs"], capsys, "/dev/null/figs")


def test_plot_rows_with_bad_figures(tmp_path, capsys):
    rows = tmp_path / "results.json"
    rows.write_text('[{"kind": "estimate", "energy_per_token_j": -1}]')
    refused(["plot", "--results", rows], capsys, "row 0.energy_per_token_j: expected a finite number >= 0")


TINY_TRAIN = ["train", "--model", "ar", "--steps", "1", "--n-layers", "1", "--d-model", "8", "--n-heads", "2",
              "--context-len", "8", "--batch-size", "1", "--eval-chars", "16", "--final-eval-chars", "16",
              "--no-progress"]


def test_train_name_cannot_escape_out(tmp_path, capsys):
    refused(TINY_TRAIN + ["--out", tmp_path / "o", "--name", "../../x"], capsys, "--name: '../../x' must be a plain")
    assert list(tmp_path.iterdir()) == []


def test_train_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    refused(TINY_TRAIN + ["--out", tmp_path / "f"], capsys, str(tmp_path / "f"))


def test_train_state_without_config(tmp_path, capsys):
    import json

    import torch

    from analogdiff.lm.checkpoint import save_tensors

    out = tmp_path / "o"
    out.mkdir()
    save_tensors({"x": torch.zeros(1)}, out / "train_state.safetensors", metadata={"info": json.dumps({"step": 1})})
    refused(TINY_TRAIN + ["--out", out], capsys, "holds no usable training state")


# --------------------------------------------------------------------------- one rule per kind of input

def test_drift_time_zero_is_accepted_everywhere(tmp_path):
    """The same rule (0 ≤ t ≤ 1e9 s) for the CLI, a suite and a search space."""
    from analogdiff.bench.suite import validate_suite
    from analogdiff.bench.tune import load_space
    from analogdiff.cli import build_parser

    args = build_parser().parse_args(["eval", "--model", "shakespeare-ar", "--hardware", "ideal",
                                      "--drift-time", "0"])
    assert args.drift_time == 0.0
    suite = validate_suite({"name": "z", "section": [{"name": "a", "kind": "accuracy", "models": ["m"],
                                                      "cards": ["ideal"], "drift_times_s": [0, 3600],
                                                      "seeds": [0]}]}, check_models=False)
    assert suite.sections[0]["drift_times_s"] == [0.0, 3600.0]
    space = tmp_path / "zero.toml"
    quick = (Path(__file__).parents[1] / "analogdiff" / "bench" / "spaces" / "quick.toml").read_text()
    space.write_text(quick.replace("drift_time_s = 86400.0", "drift_time_s = 0"))
    assert load_space(space)["drift_time_s"] == 0.0


def test_none_words_mean_off_everywhere():
    from analogdiff import checks
    from analogdiff.config import parse_set_options

    for word in checks.NONE_WORDS + ("NONE", " Off "):
        assert parse_set_options([f"wire={word}"]) == {"wire": None}
        assert checks.overrides("o", {"wire": word}) == {"wire": None}


def test_one_budget_table():
    from analogdiff import checks
    from analogdiff.bench import suite, tune

    assert not hasattr(suite, "_BUDGET_DEFAULTS") and not hasattr(tune, "QUICK_BUDGET")
    assert checks.budget("budget", {"eval_chars": 7}, quick=True) == checks.QUICK_BUDGET
    assert checks.budget("budget", {"eval_chars": 7})["eval_chars"] == 7
