"""antialias.models._builder: the builders' signature and options, and their checks of the weights they are given."""

from __future__ import annotations

import inspect

import pytest
import torch
import torchvision
from _zoo_archs import ARCHS
from torch import nn

import antialias.models as zoo
from antialias.layers import BlurPool2d, MaxBlurPool2d, register_downsample
from antialias.layers.factory import list_downsample_methods


@pytest.mark.parametrize("arch", ARCHS)
def test_builder_is_keyword_only_and_documented(arch: str) -> None:
    builder = getattr(zoo, arch)
    params = inspect.signature(builder).parameters
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params.values())
    for name in (
        "weights",
        "progress",
        "filter_size",
        "antialias_stem",
        "method",
        "pad_mode",
        "conv_padding_mode",
    ):
        assert name in params, name
    assert (
        "non-commercial" in builder.__doc__
        and zoo.get_model_weights(arch).__name__ in builder.__doc__
    )


@pytest.mark.parametrize(
    "filter_size", [1, 2, 3, 4, 5, 6, 7, "box-3", "triangle-5", [1.0, 2.0, 1.0]]
)
def test_filter_sizes(filter_size: object) -> None:
    model = zoo.resnet18(num_classes=3, filter_size=filter_size).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_bad_options_raise_at_construction() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        zoo.resnet18(method="nope")
    with pytest.raises(ValueError, match="conv_padding_mode must be one of"):
        zoo.resnet18(conv_padding_mode="mirror")
    with pytest.raises(ValueError, match="pad_mode"):
        zoo.resnet18(pad_mode="mirror")
    with pytest.raises(TypeError, match="antialias_stem must be a bool"):
        zoo.resnet18(antialias_stem="yes")


def test_conv_padding_mode_option() -> None:
    model = zoo.resnet18(num_classes=10, pad_mode="circular", conv_padding_mode="circular").eval()
    assert all(m.padding_mode == "circular" for m in model.modules() if isinstance(m, nn.Conv2d))
    assert all(m.pad_mode == "circular" for m in model.modules() if isinstance(m, BlurPool2d))
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


class _Subsample(nn.Module):
    """A toy downsampling method for the test: plain subsampling, parameter-free."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :: self.stride, :: self.stride]


def test_method_uses_the_downsample_factory_everywhere() -> None:
    if "zoo_test_subsample" not in list_downsample_methods():
        register_downsample(
            "zoo_test_subsample", lambda ndim, channels, stride, **kw: _Subsample(stride)
        )
    model = zoo.resnet50(num_classes=10, method="zoo_test_subsample")
    assert not any(isinstance(m, (BlurPool2d, MaxBlurPool2d)) for m in model.modules())
    assert sum(isinstance(m, _Subsample) for m in model.modules()) == 7
    assert isinstance(model.maxpool[0], nn.MaxPool2d) and model.maxpool[0].stride == 1
    with torch.device("meta"):
        assert list(model.state_dict()) == list(
            torchvision.models.resnet50(num_classes=10).state_dict()
        )
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_gradients_reach_every_parameter() -> None:
    model = zoo.mobilenet_v2(num_classes=4, filter_size=3)
    model(torch.randn(2, 3, 48, 48)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_catalog_weights_and_build_options_must_agree() -> None:
    with pytest.raises(ValueError, match="trained with filter_size=4, got filter_size=5"):
        zoo.resnet50(weights="DEFAULT", filter_size=5)
    with pytest.raises(ValueError, match="have 1000 classes, got num_classes=10"):
        zoo.resnet50(weights=zoo.ResNet50_Weights.LPF2, num_classes=10)
    with pytest.raises(ValueError, match="weights for 'resnet18'"):
        zoo.resnet50(weights=zoo.ResNet18_Weights.DEFAULT)
