"""Anti-aliased AlexNet (Krizhevsky, 2014; Zhang, ICML 2019), built from torchvision's model.

What changes (the reference's defaults, which its weights depend on):

- Stem (``antialias_stem=True``, **the default for AlexNet**, as the reference's ``pool_only=False``
  default): ``features[0]`` (11x11 conv at stride 4) runs at stride 2 and ``features[1]`` (its ReLU)
  becomes ``Sequential(ReLU, BlurPool2d(stride=2))``: conv, activation, then the remaining factor 2 is
  blur-pooled.
- Every ``MaxPool2d(3, stride=2)`` becomes ``MaxBlurPool2d(kernel_size=3)`` (max at stride 1, blur-pool).

With ``antialias_stem=False`` the stem conv keeps stride 4 and its ReLU. (The reference's
``pool_only=True`` variant also drops that ReLU, a bug that no published weights use; not reproduced.)
Parameter names are torchvision's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from antialias.filters import FilterSpec
from antialias.models._builder import AntialiasConfig, build, document
from antialias.models._load import WeightsArg
from antialias.models._registry import register_model
from antialias.models._weights import AlexNet_Weights

if TYPE_CHECKING:
    from torchvision.models import AlexNet

__all__ = ["alexnet"]


def antialias_alexnet(model: AlexNet, config: AntialiasConfig) -> None:
    """Anti-alias a torchvision ``AlexNet`` in place (see the module docstring)."""
    features = model.features
    if config.antialias_stem:
        conv = features[0]
        sh, sw = conv.stride
        if sh % 2 or sw % 2:
            raise ValueError(f"cannot anti-alias the stem {conv}: its stride is not even")
        conv.stride = (sh // 2, sw // 2)
        features[1] = config.after(features[1], conv.out_channels, 2)
    channels = 3
    for index, module in enumerate(features):
        if isinstance(module, nn.Conv2d):
            channels = module.out_channels
        elif isinstance(module, nn.MaxPool2d):
            features[index] = config.from_max_pool(module, channels)


@register_model()
@document(AlexNet_Weights, "``True`` (the reference's AlexNet default, which its weights use)")
def alexnet(*, weights: WeightsArg = None, progress: bool = True, filter_size: FilterSpec | None = None,
            antialias_stem: bool = True, method: str = "blur", pad_mode: str = "reflect",
            conv_padding_mode: str = "zeros", **kwargs: Any) -> AlexNet:
    """Anti-aliased AlexNet ("One weird trick" variant, as torchvision's)."""
    aa = dict(filter_size=filter_size, antialias_stem=antialias_stem, method=method, pad_mode=pad_mode, conv_padding_mode=conv_padding_mode)
    return build("alexnet", "alexnet", antialias_alexnet, weights=weights, progress=progress, **aa, **kwargs)  # type: ignore[return-value]
