"""A byte-pair-encoding vocabulary read from a checkpoint's ``tokenizer.json`` through the ``tokenizers`` library.

It answers to the same calls as the character :class:`~analogdiff.lm.corpus.Vocab` of the shipped models::

    vocab = BPEVocab.from_file("ckpt/tokenizer.json", size=50258, mask_id=50257)
    ids = vocab.encode("Hello world")        # LongTensor (n,), no special tokens added
    text = vocab.decode(ids)                 # the mask id prints as MASK ('█')

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

    def __init__(self, tokenizer, size: int, mask_id: int | None = None, source: str = "tokenizer.json"):
        n = tokenizer.get_vocab_size(with_added_tokens=True)
        if n > size:
            raise ConfigError(f"{source}: the tokenizer has {n} tokens, more than the model's {size} embedding rows")
        if mask_id is not None and not 0 <= mask_id < size:
            raise ConfigError(f"{source}: mask token id {mask_id} is outside the model's ids [0, {size})")
        self.tokenizer, self.size, self.mask_id, self.source = tokenizer, size, mask_id, source

    @classmethod
    def from_file(cls, path, size: int, mask_id: int | None = None) -> BPEVocab:
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
        return cls(tokenizer, size, mask_id, str(path))

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
