"""Anti-aliased AlexNet (Krizhevsky, 2014; Zhang, ICML 2019), built from torchvision's model.

What changes (the reference's defaults, which its weights depend on):

- Stem (``antialias_stem=True``, **the default for AlexNet**, as the reference's ``pool_only=False``
  default): ``features[0]`` (11x11 conv at stride 4) runs at stride 2 and ``features[1]`` (its ReLU)
  becomes ``Sequential(ReLU, BlurPool2d(stride=2))``: conv, activation, then the remaining factor 2 is
  blur-pooled.
- Every ``MaxPool2d(3, stride=2)`` becomes ``MaxBlurPool2d(kernel_size=3, stride=2)`` (max at stride 1, blur-pool).

With ``antialias_stem=False`` the stem conv keeps stride 4 and its ReLU. (The reference's
``pool_only=True`` variant also drops that ReLU, a bug that no published weights use; not reproduced.)
Parameter names are torchvision's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from antialias.models._builder import build, zoo_builder
from antialias.models._weights import AlexNet_Weights

if TYPE_CHECKING:
    from torchvision.models import AlexNet

__all__ = ["alexnet"]


@zoo_builder(
    AlexNet_Weights,
    layout={"features.0": "split-stride"},
    antialias_stem=True,
    stem_doc="``True`` (the reference's AlexNet default, which its weights use)",
)
def alexnet(**kwargs: Any) -> AlexNet:
    """Anti-aliased AlexNet ("One weird trick" variant, as torchvision's)."""
    return build("alexnet", **kwargs)  # type: ignore[return-value]
