"""Anti-aliased MobileNetV2 (Sandler et al., 2018; Zhang, ICML 2019), built from torchvision's model.

What changes (the reference's placement, which its weights depend on):

- Each stride-2 inverted residual block: the depthwise conv runs at stride 1 (then BN, ReLU6) and the
  pointwise-linear 1x1 conv blur-pools its input (``BlurConv2d``): dw -> BN -> ReLU6 -> blur -> pw.
- **The stem conv is not anti-aliased** (a quirk of the reference, reproduced by default).
  ``antialias_stem=True`` (not in the reference; no published weights) runs it at stride 1 and
  blur-pools after its ReLU6.
- The classifier keeps torchvision's ``Sequential(Dropout(0.2), Linear)``, so its weights are
  ``classifier.1.*`` and torchvision's checkpoints load strictly. The reference's classifier is
  ``Sequential(Linear)`` (``classifier.0.*``, trained without Dropout); its checkpoints are remapped
  to ``classifier.1.*``, and in eval mode the outputs are the same. Pass ``dropout=0.0`` to train
  as the reference did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from antialias.models._builder import build, zoo_builder
from antialias.models._weights import MobileNet_V2_Weights

if TYPE_CHECKING:
    from torchvision.models import MobileNetV2

__all__ = ["mobilenet_v2"]


@zoo_builder(
    MobileNet_V2_Weights, stem_doc="``False`` (the reference never anti-aliases this stem)"
)
def mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    """Anti-aliased MobileNetV2."""
    return build("mobilenet_v2", **kwargs)  # type: ignore[return-value]
