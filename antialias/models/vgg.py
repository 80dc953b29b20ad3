"""Anti-aliased VGG (Simonyan & Zisserman, 2015; Zhang, ICML 2019), built from torchvision's models.

What changes: every ``MaxPool2d(2, stride=2)`` of ``features`` becomes ``MaxBlurPool2d(kernel_size=2)``
(max over 2x2 at stride 1, then blur-pool by 2), as in the reference. VGG has no strided convolution,
so there is no stem option (``antialias_stem=True`` is an error). Parameter names are torchvision's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from antialias.models._builder import build, zoo_builder
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


@zoo_builder(VGG11_Weights, has_stem=False)
def vgg11(**kwargs: Any) -> VGG:
    """Anti-aliased VGG-11 (configuration "A")."""
    return build("vgg11", **kwargs)  # type: ignore[return-value]


@zoo_builder(VGG11_BN_Weights, has_stem=False)
def vgg11_bn(**kwargs: Any) -> VGG:
    """Anti-aliased VGG-11 with batch normalization."""
    return build("vgg11_bn", **kwargs)  # type: ignore[return-value]


@zoo_builder(VGG13_Weights, has_stem=False)
def vgg13(**kwargs: Any) -> VGG:
    """Anti-aliased VGG-13 (configuration "B")."""
    return build("vgg13", **kwargs)  # type: ignore[return-value]


@zoo_builder(VGG13_BN_Weights, has_stem=False)
def vgg13_bn(**kwargs: Any) -> VGG:
    """Anti-aliased VGG-13 with batch normalization."""
    return build("vgg13_bn", **kwargs)  # type: ignore[return-value]


@zoo_builder(VGG16_Weights, has_stem=False)
def vgg16(**kwargs: Any) -> VGG:
    """Anti-aliased VGG-16 (configuration "D")."""
    return build("vgg16", **kwargs)  # type: ignore[return-value]


@zoo_builder(VGG16_BN_Weights, has_stem=False)
def vgg16_bn(**kwargs: Any) -> VGG:
    """Anti-aliased VGG-16 with batch normalization."""
    return build("vgg16_bn", **kwargs)  # type: ignore[return-value]


@zoo_builder(VGG19_Weights, has_stem=False)
def vgg19(**kwargs: Any) -> VGG:
    """Anti-aliased VGG-19 (configuration "E")."""
    return build("vgg19", **kwargs)  # type: ignore[return-value]


@zoo_builder(VGG19_BN_Weights, has_stem=False)
def vgg19_bn(**kwargs: Any) -> VGG:
    """Anti-aliased VGG-19 with batch normalization."""
    return build("vgg19_bn", **kwargs)  # type: ignore[return-value]
