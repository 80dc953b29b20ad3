"""Anti-aliased ResNet, ResNeXt and Wide ResNet (Zhang, ICML 2019), built from torchvision's models.

What changes (the reference's placement, which its weights depend on):

- Stem: ``maxpool`` (torchvision: ``MaxPool2d(3, stride=2, padding=1)``) becomes
  ``MaxBlurPool2d(kernel_size=2)``: max over 2x2 at stride 1, then blur-pool by 2. **Kernel 2, not 3,
  and no padding**: a quirk of the reference that its weights depend on, reproduced. The stem conv stays
  at stride 2 unless ``antialias_stem=True`` (the reference's ``pool_only=False``): then ``conv1`` runs
  at stride 1 and ``maxpool`` is blur-pool, max 2x2, blur-pool.
- BasicBlock with stride 2: ``conv1`` at stride 1; ``conv2`` blur-pools its input (``BlurConv2d``).
- Bottleneck with stride 2: ``conv2`` at stride 1; ``conv3`` (1x1) blur-pools its input.
- Shortcut: ``downsample[0]`` (1x1 conv) blur-pools its input, then runs at stride 1: a 1x1 conv
  commutes with the blur, and blurring before it is cheaper.

ResNet-50 has 7 blur layers (stem, and 3 stages x block + shortcut). Parameter names are torchvision's.

Truly shift-invariant variants (APS, LPS; :mod:`antialias.layers.polyphase`): ``resnet18(method="aps",
circular=True)`` (or ``method="lps"``). Each shortcut then keeps the phase its block's main path chose,
the max pool wraps around, and the logits are the same for every circular shift of an input whose sides
are multiples of 32 (LPS: in evaluation mode).

The placement is :func:`antialias.convert`'s ``placement="reference"`` with the stem's kernel 2 declared
as ``layout`` (see :mod:`antialias.models._builder`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from antialias.models._builder import build, zoo_builder
from antialias.models._weights import (
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
    ResNet152_Weights,
    ResNeXt50_32X4D_Weights,
    ResNeXt101_32X8D_Weights,
    Wide_ResNet50_2_Weights,
    Wide_ResNet101_2_Weights,
)

if TYPE_CHECKING:
    from torchvision.models import ResNet

# The reference's stem max pool takes the max over 2x2 without padding, and its weights depend on it.
_LAYOUT = {"maxpool": "max-kernel-2"}

__all__ = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]


@zoo_builder(ResNet18_Weights, layout=_LAYOUT)
def resnet18(**kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-18 (He et al., 2016; Zhang, 2019)."""
    return build("resnet18", **kwargs)  # type: ignore[return-value]


@zoo_builder(ResNet34_Weights, layout=_LAYOUT)
def resnet34(**kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-34 (He et al., 2016; Zhang, 2019)."""
    return build("resnet34", **kwargs)  # type: ignore[return-value]


@zoo_builder(ResNet50_Weights, layout=_LAYOUT)
def resnet50(**kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-50 (He et al., 2016; Zhang, 2019)."""
    return build("resnet50", **kwargs)  # type: ignore[return-value]


@zoo_builder(ResNet101_Weights, layout=_LAYOUT)
def resnet101(**kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-101 (He et al., 2016; Zhang, 2019)."""
    return build("resnet101", **kwargs)  # type: ignore[return-value]


@zoo_builder(ResNet152_Weights, layout=_LAYOUT)
def resnet152(**kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-152 (He et al., 2016; Zhang, 2019)."""
    return build("resnet152", **kwargs)  # type: ignore[return-value]


@zoo_builder(ResNeXt50_32X4D_Weights, layout=_LAYOUT)
def resnext50_32x4d(**kwargs: Any) -> ResNet:
    """Anti-aliased ResNeXt-50 32x4d (Xie et al., 2017; Zhang, 2019)."""
    return build("resnext50_32x4d", **kwargs)  # type: ignore[return-value]


@zoo_builder(ResNeXt101_32X8D_Weights, layout=_LAYOUT)
def resnext101_32x8d(**kwargs: Any) -> ResNet:
    """Anti-aliased ResNeXt-101 32x8d (Xie et al., 2017; Zhang, 2019)."""
    return build("resnext101_32x8d", **kwargs)  # type: ignore[return-value]


@zoo_builder(Wide_ResNet50_2_Weights, layout=_LAYOUT)
def wide_resnet50_2(**kwargs: Any) -> ResNet:
    """Anti-aliased Wide ResNet-50-2 (Zagoruyko & Komodakis, 2016; Zhang, 2019)."""
    return build("wide_resnet50_2", **kwargs)  # type: ignore[return-value]


@zoo_builder(Wide_ResNet101_2_Weights, layout=_LAYOUT)
def wide_resnet101_2(**kwargs: Any) -> ResNet:
    """Anti-aliased Wide ResNet-101-2 (Zagoruyko & Komodakis, 2016; Zhang, 2019)."""
    return build("wide_resnet101_2", **kwargs)  # type: ignore[return-value]
