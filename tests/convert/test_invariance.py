"""The circular=True self-check (antialias/_invariance.py): shifts of one sample, the total stride
and a large odd one on a non-square input; a model that fails it, or cannot be checked, is refused,
never returned."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from antialias import convert, convert_with_report
from antialias.conversion import check_circular_invariance


class _Mean(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.mean((2, 3))


class _Flatten2x2(nn.Module):
    """Invariant to shifts by one sample of a 2x2 map's period only when the map is square: a head
    that flattens a map (VGG's) depends on where the content lies."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1, padding_mode="circular")

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(self.conv(x), 2).flatten(1)


def test_an_invariant_model_is_checked_on_a_non_square_input() -> None:
    result = check_circular_invariance(_Mean(), torch.randn(1, 3, 16, 16))
    assert result.startswith("checked")
    assert "(1, 3, 16, 17)" in result  # total stride 1: the last side one longer
    assert "(1, 1)" in result


def test_the_check_reads_the_total_stride_and_uses_it() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 4, stride=4), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    aa, report = convert_with_report(net, method="aps", circular=True)
    assert "(4, 4)" in report.invariance and "(1, 3, 64, 68)" in report.invariance


def test_a_position_dependent_head_is_refused() -> None:
    with pytest.raises(ValueError, match="not invariant to circular shifts"):
        check_circular_invariance(_Flatten2x2(), torch.randn(1, 3, 8, 8))


def test_a_model_whose_forward_fails_is_refused() -> None:
    class Fixed(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            if x.shape[-1] != 5:
                raise RuntimeError("needs width 5")
            return x

    with pytest.raises(ValueError, match="needs width 5.*cannot be checked"):
        check_circular_invariance(Fixed(), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="holds no tensor"):
        check_circular_invariance(nn.Sequential(nn.Flatten(0), _None()), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="tensor as the first example input"):
        check_circular_invariance(_Mean(), ("not a tensor",))


class _None(nn.Module):
    def forward(self, x: Tensor) -> None:
        return None


def test_modes_are_restored() -> None:
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), _Mean()).train()
    check_circular_invariance(net, torch.randn(2, 3, 8, 8))
    assert all(m.training for m in net.modules())


def test_convnext_tiny_converts_to_an_exactly_invariant_model() -> None:
    """Its kernel == stride convolutions are anchored (no map shrinks): exactly invariant."""
    torch.manual_seed(0)
    model = torchvision.models.convnext_tiny(num_classes=10).eval()
    aa, report = convert_with_report(model, method="aps", circular=True)
    assert report.invariance.startswith("checked")
    assert len(report.converted) == 4
    x = torch.randn(1, 3, 96, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = aa(x)
        for shift in [(1, 0), (5, 7), (32, 32), (47, 93)]:
            torch.testing.assert_close(
                aa(torch.roll(x, shift, (2, 3))), logits, rtol=1e-5, atol=1e-6
            )


def test_vgg_is_refused() -> None:
    """VGG's head flattens an adaptive 7x7 map: not invariant to shifts by the total stride."""
    model = torchvision.models.vgg11_bn(num_classes=10).eval()
    with pytest.raises(ValueError, match=r"VGG is not invariant to circular shifts: a shift by \("):
        convert(model, method="aps", circular=True)
