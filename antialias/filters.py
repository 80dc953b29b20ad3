"""Low-pass filter taps for anti-aliased downsampling and upsampling.

A filter is described by a :data:`FilterSpec` and resolved to a tuple of 1D taps that sum to 1 by
:func:`get_taps`. Multi-dimensional kernels are outer products of the 1D taps (:func:`get_kernel`);
the layers never build them, they apply the 1D taps once per axis (the kernels are separable).

Filter families (``k`` taps):

- ``binomial``: row ``k - 1`` of Pascal's triangle, ``k = 1..7`` equal the reference's table
  (``[1]``, ``[1, 1]``, ``[1, 2, 1]``, ``[1, 3, 3, 1]``, ...). The paper's Rect-2, Tri-3, Tri-4 and Bin-5
  are ``binomial`` of size 2, 3, 4 and 5 (they are all binomial filters).
- ``box``: ``k`` equal taps.
- ``triangle``: ``[1, 2, ..., m, ..., 2, 1]`` (``min(i + 1, k - i)``).
- ``gaussian``: samples of a Gaussian at ``i - (k - 1) / 2``; ``sigma`` defaults to OpenCV's rule
  ``0.3 * ((k - 1) / 2 - 1) + 0.8``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["FAMILIES", "FilterSpec", "filter_name", "get_kernel", "get_taps"]

#: The filter families that a ``"<family>-<k>"`` filter string names.
FAMILIES = ("binomial", "box", "triangle", "gaussian")

FilterSpec = int | str | Sequence[float] | Tensor
"""A filter, given as an ``int`` k (binomial of k taps), a string ``"<family>-<k>"`` (``"gaussian-<k>-<sigma>"``
for a chosen sigma), or explicit non-negative taps (normalized to sum 1)."""

_SPEC_RE = re.compile(r"^(?P<family>[a-z]+)-(?P<size>\d+)(?:-(?P<sigma>[0-9]*\.?[0-9]+))?$")


def _binomial(size: int) -> list[float]:
    return [float(math.comb(size - 1, i)) for i in range(size)]


def _box(size: int) -> list[float]:
    return [1.0] * size


def _triangle(size: int) -> list[float]:
    return [float(min(i + 1, size - i)) for i in range(size)]


def _gaussian(size: int, sigma: float | None = None) -> list[float]:
    if sigma is None:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    if not sigma > 0:
        raise ValueError(f"gaussian sigma must be > 0, got {sigma}")
    center = (size - 1) / 2
    return [math.exp(-((i - center) ** 2) / (2 * sigma**2)) for i in range(size)]


_MAX_FILTER_SIZE = 1024
"""The largest filter size (taps per axis); a binomial filter's taps overflow a float beyond it."""


def _check_size(size: object, what: str = "filter_size") -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"{what} must be an int >= 1, got {size!r}")
    if size < 1:
        raise ValueError(f"{what} must be >= 1, got {size}")
    if size > _MAX_FILTER_SIZE:
        raise ValueError(f"{what} must be at most {_MAX_FILTER_SIZE} taps, got {size}")
    return size


def _normalize(taps: Sequence[float]) -> tuple[float, ...]:
    if len(taps) == 0:
        raise ValueError("filter taps must not be empty")
    if len(taps) > _MAX_FILTER_SIZE:
        raise ValueError(f"filter taps must be at most {_MAX_FILTER_SIZE}, got {len(taps)}")
    try:
        values = [float(t) for t in taps]
    except OverflowError:
        raise ValueError(
            f"filter taps must be finite floats; one of the {len(taps)} taps is too large for a float"
        ) from None
    if not all(math.isfinite(t) for t in values):
        raise ValueError(f"filter taps must be finite, got {values}")
    if any(t < 0 for t in values):
        raise ValueError(f"filter taps must be non-negative, got {values}")
    try:
        total = math.fsum(values)
    except OverflowError:  # huge taps: their ratios are what counts
        largest = max(values)
        values = [t / largest for t in values]
        total = math.fsum(values)
    if total <= 0:
        raise ValueError(f"filter taps must have a positive sum, got {values}")
    return tuple(t / total for t in values)


def get_taps(spec: FilterSpec) -> tuple[float, ...]:
    """Resolve a filter specification to 1D taps that sum to 1.

    Args:
        spec: an ``int`` k >= 1 (binomial filter of k taps), ``"<family>-<k>"`` with a family in
            :data:`FAMILIES` (``"gaussian-5-1.2"`` sets sigma), or a sequence/1D tensor of non-negative taps.

    Returns:
        The normalized taps as Python floats (double precision).

    Example:
        >>> get_taps(4)
        (0.125, 0.375, 0.375, 0.125)
        >>> get_taps("box-2")
        (0.5, 0.5)
    """
    if isinstance(spec, bool):
        raise TypeError(f"filter_size must be an int, a family string or taps, got {spec!r}")
    if isinstance(spec, int):
        return _normalize(_binomial(_check_size(spec)))
    if isinstance(spec, str):
        match = _SPEC_RE.match(spec.strip().lower())
        if match is None or match["family"] not in FAMILIES:
            raise ValueError(
                f"filter_size string must look like '<family>-<k>' with family in {FAMILIES} "
                f"(e.g. 'binomial-4', 'box-2', 'gaussian-5-1.0'), got {spec!r}"
            )
        family, size = match["family"], _check_size(int(match["size"]))
        if match["sigma"] is not None and family != "gaussian":
            raise ValueError(f"only the gaussian family takes a sigma, got {spec!r}")
        if family == "binomial":
            return _normalize(_binomial(size))
        if family == "box":
            return _normalize(_box(size))
        if family == "triangle":
            return _normalize(_triangle(size))
        sigma = float(match["sigma"]) if match["sigma"] is not None else None
        return _normalize(_gaussian(size, sigma))
    if isinstance(spec, Tensor):
        if (
            spec.dim() != 1
            or spec.is_complex()
            or not (spec.is_floating_point() or spec.dtype in (torch.int32, torch.int64))
        ):
            raise ValueError(
                f"filter taps tensor must be 1D and real, got shape {tuple(spec.shape)} and dtype {spec.dtype}"
            )
        return _normalize(spec.detach().cpu().double().tolist())
    if isinstance(spec, Sequence) and not isinstance(
        spec, str
    ):  # str returned above; mypy keeps it in
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in spec):
            raise TypeError(f"filter taps must be numbers, got {list(spec)!r}")
        return _normalize(spec)
    raise TypeError(
        f"filter_size must be an int, a family string or a sequence of taps, got {type(spec).__name__}"
    )


def filter_name(spec: FilterSpec) -> str:
    """A short, readable name of a filter for ``repr`` and reports (``4``, ``'box-3'``, ``taps=[...]``)."""
    if isinstance(spec, (int, str)) and not isinstance(spec, bool):
        return repr(spec)
    taps = get_taps(spec)
    return "taps=[" + ", ".join(f"{t:.4g}" for t in taps) + "]"


def get_kernel(
    spec: FilterSpec,
    ndim: int = 2,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """The ``ndim``-dimensional kernel: the outer product of the 1D taps, summing to 1.

    Args:
        spec: the filter, see :func:`get_taps`.
        ndim: number of spatial dimensions (1, 2 or 3).
        device: device of the result.
        dtype: dtype of the result (default: ``torch.get_default_dtype()``).

    Shape:
        - Output: ``(k,) * ndim``.

    Example:
        >>> get_kernel(2, ndim=2)
        tensor([[0.2500, 0.2500],
                [0.2500, 0.2500]])
    """
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    taps = torch.tensor(get_taps(spec), dtype=torch.float64)
    kernel = taps
    for _ in range(ndim - 1):
        kernel = kernel.unsqueeze(-1) * taps
    return kernel.to(device=device, dtype=dtype or torch.get_default_dtype())
