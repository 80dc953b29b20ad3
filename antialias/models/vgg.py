"""Anti-aliased VGG (Simonyan & Zisserman, 2015; Zhang, ICML 2019), built from torchvision's models.

What changes: every ``MaxPool2d(2, stride=2)`` of ``features`` becomes ``MaxBlurPool2d(kernel_size=2)``
(max over 2x2 at stride 1, then blur-pool by 2), as in the reference. VGG has no strided convolution,
so there is no stem option (``antialias_stem=True`` is an error). Parameter names are torchvision's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from antialias.filters import FilterSpec
from antialias.models._builder import AntialiasConfig, build, document
from antialias.models._load import WeightsArg
from antialias.models._registry import register_model
from antialias.models._weights import (
    VGG11_BN_Weights,
    VGG11_Weights,
    VGG13_BN_Weights,
    VGG13_Weights,
    VGG16_BN_Weights,
    VGG16_Weights,
    VGG19_BN_Weights,
    VGG19_Weights,
)

if TYPE_CHECKING:
    from torchvision.models import VGG

__all__ = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


def antialias_vgg(model: VGG, config: AntialiasConfig) -> None:
    """Anti-alias a torchvision ``VGG`` in place (see the module docstring)."""
    channels = 3
    for index, module in enumerate(model.features):
        if isinstance(module, nn.Conv2d):
            channels = module.out_channels
        elif isinstance(module, nn.MaxPool2d):
            model.features[index] = config.from_max_pool(module, channels)


def _vgg(arch: str, weights: WeightsArg, progress: bool, aa: dict[str, Any], kwargs: dict[str, Any]) -> VGG:
    return build(arch, arch, antialias_vgg, weights=weights, progress=progress, has_stem=False, **aa, **kwargs)  # type: ignore[return-value]


_STEM = "``False`` (VGG has no strided stem convolution; ``True`` is an error)"


@register_model()
@document(VGG11_Weights, _STEM)
def vgg11(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
          antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
          conv_padding_mode: str = "zeros", **kwargs: Any) -> VGG:
    """Anti-aliased VGG-11 (configuration "A")."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _vgg("vgg11", weights, progress, aa, kwargs)


@register_model()
@document(VGG11_BN_Weights, _STEM)
def vgg11_bn(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
             antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
             conv_padding_mode: str = "zeros", **kwargs: Any) -> VGG:
    """Anti-aliased VGG-11 with batch normalization."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _vgg("vgg11_bn", weights, progress, aa, kwargs)


@register_model()
@document(VGG13_Weights, _STEM)
def vgg13(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
          antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
          conv_padding_mode: str = "zeros", **kwargs: Any) -> VGG:
    """Anti-aliased VGG-13 (configuration "B")."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _vgg("vgg13", weights, progress, aa, kwargs)


@register_model()
@document(VGG13_BN_Weights, _STEM)
def vgg13_bn(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
             antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
             conv_padding_mode: str = "zeros", **kwargs: Any) -> VGG:
    """Anti-aliased VGG-13 with batch normalization."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _vgg("vgg13_bn", weights, progress, aa, kwargs)


@register_model()
@document(VGG16_Weights, _STEM)
def vgg16(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
          antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
          conv_padding_mode: str = "zeros", **kwargs: Any) -> VGG:
    """Anti-aliased VGG-16 (configuration "D")."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _vgg("vgg16", weights, progress, aa, kwargs)


@register_model()
@document(VGG16_BN_Weights, _STEM)
def vgg16_bn(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
             antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
             conv_padding_mode: str = "zeros", **kwargs: Any) -> VGG:
    """Anti-aliased VGG-16 with batch normalization."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _vgg("vgg16_bn", weights, progress, aa, kwargs)


@register_model()
@document(VGG19_Weights, _STEM)
def vgg19(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
          antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
          conv_padding_mode: str = "zeros", **kwargs: Any) -> VGG:
    """Anti-aliased VGG-19 (configuration "E")."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _vgg("vgg19", weights, progress, aa, kwargs)


@register_model()
@document(VGG19_BN_Weights, _STEM)
def vgg19_bn(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
             antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
             conv_padding_mode: str = "zeros", **kwargs: Any) -> VGG:
    """Anti-aliased VGG-19 with batch normalization."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return _vgg("vgg19_bn", weights, progress, aa, kwargs)
