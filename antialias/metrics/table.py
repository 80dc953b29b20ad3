"""The metric table: every metric of :mod:`antialias.metrics` by name, with what it needs and reports.

An application evaluates a metric from its row instead of a per-metric branch::

    spec = METRIC_TABLE["consistency"]
    kwargs = spec.bind(values)                      # the function's options, from named values
    loader = ...images of side crop + spec.margin(kwargs)...
    result = spec.function(model, loader, device=device, progress=False, **kwargs)

``values`` maps names to the application's settings. ``antialias eval`` offers its command-line
options by destination name (``crop``, ``max_offset``, ``passes``, ``batch_size``, ``workers``, ...)
plus ``generator`` (a fresh generator seeded from ``seed``, one per model and metric), ``transform``
(the benchmark folders' transform: center crop, tensor, normalization), ``classes`` (the clean
folder's class names) and ``sequence_batch_size`` (ImageNet-P sequences per batch).

The first argument of every function is the model, the second its input (:attr:`MetricSpec.input`):
``"images"``, batches of labelled images whose side is the crop plus :meth:`MetricSpec.margin`;
``"folder"``, the raw labelled image folder (:class:`antialias.data.ImageFolderDataset`);
``"path"``, the folder named by the value :attr:`MetricSpec.path`. Every function takes ``device``
and ``progress``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from antialias.metrics.accuracy import diagonal_shift, evaluate_accuracy, worst_case_accuracy
from antialias.metrics.equivariance import feature_equivariance
from antialias.metrics.imagenet_c import corruption_errors, imagenet_c_errors, imagenet_c_scores
from antialias.metrics.imagenet_p import imagenet_p_rates, imagenet_p_scores
from antialias.metrics.shift import circular_consistency, crop_consistency, fractional_consistency

__all__ = ["METRIC_TABLE", "Column", "MetricSpec", "get_metric", "list_metrics"]


@dataclass(frozen=True)
class Column:
    """One row of a results table: a key of the result's ``summary()``, its title and its unit."""

    key: str
    title: str
    percent: bool = True


def _no_margin(kwargs: Mapping[str, Any]) -> int:
    return 0


def _offset_margin(kwargs: Mapping[str, Any]) -> int:
    return int(kwargs["max_offset"])


def _worst_case_margin(kwargs: Mapping[str, Any]) -> int:
    return int(kwargs["max_shift"]) if kwargs["mode"] == "crop" else 0


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its function, where its options come from, its input, score, table rows and plot.

    Attributes:
        name: the name applications use (``antialias eval --metrics NAME``).
        description: one line on what it measures.
        function: ``function(model, input, *, device, progress, **options)``.
        input: ``"images"``, ``"folder"`` or ``"path"`` (see the module docstring).
        options: ``{keyword of function: name of the value that sets it}``.
        path: for ``input="path"``, the value naming the folder (e.g. ``"imagenet_c"``).
        margin: for ``input="images"``, pixels the images need beyond the crop, from the bound options.
        limit: for ``input="images"``, the value holding the most images to use (None: all).
        score: turns the function's output into the reported result; called with the output and
            ``clean_error=`` (the model's clean top-1 error, or None).
        across_models: the score needs every model's output first (ImageNet-P's AlexNet
            normalization): call :attr:`score` once all models ran.
        columns: the rows of a results table, from the result's ``summary()``.
        plot: ``"diagonal"``, ``"consistency"`` or ``"equivariance"``
            (:mod:`antialias.metrics.plots`), or None.
        plot_title: the plot's title.
    """

    name: str
    description: str
    function: Callable[..., Any]
    input: Literal["images", "folder", "path"]
    options: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    margin: Callable[[Mapping[str, Any]], int] = _no_margin
    limit: str | None = None
    score: Callable[..., Any] | None = None
    across_models: bool = False
    columns: tuple[Column, ...] = ()
    plot: Literal["diagonal", "consistency", "equivariance"] | None = None
    plot_title: str = ""

    def bind(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The function's keyword arguments, read from ``values`` by :attr:`options`.

        Raises:
            KeyError: a value the options name is missing.
        """
        missing = [name for name in self.options.values() if name not in values]
        if missing:
            raise KeyError(f"metric {self.name!r} needs the values {missing}")
        return {keyword: values[name] for keyword, name in self.options.items()}

    @property
    def needs_images(self) -> bool:
        """Whether the metric reads the labelled image folder (``"images"`` or ``"folder"`` input)."""
        return self.input in ("images", "folder")


_CHUNK = {"chunk_size": "batch_size"}
_SEEDED = {"passes": "passes", "generator": "generator"}

METRIC_TABLE: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "accuracy",
            "top-1/top-5 on Resize+CenterCrop images",
            evaluate_accuracy,
            "images",
            columns=(Column("top1", "top-1 (%)"), Column("top5", "top-5 (%)")),
        ),
        MetricSpec(
            "consistency",
            "agreement of two random crops (the paper's consistency)",
            crop_consistency,
            "images",
            {
                "crop_size": "crop",
                "max_offset": "max_offset",
                "shared_offsets": "shared_offsets",
                **_SEEDED,
                **_CHUNK,
            },
            margin=_offset_margin,
            columns=(Column("consistency", "consistency (%)"),),
            plot="consistency",
            plot_title="Crop consistency",
        ),
        MetricSpec(
            "diagonal",
            "accuracy and P(correct) along a diagonal shift (Figure 1)",
            diagonal_shift,
            "images",
            {"crop_size": "crop", "max_offset": "max_offset", **_CHUNK},
            margin=_offset_margin,
            columns=(
                Column("accuracy", "diagonal top-1 (%)"),
                Column("probability", "diagonal P(correct) (%)"),
                Column("stability", "diagonal stable images (%)"),
            ),
            plot="diagonal",
        ),
        MetricSpec(
            "circular",
            "agreement under two random circular shifts (torch.roll)",
            circular_consistency,
            "images",
            {"max_shift": "circular_shift", **_SEEDED, **_CHUNK},
            columns=(Column("consistency", "circular consistency (%)"),),
            plot="consistency",
            plot_title="Circular-shift consistency",
        ),
        MetricSpec(
            "fractional",
            "agreement under two random sub-pixel (Fourier) shifts",
            fractional_consistency,
            "images",
            {"max_shift": "fractional_shift", **_SEEDED, **_CHUNK},
            columns=(Column("consistency", "fractional consistency (%)"),),
            plot="consistency",
            plot_title="Sub-pixel shift consistency",
        ),
        MetricSpec(
            "worst-case",
            "accuracy under the worst integer shift of a range",
            worst_case_accuracy,
            "images",
            {
                "max_shift": "worst_case_shift",
                "mode": "worst_case_mode",
                "crop_size": "crop",
                **_CHUNK,
            },
            margin=_worst_case_margin,
            columns=(
                Column("worst_case_accuracy", "worst-case top-1 (%)"),
                Column("unshifted_accuracy", "unshifted top-1 (%)"),
            ),
        ),
        MetricSpec(
            "equivariance",
            "per-layer distance between shifted features and features of shifted input",
            feature_equivariance,
            "images",
            {"layers": "layers", "max_shift": "equivariance_shift", **_CHUNK},
            limit="equivariance_images",
            plot="equivariance",
        ),
        MetricSpec(
            "imagenet-c",
            "errors, mCE and relative mCE on an ImageNet-C folder (--imagenet-c)",
            imagenet_c_errors,
            "path",
            {
                "corruptions": "corruptions",
                "severities": "severities",
                "transform": "transform",
                "classes": "classes",
                "batch_size": "batch_size",
                "num_workers": "workers",
                "on_corrupt": "on_corrupt",
            },
            path="imagenet_c",
            score=imagenet_c_scores,
            columns=(
                Column("mce", "ImageNet-C mCE (%)"),
                Column("relative_mce", "ImageNet-C relative mCE (%)"),
            ),
        ),
        MetricSpec(
            "imagenet-p",
            "flip probability / mFR and top-5 distance / mT5D (--imagenet-p)",
            imagenet_p_rates,
            "path",
            {
                "difficulty": "difficulty",
                "transform": "transform",
                "batch_size": "sequence_batch_size",
                "num_workers": "workers",
                **_CHUNK,
            },
            path="imagenet_p",
            score=imagenet_p_scores,
            across_models=True,
            columns=(
                Column("mfr", "ImageNet-P mFR (%)"),
                Column("mt5d", "ImageNet-P mT5D (%)"),
                Column("mean_flip_probability", "ImageNet-P mean FP (%)"),
                Column("mean_top5_distance", "ImageNet-P mean T5D", percent=False),
            ),
        ),
        MetricSpec(
            "corruptions",
            "ImageNet-C corruptions applied on the fly to --data (imagecorruptions)",
            corruption_errors,
            "folder",
            {
                "corruptions": "corruptions",
                "severities": "severities",
                "resize": "resize",
                "crop": "crop",
                "seed": "seed",
                "batch_size": "batch_size",
                "num_workers": "workers",
            },
            score=imagenet_c_scores,
            columns=(
                Column("mce", "corruptions mCE (%)"),
                Column("relative_mce", "corruptions relative mCE (%)"),
            ),
        ),
    )
}
"""Every metric by name, in the order results tables list them."""


def list_metrics() -> list[str]:
    """The metric names, in table order."""
    return list(METRIC_TABLE)


def get_metric(name: str) -> MetricSpec:
    """The row of metric ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).

    Example:
        >>> get_metric("circular").bind({"circular_shift": 8, "passes": 2, "generator": None, "batch_size": 32})
        {'max_shift': 8, 'passes': 2, 'generator': None, 'chunk_size': 32}
    """
    if name not in METRIC_TABLE:
        raise ValueError(f"unknown metric {name!r}; expected one of {list_metrics()}")
    return METRIC_TABLE[name]
