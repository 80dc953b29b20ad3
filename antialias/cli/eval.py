"""``antialias eval``: measure accuracy, shift-invariance and robustness of one or more models.

Examples::

    antialias eval --model resnet50 --weights IMAGENET1K_V1 --data imagenet/val
    antialias eval --model resnet50 --model antialias_resnet50 --data val \\
        --metrics accuracy,consistency,diagonal --output results.json --plots plots/
    antialias eval --model mypkg.nets:build --weights ckpt.pth --data val --metrics circular
    antialias eval --model scripted.pt --data val --resize 40 --crop 32 --max-offset 8

Several ``--model`` values are evaluated on the same images with the same random offsets (one
seeded generator per model and metric), so their numbers compare pair-wise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from antialias.cli import CLIError
from antialias.metrics._common import NonFiniteLogitsError
from antialias.metrics.table import METRIC_TABLE

__all__ = ["METRICS", "add_parser", "load_model", "run"]

logger = logging.getLogger(__name__)

#: Metric names accepted by ``--metrics``, and what each measures: the rows of the metric table.
METRICS: dict[str, str] = {name: spec.description for name, spec in METRIC_TABLE.items()}
_NEEDS_DATA = {name for name, spec in METRIC_TABLE.items() if spec.needs_images}
_NEEDS_SHIFT_DATA = {name for name, spec in METRIC_TABLE.items() if "max_offset" in spec.options}


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in _csv(value)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {value!r}"
        ) from exc


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, except ``None`` and those of flags (which say nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``antialias eval``."""
    parser = subparsers.add_parser(
        "eval",
        help="measure accuracy, shift-invariance and robustness of models on an image folder",
        description=(
            "Evaluate one or more classifiers on an image folder (ImageNet validation layout: "
            "one sub-folder per class, sorted names = class indices). Metrics: "
            + "; ".join(f"{k}: {v}" for k, v in METRICS.items())
            + "."
        ),
        formatter_class=_Formatter,
    )
    models = parser.add_argument_group("models")
    models.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="SPEC",
        help="model to evaluate (repeat to compare side by side): a name of the anti-aliased zoo "
        "or else of torchvision, 'module:function' (or 'file.py:function') returning an "
        "nn.Module (torchvision.models:resnet50 is torchvision's baseline), or a saved "
        "TorchScript (.pt) / torch.export (.pt2) file",
    )
    models.add_argument(
        "--weights",
        action="append",
        default=None,
        metavar="W",
        help="weights of the models, in --model order (once per model; 'none' for none): a "
        "checkpoint file (state dict, or a dict with 'state_dict'/'model') or a weights name "
        "of the zoo/torchvision (e.g. DEFAULT)",
    )
    models.add_argument(
        "--num-classes",
        type=int,
        default=None,
        metavar="N",
        help="outputs of the models given by name (default: what the weights file says or its "
        "classifier's shape, else the data's class count)",
    )
    models.add_argument(
        "--methods",
        type=_csv,
        default=[],
        metavar="LIST",
        help="also evaluate every --model converted with each of these anti-aliasing methods "
        "(antialias.convert, the model's weights kept): a method of the layer factory, or "
        "'<method>-<filter>' (blur-4, blur-box-3); e.g. blur-4,aps,flc,asap,wavelet",
    )
    models.add_argument(
        "--label",
        dest="labels",
        action="append",
        default=None,
        metavar="NAME",
        help="column names of the models in the table and JSON, in --model order",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", metavar="DIR", help="image folder (class sub-folders)")
    data.add_argument(
        "--metrics",
        type=_csv,
        default="accuracy,consistency",
        metavar="LIST",
        help=f"comma-separated metrics: {', '.join(METRICS)}",
    )
    data.add_argument(
        "--resize",
        type=int,
        default=256,
        help="shorter side after resizing (0: keep the stored size, images must then be large "
        "enough for the crop)",
    )
    data.add_argument(
        "--crop", type=int, default=224, help="side of the (center) crop the model sees"
    )
    data.add_argument(
        "--max-images", type=int, default=None, help="evaluate a seeded random subset"
    )
    data.add_argument(
        "--on-corrupt",
        choices=("fail", "skip"),
        default="fail",
        help="unreadable image: stop with its path, or skip it with a warning",
    )
    data.add_argument(
        "--batch-size", type=int, default=32, help="images per batch and per forward pass"
    )
    data.add_argument("--workers", type=int, default=2, help="data-loading worker processes")
    shift = parser.add_argument_group("shift metrics")
    shift.add_argument(
        "--max-offset",
        type=int,
        default=32,
        help="consistency: crop offsets in 0..N-1 per axis; diagonal: offsets 0..N; the shift "
        "images are Resize(--resize) + CenterCrop(--crop + N)",
    )
    shift.add_argument(
        "--passes", type=int, default=5, help="consistency passes (crop pairs per image)"
    )
    shift.add_argument(
        "--shared-offsets",
        action="store_true",
        help="consistency: one offset pair per batch, as the reference, instead of per image",
    )
    shift.add_argument("--circular-shift", type=int, default=32, help="circular: shifts in 0..N-1")
    shift.add_argument(
        "--fractional-shift", type=float, default=1.0, help="fractional: shifts in [0, N) pixels"
    )
    shift.add_argument(
        "--worst-case-shift",
        type=int,
        default=4,
        help="worst-case: shifts -N..N (circular) or 0..N (crop)",
    )
    shift.add_argument("--worst-case-mode", choices=("circular", "crop"), default="circular")
    shift.add_argument(
        "--layers",
        type=_csv,
        default=None,
        metavar="LIST",
        help="equivariance: comma-separated module names (default: the model's top-level blocks)",
    )
    shift.add_argument(
        "--equivariance-shift", type=int, default=8, help="equivariance: shift grid 0..N-1 per axis"
    )
    shift.add_argument(
        "--equivariance-images",
        type=int,
        default=64,
        help="equivariance: images used (cost grows as N x shifts^2)",
    )
    shift.add_argument(
        "--seed", type=int, default=0, help="seed of the random offsets and corruptions"
    )
    robust = parser.add_argument_group("robustness")
    robust.add_argument(
        "--imagenet-c", metavar="DIR", help="ImageNet-C root (corruption/severity/class/image)"
    )
    robust.add_argument(
        "--imagenet-p", metavar="DIR", help="ImageNet-P root (perturbation/class/sequence)"
    )
    robust.add_argument(
        "--difficulty", type=int, default=1, choices=(1, 2, 3), help="ImageNet-P difficulty"
    )
    robust.add_argument(
        "--corruptions",
        type=_csv,
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
        help="JSON {perturbation: {flip_probability, top5_distance}} of AlexNet, to normalize "
        "mFR/mT5D (default: a compared model given as --model alexnet)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--output", metavar="FILE", help="write all results as JSON")
    out.add_argument("--records", action="store_true", help="include per-image records in the JSON")
    out.add_argument("--plots", metavar="DIR", help="write PNG plots into DIR (needs matplotlib)")
    out.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda:1', ..."
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def _from_callable(
    spec: str, weights_name: str | None = None, num_classes: int | None = None
) -> nn.Module:
    """A ``module:function`` model: the one resolver of train and eval builds it."""
    from antialias.train.model import build_model

    return build_model(spec, num_classes=num_classes, weights=weights_name, source="auto")


def _from_file(path: str) -> nn.Module:
    if path.endswith(".pt2"):
        from antialias._io import load_exported_program

        # Never torch.export.load directly: it unpickles parts of the file with weights_only=False.
        return load_exported_program(path).module()
    try:
        with warnings.catch_warnings():
            # torch deprecates TorchScript; loading a user's saved model is still what was asked.
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
            return torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # TorchScript raises RuntimeError or its own types
        raise CLIError(
            f"model file {path!r} is not a TorchScript file (torch.jit.save); for a checkpoint, "
            "name the architecture with --model and give the file with --weights"
        ) from exc


_MODEL_FILE_SUFFIXES = (".pt", ".pt2", ".pth", ".ts", ".jit")
_WEIGHTS_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _is_model_file(spec: str) -> bool:
    """Whether ``--model spec`` names a saved model file rather than a model name.

    A registered zoo or torchvision name is a name even when a file of that name lies in the working
    directory (write ``./resnet18`` for the file); anything else that exists as a file is a file.
    """
    if not os.path.isfile(spec):
        return False
    if os.sep in spec or "/" in spec or spec.endswith(_MODEL_FILE_SUFFIXES):
        return True
    from antialias.models import list_models
    from antialias.train.model import torchvision_names

    if spec in list_models() or spec in torchvision_names():
        logger.warning(f"--model {spec!r} is a model name; the file {spec!r} in the working directory is ignored "
                       f"(write ./{spec} to evaluate the file)")
        return False
    return True


def _check_weights_arg(spec: str, weights: str) -> None:
    """A ``--weights`` value is an existing file or a weights name: never a missing path or a folder."""
    if os.path.isdir(weights):
        raise CLIError(f"--weights {weights!r} (for --model {spec!r}) is a folder; expected a file of weights")
    if os.path.isfile(weights):
        return
    if not _WEIGHTS_NAME_RE.match(weights) or weights.lower().endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt")):
        raise CLIError(
            f"--weights {weights!r} (for --model {spec!r}) does not exist; expected a file of weights or a weights "
            "name such as DEFAULT"
        )


def _from_name(
    name: str, weights: str | None, num_classes: int | None, weights_file: str | None = None
) -> nn.Module:
    """A zoo name, else a torchvision name: the one resolver of train and eval builds it."""
    from antialias.models import list_models
    from antialias.train.model import build_model

    if name in list_models():
        # The zoo reads files and catalog names itself (the reference's checkpoints, the class count
        # stored by ``antialias train`` or the classifier's shape).
        if num_classes is not None and weights and os.path.isfile(weights):
            saved = _file_num_classes(weights)
            if saved is not None and saved != num_classes:
                # get_model would start a fresh classifier (fine-tuning); evaluating one is meaningless.
                raise CLIError(
                    f"--num-classes {num_classes} but weights {weights!r} have {saved} classes; "
                    "leave --num-classes out to use the file's"
                )
    elif weights_file is not None:
        num_classes = _file_num_classes(weights_file) or num_classes
    return build_model(name, num_classes=num_classes, filter_size=None, source="auto", weights=weights or None)


def _file_num_classes(path: str) -> int | None:
    """The class count a weights file gives its classifier: its description, else its last 2-D weight."""
    from antialias.models._head import _last_linear_classes, read_model_meta
    from antialias.models._load import read_state_dict

    meta = read_model_meta(path)
    if isinstance(meta.get("num_classes"), int):
        return int(meta["num_classes"])
    return _last_linear_classes(read_state_dict(path))


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Load a checkpoint file into ``model`` (strict key and shape match), with a clear error.

    The file is read as the zoo reads one (:func:`antialias.models._load.read_state_dict`): safely, in any
    of the usual wrappings, with an error naming it when it is unreadable or holds no state dict.
    """
    from antialias.models._load import read_state_dict, state_dict_mismatch

    state = read_state_dict(path)
    missing, unexpected, mismatched = state_dict_mismatch(model.state_dict(), state)
    if missing or unexpected or mismatched:
        shapes = [f"{k} {saved} vs model {wanted}" for k, saved, wanted in mismatched]
        raise CLIError(
            f"weights {path!r} do not fit the model: {len(missing)} missing keys {missing[:3]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:3]}, {len(shapes)} shape mismatches "
            f"{shapes[:3]}"
        )
    model.load_state_dict(state)


def load_model(spec: str, weights: str | None = None, num_classes: int | None = None) -> nn.Module:
    """Build the model of a ``--model`` value and load ``weights`` into it.

    Order of resolution: an existing file (TorchScript ``.pt``, torch.export ``.pt2``), then
    ``module:function`` (called with ``weights=`` when ``weights`` is a name, not a file), then a
    name of the antialias zoo (``antialias.models``, anti-aliased), then a torchvision model name.
    The zoo shares torchvision's names: ``torchvision.models:resnet50`` builds torchvision's
    baseline. ``weights`` is a checkpoint file or a weights name (e.g. ``DEFAULT``);
    ``None``/``"none"`` loads nothing. ``num_classes`` sizes the classifier of a model given by name
    (default: what the weights say; a weights file of ``antialias train`` stores it, else its
    classifier's shape tells).
    """
    if weights is not None and weights.lower() == "none":
        weights = None
    if weights is not None:
        _check_weights_arg(spec, weights)
    weights_file = weights if weights is not None and os.path.isfile(weights) else None
    if _is_model_file(spec):
        if weights is not None and weights_file is None:
            raise CLIError(f"weights {weights!r} for the saved model {spec!r} must be a file")
        model = _from_file(spec)
    elif ":" in spec:
        if num_classes is None and weights_file is not None:
            # A factory that takes num_classes (torchvision.models:resnet18) is sized for the file.
            obj = None
            from antialias.train.model import import_object, takes_argument

            with contextlib.suppress(ValueError):
                obj = import_object(spec)
            if obj is not None and not isinstance(obj, nn.Module) and takes_argument(obj, "num_classes"):
                num_classes = _file_num_classes(weights_file)
        model = _from_callable(spec, weights if weights_file is None else None, num_classes)
    else:
        from antialias.models import list_models

        if spec in list_models():
            weights_file = None  # the zoo loads it (and maps the reference's key layout)
        named = weights if weights_file is None else None
        try:
            model = _from_name(spec, named, num_classes, weights_file)
        except CLIError:
            raise
        except (ValueError, KeyError, RuntimeError, OSError, TypeError) as exc:
            raise CLIError(f"cannot build model {spec!r} with weights {weights!r}: {exc}") from exc
    if weights_file is not None:
        load_checkpoint(model, weights_file)
    return model


def _model_uses_file_weights(weights: str | None) -> bool:
    return weights is not None and weights.lower() != "none"


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    label: str
    spec: str
    weights: str | None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


def _device(name: str) -> torch.device:
    from antialias.devices import resolve_device

    try:
        return resolve_device(name)
    except ValueError as exc:
        raise CLIError(f"--device {name!r}: {exc}") from None


def _check_args(args: argparse.Namespace) -> list[str]:
    unknown = [m for m in args.metrics if m not in METRICS]
    if unknown:
        raise CLIError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    if not args.metrics:
        raise CLIError("--metrics is empty; choose from " + ", ".join(METRICS))
    metrics = list(dict.fromkeys(args.metrics))
    for name, value, low in (
        ("--crop", args.crop, 1),
        ("--batch-size", args.batch_size, 1),
        ("--passes", args.passes, 1),
        ("--max-offset", args.max_offset, 1),
        ("--circular-shift", args.circular_shift, 1),
        ("--worst-case-shift", args.worst_case_shift, 0),
        ("--equivariance-shift", args.equivariance_shift, 1),
        ("--equivariance-images", args.equivariance_images, 1),
        ("--resize", args.resize, 0),
        ("--workers", args.workers, 0),
    ):
        if value < low:
            raise CLIError(f"{name} must be >= {low}, got {value}")
    if args.fractional_shift <= 0:
        raise CLIError(f"--fractional-shift must be > 0, got {args.fractional_shift}")
    if args.max_images is not None and args.max_images < 1:
        raise CLIError(f"--max-images must be >= 1, got {args.max_images}")
    if any(m in _NEEDS_DATA for m in metrics) and not args.data:
        needing = ", ".join(m for m in metrics if m in _NEEDS_DATA)
        raise CLIError(f"metrics {needing} need --data DIR (an image folder)")
    if "imagenet-c" in metrics and not args.imagenet_c:
        raise CLIError("metric imagenet-c needs --imagenet-c DIR")
    if "imagenet-p" in metrics and not args.imagenet_p:
        raise CLIError("metric imagenet-p needs --imagenet-p DIR")
    if args.resize and args.resize < args.crop:
        raise CLIError(f"--resize {args.resize} is smaller than --crop {args.crop}")
    shift_size = args.crop + args.max_offset
    if any(m in _NEEDS_SHIFT_DATA for m in metrics) and args.resize and args.resize < shift_size:
        raise CLIError(
            f"--resize {args.resize} is smaller than --crop + --max-offset = {shift_size}, the "
            "size of the shifted-crop images"
        )
    if "worst-case" in metrics and args.worst_case_mode == "crop":
        need = args.crop + args.worst_case_shift
        if args.resize and args.resize < need:
            raise CLIError(
                f"--resize {args.resize} is smaller than --crop + --worst-case-shift = {need}"
            )
    if "corruptions" in metrics and args.crop < 32:
        raise CLIError(
            f"metric corruptions needs --crop >= 32 (imagecorruptions' minimum), got {args.crop}"
        )
    if any(s not in (1, 2, 3, 4, 5) for s in args.severities):
        raise CLIError(f"--severities must be in 1..5, got {args.severities}")
    if args.corruptions is not None:
        from antialias.datasets import EXTRA_CORRUPTIONS, IMAGENET_C_CORRUPTIONS

        known = IMAGENET_C_CORRUPTIONS + EXTRA_CORRUPTIONS
        bad = [c for c in args.corruptions if c not in known]
        if bad and "corruptions" in metrics:
            raise CLIError(
                f"unknown corruption(s) {', '.join(bad)}; "
                f"choose from {', '.join(known)}"
            )
    n = len(args.models)
    if args.weights is not None and len(args.weights) != n:
        raise CLIError(
            f"give --weights once per --model ({n} models, {len(args.weights)} weights); use "
            "'none' for a model without weights"
        )
    if args.labels is not None and len(args.labels) != n:
        raise CLIError(f"give --label once per --model ({n} models, {len(args.labels)} labels)")
    if args.plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise CLIError("--plots needs matplotlib: pip install 'antialias[plots]'") from exc
    return metrics


def _labels(args: argparse.Namespace) -> list[str]:
    if args.labels is not None:
        labels = list(args.labels)
    else:
        labels = []
        for spec in args.models:
            labels.append(Path(spec).name if os.path.isfile(spec) else spec)
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return unique


class _Data:
    """The evaluation images, read once and viewed through the transforms the metrics need."""

    def __init__(self, args: argparse.Namespace, metrics: list[str], device: torch.device) -> None:
        from antialias.data import ImageFolderDataset, load_image_folder

        self.args = args
        self.device = device
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
        samples = base.samples
        if args.max_images is not None and args.max_images < len(samples):
            generator = torch.Generator().manual_seed(args.seed)
            keep = sorted(
                torch.randperm(len(samples), generator=generator)[: args.max_images].tolist()
            )
            samples = [samples[i] for i in keep]
        self.base = ImageFolderDataset(base.root, samples, base.classes, None, on_corrupt=args.on_corrupt)
        logger.info("%s: %d images, %d classes", args.data, len(self.base), len(self.base.classes))

    @property
    def classes(self) -> list[str]:
        return self.base.classes

    def loader(self, size: int, limit: int | None = None) -> torch.utils.data.DataLoader:
        from antialias.data import ImageFolderDataset, eval_transform

        samples = self.base.samples
        if limit is not None and limit < len(samples):
            # Spread over the classes (samples are sorted by class): every k-th image.
            samples = samples[:: len(samples) // limit][:limit]
        dataset = ImageFolderDataset(
            self.base.root,
            samples,
            self.base.classes,
            eval_transform(self.args.resize or None, size),
            on_corrupt=self.args.on_corrupt,  # a file that fails to decode in full is skipped, by name
        )
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=self.args.batch_size,
            shuffle=False,
            num_workers=self.args.workers,
            pin_memory=self.device.type == "cuda",
        )


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _check_outputs(args: argparse.Namespace) -> None:
    """Check --output and --plots before any model is built or image read: no result is lost at the end."""
    from antialias._io import check_output_path

    inputs = [("--weights file", w) for w in (args.weights or []) if w and os.path.isfile(w)]
    inputs += [("--model file", m) for m in args.models if os.path.isfile(m)]
    for option, value in (("--alexnet-p", getattr(args, "alexnet_p", None)),):
        if value:
            inputs.append((f"{option} file", value))
    try:
        if args.output:
            check_output_path(args.output, kind="file", what="--output", inputs=inputs)
        if args.plots:
            check_output_path(args.plots, kind="dir", what="--plots", inputs=inputs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _evaluate(
    entry: _Entry,
    model: nn.Module,
    metrics: list[str],
    data: _Data | None,
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    progress = not args.no_progress
    common: dict[str, Any] = {"device": device, "progress": progress}
    for metric in metrics:
        logger.info("%s: %s", entry.label, metric)
        try:
            _evaluate_one(entry, model, metric, data, args, common)
        except NonFiniteLogitsError as exc:
            raise CLIError(f"model {entry.label!r} failed during {metric}: {exc}") from exc
        except RuntimeError as exc:
            # A model that cannot run on these inputs (wrong size, channels, dtype): say which.
            logger.debug("%s failed", metric, exc_info=True)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CLIError(f"model {entry.label!r} failed during {metric}: {first}") from exc


def _values(args: argparse.Namespace, data: _Data | None) -> dict[str, Any]:
    """What the metric table's options read: the command's options, plus the values metrics share."""
    from antialias.data import eval_transform

    return {
        **vars(args),
        "generator": _generator(args.seed),  # fresh per model and metric: every model sees the same draws
        "transform": eval_transform(None, args.crop),  # benchmark folders are cropped already
        "classes": data.classes if data is not None and data.classes else None,
        "sequence_batch_size": max(1, args.batch_size // 8),
    }


def _evaluate_one(
    entry: _Entry,
    model: nn.Module,
    metric: str,
    data: _Data | None,
    args: argparse.Namespace,
    common: dict[str, Any],
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
    result = spec.function(model, source, **kwargs, **common)
    if spec.score is not None and not spec.across_models:
        result = spec.score(result, clean_error=_clean_error(entry))
    entry.results[metric] = result  # ImageNet-P: raw rates, normalized once every model is done
    if not spec.across_models:
        entry.metrics[metric] = result.summary()
        if args.records:
            entry.records[metric] = result.records()


def _clean_error(entry: _Entry) -> float | None:
    acc = entry.metrics.get("accuracy")
    return None if acc is None else 1.0 - acc["top1"]


def _finish_imagenet_p(entries: list[_Entry], args: argparse.Namespace) -> None:
    from antialias.metrics import imagenet_p_scores

    if not any("imagenet-p" in e.results for e in entries):
        return
    alexnet = None
    if args.alexnet_p:
        try:
            alexnet = json.loads(Path(args.alexnet_p).read_text())
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot read --alexnet-p {args.alexnet_p!r} ({exc})") from exc
        if not isinstance(alexnet, dict):
            raise CLIError(f"--alexnet-p {args.alexnet_p!r} must hold a JSON object")
    else:
        for entry in entries:
            if entry.spec == "alexnet" and "imagenet-p" in entry.results:
                alexnet = entry.results["imagenet-p"]
                logger.info("normalizing ImageNet-P rates by model %s", entry.label)
    for entry in entries:
        rates = entry.results.get("imagenet-p")
        if rates is not None:
            result = imagenet_p_scores(rates, alexnet=alexnet)
            entry.results["imagenet-p"] = result
            entry.metrics["imagenet-p"] = result.summary()


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * float(value):.2f}"


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.4f}"


_ROWS: list[tuple[str, str, str, Callable[[Any], str]]] = [
    (name, column.key, column.title, _pct if column.percent else _num)
    for name, spec in METRIC_TABLE.items()
    for column in spec.columns
]


def _table(entries: list[_Entry], metrics: list[str]) -> str:
    rows: list[list[str]] = []
    for metric, key, title, fmt in _ROWS:
        if metric in metrics:
            rows.append([title] + [fmt(e.metrics.get(metric, {}).get(key)) for e in entries])
    if "equivariance" in metrics:
        layers = list(
            dict.fromkeys(
                name
                for e in entries
                for name in e.metrics.get("equivariance", {}).get("layers", {})
            )
        )
        for name in layers:
            cells = []
            for e in entries:
                info = e.metrics.get("equivariance", {}).get("layers", {}).get(name)
                cells.append("-" if info is None else _num(info["mean"]))
            rows.append([f"equivariance {name}"] + cells)
    header = ["metric"] + [e.label for e in entries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _json_safe(value.tolist())
    return value


def _write_json(
    path: str, entries: list[_Entry], metrics: list[str], args: argparse.Namespace
) -> None:
    from antialias import __version__

    config = {
        k: v
        for k, v in vars(args).items()
        if not k.startswith("_") and k not in ("models", "weights", "labels", "verbose", "command")
    }
    payload = {
        "antialias": __version__,
        "metrics": metrics,
        "config": config,
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
    out = Path(path)
    try:
        from antialias._io import atomic_write_text

        out.parent.mkdir(parents=True, exist_ok=True)
        # Strict JSON (non-finite numbers as null), written atomically: a crash leaves the old file.
        atomic_write_text(out, json.dumps(_json_safe(payload), indent=2, allow_nan=False) + "\n")
    except OSError as exc:
        raise CLIError(f"cannot write --output {path!r} ({exc})") from exc
    logger.info("wrote %s", out)


def _plot(directory: str, entries: list[_Entry], metrics: list[str]) -> list[Path]:
    from antialias.metrics import plots

    out = Path(directory)
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create --plots folder {directory!r} ({exc})") from exc
    if "diagonal" in metrics:
        written.append(
            plots.plot_diagonal(
                {e.label: e.results["diagonal"] for e in entries}, out / "diagonal.png"
            )
        )
    titles = {name: spec.plot_title for name, spec in METRIC_TABLE.items() if spec.plot == "consistency"}
    for metric, title in titles.items():
        if metric in metrics:
            values = {e.label: e.results[metric].consistency for e in entries}
            accs = (
                {e.label: e.metrics["accuracy"]["top1"] for e in entries}
                if "accuracy" in metrics
                else None
            )
            written.append(
                plots.plot_consistency(values, out / f"{metric}.png", accuracy=accs, title=title)
            )
    if "equivariance" in metrics:
        for e in entries:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in e.label)
            written.append(
                plots.plot_equivariance(
                    e.results["equivariance"], out / f"equivariance_{safe}.png", title=e.label
                )
            )
    for path in written:
        logger.info("wrote %s", path)
    return written


def _folder_classes(folder: str) -> list[str] | None:
    """The class sub-folders of ``folder`` (sorted: the class indices), without reading any image."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return None  # the image folder's own checks report it
    return names or None


def _build(
    label: str, spec: str, weights: str | None, num_classes: int | None, classes: list[str] | None
) -> nn.Module:
    """Build one ``--model`` (weights loaded) and say what may make its numbers meaningless."""
    from antialias.models._head import classifier_name

    logger.info("loading model %s", spec)
    named = not os.path.isfile(spec) and ":" not in spec
    if num_classes is None and named and not _model_uses_file_weights(weights) and classes:
        num_classes = len(classes)  # a random model: sized for the data
    model = load_model(spec, weights, num_classes)
    if named and not _model_uses_file_weights(weights):
        logger.warning(f"model {label!r} has no --weights: it is randomly initialised")
    head = classifier_name(model)
    outputs = getattr(model.get_submodule(head), "out_features", None) if head else None
    if classes and outputs is not None and outputs != len(classes):
        logger.warning(
            f"model {label!r} has {outputs} outputs but the data has {len(classes)} classes: "
            "accuracy compares output indices with the sorted class folders"
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
        filt: str | int | None = None
        if rest:
            filt = int(rest) if rest.isdigit() else rest
        parsed.append((name, method, filt))
    return parsed


def _converted(model: nn.Module, label: str, method: str, filt: str | int | None) -> nn.Module:
    """A copy of ``model`` anti-aliased by ``method`` (its weights kept)."""
    import copy

    from antialias import convert

    if not isinstance(model, nn.Module) or isinstance(model, torch.jit.ScriptModule):
        raise CLIError(f"--methods: model {label!r} is a saved program, not an nn.Module that can be converted")
    options: dict[str, Any] = {"method": method}
    if filt is not None:
        options["filter_size"] = filt
    try:
        converted = convert(copy.deepcopy(model), **options)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--methods: cannot convert model {label!r} with {method!r}: {exc}") from exc
    return converted.train(model.training)


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
        built = [
            _build(label, spec, w, args.num_classes, classes)
            for label, spec, w in zip(labels, args.models, weights, strict=True)
        ]
        runs = list(zip(labels, args.models, weights, strict=True))
        originals = list(zip(runs, built, strict=True))
        # --methods: each model converted by each method, checked here too, before the first image.
        for name, method, filt in _parse_methods(args.methods):
            for (label, spec, w), model in originals:
                built.append(_converted(model, label, method, filt))
                runs.append((f"{label}+{name}", spec, w))
        data = _Data(args, metrics, device) if any(m in _NEEDS_DATA for m in metrics) else None
        entries = []
        for label, spec, w in runs:
            model = built.pop(0).to(device)
            entry = _Entry(
                label=label, spec=spec, weights=w if _model_uses_file_weights(w) else None
            )
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
        _write_json(args.output, entries, metrics, args)
    if args.plots:
        _plot(args.plots, entries, metrics)
    return 0
