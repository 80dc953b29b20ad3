"""``antialias demo``: train small CNNs with and without anti-aliasing and measure their shift-invariance.

Examples::

    antialias demo                                  # digits bundled with scikit-learn, a few minutes on a CPU
    antialias demo --seeds 0,1,2,3,4 --filters 3,5 --output runs/demo
    antialias demo --dataset cifar10 --data ~/data --download --device cuda
    antialias demo --methods max,blur-4,aps,lps     # one table comparing downsampling methods
    antialias demo --models cnn,vit                 # add a small ViT, plain and anchored

See :mod:`antialias.apps.demo` for the experiment. The table goes to stdout; ``results.json``,
``table.md``, ``consistency.png`` and ``diagonal.png`` go to ``--output``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import re
from typing import Any

from antialias.cli import CLIError, add_command, csv_list
from antialias.layers import list_downsample_methods

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def _ints(value: str, expected: str) -> list[int]:
    try:
        return [int(v) for v in csv_list(value)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}") from exc


def _seeds(value: str) -> list[int]:
    seeds = _ints(value, "comma-separated integer seeds")
    if not seeds:
        raise argparse.ArgumentTypeError(f"expected at least one seed, got {value!r}")
    return seeds


def _filters(value: str) -> list[Any]:
    """``"2,3,box-3"`` -> ``[2, 3, "box-3"]``; ``"none"`` -> no max-blur-pool variant."""
    if value.strip().lower() == "none":
        return []
    from antialias.filters import get_taps

    out: list[Any] = []
    for item in csv_list(value):
        spec: Any = int(item) if item.isdigit() else item
        try:
            get_taps(spec)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"bad filter {item!r}: {exc}") from exc
        out.append(spec)
    return out


def _models(value: str) -> list[str]:
    """``"cnn,vit"`` -> the names, checked as :class:`~antialias.apps.demo.DemoConfig` checks them."""
    from antialias.apps.demo import check_models

    names = csv_list(value)
    try:
        check_models(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return names


def _methods(value: str) -> list[str]:
    """``"max,blur-4,aps"`` -> the names, checked against the layer factory's registry."""
    from antialias.apps.demo import parse_methods

    names = csv_list(value)
    try:
        parse_methods(names)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return names


def _widths(value: str) -> list[int]:
    widths = _ints(value, "three comma-separated channel counts")
    if len(widths) != 3 or min(widths) < 1:
        raise argparse.ArgumentTypeError(
            f"expected three positive channel counts such as 8,16,32, got {value!r}"
        )
    return widths


def _auto(parse: Any, what: str = "a value") -> Any:
    """A parser that maps ``"auto"`` to ``None`` (the data set's default) and parses anything else."""

    def parse_or_auto(value: str) -> Any:
        if value == "auto":
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected 'auto' or {what}, got {value!r}") from exc

    return parse_or_auto


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``antialias demo``."""
    parser = add_command(
        subparsers,
        "demo",
        help="show the effect of anti-aliasing in minutes on a CPU (trains small CNNs)",
        description=(
            "Train a small CNN with max-pooling (baseline), with max-blur-pool for each filter size "
            "and with adaptive polyphase sampling (APS), for several seeds and without shift "
            "augmentation, then measure clean accuracy, accuracy under shifts, consistency under "
            "circular shifts and shifted crops, and the probability of the correct class along a "
            "diagonal shift. Prints a table (mean and std over seeds) and writes results.json, "
            "table.md and PNG plots to --output. With --methods, one such table compares any "
            "downsampling methods of the layer factory instead."
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=("digits", "cifar10"),
        default="digits",
        help="digits: scikit-learn's bundled 8x8 scans on a 32x32 canvas (no download); cifar10: "
        "torchvision's CIFAR-10 from --data",
    )
    data.add_argument(
        "--data",
        dest="data_dir",
        metavar="DIR",
        help="folder holding cifar-10-batches-py (no default: needed with --dataset cifar10)",
    )
    data.add_argument(
        "--download",
        action="store_true",
        help="download CIFAR-10 into --data if missing (needs the internet)",
    )
    data.add_argument(
        "--train-size",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N images only (default: the whole training set)",
    )
    data.add_argument(
        "--test-size",
        type=int,
        default=None,
        metavar="N",
        help="evaluate on the first N test images only (default: the whole test set)",
    )
    models = parser.add_argument_group("models and training")
    models.add_argument(
        "--filters",
        type=_filters,
        default="2,3,4,5",
        metavar="LIST",
        help="max-blur-pool filter sizes, one model each (int k: binomial, or e.g. box-3; 'none')",
    )
    models.add_argument(
        "--methods",
        type=_methods,
        default=None,
        metavar="LIST",
        help="compare downsampling methods instead of --filters/--no-baseline/--no-aps: 'max' (the baseline), "
        f"any method of the layer factory ({', '.join(list_downsample_methods())}), '<method>-<filter>' for "
        "a filter (blur-4, blur-box-3); adds sub-pixel consistency and time per epoch to the table "
        "(default: the --filters comparison)",
    )
    models.add_argument(
        "--models",
        type=_models,
        default="cnn",
        metavar="LIST",
        help="'cnn', or 'cnn,vit' to add a small ViT (patch 4), plain and with anchored patch "
        "embedding (polyphase + token anchoring), to the same table and plot",
    )
    models.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="skip the max-pool baseline"
    )
    models.add_argument(
        "--no-aps",
        dest="aps",
        action="store_const",
        const=False,
        default=None,
        help="skip the APS variant (included when the polyphase layers exist)",
    )
    models.add_argument(
        "--seeds",
        type=_seeds,
        default="0,1,2",
        metavar="LIST",
        help="comma-separated seeds, one model per variant and seed",
    )
    models.add_argument(
        "--epochs",
        type=_auto(int, "an integer"),
        default="auto",
        metavar="N",
        help="training epochs; auto: 6 for digits, 15 for cifar10",
    )
    models.add_argument(
        "--widths",
        type=_auto(_widths),
        default="auto",
        metavar="C1,C2,C3",
        help="channels of the three stages; auto: 16,32,64 for digits, 32,64,128 for cifar10",
    )
    models.add_argument(
        "--batch-size",
        type=_auto(int, "an integer"),
        default="auto",
        metavar="N",
        help="training batch size; auto: 32 for digits, 128 for cifar10",
    )
    models.add_argument(
        "--lr",
        type=float,
        default=0.01,
        help="peak learning rate (AdamW, one-cycle); the ViT variants take a tenth of it",
    )
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument(
        "--max-shift", type=int, default=8, metavar="PX", help="shifts span -PX..PX pixels per axis"
    )
    evaluation.add_argument(
        "--passes", type=int, default=5, help="shifted pairs per test image for the consistencies"
    )
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    run_group.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes training models in parallel on the CPU (0: one per CPU core)",
    )
    run_group.add_argument(
        "--output",
        default="antialias-demo",
        metavar="DIR",
        help="folder for results.json, table.md, consistency.png and diagonal.png",
    )
    run_group.add_argument(
        "--overwrite",
        action="store_true",
        help="let --output be a folder holding files that no antialias command wrote",
    )
    run_group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bar"
    )
    return parser


def _as_options(message: str, fields: dict[str, Any]) -> str:
    """A :class:`DemoConfig` message with its field names spelled as the options that set them
    (``epochs must be ...`` -> ``--epochs must be ...``); negated flags keep their words."""
    negated = ("baseline", "aps", "progress")  # --no-baseline...: "keep the baseline" stays words
    names = {name: "--" + name.replace("_", "-") for name in fields if name not in negated}
    names["data_dir"] = "--data"
    pattern = r"(?<![\w-])(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    return re.sub(pattern + r")(?![\w-])", lambda m: names[m.group(1)], message)


def run(args: argparse.Namespace) -> int:
    from antialias.apps.demo import DemoConfig, format_table, run_demo, write_outputs

    if args.dataset != "cifar10" and (args.data_dir or args.download):
        raise CLIError(f"--data and --download apply to --dataset cifar10, not to {args.dataset!r}")
    if importlib.util.find_spec("matplotlib") is None:  # fail before minutes of training, not after
        raise CLIError("the demo's plots need matplotlib: pip install 'antialias[demo]'")
    if args.workers < 0:
        raise CLIError(f"--workers must be >= 0 (0: one per CPU core), got {args.workers}")
    from antialias.files import check_output_path

    # Before minutes of training: a folder that cannot be written would lose the results (a ValueError: main() reports it).
    check_output_path(
        args.output,
        kind="dir",
        what="--output",
        inputs=[("--data folder", args.data_dir)],
        folders=[("--data folder", args.data_dir)],
        overwrite=args.overwrite,
    )
    # Every option is named as the DemoConfig field it sets (which turns the lists into tuples).
    fields = {f.name for f in dataclasses.fields(DemoConfig)}
    options = {k: v for k, v in vars(args).items() if k in fields}
    try:
        config = DemoConfig(
            **{**options, "workers": args.workers or None}
        )  # --workers 0: one per CPU core
        config.variants()  # "no variant to train", duplicates: before any data is read
    except ValueError as exc:
        raise CLIError(_as_options(str(exc), options)) from None
    try:
        result = run_demo(config)
        paths = write_outputs(result, args.output)
    except ImportError as exc:  # scikit-learn or matplotlib missing: the message names the extra
        raise CLIError(str(exc)) from exc
    print(format_table(result))
    print()
    verdicts = []
    for row in result["comparison"]:
        if row["metric"] == "circular_consistency":
            sign = "+" if row["difference"] >= 0 else ""
            beyond = "beyond" if row["exceeds_spread"] else "within"
            verdicts.append(
                f"  {row['variant']}: {sign}{100 * row['difference']:.1f} points, {beyond} the spread over seeds"
            )
    if verdicts:
        print("consistency (circular) vs the baseline:")
        print("\n".join(verdicts))
    print(
        f"wall time {result['wall_time_s']:.0f} s with {result['environment']['workers']} worker(s) on {config.device}"
    )
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
