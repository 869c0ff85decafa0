"""Corpus: cleaning, fixed split by play (no leak), vocabulary."""
import torch
import pytest

from analogdiff.lm import corpus


def test_clean_play_hand_example():
    md = (
        "# A Play\n\n## ACT I\n\n### SCENE I. A heath.\n\n"
        "_Thunder. Enter two Witches,\nwith a cauldron_\n\n"
        "**First Witch**  \nWhen shall we\\-- two meet?  \nIn rain, & c.\n\n"
        "**SECOND WITCH**  \n_\\[Aside]_ Anon—anon! \"Soft\"  \n\n_Exeunt_\n"
    )
    expected = ("First Witch:\nWhen shall we-- two meet?\nIn rain, &c.\n\n"
                "SECOND WITCH:\nAnon--anon! 'Soft'\n")
    assert corpus.clean_play(md) == expected


def test_split_is_by_play_and_never_leaks():
    train, val, test = (set(corpus.split_plays(s)) for s in corpus.SPLITS)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(corpus.plays())  # every play used exactly once
    assert set(corpus.TEST_PLAYS) <= set(corpus.plays())  # the named plays exist
    train_text = corpus.split_text("train")
    test_text = corpus.split_text("test")
    # no 300-character passage of a test play appears in the training text
    for start in range(0, len(test_text) - 300, len(test_text) // 25):
        assert test_text[start:start + 300] not in train_text


def test_corpus_is_deterministic_and_in_vocabulary():
    a = corpus.split_ids("validation")
    corpus.plays.cache_clear()
    corpus.split_ids.cache_clear()
    b = corpus.split_ids("validation")
    assert torch.equal(a, b)
    ids = torch.cat([corpus.split_ids(s) for s in corpus.SPLITS])
    assert int(ids.max()) < corpus.Vocab().mask_id  # the text never contains the mask


def test_vocab_roundtrip_and_errors():
    v = corpus.Vocab()
    text = "ROMEO:\nO, she doth teach!"
    assert v.decode(v.encode(text)) == text
    assert v.mask_id == len(corpus.CHARS) and v.size == len(corpus.CHARS) + 1
    assert v.decode([v.mask_id]) == corpus.MASK
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.encode("5 pounds")
    with pytest.raises(ValueError, match="split"):
        corpus.split_plays("dev")


def test_windows():
    ids = torch.arange(100)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    w = corpus.random_windows(ids, 5, 10, g1)
    assert torch.equal(w, corpus.random_windows(ids, 5, 10, g2))
    assert torch.equal(w[:, 1:] - w[:, :-1], torch.ones(5, 9, dtype=torch.long))  # consecutive
    assert torch.equal(corpus.tiled_windows(ids, 30), torch.arange(90).view(3, 30))
