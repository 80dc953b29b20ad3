"""antialias._rewrite: the Converter's choices for pools (size rules, options kept, commuting 1x1
convolutions) and its report of what it did not change."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from antialias import convert_with_report
from antialias.layers import BlurConv2d, blur_pool2d


@pytest.mark.parametrize(
    "pool",
    [
        nn.AvgPool2d(3, 2, 1),
        nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        nn.AvgPool2d(3, 2, 1, divisor_override=2),
    ],
)
def test_an_overlapping_average_pool_keeps_its_options_at_stride_1(pool: nn.AvgPool2d) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), pool)
    aa, report = convert_with_report(net)
    dense = aa[1].pool
    assert isinstance(dense, nn.AvgPool2d) and dense.stride == 1 and dense.padding == (1, 1)
    assert (
        dense.count_include_pad == pool.count_include_pad
        and dense.divisor_override == pool.divisor_override
    )
    x = torch.randn(1, 3, 15, 15)
    y = net[0](x)
    expected = blur_pool2d(
        F.avg_pool2d(
            y,
            3,
            1,
            1,
            count_include_pad=pool.count_include_pad,
            divisor_override=pool.divisor_override,
        ),
        4,
    )
    torch.testing.assert_close(aa(x), expected)
    assert aa(x).shape == net(x).shape
    assert ("divisor_override=2 kept" in report.converted[0].placement) == (
        pool.divisor_override is not None
    )


@pytest.mark.parametrize(
    "pool",
    [nn.AvgPool2d(3, 2, ceil_mode=True), nn.AvgPool2d(2, ceil_mode=True, divisor_override=1)],
)
def test_ceil_mode_average_pools_with_partial_windows_are_left_alone(pool: nn.AvgPool2d) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), pool)
    with pytest.warns(UserWarning, match="nothing to anti-alias"):
        aa, report = convert_with_report(net)
    assert aa[1] is not pool and type(aa[1]) is nn.AvgPool2d  # a copy, unchanged
    assert (
        report.skipped[-1].name == "1" and "ceil_mode average pooling" in report.skipped[-1].reason
    )


def _transition() -> nn.Sequential:
    """DenseNet's transition: norm, act, a bias-free 1x1 conv, then AvgPool2d(2)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 4, 1, bias=False),
        nn.AvgPool2d(2),
    ).eval()


def test_the_blur_of_an_average_pool_goes_before_the_1x1_conv_that_feeds_it() -> None:
    net = _transition()
    aa, report = convert_with_report(net)
    assert isinstance(aa[3], BlurConv2d) and isinstance(aa[4], nn.Identity)
    assert "before the 1x1 convolution 3" in report.converted[0].placement
    x = torch.randn(2, 3, 17, 17)
    with torch.no_grad():
        y = net[2](net[1](net[0](x)))[
            ..., :16, :16
        ]  # floor mode: the last odd row and column dropped
        torch.testing.assert_close(
            aa(x), blur_pool2d(net[3](y), 4), rtol=1e-5, atol=1e-5
        )  # they commute
    assert sorted(aa.state_dict()) == sorted(net.state_dict())


def test_content_dependent_methods_do_not_commute() -> None:
    aa, report = convert_with_report(_transition(), method="aps")
    assert type(aa[3]) is nn.Conv2d and isinstance(aa[4], nn.Sequential)
    assert report.converted[0].name == "4"


def test_min_channels_reads_the_pool_channels_from_the_example_forward() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(4, 16, 1), nn.MaxPool2d(2)
    )
    aa, report = convert_with_report(net, min_channels=8)
    assert [c.name for c in report.converted] == ["3"]
    assert ("1", "4 channels < min_channels=8") in [(s.name, s.reason) for s in report.skipped]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, blind = convert_with_report(net, min_channels=8, example_inputs=torch.randn(1, 5, 8, 8))
    assert [c.name for c in blind.converted] == [
        "1",
        "3",
    ]  # the forward failed: counts unknown, converted
    assert blind.example_forward.startswith("failed on (1, 5, 8, 8)")
