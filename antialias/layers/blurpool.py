"""Anti-aliased sampling layers (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML
2019).

- :class:`BlurPool2d` (and 1d/3d): low-pass filter, then subsample. Replaces a strided subsampling.
- :class:`MaxBlurPool2d`: max at stride 1, then blur-pool. Replaces ``MaxPool2d(stride > 1)``.
- :class:`BlurConv2d`: an ``nn.Conv2d`` that blur-pools its input and convolves at stride 1, with
  the parameter names of ``nn.Conv2d`` (checkpoints of the plain network load into it).

The layers hold their filter as Python floats (``taps``): they have no state, so anti-aliased models
share their state-dict keys with the plain ones and there is nothing to place on a device.
Signatures: ``channels`` first, every option keyword-only (``BlurPool2d(64, stride=2)``);
:class:`MaxBlurPool2d` and :class:`BlurConv2d` keep the positional arguments of ``nn.MaxPool2d`` and
``nn.Conv2d``. An empty batch or channel axis gives an empty output; an axis too short for the
operation is refused with ``ValueError`` naming the shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from antialias.filters import FilterSpec, filter_name, get_taps
from antialias.layers._checks import (
    IntOrTuple,
    check_channels,
    check_pad_mode,
    check_pad_off,
    check_size,
    check_tuple,
    compact,
)
from antialias.layers.functional import _blur_pool, _max_blur_pool

__all__ = ["BlurConv1d", "BlurConv2d", "BlurConv3d", "BlurPool1d", "BlurPool2d", "BlurPool3d"]
__all__ += ["MaxBlurPool1d", "MaxBlurPool2d", "MaxBlurPool3d"]


class _BlurBase(nn.Module):
    """The channel count, filter and padding of blur-pool and blur-upsample layers, checked."""

    dims: ClassVar[int] = 2

    def __init__(self, channels: int | None, filter_size: FilterSpec | None, pad_mode: str) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.filter_size = filter_size
        self.pad_mode = check_pad_mode(pad_mode)
        self._name = type(self).__name__

    def _filter_repr(self) -> str:
        name = "None" if self.filter_size is None else filter_name(self.filter_size)
        return f"channels={self.channels}, filter_size={name}"


class _BlurPoolNd(_BlurBase):
    def __init__(
        self,
        channels: int | None = None,
        *,
        stride: IntOrTuple = 2,
        filter_size: FilterSpec = 4,
        pad_mode: str = "reflect",
        pad_off: int = 0,
    ) -> None:
        super().__init__(channels, filter_size, pad_mode)
        self.taps = list(get_taps(filter_size))
        self.stride = list(check_tuple(stride, self.dims, "stride"))
        self.pad_off = check_pad_off(pad_off)

    def forward(self, input: Tensor) -> Tensor:
        args = (self.taps, self.stride, self.pad_mode, self.pad_off, self._name, self.channels)
        return _blur_pool(input, *args)

    def extra_repr(self) -> str:
        s = f"{self._filter_repr()}, stride={compact(self.stride)}, pad_mode={self.pad_mode!r}"
        return s + (f", pad_off={self.pad_off}" if self.pad_off else "")


class BlurPool1d(_BlurPoolNd):
    """Blur-pool for 1D signals; see :class:`BlurPool2d`.

    Shape:
        ``(N, C, L)`` -> ``(N, C, ceil(L / stride))`` (``ceil((L + 2 * pad_off) / stride)``).

    Example:
        >>> BlurPool1d(filter_size=3)(torch.tensor([[[0.0, 0.0, 8.0, 0.0]]]))
        tensor([[[0., 4.]]])
    """

    dims = 1


class BlurPool2d(_BlurPoolNd):
    """Blur-pool (Zhang, ICML 2019): low-pass filter with a separable kernel, then subsample by
    ``stride``.

    Args:
        channels: number of input channels, checked at call; ``None`` accepts any.
        stride: subsampling factor, an int or ``(s_h, s_w)``.
        filter_size: the low-pass filter: ``k`` for the binomial filter of ``k`` taps (``4`` is the
            paper's recommendation for halving), a family string such as ``"box-2"``, or explicit
            taps.
        pad_mode: ``"reflect"`` (default), ``"replicate"``, ``"zeros"`` or ``"circular"``.
        pad_off: extra padding on every side, as the reference's ``pad_off``.

    Shape:
        - Input: ``(N, C, H, W)``, contiguous or channels_last (kept).
        - Output: ``(N, C, H_out, W_out)`` with ``H_out = ceil(H / stride)`` for odd and even
          ``filter_size`` (``ceil((H + 2 * pad_off) / stride)`` in general). ``N`` or ``C`` may be
          0; ``H`` and ``W`` must be at least 1.

    Convention:
        ``(k - 1) // 2`` samples are padded before and ``k // 2`` after each axis. Under
        ``"reflect"``, an axis shorter than or equal to its padding (a 2x2 map with ``k >= 4``) is
        padded with ``"replicate"`` for that call. ``"circular"`` wraps as often as needed; then
        shifting the input by ``stride`` shifts the output by exactly one sample.

    Example:
        >>> pool = BlurPool2d(channels=3, filter_size=4)
        >>> pool(torch.ones(2, 3, 7, 8)).shape
        torch.Size([2, 3, 4, 4])
        >>> pool
        BlurPool2d(channels=3, filter_size=4, stride=2, pad_mode='reflect')
    """


class BlurPool3d(_BlurPoolNd):
    """Blur-pool for volumes (video, 3D scans); see :class:`BlurPool2d` (``stride=(1, 2, 2)`` keeps
    time).

    Shape:
        ``(N, C, D, H, W)`` -> ``(N, C, ceil(D / s_d), ceil(H / s_h), ceil(W / s_w))``.

    Example:
        >>> BlurPool3d(stride=(1, 2, 2))(torch.ones(1, 2, 4, 6, 6)).shape
        torch.Size([1, 2, 4, 3, 3])
    """

    dims = 3


class _MaxBlurPoolNd(_BlurPoolNd):
    def __init__(
        self,
        kernel_size: IntOrTuple = 2,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        *,
        channels: int | None = None,
        filter_size: FilterSpec = 4,
        pad_mode: str = "reflect",
        pad_off: int = 0,
    ) -> None:
        kernel = list(check_tuple(kernel_size, self.dims, "kernel_size"))
        stride = kernel if stride is None else stride
        super().__init__(
            channels, stride=stride, filter_size=filter_size, pad_mode=pad_mode, pad_off=pad_off
        )
        self.kernel_size = kernel
        self.padding = list(check_tuple(padding, self.dims, "padding", minimum=0))
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                "padding must be at most half of kernel_size, "
                f"got padding={padding!r} and kernel_size={kernel_size!r}"
            )

    def forward(self, input: Tensor) -> Tensor:
        args = (self.kernel_size, self.padding, self.taps, self.stride, self.pad_mode)
        return _max_blur_pool(input, *args, self.pad_off, self._name, self.channels)

    def extra_repr(self) -> str:
        kernel, padding = compact(self.kernel_size), compact(self.padding)
        return f"kernel_size={kernel}, padding={padding}, " + super().extra_repr()

    @classmethod
    def from_max_pool(
        cls,
        pool: nn.Module,
        *,
        channels: int | None = None,
        filter_size: FilterSpec = 4,
        pad_mode: str = "reflect",
    ) -> _MaxBlurPoolNd:
        """Build the anti-aliased replacement of a ``nn.MaxPoolNd`` (same kernel, padding and
        stride). Dilated, ``ceil_mode`` and index-returning max pools are refused (``ValueError``).
        """
        if getattr(pool, "return_indices", False) or getattr(pool, "ceil_mode", False):
            raise ValueError(
                f"cannot anti-alias {pool}: return_indices and ceil_mode are not supported"
            )
        p: Any = pool  # any max-pool-like module: its attributes type as Tensor | Module
        if any(d != 1 for d in check_tuple(p.dilation, cls.dims, "dilation")):
            raise ValueError(f"cannot anti-alias {pool}: dilated max pooling is not supported")
        stride = p.stride if p.stride is not None else p.kernel_size
        options: dict[str, Any] = {"filter_size": filter_size, "pad_mode": pad_mode}
        return cls(p.kernel_size, stride, p.padding, channels=channels, **options)


class MaxBlurPool1d(_MaxBlurPoolNd):
    """Max-blur-pool for 1D signals; see :class:`MaxBlurPool2d`.

    Shape:
        ``(N, C, L)`` -> ``(N, C, ceil((L + 2 * padding - kernel_size + 1) / stride))``.

    Example:
        >>> MaxBlurPool1d()(torch.zeros(1, 4, 10)).shape
        torch.Size([1, 4, 5])
    """

    dims = 1


class MaxBlurPool2d(_MaxBlurPoolNd):
    """Max-blur-pool (Zhang, ICML 2019): ``MaxPool2d(kernel_size, stride=1)``, then
    :class:`BlurPool2d`.

    The anti-aliased replacement of ``MaxPool2d(kernel_size, stride, padding)``, with its positional
    arguments (``MaxBlurPool2d(3, 2, 1)`` replaces ``MaxPool2d(3, 2, 1)``): the max is evaluated
    densely and the subsampling is low-pass filtered. The blur's options are keyword-only.

    Args:
        kernel_size: window of the max.
        stride: subsampling factor of the blur-pool; ``None``: ``kernel_size`` (as
            ``nn.MaxPool2d``).
        padding: implicit ``-inf`` padding of the max (at most ``kernel_size // 2``).
        channels: number of input channels; ``None`` accepts any.
        filter_size: the low-pass filter (int ``k``, family string or taps).
        pad_mode: padding of the blur.
        pad_off: extra padding of the blur.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, ceil(H' / stride), ceil(W' / stride))`` with ``H' = H + 2 * padding -
          kernel_size + 1``; ``H' >= 1`` is required (``ValueError`` otherwise, e.g. a 1x1 map at
          ``kernel_size=2``).

    Example:
        >>> MaxBlurPool2d(kernel_size=2, filter_size=4)(torch.zeros(1, 8, 112, 112)).shape
        torch.Size([1, 8, 56, 56])
    """


class MaxBlurPool3d(_MaxBlurPoolNd):
    """Max-blur-pool for volumes; see :class:`MaxBlurPool2d`.

    Shape:
        ``(N, C, D, H, W)`` -> each axis ``ceil((L + 2 * padding - kernel_size + 1) / stride)``.

    Example:
        >>> MaxBlurPool3d()(torch.zeros(1, 2, 8, 8, 8)).shape
        torch.Size([1, 2, 4, 4, 4])
    """

    dims = 3


if TYPE_CHECKING:  # the mixin always sits before an nn.ConvNd: the type checker sees that base
    _ConvBase = nn.modules.conv._ConvNd
else:
    _ConvBase = object


class _BlurConvMixin(_ConvBase):
    """A ``nn.ConvNd`` whose input is blur-pooled by ``stride`` first; the convolution runs at
    stride 1. The blur-pool is a child ``blur`` without persistent state, so the state dict has
    exactly the keys of the plain convolution (``weight``, ``bias``)."""

    dims: ClassVar[int]
    _conv_cls: ClassVar[type[nn.modules.conv._ConvNd]]
    blur: nn.Module

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 2,
        padding: Any = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        filter_size: FilterSpec = 4,
        pad_mode: str = "reflect",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        conv_init: Any = self._conv_cls.__init__  # nn.ConvNd's own arguments, at stride 1
        conv_init(self, in_channels, out_channels, kernel_size, 1, padding, dilation, groups, bias,
                  padding_mode, device, dtype)  # fmt: skip
        self._name = type(self).__name__
        self.blur = BLUR_POOL[self.dims](
            in_channels, stride=stride, filter_size=filter_size, pad_mode=pad_mode
        )
        self.blur._name = self._name  # its input errors name the layer that was called

    def _conv_minimum(self) -> list[int]:
        """The smallest blurred map the convolution takes, from the current attributes (``convert``
        may change ``padding_mode`` after construction): the padded map must hold the dilated kernel,
        and reflect padding needs more samples than it pads, circular as many."""
        spans = [d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size, strict=True)]
        pads = [0] * len(spans) if isinstance(self.padding, str) else list(self.padding)
        if self.padding == "same":
            pads = [span // 2 for span in spans]
        wrap = {"reflect": 1, "circular": 0}.get(self.padding_mode)
        return [
            max(span - 2 * p, 1) if wrap is None else max(span - 2 * p, 1, p + wrap)
            for span, p in zip(spans, pads, strict=True)
        ]

    def forward(self, input: Tensor) -> Tensor:
        y = self.blur(input)  # the blur checks the input
        need = self._conv_minimum()
        if any(n < m for n, m in zip(y.shape[2:], need, strict=True)):
            # the smallest input, for a blur that subsamples L samples to ceil(L / stride)
            stride = getattr(self.blur, "stride", None)
            if stride is not None:
                strides = [stride] * len(need) if isinstance(stride, int) else list(stride)
                need = [s * (m - 1) + 1 for s, m in zip(strides, need, strict=True)]
            reason = "after the blur-pool by stride, the dilated kernel must fit"
            check_size(input if stride is not None else y, need, self._name, reason)
        return self._conv_forward(y, self.weight, self.bias)

    @classmethod
    def from_conv(
        cls,
        conv: nn.Module,
        *,
        filter_size: FilterSpec = 4,
        pad_mode: str = "reflect",
        downsample: nn.Module | None = None,
    ) -> nn.Module:
        """Build the blurred version of ``conv``, sharing its ``weight`` and ``bias`` Parameters.

        The convolution's stride moves to the blur-pool; the new convolution runs at stride 1.
        ``downsample`` replaces the blur-pool by another layer that subsamples by the conv's stride
        (e.g. from :func:`~antialias.layers.create_downsample`); it must hold no persistent state.
        """
        if not isinstance(conv, cls._conv_cls) or isinstance(conv, _BlurConvMixin):
            raise TypeError(
                f"{cls.__name__}.from_conv expects a plain {cls._conv_cls.__name__}, "
                f"got {type(conv).__name__}"
            )
        c = conv
        new = cls(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation,
                  c.groups, c.bias is not None, c.padding_mode, filter_size=filter_size,
                  pad_mode=pad_mode, device="meta")  # fmt: skip
        new.weight, new.bias = conv.weight, conv.bias
        if downsample is not None:
            new.blur = downsample
        return new.train(conv.training)


class BlurConv1d(_BlurConvMixin, nn.Conv1d):
    """``nn.Conv1d`` with anti-aliased stride; see :class:`BlurConv2d`.

    Shape:
        ``(N, C_in, L)`` -> ``(N, C_out, L_out)``: the blurred input (``ceil(L / stride)``)
        convolved at stride 1.

    Example:
        >>> BlurConv1d(4, 8, 3, stride=2, padding=1)(torch.zeros(1, 4, 10)).shape
        torch.Size([1, 8, 5])
    """

    dims = 1
    _conv_cls = nn.Conv1d


class BlurConv2d(_BlurConvMixin, nn.Conv2d):
    """``nn.Conv2d`` with anti-aliased stride: blur-pool the input by ``stride``, then convolve at
    stride 1.

    The reference's ResNet puts the blur before the shortcut's 1x1 convolution (an exactly
    equivalent placement) and before the convolution after a strided block's first activation; this
    layer is that placement with ``nn.Conv2d``'s parameter names, so ``load_state_dict`` takes the
    plain model's weights.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode:
            as ``nn.Conv2d`` (positional in that order); ``stride`` is realized by the blur-pool.
        filter_size: the low-pass filter (int ``k``, family string or taps); keyword-only.
        pad_mode: padding of the blur; keyword-only.
        device: device of the parameters; keyword-only.
        dtype: dtype of the parameters; keyword-only.

    Shape:
        - Input: ``(N, C_in, H, W)``
        - Output: ``(N, C_out, H_out, W_out)``: the blurred input has ``ceil(H / stride)`` rows,
          then the stride-1 convolution (same size as ``nn.Conv2d``'s output for 1x1 and for odd
          kernels with ``padding = (k - 1) // 2``).

    Example:
        >>> conv = BlurConv2d(16, 32, kernel_size=1, stride=2, bias=False)
        >>> conv(torch.zeros(1, 16, 56, 56)).shape
        torch.Size([1, 32, 28, 28])
        >>> sorted(conv.state_dict())
        ['weight']
    """

    dims = 2
    _conv_cls = nn.Conv2d


class BlurConv3d(_BlurConvMixin, nn.Conv3d):
    """``nn.Conv3d`` with anti-aliased stride; see :class:`BlurConv2d`.

    Shape:
        ``(N, C_in, D, H, W)`` -> the blurred input (each axis ``ceil(L / stride)``) convolved at
        stride 1.

    Example:
        >>> BlurConv3d(2, 4, 1, stride=(1, 2, 2))(torch.zeros(1, 2, 4, 8, 8)).shape
        torch.Size([1, 4, 4, 4, 4])
    """

    dims = 3
    _conv_cls = nn.Conv3d


BLUR_POOL: dict[int, type[_BlurPoolNd]] = {1: BlurPool1d, 2: BlurPool2d, 3: BlurPool3d}
MAX_BLUR_POOL: dict[int, type[_MaxBlurPoolNd]] = {
    1: MaxBlurPool1d,
    2: MaxBlurPool2d,
    3: MaxBlurPool3d,
}
BLUR_CONV: dict[int, type[nn.Module]] = {1: BlurConv1d, 2: BlurConv2d, 3: BlurConv3d}
