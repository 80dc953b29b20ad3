"""Patchify layers, vision transformers and their kin in :func:`antialias.conversion.convert`.

A convolution with ``kernel_size == stride`` (a ViT, DeiT, Swin, Twins or MLP-Mixer patch embedding,
a ConvNeXt stem or downsampling layer) has no room for a low-pass filter after it at stride 1 (its
map would shrink by ``kernel_size - 1``). With ``method="aps"`` (or ``"lps"``) it becomes an
:class:`~antialias.layers.AnchoredConv2d` (1D: ``AnchoredConv1d``): the input is rolled so that its
largest-norm polyphase component modulo the stride sits at phase zero, then convolved, and the
tokens move by whole tokens under any integer circular shift (Ding et al. 2023). The norm is the
input's for the first one when its patch is larger than 4 x 4 (a ViT's 16 x 16: one convolution),
else the convolution's output at every offset (``score="output"``: no ties between equal input
components, as after a LayerNorm or in an upsampled image).

In a model with position-dependent token processing (absolute or relative position embeddings,
attention, window partitions, patch merging, token-mixing MLPs), the first patchify convolution also
anchors its token grid: the token of largest norm goes to the origin, so every circular shift of the
image gives the same tokens, and everything downstream (position embeddings, windows, shifted
windows and their masks, patch merging, subsampled attention, the class token) sees them unchanged.
The later patchify convolutions (Twins' stage embeddings and spatial-reduction convolutions,
ConvNeXt's downsampling) are anchored too. Anchoring adds no parameters: the state dict keeps its
keys and values.

With the low-pass methods (``"blur"`` and the others) the first patchify convolution of a model with
token processing (its patch embedding, which the general rules would leave alone as the stem, unless
``antialias_stem=False``), and any one with ``kernel_size == stride >= 8``, gets its low-pass filter
before it, at stride 1, and keeps its stride (:class:`BlurConv2d`, 1D and 3D too): its output size
and weights are unchanged. The later ones (Twins' stage embeddings) follow the general rules; Swin's
patch merging is a slicing in ``forward`` and is reported, not edited.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from typing import TYPE_CHECKING, Any

from torch import nn

from antialias._edits import _brief, _brief_change, _describe
from antialias._report import ConversionReport, ConvertedLayer, ModuleEdit, SkippedLayer
from antialias.layers.anchor import AnchoredConv1d, AnchoredConv2d
from antialias.layers.blurpool import BLUR_CONV
from antialias.layers.factory import create_downsample

if TYPE_CHECKING:
    from antialias._rewrite import Options as _Options

__all__ = ["Anchoring", "plan_patchify"]

_ANCHORED: dict[type, Any] = {nn.Conv1d: AnchoredConv1d, nn.Conv2d: AnchoredConv2d}
_PLAIN: dict[type, int] = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
_ANCHOR_METHODS = ("aps", "lps")
_OUTPUT_SCORE_MAX_AREA = 16  # patches up to 4 x 4 are anchored by their output norm
_BLUR_MIN_STRIDE = 8  # smaller kernel == stride convolutions are converted by the general rules
# Signs of position-dependent token processing after the patch embedding.
_TOKEN_CLASSES = re.compile(r"Attention|Attn|Mixer|PatchMerging|Window|PosEmbed|PosConv|PEG")
_TOKEN_PARAMETERS = re.compile(r"pos_embed|pos_embedding|position|cls_token|class_token")


def _patchify(module: nn.Module) -> bool:
    if type(module) not in _PLAIN and not isinstance(module, (AnchoredConv1d, AnchoredConv2d)):
        return False
    conv: Any = module
    padding = (0,) * len(conv.kernel_size) if conv.padding == "valid" else conv.padding
    return (
        tuple(conv.kernel_size) == tuple(conv.stride)
        and max(conv.stride) > 1
        and not any(padding)
        and all(d == 1 for d in conv.dilation)
    )


def _has_tokens(model: nn.Module) -> bool:
    if any(
        isinstance(m, nn.MultiheadAttention) or _TOKEN_CLASSES.search(type(m).__name__)
        for m in model.modules()
    ):
        return True
    return any(_TOKEN_PARAMETERS.search(name) for name, _ in model.named_parameters())


def _selected(name: str, options: _Options) -> bool:
    if options.include is not None and not any(
        fnmatch.fnmatchcase(name, p) for p in options.include
    ):
        return False
    return options.exclude is None or not any(fnmatch.fnmatchcase(name, p) for p in options.exclude)


@dataclasses.dataclass
class Anchoring:
    """What :func:`plan_patchify` did; :meth:`finish` writes it into the conversion report."""

    done: list[tuple[str, str, str, str, str]] = dataclasses.field(default_factory=list)
    left: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def finish(self, report: ConversionReport) -> None:
        names = {name for name, *_ in self.done} | {name for name, *_ in self.left}
        report.skipped = [s for s in report.skipped if s.name not in names]
        report.skipped[:0] = [SkippedLayer(*entry) for entry in self.left]
        report.edits += [ModuleEdit(name, old, new) for name, old, new, *_ in self.done]
        report.converted[:0] = [ConvertedLayer(*entry) for entry in self.done]


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def plan_patchify(model: nn.Module, options: _Options) -> tuple[_Options, Anchoring]:
    """Anchor (APS/LPS) or low-pass (other methods) the patchify convolutions of ``model`` in place.

    Returns the options with the converted convolutions excluded from the general rules, and the
    record for the report.
    """
    done = Anchoring()
    if options.placement == "reference":
        return options, done
    names = [
        name
        for name, m in model.named_modules()
        if name and _patchify(m) and _selected(name, options)
    ]
    if not names:
        return options, done
    anchor = options.method in _ANCHOR_METHODS
    tokens = _has_tokens(model)
    low_pass_tokens = tokens and not anchor
    tokens = tokens and anchor
    modules = dict(model.named_modules())
    converted = []
    for index, name in enumerate(names):
        conv: Any = modules[name]
        old, brief = _describe(conv), _brief(conv)
        if anchor and tokens and index > 0:
            done.left.append(
                (
                    name,
                    old,
                    f"after the token anchor of {names[0]}: the same tokens "
                    "reach it for every circular shift of the input",
                )
            )
            converted.append(name)
            continue
        if anchor and type(conv) not in _ANCHORED and not isinstance(conv, AnchoredConv2d):
            continue  # 3D: anchoring is 1D and 2D; the general rules apply
        if anchor:
            token = tokens and index == 0
            # The output norm breaks ties of equal input components (upsampled images, a map after
            # a LayerNorm) at prod(kernel_size) times the convolution's work: for small patches.
            small = math.prod(conv.kernel_size) <= _OUTPUT_SCORE_MAX_AREA
            score = "output" if index > 0 or small else "input"
            if isinstance(conv, (AnchoredConv1d, AnchoredConv2d)):
                new: nn.Module = conv
                conv.token_anchor = conv.token_anchor or token
            else:
                new = _ANCHORED[type(conv)].from_conv(conv, token_anchor=token, score=score)
            where = f"anchored by {score} norm" + (", token grid anchored" if token else "")
        elif type(conv) in _PLAIN and (
            max(conv.stride) >= _BLUR_MIN_STRIDE
            or (low_pass_tokens and index == 0 and options.antialias_stem is not False)
        ):
            ndim = len(conv.kernel_size)
            ds = create_downsample(
                options.method,
                ndim,
                channels=conv.in_channels,
                stride=1,
                filter_size=options.filter_size,
                pad_mode=options.pad_mode,
            )
            stride = conv.stride
            conv.stride = (1,) * ndim  # from_conv gives the conv's stride to the blur: none here
            try:
                blur_conv: Any = BLUR_CONV[ndim]
                new = blur_conv.from_conv(
                    conv, filter_size=options.filter_size, pad_mode=options.pad_mode, downsample=ds
                )
            finally:
                conv.stride = stride
            new.stride = stride  # the convolution keeps its stride: the same output size
            new.train(conv.training)
            where = "low-pass before the patch embedding"
        else:
            continue
        _set(model, name, new)
        done.done.append((name, old, _describe(new), where, _brief_change(brief, _brief(new))))
        converted.append(name)
    exclude = tuple(options.exclude or ()) + tuple(_escape(n) for n in converted)
    return dataclasses.replace(options, exclude=exclude), done


def _escape(name: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", name)
