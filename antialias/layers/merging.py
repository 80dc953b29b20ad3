"""Swin's patch merging with a low-pass filter first: :class:`BlurPatchMerging`.

A patch merging (Swin v1 and v2, torchvision's and timm's) concatenates each 2x2 block of tokens and
applies a norm and a linear reduction (v2: the reduction first, a 2x2 convolution at stride 2): a
patchify of the token map, which aliases like any strided layer. :class:`BlurPatchMerging` blurs the ``(N, H, W, C)`` token map at stride 1,
then merges exactly as before, with the original's ``reduction`` and ``norm``: the state dict keeps
its keys and values.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.filters import FilterSpec
from antialias.layers.blurpool import BlurPool2d

__all__ = ["BlurPatchMerging"]


def norm_first(merging: nn.Module) -> bool | None:
    """Whether a patch merging normalises before its reduction (Swin v1: a ``norm`` over the
    ``reduction``'s ``4 * C`` inputs) or after it (v2: over its outputs); ``None``: ``merging`` has no
    such ``reduction`` (an ``nn.Linear``) and ``norm``."""
    reduction: Any = getattr(merging, "reduction", None)
    shape = tuple(getattr(getattr(merging, "norm", None), "normalized_shape", ()))
    if not isinstance(reduction, nn.Linear) or reduction.in_features % 4:
        return None
    if shape == (reduction.in_features,):
        return True
    return False if shape == (reduction.out_features,) else None


class BlurPatchMerging(nn.Module):
    """Patch merging after a low-pass filter at stride 1.

    Args:
        reduction: the linear map of the ``4 * C`` merged features.
        norm: the norm, over ``4 * C`` features (``norm_first``) or over the reduction's outputs.
        norm_first: Swin v1's order (norm, then reduction); ``False``: v2's.
        blur: the low-pass filter of the ``(N, C, H, W)`` map, at stride 1; by default
            ``BlurPool2d(C, stride=1, filter_size=4)``.

    Shape:
        - Input: ``(*, H, W, C)``, tokens last (Swin's layout).
        - Output: ``(*, ceil(H / 2), ceil(W / 2), C_out)``: odd sides are padded with a zero row or
          column at the end, as Swin does.

    Example:
        >>> import torch
        >>> merge = BlurPatchMerging(torch.nn.Linear(32, 16, bias=False), torch.nn.LayerNorm(32))
        >>> merge(torch.randn(2, 7, 6, 8)).shape
        torch.Size([2, 4, 3, 16])
    """

    def __init__(
        self,
        reduction: nn.Linear,
        norm: nn.Module,
        norm_first: bool = True,
        blur: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if reduction.in_features % 4:
            raise ValueError(
                f"the reduction must take 4 * C features, got in_features={reduction.in_features}"
            )
        channels = reduction.in_features // 4
        self.blur = BlurPool2d(channels, stride=1) if blur is None else blur
        self.norm_first = norm_first
        self.reduction = reduction
        self.norm = norm

    @classmethod
    def from_merging(
        cls,
        merging: nn.Module,
        *,
        filter_size: FilterSpec = 4,
        pad_mode: str = "reflect",
        blur: nn.Module | None = None,
    ) -> BlurPatchMerging:
        """The blurred twin of a Swin patch merging, sharing its ``reduction`` and ``norm``; their
        keys keep the original's order in the state dict. Raises ``TypeError`` for a module without
        them."""
        first = norm_first(merging)
        if first is None:
            raise TypeError(
                f"expected a patch merging with a reduction (nn.Linear of 4 * C inputs) and a norm "
                f"over its inputs or outputs, got {type(merging).__name__}"
            )
        m: Any = merging
        channels = m.reduction.in_features // 4
        if blur is None:
            blur = BlurPool2d(channels, stride=1, filter_size=filter_size, pad_mode=pad_mode)
        new = cls(m.reduction, m.norm, first, blur)
        for name in [n for n, _ in merging.named_children() if n in ("reduction", "norm")]:
            new._modules[name] = new._modules.pop(name)  # the original's order in the state dict
        return new.train(merging.training)

    def forward(self, input: Tensor) -> Tensor:
        h, w, c = input.shape[-3:]
        tokens = input.reshape(-1, h, w, c).permute(0, 3, 1, 2)  # (N, C, H, W), channels_last
        x = self.blur(tokens).permute(0, 2, 3, 1).reshape(input.shape)
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        # the 2x2 block of each output token, in Swin's order: (0, 0), (1, 0), (0, 1), (1, 1)
        merged = torch.cat([x[..., i::2, j::2, :] for j in (0, 1) for i in (0, 1)], dim=-1)
        if self.norm_first:
            return self.reduction(self.norm(merged))
        return self.norm(self.reduction(merged))

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"
