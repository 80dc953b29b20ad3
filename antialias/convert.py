"""Anti-alias any CNN in one call, keeping its weights: :func:`convert`.

The rules (Zhang, ICML 2019, and the reference code's placements):

- ``MaxPoolNd(stride > 1)`` -> max at stride 1, then the downsampling layer (``MaxBlurPool2d`` for the
  default ``method="blur"``).
- ``AvgPoolNd(kernel == stride)`` -> the downsampling layer alone (``AvgPool2d(2)`` is the blur ``k = 2`` on
  even maps, so a longer filter replaces it); ``AvgPoolNd(kernel > stride)`` -> the average at stride 1,
  then the downsampling layer.
- A strided convolution -> the same convolution at stride 1; the downsampling layer goes after the
  normalization and activation that follow it (conv -> norm -> act -> blur), found on the model's
  ``torch.fx`` graph. A strided 1x1 convolution (a ResNet shortcut) gets the blur before it
  (``BlurConv2d``): the two commute, and blurring the thinner input is cheaper.
- Left alone, and reported: the stem (the first downsampling layer in execution order, when it is a
  convolution, as the reference does), transposed and dilated convolutions, vision-transformer patch
  embeddings (kernel == stride >= 8), stride-1 layers, layers below ``min_channels`` or filtered by
  ``include``/``exclude``, and strided ``F.max_pool2d``/``F.conv2d`` calls written in a ``forward``
  (only modules are edited).

Sizes: the converted layers give the original output sizes for the usual configurations (3x3 stride-2
convolutions with padding 1, 1x1 stride-2, kernel-2 stride-2), with ``ceil(L / stride)`` samples. Two
exceptions: ``ceil_mode=True`` max pools (the size can be one sample smaller; said in the report) and
``AvgPool(kernel == stride)`` on odd sizes (``ceil`` instead of ``floor``).

Where does the downsampling layer go after a strided convolution? The graph is only analysed; the modules
are edited so that the model keeps its classes and its state-dict keys. Starting at the convolution's
node, the converter follows single-user norms, activations, dropouts and identities to the last of them,
then, in this order:

1. that value comes out of an ``nn.Identity`` (timm's ``aa`` slot): the Identity becomes the layer;
2. its only user is a stride-1 ``nn.ConvNd``: that convolution becomes ``BlurConv2d`` (blur, then conv),
   the reference's layout for ResNet and MobileNetV2;
3. it is the output of an ``nn.Sequential`` (torchvision's ``Conv2dNormActivation``): the layer is
   appended to it (no index shifts);
4. it comes out of a parameter-free module (an activation): that module becomes
   ``Sequential(activation, layer)``;
5. otherwise the innermost module whose ``forward`` produced the value is re-traced and replaced by a
   ``torch.fx.GraphModule`` with the layer inserted as a new node (reported in
   :attr:`ConversionReport.graph_modules`). Its parameter names are unchanged; its submodules become plain
   containers. If the model is that module, the result is a GraphModule.

Where the model (or part of it) cannot be traced (data-dependent control flow, e.g. a detection model as
a whole), the converter traces its largest traceable submodules (the backbone); a strided convolution
outside them gets the blur before it (``BlurConv2d``): exact for 1x1 convolutions, otherwise the blur
comes before the activation instead of after it. The report says so for each.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
import math
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AvgPoolNd, _LPPoolNd, _MaxPoolNd

from antialias import _fx
from antialias.filters import FilterSpec, get_taps
from antialias.layers.alias_free import replace_activations
from antialias.layers.blurpool import BLUR_CONV, MAX_BLUR_POOL
from antialias.layers.factory import create_downsample, list_downsample_methods
from antialias.layers.functional import check_pad_mode
from antialias.layers.polyphase import link_residual_phases

__all__ = [
    "PLACEMENTS", "ConversionReport", "ConvertedLayer", "ModuleEdit", "SkippedLayer", "check_circular_invariance",
    "convert", "convert_with_report",
]

logger = logging.getLogger(__name__)

PLACEMENTS = ("paper", "reference", "before")
_CONV_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_PLAIN_CONVS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_CIRCULAR_PAD = {1: nn.CircularPad1d, 2: nn.CircularPad2d, 3: nn.CircularPad3d}
_REPLICATE_PAD = {1: nn.ReplicationPad1d, 2: nn.ReplicationPad2d, 3: nn.ReplicationPad3d}
_LEAVES = (_ConvNd, _MaxPoolNd, _AvgPoolNd, _LPPoolNd)  # their forward's F.* call is theirs, not hidden
_PATCH_EMBED_MIN_STRIDE = 8
_EXAMPLE_SIZE = 64
_STRIDED_FUNCTIONS = {
    F.max_pool1d: 2, F.max_pool2d: 2, F.max_pool3d: 2, F.avg_pool1d: 2, F.avg_pool2d: 2, F.avg_pool3d: 2,
    F.conv1d: 3, F.conv2d: 3, F.conv3d: 3,
}  # function -> position of its stride argument


# ----------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class ConvertedLayer:
    """A downsampling layer that was anti-aliased.

    Attributes:
        name: its qualified name in the model.
        old: its original form (one line).
        new: the module now at ``name``.
        placement: where the subsampling happens now, e.g. ``"replaced"``,
            ``"after layer2.0.relu, in BlurConv2d layer2.0.conv2"``, ``"before (1x1 convolution)"``.
    """

    name: str
    old: str
    new: str
    placement: str


@dataclass(frozen=True)
class SkippedLayer:
    """A convolution or pooling layer left as it was, and why."""

    name: str
    layer: str
    reason: str


@dataclass(frozen=True)
class ModuleEdit:
    """A module whose form changed (a converted layer, or the module that took its downsampling layer)."""

    name: str
    old: str
    new: str


@dataclass
class ConversionReport:
    """What :func:`convert_with_report` changed and what it left alone.

    Attributes:
        converted: the anti-aliased downsampling layers, in execution order.
        skipped: the convolutions and pools left alone, with the reason (stride-1 layers included).
        edits: every module whose form changed, with its old and new form.
        graph_modules: modules replaced by a ``torch.fx.GraphModule`` (rule 5 of the module docstring).
        untraced: ``(module name, error)`` of the modules that ``torch.fx`` could not trace.
        padding_mode: convolutions whose ``padding_mode`` was set by ``conv_padding_mode``.
        hooks_moved: replaced modules whose forward/backward hooks now live on their replacement.
        example_forward: the run-time check (execution order, channel counts, strided ``F.*`` calls and
            slicing): ``"ran on (1, 3, 64, 64)"``, or why it could not run.
        invariance: with ``circular=True``, the self-test's result (``""`` otherwise).
    """

    converted: list[ConvertedLayer] = field(default_factory=list)
    skipped: list[SkippedLayer] = field(default_factory=list)
    edits: list[ModuleEdit] = field(default_factory=list)
    graph_modules: list[str] = field(default_factory=list)
    untraced: list[tuple[str, str]] = field(default_factory=list)
    padding_mode: list[str] = field(default_factory=list)
    hooks_moved: list[str] = field(default_factory=list)
    example_forward: str = ""
    invariance: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        stride1 = [s for s in self.skipped if s.reason == "stride 1"]
        others = [s for s in self.skipped if s.reason != "stride 1"]
        lines = [
            f"anti-aliased {len(self.converted)} downsampling layers; left alone {len(others)} "
            f"(and {len(stride1)} stride-1 layers)"
        ]
        width = max([len(x.name) for x in self.converted + others] + [4])
        for c in self.converted:
            lines.append(f"  {c.name:<{width}}  {c.old}  ->  {c.new}  [{c.placement}]")
        if others:
            lines.append("left alone:")
            lines += [f"  {s.name:<{width}}  {s.reason}  ({s.layer})" for s in others]
        if self.graph_modules:
            lines.append("replaced by torch.fx.GraphModule: " + ", ".join(n or "<model>" for n in self.graph_modules))
        if self.untraced:
            lines.append("not traceable: " + ", ".join(f"{n or '<model>'} ({e})" for n, e in self.untraced))
        if self.hooks_moved:
            lines.append("hooks moved to the replacement: " + ", ".join(self.hooks_moved))
        if self.example_forward:
            lines.append(f"example forward: {self.example_forward}")
        if self.invariance:
            lines.append(f"circular-shift invariance: {self.invariance}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Public API


def convert(
    model: nn.Module,
    filter_size: FilterSpec = 4,
    *,
    method: str = "blur",
    pad_mode: str | None = None,
    min_channels: int = 0,
    antialias_stem: bool | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    conv_padding_mode: str | None = None,
    placement: str = "paper",
    circular: bool = False,
    example_inputs: Tensor | tuple[Any, ...] | None = None,
    activations: str | None = None,
    inplace: bool = False,
) -> nn.Module:
    """Anti-alias every downsampling layer of a CNN, keeping its parameters and their names.

    Max pools, average pools and strided convolutions of any ``nn.Module`` (1D, 2D or 3D) are rewritten
    as described in :mod:`antialias.convert`. The state dict keeps exactly its keys and values, so the
    model's checkpoint loads strictly into the result (a learned ``method`` adds the parameters of its
    layers). Use :func:`convert_with_report` to see what changed.

    Args:
        model: the network. Not modified unless ``inplace``.
        filter_size: the low-pass filter: ``k`` (binomial of ``k`` taps; 4 is the paper's choice), a
            family string such as ``"triangle-3"``, or taps.
        method: the downsampling layer, a name registered in :mod:`antialias.layers.factory`
            (``"blur"``; the polyphase module adds ``"aps"`` and ``"lps"``).
        pad_mode: padding of the downsampling layers: ``"reflect"`` (``None``: the default),
            ``"replicate"``, ``"zeros"``, ``"circular"``.
        min_channels: leave layers whose maps have fewer channels alone (pools whose channel count
            cannot be read from the graph are converted).
        antialias_stem: also anti-alias the first downsampling layer when it is a convolution (the
            reference's ``pool_only=False``; the same option as the zoo's). ``None``: the placement's
            default, ``False`` (the full-resolution stem is costly to blur) except for a stride-4 stem
            under ``placement="reference"`` (AlexNet).
        include: ``fnmatch`` patterns on module names; only matching layers are converted.
        exclude: ``fnmatch`` patterns on module names; matching layers are left alone.
        conv_padding_mode: set ``padding_mode`` of every convolution. With
            ``"circular"``, max pools wrap around too (circular padding, max at stride 1, then the
            downsampling layer), so with ``pad_mode="circular"`` the network is exactly equivariant to
            circular shifts by its total stride: shifting the input by the total stride shifts the
            output by one sample.
        placement: ``"paper"`` (conv -> norm -> act -> blur); ``"reference"``, the paper's placement with
            the reference package's choices for its architectures: a ResNet's stem max pool (``conv1``,
            ``bn1``, ``maxpool``, ``layer1`` children) uses kernel 2, and a stride-4 stem convolution
            (AlexNet) keeps stride 2 and is followed by a stride-2 blur after its activation; or
            ``"before"`` (every strided convolution blurs its input: cheaper, no tracing, not the paper's
            order).
        circular: the exact circular-shift guarantee of polyphase sampling (APS, LPS in evaluation
            mode) in one option: sets ``antialias_stem=True``, ``pad_mode="circular"`` and
            ``conv_padding_mode="circular"``, then checks on a random input (the example input's shape)
            that a circular shift leaves the output unchanged. Needs ``method="aps"`` or ``"lps"``; the
            sides of the input must be multiples of the network's total stride.
        example_inputs: the positional arguments of one forward call (a tensor or a tuple), run once
            without gradients to read the execution order, the channel counts that reach each layer,
            and the strided ``F.*`` calls and step-slicing of ``forward`` methods. ``None``: a random
            ``(1, C, 64, 64)`` tensor (``C`` from the first convolution; timm's ``pretrained_cfg``
            input size when the model has one); if that forward fails, the report says so.
        activations: ``"alias_free"`` wraps every activation module in
            :class:`~antialias.layers.AliasFreeActivation` (Michaeli et al., CVPR 2023; with
            ``conv_padding_mode="circular"`` for sub-pixel shifts); ``None`` leaves them.
        inplace: convert ``model`` itself instead of a copy (use the returned module).

    Returns:
        The anti-aliased model: the same classes, with the layers replaced, except where a
        ``torch.fx.GraphModule`` was needed (see the module docstring). A model with nothing to convert
        comes back unchanged, with a ``UserWarning``.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: an unknown ``method``, ``placement``, ``pad_mode``, ``conv_padding_mode``, a bad
            ``filter_size`` / ``min_channels``, or options that contradict ``circular=True``.
        RuntimeError: with ``circular=True``, the converted model is not invariant to circular shifts
            (the message names the layers left alone that break it).

    Example:
        >>> import torch
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        ...                     nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        >>> aa = convert(net, antialias_stem=True)
        >>> aa[2]
        MaxBlurPool2d(kernel_size=2, padding=0, channels=8, filter_size=4, stride=2, pad_mode='reflect')
        >>> aa(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 16, 8, 8])
        >>> sorted(aa.state_dict()) == sorted(net.state_dict())
        True
    """
    _check_activations(activations)
    options = _Options.build(
        filter_size, method, pad_mode, min_channels, antialias_stem, include, exclude, conv_padding_mode, placement, circular
    )
    return _with_activations(_convert(model, options, example_inputs, inplace), activations)[0]


def convert_with_report(
    model: nn.Module,
    filter_size: FilterSpec = 4,
    *,
    method: str = "blur",
    pad_mode: str | None = None,
    min_channels: int = 0,
    antialias_stem: bool | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    conv_padding_mode: str | None = None,
    placement: str = "paper",
    circular: bool = False,
    example_inputs: Tensor | tuple[Any, ...] | None = None,
    activations: str | None = None,
    inplace: bool = False,
) -> tuple[nn.Module, ConversionReport]:
    """:func:`convert`, and a :class:`ConversionReport` of what changed and what was left alone.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AvgPool2d(2))
        >>> aa, report = convert_with_report(net)
        >>> [(c.name, c.new) for c in report.converted]
        [('2', "BlurPool2d(channels=8, filter_size=4, stride=2, pad_mode='reflect')")]
        >>> [(s.name, s.reason) for s in report.skipped]
        [('0', 'stem (antialias_stem=False)')]
    """
    _check_activations(activations)
    options = _Options.build(
        filter_size, method, pad_mode, min_channels, antialias_stem, include, exclude, conv_padding_mode, placement, circular
    )
    return _with_activations(_convert(model, options, example_inputs, inplace), activations)


def _check_activations(activations: str | None) -> None:
    if activations not in (None, "alias_free"):
        raise ValueError(f"activations must be None or 'alias_free', got {activations!r}")


def _with_activations(result: tuple[nn.Module, ConversionReport], activations: str | None) -> tuple[nn.Module, ConversionReport]:
    """``activations="alias_free"``: wrap the converted model's activation modules (parameter-free, no key changes)."""
    if activations == "alias_free":
        replace_activations(result[0])
    return result


def _convert(
    model: nn.Module, options: _Options, example_inputs: Tensor | tuple[Any, ...] | None, inplace: bool
) -> tuple[nn.Module, ConversionReport]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert expects an nn.Module, got {type(model).__name__}")
    inputs = _example_inputs(model, example_inputs)
    if not inplace:
        model = copy.deepcopy(model)
    model, report = _Converter(model, options, inputs).run()
    if options.circular:
        if isinstance(inputs, str):
            report.invariance = _unchecked(inputs)
        else:
            suspects = [f"{s.name} ({s.reason})" for s in report.skipped if s.reason != "stride 1"]
            suspects += [f"{n or '<model>'} (not traceable)" for n, _ in report.untraced]
            report.invariance = check_circular_invariance(model, inputs, suspects)
    if not report.converted:
        reasons = sorted({s.reason for s in report.skipped if s.reason != "stride 1"})
        detail = f" (left alone: {'; '.join(reasons)})" if reasons else ""
        warnings.warn(
            f"convert: nothing to anti-alias in {type(model).__name__}{detail}; the model is returned unchanged",
            UserWarning,
            stacklevel=3,
        )
    return model, report


def _example_inputs(model: nn.Module, given: Tensor | tuple[Any, ...] | None) -> tuple[Any, ...] | str:
    """The example forward's arguments, or why there are none."""
    if given is not None:
        return given if isinstance(given, tuple) else (given,)
    first = next((m for m in model.modules() if isinstance(m, _ConvNd) and not m.transposed), None)
    if first is None:
        return "no example input (pass example_inputs)"
    ndim = len(first.kernel_size)
    size = (_EXAMPLE_SIZE,) * ndim
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if isinstance(cfg, dict) and isinstance(cfg.get("input_size"), (tuple, list)) and len(cfg["input_size"]) == ndim + 1:
        size = tuple(int(v) for v in cfg["input_size"][1:])
    weight = first.weight
    dtype = weight.dtype if weight.is_floating_point() else torch.float32
    x = torch.randn(1, first.in_channels, *size, generator=torch.Generator().manual_seed(0))  # global RNG untouched
    return (x.to(device=weight.device, dtype=dtype),)


_SHIFT_TOLERANCE = 1e-4  # relative to the output's scale: float rounding (APS ties), far below a real change


def check_circular_invariance(model: nn.Module, example_inputs: Tensor | tuple[Any, ...], suspects: Sequence[str] = ()) -> str:
    """Check that a circular shift of the input by one sample leaves ``model``'s output unchanged.

    Runs in evaluation mode (modes are restored) on a random input of the shape of the first example
    input; the other example inputs are passed as they are. Used by ``convert(..., circular=True)`` and
    the zoo's ``circular=True``.

    Args:
        model: the network (its output must be a tensor).
        example_inputs: the positional arguments of a forward call, or the input tensor alone.
        suspects: layers that may break the invariance, named in the error.

    Returns:
        ``"checked: ..."`` with the measured change, or ``"not checked: ..."`` with the reason (the
        forward failed or gave no tensor); a ``UserWarning`` is issued then.

    Raises:
        RuntimeError: the output changed by more than float rounding (``1e-4`` of its scale).
    """
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    if not inputs or not isinstance(inputs[0], Tensor):
        return _unchecked("the first example input is not a tensor")
    x = torch.randn(inputs[0].shape, generator=torch.Generator().manual_seed(1)).to(inputs[0])
    dims = tuple(range(2, x.dim()))
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            outputs = [model(torch.roll(x, shifts, dims), *inputs[1:]) for shifts in ((0,) * len(dims), (1,) * len(dims))]
    except Exception as exc:  # the model's own error on this input
        return _unchecked(f"the forward failed ({type(exc).__name__}: {str(exc)[:200]})")
    finally:
        for module, mode in modes:
            module.training = mode
    if not all(isinstance(y, Tensor) for y in outputs):
        return _unchecked("the output is not a tensor")
    scale = max(1.0, outputs[0].abs().max().item())
    diff = (outputs[1] - outputs[0]).abs().max().item()
    what = f"a 1-sample circular shift of a random {tuple(x.shape)} input changes the output by {diff:.3g}"
    if diff <= _SHIFT_TOLERANCE * scale:
        return f"checked: {what}"
    raise RuntimeError(
        f"{type(model).__name__} is not invariant to circular shifts: {what} (scale {scale:.3g}). Layers that are "
        f"not shift-equivariant: {', '.join(suspects) or 'none left alone; look for position-dependent operations (positional embeddings, fixed-size reshapes, zero padding in forward())'}. "
        "The input's sides must also be multiples of the network's total stride."
    )


def _unchecked(reason: str) -> str:
    warnings.warn(f"circular=True: the invariance was not checked: {reason}", UserWarning, stacklevel=3)
    return f"not checked: {reason}"


# ----------------------------------------------------------------------------------------------------
# Options


def _patterns(value: str | Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(f"{name} must be a pattern string or a sequence of them, got {value!r}")


@dataclass(frozen=True)
class _Options:
    filter_size: FilterSpec
    method: str
    pad_mode: str
    min_channels: int
    antialias_stem: bool | None
    include: tuple[str, ...] | None
    exclude: tuple[str, ...] | None
    conv_padding_mode: str | None
    placement: str
    circular: bool = False

    @classmethod
    def build(
        cls, filter_size: FilterSpec, method: str, pad_mode: str | None, min_channels: int, antialias_stem: bool | None,
        include: Any, exclude: Any, conv_padding_mode: str | None, placement: str, circular: bool = False,
    ) -> _Options:
        get_taps(filter_size)  # raises on a bad filter
        if method not in list_downsample_methods():
            raise ValueError(f"method must be one of {list_downsample_methods()}, got {method!r}")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        if isinstance(min_channels, bool) or not isinstance(min_channels, int) or min_channels < 0:
            raise ValueError(f"min_channels must be an int >= 0, got {min_channels!r}")
        if antialias_stem is not None and not isinstance(antialias_stem, bool):
            raise TypeError(f"antialias_stem must be None, True or False, got {antialias_stem!r}")
        if conv_padding_mode is not None and conv_padding_mode not in _CONV_PADDING_MODES:
            raise ValueError(f"conv_padding_mode must be one of {_CONV_PADDING_MODES} or None, got {conv_padding_mode!r}")
        if not isinstance(circular, bool):
            raise TypeError(f"circular must be True or False, got {circular!r}")
        if circular:
            # Everything the exact circular-shift invariance needs, in one option (checked after the conversion).
            if method == "blur":
                raise ValueError("circular=True promises invariance to every circular shift, which needs a method that "
                                 "picks its sampling phase from the content ('aps', 'lps'), got method='blur'")
            for option, value in (("pad_mode", pad_mode), ("conv_padding_mode", conv_padding_mode)):
                if value not in (None, "circular"):
                    raise ValueError(f"circular=True sets {option}='circular', got {option}={value!r}")
            if antialias_stem is False:
                raise ValueError("circular=True anti-aliases the stem too, got antialias_stem=False")
            pad_mode, conv_padding_mode, antialias_stem = "circular", "circular", True
        return cls(
            filter_size, method, check_pad_mode("reflect" if pad_mode is None else pad_mode), min_channels, antialias_stem,
            _patterns(include, "include"), _patterns(exclude, "exclude"), conv_padding_mode, placement, circular,
        )


# ----------------------------------------------------------------------------------------------------
# Helpers


def _describe(module: nn.Module, depth: int = 0) -> str:
    """A one-line form of a module: ``Type(extra_repr, child=Type(...), ...)``."""
    parts = [module.extra_repr()]
    children = list(module.named_children())
    if children and depth >= 1:
        parts.append("...")
    else:
        parts += [f"{name}={_describe(child, depth + 1)}" for name, child in children]
    return f"{type(module).__name__}({', '.join(p for p in parts if p)})"


def _tuple(value: Any, ndim: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


def _has_state(module: nn.Module) -> bool:
    return bool(module.state_dict())


def _is_plain_conv(module: nn.Module) -> bool:
    return type(module) in _PLAIN_CONVS


def _pool_ndim(module: nn.Module) -> int:
    for klass in type(module).__mro__:
        name = klass.__name__
        if klass.__module__ == "torch.nn.modules.pooling" and name[-2:] in ("1d", "2d", "3d"):
            return int(name[-2])
    raise ValueError(f"cannot tell the dimension of {type(module).__name__}")


def _same_forward(module: nn.Module, base: type[nn.Module]) -> bool:
    return type(module).forward is base.forward


def _pool_base(module: nn.Module) -> type[nn.Module]:
    for klass in type(module).__mro__:
        if klass.__module__ == "torch.nn.modules.pooling":
            return klass
    return type(module)


def _strided(module: nn.Module) -> bool:
    if isinstance(module, _ConvNd):
        return not module.transposed and any(s > 1 for s in module.stride)
    if isinstance(module, (_MaxPoolNd, _AvgPoolNd, _LPPoolNd)):
        ndim = _pool_ndim(module)
        stride = module.stride if module.stride is not None else module.kernel_size
        return any(s > 1 for s in _tuple(stride, ndim))
    return False


def _wanted(module: nn.Module) -> bool:
    return isinstance(module, (_ConvNd, _MaxPoolNd, _AvgPoolNd))


@dataclass
class _Site:
    """Where the downsampling layer of a strided convolution goes (rules 1-5 of the module docstring)."""

    kind: str  # "identity" | "consumer" | "append" | "wrap" | "graph"
    module: str  # the module to edit (for "graph": the node's value, described in ``where``)
    where: str  # the module or node the layer follows, for the report
    region: _fx.Region | None = None
    node: fx.Node | None = None


@dataclass
class _ConvJob:
    name: str
    kind: str  # "after" | "before" | "split"
    ndim: int
    channels: int
    stride: tuple[int, ...]
    conv_stride: tuple[int, ...] = ()
    reason: str = ""
    site: _Site | None = None


# ----------------------------------------------------------------------------------------------------
# The converter


class _Converter:
    def __init__(self, model: nn.Module, options: _Options, inputs: tuple[Any, ...] | str) -> None:
        self.model = model
        self.opt = options
        self.inputs = inputs
        self.report = ConversionReport()
        self.modules = dict(model.named_modules())
        self.index = {name: i for i, name in enumerate(self.modules)}
        self.replacements: dict[str, nn.Module] = {}
        self.old: dict[str, str] = {}
        self.pool_channels: dict[str, int | None] = {}

    # -- analysis -------------------------------------------------------------------------------------

    def _analyse(self) -> None:
        self.seen = _fx.Observation({}, {}, [], error=self.inputs if isinstance(self.inputs, str) else None)
        if not isinstance(self.inputs, str):
            watch = {name for name, m in self.modules.items() if _wanted(m)}
            self.seen = _fx.observe(self.model, self.inputs, watch, _LEAVES)
            shapes = ", ".join(str(tuple(x.shape)) for x in self.inputs if isinstance(x, Tensor))
            self.report.example_forward = f"ran on {shapes}" if self.seen.error is None else f"failed on {shapes}"
        if self.seen.error is not None:
            self.report.example_forward += f" ({self.seen.error}): strided calls in forward() may be missed"
            self.report.example_forward = self.report.example_forward.lstrip()
        regions, failures = _fx.trace_regions(self.model, _wanted)
        self.report.untraced = failures
        self.regions = regions
        self.node_of: dict[str, tuple[_fx.Region, fx.Node]] = {}
        self.calls: dict[str, int] = {}
        self.rank: dict[str, tuple[int, int]] = {}
        for region in regions:
            base = self.index.get(region.prefix, 0)
            for name, count in _fx.call_counts(region.graph).items():
                self.calls[region.absolute(name)] = count
            for position, node in enumerate(region.graph.nodes):
                if node.op == "call_module":
                    name = region.absolute(str(node.target))
                    if name not in self.node_of:
                        self.node_of[name] = (region, node)
                        self.rank[name] = (base, position)
                elif node.op == "call_function" and node.target in _STRIDED_FUNCTIONS:
                    self._report_functional(region, node)
        reported = {s.name.split(":")[0] for s in self.report.skipped}
        for owner, call in self.seen.calls:
            if (owner or "<model>") not in reported:
                self.report.skipped.append(SkippedLayer(
                    f"{owner or '<model>'}:{call.split('(')[0]}", call,
                    "subsampling in forward() (found by the example forward); convert() edits modules only",
                ))

    def _report_functional(self, region: _fx.Region, node: fx.Node) -> None:
        position = _STRIDED_FUNCTIONS[node.target]
        stride = node.args[position] if len(node.args) > position else node.kwargs.get("stride")
        if stride is None and "pool" in node.target.__name__:
            stride = node.args[1] if len(node.args) > 1 else node.kwargs.get("kernel_size")
        values = _tuple(stride, 1) if stride is not None else (1,)
        if all(isinstance(v, int) and v <= 1 for v in values):
            return
        outer = _fx.enclosing_module(node)
        owner = region.absolute(outer[1] if outer else "")
        self.report.skipped.append(SkippedLayer(
            f"{owner or '<model>'}:{node.target.__name__}", f"{node.target.__name__}(stride={stride})",
            "functional call in forward(); convert() edits modules only",
        ))

    def _order(self, name: str) -> tuple[int, int]:
        return self.rank.get(name, (self.index[name], 0))

    def _channels(self, name: str) -> int | None:
        """The channel count that reached ``name`` in the example forward (``None``: unknown or several)."""
        counts = self.seen.channels.get(name, set())
        return next(iter(counts)) if len(counts) == 1 else None

    def _matches(self, name: str) -> str | None:
        """The include/exclude reason to leave ``name`` alone, if any."""
        if self.opt.include is not None and not any(fnmatch.fnmatchcase(name, p) for p in self.opt.include):
            return f"not matched by include={list(self.opt.include)}"
        if self.opt.exclude is not None:
            for pattern in self.opt.exclude:
                if fnmatch.fnmatchcase(name, pattern):
                    return f"excluded by pattern {pattern!r}"
        return None

    def _skip(self, name: str, module: nn.Module, reason: str) -> None:
        self.report.skipped.append(SkippedLayer(name, _describe(module), reason))

    def _resnet_max_pools(self) -> set[str]:
        """Stem max pools of ResNet layouts, which the reference builds with kernel 2."""
        found = set()
        for name, module in self.modules.items():
            children = dict(module.named_children())
            pool = children.get("maxpool")
            if {"conv1", "bn1", "maxpool", "layer1"} <= set(children) and isinstance(pool, nn.MaxPool2d):
                if _tuple(pool.kernel_size, 2) == (3, 3) and _tuple(pool.padding, 2) == (1, 1):
                    found.add(f"{name}.maxpool" if name else "maxpool")
        return found

    # -- planning -------------------------------------------------------------------------------------

    def _plan(self) -> tuple[list[tuple[str, nn.Module]], list[_ConvJob]]:
        candidates = [
            (name, m) for name, m in self.modules.items() if isinstance(m, (_ConvNd, _MaxPoolNd, _AvgPoolNd, _LPPoolNd))
        ]
        candidates.sort(key=lambda item: self._order(item[0]))
        strided = [name for name, m in candidates if _strided(m)]
        stem = strided[0] if strided and isinstance(self.modules[strided[0]], _ConvNd) else None
        resnet_pools = self._resnet_max_pools() if self.opt.placement == "reference" else set()
        self.resnet_pools = resnet_pools
        pools: list[tuple[str, nn.Module]] = []
        convs: list[_ConvJob] = []
        for name, module in candidates:
            self.old[name] = _describe(module)
            if isinstance(module, _ConvNd):
                job = self._plan_conv(name, module, stem)
                if job is not None:
                    convs.append(job)
            elif self._plan_pool(name, module):
                pools.append((name, module))
        # Sites are searched once all strided convolutions are known: none of them may take another's layer.
        targets = {job.name for job in convs}
        used: set[str] = set()
        for job in convs:
            if job.kind in ("after", "split"):
                site = self._find_site(job, targets | used)
                if isinstance(site, str):
                    self._fallback(job, site)
                else:
                    job.site = site
                    used.add(site.module)
        self.commute = {name: conv for name, pool in pools if (conv := self._commuting_conv(name, pool, used)) is not None}
        return pools, [job for job in convs if job.kind != "skip"]

    def _commuting_conv(self, name: str, pool: nn.Module, taken: set[str]) -> str | None:
        """The bias-free 1x1 convolution right before an average pool, which the blur may precede.

        ``conv1x1 -> blur`` equals ``blur -> conv1x1`` (a per-pixel channel mix commutes with a
        per-channel spatial filter), and the convolution then runs on ``1 / stride**2`` of the samples
        (DenseNet's transitions: 0.92x the FLOPs of the model). Only for ``method="blur"``: methods that
        choose by content (APS, LPS) see different maps on the two sides.
        """
        if self.opt.method != "blur" or not isinstance(pool, _AvgPoolNd) or name not in self.node_of:
            return None
        ndim = _pool_ndim(pool)
        if _tuple(pool.kernel_size, ndim) != _tuple(pool.stride or pool.kernel_size, ndim) or any(_tuple(pool.padding, ndim)):
            return None
        if _divisor(pool) is not None or getattr(pool, "ceil_mode", False):
            return None
        region, node = self.node_of[name]
        source = node.args[0] if node.args else None
        if not isinstance(source, fx.Node) or source.op != "call_module" or len(_fx.data_users(source)) != 1:
            return None
        conv_name = region.absolute(str(source.target))
        conv = self.modules.get(conv_name)
        if (not _is_plain_conv(conv) or _PLAIN_CONVS[type(conv)] != ndim or conv.bias is not None
                or any(k != 1 for k in conv.kernel_size) or any(s != 1 for s in conv.stride)
                or conv.padding not in ((0,) * ndim, "valid") or self.calls.get(conv_name, 1) != 1 or conv_name in taken):
            return None
        return conv_name

    def _plan_pool(self, name: str, module: nn.Module) -> bool:
        ndim = _pool_ndim(module)
        stride = _tuple(module.stride if module.stride is not None else module.kernel_size, ndim)
        if all(s == 1 for s in stride):
            self._skip(name, module, "stride 1")
            return False
        if isinstance(module, _LPPoolNd):
            self._skip(name, module, "power-average pooling is not supported")
            return False
        if not _same_forward(module, _pool_base(module)):
            self._skip(name, module, f"{type(module).__name__} has its own forward()")
            return False
        if isinstance(module, _MaxPoolNd):
            if any(d != 1 for d in _tuple(module.dilation, ndim)):
                self._skip(name, module, "dilated max pooling")
                return False
            if module.return_indices:
                self._skip(name, module, "returns indices (for max unpooling)")
                return False
        if getattr(module, "ceil_mode", False) and not self.opt.circular:
            kernel, padding = _tuple(module.kernel_size, ndim), _tuple(module.padding, ndim)
            if isinstance(module, _MaxPoolNd) and any(k < p + s for k, p, s in zip(kernel, padding, stride, strict=True)):
                # torch drops a last window that starts in the padding; padding the end cannot reproduce that
                self._skip(name, module, "ceil_mode with kernel_size < padding + stride (its size rule is not reproduced)")
                return False
            if isinstance(module, _AvgPoolNd) and (kernel != stride or any(padding) or _divisor(module) is not None):
                self._skip(name, module, "ceil_mode average pooling with overlapping windows, padding or "
                           "divisor_override (its partial windows are not reproduced)")
                return False
        reason = self._matches(name)
        channels = self._channels(name)
        if reason is None and channels is not None and channels < self.opt.min_channels:
            reason = f"{channels} channels < min_channels={self.opt.min_channels}"
        if reason is not None:
            self._skip(name, module, reason)
            return False
        return True

    def _plan_conv(self, name: str, conv: _ConvNd, stem: str | None) -> _ConvJob | None:
        ndim = len(conv.kernel_size)
        stride = tuple(conv.stride)
        if conv.transposed:
            self._skip(name, conv, "transposed convolution (upsamples)")
            return None
        if any(d > 1 for d in conv.dilation):
            self._skip(name, conv, "dilated convolution")
            return None
        if all(s == 1 for s in stride):
            self._skip(name, conv, "stride 1")
            return None
        if tuple(conv.kernel_size) == stride and max(stride) >= _PATCH_EMBED_MIN_STRIDE:
            self._skip(name, conv, f"patch embedding (kernel_size == stride == {stride})")
            return None
        kind = "after"
        if name == stem:
            split = (
                self.opt.placement == "reference" and self.opt.antialias_stem is not False and all(s == 4 for s in stride)
                and all(k > s for k, s in zip(conv.kernel_size, stride, strict=True))
            )
            if split:
                kind = "split"
            elif self.opt.antialias_stem is not True:
                self._skip(name, conv, "stem (antialias_stem=False)")
                return None
        reason = self._matches(name)
        one_by_one = all(k == 1 for k in conv.kernel_size) and all(p == 0 for p in _tuple(conv.padding, ndim))
        before = kind != "split" and _is_plain_conv(conv) and (self.opt.placement == "before" or one_by_one)
        channels = conv.in_channels if before else conv.out_channels
        if reason is None and channels < self.opt.min_channels:
            reason = f"{channels} channels < min_channels={self.opt.min_channels}"
        if reason is not None:
            self._skip(name, conv, reason)
            return None
        if kind == "split":
            return _ConvJob(name, "split", ndim, channels, (2,) * ndim, stride)
        if before:
            why = "1x1 convolution: the blur commutes with it" if one_by_one else "placement='before'"
            job = _ConvJob(name, "before", ndim, channels, stride, stride, reason=why)
            return job if self._before_form(job, conv) else None
        return _ConvJob(name, "after", ndim, channels, stride, stride)

    def _fallback(self, job: _ConvJob, why: str) -> None:
        conv = self.modules[job.name]
        if _is_plain_conv(conv):
            job.kind, job.channels, job.reason = "before", conv.in_channels, f"fallback: {why}"
            if not self._before_form(job, conv):
                job.kind = "skip"
        else:
            self._skip(job.name, conv, f"{why}, and {type(conv).__name__} is not a plain convolution")
            job.kind = "skip"

    def _before_form(self, job: _ConvJob, conv: _ConvNd) -> bool:
        """Choose how the layer goes before ``conv`` so that the output size is kept; ``False``: it cannot.

        Blur then the convolution at stride 1 gives ``ceil(L / s) + 2p - k + 1`` samples, the original
        ``floor((L + 2p - k) / s) + 1``: equal for every ``L`` when ``2p == k - 1`` (1x1, 3x3 with padding
        1). Otherwise (a ``kernel == stride`` patch convolution) the blur runs at stride 1 and the
        convolution keeps its stride: the same size, the low-pass still before the subsampling.
        """
        padding = conv.padding if not isinstance(conv.padding, str) else (0,) * job.ndim
        if all(2 * p == k - 1 for p, k in zip(padding, conv.kernel_size, strict=True)):
            return True
        if self.opt.method != "blur":
            self._skip(job.name, conv, f"{job.reason or 'placement=before'}; {self.opt.method!r} before a "
                       f"kernel_size={tuple(conv.kernel_size)} convolution would change its output size")
            return False
        job.kind, job.stride = "before-dense", (1,) * job.ndim
        job.reason += "; blur at stride 1, the convolution keeps its stride (same output size)"
        return True

    def _find_site(self, job: _ConvJob, taken: set[str]) -> _Site | str:
        """Where the downsampling layer of ``job`` goes, or why it cannot go after the activation."""
        if job.name not in self.node_of:
            failed = [error for name, error in self.report.untraced if not name or job.name.startswith(name + ".")]
            return f"not traceable ({failed[-1]})" if failed else "not reached by torch.fx tracing"
        if self.calls.get(job.name, 1) != 1:
            return f"called {self.calls[job.name]} times"
        region, node = self.node_of[job.name]
        last = _fx.follow_chain(node, region.module.get_submodule)
        outputs = [(key, region.absolute(rel)) for key, rel in _fx.output_of(last)]
        where = outputs[0][1] if outputs else str(last.name)

        def once(name: str) -> bool:
            return self.calls.get(name, 1) == 1 and name not in taken and name != job.name

        for _, name in outputs:
            if type(self.modules[name]) is nn.Identity and once(name):
                return _Site("identity", name, name)
        if len(users := _fx.data_users(last)) == 1:
            (user,) = users
            if user.op == "call_module" and _fx.is_chain_input(user, last) and len(user.args) == 1 and not user.kwargs:
                name = region.absolute(str(user.target))
                consumer = self.modules[name]
                if (_PLAIN_CONVS.get(type(consumer)) == job.ndim and all(s == 1 for s in consumer.stride)
                        and once(name)):
                    return _Site("consumer", name, where)
        for _, name in outputs:
            module = self.modules[name]
            if isinstance(module, nn.Sequential) and _same_forward(module, nn.Sequential) and once(name):
                return _Site("append", name, where)
        for _, name in outputs:
            if not _has_state(self.modules[name]) and once(name):
                return _Site("wrap", name, where)
        return _Site("graph", "", where, region, last)

    # -- building -------------------------------------------------------------------------------------

    def _like(self, layer: nn.Module, near: nn.Module) -> nn.Module:
        """Put a new layer on the device, dtype and train/eval mode of the module it joins."""
        tensors = [t for t in list(near.parameters()) + list(near.buffers()) if t.is_floating_point()]
        if not tensors:
            tensors = [t for t in list(self.model.parameters()) + list(self.model.buffers()) if t.is_floating_point()]
        if tensors:
            layer = layer.to(device=tensors[0].device, dtype=tensors[0].dtype)
        return layer.train(near.training)

    def _downsample(self, ndim: int, channels: int | None, stride: tuple[int, ...], near: nn.Module) -> nn.Module:
        """The ``method`` layer. Its channel count comes from the tensors: a convolution's
        ``in_channels``/``out_channels``, or what reached the layer in the example forward. Where that is
        unknown (the forward failed, several counts) the layer is built with ``channels=None`` and takes
        what arrives; a method that needs the count (LPS: its scorer) then raises."""
        stride_arg: int | tuple[int, ...] = stride[0] if len(set(stride)) == 1 else stride
        options = {"stride": stride_arg, "filter_size": self.opt.filter_size, "pad_mode": self.opt.pad_mode}
        try:
            layer = create_downsample(self.opt.method, ndim, channels=channels, **options)
        except ValueError:
            if channels is not None:
                raise
            raise ValueError(
                f"method {self.opt.method!r} needs the channel count of every layer it replaces; the example "
                f"forward did not reach one of them ({self.report.example_forward}): pass example_inputs"
            ) from None
        return self._like(layer, near)

    def _commute(self, name: str, pool: nn.Module, converted: dict[str, str]) -> None:
        """The pool's downsampling goes before the 1x1 convolution that feeds it; the pool becomes Identity."""
        conv_name = self.commute[name]
        conv = self.modules[conv_name]
        ndim = _pool_ndim(pool)
        stride = _tuple(pool.stride or pool.kernel_size, ndim)
        job = _ConvJob(conv_name, "before", ndim, conv.in_channels, stride)
        new = self._before(job, conv)
        if self.opt.placement != "reference":  # floor mode drops the last L % stride samples, as before
            new.blur = nn.Sequential(OrderedDict(trim=_TrimToStride(stride), downsample=new.blur))
        new.stride = (1,) * ndim
        self.old.setdefault(conv_name, _describe(conv))
        self._replace(conv_name, new)
        self._replace(name, nn.Identity())
        converted[name] = f"before the 1x1 convolution {conv_name} (they commute; it runs on 1/{math.prod(stride)} of the samples)"

    def _before(self, job: _ConvJob, conv: _ConvNd) -> nn.Module:
        """``conv`` that subsamples its input first (``BlurConv``), sharing its Parameters."""
        ds = self._downsample(job.ndim, conv.in_channels, job.stride, conv)
        new = BLUR_CONV[job.ndim].from_conv(conv, filter_size=self.opt.filter_size, pad_mode=self.opt.pad_mode, downsample=ds)
        if job.kind == "before-dense":
            new.stride = tuple(job.conv_stride)  # the blur ran at stride 1
        return new

    def _pool_replacement(self, name: str, pool: nn.Module) -> tuple[nn.Module, str]:
        """The replacement of a strided pool and how its output size is kept."""
        ndim = _pool_ndim(pool)
        kernel = _tuple(pool.kernel_size, ndim)
        stride = _tuple(pool.stride if pool.stride is not None else pool.kernel_size, ndim)
        padding = _tuple(pool.padding, ndim)
        channels = self._channels(name)
        ds = self._downsample(ndim, channels, stride, pool)
        is_max = isinstance(pool, _MaxPoolNd)
        if is_max and name in self.resnet_pools:
            kernel, padding = (2,) * ndim, (0,) * ndim  # the reference's ResNet stem
        if self.opt.conv_padding_mode == "circular" and (is_max or any(padding) or kernel != stride):
            # Wrap around instead of -inf/zero padding and a shrinking window: with circular convolutions
            # and circular sampling the whole network is then exactly equivariant to circular shifts.
            pads = [p for k in reversed(kernel) for p in ((k - 1) // 2, k // 2)]
            dense = _MAX_POOL[ndim](kernel, stride=1) if is_max else type(pool)(kernel, stride=1)
            parts = OrderedDict(pad=_CIRCULAR_PAD[ndim](tuple(pads)), pool=dense, downsample=ds)
            return nn.Sequential(parts), "replaced (circular padding: ceil(L / stride) samples)"
        ceil = getattr(pool, "ceil_mode", False)
        how = "replaced"
        if is_max:
            if self.opt.method == "blur":
                new: nn.Module = MAX_BLUR_POOL[ndim](
                    kernel_size=list(kernel), channels=channels, filter_size=self.opt.filter_size,
                    stride=list(stride), padding=list(padding), pad_mode=self.opt.pad_mode,
                )
                new = self._like(new, pool)
            else:
                new = nn.Sequential(OrderedDict(pool=_MAX_POOL[ndim](kernel, stride=1, padding=padding), downsample=ds))
            if not ceil:
                return new, how
            # ceil_mode: the max at stride 1 sees stride - 1 more samples at the end, copies of the last one,
            # which the original's clipped last window also sees: the same size, ceil((L + 2p - k) / s) + 1.
            extra = [p for s in reversed(stride) for p in (0, s - 1)]
            parts = OrderedDict(pad=_REPLICATE_PAD[ndim](tuple(extra)), pool=new)
            return nn.Sequential(parts), how + " (ceil_mode: the end padded by stride - 1 copies, same size)"
        if kernel == stride and not any(padding) and _divisor(pool) is None:
            if ceil:
                return ds, how  # ceil(L / s) samples, as the original's
            if self.opt.placement == "reference":
                return ds, how + " (the reference's blur alone: ceil(L / stride) samples on sizes not divisible)"
            # floor mode drops the last L % s samples, and so does the replacement
            parts = OrderedDict(trim=_TrimToStride(stride), downsample=ds)
            return nn.Sequential(parts), how + " (floor mode: the last L % stride samples are dropped, as before)"
        extra = {} if ndim == 1 else {"divisor_override": _divisor(pool)}
        dense = type(pool)(kernel, stride=1, padding=padding, count_include_pad=pool.count_include_pad, **extra)
        if _divisor(pool) is not None:
            how += f" (divisor_override={_divisor(pool)} kept: the average at stride 1, then the downsampling)"
        return nn.Sequential(OrderedDict(pool=dense, downsample=ds)), how

    # -- applying -------------------------------------------------------------------------------------

    def _replace(self, name: str, new: nn.Module) -> None:
        old = self.modules[name]
        _follow_mode(new, old)
        self.replacements[name] = new
        self.report.edits.append(ModuleEdit(name, self.old.get(name) or _describe(self.modules[name]), _describe(new)))

    def _apply_site(self, job: _ConvJob) -> str:
        site = job.site
        assert site is not None
        target = self.modules[site.module] if site.module else None
        if site.kind == "identity":
            ds = self._downsample(job.ndim, job.channels, job.stride, target)
            self._replace(site.module, ds)
            return f"after {site.where}, as {site.module} (was Identity)"
        if site.kind == "consumer":
            new = self._before(_ConvJob(site.module, "before", job.ndim, target.in_channels, job.stride), target)
            self.old.setdefault(site.module, _describe(target))
            self._replace(site.module, new)
            return f"after {site.where}, in {type(new).__name__} {site.module}"
        if site.kind == "append":
            old = _describe(target)
            target.append(self._downsample(job.ndim, job.channels, job.stride, target))
            self.report.edits.append(ModuleEdit(site.module, old, _describe(target)))
            return f"after {site.where}, appended to {site.module}"
        if site.kind == "wrap":
            ds = self._downsample(job.ndim, job.channels, job.stride, self.modules[job.name])
            self.old.setdefault(site.module, _describe(target))
            self._replace(site.module, nn.Sequential(target, ds))
            return f"after {site.where}, in Sequential {site.module}"
        raise AssertionError(site.kind)

    def run(self) -> tuple[nn.Module, ConversionReport]:
        # Tracing runs the models' forward code on proxies; should it touch a buffer anyway, its value
        # is put back at the end (the converted model keeps every state value).
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        self._analyse()
        pools, convs = self._plan()
        converted: dict[str, str] = {}  # name -> placement
        for name, pool in pools:
            if name in self.commute:
                self._commute(name, pool, converted)
                continue
            new, converted[name] = self._pool_replacement(name, pool)
            self._replace(name, new)
        graph_jobs = []
        for job in convs:
            conv = self.modules[job.name]
            if job.kind.startswith("before"):
                self._replace(job.name, self._before(job, conv))
                converted[job.name] = f"before ({job.reason})"
                continue
            # "after": the whole stride moves to the downsampling layer; "split": it takes a factor 2 of it
            conv.stride = tuple(s // d for s, d in zip(job.conv_stride, job.stride, strict=True))
            self.report.edits.append(ModuleEdit(job.name, self.old[job.name], _describe(conv)))
            if job.site is not None and job.site.kind == "graph":
                graph_jobs.append(job)
                continue
            converted[job.name] = self._apply_site(job)
        self.model = _swap(self.model, self.replacements, self.report.hooks_moved)
        self._apply_graph_jobs(graph_jobs, converted)
        self._set_padding_mode()
        with torch.no_grad():
            for buffer, value in buffers:
                if not buffer.is_meta and not torch.equal(buffer, value):
                    buffer.copy_(value)
        _link_phases(self.model, self.seen.order)
        final = dict(self.model.named_modules())
        for name in sorted(converted, key=self._order):
            module = final.get(name)
            new = _describe(module) if module is not None else "(inside a GraphModule)"
            self.report.converted.append(ConvertedLayer(name, self.old[name], new, converted[name]))
        return self.model, self.report

    def _apply_graph_jobs(self, jobs: list[_ConvJob], converted: dict[str, str]) -> None:
        """Rule 5: insert the layers as graph nodes, one GraphModule per module that produced their inputs."""
        groups: dict[tuple[str, str], list[_ConvJob]] = {}
        for job in jobs:
            assert job.site is not None and job.site.region is not None and job.site.node is not None
            outer = _fx.enclosing_module(job.site.node)
            groups.setdefault((job.site.region.prefix, outer[0] if outer else ""), []).append(job)
        # Deepest modules first: re-tracing an outer module then goes through the inner GraphModules.
        for (prefix, _), group in sorted(groups.items(), key=lambda item: -len(item[1][0].name.split("."))):
            region = _fx.Region(prefix, self.model.get_submodule(prefix), group[0].site.region.graph)
            insertions = []
            for job in group:
                layer = self._downsample(job.ndim, job.channels, job.stride, self.modules[job.name])
                insertions.append((job.site.node, layer, f"{job.site.where.split('.')[-1]}_downsample"))
            result = _fx.insert_after(region, insertions)
            if result is None:
                for job in group:
                    self._graph_fallback(job, converted)
                continue
            name, graph_module = result
            old = self.model.get_submodule(name)
            self.report.edits.append(ModuleEdit(name, _describe(old), _describe(graph_module)))
            self.model = _swap(self.model, {name: graph_module}, self.report.hooks_moved)
            self.report.graph_modules.append(name)
            for job in group:
                converted[job.name] = f"after {job.site.where}, as a node of GraphModule {name or '<model>'}"

    def _graph_fallback(self, job: _ConvJob, converted: dict[str, str]) -> None:
        conv = self.modules[job.name]
        conv.stride = job.conv_stride  # undo, then place the blur before the convolution
        self.report.edits = [e for e in self.report.edits if e.name != job.name]
        self._fallback(job, f"the module around {job.site.where} could not be re-traced to insert the layer")
        if job.kind == "skip":
            return
        new = self._before(job, conv)
        _follow_mode(new, conv)
        self.model = _swap(self.model, {job.name: new}, self.report.hooks_moved)
        self.report.edits.append(ModuleEdit(job.name, self.old[job.name], _describe(new)))
        converted[job.name] = f"before ({job.reason})"

    def _set_padding_mode(self) -> None:
        mode = self.opt.conv_padding_mode
        if mode is None:
            return
        # Every convolution, padded or not (without padding the mode changes nothing): one rule for all.
        for name, module in self.model.named_modules():
            if isinstance(module, _ConvNd) and not module.transposed and module.padding_mode != mode:
                module.padding_mode = mode
                self.report.padding_mode.append(name)


def _swap(module: nn.Module, replacements: dict[str, nn.Module], moved: list[str], prefix: str = "") -> nn.Module:
    """Return the replacement of ``module``, or ``module`` with its replaced descendants swapped in.

    The hooks of a replaced module move to its replacement (named in ``moved``), unless the
    replacement contains the module (a wrapping ``Sequential``), where they still fire.
    """
    if prefix in replacements:
        new = replacements[prefix]
        if _move_hooks(module, new):
            moved.append(prefix or "<model>")
        return new
    if not any(name.startswith(prefix) for name in replacements):
        return module
    for name, child in list(module.named_children()):
        full = f"{prefix}.{name}" if prefix else name
        if full in replacements or any(key.startswith(full + ".") for key in replacements):
            new = _swap(child, replacements, moved, full)
            if new is not child:
                setattr(module, name, new)
    return module


_HOOK_DICTS = _fx.HOOK_DICTS


def _move_hooks(old: nn.Module, new: nn.Module) -> bool:
    """Give ``new`` the hook dicts of ``old`` (the users' handles still remove them); ``True`` if any."""
    if any(m is old for m in new.modules()) or not any(getattr(old, attr, None) for attr in _HOOK_DICTS):
        return False
    for attr in _HOOK_DICTS:
        if hasattr(old, attr):
            setattr(new, attr, getattr(old, attr))
    if getattr(old, "_is_full_backward_hook", None) is not None:
        new._is_full_backward_hook = old._is_full_backward_hook
    return True


def _follow_mode(new: nn.Module, old: nn.Module) -> None:
    """The modules that ``new`` brings follow the train/eval mode of the module they replace."""
    kept = {id(m) for m in old.modules()}
    for module in new.modules():
        if id(module) not in kept:
            module.training = old.training


def _divisor(pool: nn.Module) -> int | None:
    return getattr(pool, "divisor_override", None)


class _TrimToStride(nn.Module):
    """Drop the last ``L % stride`` samples of each spatial axis, as a floor-mode pool ignores them."""

    def __init__(self, stride: tuple[int, ...]) -> None:
        super().__init__()
        self.stride = tuple(stride)

    def forward(self, input: Tensor) -> Tensor:
        ndim = len(self.stride)
        index = [slice(None)] * (input.dim() - ndim)
        index += [slice(0, input.size(d - ndim) - input.size(d - ndim) % s) for d, s in enumerate(self.stride)]
        return input[tuple(index)]

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


def _link_phases(model: nn.Module, order: dict[str, int]) -> None:
    """Polyphase methods: each residual block's shortcut keeps its main path's phase
    (:func:`~antialias.layers.link_residual_phases`), but the layer that ran first in the example forward
    leads: a DLA tree subsamples its shortcut before its main path."""
    roots: dict[int, nn.Module] = {}
    for leader_name, follower_name in link_residual_phases(model):
        leader, follower = model.get_submodule(leader_name), model.get_submodule(follower_name)
        if _call_index(order, follower_name) >= _call_index(order, leader_name):
            continue
        root = roots.setdefault(id(leader), follower)
        if root is follower:
            follower.follow(None)
            if getattr(leader, "scorer", None) is not None:
                follower.scorer = leader.scorer  # LPS: the scorer moves to the layer that now chooses
            leader.follow(follower)
        else:
            follower.follow(root)


def _call_index(order: dict[str, int], name: str) -> float:
    """The example forward's first call of ``name``, or of its closest recorded ancestor (new layers)."""
    parts = name.split(".")
    for end in range(len(parts), -1, -1):
        if (key := ".".join(parts[:end])) in order:
            return order[key]
    return float("inf")
