"""The model registry: builders register by name; ``list_models`` and ``get_model`` look them up.

A duplicate registration raises (as in torchvision; timm silently overwrites), so two families can never
shadow each other's names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
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
            raise ValueError(
                f"a model named {key!r} is already registered (by {_MODELS[key].__module__})"
            )
        _MODELS[key] = fn
        return fn

    return decorator


def list_models(
    pattern: str | None = None,
    *,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> list[str]:
    """The sorted names of the registered models that match the shell-style patterns.

    Args:
        pattern: one pattern (``"resnet*"``); the same as ``include``.
        include: a pattern or a list of patterns; a name is kept when it matches any of them
            (torchvision's and timm's keyword). Default: every model.
        exclude: a pattern or a list of patterns; a name that matches any of them is dropped.

    Example:
        >>> list_models("resnet1*")
        ['resnet101', 'resnet152', 'resnet18']
        >>> list_models(include="*resnet*", exclude=["wide_*", "resnext*"])
        ['resnet101', 'resnet152', 'resnet18', 'resnet34', 'resnet50']
    """
    if pattern is not None and include is not None:
        raise ValueError(f"give pattern {pattern!r} or include={include!r}, not both")
    keep = _patterns(include if include is not None else pattern, "include")
    drop = _patterns(exclude, "exclude")
    return sorted(
        n
        for n in _MODELS
        if (not keep or any(fnmatch.fnmatchcase(n, p) for p in keep))
        and not any(fnmatch.fnmatchcase(n, p) for p in drop)
    )


def _patterns(value: str | Sequence[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    patterns = list(value)
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"{what} must be a pattern or a list of patterns, got {value!r}")
    return patterns


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

    With ``weights``, the class count comes from the weights (the catalog's 1000, torchvision's
    categories, the description ``antialias train`` stores in its files, else the checkpoint's
    classifier); a different ``num_classes`` re-initialises the classifier (a message names it)
    and loads every other weight strictly: the start of fine-tuning. ``weights`` also takes
    torchvision's enum of the same architecture (``torchvision.models.ResNet50_Weights.IMAGENET1K_V2``)
    or one of its member names.

    Example:
        >>> get_model("resnet18", num_classes=10).fc
        Linear(in_features=512, out_features=10, bias=True)
    """
    builder = get_model_builder(name)
    if kwargs.get("weights") is None:
        return builder(**kwargs)
    from antialias.models._load import build_with_weights

    return build_with_weights(builder, name, dict(kwargs))
