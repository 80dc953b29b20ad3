"""Build downsampling layers by method name, so model transforms stay independent of the method.

``convert(model, method=...)`` and the zoo ask this module for "the layer that subsamples by
``stride`` after a dense operator". ``"blur"`` (blur-pool) is built in; other modules register more
methods with :func:`register_downsample` (the polyphase layers register ``"aps"`` and ``"lps"``;
``fourier.py`` ``"flc"`` and ``"asap"``; ``wavelet.py`` ``"wavelet"``; ``adaptive.py``
``"adaptive"``).

What the factories receive: ``filter_size`` and ``pad_mode`` always (callers pass their defaults, 4
and ``"reflect"``), plus any method option. Each method reads them as it can: ``"flc"``/``"asap"``
ignore both (ideal low-pass, circular FFT); ``"wavelet"`` picks its wavelet by the number of taps (2
Haar, 4 db2, 6 db3) unless ``wavelet=`` is given; ``"adaptive"`` takes ``filter_size`` as its ``k``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from antialias.filters import FilterSpec
from antialias.layers._checks import IntOrTuple, blur_pads, check_tuple, compact
from antialias.layers.blurpool import BLUR_POOL, MAX_BLUR_POOL

__all__ = [
    "create_downsample",
    "create_max_downsample",
    "list_downsample_methods",
    "register_downsample",
]

DownsampleFactory = Callable[..., nn.Module]
_FACTORIES: dict[str, DownsampleFactory] = {}


def register_downsample(name: str, factory: DownsampleFactory) -> None:
    """Register ``factory(ndim, channels, stride, *, filter_size, pad_mode, **kwargs) ->
    nn.Module``.

    Raises:
        ValueError: if ``name`` is already registered.
    """
    if name in _FACTORIES:
        raise ValueError(f"downsample method {name!r} is already registered")
    _FACTORIES[name] = factory


def list_downsample_methods() -> list[str]:
    """The registered method names, sorted."""
    return sorted(_FACTORIES)


def create_downsample(
    method: str,
    ndim: int,
    channels: int | None,
    stride: IntOrTuple,
    *,
    filter_size: FilterSpec = 4,
    pad_mode: str = "reflect",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build the ``method`` layer that subsamples an ``ndim``-D map with ``channels`` channels by
    ``stride``.

    ``device`` and ``dtype`` place the layer's parameters, if it has any (LPS's scorer); the
    factories never see them, so parameter-free layers need not accept them. Other keyword arguments
    go to the method's factory.

    Example:
        >>> create_downsample("blur", 2, 64, 2)
        BlurPool2d(channels=64, filter_size=4, stride=2, pad_mode='reflect')
    """
    if method not in _FACTORIES:
        raise ValueError(
            f"unknown downsample method {method!r}; expected one of {list_downsample_methods()}"
        )
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    layer = _FACTORIES[method](
        ndim, channels, stride, filter_size=filter_size, pad_mode=pad_mode, **kwargs
    )
    if device is not None or dtype is not None:
        layer = layer.to(device=device, dtype=dtype)
    return layer


_MAX_POOL: dict[int, type[nn.Module]] = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_CIRCULAR_PAD: dict[int, type[nn.Module]] = {
    1: nn.CircularPad1d,
    2: nn.CircularPad2d,
    3: nn.CircularPad3d,
}
_REPLICATE_PAD: dict[int, type[nn.Module]] = {
    1: nn.ReplicationPad1d,
    2: nn.ReplicationPad2d,
    3: nn.ReplicationPad3d,
}


def _ceil_mode_reproducible(
    kernel: Sequence[int], padding: Sequence[int], stride: Sequence[int]
) -> bool:
    """Whether end padding reproduces ``ceil_mode``'s output size: ``kernel_size >= padding +
    stride`` on every axis (torch drops a last window that starts in the padding)."""
    return all(k >= p + s for k, p, s in zip(kernel, padding, stride, strict=True))


def _wrap_pad(kernel: Sequence[int]) -> nn.Module:
    """``CircularPadNd`` wrapping ``(k - 1) // 2`` samples before and ``k // 2`` after each axis, so
    that a stride-1 window of ``kernel`` keeps the map's size (the blur's padding rule)."""
    return _CIRCULAR_PAD[len(kernel)](tuple(p for k in reversed(kernel) for p in blur_pads(k)))


def create_max_downsample(
    method: str,
    ndim: int,
    channels: int | None,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    *,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    filter_size: FilterSpec = 4,
    pad_mode: str = "reflect",
    circular: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **kwargs: Any,
) -> nn.Module:
    """The anti-aliased replacement of ``MaxPoolNd(kernel_size, stride, padding, dilation,
    ceil_mode)``.

    The one place for the rule "evaluate the max densely, then subsample with the method".
    ``"blur"`` gives the fused :class:`~antialias.layers.MaxBlurPool2d` (and its 1D/3D twins); any
    other method a parameter-free ``MaxPoolNd(kernel_size, stride=1)`` followed by
    :func:`create_downsample`'s layer, as named children ``pool`` and ``downsample``. A wrap or end
    padding comes first, as the child ``pad``; a single layer is returned as is, several in an
    ``nn.Sequential``.

    Args:
        method: a registered downsampling method (:func:`list_downsample_methods`).
        ndim: 1, 2 or 3.
        channels: channels of the map; ``None`` when the method accepts any.
        kernel_size: window of the max.
        stride: subsampling factor; ``None``: ``kernel_size`` (as ``nn.MaxPool2d``).
        padding: implicit ``-inf`` padding of the max; ignored with ``circular``.
        dilation: must be 1 (a dilated max has no replacement here).
        ceil_mode: keep ``nn.MaxPool2d(ceil_mode=True)``'s output size,
            ``ceil((L + 2 * padding - kernel_size) / stride) + 1``: the end of each axis is padded
            with ``stride - 1`` copies of its last sample (what the clipped last window sees). Needs
            ``kernel_size >= padding + stride`` (torch drops a last window that starts in the
            padding, which end padding cannot reproduce); ignored with ``circular``.
        filter_size: the method's low-pass filter.
        pad_mode: the method's padding.
        circular: wrap the map around (``CircularPadNd``, ``(k - 1) // 2`` before and ``k // 2``
            after) instead of padding with ``-inf``, so the max keeps the map's size and its
            circular structure: with circular convolutions and circular ``pad_mode`` the network
            stays equivariant to circular shifts.
        device: device of the method's parameters, if it has any.
        dtype: dtype of the method's parameters, if it has any.
        **kwargs: passed to the method's factory.

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: ``(N, C, *out)`` with ``out = ceil(L' / stride)``, ``L' = L`` with ``circular``,
          else ``L + 2 * padding - kernel_size + 1`` (plus ``stride - 1`` with ``ceil_mode``).

    Example:
        >>> pool = create_max_downsample("blur", 2, 64, 2)
        >>> type(pool).__name__, pool.kernel_size, pool.stride
        ('MaxBlurPool2d', [2, 2], [2, 2])
    """
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    kernel = check_tuple(kernel_size, ndim, "kernel_size")
    step = kernel if stride is None else check_tuple(stride, ndim, "stride")
    pads = check_tuple(padding, ndim, "padding", minimum=0)
    if any(d != 1 for d in check_tuple(dilation, ndim, "dilation")):
        raise ValueError(
            f"dilation must be 1 (dilated max pooling is not supported), got {dilation!r}"
        )
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if circular:
        layers["pad"], pads = _wrap_pad(kernel), (0,) * ndim
    elif ceil_mode:
        if not _ceil_mode_reproducible(kernel, pads, step):
            raise ValueError(
                "ceil_mode needs kernel_size >= padding + stride, got "
                f"kernel_size={kernel_size!r}, padding={padding!r}, stride={stride!r}"
            )
        layers["pad"] = _REPLICATE_PAD[ndim](tuple(p for s in reversed(step) for p in (0, s - 1)))
    options: dict[str, Any] = {"filter_size": filter_size, "pad_mode": pad_mode, **kwargs}
    if method == "blur":  # the fused layer: one pass over the dense max
        layers["pool"] = MAX_BLUR_POOL[ndim](
            list(kernel), compact(step), list(pads), channels=channels, **options
        )
    else:
        layers["pool"] = _MAX_POOL[ndim](kernel, stride=1, padding=pads)
        layers["downsample"] = create_downsample(method, ndim, channels, compact(step), **options)
    layer = layers["pool"] if len(layers) == 1 else nn.Sequential(layers)
    return layer.to(device=device, dtype=dtype) if device or dtype else layer


def _blur(
    ndim: int,
    channels: int | None,
    stride: IntOrTuple,
    *,
    filter_size: FilterSpec,
    pad_mode: str,
    **kwargs: Any,
) -> nn.Module:
    return BLUR_POOL[ndim](
        channels, stride=stride, filter_size=filter_size, pad_mode=pad_mode, **kwargs
    )


register_downsample("blur", _blur)
