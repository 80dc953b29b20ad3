"""torch.hub entry points: ``torch.hub.load("<owner>/antialias", "resnet50", weights="DEFAULT")``.

Every builder of :mod:`antialias.models` is an entry point; keyword arguments go to the builder
(``weights``, ``filter_size``, ``num_classes`` ...). The reference's weights are CC BY-NC-SA 4.0
(non-commercial use only).
"""

dependencies = ["torch", "torchvision"]

from antialias.models import (  # noqa: E402  (torch.hub reads `dependencies` first)
    alexnet,
    densenet121,
    densenet161,
    densenet169,
    densenet201,
    mobilenet_v2,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
    wide_resnet50_2,
    wide_resnet101_2,
)

__all__ = [
    "alexnet", "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "wide_resnet50_2", "wide_resnet101_2",
]
