"""Checkpoints: round trip, clear errors for bad files, no unpickling; resumable training; shipped models."""
import json
import pathlib
import pickle

import pytest
import torch

from analogdiff.lm import corpus, load_model, save_model
from analogdiff.lm import train as train_fn
from analogdiff.lm.checkpoint import CHECKPOINT_DIR, SHIPPED
from analogdiff.lm.model import CharLM, char_shape

SHAPE = char_shape("tiny", n_layers=1, d_model=16, n_heads=2, n_kv_heads=1, d_ff=32, vocab_size=64,
                   context_len=16)
SHAPE_KEYS = {"name", "n_layers", "d_model", "n_heads", "n_kv_heads", "d_ff", "mlp", "vocab_size", "context_len",
              "positions", "norm", "norm_bias", "bias", "tied_embeddings", "cond_dim"}


@pytest.fixture
def saved(tmp_path):
    model = CharLM("mdlm", SHAPE, seed=3)
    return model, save_model(model, tmp_path / "m.safetensors", extra_card={"note": "x"})


def test_round_trip(saved):
    model, path = saved
    loaded = load_model(str(path))
    ids = torch.randint(0, 63, (2, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(ids), model.eval()(ids))
    assert loaded.kind == "mdlm" and loaded.card["note"] == "x" and loaded.vocab == model.vocab
    assert set(loaded.card["shape"]) == SHAPE_KEYS


def test_missing_truncated_corrupt(saved, tmp_path):
    _, path = saved
    with pytest.raises(ValueError, match="does not exist"):
        load_model(str(tmp_path / "nothing.safetensors"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_model(str(path))
    path.write_bytes(b"\x07" * 1000)
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_model(str(path))


def test_pickle_is_never_loaded(saved, tmp_path):
    model, path = saved
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    path.write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(ValueError, match="safetensors"):
        load_model(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("edit,match", [
    (lambda c: c["shape"].update(d_model=32), "shape"),
    (lambda c: c.update(vocab=c["vocab"][:-1]), "vocab"),
    (lambda c: c.update(kind="gpt"), "kind"),
    (lambda c: c["shape"].update(n_layers=2), "missing"),
    (lambda c: c["shape"].update(bogus=1), "shape: unknown key 'bogus'"),
    (lambda c: c["shape"].pop("norm"), "shape: missing key 'norm'"),
    (lambda c: c["shape"].update(norm="rmsnorm"), "shape.norm: the character LM builds norm = 'layernorm'"),
])
def test_card_and_weights_disagree(saved, edit, match):
    _, path = saved
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    edit(card)
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match=match) as err:
        load_model(str(path))
    assert "\n" not in str(err.value)


def test_bad_json_and_unknown_name(saved):
    _, path = saved
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ValueError, match="malformed JSON"):
        load_model(str(path))
    with pytest.raises(ValueError, match="shakespeare-mdlm, shakespeare-ar"):
        load_model("shakespeare-gpt")


def test_training_resumes_bit_for_bit(tmp_path, monkeypatch):
    opts = dict(n_layers=1, d_model=16, n_heads=2, context_len=16, batch_size=4, warmup_steps=2, eval_every=3,
                eval_chars=256, final_eval_chars=256, checkpoint_every=0.0, progress=False)
    full = train_fn("ar", tmp_path / "full", steps=6, seed=1, **opts)
    real = corpus.random_windows
    calls = {"n": 0}

    def dies_at_step_4(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(corpus, "random_windows", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_fn("ar", tmp_path / "resumed", steps=6, seed=1, **opts)
    monkeypatch.setattr(corpus, "random_windows", real)
    assert json.loads((tmp_path / "resumed" / "train_state.json").read_text())["step"] == 3
    resumed = train_fn("ar", tmp_path / "resumed", steps=6, seed=1, **opts)
    a, b = load_model(str(full)), load_model(str(resumed))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    card = b.card
    assert card["training"]["steps"] == 6 and card["training"]["tokens_seen"] == 6 * 4 * 16
    assert card["split"]["test"] == list(corpus.TEST_PLAYS)
    with pytest.raises(ValueError, match="seed"):
        train_fn("ar", tmp_path / "resumed", steps=6, seed=2, **opts)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoints(name):
    path = CHECKPOINT_DIR / f"{name}.safetensors"
    if not path.exists():
        pytest.skip(f"{path} not shipped yet")
    assert path.stat().st_size <= 15e6
    model = load_model(name)
    assert model.kind == name.split("-")[1] and set(model.card["shape"]) == SHAPE_KEYS
    assert model.card["shape"]["vocab_size"] == model.vocab.size
    assert set(model.card["split"]["test"]).isdisjoint(model.card["split"]["train"])
