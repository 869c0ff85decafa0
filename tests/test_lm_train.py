"""lm/train.py: one tiny step is one AdamW first step (checked against its closed form), the card reports the
saved weights, and a run killed with SIGKILL and rerun ends with the weights of an uninterrupted run."""
import json
import math
import signal
import subprocess
import sys
import time

import pytest
import torch

from analogdiff.lm import load_model
from analogdiff.lm.evaluate import bits_per_char
from analogdiff.lm.model import CharLM
from analogdiff.lm.train import train

TINY = dict(n_layers=1, d_model=16, n_heads=2, context_len=16, batch_size=4, eval_chars=256,
            final_eval_chars=256, progress=False)


def test_one_step_is_the_adamw_first_step(tmp_path):
    """Adam's first step moves each weight by lr·g/(|g| + eps), i.e. by lr wherever it has a gradient and
    not at all where it has none, after AdamW's decay p·(1 - lr·wd) of the matrices; at step 0 of the warmup
    the learning rate is lr/warmup_steps. The mask token is never in an AR batch and its logit is -inf: its
    embedding and output rows get no gradient."""
    lr, wd, warmup = 1e-2, 0.1, 4
    path = train("ar", tmp_path, steps=1, seed=3, lr=lr, weight_decay=wd, warmup_steps=warmup, **TINY)
    after = load_model(str(path))
    before = CharLM("ar", after.shape, seed=3)
    lr0 = lr / warmup
    p0 = dict(before.backbone.named_parameters())
    moved = {}
    for name, p1 in after.backbone.named_parameters():
        decay = wd if p1.dim() >= 2 else 0.0
        step = (p1 - p0[name] * (1 - lr0 * decay)).detach().abs().double()  # lr0 |g| / (|g| + eps)
        assert float(step.max()) <= lr0 * (1 + 1e-5), name
        moved[name] = step
    for name in ("tok_emb.weight", "head.weight", "head.bias"):
        assert float(moved[name][after.mask_id].max()) < 1e-9, name  # decay only
    for name in ("blocks.0.attn.qkv.weight", "blocks.0.mlp.up.weight", "blocks.0.mlp.down.weight"):
        assert float((moved[name] > 0.99 * lr0).double().mean()) > 0.9, name  # a gradient: moved by lr0

    card = after.card
    assert card["training"]["steps"] == 1 and card["training"]["tokens_seen"] == 4 * 16
    val = round(bits_per_char(after, "validation", max_chars=256), 4)  # AR: exact, no t-samples
    assert card["training"]["validation_history"][0]["bits_per_char"] == val  # of the saved weights
    assert card["metrics"]["bits_per_char"]["validation"] == val
    assert card["metrics"]["bits_per_char"]["test"] == round(bits_per_char(after, "test", max_chars=256), 4)


STEPS = 60
RUN = dict(TINY, steps=STEPS, seed=5, warmup_steps=10, eval_every=20, checkpoint_every=0.0, threads=1)


def _command(out) -> list[str]:
    """``analogdiff train`` with the options of ``RUN``."""
    args = ["--model", "mdlm", "--out", out, "--no-progress"]
    args += [a for k, v in RUN.items() if k != "progress" for a in (f"--{k.replace('_', '-')}", v)]
    return [sys.executable, "-m", "analogdiff", "train", *map(str, args)]


def _saved_step(out) -> int:
    try:
        return json.loads((out / "train_state.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _kill_after_first_save(command: list[str], out) -> int:
    """Start ``command`` (a process of its own), SIGKILL it once it has saved a step; the saved step."""
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # guards a hang only
    while _saved_step(out) < 1:
        assert victim.poll() is None and time.monotonic() < deadline, "the victim ended before it was killed"
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    return _saved_step(out)


def test_sigkill_and_rerun_gives_the_uninterrupted_weights(tmp_path):
    """MDLM (its masking noise has an RNG state of its own), a state saved after every step; the victim (a
    process of its own) is killed once it has saved a step, while ``STEPS`` are far from done."""
    full, killed = tmp_path / "full", tmp_path / "killed"
    at = _kill_after_first_save(_command(killed), killed)
    assert 1 <= at < STEPS and not (killed / "shakespeare-mdlm.safetensors").exists()

    rerun = subprocess.Popen(_command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    threads = torch.get_num_threads()
    try:  # meanwhile the uninterrupted run, in this process
        train("mdlm", full, **RUN)
    finally:
        torch.set_num_threads(threads)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    assert f"at step {at}/{STEPS}" in err
    a = load_model(str(full / "shakespeare-mdlm.safetensors"))
    b = load_model(str(killed / "shakespeare-mdlm.safetensors"))
    names = [n for n, _ in a.named_parameters()]
    assert names == [n for n, _ in b.named_parameters()]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.card["metrics"]["bits_per_char"] == b.card["metrics"]["bits_per_char"]
    assert b.card["training"]["steps"] == STEPS and math.isfinite(b.card["metrics"]["bits_per_char"]["test"])


def _tiny_init(tmp_path, kind: str, seed: int = 11):
    """A tiny untrained model saved as a checkpoint, to start --init/--hwa runs from."""
    from analogdiff.lm.checkpoint import save_model
    from analogdiff.lm.model import char_shape

    shape = char_shape(name="tiny", n_layers=1, d_model=16, n_heads=2, n_kv_heads=2, d_ff=64, vocab_size=64,
                       context_len=16)
    return str(save_model(CharLM(kind, shape, seed=seed), tmp_path / f"init-{kind}.safetensors"))


FT = dict(TINY, steps=4, seed=2, warmup_steps=2, eval_every=2, threads=1)


def test_hwa_on_the_ideal_card_is_plain_fine_tuning(tmp_path):
    """The ideal card (no noise, drift, wires or converters) and no clipping inject nothing: the weights after
    --hwa ideal equal those of plain fine-tuning from the same --init, bit for bit."""
    init = _tiny_init(tmp_path, "ar")
    plain = load_model(str(train("ar", tmp_path / "plain", init=init, **FT)))
    hwa = load_model(str(train("ar", tmp_path / "hwa", init=init, hwa="ideal", hwa_clip_sigma=0.0, **FT)))
    start = load_model(init)
    assert not all(torch.equal(p, q) for p, q in zip(start.parameters(), plain.parameters()))  # it trained
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), hwa.parameters()))
    assert hwa.card["name"] == "shakespeare-ar-hwa" and hwa.card["training"]["hwa"]["card"] == "ideal"
    assert hwa.card["training"]["init"] == init


def test_hwa_changes_training_and_is_seeded(tmp_path):
    """On pcm-ibm the injected noise changes the trajectory; the same seed gives the same bytes."""
    init = _tiny_init(tmp_path, "mdlm")
    runs = [load_model(str(train("mdlm", tmp_path / name, init=init, hwa="pcm-ibm", **FT))) for name in "ab"]
    plain = load_model(str(train("mdlm", tmp_path / "plain", init=init, **FT)))
    assert all(torch.equal(p, q) for p, q in zip(runs[0].parameters(), runs[1].parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(plain.parameters(), runs[0].parameters()))


def test_hwa_sigkill_and_rerun_gives_the_uninterrupted_weights(tmp_path):
    """As the plain resume test, with --hwa pcm-ibm (its noise generator is part of the saved state)."""
    init = _tiny_init(tmp_path, "mdlm")
    steps = 30
    opts = dict(RUN, steps=steps, init=init, hwa="pcm-ibm")

    def command(out):
        args = ["--model", "mdlm", "--out", out, "--no-progress"]
        args += [a for k, v in opts.items() if k != "progress" for a in (f"--{k.replace('_', '-')}", v)]
        return [sys.executable, "-m", "analogdiff", "train", *map(str, args)]

    full, killed = tmp_path / "full", tmp_path / "killed"
    at = _kill_after_first_save(command(killed), killed)
    assert 1 <= at < steps
    rerun = subprocess.run(command(killed), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"at step {at}/{steps}" in rerun.stderr
    threads = torch.get_num_threads()
    try:
        train("mdlm", full, **{k: v for k, v in opts.items() if k not in ("steps", "seed")}, steps=steps,
              seed=opts["seed"])
    finally:
        torch.set_num_threads(threads)
    a = load_model(str(full / "shakespeare-mdlm-hwa.safetensors"))
    b = load_model(str(killed / "shakespeare-mdlm-hwa.safetensors"))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.card["metrics"]["bits_per_char"] == b.card["metrics"]["bits_per_char"]
