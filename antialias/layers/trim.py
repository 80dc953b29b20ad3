"""The floor-mode size rule as a layer: :class:`TrimToStride`, which converted models hold."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["TrimToStride"]


class TrimToStride(nn.Module):
    """Drop the last ``L % stride`` samples of each spatial axis, as a floor-mode pool ignores them.

    :func:`antialias.conversion.convert` puts it before the downsampling layer that replaces a floor-mode
    ``AvgPool(kernel_size == stride)``, so the converted model keeps the original's output size.

    Args:
        stride: one stride per spatial axis (the last ``len(stride)`` axes of the input).

    Shape:
        - Input: :math:`(*, L_1, ..., L_d)`.
        - Output: :math:`(*, L_1 - L_1 \\bmod s_1, ..., L_d - L_d \\bmod s_d)`.

    Example:
        >>> import torch
        >>> TrimToStride((2, 3))(torch.zeros(1, 2, 5, 7)).shape
        torch.Size([1, 2, 4, 6])
    """

    def __init__(self, stride: Sequence[int]) -> None:
        super().__init__()
        if not stride or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in stride
        ):
            raise ValueError(f"stride must be a non-empty sequence of ints >= 1, got {stride!r}")
        self.stride = tuple(stride)

    def forward(self, input: Tensor) -> Tensor:
        ndim = len(self.stride)
        index = [slice(None)] * (input.dim() - ndim)
        index += [
            slice(0, input.size(d - ndim) - input.size(d - ndim) % s)
            for d, s in enumerate(self.stride)
        ]
        return input[tuple(index)]

    def extra_repr(self) -> str:
        return f"stride={self.stride}"
