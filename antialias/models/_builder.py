"""Shared machinery of the zoo's builders: build torchvision's model, transform it in place, load weights.

Every family module (``resnet.py``, ``vgg.py`` ...) holds one small transform that swaps modules of
torchvision's model for anti-aliased ones with the layer primitives, so the parameter names stay
torchvision's:

- a strided ``MaxPool2d`` becomes :class:`~antialias.layers.MaxBlurPool2d` (max at stride 1, blur-pool);
- a strided conv whose blur may go before it becomes :class:`~antialias.layers.BlurConv2d` (blur-pool,
  then the same conv at stride 1; ``weight``/``bias`` keep their names);
- a parameter-free module (ReLU, AvgPool) becomes a parameter-free composite or a blur-pool.

``method`` picks the subsampling layer through :func:`~antialias.layers.create_downsample` (``"blur"``
built in; other registered methods, e.g. polyphase sampling, plug in the same places).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from antialias.filters import FilterSpec, filter_name
from antialias.layers import (
    BlurConv2d,
    MaxBlurPool2d,
    create_downsample,
    link_residual_phases,
    list_downsample_methods,
)
from antialias.models._load import (
    WeightsArg,
    describe_weights,
    infer_filter_size,
    load_state_dict,
    read_state_dict,
    resolve_weights,
)
from antialias.models._weights import WeightsEnum

__all__ = ["CONV_PADDING_MODES", "AntialiasConfig", "build"]

logger = logging.getLogger(__name__)

CONV_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

Transform = Callable[[nn.Module, "AntialiasConfig"], None]


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[-1]))


@dataclass(frozen=True)
class AntialiasConfig:
    """How a family transform anti-aliases a model (the builders' keyword arguments).

    Attributes:
        filter_size: the blur filter (int ``k``, family string or taps).
        antialias_stem: also anti-alias the stem's strided convolution (the reference's
            ``pool_only=False``).
        method: the downsampling method of :func:`~antialias.layers.create_downsample`.
        pad_mode: padding of the blur (``"reflect"``, ``"replicate"``, ``"zeros"``, ``"circular"``).
        conv_padding_mode: ``padding_mode`` given to every convolution (``"circular"`` for exact
            invariance to circular shifts with polyphase methods).
    """

    filter_size: FilterSpec = 4
    antialias_stem: bool = False
    method: str = "blur"
    pad_mode: str = "reflect"
    conv_padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        if self.method not in list_downsample_methods():
            raise ValueError(f"method must be one of {list_downsample_methods()}, got {self.method!r}")
        if self.conv_padding_mode not in CONV_PADDING_MODES:
            raise ValueError(f"conv_padding_mode must be one of {CONV_PADDING_MODES}, got {self.conv_padding_mode!r}")
        if not isinstance(self.antialias_stem, bool):
            raise TypeError(f"antialias_stem must be a bool, got {self.antialias_stem!r}")

    def downsample(self, channels: int, stride: int | tuple[int, ...] = 2) -> nn.Module:
        """The layer that subsamples a ``channels``-channel map by ``stride`` (a blur-pool for ``"blur"``)."""
        sh, sw = _pair(stride)
        return create_downsample(self.method, 2, channels, sh if sh == sw else (sh, sw),
                                 filter_size=self.filter_size, pad_mode=self.pad_mode)

    def max_pool(self, channels: int, kernel_size: Any, stride: Any, padding: Any = 0) -> nn.Module:
        """Replacement of ``MaxPool2d(kernel_size, stride, padding)``: max at stride 1, then subsample."""
        if self.method == "blur":
            return MaxBlurPool2d(kernel_size=kernel_size, stride=stride, padding=padding, channels=channels,
                                 filter_size=self.filter_size, pad_mode=self.pad_mode)
        # A parameter-free composite: it adds no state-dict key.
        if self.conv_padding_mode == "circular":
            # Wrap around (size kept) instead of -inf padding: with circular convolutions and polyphase
            # sampling the network is then exactly invariant to circular shifts.
            kh, kw = _pair(kernel_size)
            pad = nn.CircularPad2d(((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))
            return nn.Sequential(pad, nn.MaxPool2d((kh, kw), 1), self.downsample(channels, stride))
        return nn.Sequential(nn.MaxPool2d(kernel_size, 1, padding), self.downsample(channels, stride))

    def from_max_pool(self, pool: nn.MaxPool2d, channels: int) -> nn.Module:
        """:meth:`max_pool` with the kernel, stride and padding of ``pool``."""
        if pool.ceil_mode or pool.return_indices or _pair(pool.dilation) != (1, 1):  # type: ignore[arg-type]
            raise ValueError(f"cannot anti-alias {pool}: ceil_mode, return_indices and dilation are not supported")
        stride = pool.stride if pool.stride is not None else pool.kernel_size
        return self.max_pool(channels, pool.kernel_size, stride, pool.padding)

    def strided_conv(self, conv: nn.Conv2d, stride: int | tuple[int, ...]) -> nn.Module:
        """``conv`` that subsamples its input by ``stride`` first (blur, then ``conv`` at stride 1).

        ``conv`` keeps its Parameters (and so its state-dict keys) inside the :class:`BlurConv2d`.
        """
        conv.stride = _pair(stride)
        return BlurConv2d.from_conv(conv, self.filter_size, self.pad_mode, downsample=self.downsample(conv.in_channels, stride))

    def after(self, module: nn.Module, channels: int, stride: int | tuple[int, ...] = 2) -> nn.Module:
        """``module`` (parameter-free, e.g. a ReLU) followed by a subsampling by ``stride``."""
        return nn.Sequential(module, self.downsample(channels, stride))


def _same_filter(a: FilterSpec, b: FilterSpec) -> bool:
    from antialias.filters import get_taps

    return tuple(get_taps(a)) == tuple(get_taps(b))


def _default_device() -> torch.device:
    return torch.empty(0).device


def build(
    arch: str,
    torchvision_name: str,
    transform: Transform,
    *,
    weights: WeightsArg,
    progress: bool,
    filter_size: FilterSpec | None,
    antialias_stem: bool,
    method: str,
    pad_mode: str,
    conv_padding_mode: str,
    has_stem: bool = True,
    circular: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build torchvision's ``torchvision_name``, anti-alias it with ``transform``, load ``weights``.

    ``filter_size=None`` takes the filter of the weights (catalog entry, or the reference's blur
    buffers in a checkpoint), else 4. With weights, the model is created without random
    initialization (every parameter and buffer is then overwritten by the strict load).

    ``circular=True`` is :func:`antialias.convert`'s option of the same name: the stem anti-aliased,
    circular padding everywhere, and a self-test of the invariance to circular shifts (needs a
    polyphase ``method``).
    """
    if not isinstance(circular, bool):
        raise TypeError(f"circular must be True or False, got {circular!r}")
    if circular:
        if method == "blur":
            raise ValueError("circular=True promises invariance to every circular shift, which needs a method that "
                             "picks its sampling phase from the content ('aps', 'lps'), got method='blur'")
        antialias_stem, pad_mode, conv_padding_mode = has_stem, "circular", "circular"
    if antialias_stem and not has_stem:
        raise ValueError(f"{arch} has no strided stem convolution (its first subsampling is a max pool, "
                         "which is always anti-aliased): antialias_stem=True has no meaning")
    weights = resolve_weights(weights, arch)
    state_dict: Mapping[str, Tensor] | None = None
    if isinstance(weights, WeightsEnum):
        entry = weights.value
        if entry.filter_size is not None:
            if filter_size is None:
                filter_size = entry.filter_size
            elif not _same_filter(filter_size, entry.filter_size):
                raise ValueError(f"weights {weights!r} were trained with filter_size={entry.filter_size}, "
                                 f"got filter_size={filter_name(filter_size)}")
        num_classes = kwargs.setdefault("num_classes", entry.num_classes)
        if num_classes != entry.num_classes:
            raise ValueError(f"weights {weights!r} have {entry.num_classes} classes, got num_classes={num_classes}; "
                             "load them with the default num_classes, then replace the classifier to fine-tune")
        if entry.recipe != "torchvision":
            logger.info("%s: %s", weights, entry.license)
    if weights is not None:
        state_dict = read_state_dict(weights, progress=progress)
        if filter_size is None:
            filter_size = infer_filter_size(state_dict)
    config = AntialiasConfig(4 if filter_size is None else filter_size, antialias_stem, method, pad_mode, conv_padding_mode)

    import torchvision.models

    builder = getattr(torchvision.models, torchvision_name)
    if state_dict is None:
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
    transform(model, config)
    if conv_padding_mode != "zeros":
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.padding_mode = conv_padding_mode
    link_residual_phases(model)  # polyphase methods: each shortcut keeps its main path's phase
    if state_dict is not None:
        load_state_dict(model, state_dict, source=describe_weights(weights), arch=arch)
    if circular:
        from antialias.convert import check_circular_invariance

        check_circular_invariance(model, torch.randn(1, 3, 64, 64).to(next(model.parameters())))
    return model


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


def document(enum: type[WeightsEnum], stem_default: str = "``False``") -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Append the shared Args section to a builder's docstring."""

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        fn.__doc__ = (fn.__doc__ or "").rstrip() + "\n" + BUILDER_ARGS.format(enum=enum.__name__, stem_default=stem_default)
        return fn

    return decorator
