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

from antialias.filters import FilterSpec
from antialias.models._builder import AntialiasConfig, build, document
from antialias.models._load import WeightsArg
from antialias.models._registry import register_model
from antialias.models._weights import MobileNet_V2_Weights

if TYPE_CHECKING:
    from torchvision.models import MobileNetV2

__all__ = ["mobilenet_v2"]


def antialias_mobilenet_v2(model: MobileNetV2, config: AntialiasConfig) -> None:
    """Anti-alias a torchvision ``MobileNetV2`` in place (see the module docstring)."""
    from torchvision.models.mobilenetv2 import InvertedResidual
    from torchvision.ops.misc import Conv2dNormActivation

    if config.antialias_stem:
        stem = model.features[0]
        stride = stem[0].stride
        stem[0].stride = (1, 1)
        stem[2] = config.after(stem[2], stem[0].out_channels, stride)
    for block in model.features:
        if not isinstance(block, InvertedResidual):
            continue
        for layer in block.conv:
            if isinstance(layer, Conv2dNormActivation) and layer[0].stride != (1, 1):
                stride = layer[0].stride
                layer[0].stride = (1, 1)
                block.conv[-2] = config.strided_conv(block.conv[-2], stride)  # the pointwise-linear conv
                break


@register_model()
@document(MobileNet_V2_Weights, "``False`` (the reference never anti-aliases this stem)")
def mobilenet_v2(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
                 antialias_stem: bool = False, method: str = "blur", pad_mode: str = "reflect",
                 conv_padding_mode: str = "zeros", **kwargs: Any) -> MobileNetV2:
    """Anti-aliased MobileNetV2."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return build("mobilenet_v2", "mobilenet_v2", antialias_mobilenet_v2, weights=weights, progress=progress, **aa, **kwargs)  # type: ignore[return-value]
