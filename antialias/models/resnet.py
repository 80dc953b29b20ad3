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
antialias_stem=True, pad_mode="circular", conv_padding_mode="circular")`` (or ``method="lps"``). Each
shortcut then keeps the phase its block's main path chose, the max pool wraps around, and the logits are
the same for every circular shift of an input whose sides are multiples of 32 (LPS: in evaluation mode).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from antialias.filters import FilterSpec
from antialias.models._builder import AntialiasConfig, build, document
from antialias.models._load import WeightsArg
from antialias.models._registry import register_model
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


def antialias_resnet(model: ResNet, config: AntialiasConfig) -> None:
    """Anti-alias a torchvision ``ResNet`` in place (see the module docstring)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    channels = model.conv1.out_channels
    pool = config.max_pool(channels, kernel_size=2, stride=2)  # kernel 2: the reference's quirk
    if config.antialias_stem:
        model.conv1.stride = (1, 1)
        pool = nn.Sequential(config.downsample(channels, 2), pool)
    model.maxpool = pool
    for block in list(model.modules()):
        if isinstance(block, Bottleneck) and block.conv2.stride != (1, 1):
            block.conv3 = config.strided_conv(block.conv3, block.conv2.stride)
            block.conv2.stride = (1, 1)
        elif isinstance(block, BasicBlock) and block.conv1.stride != (1, 1):
            block.conv2 = config.strided_conv(block.conv2, block.conv1.stride)
            block.conv1.stride = (1, 1)
        if isinstance(block, (BasicBlock, Bottleneck)) and block.downsample is not None:
            shortcut = block.downsample[0]
            if shortcut.stride != (1, 1):
                block.downsample[0] = config.strided_conv(shortcut, shortcut.stride)


def _resnet(arch: str, weights: WeightsArg, progress: bool, aa: dict[str, Any], kwargs: dict[str, Any]) -> ResNet:
    return build(arch, arch, antialias_resnet, weights=weights, progress=progress, **aa, **kwargs)  # type: ignore[return-value]


@register_model()
@document(ResNet18_Weights)
def resnet18(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
             antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
             conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-18 (He et al., 2016; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("resnet18", weights, progress, aa, kwargs)


@register_model()
@document(ResNet34_Weights)
def resnet34(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
             antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
             conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-34 (He et al., 2016; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("resnet34", weights, progress, aa, kwargs)


@register_model()
@document(ResNet50_Weights)
def resnet50(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
             antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
             conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-50 (He et al., 2016; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("resnet50", weights, progress, aa, kwargs)


@register_model()
@document(ResNet101_Weights)
def resnet101(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
              antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
              conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-101 (He et al., 2016; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("resnet101", weights, progress, aa, kwargs)


@register_model()
@document(ResNet152_Weights)
def resnet152(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
              antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
              conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased ResNet-152 (He et al., 2016; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("resnet152", weights, progress, aa, kwargs)


@register_model()
@document(ResNeXt50_32X4D_Weights)
def resnext50_32x4d(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                    antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                    conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased ResNeXt-50 32x4d (Xie et al., 2017; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("resnext50_32x4d", weights, progress, aa, kwargs)


@register_model()
@document(ResNeXt101_32X8D_Weights)
def resnext101_32x8d(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                     antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                     conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased ResNeXt-101 32x8d (Xie et al., 2017; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("resnext101_32x8d", weights, progress, aa, kwargs)


@register_model()
@document(Wide_ResNet50_2_Weights)
def wide_resnet50_2(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                    antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                    conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased Wide ResNet-50-2 (Zagoruyko & Komodakis, 2016; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("wide_resnet50_2", weights, progress, aa, kwargs)


@register_model()
@document(Wide_ResNet101_2_Weights)
def wide_resnet101_2(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                     antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                     conv_padding_mode: str = "zeros", **kwargs: Any) -> ResNet:
    """Anti-aliased Wide ResNet-101-2 (Zagoruyko & Komodakis, 2016; Zhang, 2019)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _resnet("wide_resnet101_2", weights, progress, aa, kwargs)
