"""``nn.Conv1d`` / ``nn.Conv2d`` on crossbar tiles as matrix products (im2col, as aihwkit and CrossSim).

The kernel (out, in/groups, *k) becomes one matrix (out/groups, in/groups·∏k) per group, each programmed
on tiles by an ``AnalogLinear`` (composition: ``AnalogConv`` holds them). The input is padded exactly as
torch pads it (``padding`` ints, ``"same"``, ``"valid"``; ``padding_mode`` zeros, reflect, replicate,
circular), unfolded into patches (one per output position), and every patch of every group is one MVM:
per forward, MVMs = batch × output positions × groups. A Conv1d is a Conv2d of height 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Hardware

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@dataclass(frozen=True)
class ConvGeometry:
    """How a conv layer turns its input into patches; all 2-D (a Conv1d has kernel height 1)."""

    name: str
    kind: str                     # "Conv1d" | "Conv2d"
    n_spatial: int                # 1 | 2
    in_channels: int
    out_channels: int
    groups: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, ...]          # F.pad amounts, last dimension first: (left, right[, top, bottom])
    pad_mode: str                 # F.pad mode

    @classmethod
    def of(cls, conv: nn.Conv1d | nn.Conv2d, name: str = "") -> "ConvGeometry":
        if conv.padding_mode not in _PAD_MODES:
            raise ValueError(f"analog layer '{name}': padding_mode {conv.padding_mode!r} is not one of "
                             f"{', '.join(_PAD_MODES)}")
        pad: list[int] = []
        for i in reversed(range(len(conv.kernel_size))):
            if conv.padding == "valid":
                lo = hi = 0
            elif conv.padding == "same":  # torch puts the odd one on the right
                total = conv.dilation[i] * (conv.kernel_size[i] - 1)
                lo, hi = total // 2, total - total // 2
            else:
                lo = hi = conv.padding[i]
            pad += [lo, hi]
        two = (lambda v: (1, *v)) if len(conv.kernel_size) == 1 else tuple
        return cls(name, type(conv).__name__, len(conv.kernel_size), conv.in_channels, conv.out_channels,
                   conv.groups, two(conv.kernel_size), two(conv.stride), two(conv.dilation), tuple(pad),
                   _PAD_MODES[conv.padding_mode])

    @property
    def in_features(self) -> int:
        """Rows of one group's matrix: in_channels/groups · ∏kernel."""
        return self.in_channels // self.groups * math.prod(self.kernel_size)

    @property
    def out_features(self) -> int:
        """Columns of one group's matrix: out_channels/groups."""
        return self.out_channels // self.groups

    def batched(self, x: torch.Tensor) -> torch.Tensor:
        """Check the input; an unbatched (C, *spatial) input gets a batch of one."""
        n = self.n_spatial
        if x.dim() not in (n + 1, n + 2) or x.shape[-n - 1] != self.in_channels:
            raise ValueError(f"analog layer '{self.name}': {self.kind} expects (B, {self.in_channels}, ...) "
                             f"or ({self.in_channels}, ...) inputs with {n} spatial dimension(s), got shape "
                             f"{tuple(x.shape)}")
        return x if x.dim() == n + 2 else x.unsqueeze(0)

    def patches(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(B, C, *spatial) → patches (B, P, C·∏k) (channel-major, as the kernel matrix), output size."""
        if any(self.pad):
            x = F.pad(x, self.pad, mode=self.pad_mode)
        if self.n_spatial == 1:
            x = x.unsqueeze(2)  # (B, C, 1, L)
        size = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in
                     zip(x.shape[2:], self.kernel_size, self.stride, self.dilation))
        if min(size) < 1:
            raise ValueError(f"analog layer '{self.name}': padded input of spatial size "
                             f"{tuple(x.shape[2:])} is smaller than the dilated kernel")
        cols = F.unfold(x, self.kernel_size, dilation=self.dilation, stride=self.stride)  # (B, C·∏k, P)
        return cols.transpose(1, 2), size[-self.n_spatial:]


class AnalogConv(nn.Module):
    """``nn.Conv1d``/``nn.Conv2d`` on programmed tiles: one ``AnalogLinear`` per group in ``matrices``.

    Built by ``analogize``. ``index``: seed index of the first group's matrix (group g uses index + g).
    ``x_calib`` (N, groups · in_features): recorded patches (``ConvGeometry.patches``), or None.
    """

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, hw: Hardware, *, name: str = "", seed: int = 0,
                 index: int = 0, x_calib: torch.Tensor | None = None, read_noise_rank: int | None = None,
                 device: torch.device | str | None = None, keep_state_cache: bool = True):
        from .layers import AnalogLinear  # layers imports this module in analogize

        super().__init__()
        self.name = name
        self.geometry = g = ConvGeometry.of(conv, name)
        w = conv.weight.detach().reshape(conv.out_channels, -1)  # (out, in/groups·∏k), unfold's order
        b = None if conv.bias is None else conv.bias.detach()
        o, k = g.out_features, g.in_features
        self.matrices = nn.ModuleList(
            AnalogLinear(w[i * o:(i + 1) * o], None if b is None else b[i * o:(i + 1) * o], hw,
                         name=f"{name}.matrices.{i}", seed=seed, index=index + i,
                         x_calib=None if x_calib is None else x_calib[:, i * k:(i + 1) * k],
                         read_noise_rank=read_noise_rank, device=device, keep_state_cache=keep_state_cache)
            for i in range(g.groups))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        xb = g.batched(x)
        cols, size = g.patches(xb)  # (B, P, C·∏k)
        k = g.in_features
        y = torch.cat([m(cols[..., i * k:(i + 1) * k]) for i, m in enumerate(self.matrices)], -1)  # (B, P, O)
        y = y.transpose(1, 2).reshape(xb.shape[0], g.out_channels, *size)
        return y if x.dim() == xb.dim() else y[0]

    def stats(self) -> dict:
        """This layer's entry of ``collect_stats``: its groups' matrices (each in×out) merged. ``mvms``
        counts patch × group products; the means are over the groups (each sees the same patches count)."""
        per = [m.stats() for m in self.matrices]
        seen = [s for s in per if s["mvms"]]

        def mean(key):
            return sum(s[key] for s in per) / len(per)

        def span(key):
            return [min(s[key][0] for s in seen), max(s[key][1] for s in seen)] if seen else [0.0, 0.0]

        return {"in_features": self.geometry.in_features, "out_features": self.geometry.out_features,
                "matrices": self.geometry.groups, "mvms": sum(s["mvms"] for s in per),
                "mean_abs_x_norm": mean("mean_abs_x_norm"), "mean_x2_norm": mean("mean_x2_norm"),
                "mean_g_us": mean("mean_g_us"), "adc_clip_fraction": mean("adc_clip_fraction"),
                "x_range": span("x_range"), "y_range": span("y_range")}

    def extra_repr(self) -> str:
        g, n = self.geometry, self.geometry.n_spatial
        return (f"{self.name}: {g.kind} {g.in_channels}→{g.out_channels}, kernel {g.kernel_size[-n:]}, "
                f"stride {g.stride[-n:]}, dilation {g.dilation[-n:]}, groups {g.groups}")
