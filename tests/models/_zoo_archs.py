"""The reference's 23 architectures, shared by the zoo's tests (a uniquely named module: ``conftest`` is ambiguous
on sys.path). Other modules may register more models."""

ARCHS = sorted(
    [
        "alexnet",
        "vgg11",
        "vgg11_bn",
        "vgg13",
        "vgg13_bn",
        "vgg16",
        "vgg16_bn",
        "vgg19",
        "vgg19_bn",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "resnext50_32x4d",
        "resnext101_32x8d",
        "wide_resnet50_2",
        "wide_resnet101_2",
        "densenet121",
        "densenet161",
        "densenet169",
        "densenet201",
        "mobilenet_v2",
    ]
)
