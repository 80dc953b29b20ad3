"""The family builders (resnet, vgg, densenet, mobilenet, alexnet): torchvision's keys, the reference's placement."""

from __future__ import annotations

import pytest
import torch
import torchvision
from _zoo_archs import ARCHS
from torch import nn

import antialias.models as zoo
from antialias.layers import BlurConv2d, BlurPool2d, MaxBlurPool2d


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_keys_are_torchvision_keys(arch: str) -> None:
    """Same keys and shapes as torchvision's model (blur buffers are not persistent), so torchvision's
    state dict loads strictly. On the meta device: no memory, no initialization."""
    with torch.device("meta"):
        ours = zoo.get_model(arch)
        theirs = torchvision.models.get_model(arch, weights=None)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    assert {k: v.shape for k, v in ours_sd.items()} == {k: v.shape for k, v in theirs_sd.items()}
    ours.load_state_dict(theirs_sd, strict=True)
    assert (
        sum(p.numel() for p in ours.parameters()) == zoo.get_model_weights(arch).DEFAULT.num_params
    )
    blur = [m for m in ours.modules() if isinstance(m, (BlurPool2d, MaxBlurPool2d, BlurConv2d))]
    assert blur, f"{arch} has no anti-aliased layer"


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "densenet121"])
def test_torchvision_weights_load_strictly_and_run(arch: str) -> None:
    """With real tensors (the parity tests load every architecture; these are the quick ones)."""
    theirs = torchvision.models.get_model(arch, weights=None, num_classes=10)
    ours = zoo.get_model(arch, num_classes=10, filter_size=3)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # ...and through weights= (a state dict in torchvision's layout goes through the same path).
    again = zoo.get_model(arch, weights=theirs.state_dict(), num_classes=10).eval()
    out = again(torch.randn(2, 3, 64, 72, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_resnet50_placement_matches_the_reference() -> None:
    model = zoo.resnet50(num_classes=10)
    assert isinstance(model.maxpool, MaxBlurPool2d)
    assert model.maxpool.kernel_size == [2, 2] and model.maxpool.padding == [
        0,
        0,
    ]  # the reference's quirk
    assert model.conv1.stride == (2, 2)
    for layer in (model.layer2, model.layer3, model.layer4):
        block = layer[0]
        assert block.conv2.stride == (1, 1) and isinstance(block.conv3, BlurConv2d)
        assert isinstance(block.downsample[0], BlurConv2d) and block.downsample[0].stride == (1, 1)
        assert not any(isinstance(m, BlurConv2d) for b in layer[1:] for m in b.modules())
    assert (
        sum(isinstance(m, (BlurPool2d, MaxBlurPool2d)) for m in model.modules()) == 7
    )  # as the reference
    text = repr(model)
    assert "MaxBlurPool2d(kernel_size=2, padding=0, channels=64, filter_size=4" in text
    assert "BlurPool2d(channels=512, filter_size=4, stride=2" in text


def test_basic_block_and_stem_option() -> None:
    model = zoo.resnet18(num_classes=10, antialias_stem=True, filter_size=5)
    assert model.conv1.stride == (1, 1)
    # conv1 -> bn1 -> relu -> blur -> max 2x2 -> blur (the reference's pool_only=False), the first blur after the relu
    assert isinstance(model.relu, nn.Sequential) and isinstance(model.relu[1], BlurPool2d)
    assert isinstance(model.maxpool, MaxBlurPool2d)
    block = model.layer2[0]
    assert block.conv1.stride == (1, 1) and isinstance(block.conv2, BlurConv2d)
    out = model(torch.randn(1, 3, 32, 40))
    assert out.shape == (1, 10)


def test_family_placements() -> None:
    with torch.device("meta"):  # structure only: no memory, no initialization
        _check_family_placements()


def _check_family_placements() -> None:
    alex = zoo.alexnet(num_classes=10)  # the reference's AlexNet anti-aliases its stem by default
    assert alex.features[0].stride == (2, 2)
    assert isinstance(alex.features[1], nn.Sequential) and isinstance(
        alex.features[1][1], BlurPool2d
    )
    assert [type(m).__name__ for m in alex.features if isinstance(m, MaxBlurPool2d)] == [
        "MaxBlurPool2d"
    ] * 3
    assert zoo.alexnet(antialias_stem=False, num_classes=10).features[0].stride == (4, 4)

    vgg = zoo.vgg11(num_classes=10)
    assert sum(isinstance(m, MaxBlurPool2d) for m in vgg.features) == 5
    assert not any(isinstance(m, nn.MaxPool2d) for m in vgg.features)
    with pytest.raises(ValueError, match="vgg11 has no strided stem convolution"):
        zoo.vgg11(antialias_stem=True)

    dense = zoo.densenet121(num_classes=10)
    assert isinstance(dense.features.pool0, MaxBlurPool2d) and dense.features.pool0.padding == [
        1,
        1,
    ]
    for i in (
        1,
        2,
        3,
    ):  # the blur goes before the transition's 1x1 conv (they commute; 4x fewer conv FLOPs)
        transition = dense.features.get_submodule(f"transition{i}")
        assert isinstance(transition.conv, BlurConv2d) and transition.conv.stride == (1, 1)
        assert isinstance(transition.conv.blur, BlurPool2d) and transition.conv.blur.stride == [
            2,
            2,
        ]
        assert isinstance(transition.pool, nn.Identity)
    aps_dense = zoo.densenet121(
        num_classes=10, method="aps"
    )  # content-dependent sampling keeps the reference order
    assert not isinstance(aps_dense.features.transition1.pool, nn.Identity)

    mobile = zoo.mobilenet_v2(num_classes=10)
    assert mobile.features[0][0].stride == (2, 2)  # stem not anti-aliased: the reference's quirk
    strided = [b for b in mobile.features[1:-1] if b.stride == 2]
    assert len(strided) == 4
    for block in strided:
        assert isinstance(block.conv[-2], BlurConv2d) and block.conv[-3][0].stride == (1, 1)
    features = zoo.mobilenet_v2(num_classes=10, antialias_stem=True).features
    # conv -> BN -> ReLU6 -> blur, the blur in the next (stride-1, depthwise) conv: BlurConv2d
    assert features[0][0].stride == (1, 1) and isinstance(features[1].conv[0][0], BlurConv2d)
