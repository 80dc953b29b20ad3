"""Anti-aliased DenseNet (Huang et al., 2017; Zhang, ICML 2019), built from torchvision's models.

What changes (the reference's placement):

- Stem: ``features.pool0`` (``MaxPool2d(3, stride=2, padding=1)``) becomes
  ``MaxBlurPool2d(kernel_size=3, padding=1)`` (max at stride 1, then blur-pool). With
  ``antialias_stem=True`` (the reference's ``pool_only=False``) ``conv0`` runs at stride 1 and
  ``pool0`` is blur-pool, max, blur-pool.
- Transitions: ``pool`` (``AvgPool2d(2)``) becomes the blur-pool (``AvgPool2d(2)`` is the
  ``filter_size=2`` blur-pool on even maps). With ``method="blur"`` the blur-pool moves *before* the
  transition's 1x1 convolution (``conv`` becomes ``BlurConv2d``, ``pool`` an ``nn.Identity``): a 1x1
  convolution without bias commutes with the blur, so the outputs equal the reference's up to float
  rounding while the convolution runs on a quarter of the samples (measured: 0.92x the FLOPs of
  torchvision's DenseNet-121). Other methods (APS, LPS) choose by content and keep the reference order.

Parameter names are torchvision's; old checkpoints with ``norm.1``-style names load too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from antialias.filters import FilterSpec
from antialias.models._builder import AntialiasConfig, build, document
from antialias.models._load import WeightsArg
from antialias.models._registry import register_model
from antialias.models._weights import (
    DenseNet121_Weights,
    DenseNet161_Weights,
    DenseNet169_Weights,
    DenseNet201_Weights,
)

if TYPE_CHECKING:
    from torchvision.models import DenseNet

__all__ = ["densenet121", "densenet161", "densenet169", "densenet201"]


def antialias_densenet(model: DenseNet, config: AntialiasConfig) -> None:
    """Anti-alias a torchvision ``DenseNet`` in place (see the module docstring)."""
    from torchvision.models.densenet import _Transition

    features = model.features
    channels = features.conv0.out_channels
    pool = config.from_max_pool(features.pool0, channels)
    if config.antialias_stem:
        features.conv0.stride = (1, 1)
        pool = nn.Sequential(config.downsample(channels, 2), pool)
    features.pool0 = pool
    for transition in [m for m in features.modules() if isinstance(m, _Transition)]:
        if config.method == "blur" and transition.conv.bias is None:
            transition.conv = config.strided_conv(transition.conv, 2)
            transition.pool = nn.Identity()
        else:
            transition.pool = config.downsample(transition.conv.out_channels, 2)


def _densenet(arch: str, weights: WeightsArg, progress: bool, aa: dict[str, Any], kwargs: dict[str, Any]) -> DenseNet:
    return build(arch, arch, antialias_densenet, weights=weights, progress=progress, **aa, **kwargs)  # type: ignore[return-value]


@register_model()
@document(DenseNet121_Weights)
def densenet121(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                conv_padding_mode: str = "zeros", **kwargs: Any) -> DenseNet:
    """Anti-aliased DenseNet-121."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _densenet("densenet121", weights, progress, aa, kwargs)


@register_model()
@document(DenseNet161_Weights)
def densenet161(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                conv_padding_mode: str = "zeros", **kwargs: Any) -> DenseNet:
    """Anti-aliased DenseNet-161."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _densenet("densenet161", weights, progress, aa, kwargs)


@register_model()
@document(DenseNet169_Weights)
def densenet169(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                conv_padding_mode: str = "zeros", **kwargs: Any) -> DenseNet:
    """Anti-aliased DenseNet-169."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _densenet("densenet169", weights, progress, aa, kwargs)


@register_model()
@document(DenseNet201_Weights)
def densenet201(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                conv_padding_mode: str = "zeros", **kwargs: Any) -> DenseNet:
    """Anti-aliased DenseNet-201."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _densenet("densenet201", weights, progress, aa, kwargs)
