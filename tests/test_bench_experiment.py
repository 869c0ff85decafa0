"""The one experiment: what it measures equals the digital reference where the card is ideal, what it prices is
exactly what it ran (counted independently here), its statistics follow one convention, the same seeds give the
same bytes, and bad specifications fail before any chip is programmed. Plus the JSON of `eval` and `generate`."""
import io
import json
import re
import statistics
from contextlib import redirect_stdout

import pytest
from bench_fixtures import tiny_models

from analogdiff.bench import experiment as ex
from analogdiff.cli import main
from analogdiff.config import ConfigError


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("exp"))


def _count_calls(lm):
    """Wrap ``lm.forward`` to count what really runs: (sequences × positions fed, logits rows produced)."""
    counts = {"positions": 0, "heads": 0, "calls": 0}
    inner = lm.forward

    def forward(ids, *a, **k):
        out = inner(ids, *a, **k)
        counts["positions"] += ids.numel()
        counts["heads"] += out.shape[0] * out.shape[1]
        counts["calls"] += 1
        return out

    return counts, forward


def _counted_run(spec, seed, monkeypatch):
    """``run_seed(spec, seed)`` with the programmed model's calls counted independently of the trace."""
    hw = ex.hardware(spec.card, spec.overrides)
    runner = ex.program(spec.model, hw, seed, spec.drift_time_s)
    counts, fwd = _count_calls(runner)
    monkeypatch.setattr(runner, "forward", fwd)
    monkeypatch.setattr(ex, "program", lambda *a, **k: runner)
    return ex.run_seed(spec, seed), counts


def test_ideal_card_scores_like_the_digital_model(models):
    from analogdiff.lm.evaluate import bits_per_char

    for kind in ("mdlm", "ar"):
        spec = ex.Experiment(model=models[kind], card="ideal", score=ex.Score(eval_chars=600, batch_size=4))
        out = ex.run(spec)
        digital = bits_per_char(ex.model(models[kind]), "test", 600, 1, 0, 4)
        assert out["seeds_run"] == [None]  # a noiseless card runs once, whatever the seeds
        assert out["metrics"]["bits_per_char"]["mean"] == pytest.approx(digital, rel=1e-5)


@pytest.mark.parametrize("kind", ["mdlm", "ar"])
def test_score_prices_exactly_what_ran(models, kind, monkeypatch):
    lm = ex.model(models[kind])
    C = lm.shape.context_len
    spec = ex.Experiment(model=models[kind], card="pcm-ibm", overrides={"wire": None}, seeds=(0,),
                         score=ex.Score(eval_chars=4 * C + 1, batch_size=3))
    res, counts = _counted_run(spec, 0, monkeypatch)
    cost = res["cost"]["score"]
    priced = {k: v * cost["batch"] for k, v in cost["counts"].items()}  # per sequence of the batch → whole run
    # hand count: AR scores its 4 windows of C positions twice (bits/char, next-character accuracy); the MDLM
    # scores its 4 windows for the NELBO (1 time sample) and once per mask rate (3): each a forward of C positions
    windows = 4 * 2 if kind == "ar" else 4 * (1 + 3)
    assert counts["positions"] == windows * C
    assert priced["token_forwards"] == counts["positions"]
    assert priced["head_evals"] == counts["heads"]
    # and the activation statistics are those of this scoring run: one MVM per position per layer
    mvms = res["stats"]["score"]["layers"]["backbone.blocks.0.attn.qkv"]["mvms"]
    assert mvms == counts["positions"]


def test_generation_prices_exactly_what_ran(models, monkeypatch):
    spec = ex.Experiment(model=models["mdlm"], card="pcm-ibm", overrides={"wire": None}, seeds=(3,),
                         generate=ex.Generate(steps=16, seq_len=32, n_samples=2, judge=models["ar"]))
    res, counts = _counted_run(spec, 3, monkeypatch)
    cost = res["cost"]["generate"]
    assert res["metrics"]["nfe"] == counts["calls"] <= 16  # the sampler skips unchanged inputs
    assert cost["batch"] == 2
    assert cost["counts"]["token_forwards"] * 2 == counts["positions"]  # priced per sequence, 2 sequences
    assert cost["counts"]["head_evals"] * 2 == counts["heads"]
    assert cost["generated_tokens"] == 32
    assert len(res["texts"]) == 2 and all(len(t) == 32 for t in res["texts"])


def test_seeds_statistics_and_reproducibility(models):
    spec = ex.Experiment(model=models["ar"], card="pcm-ibm", overrides={"wire": None}, seeds=(0, 1, 2),
                         drift_time_s=3600.0, score=ex.Score(eval_chars=200, batch_size=4))
    a, b = ex.run(spec), ex.run(spec)
    assert json.dumps(a, sort_keys=True, default=float) == json.dumps(b, sort_keys=True, default=float)
    values = [p["metrics"]["bits_per_char"] for p in a["per_seed"]]
    s = a["metrics"]["bits_per_char"]
    assert len(set(values)) == 3  # three programmed chips differ
    assert s["mean"] == pytest.approx(statistics.fmean(values))
    assert s["std"] == pytest.approx(statistics.stdev(values))  # sample std (ddof = 1), the one convention
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]


@pytest.mark.parametrize("kwargs,field", [
    (dict(drift_time_s=-1.0), "drift_time_s"),
    (dict(drift_time_s=float("inf")), "drift_time_s"),
    (dict(seeds=(0, 0)), "seeds"),
    (dict(seeds=()), "seeds"),
    (dict(seeds=(2 ** 70,)), "seeds[0]"),
])
def test_bad_experiment_fields(models, kwargs, field):
    with pytest.raises(ConfigError, match="^" + re.escape(field) + ": "):
        ex.Experiment(model=models["ar"], card="ideal", score=ex.Score(), **kwargs)


@pytest.mark.parametrize("task,field", [
    (dict(score=ex.Score(eval_chars=10)), "eval_chars"),
    (dict(generate=ex.Generate(steps=999, seq_len=32, judge=None)), "steps"),
    (dict(generate=ex.Generate(seq_len=10_000, judge=None)), "seq_len"),
])
def test_cheap_checks_before_programming(models, task, field, monkeypatch):
    monkeypatch.setattr(ex, "program", lambda *a, **k: pytest.fail("programmed before checking"))
    spec = ex.Experiment(model=models["mdlm"], card="pcm-ibm", **task)
    with pytest.raises(ValueError, match="^" + re.escape(field) + ": "):
        ex.check(spec)


def _cli_json(argv):
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


def test_cli_eval_json(models):
    argv = ["eval", "--model", models["mdlm"], "--hardware", "pcm-ibm", "--set", "wire=none", "--seeds", "2",
            "--drift-time", "60", "--max-chars", "200", "--samples", "1", "--steps", "8", "--json"]
    text = _cli_json(argv)
    out = json.loads(text)
    assert out["seeds_run"] == [0, 1] and out["hardware"] == "pcm-ibm"
    for key in ("bits_per_char", "token_accuracy", "gen_ppl", "entropy", "nfe"):
        s = out["metrics"][key]
        assert set(s) == {"mean", "std", "n", "ci95"} and s["n"] == 2
    assert set(out["cost"]) == {"score", "generate"}
    assert out["cost"]["generate"]["energy_per_token_j"]["mean"] > out["cost"]["score"]["energy_per_token_j"]["mean"]
    assert _cli_json(argv) == text  # same seeds, same bytes


def test_cli_generate_json(models):
    argv = ["generate", "--model", models["ar"], "--hardware", "pcm-ibm", "--set", "wire=none", "--seq-len", "24",
            "--seed", "5", "--prompt", "ROMEO:", "--json"]
    text = _cli_json(argv)
    out = json.loads(text)
    assert out["text"].startswith("ROMEO:") and len(out["text"]) == 24
    assert out["cost"]["generated_tokens"] == 24 - len("ROMEO:")
    assert out["cost"]["energy_per_token_j"] > 0 and out["metrics"]["gen_ppl"] > 1
    assert _cli_json(argv) == text
    plain = io.StringIO()
    with redirect_stdout(plain):
        assert main(argv[:-1]) == 0
    assert plain.getvalue().rstrip("\n") == out["text"]


def test_cli_bad_values_one_line(models, capsys):
    for argv, field in ((["eval", "--model", models["ar"], "--hardware", "ideal", "--drift-time", "nan"], "--drift-time"),
                        (["eval", "--model", models["ar"], "--hardware", "ideal", "--seeds", "0"], "--seeds"),
                        (["generate", "--model", models["ar"], "--hardware", "ideal", "--seed", str(2 ** 70)], "--seed")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and field in err and "Traceback" not in err


def test_cli_eval_warns_on_a_wire_dominated_card(models, capsys):
    """ecram's tile loses 0.37 of its MVM to IR drop after per-column gains (crossbar.wire_check): eval says so."""
    from pathlib import Path

    card = str(Path(__file__).resolve().parents[1] / "circuits" / "ecram.toml")
    argv = ["eval", "--model", models["ar"], "--hardware", card, "--max-chars", "130", "--samples", "0", "--json"]
    assert main(argv) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ecram is wire-dominated") and "0.37" in lines[0]
    assert main(argv[:5] + ["--set", "wire=none"] + argv[5:]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kind", ["mdlm", "ar"])
def test_completion_prices_exactly_what_ran(models, kind, monkeypatch):
    """Completion (sampling + the continuation's log-loss): what is priced is what the model ran."""
    spec = ex.Experiment(model=models[kind], card="pcm-ibm", overrides={"wire": None}, seeds=(1,),
                         complete=ex.Complete(n_new=8, n_prompts=5, prompt_len=8, steps=8, batch_size=7,
                                              inject_pct=25, sampler="ancestral", judge=models["ar"]))
    res, counts = _counted_run(spec, 1, monkeypatch)
    cost = res["cost"]["complete"]
    priced = {k: v * cost["batch"] for k, v in cost["counts"].items()}
    assert res["metrics"]["nfe"] == counts["calls"]
    assert priced["token_forwards"] == pytest.approx(counts["positions"])
    assert priced["head_evals"] == pytest.approx(counts["heads"])
    assert cost["generated_tokens"] * cost["batch"] == pytest.approx(2 * 5 * 8)  # written + scored characters
    if kind == "mdlm":  # left-to-right log-loss: one row of prompt + continuation per scored character
        assert counts["positions"] >= 5 * 8 * 16
    assert res["per_prompt"]["repaired"] == [0.0] * 5  # neither AR nor the ancestral sampler revises
    assert len(res["per_prompt"]["loss_bits_per_char"]) == 5


def test_completion_bad_fields_one_line(models):
    with pytest.raises(ConfigError, match="^sampler: must be one of"):
        ex.Complete(sampler="nope")
    with pytest.raises(ConfigError, match="^inject_pct:"):
        ex.Complete(inject_pct=101)
    with pytest.raises(ConfigError, match="^n_new: prompt_len \\+ n_new"):
        ex.check(ex.Experiment(model=models["mdlm"], card="ideal", complete=ex.Complete(n_new=60, prompt_len=8,
                                                                                         judge=models["ar"])))


def test_cli_complete_json(models):
    argv = ["complete", "--model", models["mdlm"], "--hardware", "pcm-ibm", "--set", "wire=none", "--seeds", "2",
            "--n-new", "8", "--prompts", "4", "--prompt-len", "8", "--sampler", "remdm", "--inject-pct", "25",
            "--judge", models["ar"], "--json"]
    text = _cli_json(argv)
    out = json.loads(text)
    assert out["seeds_run"] == [0, 1]
    assert set(out["bootstrap"]) == {"char_accuracy", "judge_bits_per_char", "repaired", "revised_clean",
                                    "loss_bits_per_char"}
    for b in out["bootstrap"].values():
        assert b["n_prompts"] == 4 and b["n_seeds"] == [2] and b["ci95"][0] <= b["mean"] <= b["ci95"][1]
    assert _cli_json(argv) == text  # same seeds, same bytes
