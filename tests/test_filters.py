import math

import pytest
import torch

from antialias.filters import FAMILIES, filter_name, get_kernel, get_taps

# The reference's hand-typed table (Zhang 2019, antialiased-cnns blurpool.py), sizes 1..7.
REFERENCE_TABLE = {
    1: [1.0],
    2: [1.0, 1.0],
    3: [1.0, 2.0, 1.0],
    4: [1.0, 3.0, 3.0, 1.0],
    5: [1.0, 4.0, 6.0, 4.0, 1.0],
    6: [1.0, 5.0, 10.0, 10.0, 5.0, 1.0],
    7: [1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0],
}


@pytest.mark.parametrize("size", range(1, 8))
def test_binomial_equals_reference_table(size):
    row = REFERENCE_TABLE[size]
    expected = tuple(v / sum(row) for v in row)
    assert get_taps(size) == pytest.approx(expected, abs=0, rel=1e-15)
    assert get_taps(f"binomial-{size}") == get_taps(size)


@pytest.mark.parametrize("size", [1, 8, 11, 20])
def test_binomial_any_size(size):
    taps = get_taps(size)
    assert len(taps) == size
    assert math.fsum(taps) == pytest.approx(1.0)
    assert taps == tuple(reversed(taps))
    assert taps[0] == pytest.approx(1 / 2 ** (size - 1))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("box-3", [1, 1, 1]),
        ("triangle-3", [1, 2, 1]),
        ("triangle-4", [1, 2, 2, 1]),
        ("triangle-5", [1, 2, 3, 2, 1]),
        ([2, 2], [1, 1]),
        (torch.tensor([1.0, 3.0]), [1, 3]),
    ],
)
def test_families_and_taps(spec, expected):
    assert get_taps(spec) == pytest.approx([v / sum(expected) for v in expected])


def test_gaussian():
    taps = get_taps("gaussian-5-1.0")
    raw = [math.exp(-((i - 2) ** 2) / 2) for i in range(5)]
    assert taps == pytest.approx([v / sum(raw) for v in raw])
    assert len(get_taps("gaussian-7")) == 7
    assert all(f in FAMILIES for f in ("binomial", "box", "triangle", "gaussian"))


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_kernel_is_outer_product(ndim):
    kernel = get_kernel(4, ndim, dtype=torch.float64)
    assert kernel.shape == (4,) * ndim
    assert kernel.sum().item() == pytest.approx(1.0)
    taps = torch.tensor(get_taps(4), dtype=torch.float64)
    if ndim == 2:
        torch.testing.assert_close(kernel, torch.outer(taps, taps))


def test_filter_name():
    assert filter_name(4) == "4"
    assert filter_name("box-2") == "'box-2'"
    assert filter_name([1, 1]) == "taps=[0.5, 0.5]"


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        (0, ValueError, "filter_size must be >= 1, got 0"),
        (-3, ValueError, "filter_size must be >= 1, got -3"),
        (True, TypeError, "got True"),
        (2.5, TypeError, "got float"),
        ([], ValueError, "must not be empty"),
        ([1.0, -1.0], ValueError, "non-negative"),
        ([0.0, 0.0], ValueError, "positive sum"),
        ([1.0, float("nan")], ValueError, "finite"),
        (["a"], TypeError, "must be numbers"),
        ("hat-3", ValueError, "family in"),
        ("box", ValueError, "'<family>-<k>'"),
        ("box-0", ValueError, ">= 1, got 0"),
        ("box-3-1.0", ValueError, "only the gaussian family takes a sigma"),
        (torch.ones(2, 2), ValueError, "must be 1D"),
    ],
)
def test_bad_filters(spec, error, match):
    with pytest.raises(error, match=match):
        get_taps(spec)


def test_bad_kernel_ndim():
    with pytest.raises(ValueError, match="ndim must be 1, 2 or 3, got 4"):
        get_kernel(3, 4)


def test_huge_sizes_and_taps_are_one_line_value_errors() -> None:
    from antialias.layers import BlurPool2d

    with pytest.raises(ValueError, match="filter_size must be at most 1024 taps, got 1000000"):
        BlurPool2d(3, filter_size=10**6)
    with pytest.raises(ValueError, match="at most 1024 taps, got 2000"):
        get_taps("box-2000")
    with pytest.raises(ValueError, match="too large for a float"):
        get_taps([10**400, 1])
    assert get_taps(1024)[0] > 0  # the largest binomial filter is still finite
    assert get_taps([1e308, 1e308]) == (0.5, 0.5)  # their sum overflows; their ratio does not
    assert list(BlurPool2d(3, filter_size=[1e308, 1e308]).taps) == [0.5, 0.5]
