"""The demo's network: three conv-BN-ReLU-downsample stages and global average pooling, circular padding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from antialias.apps.demo.config import VIT_METHODS, Variant, variant_filter
from antialias.layers.anchor import AnchoredConv2d
from antialias.layers.factory import create_max_downsample

__all__ = ["DemoNet", "DemoViT", "build_model"]


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


class DemoViT(nn.Module):
    """A small vision transformer for 32x32 images: patch 4, learned position embedding, two layers.

    ``variant.method == "vit-anchored"`` puts the patch embedding behind polyphase and token
    anchoring (:class:`~antialias.layers.AnchoredConv2d`, Ding et al. 2023): the logits are then the
    same for every circular shift of the image; ``"vit"`` is the plain baseline. Both have the same
    parameters.

    Args:
        variant: ``"vit"`` or ``"vit-anchored"``.
        width: the token width.
        in_channels: image channels.
        num_classes: output classes.
        image_size: the side of the (square) images; the position embedding has one entry per patch.

    Shape:
        - Input: ``(N, in_channels, image_size, image_size)``.
        - Output: ``(N, num_classes)`` logits.

    Example:
        >>> import torch
        >>> net = DemoViT(Variant("vit-anchored", "vit-anchored", None, "ViT + anchoring"))
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        variant: Variant,
        width: int = 64,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        if variant.method not in VIT_METHODS:
            raise ValueError(
                f"DemoViT's variant.method must be one of {VIT_METHODS}, got {variant.method!r}"
            )
        patch = 4
        if variant.method == "vit-anchored":
            # scored by the output: upsampled digits have equal polyphase components (ties)
            self.patch_embed: nn.Module = AnchoredConv2d(
                in_channels, width, patch, token_anchor=True, score="output"
            )
        else:
            self.patch_embed = nn.Conv2d(in_channels, width, patch, stride=patch)
        grid = image_size // patch
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, grid * grid, width))
        layer = nn.TransformerEncoderLayer(
            width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        return self.fc(self.norm(self.blocks(tokens)).mean(1))


def build_model(
    variant: Variant, widths: Sequence[int], in_channels: int, num_classes: int
) -> nn.Module:
    """The model of ``variant``: :class:`DemoViT` (width: the last stage's) or :class:`DemoNet`."""
    if variant.method in VIT_METHODS:
        return DemoViT(variant, widths[-1], in_channels, num_classes)
    return DemoNet(variant, widths, in_channels, num_classes)
