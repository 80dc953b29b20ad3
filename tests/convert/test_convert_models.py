"""antialias.convert on real architectures: torchvision, timm, detection and segmentation models.

- Parity: torchvision's resnet18, resnet50, vgg16_bn, densenet121, mobilenet_v2 and alexnet converted
  with ``placement="reference"`` give the logits of the reference package's model (antialiased-cnns 0.3)
  and of our zoo model carrying the same weights (relative error <= 1e-5).
- Every family: the converted model keeps every state-dict key and value, reports every downsampling
  layer, has no stride > 1 left outside the layers it left alone, and runs forward and backward in
  train and eval mode.

Speed (2 CPU cores): the smallest model of each family, 32x32 inputs where the model allows them,
``num_classes=10``.
"""

from __future__ import annotations

import antialiased_cnns
import pytest
import timm
import torch
import torchvision
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd

import antialias.models as zoo
from antialias import convert, convert_with_report
from antialias.conversion import ConversionReport
from antialias.layers import BlurConv2d, MaxBlurPool2d
from antialias.models._builder import LAYOUTS

NUM_CLASSES = 10


def is_strided(module: nn.Module) -> bool:
    if isinstance(module, _ConvNd):
        return not module.transposed and any(s > 1 for s in module.stride)
    if isinstance(module, (_MaxPoolNd, _AvgPoolNd)):
        stride = module.stride if module.stride is not None else module.kernel_size
        return any(s > 1 for s in (stride if isinstance(stride, tuple) else (stride,)))
    return False


def assert_same_state(original: nn.Module, converted: nn.Module) -> None:
    before, after = original.state_dict(), converted.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    converted.load_state_dict(before, strict=True)


def assert_fully_reported(
    original: nn.Module, converted: nn.Module, report: ConversionReport
) -> None:
    strided = {name for name, m in original.named_modules() if is_strided(m)}
    converted_names = {c.name for c in report.converted}
    left_alone = {s.name for s in report.skipped}
    assert converted_names, "nothing was converted"
    assert strided <= converted_names | left_alone, (
        f"not reported: {strided - converted_names - left_alone}"
    )
    still_strided = {name for name, m in converted.named_modules() if is_strided(m)}
    assert still_strided <= left_alone, (
        f"stride > 1 left in converted layers: {still_strided - left_alone}"
    )


def logits_of(output: object) -> Tensor:
    return (
        output.logits if hasattr(output, "logits") else output
    )  # googlenet's train-mode namedtuple


def assert_trains_and_evaluates(
    model: nn.Module, generator: torch.Generator, size: int = 32
) -> None:
    for training in (True, False):
        model.train(training)
        model.zero_grad()
        x = torch.randn(2, 3, size, size, generator=generator)
        output = model(x)
        logits = logits_of(output)
        assert logits.shape == (2, NUM_CLASSES)
        assert torch.isfinite(logits).all()
        loss = sum(
            t.float().pow(2).mean() for t in (output if isinstance(output, tuple) else (output,))
        )
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)


# ----------------------------------------------------------------------------------------------------
# Parity with the reference package and the zoo


def random_values(template: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Random weights and BN statistics for a state dict (blur buffers excluded); He-like scale."""
    g = torch.Generator().manual_seed(seed)
    values = {}
    for name, t in template.items():
        leaf = name.rpartition(".")[2]
        if leaf in ("filt", "num_batches_tracked"):
            continue
        if leaf == "running_var" or (leaf == "weight" and t.dim() == 1):
            values[name] = torch.empty(t.shape).uniform_(0.5, 1.5, generator=g)
        elif t.dim() == 1:
            values[name] = torch.empty(t.shape).uniform_(-0.2, 0.2, generator=g)
        else:
            bound = (6.0 / t[0].numel()) ** 0.5
            values[name] = torch.empty(t.shape).uniform_(-bound, bound, generator=g)
    return values


def relative_error(actual: Tensor, expected: Tensor) -> float:
    assert actual.shape == expected.shape
    return ((actual - expected).abs().max() / expected.abs().max()).item()


PARITY = [
    ("resnet18", (40, 48)),
    ("resnet50", (40, 48)),
    ("vgg16_bn", (64, 72)),
    ("densenet121", (40, 48)),
    ("mobilenet_v2", (40, 48)),
    ("alexnet", (96, 104)),
]


@pytest.mark.parametrize(("arch", "size"), PARITY)
def test_reference_placement_matches_the_reference_and_the_zoo(
    arch: str, size: tuple[int, int], no_random_init: None
) -> None:
    reference = getattr(antialiased_cnns, arch)(filter_size=4, num_classes=NUM_CLASSES)
    result = reference.load_state_dict(
        random_values(reference.state_dict(), seed=len(arch)), strict=False
    )
    assert not result.unexpected_keys and all(
        k.endswith((".filt", "num_batches_tracked")) for k in result.missing_keys
    )
    reference.eval()

    baseline = getattr(torchvision.models, arch)(weights=None, num_classes=NUM_CLASSES)
    # The reference's weights in torchvision's names, through the zoo's documented remapping.
    baseline.load_state_dict(
        zoo.remap_reference_state_dict(reference.state_dict(), baseline), strict=True
    )
    converted = convert(baseline, 4, placement="reference", layout=LAYOUTS[arch]).eval()
    assert_same_state(baseline, converted)

    ours = zoo.get_model(arch, filter_size=4, num_classes=NUM_CLASSES)
    ours.load_state_dict(baseline.state_dict(), strict=True)
    ours.eval()

    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected, actual, zoo_logits = reference(x), converted(x), ours(x)
    assert torch.isfinite(expected).all() and expected.abs().max() > 0
    assert relative_error(actual, expected) <= 1e-5
    assert relative_error(actual, zoo_logits) <= 1e-5


def test_reference_resnet_layout_in_detail() -> None:
    model = convert(
        torchvision.models.resnet50(weights=None, num_classes=NUM_CLASSES),
        placement="reference",
        layout=LAYOUTS["resnet50"],
    )
    assert isinstance(model.maxpool, MaxBlurPool2d) and model.maxpool.kernel_size == [2, 2]
    assert model.layer2[0].conv2.stride == (1, 1)
    assert isinstance(model.layer2[0].conv3, BlurConv2d) and model.layer2[0].conv3.blur.stride == [
        2,
        2,
    ]
    assert isinstance(model.layer2[0].downsample[0], BlurConv2d)
    assert (
        sum(type(m).__name__ in ("BlurPool2d", "MaxBlurPool2d") for m in model.modules()) == 7
    )  # as the paper's


# ----------------------------------------------------------------------------------------------------
# Every family


TORCHVISION = [
    "resnet18",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "vgg11",
    "alexnet",
    "densenet121",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "convnext_tiny",
    "shufflenet_v2_x0_5",
    "mnasnet0_5",
    "googlenet",
]
TIMM = ["resnet18", "efficientnet_b0", "convnext_atto", "regnety_002"]


@pytest.mark.parametrize("arch", TORCHVISION)
def test_torchvision_classifiers(arch: str, generator: torch.Generator) -> None:
    extra = {"init_weights": True} if arch == "googlenet" else {}
    model = getattr(torchvision.models, arch)(weights=None, num_classes=NUM_CLASSES, **extra)
    converted, report = convert_with_report(model)
    assert_same_state(model, converted)
    assert_fully_reported(model, converted, report)
    assert (
        not report.graph_modules and not report.untraced
    )  # all of them trace, no GraphModule needed
    assert not any(c.placement.startswith("before (fallback") for c in report.converted)
    # 32x32 inputs, but AlexNet's and GoogLeNet's unpadded pools need more than 32 pixels
    assert_trains_and_evaluates(
        converted, generator, 64 if arch in ("alexnet", "googlenet") else 32
    )


@pytest.mark.parametrize("arch", TIMM)
def test_timm_models(arch: str, generator: torch.Generator) -> None:
    model = timm.create_model(arch, pretrained=False, num_classes=NUM_CLASSES)
    converted, report = convert_with_report(model)
    assert_same_state(model, converted)
    assert_fully_reported(model, converted, report)
    assert not report.graph_modules and not report.untraced
    assert not any(c.placement.startswith("before (fallback") for c in report.converted)
    assert_trains_and_evaluates(converted, generator)


def test_polyphase_method_makes_resnet18_exactly_shift_invariant() -> None:
    """With APS (Chaman & Dokmanic, 2021) in every subsampling place, stem included, and circular
    padding, a torchvision ResNet-18 is exactly invariant to circular shifts (REFERENCE.md section 4)."""
    model = torchvision.models.resnet18(weights=None, num_classes=NUM_CLASSES)
    converted = convert(
        model, method="aps", antialias_stem=True, conv_padding_mode="circular", pad_mode="circular"
    )
    converted = converted.double().eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        logits = converted(x)
        for shift in [(1, 0), (5, 7), (31, 2)]:
            torch.testing.assert_close(
                converted(torch.roll(x, shift, (2, 3))), logits, rtol=0, atol=1e-10
            )


# ----------------------------------------------------------------------------------------------------
# Detection and segmentation backbones


@pytest.mark.parametrize("arch", ["fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn"])
def test_detection_backbones(arch: str, generator: torch.Generator) -> None:
    model = getattr(torchvision.models.detection, arch)(
        weights=None, weights_backbone=None, num_classes=3, min_size=64, max_size=64
    ).eval()
    converted, report = convert_with_report(model)
    assert report.untraced[0][0] == ""  # the detector is not traceable as a whole; its backbone is
    assert_same_state(model, converted)
    assert_fully_reported(model, converted, report)
    body = {c.name for c in report.converted if c.name.startswith("backbone.body.")}
    assert len(body) == 7  # stem max pool, and a strided conv + shortcut in each of 3 stages
    x = torch.randn(1, 3, 64, 64, generator=generator)
    with torch.no_grad():
        before, after = model.backbone(x), converted.backbone(x)
        detections = converted([x[0]])
    assert {k: v.shape for k, v in after.items()} == {k: v.shape for k, v in before.items()}
    assert {"boxes", "labels", "scores"} <= set(detections[0])


@pytest.mark.parametrize("arch", ["deeplabv3_resnet50", "fcn_resnet50"])
def test_segmentation_backbones(arch: str, generator: torch.Generator) -> None:
    model = getattr(torchvision.models.segmentation, arch)(
        weights=None, weights_backbone=None, num_classes=3
    ).eval()
    converted, report = convert_with_report(model)
    assert_same_state(model, converted)
    assert_fully_reported(model, converted, report)
    # layer3 and layer4 trade their stride for dilation: left alone, and said so
    assert any(s.reason == "dilated convolution" for s in report.skipped)
    x = torch.randn(1, 3, 64, 64, generator=generator)
    with torch.no_grad():
        assert converted(x)["out"].shape == model(x)["out"].shape == (1, 3, 64, 64)
