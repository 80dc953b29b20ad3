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
- A patchify convolution (``kernel_size == stride``, no padding: a patch embedding, a ConvNeXt stem;
  not under ``placement="reference"``) -> anchored with ``method="aps"``/``"lps"``
  (:class:`~antialias.layers.AnchoredConv2d`; in a model that processes tokens the first one anchors
  the token grid and the later ones are left alone); with the other methods, the downsampling layer
  at stride 1 before it when its stride is 8 or more or it is the patch embedding of such a model;
  otherwise the rules above.
- Left alone, and reported: the stem (the first downsampling layer in execution order, when it is a
  convolution, as the reference does), transposed and dilated convolutions, other patch embeddings
  (kernel == stride >= 8), stride-1 layers, layers below ``min_channels`` or filtered by
  ``include``/``exclude``, and strided ``F.max_pool2d``/``F.conv2d`` calls and step slicing
  (``x[:, ::2]``) written in a ``forward``, found on the graph or by the example forward (only modules
  are edited).

Sizes: the converted layers give the original output sizes: ``ceil_mode=True`` max pools pad their end,
floor-mode ``AvgPool(kernel == stride)`` drops the last ``L % stride`` samples as before (not under
``placement="reference"``, whose blur alone gives ``ceil(L / stride)``), and a pool whose size rule cannot
be reproduced (a ceil-mode pool with partial windows) is left alone, with the reason.

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
   :attr:`ConversionReport.graph_modules`). Its state-dict keys and their order are unchanged; its
   submodules become plain containers (their hooks: :attr:`ConversionReport.hooks_dropped`). If the
   model is that module, the result is a GraphModule.

Where the model (or part of it) cannot be traced (data-dependent control flow, e.g. a detection model as
a whole), the converter traces its largest traceable submodules (the backbone); a strided convolution
outside them gets the blur before it (``BlurConv2d``): exact for 1x1 convolutions, otherwise the blur
comes before the activation instead of after it. The report says so for each.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import torch
from torch import Tensor, fx, nn
from torch.nn.modules.conv import _ConvNd
from typing_extensions import Unpack  # typing.Unpack from 3.11; torch requires typing_extensions

from antialias._invariance import check_circular_invariance, check_report_invariance
from antialias._report import ConversionReport, ConvertedLayer, ModuleEdit, SkippedLayer
from antialias._rewrite import PLACEMENTS, Converter, Options
from antialias.filters import FilterSpec
from antialias.layers.alias_free import replace_activations

__all__ = [
    "PLACEMENTS",
    "ConversionReport",
    "ConvertedLayer",
    "ModuleEdit",
    "SkippedLayer",
    "check_circular_invariance",
    "convert",
    "convert_with_report",
]

logger = logging.getLogger(__name__)

_EXAMPLE_SIZE = 64


# ----------------------------------------------------------------------------------------------------
# Public API


class _Keywords(TypedDict, total=False):
    """The keyword arguments of :func:`convert` (described there; the defaults are :func:`convert_with_report`'s)."""

    method: str
    pad_mode: str | None
    min_channels: int
    antialias_stem: bool | None
    include: str | Sequence[str] | None
    exclude: str | Sequence[str] | None
    conv_padding_mode: str | None
    placement: str
    layout: Mapping[str, str] | None
    circular: bool
    example_inputs: Tensor | tuple[Any, ...] | None
    activations: str | None
    inplace: bool


def convert(
    model: nn.Module, filter_size: FilterSpec = 4, **options: Unpack[_Keywords]
) -> nn.Module:
    """Anti-alias every downsampling layer of a CNN, keeping its parameters and their names.

    Max pools, average pools and strided convolutions of any ``nn.Module`` (1D, 2D or 3D) are rewritten
    as described in :mod:`antialias.conversion`. The state dict keeps exactly its keys and values, so the
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
        min_channels: leave layers whose maps have fewer channels alone (0: none; pools whose channel
            count cannot be read from the graph are converted).
        antialias_stem: also anti-alias the first downsampling layer when it is a convolution (the
            reference's ``pool_only=False``; the same option as the zoo's). ``None``: the placement's
            default, ``False`` (the full-resolution stem is costly to blur); a convolution that
            ``layout`` splits is anti-aliased unless this is ``False``.
        include: ``fnmatch`` patterns on module names; only matching layers are converted.
        exclude: ``fnmatch`` patterns on module names; matching layers are left alone.
        conv_padding_mode: set ``padding_mode`` of every convolution. With
            ``"circular"``, max pools wrap around too (circular padding, max at stride 1, then the
            downsampling layer), so with ``pad_mode="circular"`` the network is exactly equivariant to
            circular shifts by its total stride: shifting the input by the total stride shifts the
            output by one sample.
        placement: ``"paper"`` (the default: conv -> norm -> act -> blur); ``"reference"``, the
            paper's placement with the reference package's size rule (a floor-mode average pool
            becomes the blur alone); or ``"before"`` (every strided convolution blurs its input:
            cheaper, no tracing, not the paper's order).
        layout: per-layer choices that published weights depend on, by module name (the zoo's
            families pass the reference's): ``"max-kernel-2"``, the max pool takes the max over 2
            samples per axis without padding (the reference's ResNet stem), or ``"split-stride"``, the
            convolution keeps half its stride and a stride-2 downsampling layer follows its
            activation (the reference's AlexNet stem). ``None``: none.
        circular: the exact circular-shift guarantee of polyphase sampling (APS, LPS in evaluation
            mode) in one option: sets ``antialias_stem=True``, ``pad_mode="circular"`` and
            ``conv_padding_mode="circular"``, then checks that circular shifts by one sample, by
            the total stride and by a large odd amount leave the output unchanged; a model that fails the check, or cannot be checked, is
            refused. Needs ``method="aps"`` or ``"lps"``; the sides of the input must be multiples
            of the network's total stride. Patchify convolutions (``kernel_size == stride``) are
            anchored (:class:`~antialias.layers.AnchoredConv2d`; the token grid too in
            transformers). Default ``False``.
        example_inputs: the positional arguments of one forward call (a tensor or a tuple), run once
            without gradients to read the execution order, the channel counts that reach each layer,
            and the strided ``F.*`` calls and step-slicing of ``forward`` methods. ``None``: a random
            ``(1, C, 64, 64)`` tensor (``C`` from the first convolution; timm's ``pretrained_cfg``
            input size when the model has one); if that forward fails, the report says so.
        activations: ``"alias_free"`` wraps every activation module in
            :class:`~antialias.layers.AliasFreeActivation` (Michaeli et al., CVPR 2023; with
            ``conv_padding_mode="circular"`` for sub-pixel shifts); ``None`` leaves them.
        inplace: convert ``model`` itself instead of a copy (``False``; use the returned module).

    Returns:
        The anti-aliased model: the same classes, with the layers replaced, except where a
        ``torch.fx.GraphModule`` was needed (see the module docstring). A model with nothing to convert
        comes back unchanged, with a ``UserWarning``.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or is a scripted, traced or exported one
            (pass the module it was made from).
        ValueError: an unknown ``method``, ``placement``, ``pad_mode``, ``conv_padding_mode``, a bad
            ``layout``, ``filter_size`` or ``min_channels``, or options that contradict
            ``circular=True``; or, with ``circular=True``, the converted model is not invariant to
            circular shifts (the message names the layers left alone that break it), or its check
            could not run.

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
    return convert_with_report(model, filter_size, **options)[0]


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
    layout: Mapping[str, str] | None = None,
    circular: bool = False,
    example_inputs: Tensor | tuple[Any, ...] | None = None,
    activations: str | None = None,
    inplace: bool = False,
) -> tuple[nn.Module, ConversionReport]:
    """:func:`convert` (the same arguments), and a :class:`ConversionReport` of what changed and what was left alone.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AvgPool2d(2))
        >>> aa, report = convert_with_report(net)
        >>> [(c.name, c.placement) for c in report.converted]
        [('2', 'replaced (floor mode: the last L % stride samples are dropped, as before)')]
        >>> aa[2].downsample
        BlurPool2d(channels=8, filter_size=4, stride=2, pad_mode='reflect')
        >>> [(s.name, s.reason) for s in report.skipped]
        [('0', 'stem (antialias_stem=False)')]
    """
    if activations not in (None, "alias_free"):
        raise ValueError(f"activations must be None or 'alias_free', got {activations!r}")
    options = Options.build(
        filter_size,
        method,
        pad_mode,
        min_channels,
        antialias_stem,
        include,
        exclude,
        conv_padding_mode,
        placement,
        circular,
        layout,
    )
    model, report = _convert(model, options, example_inputs, inplace)
    if activations == "alias_free":
        replace_activations(model)  # parameter-free wrappers: no key changes
    return model, report


def _convert(
    model: nn.Module,
    options: Options,
    example_inputs: Tensor | tuple[Any, ...] | None,
    inplace: bool,
) -> tuple[nn.Module, ConversionReport]:
    compiled = _compiled_form(model)
    if compiled:
        raise TypeError(
            f"convert cannot edit a {compiled} ({type(model).__name__}): its layers are compiled "
            "code, not modules; pass the nn.Module it was made from, then script or export the result"
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert expects an nn.Module, got {type(model).__name__}")
    inputs = _example_inputs(model, example_inputs)
    if not inplace:
        model = copy.deepcopy(model)
    model, report = Converter(model, options, inputs).run()
    if options.circular:
        report.invariance = check_report_invariance(model, inputs, report)
    if not report.converted:
        reasons = sorted({s.reason for s in report.skipped if s.reason != "stride 1"})
        detail = f" (left alone: {'; '.join(reasons)})" if reasons else ""
        warnings.warn(
            f"convert: nothing to anti-alias in {type(model).__name__}{detail}; the model is returned unchanged",
            UserWarning,
            stacklevel=3,
        )
    return model, report


def _compiled_form(model: Any) -> str:
    """``"scripted or traced model"`` or ``"torch.export program"`` when ``model`` is one, else ``""``."""
    if isinstance(model, torch.jit.ScriptModule):
        return "scripted or traced model"
    if isinstance(model, torch.export.ExportedProgram):
        return "torch.export program"
    if isinstance(model, fx.GraphModule) and any(
        isinstance(node.target, torch._ops.OpOverload) for node in model.graph.nodes
    ):
        return "torch.export program's module (an ATen graph)"
    return ""


def _example_inputs(
    model: nn.Module, given: Tensor | tuple[Any, ...] | None
) -> tuple[Any, ...] | str:
    """The example forward's arguments, or why there are none."""
    if given is not None:
        return given if isinstance(given, tuple) else (given,)
    first = next((m for m in model.modules() if isinstance(m, _ConvNd) and not m.transposed), None)
    if first is None:
        return "no example input (pass example_inputs)"
    ndim = len(first.kernel_size)
    size = (_EXAMPLE_SIZE,) * ndim
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if (
        isinstance(cfg, dict)
        and isinstance(cfg.get("input_size"), (tuple, list))
        and len(cfg["input_size"]) == ndim + 1
    ):
        size = tuple(int(v) for v in cfg["input_size"][1:])
    weight = first.weight
    dtype = weight.dtype if weight.is_floating_point() else torch.float32
    x = torch.randn(
        1, first.in_channels, *size, generator=torch.Generator().manual_seed(0)
    )  # global RNG untouched
    return (x.to(device=weight.device, dtype=dtype),)
