"""Patchify layers, vision transformers and their kin in :func:`antialias.conversion.convert`: which
convolutions are patchify ones, whether the model processes tokens, and how each is anchored (the
:class:`~antialias._rewrite.Converter` plans and edits them with the other strided layers).

A convolution with ``kernel_size == stride`` (a ViT, DeiT, Swin, Twins or MLP-Mixer patch embedding,
a ConvNeXt stem or downsampling layer) has no room for a low-pass filter after it at stride 1 (its
map would shrink by ``kernel_size - 1``). With ``method="aps"`` (or ``"lps"``) it becomes an
:class:`~antialias.layers.AnchoredConv2d` (1D: ``AnchoredConv1d``): the input is rolled so that its
largest-norm polyphase component modulo the stride sits at phase zero, then convolved, and the
tokens move by whole tokens under any integer circular shift (Ding et al. 2023). The norm is the
input's for the first one when its patch is larger than 4 x 4 (a ViT's 16 x 16: one convolution),
else the convolution's output at every offset (``score="output"``: no ties between equal input
components, as after a LayerNorm or in an upsampled image). A convolution that is anchored already
keeps its own score.

In a model with position-dependent token processing (absolute or relative position embeddings,
attention, window partitions, patch merging, token-mixing MLPs), the first patchify convolution in
execution order also anchors its token grid: the token of largest norm goes to the origin, so every
circular shift of the image gives the same tokens, and everything downstream (position embeddings,
windows, shifted windows and their masks, patch merging, subsampled attention, the class token) sees
them unchanged. The later patchify convolutions (Twins' stage embeddings and spatial-reduction
convolutions) are then left alone, and reported; when that first one is 3D (a video patch
embedding), no convolution can anchor the token grid (anchoring is 1D and 2D) and all of them are left
alone, and reported. Without token processing (ConvNeXt's downsampling) every 1D and 2D patchify
convolution is anchored. Anchoring adds no parameters: the state dict keeps its keys
and values.

With the low-pass methods (``"blur"`` and the others) the first patchify convolution of a model with
token processing (its patch embedding, which the general rules would leave alone as the stem, unless
``antialias_stem=False``), and any one with ``kernel_size == stride >= 8``, gets its low-pass filter
before it, at stride 1, and keeps its stride (:class:`BlurConv2d`, 1D and 3D too): its output size
and weights are unchanged. The later ones (Twins' stage embeddings) follow the general rules. Swin's
patch mergings (:func:`is_patch_merging`) become :class:`~antialias.layers.BlurPatchMerging`: the
method's low-pass filter at stride 1, then the same merge, with the same parameters.
"""

from __future__ import annotations

import math
import re
from typing import Any

from torch import nn

from antialias._edits import _is_plain_conv
from antialias.layers.anchor import AnchoredConv1d, AnchoredConv2d, _AnchoredConv, _is_patchify
from antialias.layers.merging import norm_first

__all__ = [
    "ANCHORED_CONV",
    "ANCHOR_METHODS",
    "anchor_score",
    "anchored",
    "has_tokens",
    "is_patch_merging",
    "is_patchify",
]

# The methods that anchor a patchify convolution (the others low-pass before it).
ANCHOR_METHODS = ("aps", "lps")
# The anchored form of a plain convolution, by dimension (anchoring is 1D and 2D).
ANCHORED_CONV: dict[int, Any] = {1: AnchoredConv1d, 2: AnchoredConv2d}
_OUTPUT_SCORE_MAX_AREA = 16  # patches up to 4 x 4 are anchored by their output norm
# Signs of position-dependent token processing after the patch embedding.
_TOKEN_CLASSES = re.compile(r"Attention|Attn|Mixer|PatchMerging|Window|PosEmbed|PosConv|PEG")
_TOKEN_PARAMETERS = re.compile(r"pos_embed|pos_embedding|position|cls_token|class_token")


def is_patchify(module: nn.Module) -> bool:
    """A plain or anchored convolution that cuts its input into patches of more than one sample."""
    if not (_is_plain_conv(module) or isinstance(module, _AnchoredConv)):
        return False
    conv: Any = module
    return max(conv.stride) > 1 and _is_patchify(conv)


def is_patch_merging(module: nn.Module) -> bool:
    """A Swin patch merging (torchvision's and timm's, v1 and v2) that
    :meth:`~antialias.layers.BlurPatchMerging.from_merging` takes."""
    return "PatchMerging" in type(module).__name__ and norm_first(module) is not None


def has_tokens(model: nn.Module) -> bool:
    """Whether ``model`` processes tokens by position (attention, windows, position embeddings)."""
    if any(
        isinstance(m, nn.MultiheadAttention) or _TOKEN_CLASSES.search(type(m).__name__)
        for m in model.modules()
    ):
        return True
    return any(_TOKEN_PARAMETERS.search(name) for name, _ in model.named_parameters())


def anchor_score(conv: nn.Module, first: bool) -> str:
    """What the anchor of ``conv`` chooses its phase by: its own ``score`` when it is anchored
    already; else the output norm for small patches and for every patchify convolution after the
    first (it breaks ties of equal input components, as in upsampled images or after a LayerNorm, at
    ``prod(kernel_size)`` times the convolution's work), the input norm otherwise."""
    if isinstance(conv, _AnchoredConv):
        return conv.score
    kernel_size: Any = conv.kernel_size
    small = math.prod(kernel_size) <= _OUTPUT_SCORE_MAX_AREA
    return "input" if first and not small else "output"


def anchored(conv: nn.Module, token_anchor: bool, score: str) -> nn.Module:
    """``conv`` behind a polyphase anchor, sharing its Parameters; a convolution that is anchored
    already stays itself, and anchors its token grid too when ``token_anchor``."""
    if isinstance(conv, _AnchoredConv):
        conv.token_anchor = conv.token_anchor or token_anchor
        return conv
    kernel_size: Any = conv.kernel_size
    return ANCHORED_CONV[len(kernel_size)].from_conv(conv, token_anchor=token_anchor, score=score)
