"""The rewriting engine behind :func:`antialias.convert` and the zoo (the rules are described there):
:class:`Converter` observes (example forward, ``torch.fx``), plans every strided layer, then edits the
modules in place (a ``GraphModule`` only where no module edit can place a layer)."""

from __future__ import annotations

import fnmatch
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AvgPoolNd, _LPPoolNd, _MaxPoolNd

from antialias import _fx
from antialias._edits import (
    _LEAVES,
    _PATCH_EMBED_MIN_STRIDE,
    _PLAIN_CONVS,
    _brief,
    _brief_change,
    _ConvJob,
    _describe,
    _divisor,
    _follow_mode,
    _has_state,
    _is_plain_conv,
    _link_phases,
    _placed,
    _pool_base,
    _pool_ndim,
    _same_forward,
    _Site,
    _strided,
    _swap,
    _tuple,
    _wanted,
)
from antialias._report import ConversionReport, ConvertedLayer, ModuleEdit, SkippedLayer
from antialias._transformers import (
    ANCHOR_METHODS,
    ANCHORED_CONV,
    anchor_score,
    anchored,
    has_tokens,
    is_patch_merging,
    is_patchify,
)
from antialias.filters import FilterSpec, get_taps
from antialias.layers.blurpool import BLUR_CONV
from antialias.layers.factory import (
    _ceil_mode_reproducible,
    _wrap_pad,
    create_downsample,
    create_max_downsample,
    list_downsample_methods,
)
from antialias.layers.functional import check_pad_mode
from antialias.layers.merging import BlurPatchMerging
from antialias.layers.trim import TrimToStride

__all__ = ["LAYOUT_RULES", "PLACEMENTS", "Converter", "Options"]

PLACEMENTS = ("paper", "reference", "before")
# Per-layer choices an architecture's published weights depend on (a model family passes them by module
# name; the engine knows no architecture).
LAYOUT_RULES = ("max-kernel-2", "split-stride")
_CONV_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _patterns(value: str | Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(f"{name} must be a pattern string or a sequence of them, got {value!r}")


@dataclass(frozen=True)
class Options:
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
    layout: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        filter_size: FilterSpec,
        method: str,
        pad_mode: str | None,
        min_channels: int,
        antialias_stem: bool | None,
        include: Any,
        exclude: Any,
        conv_padding_mode: str | None,
        placement: str,
        circular: bool = False,
        layout: Mapping[str, str] | None = None,
    ) -> Options:
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
            raise ValueError(
                f"conv_padding_mode must be one of {_CONV_PADDING_MODES} or None, got {conv_padding_mode!r}"
            )
        if not isinstance(circular, bool):
            raise TypeError(f"circular must be True or False, got {circular!r}")
        layout = {} if layout is None else layout
        if not isinstance(layout, Mapping) or any(
            not isinstance(k, str) or v not in LAYOUT_RULES for k, v in layout.items()
        ):
            raise ValueError(
                f"layout must map module names to one of {LAYOUT_RULES}, got {layout!r}"
            )
        if circular:
            # Everything the exact circular-shift invariance needs, in one option (checked after the conversion).
            if method == "blur":
                raise ValueError(
                    "circular=True promises invariance to every circular shift, which needs a method that "
                    "picks its sampling phase from the content ('aps', 'lps'), got method='blur'"
                )
            for option, value in (("pad_mode", pad_mode), ("conv_padding_mode", conv_padding_mode)):
                if value not in (None, "circular"):
                    raise ValueError(
                        f"circular=True sets {option}='circular', got {option}={value!r}"
                    )
            if antialias_stem is False:
                raise ValueError(
                    "circular=True anti-aliases the stem too, got antialias_stem=False"
                )
            pad_mode, conv_padding_mode, antialias_stem = "circular", "circular", True
        return cls(
            filter_size,
            method,
            check_pad_mode("reflect" if pad_mode is None else pad_mode),
            min_channels,
            antialias_stem,
            _patterns(include, "include"),
            _patterns(exclude, "exclude"),
            conv_padding_mode,
            placement,
            circular,
            dict(layout),
        )


class Converter:
    """Anti-alias ``model`` in place with ``options``; :meth:`run` returns the model and the report."""

    def __init__(self, model: nn.Module, options: Options, inputs: tuple[Any, ...] | str) -> None:
        self.model = model
        self.opt = options
        self.inputs = inputs
        self.report = ConversionReport()
        self.modules: dict[str, Any] = dict(
            model.named_modules()
        )  # convs, pools ...: read by attribute
        self.index = {name: i for i, name in enumerate(self.modules)}
        # One module registered under several names is edited at every one of them.
        first = {id(m): name for name, m in self.modules.items()}
        self.aliases: dict[str, list[str]] = {}
        for name, m in model.named_modules(remove_duplicate=False):
            if name != first[id(m)]:
                self.aliases.setdefault(first[id(m)], []).append(name)
        self.replacements: dict[str, nn.Module] = {}
        self.brief: dict[str, str] = {}  # the short form of each layer before the edits
        self.added: dict[str, nn.Module] = {}  # a strided conv's downsampling layer, placed apart
        self.old: dict[str, str] = {}

    # -- analysis -------------------------------------------------------------------------------------

    def _analyse(self) -> None:
        self.seen = _fx.Observation(
            {}, {}, [], error=self.inputs if isinstance(self.inputs, str) else None
        )
        if not isinstance(self.inputs, str):
            watch = {name for name, m in self.modules.items() if _wanted(m)}
            self.seen = _fx.observe(self.model, self.inputs, watch, _LEAVES)
            shapes = ", ".join(str(tuple(x.shape)) for x in self.inputs if isinstance(x, Tensor))
            self.report.example_forward = (
                f"ran on {shapes}" if self.seen.error is None else f"failed on {shapes}"
            )
        if self.seen.error is not None:
            self.report.example_forward += (
                f" ({self.seen.error}): strided calls in forward() may be missed"
            )
            self.report.example_forward = self.report.example_forward.lstrip()
        regions, failures = _fx.trace_regions(self.model, _wanted)
        self.report.untraced = failures
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
                elif node.op == "call_function":
                    call = _fx.strided_call(
                        getattr(node.target, "__name__", ""), node.args, node.kwargs
                    )
                    if call is not None:
                        outer = _fx.enclosing_module(node)
                        self._report_call(
                            region.absolute(outer[1] if outer else ""),
                            call,
                            "functional call in forward()",
                        )
        for owner, call in self.seen.calls:
            self._report_call(
                owner, call, "subsampling in forward() (found by the example forward)"
            )

    def _report_call(self, owner: str, call: str, where: str) -> None:
        """One entry per module and function: the graph's, or else the example forward's."""
        name = f"{owner or '<model>'}:{call.split('(')[0].removeprefix('F.').strip()}"
        if all(s.name != name for s in self.report.skipped):
            self.report.skipped.append(
                SkippedLayer(name, call, f"{where}; convert() edits modules only")
            )

    def _order(self, name: str) -> tuple[int, int]:
        return self.rank.get(name, (self.index[name], 0))

    def _channels(self, name: str) -> int | None:
        """The channel count that reached ``name`` in the example forward (``None``: unknown or several)."""
        counts = self.seen.channels.get(name, set())
        return next(iter(counts)) if len(counts) == 1 else None

    def _matches(self, name: str) -> str | None:
        """The include/exclude reason to leave ``name`` alone, if any."""
        if self.opt.include is not None and not any(
            fnmatch.fnmatchcase(name, p) for p in self.opt.include
        ):
            return f"not matched by include={list(self.opt.include)}"
        if self.opt.exclude is not None:
            for pattern in self.opt.exclude:
                if fnmatch.fnmatchcase(name, pattern):
                    return f"excluded by pattern {pattern!r}"
        return None

    def _skip(self, name: str, module: nn.Module, reason: str) -> None:
        self.report.skipped.append(SkippedLayer(name, _describe(module), reason))

    # -- planning -------------------------------------------------------------------------------------

    def _plan(self) -> tuple[list[tuple[str, nn.Module]], list[_ConvJob]]:
        candidates = [
            (name, m)
            for name, m in self.modules.items()
            if isinstance(m, (_ConvNd, _MaxPoolNd, _AvgPoolNd, _LPPoolNd))
        ]
        candidates.sort(key=lambda item: self._order(item[0]))
        strided = [name for name, m in candidates if _strided(m)]
        stem = strided[0] if strided and isinstance(self.modules[strided[0]], _ConvNd) else None
        self._check_layout()
        # Patchify convolutions (kernel == stride) in execution order: the first one anchors the
        # token grid of a model that processes tokens (antialias._transformers).
        self.patches = [
            name
            for name, m in candidates
            if self.opt.placement != "reference" and is_patchify(m) and self._matches(name) is None
        ]
        self.tokens = bool(self.patches) and has_tokens(self.model)
        pools: list[tuple[str, nn.Module]] = []
        convs: list[_ConvJob] = []
        for name, module in candidates:
            self.old[name] = _describe(module)
            self.brief[name] = _brief(module)
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
        self.commute = {
            name: conv
            for name, pool in pools
            if (conv := self._commuting_conv(name, pool, used)) is not None
        }
        return pools, [job for job in convs if job.kind != "skip"]

    def _check_layout(self) -> None:
        for name, rule in self.opt.layout.items():
            module = self.modules.get(name)
            kind = _MaxPoolNd if rule == "max-kernel-2" else _ConvNd
            if not isinstance(module, kind):
                raise ValueError(
                    f"layout: {rule!r} applies to a {kind.__name__.lstrip('_')}, got {name!r} "
                    f"({'no such module' if module is None else type(module).__name__})"
                )
            stride = _tuple(module.stride, 1)
            if rule == "split-stride" and any(s % 2 for s in stride):
                raise ValueError(
                    f"layout: 'split-stride' needs an even stride, got {name!r} with stride {stride}"
                )

    def _commuting_conv(self, name: str, pool: nn.Module, taken: set[str]) -> str | None:
        """The bias-free 1x1 convolution right before an average pool, which the blur may precede.

        ``conv1x1 -> blur`` equals ``blur -> conv1x1`` (a per-pixel channel mix commutes with a
        per-channel spatial filter), and the convolution then runs on ``1 / stride**2`` of the samples
        (DenseNet's transitions: 0.92x the FLOPs of the model). Only for ``method="blur"``: methods that
        choose by content (APS, LPS) see different maps on the two sides.
        """
        if (
            self.opt.method != "blur"
            or not isinstance(pool, _AvgPoolNd)
            or name not in self.node_of
        ):
            return None
        ndim = _pool_ndim(pool)
        if _tuple(pool.kernel_size, ndim) != _tuple(pool.stride or pool.kernel_size, ndim) or any(
            _tuple(pool.padding, ndim)
        ):
            return None
        if _divisor(pool) is not None or getattr(pool, "ceil_mode", False):
            return None
        region, node = self.node_of[name]
        source = node.args[0] if node.args else None
        if (
            not isinstance(source, fx.Node)
            or source.op != "call_module"
            or len(_fx.data_users(source)) != 1
        ):
            return None
        conv_name = region.absolute(str(source.target))
        conv = self.modules.get(conv_name)
        if conv is None:
            return None
        if (
            not _is_plain_conv(conv)
            or _PLAIN_CONVS[type(conv)] != ndim
            or conv.bias is not None
            or any(k != 1 for k in conv.kernel_size)
            or any(s != 1 for s in conv.stride)
            or conv.padding not in ((0,) * ndim, "valid")
            or self.calls.get(conv_name, 1) != 1
            or conv_name in taken
        ):
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
            if isinstance(module, _MaxPoolNd) and not _ceil_mode_reproducible(
                kernel, padding, stride
            ):
                # torch drops a last window that starts in the padding; padding the end cannot reproduce that
                self._skip(
                    name,
                    module,
                    "ceil_mode with kernel_size < padding + stride (its size rule is not reproduced)",
                )
                return False
            if isinstance(module, _AvgPoolNd) and (
                kernel != stride or any(padding) or _divisor(module) is not None
            ):
                self._skip(
                    name,
                    module,
                    "ceil_mode average pooling with overlapping windows, padding or "
                    "divisor_override (its partial windows are not reproduced)",
                )
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
        if name in self.patches and (job := self._plan_patch(name, conv)) is not None:
            return job
        if tuple(conv.kernel_size) == stride and max(stride) >= _PATCH_EMBED_MIN_STRIDE:
            self._skip(name, conv, f"patch embedding (kernel_size == stride == {stride})")
            return None
        kind = "after"
        if self.opt.layout.get(name) == "split-stride" and self.opt.antialias_stem is not False:
            kind = "split"
        elif name == stem:
            if self.opt.antialias_stem is not True:
                self._skip(name, conv, "stem (antialias_stem=False)")
                return None
        reason = self._matches(name)
        one_by_one = all(k == 1 for k in conv.kernel_size) and all(
            p == 0 for p in _tuple(conv.padding, ndim)
        )
        before = (
            kind != "split"
            and _is_plain_conv(conv)
            and (self.opt.placement == "before" or one_by_one)
        )
        channels = conv.in_channels if before else conv.out_channels
        if reason is None and channels < self.opt.min_channels:
            reason = f"{channels} channels < min_channels={self.opt.min_channels}"
        if reason is not None:
            self._skip(name, conv, reason)
            return None
        if kind == "split":
            return _ConvJob(name, "split", ndim, channels, (2,) * ndim, stride)
        if before:
            why = "1x1: they commute" if one_by_one else "placement='before'"
            job = _ConvJob(name, "before", ndim, channels, stride, stride, reason=why)
            return job if self._before_form(job, conv) else None
        return _ConvJob(name, "after", ndim, channels, stride, stride)

    def _plan_patch(self, name: str, conv: _ConvNd) -> _ConvJob | None:
        """A patchify convolution anchored (APS, LPS), left to the token anchor, or low-passed at
        stride 1 (the other methods); ``None``: the general rules apply."""
        ndim, stride = len(conv.kernel_size), tuple(conv.stride)
        first = name == self.patches[0]
        if self.opt.method in ANCHOR_METHODS:
            if self.tokens:
                head: Any = self.modules[self.patches[0]]
                why = ""
                if len(head.kernel_size) not in ANCHORED_CONV:
                    why = (
                        f"the token grid cannot be anchored: {self.patches[0]} is "
                        f"{len(head.kernel_size)}D (anchoring is 1D and 2D)"
                    )
                elif not first:
                    why = (
                        f"after the token anchor of {self.patches[0]}: the same tokens "
                        "reach it for every circular shift of the input"
                    )
                if why:
                    self._skip(name, conv, why)
                    return _ConvJob(name, "skip", ndim, conv.in_channels, stride)
            if ndim not in ANCHORED_CONV:
                return None  # anchoring is 1D and 2D: the general rules apply
            token = self.tokens and first
            score = anchor_score(conv, first)
            where = f"anchored by {score} norm" + (", token grid anchored" if token else "")
            return _ConvJob(
                name,
                "anchor",
                ndim,
                conv.in_channels,
                stride,
                stride,
                placement=where,
                token_anchor=token,
                score=score,
            )
        if _is_plain_conv(conv) and (
            max(stride) >= _PATCH_EMBED_MIN_STRIDE
            or (self.tokens and first and self.opt.antialias_stem is not False)
        ):
            where = "low-pass before the patch embedding"
            return _ConvJob(
                name, "before-dense", ndim, conv.in_channels, (1,) * ndim, stride, placement=where
            )
        return None

    def _plan_mergings(self) -> list[tuple[str, int]]:
        """Swin's patch mergings that get a low-pass filter before them, with their channel counts
        (the low-pass methods; under APS and LPS the token anchor hands them the same tokens for
        every circular shift)."""
        if self.opt.method in ANCHOR_METHODS or self.opt.placement == "reference":
            return []
        names = []
        for name, module in self.modules.items():
            if not is_patch_merging(module) or name in self.replacements:
                continue
            channels = module.reduction.in_features // 4
            reason = self._matches(name)
            if reason is None and channels < self.opt.min_channels:
                reason = f"{channels} channels < min_channels={self.opt.min_channels}"
            # its slicing was reported as subsampling in forward(): now it is planned here
            self.report.skipped = [
                s for s in self.report.skipped if not s.name.startswith(name + ":")
            ]
            self.old[name], self.brief[name] = _describe(module), _brief(module)
            if reason is not None:
                self._skip(name, module, reason)
            else:
                names.append((name, channels))
        return names

    def _fallback(self, job: _ConvJob, why: str) -> None:
        conv = self.modules[job.name]
        if _is_plain_conv(conv):
            job.kind, job.channels, job.reason = "before", conv.in_channels, f"fallback: {why}"
            if not self._before_form(job, conv):
                job.kind = "skip"
        else:
            self._skip(
                job.name, conv, f"{why}, and {type(conv).__name__} is not a plain convolution"
            )
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
            self._skip(
                job.name,
                conv,
                f"{job.reason or 'placement=before'}; {self.opt.method!r} before a "
                f"kernel_size={tuple(conv.kernel_size)} convolution would change its output size",
            )
            return False
        job.kind, job.stride = "before-dense", (1,) * job.ndim
        job.reason += "; blur at stride 1, the convolution keeps its stride (same output size)"
        return True

    def _find_site(self, job: _ConvJob, taken: set[str]) -> _Site | str:
        """Where the downsampling layer of ``job`` goes, or why it cannot go after the activation."""
        if job.name not in self.node_of:
            failed = [
                error
                for name, error in self.report.untraced
                if not name or job.name.startswith(name + ".")
            ]
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
            if (
                user.op == "call_module"
                and _fx.is_chain_input(user, last)
                and len(user.args) == 1
                and not user.kwargs
            ):
                name = region.absolute(str(user.target))
                consumer = self.modules[name]
                if (
                    _PLAIN_CONVS.get(type(consumer)) == job.ndim
                    and all(s == 1 for s in consumer.stride)
                    and once(name)
                ):
                    return _Site("consumer", name, where)
        for _, name in outputs:
            module = self.modules[name]
            if (
                isinstance(module, nn.Sequential)
                and _same_forward(module, nn.Sequential)
                and once(name)
            ):
                return _Site("append", name, where)
        for _, name in outputs:
            if not _has_state(self.modules[name]) and once(name):
                return _Site("wrap", name, where)
        return _Site("graph", "", where, region, last)

    # -- building -------------------------------------------------------------------------------------

    def _like(self, layer: nn.Module, near: nn.Module) -> nn.Module:
        """Put a new layer on the device, dtype and train/eval mode of the module it joins."""
        tensors = [
            t for t in list(near.parameters()) + list(near.buffers()) if t.is_floating_point()
        ]
        if not tensors:
            tensors = [
                t
                for t in list(self.model.parameters()) + list(self.model.buffers())
                if t.is_floating_point()
            ]
        if tensors:
            layer = layer.to(device=tensors[0].device, dtype=tensors[0].dtype)
        return layer.train(near.training)

    def _downsample(
        self, ndim: int, channels: int | None, stride: tuple[int, ...], near: nn.Module
    ) -> nn.Module:
        """The ``method`` layer. Its channel count comes from the tensors: a convolution's
        ``in_channels``/``out_channels``, or what reached the layer in the example forward. Where that is
        unknown (the forward failed, several counts) the layer is built with ``channels=None`` and takes
        what arrives; a method that needs the count (LPS: its scorer) then raises."""
        stride_arg: int | tuple[int, ...] = stride[0] if len(set(stride)) == 1 else stride
        options: dict[str, Any] = {
            "stride": stride_arg,
            "filter_size": self.opt.filter_size,
            "pad_mode": self.opt.pad_mode,
        }
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
        new: Any = self._before(job, conv)
        if (
            self.opt.placement != "reference"
        ):  # floor mode drops the last L % stride samples, as before
            new.blur = nn.Sequential(OrderedDict(trim=TrimToStride(stride), downsample=new.blur))
        new.stride = (1,) * ndim
        self.old.setdefault(conv_name, _describe(conv))
        self._replace(conv_name, new)
        self._replace(name, nn.Identity())
        self.added[name] = getattr(new.blur, "downsample", new.blur)
        converted[name] = (
            f"before the 1x1 convolution {conv_name} (they commute; 1/{math.prod(stride)} of the work)"
        )

    def _before(self, job: _ConvJob, conv: _ConvNd) -> nn.Module:
        """``conv`` that subsamples its input first (``BlurConv``), sharing its Parameters."""
        ds = self._downsample(job.ndim, conv.in_channels, job.stride, conv)
        stride = conv.stride
        conv.stride = job.stride  # BlurConv's blur stride (its checks of the input size included)
        try:
            blur_conv: Any = BLUR_CONV[job.ndim]
            new = blur_conv.from_conv(
                conv, filter_size=self.opt.filter_size, pad_mode=self.opt.pad_mode, downsample=ds
            )
        finally:
            conv.stride = stride
        if job.kind == "before-dense":
            new.stride = tuple(
                job.conv_stride
            )  # the blur ran at stride 1, the convolution keeps its stride
        return new

    def _pool_replacement(self, name: str, pool: nn.Module) -> tuple[nn.Module, str]:
        """The replacement of a strided pool and how its output size is kept."""
        ndim = _pool_ndim(pool)
        kernel = _tuple(pool.kernel_size, ndim)
        stride = _tuple(pool.stride if pool.stride is not None else pool.kernel_size, ndim)
        padding = _tuple(pool.padding, ndim)
        channels = self._channels(name)
        is_max = isinstance(pool, _MaxPoolNd)
        if self.opt.layout.get(name) == "max-kernel-2":
            kernel, padding = (2,) * ndim, (0,) * ndim
        # Wrap around instead of -inf/zero padding and a shrinking window: with circular convolutions
        # and circular sampling the whole network is then exactly equivariant to circular shifts.
        circular = self.opt.conv_padding_mode == "circular"
        circular_how = "replaced (circular padding: ceil(L / stride) samples)"
        ceil = bool(getattr(pool, "ceil_mode", False))
        if is_max:
            self._downsample(ndim, channels, stride, pool)  # the method's own checks and message
            new = create_max_downsample(
                self.opt.method,
                ndim,
                channels,
                kernel,
                stride,
                padding,
                ceil_mode=ceil,
                filter_size=self.opt.filter_size,
                pad_mode=self.opt.pad_mode,
                circular=circular,
            )
            new = self._like(new, pool)
            if circular:
                return new, circular_how
            if ceil:
                return new, "replaced (ceil_mode: the end padded by stride - 1 copies, same size)"
            return new, "replaced"
        ds = self._downsample(ndim, channels, stride, pool)
        if circular and (any(padding) or kernel != stride):
            dense = type(pool)(kernel, stride=1)
            parts = OrderedDict(pad=_wrap_pad(kernel), pool=dense, downsample=ds)
            return nn.Sequential(parts), circular_how
        how = "replaced"
        if kernel == stride and not any(padding) and _divisor(pool) is None:
            if ceil:
                return ds, how  # ceil(L / s) samples, as the original's
            if self.opt.placement == "reference":
                return (
                    ds,
                    how
                    + " (the reference's blur alone: ceil(L / stride) samples on sizes not divisible)",
                )
            # floor mode drops the last L % s samples, and so does the replacement
            parts = OrderedDict(trim=TrimToStride(stride), downsample=ds)
            return nn.Sequential(
                parts
            ), how + " (floor mode: the last L % stride samples are dropped, as before)"
        extra: dict[str, Any] = {} if ndim == 1 else {"divisor_override": _divisor(pool)}
        dense = type(pool)(
            kernel, stride=1, padding=padding, count_include_pad=pool.count_include_pad, **extra
        )
        if _divisor(pool) is not None:
            how += f" (divisor_override={_divisor(pool)} kept: the average at stride 1, then the downsampling)"
        return nn.Sequential(OrderedDict(pool=dense, downsample=ds)), how

    # -- applying -------------------------------------------------------------------------------------

    def _replace(self, name: str, new: nn.Module) -> None:
        old = self.modules[name]
        _follow_mode(new, old)
        for alias in [name, *self.aliases.get(name, ())]:
            self.replacements[alias] = new
        self.report.edits.append(
            ModuleEdit(name, self.old.get(name) or _describe(self.modules[name]), _describe(new))
        )

    def _apply_site(self, job: _ConvJob) -> str:
        site = job.site
        assert site is not None
        target: Any = self.modules[site.module] if site.module else None
        if site.kind == "identity":
            ds = self._downsample(job.ndim, job.channels, job.stride, target)
            self._replace(site.module, ds)
            self.added[job.name] = ds
            return f"in the empty Identity slot {site.module}"
        if site.kind == "consumer":
            new = self._before(
                _ConvJob(site.module, "before", job.ndim, target.in_channels, job.stride), target
            )
            self.old.setdefault(site.module, _describe(target))
            self._replace(site.module, new)
            self.added[job.name] = new.get_submodule("blur")
            return f"after {site.where}, in {type(new).__name__} {site.module}"
        if site.kind == "append":
            old = _describe(target)
            self.added[job.name] = self._downsample(job.ndim, job.channels, job.stride, target)
            target.append(self.added[job.name])
            self.report.edits.append(ModuleEdit(site.module, old, _describe(target)))
            return f"after {site.where}, appended to {site.module}"
        if site.kind == "wrap":
            ds = self._downsample(job.ndim, job.channels, job.stride, self.modules[job.name])
            self.old.setdefault(site.module, _describe(target))
            self._replace(site.module, nn.Sequential(target, ds))
            self.added[job.name] = ds
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
            if job.kind == "anchor":
                self._replace(job.name, anchored(conv, job.token_anchor, job.score))
                converted[job.name] = job.placement
                continue
            if job.kind.startswith("before"):
                self._replace(job.name, self._before(job, conv))
                converted[job.name] = job.placement or f"before ({job.reason})"
                continue
            # "after": the whole stride moves to the downsampling layer; "split": it takes a factor 2 of it
            conv.stride = tuple(s // d for s, d in zip(job.conv_stride, job.stride, strict=True))
            self.report.edits.append(ModuleEdit(job.name, self.old[job.name], _describe(conv)))
            if job.site is not None and job.site.kind == "graph":
                graph_jobs.append(job)
                continue
            converted[job.name] = self._apply_site(job)
        for name, channels in self._plan_mergings():
            merging = self.modules[name]
            blur = self._downsample(2, channels, (1, 1), merging)
            self._replace(name, BlurPatchMerging.from_merging(merging, blur=blur))
            converted[name] = "low-pass before the 2x2 merge, at stride 1"
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
            text = _describe(module) if module is not None else "(inside a GraphModule)"
            where = converted[name]
            if self.aliases.get(name):
                where += f"; the same module at {', '.join(self.aliases[name])}, edited there too"
            diff = _brief_change(self.brief[name], _brief(module) if module is not None else "?")
            if name in self.added:
                diff += f" + {_brief(self.added[name])}"
            self.report.converted.append(ConvertedLayer(name, self.old[name], text, where, diff))
        return self.model, self.report

    def _apply_graph_jobs(self, jobs: list[_ConvJob], converted: dict[str, str]) -> None:
        """Rule 5: insert the layers as graph nodes, one GraphModule per module that produced their inputs."""
        groups: dict[tuple[str, str], list[_ConvJob]] = {}
        for job in jobs:
            assert (
                job.site is not None and job.site.region is not None and job.site.node is not None
            )
            outer = _fx.enclosing_module(job.site.node)
            groups.setdefault((job.site.region.prefix, outer[0] if outer else ""), []).append(job)
        # Deepest modules first: re-tracing an outer module then goes through the inner GraphModules.
        for (prefix, _), group in sorted(
            groups.items(), key=lambda item: -len(item[1][0].name.split("."))
        ):
            sites = [_placed(job) for job in group]
            region = _fx.Region(prefix, self.model.get_submodule(prefix), sites[0].region.graph)  # type: ignore[union-attr]
            insertions: list[tuple[fx.Node, nn.Module, str]] = []
            for job, site in zip(group, sites, strict=True):
                assert site.node is not None
                layer = self._downsample(job.ndim, job.channels, job.stride, self.modules[job.name])
                self.added[job.name] = layer
                insertions.append((site.node, layer, f"{site.where.split('.')[-1]}_downsample"))
            result = _fx.insert_after(region, insertions)
            if result is None:
                for job in group:
                    self._graph_fallback(job, converted)
                continue
            name, graph_module = result
            old = self.model.get_submodule(name)
            kept = {id(m) for m in graph_module.modules()}
            self.report.hooks_dropped += [
                f"{name}.{sub}" if name else sub
                for sub, m in old.named_modules()
                if sub
                and id(m) not in kept
                and any(getattr(m, attr, None) for attr in _fx.HOOK_DICTS)
            ]
            self.report.edits.append(ModuleEdit(name, _describe(old), _describe(graph_module)))
            self.model = _swap(self.model, {name: graph_module}, self.report.hooks_moved)
            self.report.graph_modules.append(name)
            for job, site in zip(group, sites, strict=True):
                converted[job.name] = (
                    f"after {site.where}, as a node of GraphModule {name or '<model>'}"
                )

    def _graph_fallback(self, job: _ConvJob, converted: dict[str, str]) -> None:
        conv = self.modules[job.name]
        conv.stride = job.conv_stride  # undo, then place the blur before the convolution
        self.report.edits = [e for e in self.report.edits if e.name != job.name]
        self._fallback(
            job,
            f"the module around {_placed(job).where} could not be re-traced to insert the layer",
        )
        if job.kind == "skip":
            return
        new = self._before(job, conv)
        _follow_mode(new, conv)
        names = [job.name, *self.aliases.get(job.name, ())]
        self.model = _swap(self.model, dict.fromkeys(names, new), self.report.hooks_moved)
        self.report.edits.append(ModuleEdit(job.name, self.old[job.name], _describe(new)))
        converted[job.name] = f"before ({job.reason})"

    def _set_padding_mode(self) -> None:
        mode = self.opt.conv_padding_mode
        if mode is None:
            return
        # Every convolution, padded or not (without padding the mode changes nothing): one rule for all.
        for name, module in self.model.named_modules():
            if (
                isinstance(module, _ConvNd)
                and not module.transposed
                and module.padding_mode != mode
            ):
                module.padding_mode = mode  # type: ignore[assignment]  # validated by Options
                self.report.padding_mode.append(name)
