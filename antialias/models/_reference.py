"""The reference's checkpoint layout (antialiased-cnns) -> ours (torchvision's names), and its blur filters.

The reference's official files are ``{'state_dict': ...}`` with its blur layers spliced into
``nn.Sequential``s and their kernels stored as ``*.filt`` buffers; :func:`remap_reference_state_dict`
translates the keys by name and module structure, :func:`infer_filter_size` reads the filter a file
was trained with, and :func:`check_filters` refuses a file whose filter differs from the model's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from antialias._io import CheckpointError

__all__ = ["check_filters", "infer_filter_size", "remap_reference_state_dict"]

_LEGACY_DENSENET_RE = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)
_BLUR_BUFFER = "filt"


def remap_reference_state_dict(
    state_dict: Mapping[str, Tensor], model: nn.Module
) -> dict[str, Tensor]:
    """Translate a state dict in the reference's layout (antialiased-cnns) to ``model``'s key names.

    The reference splices its blur layers (``BlurPool``, whose only state is the buffer ``filt``) into
    ``nn.Sequential`` modules; our models keep torchvision's module tree and put the blur where it adds
    no name. The rules, applied by key name and module structure (never by the order of parameters):

    1. Blur buffers: keys ending in ``.filt`` are dropped (ours are computed, non-persistent).
    2. Splices: in an ``nn.Sequential`` ``P`` of the reference, a child ``P.i`` whose state is a
       ``filt`` buffer is a spliced blur; every key ``P.j.*`` moves to ``P.(j - n).*`` with ``n`` the
       number of blur children of ``P`` before ``j``. E.g. VGG ``features.4.weight`` ->
       ``features.3.weight``, AlexNet ``features.5.*`` -> ``features.3.*``, MobileNetV2
       ``features.2.conv.3.*`` -> ``features.2.conv.2.*``, ResNet ``layer2.0.downsample.1.*`` ->
       ``layer2.0.downsample.0.*``; ``maxpool.1.filt`` is rule 1.
    3. Wraps: the reference replaces a strided conv ``P`` by ``Sequential(blur, conv)``; after rule 2
       its keys are ``P.0.*``; where ``model`` has ``P.*`` and not ``P.0.*`` the index is dropped:
       ``layer2.0.conv3.1.weight`` -> ``layer2.0.conv3.weight`` (Bottleneck),
       ``layer2.0.conv2.1.weight`` -> ``layer2.0.conv2.weight`` (BasicBlock).
    4. Omitted Dropout: where ``model``'s ``P.i`` is an ``nn.Dropout`` and the key ``P.i.*`` does not
       exist in ``model`` but ``P.(i + 1).*`` does, the key moves there. The reference's MobileNetV2
       classifier is ``Sequential(Linear)``, torchvision's ``Sequential(Dropout, Linear)``:
       ``classifier.0.*`` -> ``classifier.1.*``.
    5. Legacy DenseNet names (also in torchvision's own checkpoints): ``denselayerN.norm.1.*`` ->
       ``denselayerN.norm1.*`` (and ``relu``, ``conv``, ``2``).

    A state dict that already has ``model``'s names comes back unchanged, so every checkpoint can go
    through this function. Keys that fit no rule are kept as they are; the strict load that follows
    reports them.

    Args:
        state_dict: the checkpoint's state dict (already unwrapped from ``{'state_dict': ...}``).
        model: the model the weights are for (its state-dict keys and modules decide rules 3 and 4).

    Returns:
        A new state dict with ``model``'s key names.

    Example:
        >>> import torch
        >>> from antialias.models import resnet18
        >>> model = resnet18(num_classes=10)
        >>> ref = {"layer2.0.conv2.0.filt": torch.ones(128, 1, 4, 4), "layer2.0.conv2.1.weight": torch.ones(128, 128, 3, 3),
        ...        "layer2.0.downsample.0.filt": torch.ones(64, 1, 4, 4), "layer2.0.downsample.1.weight": torch.ones(128, 64, 1, 1)}
        >>> sorted(remap_reference_state_dict(ref, model))
        ['layer2.0.conv2.weight', 'layer2.0.downsample.0.weight']
    """
    target = model.state_dict()
    blurs: dict[str, list[int]] = {}
    for key in state_dict:
        parent, _, leaf = key.rpartition(".")
        if leaf == _BLUR_BUFFER:
            seq, _, index = parent.rpartition(".")
            if index.isdigit():
                blurs.setdefault(seq, []).append(int(index))

    prefixes = _prefixes(target)
    remapped: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.rpartition(".")[2] == _BLUR_BUFFER:  # rule 1
            continue
        legacy = _LEGACY_DENSENET_RE.match(key)  # rule 5
        if legacy:
            key = legacy.group(1) + legacy.group(2)
        parts = key.split(".")
        spliced: list[int] = []  # positions of indices that lived in a Sequential with blurs
        for pos, part in enumerate(parts):  # rule 2
            seq = ".".join(key.split(".")[:pos])
            if part.isdigit() and seq in blurs:
                parts[pos] = str(int(part) - sum(1 for b in blurs[seq] if b < int(part)))
                spliced.append(pos)
        new = ".".join(parts)
        if new not in target:
            for pos in reversed(spliced):  # rule 3
                if parts[pos] == "0":
                    unwrapped = ".".join(parts[:pos] + parts[pos + 1 :])
                    if unwrapped in target and ".".join(parts[: pos + 1]) + "." not in prefixes:
                        new = unwrapped
                        break
        if new not in target:
            new = _skip_dropout(new, model, target)  # rule 4
        remapped[new] = value
    return remapped


def _prefixes(keys: Mapping[str, Any]) -> set[str]:
    out = set()
    for key in keys:
        parts = key.split(".")
        for i in range(1, len(parts)):
            out.add(".".join(parts[:i]) + ".")
    return out


def _skip_dropout(key: str, model: nn.Module, target: Mapping[str, Any]) -> str:
    parts = key.split(".")
    for pos, part in enumerate(parts):
        if not part.isdigit():
            continue
        try:
            child = model.get_submodule(".".join(parts[: pos + 1]))
        except AttributeError:
            return key
        moved = ".".join(parts[:pos] + [str(int(part) + 1)] + parts[pos + 1 :])
        if isinstance(child, nn.Dropout) and moved in target:
            return moved
    return key


def _reference_kernels(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The 2D blur kernel of every reference blur buffer, by key."""
    out = {}
    for key, value in state_dict.items():
        if key.rpartition(".")[2] == _BLUR_BUFFER and value.dim() == 4 and value.size(1) == 1:
            out[key] = value[0, 0].double()
    return out


def _model_kernels(model: nn.Module) -> dict[str, Tensor]:
    out = {}
    for name, module in model.named_modules():
        taps = getattr(module, "taps", None)
        if isinstance(taps, list) and getattr(module, "dims", None) == 2:
            t = torch.tensor(taps, dtype=torch.float64)
            out[name] = torch.outer(t, t) / (t.sum() ** 2)
    return out


def infer_filter_size(state_dict: Mapping[str, Tensor]) -> int | None:
    """The binomial filter size of a checkpoint in the reference's layout (from its ``*.filt`` buffers).

    Returns ``None`` when the checkpoint has no blur buffers or they are not one binomial filter.
    """
    from antialias.filters import get_taps

    kernels = list(_reference_kernels(state_dict).values())
    if not kernels:
        return None
    size = kernels[0].size(-1)
    if size > 7:
        return None
    taps = torch.tensor(get_taps(size), dtype=torch.float64)
    expected = torch.outer(taps, taps)
    if all(k.shape == expected.shape and torch.allclose(k, expected, atol=1e-6) for k in kernels):
        return int(size)
    return None


def check_filters(state_dict: Mapping[str, Tensor], model: nn.Module, source: str) -> None:
    """Refuse a checkpoint in the reference's layout whose blur buffers hold another filter than ``model``'s.

    Raises:
        CheckpointError: naming the checkpoint's filter size and the one to build the model with.
    """
    ckpt = _reference_kernels(state_dict)
    ours = _model_kernels(model)
    if not ckpt or not ours:
        return
    ours_unique = list({tuple(k.flatten().tolist()): k for k in ours.values()}.values())
    for key, kernel in ckpt.items():
        if not any(
            k.shape == kernel.shape and torch.allclose(k, kernel, atol=1e-6) for k in ours_unique
        ):
            got = infer_filter_size({key: kernel[None, None]})
            desc = f"filter_size={got}" if got else f"a {kernel.size(0)}x{kernel.size(1)} filter"
            mine = sorted({k.size(0) for k in ours_unique})
            raise CheckpointError(
                f"{source} was trained with {desc} (blur buffer {key!r} of shape {tuple(state_dict[key].shape)}), "
                f"but the model's blur layers use {mine[0] if len(mine) == 1 else mine}-tap filters; "
                f"build the model with filter_size={got if got else '...'}"
            )
