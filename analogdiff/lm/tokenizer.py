"""A byte-pair-encoding vocabulary read from a checkpoint's ``tokenizer.json`` through the ``tokenizers`` library.

It answers to the same calls as the character :class:`~analogdiff.lm.corpus.Vocab` of the shipped models::

    vocab = BPEVocab.from_file("ckpt/tokenizer.json", size=50258, mask_id=50257)
    ids = vocab.encode("Hello world")        # LongTensor (n,), no special tokens added
    text = vocab.decode(ids)                 # the mask id prints as MASK ('█')
    ids, n_bytes = encode_with_bytes(vocab, "Hello world")   # and the UTF-8 bytes each token covers

``size`` is the model's logit width (its embedding rows), which may exceed the tokenizer's own vocabulary:
MDLM-OWT appends its mask token after GPT-2's 50,257 tokens, and LLaDA pads its embedding. ``mask_id`` is
the absorbing-state token of a masked diffusion model (None for autoregressive ones).
"""
from __future__ import annotations

import pathlib

import torch

from analogdiff.checks import ConfigError

from .corpus import MASK


class BPEVocab:
    """Token ids ``0..size-1`` of a model; text ↔ ids through a ``tokenizers.Tokenizer``."""

    def __init__(self, tokenizer, size: int, mask_id: int | None = None, source: str = "tokenizer.json",
                 bos_id: int | None = None):
        n = tokenizer.get_vocab_size(with_added_tokens=True)
        if n > size:
            raise ConfigError(f"{source}: the tokenizer has {n} tokens, more than the model's {size} embedding rows")
        for what, i in (("mask", mask_id), ("BOS", bos_id)):
            if i is not None and not 0 <= i < size:
                raise ConfigError(f"{source}: {what} token id {i} is outside the model's ids [0, {size})")
        self.tokenizer, self.size, self.mask_id, self.source = tokenizer, size, mask_id, source
        self.bos_id = bos_id  # put in front of a scored text when the first position is context (AR, Dream)

    @classmethod
    def from_file(cls, path, size: int, mask_id: int | None = None, bos_id: int | None = None) -> BPEVocab:
        """Read ``path`` (a ``tokenizer.json``); a missing or unreadable file is a one-line ``ConfigError``."""
        from tokenizers import Tokenizer

        path = pathlib.Path(path)
        if not path.is_file():
            raise ConfigError(f"checkpoint: tokenizer {path} does not exist (the checkpoint's tokenizer.json is "
                             f"needed for text in and out)")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception for malformed JSON
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"checkpoint: {path} is not a readable tokenizer.json ({first})") from None
        return cls(tokenizer, size, mask_id, str(path), bos_id)

    def encode(self, text: str) -> torch.Tensor:
        """``text`` → int64 ids (n,); the tokenizer's special tokens (BOS/EOS) are not added."""
        if not isinstance(text, str):
            raise ConfigError(f"text: must be a string, got {type(text).__name__}")
        return torch.tensor(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=torch.long)

    def decode(self, ids) -> str:
        """int ids (any iterable / 1-D tensor) → str. The mask id prints as ``MASK``; ids the tokenizer does not
        know (embedding padding) are errors."""
        ids = [int(i) for i in ids]
        known = self.tokenizer.get_vocab_size(with_added_tokens=True)
        bad = [i for i in ids if not 0 <= i < self.size or (i >= known and i != self.mask_id)]
        if bad:
            raise ConfigError(f"ids: {bad[0]} is not a token of {self.source} ({known} tokens)")
        out, run = [], []
        for i in ids:
            if i == self.mask_id:
                out.append(self.tokenizer.decode(run, skip_special_tokens=False) + MASK)
                run = []
            else:
                run.append(i)
        out.append(self.tokenizer.decode(run, skip_special_tokens=False))
        return "".join(out)

    def __repr__(self) -> str:
        return f"BPEVocab({self.source!r}, size={self.size}, mask_id={self.mask_id})"


def encode_with_bytes(vocab, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``text`` → (ids (n,), bytes (n,)) for any vocabulary (characters or BPE): ``bytes[i]`` are the UTF-8
    bytes of ``text`` from the end of token i-1 to the end of token i (a character split over two byte-level
    tokens counts for the token that completes it; text after the last token, such as whitespace a
    tokenizer drops, counts for the last token), so that they sum to the bytes of the text and a sum over
    scored tokens divides their bits into bits per byte."""
    import numpy as np

    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    char_start = np.append(np.nonzero((data & 0xC0) != 0x80)[0], data.size)  # (chars+1,) byte offset of each
    tokenizer = getattr(vocab, "tokenizer", None)
    if tokenizer is None:  # one id per character
        ids = vocab.encode(text)
        ends = np.arange(1, len(text) + 1)
    else:
        enc = tokenizer.encode(text, add_special_tokens=False)
        ids = torch.tensor(enc.ids, dtype=torch.long)
        ends = np.maximum.accumulate(np.array([e for _, e in enc.offsets], dtype=np.int64)) if enc.ids else \
            np.zeros(0, dtype=np.int64)  # character offsets, made non-decreasing
    byte_end = char_start[ends]  # (n,)
    n_bytes = np.diff(byte_end, prepend=0)
    if n_bytes.size:
        n_bytes[-1] += data.size - byte_end[-1]
    return ids, torch.from_numpy(n_bytes.astype(np.int64))
