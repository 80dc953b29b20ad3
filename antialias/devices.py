"""The one device resolver of the library: metrics, training and the command line all ask it."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["resolve_device"]


def resolve_device(
    device: torch.device | str | None = None, *, model: nn.Module | None = None, local_rank: int = 0
) -> torch.device:
    """The device to run on.

    Args:
        device: a device or its name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...); ``None``
            or ``"auto"``: the device of ``model``'s first parameter or buffer when a model is given
            (CPU for a model without tensors), else CUDA when available, else CPU.
        model: the model whose device ``None`` means.
        local_rank: the process's rank on its machine: ``"cuda"`` without an index (and the CUDA
            default) gets GPU ``local_rank % device_count``, as under torchrun.

    Raises:
        ValueError: not a device name, a CUDA device on a machine without CUDA, or the ``meta``
            device (it holds no data).

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device(model=torch.nn.Linear(2, 2))
        device(type='cpu')
    """
    if device is None or device == "auto":
        if model is not None:
            for tensor in [*model.parameters(), *model.buffers()]:
                return tensor.device
            return torch.device("cpu")
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device {device!r} is not a device name; expected auto, cpu, cuda, cuda:N, mps, ... ({exc})"
        ) from None
    if resolved.type == "meta":
        raise ValueError(
            f"device {device!r} holds no data (shapes only); expected auto, cpu, cuda, cuda:N or mps"
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was asked for but CUDA is not available on this machine"
            )
        if resolved.index is None:
            resolved = torch.device("cuda", local_rank % torch.cuda.device_count())
    return resolved
