"""What a conversion changed and what it left alone: :class:`ConversionReport` and its rows."""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ConversionReport", "ConvertedLayer", "ModuleEdit", "SkippedLayer"]


@dataclass(frozen=True)
class ConvertedLayer:
    """A downsampling layer that was anti-aliased.

    Attributes:
        name: its qualified name in the model.
        old: its original form (one line).
        new: the module now at ``name``.
        placement: where the subsampling happens now, e.g. ``"replaced"``,
            ``"after layer2.0.relu, in BlurConv2d layer2.0.conv2"``, ``"before (1x1 convolution)"``.
        diff: the change in short forms, the layer added apart included:
            ``"Conv2d(k=3, s=2) -> Conv2d(k=3, s=1) + BlurPool2d(s=2)"``.
    """

    name: str
    old: str
    new: str
    placement: str
    diff: str = ""


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
        hooks_dropped: modules with hooks that a ``torch.fx.GraphModule`` flattened into its graph: their
            ``forward`` is no longer called, so their hooks no longer fire.
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
    hooks_dropped: list[str] = field(default_factory=list)
    example_forward: str = ""
    invariance: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        """One line per layer, each at most :data:`LINE_WIDTH` characters, like a diff: the layer,
        its old -> new short form with every module added, and where the subsampling is now (names
        inside the layer's own parent module are written relative to it)."""
        stride1 = [s for s in self.skipped if s.reason == "stride 1"]
        others = [s for s in self.skipped if s.reason != "stride 1"]
        lines = [
            f"anti-aliased {len(self.converted)} downsampling layers; left alone {len(others)} "
            f"(and {len(stride1)} stride-1 layers)"
        ]
        for c in self.converted:
            parent = c.name.rpartition(".")[0]
            where = c.placement.replace(f"{parent}.", "") if parent else c.placement
            lines.append(_fit(f"  {c.name}: {c.diff or c.old + ' -> ' + c.new}, {where}"))
        if others:
            lines.append("left alone:")
            lines += [_fit(f"  {s.name}: {s.reason}") for s in others]
        lists = (
            ("replaced by torch.fx.GraphModule", [n or "<model>" for n in self.graph_modules]),
            ("not traceable", [f"{n or '<model>'} ({e})" for n, e in self.untraced]),
            ("hooks moved to the replacement", self.hooks_moved),
            ("hooks dropped (flattened into a GraphModule)", self.hooks_dropped),
        )
        for title, names in lists:
            if names:
                lines += textwrap.wrap(
                    f"{title}: {', '.join(names)}", LINE_WIDTH, subsequent_indent="  "
                )
        if self.example_forward:
            lines.append(_fit(f"example forward: {self.example_forward}"))
        if self.invariance:
            lines.append(_fit(f"circular-shift invariance: {self.invariance}"))
        return "\n".join(lines)


LINE_WIDTH = 100


def _fit(line: str) -> str:
    """``line`` cut to :data:`LINE_WIDTH` characters (the full text stays in the report's fields)."""
    return line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 3] + "..."
