"""Per-layer shift-equivariance of the features inside a network (the paper's Figure 5).

For a layer ``F`` with cumulative stride ``s`` (input size / feature size), shifting the input by
``(dy, dx)`` should shift the features by ``(dy / s, dx / s)``. The distance between
``F(shift(x, d))`` and ``shift(F(x), d / s)`` is measured for every shift of a grid and averaged
over the images. A strided layer without anti-aliasing is equivariant only to shifts that are
multiples of its stride; blur keeps the other shifts much closer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from antialias.devices import resolve_device
from antialias.metrics._common import (
    check_batch,
    check_chunk_size,
    eval_mode,
    iterate,
    positive_int,
    roll_views,
    summary_repr,
)
from antialias.metrics.shift import fractional_shift

__all__ = ["EquivarianceResult", "default_layers", "feature_equivariance"]

logger = logging.getLogger(__name__)

_DISTANCES = ("cosine", "l2")


@dataclass
class EquivarianceResult:
    """Distance between features of shifted inputs and shifted features, per layer and shift.

    Attributes:
        layers: layer names (``model.named_modules()`` names).
        strides: cumulative stride of each layer (input height / feature height).
        shifts_y: ``(Sy,)`` input row shifts.
        shifts_x: ``(Sx,)`` input column shifts.
        distances: per layer, ``(Sy, Sx)`` mean distance over the images.
        distance: ``"cosine"`` (1 - cosine similarity, in [0, 2]) or ``"l2"`` (relative).
        images: number of images averaged.
    """

    __repr__ = summary_repr

    layers: list[str]
    strides: dict[str, int]
    shifts_y: torch.Tensor
    shifts_x: torch.Tensor
    distances: dict[str, torch.Tensor]
    distance: str
    images: int
    params: dict[str, Any] = field(default_factory=dict)

    def mean_distance(self, layer: str) -> float:
        """Mean distance of ``layer`` over all shifts of the grid."""
        return float(self.distances[layer].mean())

    def summary(self) -> dict[str, Any]:
        return {
            "distance": self.distance,
            "images": self.images,
            "shifts_y": self.shifts_y.tolist(),
            "shifts_x": self.shifts_x.tolist(),
            "layers": {
                name: {
                    "stride": self.strides[name],
                    "mean": self.mean_distance(name),
                    "max": float(self.distances[name].max()),
                    "heatmap": self.distances[name].tolist(),
                }
                for name in self.layers
            },
            **self.params,
        }

    def records(self) -> list[dict[str, Any]]:
        return []  # the per-image distances are averaged on the fly to bound memory


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


class _Recorder:
    """Forward hooks that keep the latest output of the named modules."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        modules = dict(model.named_modules())
        missing = [name for name in names if name not in modules]
        if missing:
            sample = ", ".join(list(modules)[1:12])
            raise ValueError(
                f"unknown layer name(s) {missing}; layers are model.named_modules() names, "
                f"e.g. {sample}"
            )
        if isinstance(model, torch.jit.ScriptModule):
            raise TypeError(
                "per-layer equivariance needs forward hooks, which TorchScript models do not "
                "run; pass the eager nn.Module"
            )
        self.outputs: dict[str, torch.Tensor | None] = {}
        self.handles = []
        for name in names:
            self.handles.append(modules[name].register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            self.outputs[name] = _first_tensor(output)

        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def default_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Pick layers to probe: the model's top-level children with 4-D outputs (for a torchvision
    ResNet: conv1 .. layer4); when fewer than two, the children of the 4-D one (VGG's
    ``features``).

    Args:
        model: the network.
        example: one input batch, e.g. ``(1, 3, 224, 224)``.
    """

    def spatial(names: list[str]) -> list[str]:
        recorder = _Recorder(model, names)
        try:
            with eval_mode(model):
                model(example)
        finally:
            recorder.close()
        return [n for n in names if (t := recorder.outputs.get(n)) is not None and t.dim() == 4]

    top = spatial([name for name, _ in model.named_children()])
    if len(top) >= 2:
        return top
    inner: list[str] = []
    for name in top:
        module = model.get_submodule(name)
        inner += spatial([f"{name}.{child}" for child, _ in module.named_children()])
    return inner or top


def _distance(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample distance between feature batches ``a`` and reference ``b``."""
    a = a.flatten(1).double()
    b = b.flatten(1).double()
    eps = 1e-12
    if kind == "cosine":
        cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)
        dist = (1 - cos).clamp_min(0)
    else:
        dist = (a - b).norm(dim=1) / b.norm(dim=1).clamp_min(eps)
    # Identical features (all-zero ones included, e.g. a dead ReLU map) are at distance 0.
    return torch.where((a == b).all(1), torch.zeros_like(dist), dist)


def _shifted_references(
    features: torch.Tensor, index: list[int], shifts: torch.Tensor, stride: int
) -> torch.Tensor:
    """``shift(F(x), d / stride)`` for each view: image ``index[j]``, input shift ``shifts[j]``.

    Shifts that are multiples of the stride use ``torch.roll`` (exact); the others go through one
    batched :func:`fractional_shift` (one FFT for all of them, not one per view).
    """
    out = torch.empty(
        (len(index), *features.shape[1:]), dtype=features.dtype, device=features.device
    )
    whole = (shifts % stride == 0).all(1)
    rolled, fractional = whole.nonzero().flatten().tolist(), (~whole).nonzero().flatten().tolist()
    if rolled:
        out[rolled] = roll_views(features, [index[j] for j in rolled], shifts[rolled] // stride)
    if fractional:
        images = features[[index[j] for j in fractional]]
        out[fractional] = fractional_shift(images, shifts[fractional].double() / stride)
    return out


def _stride(name: str, input_height: int, features: torch.Tensor) -> int:
    """The cumulative stride of a layer: input height / feature height, rounded (with a warning)."""
    ratio = input_height / features.shape[-2]
    stride = max(1, round(ratio))
    if abs(ratio - stride) > 1e-6:
        logger.warning(
            "layer %s: input %d / features %d is not an integer stride; using %d",
            name,
            input_height,
            features.shape[-2],
            stride,
        )
    return stride


def feature_equivariance(
    model: nn.Module,
    data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    layers: Sequence[str] | None = None,
    *,
    max_shift: int = 8,
    shifts: Sequence[int] | None = None,
    strides: Mapping[str, int] | None = None,
    distance: Literal["cosine", "l2"] = "cosine",
    device: torch.device | str | None = None,
    progress: bool = False,
    chunk_size: int | None = None,
) -> EquivarianceResult:
    """Per-layer equivariance: ``d(F(roll(x, s)), shift(F(x), s / stride))`` over a grid of shifts.

    Convention:
        Inputs are shifted circularly (``torch.roll``), as in the paper's CIFAR experiment, so no
        content enters or leaves the image. A layer's features are shifted by the input shift
        divided by the layer's cumulative stride: with ``torch.roll`` when that is an integer,
        else with the band-limited :func:`fractional_shift`. The distance is computed per image
        on the flattened features of the layer and averaged over the images. The grid is
        ``{0, ..., max_shift - 1}`` per axis (or ``shifts``); shift ``(0, 0)`` is 0 by
        construction.

    Args:
        model: an eager ``nn.Module`` (forward hooks are used).
        data: ``(images, labels)`` batches; labels are ignored.
        layers: names from ``model.named_modules()``; default :func:`default_layers`.
        max_shift: grid ``{0, ..., max_shift - 1}`` on both axes.
        shifts: explicit shifts for both axes instead of ``max_shift``.
        strides: cumulative stride per layer; default: measured as input height / feature height.
        distance: ``"cosine"``: 1 - cosine similarity; ``"l2"``: ``||a - b|| / ||b||``.
        device: where to run; default the model's device.
        progress: show a progress bar.
        chunk_size: most shifted images per forward pass; None: all shifts of a batch at once.

    Returns:
        An :class:`EquivarianceResult`.
    """
    if distance not in _DISTANCES:
        raise ValueError(f"distance must be one of {_DISTANCES}, got {distance!r}")
    if shifts is None:
        shift_list = list(range(positive_int("max_shift", max_shift)))
    else:
        shift_list = [int(s) for s in shifts]
        if not shift_list:
            raise ValueError("shifts must name at least one shift")
    check_chunk_size(chunk_size)
    grid = torch.tensor([(dy, dx) for dy in shift_list for dx in shift_list])
    per_image = grid.shape[0]
    dev = resolve_device(device, model=model)

    names: list[str] | None = list(layers) if layers is not None else None
    sums: dict[str, torch.Tensor] = {}
    layer_strides: dict[str, int] = dict(strides or {})
    images_seen = 0
    recorder: _Recorder | None = None
    try:
        with eval_mode(model):
            for batch in iterate(data, progress, "equivariance"):
                images, _ = check_batch(batch)
                images = images.to(dev)
                n = images.shape[0]
                if names is None:
                    names = default_layers(model, images[:1])
                    if not names:
                        raise ValueError("the model has no layer with 4-D (N, C, H, W) output")
                    logger.info("equivariance layers: %s", ", ".join(names))
                if recorder is None:
                    if not names:
                        raise ValueError("layers must name at least one layer")
                    recorder = _Recorder(model, names)
                    sums = {name: torch.zeros(per_image, dtype=torch.float64) for name in names}

                model(images)
                reference = {}
                for name in names:
                    out = recorder.outputs.get(name)
                    if out is None or out.dim() != 4:
                        shape = None if out is None else tuple(out.shape)
                        raise ValueError(
                            f"layer {name!r} must output (N, C, H, W) features, got {shape}"
                        )
                    reference[name] = out.detach()
                    if name not in layer_strides:
                        layer_strides[name] = _stride(name, images.shape[-2], out)

                total = n * per_image
                step = total if chunk_size is None else chunk_size
                for start in range(0, total, step):
                    views = range(start, min(start + step, total))
                    index = [i // per_image for i in views]
                    cell = torch.tensor([i % per_image for i in views])
                    model(roll_views(images, index, grid[cell]))
                    for name in names:
                        refs = _shifted_references(
                            reference[name], index, grid[cell], layer_strides[name]
                        )
                        dist = _distance(recorder.outputs[name], refs, distance).cpu()  # type: ignore[arg-type]
                        sums[name].index_add_(0, cell, dist)
                images_seen += n
    finally:
        if recorder is not None:
            recorder.close()
    if images_seen == 0 or names is None:
        raise ValueError("data yielded no batch")
    shift_tensor = torch.tensor(shift_list)
    return EquivarianceResult(
        layers=list(names),
        strides={name: layer_strides[name] for name in names},
        shifts_y=shift_tensor,
        shifts_x=shift_tensor.clone(),
        distances={
            name: (sums[name] / images_seen).view(len(shift_list), -1).float() for name in names
        },
        distance=distance,
        images=images_seen,
        params={"input_shift": "circular"},
    )
