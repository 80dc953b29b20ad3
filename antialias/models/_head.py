"""Fine-tuning to another class count: find the classifier, load everything else strictly.

torchvision and timm users expect ``weights=...`` with ``num_classes=10`` to load the backbone and
start a fresh head; the reference and torchvision itself refuse. Here the classifier is the model's
last ``nn.Linear`` (``fc`` of ResNets, ``classifier.6`` of VGG/AlexNet, ``classifier`` of DenseNet,
``classifier.1`` of MobileNetV2, the last layer of a user's ``nn.Sequential``); only its weight and
bias may differ in shape, and only in the number of outputs. Every other key must match exactly.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

__all__ = [
    "MODEL_META_KEY",
    "build_with_weights",
    "classifier_name",
    "num_classes_of",
    "read_model_meta",
    "replace_classifier_weights",
    "state_dict_num_classes",
]

logger = logging.getLogger(__name__)


def classifier_name(model: nn.Module) -> str | None:
    """The qualified name of ``model``'s classifier (its last ``nn.Linear``), or None if it has none.

    >>> classifier_name(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    '2'
    """
    name = None
    for qualified, module in model.named_modules():
        if isinstance(module, nn.Linear):
            name = qualified
    return name


def num_classes_of(state_dict: Mapping[str, Tensor], head: str) -> int | None:
    """The number of outputs that ``state_dict`` gives the classifier ``head`` (None if absent)."""
    weight = state_dict.get(f"{head}.weight")
    return int(weight.shape[0]) if weight is not None and weight.dim() == 2 else None


def replace_classifier_weights(
    state_dict: Mapping[str, Tensor],
    model: nn.Module,
    *,
    source: str,
    remapped_keys: list[str] | None = None,
) -> tuple[dict[str, Tensor], str | None]:
    """``state_dict`` with the classifier's entries taken from ``model`` when their class counts differ.

    Only the classifier's ``weight`` and ``bias`` are replaced, and only when the checkpoint's
    classifier has the same input width and another number of outputs; anything else is left for
    the strict load to report.

    Args:
        state_dict: the checkpoint's state dict.
        model: the freshly built model with the wanted class count (its head keeps its random
            initialisation).
        source: the checkpoint's description, for the message.
        remapped_keys: the model's name of each key of ``state_dict`` when the checkpoint uses
            another layout (the reference's), in the same order; default: the keys themselves.

    Returns:
        The new state dict and a one-line message naming the re-initialised layer (None when the
        classifier already fits).
    """
    head = classifier_name(model)
    if head is None:
        return dict(state_dict), None
    keys = list(state_dict)
    names = remapped_keys if remapped_keys is not None else keys
    target = model.state_dict()
    wanted = {f"{head}.weight", f"{head}.bias"}
    found = {name: key for key, name in zip(keys, names, strict=True) if name in wanted}
    weight_key = found.get(f"{head}.weight")
    if weight_key is None:
        return dict(state_dict), None
    saved, ours = state_dict[weight_key].shape, target[f"{head}.weight"].shape
    if saved == ours or len(saved) != 2 or saved[1] != ours[1]:
        return dict(state_dict), None
    out = dict(state_dict)
    for name, key in found.items():
        out[key] = target[name]
    message = (
        f"{source}: re-initialised the classifier {head!r} ({saved[0]} -> {ours[0]} classes); "
        "every other weight loaded strictly"
    )
    return out, message


# --------------------------------------------------------------------------------------------------
# get_model(name, weights=..., num_classes=...)

MODEL_META_KEY = "antialias"
"""Key of the model description in the files ``antialias train`` writes (next to the state dict)."""


def read_model_meta(weights: Any) -> dict[str, Any]:
    """The model description stored with ``weights`` (a local file or a mapping), or ``{}``.

    ``antialias train`` writes ``{"state_dict": ..., "antialias": {"arch", "num_classes",
    "filter_size", "options", "classes", ...}}`` in ``weights.pt`` and in every checkpoint (under
    ``"model"`` there). Files without it (torchvision's, the reference's) give ``{}``; an unreadable
    file also gives ``{}`` (the loader that follows reports it, naming the file).
    """
    obj: Any = weights
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if path.startswith(("http://", "https://", "file://")) or not os.path.isfile(path):
            return {}
        try:
            from antialias._io import safe_torch_load

            obj = safe_torch_load(
                path, what="weights"
            )  # the one safe reader: CRCs checked, weights_only
        except Exception:  # noqa: BLE001  (the loader reports the file; here it has no description)
            return {}
    if isinstance(obj, Mapping) and isinstance(obj.get(MODEL_META_KEY), Mapping):
        return dict(obj[MODEL_META_KEY])
    return {}


def state_dict_num_classes(state_dict: Mapping[str, Tensor]) -> int | None:
    """The class count of a checkpoint: the outputs of its last 2-D ``.weight`` (None if it has none).

    State dicts follow module registration order and every zoo model ends with its classifier, in
    torchvision's and in the reference's layout.
    """
    for key in reversed(list(state_dict)):
        value = state_dict[key]
        if key.endswith(".weight") and isinstance(value, Tensor) and value.dim() == 2:
            return int(value.shape[0])
    return None


def _torchvision_enum(weights: Any, arch: str) -> Any:
    """Torchvision's weights (an enum member, or a member name of torchvision's enum of ``arch``), or None."""
    import torchvision.models as tvm

    if isinstance(weights, tvm.WeightsEnum):
        try:
            expected = tvm.get_model_weights(arch)
        except (ValueError, KeyError):
            expected = None
        if expected is None or not isinstance(weights, expected):
            takes = (
                f"takes {expected.__name__}"
                if expected is not None
                else "has no torchvision weights"
            )
            raise ValueError(
                f"torchvision weights {type(weights).__name__}.{weights.name} are not for {arch!r}: "
                f"get_model({arch!r}) {takes}"
            )
        return weights
    if isinstance(weights, str) and not os.path.exists(weights) and "://" not in weights:
        try:
            enum = tvm.get_model_weights(arch)
        except (ValueError, KeyError):
            return None
        name = weights.rpartition(".")[2] if weights.startswith(enum.__name__ + ".") else weights
        from antialias.models._weights import get_model_weights

        with contextlib.suppress(ValueError):
            if name in get_model_weights(arch).__members__:
                return None  # our catalog's name wins (DEFAULT is the anti-aliased model)
        if name in enum.__members__:
            return enum[name]
    return None


def build_with_weights(
    builder: Callable[..., nn.Module], arch: str, kwargs: dict[str, Any]
) -> nn.Module:
    """Build ``arch`` with ``kwargs["weights"]``, reading the class count from the weights.

    ``num_classes`` defaults to the weights' (the catalog's 1000, torchvision's categories, the
    description stored by ``antialias train``, else the checkpoint's classifier). A different
    ``num_classes`` re-initialises the classifier and loads everything else strictly, with a
    message naming the layer. torchvision's weights enums (``ResNet50_Weights.IMAGENET1K_V2``) and
    their member names are accepted for the matching architecture.
    """
    from antialias.models._load import (
        describe_weights,
        load_state_dict,
        read_state_dict,
        resolve_weights,
    )
    from antialias.models._reference import infer_filter_size, remap_reference_state_dict
    from antialias.models._weights import WeightsEnum

    weights = kwargs["weights"]
    saved: int | None = None
    filter_size = kwargs.get("filter_size")
    tv = _torchvision_enum(weights, arch)
    if tv is not None:
        saved = len(tv.meta["categories"])
        weights = tv.url  # our loader: cached, hash-checked, one-line errors
    else:
        weights = resolve_weights(weights, arch)
        if isinstance(weights, WeightsEnum):
            saved = weights.value.num_classes
        else:
            meta = read_model_meta(weights)
            if meta:
                saved = meta.get("num_classes")
                if meta.get("arch") not in (None, arch):
                    logger.warning(
                        f"{describe_weights(weights)} describe a {meta['arch']!r} model, not {arch!r}"
                    )
                if meta.get("source") not in (None, "zoo"):
                    # Same parameter names, another network: the numbers would be silently wrong.
                    logger.warning(
                        f"{describe_weights(weights)} were trained on the {meta['source']!r} model "
                        f"(antialias train --{'baseline' if meta['source'] == 'torchvision' else 'convert'}), "
                        f"not the zoo's {arch!r}: its parameter names match, its layers do not"
                    )
                if filter_size is None and isinstance(meta.get("filter_size"), (int, str)):
                    filter_size = meta["filter_size"]
                    kwargs["filter_size"] = filter_size
    kwargs["weights"] = weights
    requested = kwargs.get("num_classes")
    state = None
    if saved is None:  # a file without a description: its classifier says
        state = read_state_dict(weights, progress=kwargs.get("progress", True))
        saved = state_dict_num_classes(state)
    if requested is None and saved is not None:
        kwargs["num_classes"] = saved
    if requested is None or requested == saved:
        return builder(**kwargs)

    # Another class count: build with a fresh head, load the rest strictly.
    if state is None:
        state = read_state_dict(weights, progress=kwargs.get("progress", True))
    if (
        isinstance(weights, WeightsEnum)
        and filter_size is None
        and weights.value.filter_size is not None
    ):
        filter_size = weights.value.filter_size
    if filter_size is None:
        filter_size = infer_filter_size(state)
    model = builder(**{**kwargs, "weights": None, "filter_size": filter_size})
    source = describe_weights(weights)
    plain = {k: v for k, v in state.items() if not k.endswith(".filt")}
    names = list(remap_reference_state_dict(state, model))
    fresh, message = replace_classifier_weights(
        plain, model, source=source, remapped_keys=names if len(names) == len(plain) else None
    )
    load_state_dict(model, {**state, **fresh}, source=source, arch=arch)
    if message:
        logger.warning(message)
    return model
