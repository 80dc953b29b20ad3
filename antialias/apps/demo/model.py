"""The demo's network: three conv-BN-ReLU-downsample stages and global average pooling, circular padding."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from antialias.apps.demo.config import Variant, variant_filter
from antialias.layers.factory import create_max_downsample

__all__ = ["DemoNet"]


def _downsample(variant: Variant, channels: int) -> nn.Module:
    if variant.method == "max":
        return nn.MaxPool2d(2, 2)
    # The layer factory's rule: max at stride 1, then the method's subsampling. The circular wrap
    # (one row and column at the end) keeps the dense max's map 32x32 where MaxPool2d(2, stride=1)
    # would give 31: the whole network stays equivariant to circular shifts (by multiples of the
    # stride). MaxPool2d(2, 2) never reaches that row.
    spec = variant_filter(variant)
    if spec is None:  # the factory's default filter
        return create_max_downsample(
            variant.method, 2, channels, 2, pad_mode="circular", circular=True
        )
    return create_max_downsample(
        variant.method, 2, channels, 2, filter_size=spec, pad_mode="circular", circular=True
    )


class DemoNet(nn.Module):
    """A small CNN for 32x32 images: three conv-BN-ReLU-downsample stages, global average pooling.

    Every convolution pads circularly; each stage halves the map with the variant's downsampling
    (``MaxPool2d(2, 2)``, or a dense max followed by max-blur-pool, APS or another method of the
    layer factory). The baseline, blur and APS variants have the same parameters, so a seed gives
    them the same initial weights (learned samplers such as LPS add their own).

    Args:
        variant: the downsampling method.
        widths: channels of the three stages.
        in_channels: image channels.
        num_classes: output classes.

    Shape:
        - Input: ``(N, in_channels, H, W)``, H and W divisible by 8 for exact circular equivariance.
        - Output: ``(N, num_classes)`` logits.

    Example:
        >>> import torch
        >>> from antialias.apps.demo import make_variants
        >>> net = DemoNet(make_variants((4,), baseline=False, aps=False)[0])
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        variant: Variant,
        widths: Sequence[int] = (16, 32, 64),
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        stages = []
        channels = in_channels
        for width in widths:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(channels, width, 3, padding=1, padding_mode="circular", bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                    _downsample(variant, width),
                )
            )
            channels = width
        self.features = nn.Sequential(*stages)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))
