"""Shared machinery of the zoo's builders: torchvision's model, :func:`antialias.convert` with the
reference's placement, weights.

A zoo model is ``convert(torchvision_model, placement="reference", layout=...)``: the converter holds
every placement rule, and each family declares, as ``layout`` data by module name, the reference's
choices that its weights depend on (ResNet's stem max pool of kernel 2, AlexNet's stride-4 stem split
in two), so the zoo and ``convert()`` cannot drift apart. Parameter names stay
torchvision's, so torchvision's and (through one key remapping) the reference's checkpoints load
strictly. A family module only lists its builders (two lines each, :func:`zoo_builder`).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import Tensor, nn

from antialias.filters import FilterSpec
from antialias.models._load import (
    WeightsArg,
    check_filter,
    describe_weights,
    load_weights,
    read_state_dict,
    resolve_weights,
)
from antialias.models._reference import infer_filter_size
from antialias.models._registry import BuilderT, register_model
from antialias.models._weights import WeightsEnum

__all__ = ["build", "zoo_builder"]

logger = logging.getLogger(__name__)

# zoo name -> the ``layout`` its builder passes to convert()
LAYOUTS: dict[str, dict[str, str]] = {}
# the example forward that reads the channel counts and the execution order
_EXAMPLE = (1, 3, 64, 64)


def _default_device() -> torch.device:
    return torch.empty(0).device


def build(
    arch: str,
    *,
    weights: WeightsArg = None,
    progress: bool = True,
    filter_size: FilterSpec | None = None,
    antialias_stem: bool = False,
    method: str = "blur",
    pad_mode: str = "reflect",
    conv_padding_mode: str = "zeros",
    circular: bool = False,
    has_stem: bool = True,
    layout: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build torchvision's ``arch``, anti-alias it with ``convert(placement="reference")``, load ``weights``.

    ``filter_size=None`` takes the filter of the weights (catalog entry, or the reference's blur
    buffers in a checkpoint), else 4. With weights, the model is created without random
    initialization (every parameter and buffer is then overwritten by the strict load), except with
    ``circular=True``, whose self-test runs on the random weights (the invariance is the
    architecture's) before the load.
    """
    from antialias.conversion import convert

    if not isinstance(antialias_stem, bool):
        raise TypeError(f"antialias_stem must be a bool, got {antialias_stem!r}")
    if antialias_stem and not has_stem:
        raise ValueError(
            f"{arch} has no strided stem convolution (its first subsampling is a max pool, "
            "which is always anti-aliased): antialias_stem=True has no meaning"
        )
    weights = resolve_weights(weights, arch)
    state_dict: Mapping[str, Tensor] | None = None
    if isinstance(weights, WeightsEnum):
        entry = weights.value
        if entry.filter_size is not None:
            filter_size = check_filter(entry.filter_size, filter_size, f"weights {weights!r}")
        num_classes = kwargs.setdefault("num_classes", entry.num_classes)
        if num_classes != entry.num_classes:
            raise ValueError(
                f"weights {weights!r} have {entry.num_classes} classes, got num_classes={num_classes}; "
                "load them with the default num_classes, then replace the classifier to fine-tune"
            )
        if entry.recipe != "torchvision":
            logger.info("%s: %s", weights, entry.license)
    if weights is not None:
        state_dict = read_state_dict(weights, progress=progress)
        if filter_size is None:
            filter_size = infer_filter_size(state_dict)

    import torchvision.models

    builder = getattr(torchvision.models, arch)
    if state_dict is None or circular:
        model = builder(weights=None, **kwargs)
    else:
        # Random initialization of weights that are about to be overwritten is wasted time (seconds for VGG).
        with torch.device("meta"):
            model = builder(weights=None, **kwargs)
        persistent = set(model.state_dict())
        if all(name in persistent for name, _ in model.named_buffers()):
            model = model.to_empty(device=_default_device())
        else:  # a buffer the load would not set: initialize normally
            model = builder(weights=None, **kwargs)
    weight = next(model.parameters())
    if circular:  # the zoo's defaults give way to what circular=True sets
        pad_mode = None if pad_mode == "reflect" else pad_mode  # type: ignore[assignment]
        conv_padding_mode = None if conv_padding_mode == "zeros" else conv_padding_mode  # type: ignore[assignment]
    model = convert(
        model,
        4 if filter_size is None else filter_size,
        method=method,
        pad_mode=pad_mode,
        antialias_stem=None if circular else antialias_stem,
        conv_padding_mode=conv_padding_mode,
        placement="reference",
        layout=layout,
        circular=circular,
        inplace=True,
        example_inputs=torch.randn(_EXAMPLE, generator=torch.Generator().manual_seed(0)).to(
            weight.device, weight.dtype
        ),
    )
    return load_weights(model, state_dict, source=describe_weights(weights), arch=arch)


BUILDER_ARGS = """
    Args:
        weights: pretrained weights: a member of ``{enum}`` or its name (``"DEFAULT"``), a local
            file, a URL, or a state dict; in torchvision's or the reference's layout (see
            :mod:`antialias.models`). ``None``: random initialization. The reference's weights are
            CC BY-NC-SA 4.0 (non-commercial use only).
        progress: show a progress bar while downloading.
        filter_size: the blur filter: an int ``k`` (binomial of ``k`` taps, 1..7), a family string
            (``"box-3"``) or taps. ``None``: the filter of ``weights`` when they say (catalog entry
            or the reference's blur buffers), else 4.
        antialias_stem: also anti-alias the strided stem convolution (conv at a halved stride,
            then blur after its activation). The reference's ``pool_only`` is ``not antialias_stem``.
            Default: {stem_default}.
        method: the subsampling layer, a name of :func:`antialias.layers.list_downsample_methods`.
        pad_mode: padding of the blur: ``"reflect"``, ``"replicate"``, ``"zeros"`` or ``"circular"``.
        conv_padding_mode: ``padding_mode`` of every convolution (``"circular"`` with
            ``pad_mode="circular"`` for circular-shift experiments).
        circular: exact invariance to circular shifts with ``method="aps"`` or ``"lps"``: sets
            ``antialias_stem`` (where the model has a strided stem), ``pad_mode`` and
            ``conv_padding_mode`` to circular ones, then checks it on a random input.
        **kwargs: passed to torchvision's builder (``num_classes`` ...).
"""


def zoo_builder(
    enum: type[WeightsEnum],
    *,
    antialias_stem: bool = False,
    has_stem: bool = True,
    stem_doc: str | None = None,
    layout: Mapping[str, str] | None = None,
) -> Callable[[BuilderT], BuilderT]:
    """Register a two-line builder ``def arch(**kwargs): return build("arch", **kwargs)`` as ``arch``
    (:func:`~antialias.models.register_model`) with the zoo's keyword-only signature, its family's defaults
    (``layout``: the reference's per-layer choices, passed to :func:`antialias.convert`) and the shared
    Args section of its docstring."""
    params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in (
            ("weights", None),
            ("progress", True),
            ("filter_size", None),
            ("antialias_stem", antialias_stem),
            ("method", "blur"),
            ("pad_mode", "reflect"),
            ("conv_padding_mode", "zeros"),
            ("circular", False),
        )
    ]
    params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    if stem_doc is None:
        stem_doc = f"``{antialias_stem}``" + (
            "" if has_stem else " (no strided stem convolution; ``True`` is an error)"
        )

    def decorator(fn: BuilderT) -> BuilderT:
        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> nn.Module:
            kwargs.setdefault("antialias_stem", antialias_stem)
            return fn(has_stem=has_stem, layout=layout, **kwargs)

        returns = inspect.signature(fn).return_annotation
        wrapper.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
        wrapper.__doc__ = (
            (fn.__doc__ or "").rstrip()
            + "\n"
            + BUILDER_ARGS.format(enum=enum.__name__, stem_default=stem_doc)
        )
        LAYOUTS[fn.__name__] = dict(layout or {})
        return register_model(fn.__name__)(cast(BuilderT, wrapper))

    return decorator
