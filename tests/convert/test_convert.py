"""antialias.conversion (convert, its report) on small hand-made networks: the rules, the report, the options, the fallbacks.

Model families (torchvision, timm, detection backbones) and the parity with the reference package are
in tests/convert/test_convert_models.py.
"""

from __future__ import annotations

import copy
import importlib
import json
import types

import pytest
import torch
from torch import fx, nn

import antialias
from antialias import convert, convert_with_report
from antialias.conversion import ConversionReport
from antialias.layers import (
    BlurConv1d,
    BlurConv2d,
    BlurPool2d,
    MaxBlurPool1d,
    MaxBlurPool2d,
    MaxBlurPool3d,
    blur_pool2d,
    factory,
)


def state_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def randomize_bn(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Give the norms non-trivial statistics, so a misplaced norm shows in the outputs."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.num_features, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
    return model


class Block2d(nn.Module):
    """A ResNet BasicBlock with a strided 3x3 conv and a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))


def net2d() -> nn.Sequential:
    """Total stride 8: a max pool, a residual block, an average pool."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        Block2d(8, 16),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
    )


def net1d() -> nn.Sequential:
    """Total stride 8: a strided conv (blur after its ReLU), a max pool, a strided 1x1 conv."""
    return nn.Sequential(
        nn.Conv1d(2, 8, 5, padding=2),
        nn.ReLU(),
        nn.Conv1d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Conv1d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool1d(3, 2, 1),
        nn.Conv1d(16, 8, 1, stride=2),
    )


# ----------------------------------------------------------------------------------------------------
# The rules


def test_paper_placement_in_a_residual_block(generator: torch.Generator) -> None:
    net = randomize_bn(net2d(), generator).eval()
    aa, report = convert_with_report(net, antialias_stem=True)
    assert isinstance(aa[3], MaxBlurPool2d) and aa[3].kernel_size == [2, 2]
    # conv -> bn -> relu -> blur: conv1 runs at stride 1, conv2 (the relu's only user) blurs its input
    assert aa[4].conv1.stride == (1, 1)
    assert isinstance(aa[4].conv2, BlurConv2d) and aa[4].conv2.blur.stride == [2, 2]
    # strided 1x1 shortcut: blur before it
    assert isinstance(aa[4].shortcut[0], BlurConv2d) and aa[4].shortcut[0].stride == (1, 1)
    # AvgPool(2) == blur k=2: a blur-pool, for the channels that arrived in the example forward; floor mode's trim
    assert isinstance(aa[7].downsample, BlurPool2d) and aa[7].downsample.channels == 16
    assert [c.name for c in report.converted] == ["3", "4.conv1", "4.shortcut.0", "7"]
    assert "after 4.relu" in report.converted[1].placement
    assert state_equal(net, aa)
    x = torch.randn(2, 3, 32, 32, generator=generator)
    assert aa(x).shape == net(x).shape == (2, 16, 4, 4)


def test_the_blur_goes_after_the_activation_not_before(generator: torch.Generator) -> None:
    """The converted block equals, by hand: conv at stride 1 -> bn -> relu -> blur -> conv2."""
    block = randomize_bn(Block2d(4, 8), generator).eval()
    aa = convert(block, antialias_stem=True).eval()
    x = torch.randn(1, 4, 16, 16, generator=generator)
    dense = block.relu(block.bn1(nn.functional.conv2d(x, block.conv1.weight, None, 1, 1)))
    main = block.bn2(nn.functional.conv2d(blur_pool2d(dense, 4), block.conv2.weight, None, 1, 1))
    short = block.shortcut[1](nn.functional.conv2d(blur_pool2d(x, 4), block.shortcut[0].weight))
    torch.testing.assert_close(aa(x), torch.relu(main + short))
    # against the placement before the activation, which the paper rejects: a different function
    wrong = convert(block, antialias_stem=True, placement="before").eval()
    assert not torch.allclose(wrong(x), aa(x), atol=1e-3)


def test_avg_pool_with_kernel_larger_than_stride_is_dense_then_blurred() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AvgPool2d(3, stride=2, padding=1))
    aa, report = convert_with_report(net)
    pool = aa[1]
    assert isinstance(pool, nn.Sequential) and list(dict(pool.named_children())) == [
        "pool",
        "downsample",
    ]
    assert (
        pool.pool.stride == 1
        and pool.pool.kernel_size == (3, 3)
        and isinstance(pool.downsample, BlurPool2d)
    )
    x = torch.randn(1, 3, 15, 15)
    assert aa(x).shape == net(x).shape
    assert report.converted[0].placement == "replaced"


def test_reference_placement_reproduces_the_resnet_stem_quirk() -> None:
    class TinyResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = Block2d(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))

    paper = convert(TinyResNet())
    reference = convert(TinyResNet(), placement="reference", layout={"maxpool": "max-kernel-2"})
    assert paper.maxpool.kernel_size == [3, 3] and paper.maxpool.padding == [1, 1]
    assert reference.maxpool.kernel_size == [2, 2] and reference.maxpool.padding == [0, 0]
    assert reference.conv1.stride == (2, 2)  # the stem stays (pool_only)
    # the engine knows no architecture: without the layout, the ResNet-like names change nothing
    plain = convert(TinyResNet(), placement="reference")
    assert plain.maxpool.kernel_size == [3, 3] and plain.maxpool.padding == [1, 1]


@pytest.mark.parametrize(
    ("layout", "match"),
    [
        (
            {"nope": "max-kernel-2"},
            "'max-kernel-2' applies to a MaxPoolNd, got 'nope' .no such module",
        ),
        ({"conv1": "max-kernel-2"}, "applies to a MaxPoolNd, got 'conv1' .Conv2d"),
        ({"maxpool": "split-stride"}, "applies to a ConvNd, got 'maxpool'"),
        ({"maxpool": "kernel-2"}, "layout must map module names to one of"),
    ],
)
def test_layout_names_real_layers(layout: dict, match: str) -> None:
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(3, 8, 3, stride=3))
    net.add_module("maxpool", nn.MaxPool2d(2))
    with pytest.raises(ValueError, match=match):
        convert(net, layout=layout)


def test_reference_placement_splits_a_stride_4_stem() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2))
    aa, report = convert_with_report(net, placement="reference", layout={"0": "split-stride"})
    assert aa[0].stride == (2, 2)
    assert (
        isinstance(aa[1], nn.Sequential)
        and isinstance(aa[1][1], BlurPool2d)
        and aa[1][1].stride == [2, 2]
    )
    x = torch.randn(1, 3, 96, 96)
    assert aa(x).shape == net(x).shape
    kept = convert(net, placement="reference", layout={"0": "split-stride"}, antialias_stem=False)
    assert kept[0].stride == (4, 4)
    assert convert(net, placement="reference")[0].stride == (4, 4)  # a stem, left alone by default


def test_one_and_three_dimensional_networks(generator: torch.Generator) -> None:
    net = randomize_bn(net1d(), generator)
    aa, report = convert_with_report(net, antialias_stem=True)
    assert [c.name for c in report.converted] == ["2", "7", "8"]
    assert (
        aa[2].stride == (1,) and isinstance(aa[5], BlurConv1d) and isinstance(aa[7], MaxBlurPool1d)
    )
    assert isinstance(aa[8], BlurConv1d)
    x = torch.randn(2, 2, 40, generator=generator)
    assert aa(x).shape == net(x).shape

    net3 = nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool3d((1, 2, 2)),
        nn.Conv3d(4, 8, 3, stride=2, padding=1),
        nn.BatchNorm3d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
    )
    aa3, report3 = convert_with_report(net3)
    assert isinstance(aa3[2], MaxBlurPool3d) and aa3[2].stride == [1, 2, 2]
    assert aa3[3].stride == (1, 1, 1) and isinstance(aa3[5], nn.Sequential)  # ReLU, then the blur
    assert state_equal(net3, aa3)
    x3 = torch.randn(2, 1, 6, 16, 16, generator=generator, requires_grad=True)
    out = aa3(x3)
    assert out.shape == net3(x3).shape
    out.sum().backward()
    assert x3.grad is not None and torch.isfinite(x3.grad).all()


# ----------------------------------------------------------------------------------------------------
# Exact equivariance with circular padding


@pytest.mark.parametrize(
    ("make", "shape", "dims"), [(net2d, (2, 3, 32, 32), (2, 3)), (net1d, (2, 2, 64), (2,))]
)
def test_circular_padding_makes_the_network_exactly_equivariant(
    make, shape, dims, generator: torch.Generator
) -> None:
    net = randomize_bn(make(), generator).double().eval()
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    stride = 8  # the networks' total stride

    def shift_error(model: nn.Module, shift: int, out_shift: int) -> float:
        y = model(x)
        y_shifted = model(torch.roll(x, (shift,) * len(dims), dims))
        return (
            (torch.roll(y, (out_shift,) * len(dims), dims) - y_shifted).abs().max() / y.abs().max()
        ).item()

    aa = convert(net, antialias_stem=True, conv_padding_mode="circular", pad_mode="circular").eval()
    assert shift_error(aa, stride, 1) < 1e-12
    # The guarantee needs circular blur padding too: reflect padding breaks it at the borders.
    reflect = convert(
        net, antialias_stem=True, conv_padding_mode="circular", pad_mode="reflect"
    ).eval()
    assert shift_error(reflect, stride, 1) > 1e-4
    # A one-sample shift changes the anti-aliased output far less than the baseline's (paper, Fig. 5).
    baseline = copy.deepcopy(net)
    for m in baseline.modules():
        if isinstance(m, nn.modules.conv._ConvNd) and any(p > 0 for p in m.padding):
            m.padding_mode = "circular"
    assert shift_error(aa, 1, 0) * 3 < shift_error(baseline, 1, 0)


def test_conv_padding_mode_is_reported() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.MaxPool2d(2))
    aa, report = convert_with_report(net, conv_padding_mode="circular")
    # every convolution (the unpadded one changes nothing): one rule, shared with the zoo
    assert aa[0].padding_mode == "circular" and aa[1].padding_mode == "circular"
    assert report.padding_mode == ["0", "1"]


# ----------------------------------------------------------------------------------------------------
# What is left alone, and the report


def test_left_alone_layers_are_reported_with_their_reason() -> None:
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, 16, 16, stride=16)
            self.dilated = nn.Conv2d(16, 16, 3, padding=2, dilation=2)
            self.thin = nn.Conv2d(16, 4, 3, stride=2, padding=1)
            self.up = nn.ConvTranspose2d(4, 16, 2, stride=2)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(self.up(self.thin(self.dilated(self.patch(x)))))

    aa, report = convert_with_report(Mixed(), min_channels=8)
    reasons = {s.name: s.reason for s in report.skipped}
    assert "patch" not in reasons  # a patch embedding: low-pass before it, at stride 1
    assert reasons["dilated"] == "dilated convolution"
    assert reasons["thin"] == "4 channels < min_channels=8"
    assert reasons["up"].startswith("transposed convolution")
    assert [c.name for c in report.converted] == ["patch", "pool"]
    assert "before the patch embedding" in report.converted[0].placement
    assert isinstance(aa.pool, MaxBlurPool2d) and aa.pool.channels == 16
    assert aa(torch.randn(1, 3, 64, 64)).shape == (1, 16, 2, 2)
    text = str(report)
    assert "patch embedding" in text and "pool" in text
    json.dumps(report.to_dict())  # JSON-ready


def test_include_and_exclude_patterns() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.MaxPool2d(2),
    )
    _, report = convert_with_report(net, exclude="3")
    assert [c.name for c in report.converted] == ["1"]
    assert {s.name: s.reason for s in report.skipped}["3"] == "excluded by pattern '3'"
    _, report = convert_with_report(net, include=["3", "9*"])
    assert [c.name for c in report.converted] == ["3"]
    assert "not matched by include" in {s.name: s.reason for s in report.skipped}["1"]


def test_stem_is_skipped_by_default_and_converted_on_request() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)
    )
    aa, report = convert_with_report(net)
    assert (
        aa[0].stride == (2, 2)
        and {s.name: s.reason for s in report.skipped}["0"] == "stem (antialias_stem=False)"
    )
    aa = convert(net, antialias_stem=True)
    assert (
        aa[0].stride == (1, 1)
        and isinstance(aa[2], nn.Sequential)
        and isinstance(aa[2][1], BlurPool2d)
    )
    assert aa(torch.randn(1, 3, 32, 32)).shape == net(torch.randn(1, 3, 32, 32)).shape


def test_nothing_to_convert_warns_and_returns_the_model_unchanged() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    with pytest.warns(UserWarning, match="nothing to anti-alias"):
        aa = convert(net)
    assert state_equal(net, aa) and repr(aa) == repr(net)
    converted = convert(net2d())
    with pytest.warns(
        UserWarning, match="nothing to anti-alias"
    ):  # converting twice changes nothing
        again = convert(converted)
    assert repr(again) == repr(converted)


def test_not_in_place_by_default() -> None:
    net = net2d()
    aa = convert(net)
    assert isinstance(net[3], nn.MaxPool2d) and isinstance(aa[3], MaxBlurPool2d)
    assert aa[4].conv1.weight is not net[4].conv1.weight
    same = convert(net, inplace=True)
    assert same is net and isinstance(net[3], MaxBlurPool2d)


def test_bad_arguments_raise_clear_errors() -> None:
    net = net2d()
    with pytest.raises(ValueError, match="method must be one of"):
        convert(net, method="nope")
    with pytest.raises(ValueError, match="placement must be one of"):
        convert(net, placement="anywhere")
    with pytest.raises(ValueError, match="pad_mode"):
        convert(net, pad_mode="mirror")
    with pytest.raises(ValueError, match="conv_padding_mode"):
        convert(net, conv_padding_mode="wrap")
    with pytest.raises(ValueError, match="min_channels"):
        convert(net, min_channels=-1)
    with pytest.raises(TypeError, match="nn.Module"):
        convert("resnet18")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="include"):
        convert(net, include=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        convert(net, filter_size=0)


# ----------------------------------------------------------------------------------------------------
# Fallbacks: untraceable models, complex graphs, other methods


class DataDependent(nn.Module):
    """Control flow on tensor values: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            x = -x
        return self.pool(self.act(self.conv(x)))


def test_untraceable_model_falls_back_to_blur_before_the_conv() -> None:
    model = nn.Sequential(nn.Conv2d(3, 3, 3, stride=2, padding=1), DataDependent())
    aa, report = convert_with_report(model)
    assert [name for name, _ in report.untraced] == ["", "1"]  # the model, then its child
    assert isinstance(aa[1].conv, BlurConv2d) and isinstance(aa[1].pool, MaxBlurPool2d)
    placement = {c.name: c.placement for c in report.converted}
    assert placement["1.conv"].startswith("before (fallback: not traceable")
    assert {s.name: s.reason for s in report.skipped}[
        "0"
    ] == "stem (antialias_stem=False)"  # traced part: the stem
    x = torch.randn(1, 3, 32, 32)
    assert aa(x).shape == model(x).shape


class TwoHeads(nn.Module):
    """The strided conv's output feeds two layers: only a new graph node can take the blur."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.down(self.stem(x)))
        return self.a(y) + self.b(y)


def test_complex_graph_gets_a_graph_module(generator: torch.Generator) -> None:
    model = nn.Sequential(TwoHeads(), nn.ReLU())
    randomize_bn(model, generator).eval()
    aa, report = convert_with_report(model, antialias_stem=True)
    assert report.graph_modules == ["0"] and isinstance(aa[0], fx.GraphModule)
    assert "GraphModule 0" in report.converted[0].placement
    assert state_equal(model, aa)
    aa.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16, generator=generator)
    inner = model[0]
    y = inner.norm(nn.functional.conv2d(inner.stem(x), inner.down.weight, inner.down.bias, 1, 1))
    y = blur_pool2d(y, 4)
    torch.testing.assert_close(aa(x), torch.relu(inner.a(y) + inner.b(y)))


def test_registered_methods_plug_in_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    class Subsample(nn.Module):
        def __init__(self, ndim: int, channels: int | None, stride: int) -> None:
            super().__init__()
            self.channels, self.stride = channels, stride

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[..., :: self.stride, :: self.stride]

    def make(ndim, channels, stride, *, filter_size, pad_mode, **kwargs):
        return Subsample(ndim, channels, stride)

    monkeypatch.setitem(factory._FACTORIES, "test-subsample", make)
    net = net2d().eval()
    aa, report = convert_with_report(net, method="test-subsample", antialias_stem=True)
    assert isinstance(aa[3], nn.Sequential) and isinstance(aa[3].downsample, Subsample)
    assert aa[3].pool.stride == 1
    assert isinstance(aa[4].conv2.blur, Subsample) and isinstance(aa[4].shortcut[0].blur, Subsample)
    assert isinstance(aa[7].downsample, Subsample)
    assert len(report.converted) == 4 and state_equal(net, aa)
    x = torch.randn(1, 3, 32, 32)
    assert aa(x).shape == net(x).shape


def test_report_type_and_public_names() -> None:
    assert antialias.convert is convert and "convert" in antialias.__all__
    # the function and the module that holds it are two importable names
    conversion = importlib.import_module("antialias.conversion")
    assert conversion.convert is convert and conversion.ConversionReport is ConversionReport
    assert callable(antialias.convert) and not isinstance(antialias.convert, types.ModuleType)
    assert "convert_with_report" in antialias.__all__ and "ConversionReport" in antialias.__all__
    _, report = convert_with_report(net2d())
    assert isinstance(report, ConversionReport)
    edits = {e.name: e for e in report.edits}
    assert "MaxPool2d" in edits["3"].old and "MaxBlurPool2d" in edits["3"].new
    assert "BlurConv2d" in edits["4.conv2"].new  # the module that took the blur is listed too


def test_conv_subclass_keeps_its_class_and_gets_the_blur_after_its_activation() -> None:
    class ScaledConv(nn.Conv2d):  # a library's conv with its own forward (as timm's Conv2dSame)
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), ScaledConv(4, 8, 1, stride=2), nn.BatchNorm2d(8), nn.ReLU()
    )
    aa = convert(net, antialias_stem=True)
    assert type(aa[1]) is ScaledConv and aa[1].stride == (
        1,
        1,
    )  # not a BlurConv2d: that would drop its forward
    assert isinstance(aa[3], nn.Sequential) and isinstance(aa[3][1], BlurPool2d)
    x = torch.randn(1, 3, 16, 16)
    assert aa(x).shape == net(x).shape


class _SharedPool(nn.Module):
    """One MaxPool2d instance registered in two blocks and called by both."""

    def __init__(self) -> None:
        super().__init__()
        pool = nn.MaxPool2d(2)
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), pool)
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_a_module_used_at_two_places_is_replaced_at_both() -> None:
    aa, report = convert_with_report(_SharedPool())
    assert isinstance(aa.a[1], MaxBlurPool2d) and aa.b[1] is aa.a[1]
    (row,) = report.converted
    assert row.name == "a.1" and "the same module at b.1, edited there too" in row.placement


class _AliasedStem(nn.Module):
    """A strided conv registered as ``stem`` and as ``features.0``; the forward runs the latter."""

    def __init__(self, control_flow: bool) -> None:
        super().__init__()
        conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.stem = conv
        self.features = nn.Sequential(conv, nn.BatchNorm2d(8))
        self.control_flow = control_flow

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.control_flow and x.sum() < -1e30:  # data-dependent: not traceable by torch.fx
            return x
        return self.features(x)


@pytest.mark.parametrize(
    ("control_flow", "placement"), [(True, "paper"), (False, "before"), (False, "paper")]
)
def test_antialias_stem_on_a_conv_with_two_names_edits_the_one_that_runs(
    control_flow: bool, placement: str
) -> None:
    net = _AliasedStem(control_flow).eval()
    aa, report = convert_with_report(net, antialias_stem=True, placement=placement)
    x = torch.randn(1, 3, 16, 16)
    assert aa(x).shape == net(x).shape
    assert not torch.allclose(aa(x), net(x))  # the forward runs the converted convolution
    (row,) = report.converted
    assert "the same module at features.0" in row.placement


def test_scripted_traced_and_exported_models_are_refused_with_what_to_pass() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()
    x = torch.randn(1, 3, 16, 16)
    exported = torch.export.export(net, (x,))
    for compiled in (
        torch.jit.script(net),
        torch.jit.trace(net, x),
        exported,
        exported.module(),
    ):
        with pytest.raises(TypeError, match="cannot edit a .*pass the nn.Module it was made from"):
            convert(compiled)


def test_report_lines_read_like_a_diff_within_100_characters() -> None:
    timm = pytest.importorskip("timm")
    _, report = convert_with_report(timm.create_model("mobilenetv3_small_100"))
    lines = str(report).splitlines()
    assert max(len(line) for line in lines) <= 100
    se = next(line for line in lines if line.startswith("  blocks.1.0.conv_dw:"))
    # the conv's stride change and the blur added after it; the reused slot is named as empty
    assert se == (
        "  blocks.1.0.conv_dw: Conv2d(k=3, s=2->1) + BlurPool2d(s=2), in the empty Identity slot se"
    )
    _, report = convert_with_report(net2d(), antialias_stem=True)
    text = str(report)
    assert "  3: MaxPool2d(k=2, s=2) -> MaxBlurPool2d(k=2, s=2), replaced" in text
    assert all(len(line) <= 100 for line in text.splitlines())
