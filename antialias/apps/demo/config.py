"""What a demo run trains: its configuration and its model variants (one per downsampling method)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from antialias.filters import FilterSpec, filter_name, get_taps
from antialias.layers import list_downsample_methods

__all__ = [
    "COMPARISON_METRICS",
    "DATASETS",
    "METRICS",
    "MODELS",
    "VIT_METHODS",
    "DemoConfig",
    "Variant",
    "check_models",
    "make_variants",
    "parse_methods",
    "spec_name",
    "variant_filter",
    "variant_lr",
]

DATASETS = ("digits", "cifar10")
# What ``None`` means per data set (see DemoConfig).
_DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 6, "widths": (16, 32, 64), "batch_size": 32},
    "cifar10": {"epochs": 15, "widths": (32, 64, 128), "batch_size": 128},
}

# Metrics reported per model, in table order: (key, column title).
METRICS: tuple[tuple[str, str], ...] = (
    ("clean_accuracy", "clean acc."),
    ("shift_accuracy", "acc. under shift"),
    ("circular_consistency", "consistency (circular)"),
    ("crop_consistency", "consistency (crop)"),
    ("diagonal_stability", "same class on diagonal"),
)

# The columns of a method comparison (``methods=``): the sub-pixel protocol and the cost join.
COMPARISON_METRICS: tuple[tuple[str, str], ...] = (
    *(m for m in METRICS if m[0] != "shift_accuracy"),
    ("fractional_consistency", "consistency (sub-pixel)"),
    ("epoch_time_s", "s / epoch"),
)

# The paper's names of the binomial filters (Zhang, 2019, Table 1).
_PAPER_NAMES = {1: "no blur", 2: "Rect-2", 3: "Tri-3", 4: "Tri-4", 5: "Bin-5"}
# Table labels of the downsampling methods after the dense max; unknown methods show their name.
_METHOD_LABELS = {
    "aps": "APS",
    "lps": "LPS",
    "flc": "FLC",
    "asap": "ASAP",
    "wavelet": "wavelet",
    "adaptive": "adaptive",
}
# The filter each method gets when the name carries none: the polyphase methods run without a blur
# (their invariance is the point); others take the layer factory's default.
_DEFAULT_FILTERS: dict[str, FilterSpec] = {"blur": 4, "aps": 1, "lps": 1}


def variant_filter(variant: Variant) -> FilterSpec | None:
    """The filter a variant is built with: its own, else the method's default (``None``: the factory's)."""
    return (
        variant.filter_size
        if variant.filter_size is not None
        else _DEFAULT_FILTERS.get(variant.method)
    )


MODELS = ("cnn", "vit")
"""The model families of a run: the CNN variants, and the small ViT with and without anchoring."""


@dataclass(frozen=True)
class Variant:
    """One downsampling method of :class:`~antialias.apps.demo.DemoNet`.

    Attributes:
        name: short key, e.g. ``"baseline"``, ``"blur-4"``, ``"aps"``.
        method: ``"max"`` (``MaxPool2d(2, 2)``), or a method of :func:`antialias.layers.create_downsample`
            applied after a dense max (``"blur"``: max-blur-pool).
        filter_size: the method's filter; ``None``: the layer factory's default.
        label: a human-readable name for tables and plots.
    """

    name: str
    method: str
    filter_size: FilterSpec | None
    label: str


# The variants that ``models=("cnn", "vit")`` adds; VIT_METHODS: the methods DemoViT builds.
_VIT_VARIANTS = (
    Variant("vit", "vit", None, "ViT (patch 4)"),
    Variant("vit-anchored", "vit-anchored", None, "ViT + anchoring"),
)
VIT_METHODS = tuple(v.method for v in _VIT_VARIANTS)


def variant_lr(variant: Variant, config: DemoConfig) -> float:
    """The peak learning rate a variant trains with: ``config.lr``, a tenth of it for the ViT
    variants (a transformer diverges at the CNN's rate: constant predictions)."""
    return config.lr / 10 if variant.method in VIT_METHODS else config.lr


@dataclass
class DemoConfig:
    """Everything that defines a demo run; stored in the results JSON.

    Args:
        dataset: ``"digits"`` (scikit-learn's bundled scans) or ``"cifar10"`` (torchvision).
        data_dir: folder of the CIFAR-10 files (``cifar-10-batches-py``); unused for digits.
        download: let torchvision download CIFAR-10 into ``data_dir`` when it is missing.
        seeds: one model per variant and seed; variants share initial weights and batch order
            per seed.
        epochs: training epochs; ``None``: 6 for digits, 15 for CIFAR-10.
        filters: max-blur-pool filter sizes, one variant each (int ``k`` for binomial, or a family
            string such as ``"box-3"``).
        baseline: include the ``MaxPool2d(2, 2)`` baseline.
        aps: include adaptive polyphase sampling: ``None`` when the ``"aps"`` downsampling method is
            registered, ``True`` requires it.
        methods: a method comparison instead of ``filters``/``baseline``/``aps``: names parsed by
            :func:`parse_methods` (``"max"``, ``"blur-4"``, ``"aps"``, any registered method). Adds
            sub-pixel consistency and time per epoch to the table.
        models: ``("cnn",)``, or ``("cnn", "vit")`` to add a small ViT (patch 4, the last stage's
            width) as a baseline and with anchored patch embedding (``"vit"``, ``"vit-anchored"``).
        widths: channels of the three stages; ``None``: ``(16, 32, 64)`` for digits,
            ``(32, 64, 128)`` for CIFAR-10.
        batch_size: training batch size; ``None``: 32 for digits, 128 for CIFAR-10.
        lr: peak learning rate of the one-cycle schedule (AdamW); the ViT variants take a tenth
            of it (:func:`variant_lr`).
        weight_decay: AdamW's weight decay.
        max_shift: shifts span ``-max_shift..max_shift`` pixels per axis.
        passes: shifted pairs per test image in the consistency protocols.
        train_size: use only the first ``train_size`` training images (tests, quick looks).
        test_size: use only the first ``test_size`` test images.
        device: ``"cpu"``, ``"cuda"``, ...
        workers: processes that train models in parallel on the CPU; ``None``: one per CPU core
            (at most one per model). Ignored (one process) on other devices.
        progress: show a progress bar on stderr.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None
    filters: tuple[FilterSpec, ...] = (2, 3, 4, 5)
    baseline: bool = True
    aps: bool | None = None
    methods: tuple[str, ...] | None = None
    models: tuple[str, ...] = ("cnn",)
    widths: tuple[int, int, int] | None = None
    batch_size: int | None = None
    lr: float = 0.01
    weight_decay: float = 5e-4
    max_shift: int = 8
    passes: int = 5
    train_size: int | None = None
    test_size: int | None = None
    device: str = "cpu"
    workers: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        self.seeds = tuple(self.seeds)
        self.filters = tuple(self.filters)
        if self.methods is not None:
            self.methods = tuple(self.methods)
            parse_methods(self.methods)  # validate now, not after minutes of training
        self.models = tuple(self.models)
        check_models(self.models)
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        for name in ("epochs", "batch_size", "passes", "train_size", "test_size", "workers"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if (
            isinstance(self.max_shift, bool)
            or not isinstance(self.max_shift, int)
            or self.max_shift < 1
        ):
            raise ValueError(
                f"max_shift must be a positive integer number of pixels, got {self.max_shift!r}"
            )
        if self.widths is not None:
            widths = tuple(self.widths)
            if len(widths) != 3 or any(not isinstance(w, int) or w < 1 for w in widths):
                raise ValueError(f"widths must be three positive channel counts, got {widths!r}")
            self.widths = (widths[0], widths[1], widths[2])
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")

    def _resolved(self, name: str) -> Any:
        value = getattr(self, name)
        return _DATASET_DEFAULTS[self.dataset][name] if value is None else value

    @property
    def resolved_epochs(self) -> int:
        return int(self._resolved("epochs"))

    @property
    def resolved_widths(self) -> tuple[int, int, int]:
        return self._resolved("widths")

    @property
    def resolved_batch_size(self) -> int:
        return int(self._resolved("batch_size"))

    @property
    def metrics(self) -> tuple[tuple[str, str], ...]:
        """The table's columns: :data:`METRICS`, or :data:`COMPARISON_METRICS` for a method comparison."""
        return METRICS if self.methods is None else COMPARISON_METRICS

    def variants(self) -> list[Variant]:
        """The models of one seed: :func:`parse_methods` of ``methods``, else :func:`make_variants`."""
        if self.methods is None:
            variants = make_variants(self.filters, baseline=self.baseline, aps=self.aps)
        else:
            variants = parse_methods(self.methods)
        if "vit" in self.models:
            variants += _VIT_VARIANTS
        return _check_distinct(variants, "models")

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "filters": [f if isinstance(f, (int, str)) else spec_name(f) for f in self.filters],
            "methods": list(self.methods) if self.methods is not None else None,
            "models": list(self.models),
            "epochs": self.resolved_epochs,
            "widths": list(self.resolved_widths),
            "batch_size": self.resolved_batch_size,
            "seeds": list(self.seeds),
        }


def check_models(models: Sequence[str]) -> None:
    """Check the model families of a run (:data:`MODELS`): ``"cnn"``, optionally with ``"vit"``.

    Raises:
        ValueError: ``"cnn"`` is missing or a name is not in :data:`MODELS`.

    Example:
        >>> check_models(["cnn", "vit"])
    """
    if "cnn" not in models or not set(models) <= set(MODELS):
        raise ValueError(
            f"models must hold 'cnn' (the baseline) and may add 'vit', got {tuple(models)!r}"
        )


def spec_name(spec: FilterSpec) -> str:
    """``4`` -> ``"4"``, ``"box-3"`` -> ``"box-3"``, taps -> ``"taps=[...]"``."""
    return (
        spec if isinstance(spec, str) else str(spec) if isinstance(spec, int) else filter_name(spec)
    )


def _blur_label(spec: FilterSpec) -> str:
    paper = _PAPER_NAMES.get(spec) if isinstance(spec, int) else None
    return f"MaxBlurPool {paper or spec_name(spec)}"


def _check_distinct(variants: list[Variant], what: str) -> list[Variant]:
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"{what} must be distinct, got {names}")
    return variants


def make_variants(
    filters: Iterable[FilterSpec] = (2, 3, 4, 5), *, baseline: bool = True, aps: bool | None = None
) -> list[Variant]:
    """The baseline, one max-blur-pool variant per filter, and APS (when available).

    The arguments are :class:`DemoConfig`'s fields of the same names (``aps=True`` without the
    polyphase layers is a ``ValueError``).

    Example:
        >>> [v.name for v in make_variants((2, 4), aps=False)]
        ['baseline', 'blur-2', 'blur-4']
    """
    variants: list[Variant] = []
    if baseline:
        variants.append(Variant("baseline", "max", None, "MaxPool (baseline)"))
    for spec in filters:
        variants.append(Variant(f"blur-{spec_name(spec)}", "blur", spec, _blur_label(spec)))
    available = "aps" in list_downsample_methods()
    if aps and not available:
        raise ValueError(
            "the APS variant needs the polyphase layers (antialias.layers.polyphase), not installed"
        )
    if aps or (aps is None and available):
        variants.append(Variant("aps", "aps", None, "MaxPool + APS"))
    if not variants:
        raise ValueError("no variant to train: give filters, or keep the baseline or APS")
    return _check_distinct(variants, "filters")


def parse_methods(names: Sequence[str]) -> list[Variant]:
    """The variants of a method comparison, one per name.

    ``"max"``: the ``MaxPool2d(2, 2)`` baseline. ``"<method>"``: a dense max, then the registered
    downsampling method (:func:`antialias.layers.list_downsample_methods`) with its default filter
    (``blur``: 4, ``aps``/``lps``: none). ``"<method>-<filter>"``: with that filter, e.g.
    ``"blur-4"``, ``"blur-box-3"``, ``"adaptive-3"``.

    Raises:
        ValueError: an unknown method or filter, a repeated name, or no name.

    Example:
        >>> [(v.method, v.filter_size) for v in parse_methods(["max", "blur-3", "aps"])]
        [('max', None), ('blur', 3), ('aps', None)]
    """
    if isinstance(names, str):
        raise TypeError(f"names must be a sequence of method names, got the string {names!r}")
    registered = list_downsample_methods()
    variants = []
    for raw in names:
        name = raw.strip()
        if name == "max":
            variants.append(Variant("max", "max", None, "MaxPool (baseline)"))
            continue
        method, _, spec_text = name.partition("-")
        if method not in registered:
            raise ValueError(
                f"unknown method {name!r}; expected 'max' or one of {registered}, optionally '-<filter>'"
            )
        spec: FilterSpec | None = None
        if spec_text:
            spec = int(spec_text) if spec_text.isdigit() else spec_text
            try:
                get_taps(spec)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"bad filter in method {name!r}: {exc}") from exc
        if method == "blur":
            label = _blur_label(spec if spec is not None else 4)
        else:
            label = f"MaxPool + {_METHOD_LABELS.get(method, method)}" + (
                f" ({spec_text})" if spec_text else ""
            )
        variants.append(Variant(name, method, spec, label))
    if not variants:
        raise ValueError("methods must name at least one method")
    return _check_distinct(variants, "methods")
