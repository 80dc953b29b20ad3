"""torch.hub entry points: ``torch.hub.load("<owner>/antialias", "resnet50", weights="DEFAULT")``.

Every builder of :mod:`antialias.models` is an entry point; keyword arguments go to the builder
(``weights``, ``filter_size``, ``num_classes`` ...). ``pretrained=True`` (the older torch.hub
convention) means ``weights="DEFAULT"``. The reference's weights are CC BY-NC-SA 4.0
(non-commercial use only).
"""

dependencies = ["torch", "torchvision"]

# Private names only: torch.hub lists every public callable of this file as an entry point.
import functools as _functools  # noqa: E402  (torch.hub reads `dependencies` first)
from collections.abc import Callable as _Callable  # noqa: E402
from typing import Any as _Any  # noqa: E402

from torch import nn as _nn  # noqa: E402

from antialias import models as _zoo  # noqa: E402


def _entry(builder: _Callable[..., _nn.Module]) -> _Callable[..., _nn.Module]:
    """``builder`` that also takes ``pretrained=True`` for ``weights="DEFAULT"``."""

    @_functools.wraps(builder)
    def entry(*, pretrained: bool = False, **kwargs: _Any) -> _nn.Module:
        if pretrained:
            if kwargs.get("weights") is not None:
                raise ValueError(
                    f"give pretrained=True or weights={kwargs['weights']!r}, not both "
                    "(pretrained=True means weights='DEFAULT')"
                )
            kwargs["weights"] = "DEFAULT"
        return builder(**kwargs)

    return entry


alexnet = _entry(_zoo.alexnet)
densenet121 = _entry(_zoo.densenet121)
densenet161 = _entry(_zoo.densenet161)
densenet169 = _entry(_zoo.densenet169)
densenet201 = _entry(_zoo.densenet201)
mobilenet_v2 = _entry(_zoo.mobilenet_v2)
resnet18 = _entry(_zoo.resnet18)
resnet34 = _entry(_zoo.resnet34)
resnet50 = _entry(_zoo.resnet50)
resnet101 = _entry(_zoo.resnet101)
resnet152 = _entry(_zoo.resnet152)
resnext50_32x4d = _entry(_zoo.resnext50_32x4d)
resnext101_32x8d = _entry(_zoo.resnext101_32x8d)
vgg11 = _entry(_zoo.vgg11)
vgg11_bn = _entry(_zoo.vgg11_bn)
vgg13 = _entry(_zoo.vgg13)
vgg13_bn = _entry(_zoo.vgg13_bn)
vgg16 = _entry(_zoo.vgg16)
vgg16_bn = _entry(_zoo.vgg16_bn)
vgg19 = _entry(_zoo.vgg19)
vgg19_bn = _entry(_zoo.vgg19_bn)
wide_resnet50_2 = _entry(_zoo.wide_resnet50_2)
wide_resnet101_2 = _entry(_zoo.wide_resnet101_2)

__all__ = [
    "alexnet",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "mobilenet_v2",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "wide_resnet50_2",
    "wide_resnet101_2",
]
