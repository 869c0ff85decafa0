"""Scoring any text file (`analogdiff eval --model DIR --text FILE`): tiny random checkpoints in the published
layouts (tests/test_lm_hub.py writes them), scored per token against plain reference forwards — exact NLL for
GPT-2, the NELBO estimator recomputed from the masks the scorer drew for MDLM and Dream (whose first position is
context) — bits/byte from the text's own UTF-8 bytes, and one-line refusals of files that cannot be scored."""
import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch
import torch.nn.functional as F
from test_lm_hub import REFERENCES, TEXT, make
from torch import nn

from analogdiff.bench import experiment as ex
from analogdiff.cli import main
from analogdiff.lm import Vocab, load_model
from analogdiff.lm.diffusion import stratified_times
from analogdiff.lm.evaluate import index_windows, scored_tokens, token_nats
from analogdiff.lm.tokenizer import BPEVocab, encode_with_bytes

SCORED = "Whether 'tis nobler — in the mind, café — to suffer\nthe slings and arrows, or to take arms\n" * 2


class Recorder(nn.Module):
    """The model, recording every input it is fed."""

    def __init__(self, model):
        super().__init__()
        self.model, self.inputs = model, []
        self.kind, self.shape, self.vocab = model.kind, model.shape, model.vocab
        self.logits_shifted = model.logits_shifted

    @property
    def mask_id(self):
        return self.model.mask_id

    def forward(self, ids, **kw):
        self.inputs.append(ids.clone())
        return self.model(ids, **kw)


def checkpoint(tmp_path, arch, **config):
    directory, c, t = make(tmp_path, arch)
    if config:
        c = {**c, **config}
        (directory / "config.json").write_text(json.dumps(c))
    return directory, c, t


def test_bytes_per_token_sum_to_the_text_and_follow_the_characters():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())  # byte-level BPE with every byte in its alphabet, as GPT-2's
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    vocab = BPEVocab(tok, tok.get_vocab_size())
    ids, n_bytes = encode_with_bytes(vocab, SCORED)
    assert int(n_bytes.sum()) == len(SCORED.encode("utf-8")) and (n_bytes >= 0).all()
    assert vocab.decode(ids) == SCORED
    # each token ends where the text decoded so far ends: its bytes are those of the characters it completes
    for i in range(1, ids.numel()):
        assert int(n_bytes[:i].sum()) <= len(vocab.decode(ids[:i]).encode("utf-8"))
    char_ids, char_bytes = encode_with_bytes(Vocab("a é—b"), "a é—b")
    assert char_ids.numel() == 5 and char_bytes.tolist() == [1, 1, 2, 3, 1]


def test_gpt2_exact_nll_per_token_with_bos(tmp_path):
    directory, c, t = checkpoint(tmp_path, "gpt2", bos_token_id=0)
    model = load_model(directory)
    ids, _ = encode_with_bytes(model.vocab, SCORED)
    nats = token_nats(model, ids, batch_size=3, tail=True)
    assert not torch.isnan(nats).any()  # BOS stands in front: every token of the text is scored
    seq = torch.cat([torch.tensor([0]), ids])
    L = c["n_positions"]
    expected = torch.empty(ids.numel(), dtype=torch.float64)
    for start in range(0, seq.numel() - 1, L):  # windows of L + 1 sharing one token, the last one shorter
        w = seq[start:start + L + 1]
        logp = F.log_softmax(REFERENCES["gpt2"](t, c, w[None, :-1])[0].double(), dim=-1)  # (w-1, V)
        expected[start:start + w.numel() - 1] = -logp[torch.arange(w.numel() - 1), w[1:]]
    torch.testing.assert_close(nats, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["mdlm", "dream"])
def test_nelbo_per_token_recomputed_from_the_drawn_masks(tmp_path, arch):
    """NELBO_i = (1/t) · -log p(x0_i | xt) on masked tokens, mean over t-samples; Dream's first position of
    every window is given (never masked, not scored) and windows share it with the previous one."""
    directory, c, t = checkpoint(tmp_path, arch)
    model = Recorder(load_model(directory))
    ids, _ = encode_with_bytes(model.vocab, SCORED)
    S, seed = 2, 5
    nats = token_nats(model, ids, t_samples=S, seed=seed, batch_size=3, tail=True)
    given = int(arch == "dream")
    L = model.shape.context_len
    groups = index_windows(ids.numel(), L, given, tail=True)
    assert groups[-1].shape[1] < L  # the text ends in a shorter window, scored too
    rows = [g.repeat(S, 1) for g in groups]
    times = stratified_times(sum(r.shape[0] for r in rows), torch.Generator().manual_seed(seed)).double()
    fed = [x for x in model.inputs]
    expected = torch.zeros(ids.numel(), dtype=torch.float64)
    at = 0
    for idx_all in rows:
        xt = torch.cat([x for x in fed if x.shape[1] == idx_all.shape[1]])[: idx_all.shape[0]]
        fed = [x for x in fed if x.shape[1] != idx_all.shape[1]]
        x0 = ids[idx_all]
        assert torch.equal(xt[xt != model.mask_id], x0[xt != model.mask_id])
        if given:
            assert (xt[:, 0] != model.mask_id).all()
        ref = REFERENCES[arch](t, c, xt).double()
        ref[..., model.mask_id] = float("-inf")
        nll = -F.log_softmax(ref, dim=-1).gather(-1, x0[..., None])[..., 0]  # (rows, w)
        contrib = torch.where(xt == model.mask_id, nll, torch.zeros_like(nll)) / times[at:at + len(x0), None]
        expected.index_add_(0, idx_all[:, given:].reshape(-1), contrib[:, given:].reshape(-1) / S)
        at += len(x0)
    scored = ~torch.isnan(nats)
    assert scored.sum() == ids.numel() - given == scored_tokens(model, ids)
    assert not scored[0] if given else scored.all()
    torch.testing.assert_close(nats[scored], expected[scored], rtol=1e-5, atol=1e-6)


def test_dream_with_bos_scores_every_token(tmp_path):
    directory, _, _ = checkpoint(tmp_path, "dream", bos_token_id=3)
    model = Recorder(load_model(directory))
    ids, _ = encode_with_bytes(model.vocab, SCORED)
    nats = token_nats(model, ids, seed=1, tail=True)
    assert not torch.isnan(nats).any() and int(model.inputs[0][0, 0]) == 3


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("arch", ["gpt2", "mdlm"])
def test_eval_text_on_the_ideal_card_equals_the_digital_scores(tmp_path, arch):
    directory, _, _ = checkpoint(tmp_path, arch, **({"bos_token_id": 0} if arch == "gpt2" else {}))
    text = tmp_path / "scored.txt"
    text.write_text(SCORED, encoding="utf-8")
    code, out, err = _cli("eval", "--model", str(directory), "--hardware", "ideal", "--text", str(text),
                          "--eval-seed", "4", "--t-samples", "2", "--json")
    assert code == 0, err
    res = json.loads(out)
    metrics = {k: v["mean"] for k, v in res["metrics"].items()}
    model = load_model(directory)
    ids, n_bytes = encode_with_bytes(model.vocab, SCORED)
    nats = token_nats(model, ids, t_samples=2 if arch == "mdlm" else 1, seed=4,
                      batch_size=ex.Score().batch_size, tail=True)
    bits = float(nats.nansum()) / math.log(2)
    n = int((~torch.isnan(nats)).sum())
    assert metrics["bits_per_token"] == pytest.approx(bits / n, rel=1e-4)
    assert metrics["bits_per_byte"] == pytest.approx(bits / len(SCORED.encode("utf-8")), rel=1e-4)
    assert "gen_ppl" not in metrics and "bits_per_char" not in metrics
    cost = res["per_seed"][0]["cost"]["score"]
    assert cost["model"] == model.shape.name and cost["energy_per_token_j"] > 0  # priced from the config's shape


@pytest.mark.parametrize("content, expected", [
    (None, "cannot read"), (b"", "empty"), (b"  \n\t", "empty"), (b"text\x00more", "binary"),
    (b"\xff\xfe\x00", "not UTF-8"), ("too large", "larger than")])
def test_files_that_cannot_be_scored_are_one_line_naming_the_file(tmp_path, content, expected):
    text = tmp_path / "input.txt"
    if content == "too large":
        with open(text, "wb") as f:
            f.truncate(64 * 2 ** 20 + 1)
    elif content is not None:
        text.write_bytes(content)
    code, out, err = _cli("eval", "--model", "shakespeare-ar", "--hardware", "ideal", "--text", str(text))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert str(text) in err and expected in err


def test_text_outside_a_character_vocabulary_or_holding_the_mask(tmp_path):
    text = tmp_path / "other.txt"
    text.write_text("naïve ☃", encoding="utf-8")
    code, _, err = _cli("eval", "--model", "shakespeare-mdlm", "--hardware", "ideal", "--text", str(text))
    assert code == 2 and err.count("\n") == 1 and str(text) in err and "not in the vocabulary" in err
    text.write_text("To be \u2588 or not", encoding="utf-8")
    code, _, err = _cli("eval", "--model", "shakespeare-mdlm", "--hardware", "ideal", "--text", str(text))
    assert code == 2 and err.count("\n") == 1 and str(text) in err and "mask token" in err
