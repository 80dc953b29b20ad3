"""Fine-tuning to another class count: find the classifier, load everything else strictly.

torchvision and timm users expect ``weights=...`` with ``num_classes=10`` to load the backbone and
start a fresh head; the reference and torchvision itself refuse. Here the classifier is the model's
last ``nn.Linear`` (``fc`` of ResNets, ``classifier.6`` of VGG/AlexNet, ``classifier`` of DenseNet,
``classifier.1`` of MobileNetV2, the last layer of a user's ``nn.Sequential``); only its weight and
bias may differ in shape, and only in the number of outputs. Every other key must match exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from torch import Tensor, nn

__all__ = [
    "MODEL_META_KEY",
    "classifier_name",
    "num_classes_of",
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


MODEL_META_KEY = "antialias"
"""Key of the model description in the files ``antialias train`` writes (next to the state dict)."""


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
