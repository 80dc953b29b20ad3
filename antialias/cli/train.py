"""``antialias train``: train or fine-tune a model on an ImageNet-layout folder, on one process or many.

A thin shell over :func:`antialias.train.train`. Several processes (GPUs) are launched by torchrun::

    torchrun --standalone --nproc_per_node 8 -m antialias train /data/imagenet \\
        --model resnet50 --init-weights torchvision --output-dir runs/resnet50_lpf4_finetune
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from antialias.cli import CLIError, add_command, add_on_corrupt

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  # fine-tune an anti-aliased ResNet-50 from torchvision's weights (lr 0.01, 60 epochs)
  antialias train /data/imagenet --model resnet50 --init-weights torchvision --output-dir runs/r50
  # the same on 8 GPUs of one machine (global batch 256 = 8 x 32)
  torchrun --standalone --nproc_per_node 8 -m antialias train /data/imagenet --model resnet50 \\
      --init-weights torchvision --output-dir runs/r50
  # anti-alias any torchvision model, or train the unchanged baseline
  antialias train /data/imagenet --model efficientnet_b0 --convert --output-dir runs/effb0
  antialias train /data/imagenet --model resnet50 --baseline --output-dir runs/r50_baseline
  # continue a stopped run exactly (its options come back from runs/r50/config.json)
  antialias train --output-dir runs/r50 --resume

recipes (the reference's; explicit options override them):
"""


def _filter_size(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value


# TrainConfig fields (or settings of a flag) whose option is not ``--field-name``.
_OPTIONS = {
    "data": "DATA",
    "source": "--convert/--baseline",
    "verify_images": "--no-verify",
    "verify_images=False": "--no-verify",
    "progress": "--no-progress",
    "progress=False": "--no-progress",
    "scale_lr": "--no-lr-scaling",
    "scale_lr=False": "--no-lr-scaling",
}


def option_name(field: str) -> str:
    """The command-line option of a :class:`~antialias.train.TrainConfig` field (``batch_size`` ->
    ``--batch-size``), or of a flag's setting (``scale_lr=False`` -> ``--no-lr-scaling``)."""
    return _OPTIONS.get(field, "--" + field.partition("=")[0].replace("_", "-"))


def _changeable() -> tuple[str, ...]:
    from antialias.train.engine import RESUME_CHANGEABLE

    return tuple(option_name(name) for name in RESUME_CHANGEABLE)


class _OptionNames(logging.Filter):
    """Renames the options of the library's warnings about options as the command line spells them."""

    def filter(self, record: logging.LogRecord) -> bool:
        from antialias.train.config import OPTION_MESSAGE, render_option_message

        message = getattr(record, OPTION_MESSAGE, None)
        if message is not None:
            template, values = message
            record.msg, record.args = render_option_message(template, values, option_name), ()
        return True


@contextlib.contextmanager
def _cli_option_names() -> Iterator[None]:
    """Within: warnings name ``--batch-size``, and a bad option is a :class:`CLIError` naming it so."""
    from antialias.train.config import ConfigError

    handlers, names = list(logging.getLogger().handlers), _OptionNames()
    for handler in handlers:
        handler.addFilter(names)
    try:
        yield
    except ConfigError as exc:
        raise CLIError(exc.render(option_name)) from None
    finally:
        for handler in handlers:
            handler.removeFilter(names)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``antialias train``."""
    from antialias.train.recipes import RECIPES

    epilog = _EXAMPLES + "".join(f"  {name:14s} {r.description}\n" for name, r in RECIPES.items())
    parser = add_command(
        subparsers,
        "train",
        help="train or fine-tune a model (torchrun for several GPUs)",
        description="Train or fine-tune a model on a folder in the ImageNet layout\n"
        "(DATA/train/<class>/<image>, DATA/val/<class>/<image>), validating top-1/top-5 accuracy\n"
        "and crop consistency after every epoch.",
        epilog=epilog,
    )
    parser.add_argument(
        "data",
        nargs="?",
        help="folder with train/ and val/ class folders (no default: give DATA, or --train-dir "
        "and --val-dir, unless --resume)",
    )
    parser.add_argument("--train-dir", help="training folder (default: DATA/train)")
    parser.add_argument("--val-dir", help="validation folder (default: DATA/val)")
    parser.add_argument(
        "--output-dir",
        required=True,
        help="run folder: checkpoints, log.jsonl, config.json, weights.pt, curves.png and "
        "TensorBoard events (no default: required)",
    )

    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        help="zoo model name, torchvision name (with --convert/--baseline) or "
        "package.module:function (no default: required unless --resume)",
    )
    source = group.add_mutually_exclusive_group()
    source.add_argument(
        "--convert",
        dest="source",
        action="store_const",
        const="convert",
        help="anti-alias the torchvision model with antialias.convert (default: the zoo's "
        "anti-aliased model)",
    )
    source.add_argument(
        "--baseline",
        dest="source",
        action="store_const",
        const="torchvision",
        help="train the torchvision model unchanged (default: the zoo's anti-aliased model)",
    )
    parser.set_defaults(source="zoo")
    group.add_argument(
        "--filter-size",
        type=_filter_size,
        default=4,
        help="blur filter: taps 1..7 or a family such as box-3",
    )
    group.add_argument(
        "--init-weights",
        metavar="PATH|torchvision[:NAME]",
        help="start from these weights, loaded strictly (fine-tuning); a classifier trained for another "
        "number of classes is re-initialised, with a message naming it (default: random "
        "initialisation)",
    )
    group.add_argument(
        "--num-classes",
        type=int,
        help="outputs of the classifier (default: the data's class count)",
    )
    group.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm (multi-GPU)")
    group.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    group.add_argument("--compile", action="store_true", help="torch.compile the model")

    group = parser.add_argument_group("optimisation (default: the model's recipe)")
    group.add_argument(
        "--recipe",
        help="recipe name, see below (default: the model family's, fine-tuning with "
        "--init-weights)",
    )
    group.add_argument(
        "--epochs", type=int, help="length of the schedule in epochs (default: the recipe's)"
    )
    group.add_argument(
        "--batch-size",
        type=int,
        help="global batch of one step, split over processes and accumulation (default: the "
        "recipe's, 256)",
    )
    group.add_argument(
        "--lr",
        type=float,
        help="peak learning rate (default: the recipe's, scaled linearly when "
        "--batch-size differs from its 256: lr x batch / 256)",
    )
    group.add_argument(
        "--no-lr-scaling",
        dest="scale_lr",
        action="store_false",
        help="keep the recipe's lr whatever the global batch",
    )
    group.add_argument("--momentum", type=float, help="SGD momentum (default: the recipe's, 0.9)")
    group.add_argument(
        "--weight-decay", type=float, help="SGD weight decay (default: the recipe's)"
    )
    group.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    group.add_argument(
        "--schedule",
        choices=("step", "cosine", "constant"),
        help="learning-rate schedule after the warm-up (default: the recipe's)",
    )
    group.add_argument(
        "--step-size",
        type=int,
        help="epochs between lr divisions, with --schedule step (default: the recipe's)",
    )
    group.add_argument(
        "--gamma",
        type=float,
        help="factor of each lr division, with --schedule step (default: the recipe's)",
    )
    group.add_argument(
        "--warmup-epochs",
        type=float,
        help="linear warm-up length in epochs (default: the recipe's)",
    )
    group.add_argument(
        "--warmup-start", type=float, default=0.01, help="lr factor at the start of the warm-up"
    )
    group.add_argument(
        "--label-smoothing",
        type=float,
        help="label smoothing of the cross-entropy loss (default: the recipe's)",
    )
    group.add_argument("--accum-steps", type=int, default=1, help="gradient accumulation steps")
    group.add_argument(
        "--amp",
        choices=("none", "bf16", "fp16"),
        default="none",
        help="automatic mixed precision (fp16 on GPU only)",
    )

    group = parser.add_argument_group("data and validation")
    group.add_argument(
        "--crop-size", type=int, default=224, help="side of the training and validation crops"
    )
    group.add_argument(
        "--val-resize",
        type=int,
        default=256,
        help="validation resize of the shorter side, before the center crop",
    )
    group.add_argument("--max-offset", type=int, default=32, help="consistency shift range")
    group.add_argument(
        "--consistency-passes", type=int, default=1, help="consistency passes per epoch (0: skip)"
    )
    group.add_argument(
        "--val-batch-size",
        type=int,
        help="validation batch per process (default: the per-process training batch)",
    )
    group.add_argument(
        "--workers",
        type=int,
        help="loader workers per process (default: this machine's CPUs / its processes, at most 8)",
    )
    add_on_corrupt(group)
    group.add_argument(
        "--no-verify",
        dest="verify_images",
        action="store_false",
        help="do not check every image's header before training",
    )

    group = parser.add_argument_group("run")
    group.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of initialisation, shuffling, augmentation and metrics",
    )
    group.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run OUTPUT_DIR holds (another or a finished run, or the epochs after an older "
        "--resume CHECKPOINT of the same run); without it such a folder is refused",
    )
    group.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="CHECKPOINT",
        help="continue the run in OUTPUT_DIR exactly, from CHECKPOINT (default: its latest): its options "
        "come back from its config.json, so --output-dir and --resume suffice; of the others only these "
        "may be given with a new value: " + ", ".join(_changeable()),
    )
    group.add_argument(
        "--stop-after",
        type=int,
        metavar="N",
        help="stop after N epochs of this invocation (resume later) (default: run to the end)",
    )
    group.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="keep a checkpoint every N epochs (0: latest and best only)",
    )
    group.add_argument(
        "--deterministic", action="store_true", help="deterministic algorithms (slower on GPU)"
    )
    group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )
    group.add_argument(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write TensorBoard event files into OUTPUT_DIR/tensorboard every epoch (default: when "
        "the tensorboard package is installed; --tensorboard without it is an error); "
        "OUTPUT_DIR/curves.png is redrawn every epoch when matplotlib is installed",
    )
    group.add_argument(
        "--output",
        metavar="FILE.json",
        help="write the run's summary as JSON (default: print the table only)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``antialias train``; returns the exit code."""
    from antialias.train import TrainConfig, train

    if args.resume is None:
        if args.model is None:
            raise CLIError("give --model (or --resume to continue the run in --output-dir)")
        if args.data is None and (args.train_dir is None or args.val_dir is None):
            raise CLIError(
                "give DATA (a folder with train/ and val/) or both --train-dir and --val-dir"
            )
    if args.output:
        _check_output(args)  # before training: a path that cannot be written would lose the summary
    fields = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{name: getattr(args, name) for name in fields if hasattr(args, name)})
    with _cli_option_names():
        result = train(config)
    if int(os.environ.get("RANK", "0") or 0) != 0:
        return 0  # rank 0 reports for everyone
    _print_table(result.history)
    if result.weights:
        print(f"weights: {result.weights}")
    print(f"checkpoint: {result.checkpoint}")
    if args.output:
        from antialias import __version__
        from antialias.files import OUTPUT_MARKER, write_json

        write_json(args.output, {OUTPUT_MARKER: __version__, **result.to_dict()})
    return 0


def _check_output(args: argparse.Namespace) -> None:
    """--output is checked before training: writable, a file name, and none of the run's own files."""
    from antialias.files import check_output_path

    out = args.output_dir
    inputs: list[tuple[str, str | None]] = [
        (f"run's {name}", os.path.join(out, name))
        for name in ("weights.pt", "log.jsonl", "config.json")
    ]
    inputs += [
        ("checkpoint", os.path.join(out, p))
        for p in (os.listdir(out) if os.path.isdir(out) else [])
        if p.endswith(".pt")
    ]
    inputs += [
        ("--init-weights file", args.init_weights),
        ("--resume checkpoint", args.resume if args.resume != "latest" else None),
    ]
    folders = [("data folder", d) for d in (args.data, args.train_dir, args.val_dir)]
    folders.append(("run folder", out))
    check_output_path(  # a ValueError: main() reports it
        args.output,
        kind="file",
        what="--output",
        inputs=inputs,
        folders=folders,
        overwrite=args.overwrite,
    )


def _print_table(history: list[dict[str, Any]]) -> None:
    def pct(value: Any) -> str:
        return "-" if value is None else f"{100 * value:.2f}"

    header = (
        f"{'epoch':>5} {'loss':>8} {'lr':>9} {'top1%':>7} {'top5%':>7} {'cons%':>7} {'img/s':>9}"
    )
    print(header)
    for row in history:
        speed = row.get("images_per_s")
        print(
            f"{row['epoch']:>5} {row['train_loss']:>8.4f} {row['lr']:>9.3g} "
            f"{pct(row.get('val_top1')):>7} {pct(row.get('val_top5')):>7} "
            f"{pct(row.get('consistency')):>7} {'-' if speed is None else f'{speed:.1f}':>9}"
        )
