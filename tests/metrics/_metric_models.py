"""Models with known answers for the metric tests, and the batching they share (imported by the test modules).

Each model reads pixels the test wrote on purpose (an offset written into the image, a label in a
channel), so the expected metric values follow from the construction, not from a run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CornerParity(nn.Module):
    """Predicts 2 * (channel 0 at the top-left pixel) + (channel 1 there): 4 classes.

    On an image whose channel 0 is ``row % 2`` and channel 1 ``col % 2``, a crop at offset
    ``(dy, dx)`` is classified ``2 * (dy % 2) + dx % 2``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = 2 * (x[:, 0, 0, 0] > 0.5).long() + (x[:, 1, 0, 0] > 0.5).long()
        return F.one_hot(cls, 4).float()


def batches(
    images: torch.Tensor, labels: torch.Tensor, size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, labels)`` cut into batches of ``size`` (the last one shorter)."""
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, len(images), size)]


def parity_images(n: int, size: int) -> torch.Tensor:
    """``(n, 2, size, size)``: channel 0 = row parity, channel 1 = column parity."""
    rows = (torch.arange(size) % 2).float()
    img = torch.stack([rows[:, None].expand(size, size), rows[None, :].expand(size, size)])
    return img.expand(n, -1, -1, -1).clone()


class CircularNet(nn.Module):
    """Stride-1 conv with circular padding, ReLU, global average pool, linear: exactly invariant to
    circular shifts (the conv commutes with torch.roll, the pool forgets position)."""

    def __init__(self, channels: int = 3, classes: int = 5, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 8, 3, padding=1, padding_mode="circular")
        self.relu = nn.ReLU() if relu else nn.Identity()
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x)).mean((-2, -1)))


class Subsample(nn.Module):
    """``x[..., ::s, ::s]``: the aliasing downsampler."""

    def __init__(self, stride: int = 2) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :: self.stride, :: self.stride]


class CircularBlur(nn.Module):
    """Depthwise [1, 2, 1]^2 / 16 blur with circular padding (commutes with torch.roll)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
        kernel = (taps[:, None] * taps[None, :] / 16).expand(x.shape[1], 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), kernel, groups=x.shape[1])


class StridedNet(nn.Module):
    """Subsample by 2 (optionally after a circular blur); the channel means are the logits.

    Invariant only to even circular shifts: an odd shift selects another polyphase component,
    whose channel means differ (on noise images) enough to change the argmax often.
    """

    def __init__(self, blur: bool = False) -> None:
        super().__init__()
        self.blur = CircularBlur() if blur else nn.Identity()
        self.down = Subsample(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.blur(x)).mean((-2, -1))
