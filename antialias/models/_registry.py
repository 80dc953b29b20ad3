"""The model registry: builders register by name; ``list_models`` and ``get_model`` look them up.

A duplicate registration raises (as in torchvision; timm silently overwrites), so two families can never
shadow each other's names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["get_model", "get_model_builder", "list_models", "register_model"]

BuilderT = TypeVar("BuilderT", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None) -> Callable[[BuilderT], BuilderT]:
    """Decorator that registers a model builder under ``name`` (default: the function's name).

    Raises:
        ValueError: if the name is already registered.

    Example:
        >>> @register_model("my_tiny_net")
        ... def my_tiny_net(**kwargs):
        ...     return nn.Linear(2, 2)
        >>> get_model("my_tiny_net")
        Linear(in_features=2, out_features=2, bias=True)
        >>> _ = _MODELS.pop("my_tiny_net")  # keep the doctest from leaking into the registry
    """

    def decorator(fn: BuilderT) -> BuilderT:
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"a model named {key!r} is already registered (by {_MODELS[key].__module__})")
        _MODELS[key] = fn
        return fn

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """The sorted names of the registered models that match the shell-style ``pattern``.

    Example:
        >>> list_models("resnet1*")
        ['resnet101', 'resnet152', 'resnet18']
    """
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder function registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists close names).
    """
    try:
        return _MODELS[name]
    except KeyError:
        close = [n for n in _MODELS if name.lower().rstrip("0123456789_") in n] or sorted(_MODELS)
        raise ValueError(f"unknown model {name!r}; expected one of {close}") from None


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; ``kwargs`` go to its builder (``weights=``, ``filter_size=`` ...).

    Example:
        >>> get_model("resnet18", num_classes=10).fc
        Linear(in_features=512, out_features=10, bias=True)
    """
    return get_model_builder(name)(**kwargs)
