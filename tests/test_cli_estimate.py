"""`analogdiff estimate` as a user runs it: a subprocess, one JSON object on stdout, exit 2 on bad input."""
import json
import math
import subprocess
import sys

import pytest

KEYS = {"energy_per_token_j", "latency_per_token_s", "energy_per_sequence_j", "latency_per_sequence_s",
        "breakdown_j", "counts", "tiles"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "analogdiff", "estimate", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args, kind", [
    (["--model", "llama3-8b", "--hardware", "h100-sxm", "--decode", "ar"], "gpu"),
    (["--model", "mdlm-owt", "--hardware", "pcm-ibm", "--steps", "64", "--seq-len", "256",
      "--set", "adc.bits=6"], "analog"),
])
def test_json_output_is_one_object(args, kind):
    p = run(*args, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)                          # the whole of stdout is one JSON object
    assert isinstance(out, dict) and KEYS <= set(out) and out["kind"] == kind
    assert math.fsum(out["breakdown_j"].values()) == pytest.approx(out["energy_per_sequence_j"], rel=1e-9)
    assert out["energy_per_token_j"] == pytest.approx(out["energy_per_sequence_j"] / out["generated_tokens"])
    assert out["counts"]["token_forwards"] > 0
    if kind == "analog":
        assert out["tiles"] > 0 and out["counts"]["adc_conversions"] > 0 and out["steps"] == 64
    else:
        # streamed weights (15.01 GB: the input embedding is gathered) over 3.35 TB/s; the card reaches 67% of it
        assert out["tiles"] == 0 and 1.0 <= out["latency_per_token_s"] / (15.01e9 / 3.35e12) <= 1.8


def test_readable_table_without_json(capsys):
    from analogdiff.cli import main

    assert main(["estimate", "--model", "gpt2-small", "--hardware", "rram-wan2022", "--decode", "ar",
                 "--seq-len", "64"]) == 0
    out = capsys.readouterr().out
    assert "energy / token" in out and "tiles" in out and "adc" in out


def test_bad_input_in_a_subprocess_exits_2_without_traceback():
    p = run("--model", "gpt5", "--hardware", "pcm-ibm")
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown model shape 'gpt5'; available: mdlm-owt" in lines[0]


@pytest.mark.parametrize("args, needle", [
    (["--model", "gpt5", "--hardware", "pcm-ibm"], "unknown model shape 'gpt5'; available: mdlm-owt"),
    (["--model", "gpt2-small", "--hardware", "pcm-ibm", "--steps", "0"], "argument --steps: expected an integer in [1, 1048576], got '0'"),
    (["--model", "gpt2-small", "--hardware", "pcm-ibm", "--seq-len", "4096"], "seq_len: 4096"),
    (["--model", "gpt2-small", "--hardware", "pcm-ibm", "--set", "adc.bits=0"], "adc.bits: 0 is outside"),
    (["--model", "gpt2-small", "--hardware", "nope"], "unknown hardware 'nope'; available:"),
    (["--model", "gpt2-small", "--hardware", "pcm-ibm", "--decode", "ar", "--steps", "8"], "--steps: applies to"),
    (["--model", "gpt2-small", "--hardware", "pcm-ibm", "--dtype", "fp8"], "--dtype: applies to GPU cards only"),
    (["--model", "gpt2-small", "--hardware", "pcm-hermes", "--set", "system=none"], "tile.tiles_per_chip"),
])
def test_bad_input_exits_2_with_one_line(args, needle, capsys):
    from analogdiff.cli import main

    assert main(["estimate", *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and needle in lines[0]
