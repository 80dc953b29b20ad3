"""antialias.layers.trim: the floor-mode size rule that converted models hold."""

from __future__ import annotations

import pytest
import torch

from antialias.layers import TrimToStride


def test_trim_to_stride_drops_what_a_floor_mode_pool_ignores() -> None:
    trim = TrimToStride((2, 3))
    assert trim(torch.randn(1, 2, 5, 7)).shape == (1, 2, 4, 6)
    assert trim(torch.randn(1, 2, 4, 6)).shape == (1, 2, 4, 6)
    assert repr(trim) == "TrimToStride(stride=(2, 3))"


def test_trim_to_stride_matches_a_floor_mode_pool() -> None:
    x = torch.randn(2, 3, 9, 11)
    pool = torch.nn.AvgPool2d(3)
    assert torch.equal(pool(TrimToStride((3, 3))(x)), pool(x))


@pytest.mark.parametrize("stride", [(), (0, 2), (2.0,), (True,)])
def test_trim_to_stride_rejects_a_bad_stride(stride: tuple) -> None:
    with pytest.raises(ValueError, match="stride must be"):
        TrimToStride(stride)
