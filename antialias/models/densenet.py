"""Anti-aliased DenseNet (Huang et al., 2017; Zhang, ICML 2019), built from torchvision's models.

What changes (the reference's placement):

- Stem: ``features.pool0`` (``MaxPool2d(3, stride=2, padding=1)``) becomes
  ``MaxBlurPool2d(kernel_size=3, stride=2, padding=1)`` (max at stride 1, then blur-pool). With
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

from antialias.models._builder import build, zoo_builder
from antialias.models._weights import (
    DenseNet121_Weights,
    DenseNet161_Weights,
    DenseNet169_Weights,
    DenseNet201_Weights,
)

if TYPE_CHECKING:
    from torchvision.models import DenseNet

__all__ = ["densenet121", "densenet161", "densenet169", "densenet201"]


@zoo_builder(DenseNet121_Weights)
def densenet121(**kwargs: Any) -> DenseNet:
    """Anti-aliased DenseNet-121."""
    return build("densenet121", **kwargs)  # type: ignore[return-value]


@zoo_builder(DenseNet161_Weights)
def densenet161(**kwargs: Any) -> DenseNet:
    """Anti-aliased DenseNet-161."""
    return build("densenet161", **kwargs)  # type: ignore[return-value]


@zoo_builder(DenseNet169_Weights)
def densenet169(**kwargs: Any) -> DenseNet:
    """Anti-aliased DenseNet-169."""
    return build("densenet169", **kwargs)  # type: ignore[return-value]


@zoo_builder(DenseNet201_Weights)
def densenet201(**kwargs: Any) -> DenseNet:
    """Anti-aliased DenseNet-201."""
    return build("densenet201", **kwargs)  # type: ignore[return-value]
