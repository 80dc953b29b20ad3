"""Build downsampling layers by method name, so model transforms stay independent of the method.

``convert(model, method=...)`` and the zoo ask this module for "the layer that subsamples by ``stride``
after a dense operator". ``"blur"`` (blur-pool) is built in; other modules register more methods with
:func:`register_downsample` (the polyphase layers register ``"aps"`` and ``"lps"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from antialias.filters import FilterSpec
from antialias.layers.blurpool import BLUR_POOL
from antialias.layers.functional import IntOrTuple

__all__ = ["create_downsample", "list_downsample_methods", "register_downsample"]

DownsampleFactory = Callable[..., nn.Module]
_FACTORIES: dict[str, DownsampleFactory] = {}


def register_downsample(name: str, factory: DownsampleFactory) -> None:
    """Register ``factory(ndim, channels, stride, *, filter_size, pad_mode, **kwargs) -> nn.Module``.

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
    **kwargs: Any,
) -> nn.Module:
    """Build the ``method`` layer that subsamples an ``ndim``-D map with ``channels`` channels by ``stride``.

    Example:
        >>> create_downsample("blur", 2, 64, 2)
        BlurPool2d(channels=64, filter_size=4, stride=2, pad_mode='reflect')
    """
    if method not in _FACTORIES:
        raise ValueError(f"unknown downsample method {method!r}; expected one of {list_downsample_methods()}")
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    return _FACTORIES[method](ndim, channels, stride, filter_size=filter_size, pad_mode=pad_mode, **kwargs)


def _blur(ndim: int, channels: int | None, stride: IntOrTuple, *, filter_size: FilterSpec, pad_mode: str, **kwargs: Any) -> nn.Module:
    return BLUR_POOL[ndim](channels, filter_size, stride, pad_mode, **kwargs)


register_downsample("blur", _blur)
