"""``antialias eval``: measure accuracy, shift-invariance and robustness of one or more models.

Examples::

    antialias eval --model resnet50 --weights IMAGENET1K_V1 --data imagenet/val
    antialias eval --model resnet50 --model antialias_resnet50 --data val \\
        --metrics accuracy,consistency,diagonal --output results.json --plots plots/
    antialias eval --model mypkg.nets:build --weights ckpt.pth --data val --metrics circular
    antialias eval --model scripted.pt --data val --resize 40 --crop 32 --max-offset 8

Several ``--model`` values are evaluated on the same images with the same random offsets (one
seeded generator per model and metric), so their numbers compare pair-wise. The metrics are the rows
of :data:`antialias.metrics.METRIC_TABLE`; a model string becomes a model through the library's one
resolver, :func:`antialias.models.build_model`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from antialias.cli import CLIError, add_command, add_on_corrupt, csv_list
from antialias.metrics import METRIC_TABLE, NonFiniteLogitsError

__all__ = ["METRICS", "add_parser", "run"]

logger = logging.getLogger(__name__)

#: Metric names accepted by ``--metrics``, and what each measures: the rows of the metric table.
METRICS: dict[str, str] = {name: spec.description for name, spec in METRIC_TABLE.items()}
_NEEDS_DATA = {name for name, spec in METRIC_TABLE.items() if spec.needs_images}
_NEEDS_SHIFT_DATA = {name for name, spec in METRIC_TABLE.items() if "max_offset" in spec.options}


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in csv_list(value)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {value!r}"
        ) from exc


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``antialias eval``."""
    parser = add_command(
        subparsers,
        "eval",
        help="measure accuracy, shift-invariance and robustness of models on an image folder",
        description="Evaluate one or more classifiers on an image folder (ImageNet validation layout: one "
        "sub-folder per class, sorted names = class indices). Metrics: "
        + "; ".join(f"{k}: {v}" for k, v in METRICS.items())
        + ".",
    )
    models = parser.add_argument_group("models")
    models.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="SPEC",
        help="model to evaluate (repeat to compare side by side): a name of the anti-aliased zoo or else of "
        "torchvision, 'module:function' (or 'file.py:function') returning an nn.Module "
        "(torchvision.models:resnet50 is torchvision's baseline), or a saved TorchScript (.pt) / "
        "torch.export (.pt2) file",
    )
    models.add_argument(
        "--weights",
        action="append",
        default=None,
        metavar="W",
        help="weights of the models, in --model order (once per model; 'none' for none): a checkpoint file "
        "(state dict, or a dict with 'state_dict'/'model') or a weights name of the zoo/torchvision (e.g. DEFAULT) "
        "(default: none, models randomly initialised, with a warning)",
    )
    models.add_argument(
        "--num-classes",
        type=int,
        default=None,
        metavar="N",
        help="outputs of the models given by name (default: what the weights file says or its classifier's "
        "shape, else the data's class count)",
    )
    models.add_argument(
        "--methods",
        type=csv_list,
        default=[],
        metavar="LIST",
        help="also evaluate every --model converted with each of these anti-aliasing methods (antialias.convert, "
        "the model's weights kept): a method of the layer factory, or '<method>-<filter>' (blur-4, blur-box-3); "
        "e.g. blur-4,aps,flc,asap,wavelet",
    )
    models.add_argument(
        "--label",
        dest="labels",
        action="append",
        default=None,
        metavar="NAME",
        help="column names of the models in the table and JSON, in --model order (default: the "
        "--model values, a file by its name)",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="DIR",
        help="image folder (class sub-folders) (no default: needed by the metrics that read images)",
    )
    data.add_argument(
        "--metrics",
        type=csv_list,
        default="accuracy,consistency",
        metavar="LIST",
        help=f"comma-separated metrics: {', '.join(METRICS)}",
    )
    for flag, default, text in (
        (
            "--resize",
            256,
            "shorter side after resizing (0: keep the stored size, images must then be large "
            "enough for the crop)",
        ),
        ("--crop", 224, "side of the (center) crop the model sees"),
        ("--max-images", None, "evaluate a seeded random subset of N (default: every image)"),
        ("--batch-size", 32, "images per batch and per forward pass"),
        ("--workers", 2, "data-loading worker processes"),
    ):
        data.add_argument(flag, type=int, default=default, metavar="N", help=text)
    add_on_corrupt(data)
    shift = parser.add_argument_group("shift metrics")
    for flag, default, text in (
        (
            "--max-offset",
            32,
            "consistency: crop offsets in 0..N-1 per axis; diagonal: offsets 0..N; the shift "
            "images are Resize(--resize) + CenterCrop(--crop + N)",
        ),
        ("--passes", 5, "consistency passes (crop pairs per image)"),
        ("--circular-shift", 32, "circular: shifts in 0..N-1"),
        ("--worst-case-shift", 4, "worst-case: shifts -N..N (circular) or 0..N (crop)"),
        ("--equivariance-shift", 8, "equivariance: shift grid 0..N-1 per axis"),
        ("--equivariance-images", 64, "equivariance: images used (cost grows as N x shifts^2)"),
        ("--seed", 0, "seed of the random offsets and corruptions"),
    ):
        shift.add_argument(flag, type=int, default=default, metavar="N", help=text)
    shift.add_argument(
        "--shared-offsets",
        action="store_true",
        help="consistency: one offset pair per batch, as the reference, instead of per image",
    )
    shift.add_argument(
        "--fractional-shift", type=float, default=1.0, help="fractional: shifts in [0, N) pixels"
    )
    shift.add_argument(
        "--worst-case-mode",
        choices=("circular", "crop"),
        default="circular",
        help="worst-case: shift the image circularly, or shift a crop window",
    )
    shift.add_argument(
        "--layers",
        type=csv_list,
        default=None,
        metavar="LIST",
        help="equivariance: comma-separated module names (default: the model's top-level blocks)",
    )
    robust = parser.add_argument_group("robustness")
    robust.add_argument(
        "--imagenet-c",
        metavar="DIR",
        help="ImageNet-C root (corruption/severity/class/image) (no default: needed by imagenet-c)",
    )
    robust.add_argument(
        "--imagenet-p",
        metavar="DIR",
        help="ImageNet-P root (perturbation/class/sequence) (no default: needed by imagenet-p)",
    )
    robust.add_argument(
        "--difficulty", type=int, default=1, choices=(1, 2, 3), help="ImageNet-P difficulty"
    )
    robust.add_argument(
        "--corruptions",
        type=csv_list,
        default=None,
        metavar="LIST",
        help="corruptions to score (default all 15)",
    )
    robust.add_argument(
        "--severities",
        type=_ints,
        default=[1, 2, 3, 4, 5],
        metavar="LIST",
        help="severities to score",
    )
    robust.add_argument(
        "--alexnet-p",
        metavar="FILE",
        help="JSON {perturbation: {flip_probability, top5_distance}} of the plain AlexNet, to "
        "normalize mFR/mT5D (default: a compared --model torchvision.models:alexnet; the zoo's "
        "alexnet is anti-aliased and never used)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output",
        metavar="FILE",
        help="write all results as JSON (default: print the table only)",
    )
    out.add_argument("--records", action="store_true", help="include per-image records in the JSON")
    out.add_argument(
        "--plots",
        metavar="DIR",
        help="write PNG plots into DIR (needs matplotlib) (default: no plots)",
    )
    out.add_argument(
        "--overwrite",
        action="store_true",
        help="let --output/--plots replace files that no antialias command wrote",
    )
    out.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda:1', ..."
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


# --- Checks: every option before any model is built or image read ---


def _check_args(args: argparse.Namespace) -> list[str]:
    unknown = [m for m in args.metrics if m not in METRICS]
    if unknown:
        raise CLIError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    if not args.metrics:
        raise CLIError("--metrics is empty; choose from " + ", ".join(METRICS))
    metrics = list(dict.fromkeys(args.metrics))
    for name, low in (
        ("crop", 1),
        ("batch_size", 1),
        ("passes", 1),
        ("max_offset", 1),
        ("circular_shift", 1),
        ("worst_case_shift", 0),
        ("equivariance_shift", 1),
        ("equivariance_images", 1),
        ("resize", 0),
        ("workers", 0),
    ):
        if getattr(args, name) < low:
            raise CLIError(
                f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}"
            )
    if args.fractional_shift <= 0:
        raise CLIError(f"--fractional-shift must be > 0, got {args.fractional_shift}")
    if args.max_images is not None and args.max_images < 1:
        raise CLIError(f"--max-images must be >= 1, got {args.max_images}")
    if any(m in _NEEDS_DATA for m in metrics) and not args.data:
        raise CLIError(
            f"metrics {', '.join(m for m in metrics if m in _NEEDS_DATA)} need --data DIR (an image folder)"
        )
    for metric in ("imagenet-c", "imagenet-p"):
        if metric in metrics and not getattr(args, METRIC_TABLE[metric].path or ""):
            raise CLIError(f"metric {metric} needs --{metric} DIR")
    for option, folder in (
        ("--data", args.data),
        ("--imagenet-c", args.imagenet_c),
        ("--imagenet-p", args.imagenet_p),
    ):
        if folder and not os.path.isdir(folder):
            what = "does not exist" if not os.path.exists(folder) else "is not a folder"
            raise CLIError(f"{option} folder {folder!r} {what}; expected a folder of images")
    if args.resize and args.resize < args.crop:
        raise CLIError(f"--resize {args.resize} is smaller than --crop {args.crop}")
    shift_size = args.crop + args.max_offset
    if any(m in _NEEDS_SHIFT_DATA for m in metrics) and args.resize and args.resize < shift_size:
        raise CLIError(
            f"--resize {args.resize} is smaller than --crop + --max-offset = {shift_size}, the size of the "
            "shifted-crop images"
        )
    need = args.crop + args.worst_case_shift
    if (
        "worst-case" in metrics
        and args.worst_case_mode == "crop"
        and args.resize
        and args.resize < need
    ):
        raise CLIError(
            f"--resize {args.resize} is smaller than --crop + --worst-case-shift = {need}"
        )
    if "corruptions" in metrics and args.crop < 32:
        raise CLIError(
            f"metric corruptions needs --crop >= 32 (imagecorruptions' minimum), got {args.crop}"
        )
    if any(s not in (1, 2, 3, 4, 5) for s in args.severities):
        raise CLIError(f"--severities must be in 1..5, got {args.severities}")
    if args.corruptions is not None and "corruptions" in metrics:
        from antialias.datasets import EXTRA_CORRUPTIONS, IMAGENET_C_CORRUPTIONS

        known = IMAGENET_C_CORRUPTIONS + EXTRA_CORRUPTIONS
        bad = [c for c in args.corruptions if c not in known]
        if bad:
            raise CLIError(
                f"unknown corruption(s) {', '.join(bad)}; choose from {', '.join(known)}"
            )
    n = len(args.models)
    if args.weights is not None and len(args.weights) != n:
        raise CLIError(
            f"give --weights once per --model ({n} models, {len(args.weights)} weights); use 'none' for a model "
            "without weights"
        )
    if args.labels is not None and len(args.labels) != n:
        raise CLIError(f"give --label once per --model ({n} models, {len(args.labels)} labels)")
    if args.plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise CLIError("--plots needs matplotlib: pip install 'antialias[plots]'") from exc
    _check_model_names(args.models)
    for spec, weights in zip(args.models, args.weights or [None] * n, strict=True):
        _check_weights(spec, weights)
    return metrics


def _check_model_names(specs: list[str]) -> None:
    """A ``--model`` that is no file, no ``module:function`` and no known name is refused before any
    model is built (the checks of files and factories are the resolver's)."""
    import torchvision

    from antialias.models import list_models

    known: list[str] | None = None
    for spec in specs:
        if os.path.exists(spec) or ":" in spec:
            continue
        if known is None:  # zoo names first: the anti-aliased model is the likelier meaning
            tv = torchvision.models.list_models(module=torchvision.models)
            known = list(dict.fromkeys([*list_models(), *sorted(tv)]))
        if spec in known:
            continue
        close = difflib.get_close_matches(spec, known, n=3)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise CLIError(
            f"--model: unknown model {spec!r}{hint}; expected a zoo or torchvision model name "
            "(antialias info lists them), 'module:function' or a saved model file (.pt, .pt2)"
        )


def _check_outputs(args: argparse.Namespace) -> None:
    """--output and --plots are checked before any model is built or image read: no result is lost at the end."""
    from antialias.files import check_output_path

    inputs = [("--weights file", w) for w in (args.weights or []) if w and os.path.isfile(w)]
    inputs += [("--model file", m) for m in args.models if os.path.isfile(m)]
    inputs += [("--model source", m.rpartition(":")[0]) for m in args.models if ".py:" in m]
    if args.alexnet_p:
        inputs.append(("--alexnet-p file", args.alexnet_p))
    rule = {
        "inputs": inputs,
        "folders": [("--data folder", args.data)],
        "overwrite": args.overwrite,
    }
    if args.output:
        check_output_path(args.output, kind="file", what="--output", **rule)
    if args.plots:
        check_output_path(args.plots, kind="dir", what="--plots", **rule)


def _device(name: str) -> torch.device:
    from antialias.devices import resolve_device
    from antialias.layers import check_backend

    try:
        device = resolve_device(name)
    except ValueError as exc:
        raise CLIError(f"--device {name!r}: {exc}") from None
    check_backend(device)  # a forced ANTIALIAS_BACKEND that cannot run on it: one line
    return device


def _labels(args: argparse.Namespace) -> list[str]:
    labels = args.labels or [
        Path(spec).name if os.path.isfile(spec) else spec for spec in args.models
    ]
    # A repeated label gets its rank: resnet18, resnet18#2.
    return [
        f"{label}#{labels[:i].count(label) + 1}" if label in labels[:i] else label
        for i, label in enumerate(labels)
    ]


# --- Models ---

_WEIGHTS_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_URL_PREFIXES = ("http://", "https://", "file://")


def _has_weights(weights: str | None) -> bool:
    return weights is not None and weights.lower() != "none"


def _check_weights(spec: str, weights: str | None) -> None:
    """A ``--weights`` that is a folder, or a missing file, is refused before any model is built."""
    if weights is None or not _has_weights(weights):
        return
    if os.path.isdir(weights):
        raise CLIError(
            f"--weights {weights!r} (for --model {spec!r}) is a folder; expected a file of weights"
        )
    if weights.startswith(_URL_PREFIXES):
        return  # downloaded through the hash-checked loader when the model is built
    if not os.path.isfile(weights) and (
        not _WEIGHTS_NAME_RE.match(weights)
        or weights.lower().endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))
    ):
        raise CLIError(
            f"--weights {weights!r} (for --model {spec!r}) does not exist; expected a file of "
            "weights or a weights name such as DEFAULT"
        )


def _build(
    label: str, spec: str, weights: str | None, num_classes: int | None, classes: list[str] | None
) -> nn.Module:
    """Build one ``--model`` with its ``--weights`` by the library's one resolver, and say what may make its
    numbers meaningless."""
    from antialias.models import build_model, classifier_name, weights_num_classes

    logger.info("loading model %s", spec)
    weights = weights if _has_weights(weights) else None
    named = not os.path.isfile(spec) and ":" not in spec
    if weights is not None and os.path.isfile(weights) and num_classes is not None:
        saved = weights_num_classes(weights)
        if (
            saved is not None and saved != num_classes
        ):  # a fresh classifier would be evaluated: meaningless
            raise CLIError(
                f"--num-classes {num_classes} but weights {weights!r} have {saved} classes; leave --num-classes "
                "out to use the file's"
            )
    elif weights is None and named:
        logger.warning(f"model {label!r} has no --weights: it is randomly initialised")
        num_classes = (
            len(classes) if num_classes is None and classes else num_classes
        )  # sized for the data
    try:
        model = build_model(spec, num_classes=num_classes, weights=weights)
    except (
        RuntimeError,
        OSError,
    ) as exc:  # ValueError/TypeError/KeyError name the model already: main() reports them
        raise CLIError(f"cannot build model {spec!r} with weights {weights!r}: {exc}") from exc
    head = classifier_name(model)
    outputs = getattr(model.get_submodule(head), "out_features", None) if head else None
    if classes and outputs is not None and outputs != len(classes):
        logger.warning(
            f"model {label!r} has {outputs} outputs but the data has {len(classes)} classes: accuracy compares "
            "output indices with the sorted class folders"
        )
    return model


def _parse_methods(names: list[str]) -> list[tuple[str, str, str | int | None]]:
    """``--methods`` values as ``(name, method, filter)``: ``"blur-4"`` -> ``("blur-4", "blur", 4)``."""
    from antialias.layers import list_downsample_methods

    registered = list_downsample_methods()
    parsed: list[tuple[str, str, str | int | None]] = []
    for name in dict.fromkeys(names):
        method, _, rest = name.partition("-")
        if method not in registered:
            raise CLIError(
                f"--methods: unknown method {name!r}; expected one of {', '.join(registered)}, optionally "
                "followed by '-<filter>' (e.g. blur-4)"
            )
        parsed.append((name, method, (int(rest) if rest.isdigit() else rest) if rest else None))
    return parsed


def _converted(model: nn.Module, label: str, method: str, filt: str | int | None) -> nn.Module:
    """A copy of ``model`` anti-aliased by ``method`` (its weights kept)."""
    import copy

    import antialias

    if not isinstance(model, nn.Module) or isinstance(model, torch.jit.ScriptModule):
        raise CLIError(
            f"--methods: model {label!r} is a saved program, not an nn.Module that can be converted"
        )
    options: dict[str, Any] = (
        {"method": method} if filt is None else {"method": method, "filter_size": filt}
    )
    try:
        converted = antialias.convert(copy.deepcopy(model), **options)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--methods: cannot convert model {label!r} with {method!r}: {exc}") from exc
    return converted.train(model.training)


# --- Evaluation ---


@dataclass
class _Entry:
    label: str
    spec: str
    weights: str | None
    converted: bool = False  # --methods: a model converted by a method
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


class _Data:
    """The evaluation images, read once and viewed through the transforms the metrics need."""

    def __init__(self, args: argparse.Namespace, metrics: list[str], device: torch.device) -> None:
        from antialias.data import ImageFolderDataset, load_image_folder

        self.args, self.device = args, device
        values = _values(args, None)
        sizes = [args.crop] + [
            args.crop + spec.margin(spec.bind(values))
            for spec in (METRIC_TABLE[m] for m in metrics)
            if spec.input == "images"
        ]
        # Without resizing, every image must hold the largest crop: check now, naming the file.
        min_size = None if args.resize else max(sizes)
        base = load_image_folder(
            args.data, None, on_corrupt=args.on_corrupt, verify=True, min_size=min_size
        )
        self.rejected = len(base.rejected)  # --on-corrupt skip: left out by the up-front check
        samples = base.samples
        if args.max_images is not None and args.max_images < len(samples):
            generator = torch.Generator().manual_seed(args.seed)
            keep = sorted(
                torch.randperm(len(samples), generator=generator)[: args.max_images].tolist()
            )
            samples = [samples[i] for i in keep]
        self.base = ImageFolderDataset(
            base.root, samples, base.classes, None, on_corrupt=args.on_corrupt
        )
        self.views = [self.base]  # every dataset that decodes images: each counts what it skipped
        logger.info("%s: %d images, %d classes", args.data, len(self.base), len(self.base.classes))

    @property
    def classes(self) -> list[str]:
        return self.base.classes

    @property
    def skipped(self) -> int:
        """Images skipped under ``--on-corrupt skip``: at the up-front check, or when they failed to decode."""
        return self.rejected + len({path for view in self.views for path in view.skipped})

    def loader(self, size: int, limit: int | None = None) -> torch.utils.data.DataLoader:
        from antialias.data import ImageFolderDataset, eval_transform

        samples = self.base.samples
        if limit is not None and limit < len(samples):
            samples = samples[:: len(samples) // limit][
                :limit
            ]  # spread over the classes (sorted by class)
        # A file that fails to decode in full is skipped by name (--on-corrupt skip).
        transform = eval_transform(self.args.resize or None, size)
        dataset = ImageFolderDataset(
            self.base.root, samples, self.base.classes, transform, on_corrupt=self.args.on_corrupt
        )
        self.views.append(dataset)
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=self.args.batch_size,
            shuffle=False,
            num_workers=self.args.workers,
            pin_memory=self.device.type == "cuda",
        )


def _values(args: argparse.Namespace, data: _Data | None) -> dict[str, Any]:
    """What the metric table's options read: the command's options, plus the values metrics share."""
    from antialias.data import eval_transform

    return {
        **vars(args),
        "generator": torch.Generator().manual_seed(
            args.seed
        ),  # fresh per model and metric: the same draws for all
        "transform": eval_transform(None, args.crop),  # benchmark folders are cropped already
        "classes": data.classes if data is not None and data.classes else None,
        "sequence_batch_size": max(1, args.batch_size // 8),
    }


def _evaluate(
    entry: _Entry,
    model: nn.Module,
    metrics: list[str],
    data: _Data | None,
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    for metric in metrics:
        logger.info("%s: %s", entry.label, metric)
        try:
            _evaluate_one(entry, model, metric, data, args, device)
        except NonFiniteLogitsError as exc:
            raise CLIError(f"model {entry.label!r} failed during {metric}: {exc}") from exc
        except RuntimeError as exc:
            # A model that cannot run on these inputs (wrong size, channels, dtype): say which.
            logger.debug("%s failed", metric, exc_info=True)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CLIError(f"model {entry.label!r} failed during {metric}: {first}") from exc


def _evaluate_one(
    entry: _Entry,
    model: nn.Module,
    metric: str,
    data: _Data | None,
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    spec = METRIC_TABLE[metric]
    kwargs = spec.bind(_values(args, data))
    source: Any
    if spec.input == "images":
        limit = getattr(args, spec.limit) if spec.limit else None
        source = data.loader(args.crop + spec.margin(kwargs), limit=limit)  # type: ignore[union-attr]
    elif spec.input == "folder":
        source = data.base  # type: ignore[union-attr]
    else:
        source = getattr(args, spec.path)  # type: ignore[arg-type]
    result = spec.function(model, source, **kwargs, device=device, progress=not args.no_progress)
    if spec.across_models:
        entry.results[metric] = result  # ImageNet-P: raw rates, scored once every model is done
        return
    if spec.score is not None:
        acc = entry.metrics.get("accuracy")
        result = spec.score(result, clean_error=None if acc is None else 1.0 - acc["top1"])
    entry.results[metric] = result
    entry.metrics[metric] = result.summary()
    if args.records:
        entry.records[metric] = result.records()


_PLAIN_ALEXNET = ("torchvision.models:alexnet", "torchvision.models.alexnet:alexnet")


def _finish_imagenet_p(entries: list[_Entry], args: argparse.Namespace) -> None:
    from antialias.metrics import imagenet_p_scores

    if not any("imagenet-p" in e.results for e in entries):
        return
    alexnet, normalizer = None, None
    if args.alexnet_p:
        try:
            alexnet = json.loads(Path(args.alexnet_p).read_text())
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot read --alexnet-p {args.alexnet_p!r} ({exc})") from exc
        if not isinstance(alexnet, dict):
            raise CLIError(f"--alexnet-p {args.alexnet_p!r} must hold a JSON object")
        normalizer = f"--alexnet-p {args.alexnet_p}"
    else:
        # Only the plain AlexNet normalizes (Hendrycks & Dietterich); the zoo's is anti-aliased.
        for entry in entries:
            if (
                entry.spec in _PLAIN_ALEXNET
                and not entry.converted
                and "imagenet-p" in entry.results
            ):
                alexnet = entry.results["imagenet-p"]
                normalizer = f"model {entry.label} ({entry.spec})"
                logger.info("normalizing ImageNet-P rates by model %s", entry.label)
                break
        if alexnet is None and any(e.spec == "alexnet" for e in entries):
            logger.warning(
                "ImageNet-P: --model alexnet is the zoo's anti-aliased AlexNet, not the plain one that "
                "normalizes mFR/mT5D; give --model torchvision.models:alexnet or --alexnet-p FILE"
            )
    for entry in entries:
        if "imagenet-p" in entry.results:
            result = entry.results["imagenet-p"] = imagenet_p_scores(
                entry.results["imagenet-p"], alexnet=alexnet
            )
            # Which AlexNet normalized mFR/mT5D (None: raw rates only).
            entry.metrics["imagenet-p"] = {**result.summary(), "normalizer": normalizer}


# --- Output ---


def _cell(value: Any, percent: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * float(value):.2f}" if percent else f"{float(value):.4f}"


def _table(entries: list[_Entry], metrics: list[str]) -> str:
    rows = [
        [column.title]
        + [_cell(e.metrics.get(name, {}).get(column.key), column.percent) for e in entries]
        for name, spec in METRIC_TABLE.items()
        if name in metrics
        for column in spec.columns
    ]
    if "equivariance" in metrics:
        per_layer = [e.metrics.get("equivariance", {}).get("layers", {}) for e in entries]
        for name in dict.fromkeys(layer for layers in per_layer for layer in layers):
            rows.append(
                [f"equivariance {name}"]
                + [
                    _cell(layers[name]["mean"] if name in layers else None, False)
                    for layers in per_layer
                ]
            )
    header = ["metric"] + [e.label for e in entries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _write_json(
    path: str,
    entries: list[_Entry],
    metrics: list[str],
    args: argparse.Namespace,
    skipped_images: int,
) -> None:
    from antialias import __version__
    from antialias.files import write_json

    hidden = ("models", "weights", "labels", "verbose", "command")
    payload = {
        "antialias": __version__,
        "metrics": metrics,
        "config": {
            k: v for k, v in vars(args).items() if not k.startswith("_") and k not in hidden
        },
        "skipped_images": skipped_images,  # --on-corrupt skip: images left out, each named in the log
        "models": {
            e.label: {
                "spec": e.spec,
                "weights": e.weights,
                "metrics": e.metrics,
                **({"records": e.records} if args.records else {}),
            }
            for e in entries
        },
    }
    try:
        logger.info(
            "wrote %s", write_json(path, payload)
        )  # strict JSON, atomic: a crash leaves the old file
    except OSError as exc:
        raise CLIError(f"cannot write --output {path!r} ({exc})") from exc


def _plot(directory: str, entries: list[_Entry], metrics: list[str]) -> list[Path]:
    from antialias.files import record_outputs
    from antialias.metrics import plots

    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create --plots folder {directory!r} ({exc})") from exc
    accuracy = (
        {e.label: e.metrics["accuracy"]["top1"] for e in entries} if "accuracy" in metrics else None
    )
    written = []
    for metric in metrics:
        spec = METRIC_TABLE[metric]
        if spec.plot == "diagonal":
            written.append(
                plots.plot_diagonal(
                    {e.label: e.results[metric] for e in entries}, out / f"{metric}.png"
                )
            )
        elif spec.plot == "consistency":
            values = {e.label: e.results[metric].consistency for e in entries}
            written.append(
                plots.plot_consistency(
                    values, out / f"{metric}.png", accuracy=accuracy, title=spec.plot_title
                )
            )
        elif spec.plot == "equivariance":
            for e in entries:
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in e.label)
                written.append(
                    plots.plot_equivariance(
                        e.results[metric], out / f"{metric}_{safe}.png", title=e.label
                    )
                )
    for path in written:
        logger.info("wrote %s", path)
    record_outputs(out, [path.name for path in written])  # a later run may replace them
    return written


def _folder_classes(folder: str) -> list[str] | None:
    """The class sub-folders of ``folder`` (sorted: the class indices), without reading any image."""
    try:
        names = sorted(
            e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")
        )
    except OSError:
        return None  # the image folder's own checks report it
    return names or None


def _unwrap_worker_error(exc: Exception) -> str:
    """DataLoader workers put their traceback in the message: keep its last line."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else str(exc)
    prefix = "CorruptImageError: "
    return last.split(prefix, 1)[1] if prefix in last else last


def run(args: argparse.Namespace) -> int:
    """Run ``antialias eval``; returns the exit code."""
    from antialias.data import CorruptImageError

    metrics = _check_args(args)
    _check_outputs(args)
    device = _device(args.device)
    labels = _labels(args)
    weights = args.weights or [None] * len(args.models)
    try:
        if "equivariance" in metrics and any(os.path.isfile(spec) for spec in args.models):
            raise CLIError(
                "metric equivariance needs forward hooks: give an eager model, not a saved file"
            )
        classes = _folder_classes(args.data) if args.data else None
        # Every model is built and its weights read before the first image: a bad second model
        # or weights file fails in seconds, not after the first model's evaluation.
        runs = list(zip(labels, args.models, weights, strict=True))
        built = [_build(label, spec, w, args.num_classes, classes) for label, spec, w in runs]
        originals = list(zip(runs, built, strict=True))
        # --methods: each model converted by each method, checked here too, before the first image.
        for name, method, filt in _parse_methods(args.methods):
            for (label, spec, w), model in originals:
                built.append(_converted(model, label, method, filt))
                runs.append((f"{label}+{name}", spec, w))
        data = _Data(args, metrics, device) if any(m in _NEEDS_DATA for m in metrics) else None
        entries: list[_Entry] = []
        for label, spec, w in runs:
            model = built.pop(0).to(device)
            entry = _Entry(label=label, spec=spec, weights=w if _has_weights(w) else None)
            entry.converted = len(entries) >= len(originals)
            _evaluate(entry, model, metrics, data, args, device)
            entries.append(entry)
            del model
        _finish_imagenet_p(entries, args)
    except CorruptImageError as exc:
        raise CLIError(_unwrap_worker_error(exc)) from exc
    except ImportError as exc:
        raise CLIError(str(exc)) from exc
    print(_table(entries, metrics))
    if args.output:
        _write_json(args.output, entries, metrics, args, data.skipped if data is not None else 0)
    if args.plots:
        _plot(args.plots, entries, metrics)
    return 0
