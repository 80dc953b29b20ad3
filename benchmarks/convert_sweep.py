"""convert() on every torchvision model and the smallest model of each timm family.

The model set is ``convert_sweep_models.json`` (every torchvision model; per timm family, see
:func:`timm_family`, the one with the fewest parameters); ``--refresh-models`` recomputes it. Each model
runs in its own subprocess with a time limit, random weights and a small input (raised to what the model's
configuration asks, see :func:`_build`):

1. the original's output (evaluation mode);
2. ``convert_with_report(model, example_inputs=...)``;
3. the state dict keeps its keys and values; the report names every strided convolution and pool
   (converted, or left alone with a reason);
4. the converted model runs in evaluation mode with the original's output shapes, and forward + backward
   in training mode.

One JSON line per model goes to ``--output``; models already there are skipped (``--redo error timeout``
runs them again) and rows of models no longer in the set are dropped. A Markdown summary table is
printed at the end (with ``--summary FILE`` only the table, from an earlier run). Run it on an idle
machine, e.g.::

    nice -n 19 python benchmarks/convert_sweep.py --output benchmarks/convert_sweep.jsonl --jobs 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TORCHVISION_GROUPS = ("", "quantization", "detection", "segmentation", "video", "optical_flow")
MODELS_FILE = Path(__file__).with_name("convert_sweep_models.json")


def timm_family(module: str, name: str) -> str:
    """``module:prefix``: the timm module that defines the model, then the name's leading letters.

    The prefix is the first word of the name up to its first digit, a version suffix kept
    (``resnet50d`` -> ``resnet``, ``convnextv2_atto`` -> ``convnextv2``, ``tf_efficientnet_b0`` -> ``tf``),
    which splits modules that hold several architectures (``resnet:seresnext``, ``byoanet:halonet``).
    """
    word = name.split("_")[0]
    match = re.match(r"[a-z]+?(?:v\d+)?(?=\d|$)", word)
    return f"{module}:{match.group(0) if match else word}"


def count_parameters(name: str) -> int | None:
    """A timm model's parameter count, built on the meta device (None: it cannot be built there)."""
    import timm
    import torch

    try:
        with torch.device("meta"):
            return sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters())
    except Exception:
        return None


def timm_families(
    count: Callable[[str], int | None] = count_parameters,
) -> dict[str, dict[str, Any]]:
    """The smallest model of each timm family (:func:`timm_family`), ``test_*`` models left out.

    Smallest = fewest parameters (:func:`count_parameters`) over every name of the family (ties: the first
    name in sorted order). A model that cannot be built on the meta device is never picked, unless no name
    of its family can be, then the first name is.
    """
    import timm

    families: dict[str, list[str]] = {}
    for module in timm.list_modules():
        for name in timm.list_models(module=module):
            if not name.startswith("test_"):
                families.setdefault(timm_family(module, name), []).append(name)
    chosen = {}
    for family, names in sorted(families.items()):
        counts = {name: count(name) for name in sorted(names)}
        pick = min(counts, key=lambda n: (counts[n] is None, counts[n] or 0))
        chosen[family] = {"model": pick, "params": counts[pick], "names": len(names)}
    return chosen


def torchvision_models() -> list[str]:
    import torchvision.models as tvm

    names = []
    for group in TORCHVISION_GROUPS:
        module = getattr(tvm, group) if group else tvm
        names += [f"torchvision:{group}:{name}" for name in tvm.list_models(module=module)]
    return names


def write_models_file(
    path: Path = MODELS_FILE, count: Callable[[str], int | None] = count_parameters
) -> None:
    """Computes the model set (minutes: every timm model is built on the meta device) and saves it."""
    import timm
    import torchvision

    data = {
        "rule": "every torchvision model; per timm family (module:prefix, see timm_family) the one with the "
        "fewest parameters counted on the meta device",
        "versions": {"timm": timm.__version__, "torchvision": torchvision.__version__},
        "torchvision": torchvision_models(),
        "timm": timm_families(count),
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def all_models(path: Path = MODELS_FILE) -> list[str]:
    """The sweep's models, read from ``convert_sweep_models.json`` (``--refresh-models`` rewrites it)."""
    data = json.loads(path.read_text())
    return data["torchvision"] + [f"timm::{v['model']}" for v in data["timm"].values()]


# ----------------------------------------------------------------------------------------------------
# One model (runs in the subprocess)


def _input_side(small: int, minimum: int, multiple: int = 1) -> int:
    """``small``, raised to the model's minimum and rounded up to a multiple (of the patch size)."""
    return -(-max(small, minimum) // multiple) * multiple


def _build(spec: str) -> tuple[Any, Any, str]:
    """(model, example inputs, kind) with random weights.

    The input is small (96 x 96 images, 8 x 64 x 64 clips), raised to what the model's own
    configuration asks: timm's ``fixed_input_size``, ``min_input_size`` and a multiple of the patch
    size when ``first_conv`` cuts patches (kernel == stride); torchvision's ``min_size`` /
    ``min_temporal_size`` (the least over the model's weights' meta).
    """
    import torch
    import torchvision.models as tvm

    torch.manual_seed(0)
    source, group, name = spec.split(":")
    if source == "timm":
        import timm

        model = timm.create_model(name, pretrained=False)
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        channels, height, width = cfg.get("input_size", (3, 224, 224))
        if not cfg.get("fixed_input_size", False):
            first = (
                model.get_submodule(cfg["first_conv"])
                if isinstance(cfg.get("first_conv"), str)
                else None
            )
            patch = (
                max(first.stride)
                if isinstance(first, torch.nn.Conv2d) and first.kernel_size == first.stride
                else 1
            )
            height = width = _input_side(
                min(width, 96), max(64, *cfg.get("min_input_size", (0, 0, 0))[1:]), patch
            )
        return model, (torch.randn(2, channels, height, width),), "classification"
    module = getattr(tvm, group) if group else tvm
    base = name.removeprefix("quantized_")  # list_models names the quantizable ones quantized_*
    # the least that any of the model's weights asks (vit_h_14: 224, not its default weights' 518)
    metas = (
        [w.meta for w in tvm.get_model_weights(base)]
        if group in ("", "quantization", "video")
        else [{}]
    )
    side = min(max(meta.get("min_size", (0, 0))) for meta in metas)
    side = (
        299 if base == "inception_v3" else side
    )  # its auxiliary classifier (training) needs 17 x 17 maps
    if group == "quantization":
        side = _input_side(96, side)
        return (
            getattr(module, base)(weights=None, quantize=False),
            (torch.randn(2, 3, side, side),),
            "classification",
        )
    if group == "detection":
        sizes = (
            {} if name.startswith("ssd") else {"min_size": 96, "max_size": 96}
        )  # SSD: its own fixed size
        model = tvm.get_model(name, weights=None, weights_backbone=None, num_classes=3, **sizes)
        return model, ([torch.rand(3, 96, 96), torch.rand(3, 96, 96)],), "detection"
    if group == "segmentation":
        model = tvm.get_model(
            name, weights=None, weights_backbone=None, num_classes=3, aux_loss=False
        )
        return model, (torch.randn(2, 3, 64, 64),), "segmentation"
    if group == "video":
        side, frames = (
            _input_side(64, side),
            max(8, min(meta.get("min_temporal_size", 0) for meta in metas)),
        )
        return tvm.get_model(name, weights=None), (torch.randn(1, 3, frames, side, side),), "video"
    if group == "optical_flow":
        model = tvm.get_model(name, weights=None)
        return model, (torch.randn(1, 3, 128, 128), torch.randn(1, 3, 128, 128)), "optical_flow"
    side = _input_side(96, side)
    return tvm.get_model(name, weights=None), (torch.randn(2, 3, side, side),), "classification"


def _shapes(output: Any, detection: bool = False) -> Any:
    """The output's structure and shapes (detections: the structure only, their count depends on the weights)."""
    import torch

    if isinstance(output, torch.Tensor):
        return "tensor" if detection else list(output.shape)
    if isinstance(output, dict):
        return {k: _shapes(v, detection) for k, v in output.items()}
    if isinstance(output, (list, tuple)):
        return [_shapes(v, detection) for v in output]
    return type(output).__name__


def _loss(output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor):
        return output.float().sum() if output.is_floating_point() else 0
    if isinstance(output, dict):
        return sum((_loss(v) for v in output.values()), start=0)
    if isinstance(output, (list, tuple)):
        return sum((_loss(v) for v in output), start=0)
    return 0


def _train_inputs(kind: str, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    import torch

    if kind != "detection":
        return inputs
    images = inputs[0]
    targets = []
    for _ in images:
        box = torch.tensor([[10.0, 12.0, 60.0, 70.0]])
        targets.append(
            {
                "boxes": box,
                "labels": torch.tensor([1]),
                "masks": torch.zeros(1, 96, 96, dtype=torch.uint8),
                "keypoints": torch.tensor([[[20.0, 30.0, 1.0]] * 17]),
            }
        )
    return images, targets


def run_one(spec: str) -> dict[str, Any]:
    import torch

    from antialias.conversion import convert_with_report

    torch.set_num_threads(1)
    start = time.perf_counter()
    result: dict[str, Any] = {"model": spec, "status": "ok"}
    model, inputs, kind = _build(spec)
    result["input"] = _shapes(inputs)
    model.eval()
    with torch.no_grad():
        expected = _shapes(model(*inputs), kind == "detection")
    strided = {
        n
        for n, m in model.named_modules()
        if isinstance(
            m,
            (
                torch.nn.modules.conv._ConvNd,
                torch.nn.modules.pooling._MaxPoolNd,
                torch.nn.modules.pooling._AvgPoolNd,
                torch.nn.modules.pooling._LPPoolNd,
            ),
        )
        and any(
            s > 1
            for s in ((m.stride,) if isinstance(m.stride, int) else (m.stride or m.kernel_size))
        )  # type: ignore[union-attr]
        and not getattr(m, "transposed", False)
    }
    converted, report = convert_with_report(model, example_inputs=inputs)
    result["converted"] = len(report.converted)
    result["left_alone"] = sorted({s.reason for s in report.skipped if s.reason != "stride 1"})
    result["unreported"] = sorted(
        strided - {c.name for c in report.converted} - {s.name for s in report.skipped}
    )
    result["functional"] = [s.layer for s in report.skipped if ":" in s.name]
    result["graph_modules"] = len(report.graph_modules)
    result["ceil_pools"] = sum("ceil_mode" in c.placement for c in report.converted)
    before, after = model.state_dict(), converted.state_dict()
    result["state_kept"] = list(before) == list(after) and all(
        torch.equal(before[k], after[k]) for k in before
    )
    converted.eval()
    with torch.no_grad():
        result["eval_shapes_kept"] = _shapes(converted(*inputs), kind == "detection") == expected
    converted.train()
    _loss(converted(*_train_inputs(kind, inputs))).backward()
    result["trains"] = True
    if not (result["state_kept"] and result["eval_shapes_kept"]) or result["unreported"]:
        result["status"] = "wrong"
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


# ----------------------------------------------------------------------------------------------------
# The sweep


def summary(results: list[dict[str, Any]]) -> str:
    counts = Counter(r["status"] for r in results)
    total = len(results)

    def count(key: str) -> int:
        return sum(1 for r in results if r.get(key) is True)

    ran = [r for r in results if "converted" in r]
    # reasons for layers left alone, by the number of models (sizes in a reason dropped)
    reasons = Counter(
        reason
        for r in ran
        for reason in {re.sub(r" == \(\d+, \d+\)", "", x) for x in r["left_alone"]}
    )
    lines = [
        "| models | convert + state dict kept | eval, same output shapes | forward + backward (train) | every strided layer reported | a layer converted |",
        "|---|---|---|---|---|---|",
        f"| {total} | {count('state_kept')}/{total} | {count('eval_shapes_kept')}/{total} | {count('trains')}/{total} | "
        f"{sum(1 for r in results if r.get('unreported') == [])}/{total} | {sum(1 for r in ran if r['converted'])}/{total} |",
        "",
        f"Status: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}.",
        "",
        "| layers left alone, reason | models |",
        "|---|---|",
        *(f"| {reason} | {n} |" for reason, n in reasons.most_common()),
    ]
    failures = [r for r in results if r["status"] != "ok"]
    if failures:
        lines += ["", "| model | status | error |", "|---|---|---|"]
        lines += [
            f"| {r['model']} | {r['status']} | {str(r.get('error', r.get('unreported', '')))[:140]} |"
            for r in failures
        ]
    return "\n".join(lines)


def _read(path: Path) -> dict[str, dict[str, Any]]:
    """Rows by model (the last row of a model wins)."""
    rows = (
        [json.loads(line) for line in path.read_text().splitlines() if line]
        if path.exists()
        else []
    )
    return {row["model"]: row for row in rows}


def _sweep(pending: list[str], timeout: float, jobs: int) -> Iterator[dict[str, Any]]:
    """Runs each model in its own subprocess; yields their rows as they finish."""
    running: list[tuple[str, subprocess.Popen[str], float]] = []
    # this checkout's antialias, installed or not
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    while pending or running:
        while pending and len(running) < jobs:
            spec = pending.pop(0)
            proc = subprocess.Popen(
                [sys.executable, __file__, "--one", spec],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            running.append((spec, proc, time.monotonic()))
        time.sleep(0.2)
        for item in list(running):
            spec, proc, started = item
            if proc.poll() is None and time.monotonic() - started < timeout:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                yield {"model": spec, "status": "timeout", "error": f"over {timeout:.0f} s"}
            else:
                lines = (proc.stdout.read() if proc.stdout else "").strip().splitlines()
                yield (
                    json.loads(lines[-1])
                    if lines
                    else {"model": spec, "status": "crash", "error": f"exit {proc.returncode}"}
                )
            running.remove(item)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("convert_sweep.jsonl"),
        help="JSON lines, one per model; models already there are not run again",
    )
    parser.add_argument("--models", nargs="*", help="specs source:group:name; None: the whole set")
    parser.add_argument(
        "--models-file",
        type=Path,
        help=f"the model set (JSON); None: {MODELS_FILE.name} beside this script",
    )
    parser.add_argument(
        "--refresh-models", action="store_true", help="recompute --models-file first (minutes)"
    )
    parser.add_argument(
        "--redo",
        nargs="*",
        default=[],
        help="run these again: statuses (error, timeout ...) or specs",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per model")
    parser.add_argument("--jobs", type=int, default=1, help="models run at the same time")
    parser.add_argument(
        "--summary", type=Path, help="print the table of an earlier run's JSON lines and exit"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the subprocess's entry
    args = parser.parse_args(argv)
    if args.one:
        try:
            result = run_one(args.one)
        except Exception as exc:
            result = {
                "model": args.one,
                "status": "error",
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[
                    :400
                ],
            }
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    if args.summary:
        sys.stdout.write(summary(list(_read(args.summary).values())) + "\n")
        return 0
    models_file = args.models_file or MODELS_FILE
    if args.refresh_models:
        write_models_file(models_file)
    models = args.models or all_models(models_file)
    rows = _read(args.output)
    if not args.models:  # the full set: rows of models no longer in it go
        rows = {m: rows[m] for m in models if m in rows}
    pending = [
        m for m in models if m not in rows or m in args.redo or rows[m]["status"] in args.redo
    ]
    args.output.write_text("".join(json.dumps(r) + "\n" for r in rows.values()))
    with args.output.open(
        "a"
    ) as out:  # a redone model's old row stays until the end (if interrupted, the last row wins)
        for row in _sweep(pending, args.timeout, args.jobs):
            rows[row["model"]] = row
            out.write(json.dumps(row) + "\n")
            out.flush()
    order = {m: i for i, m in enumerate(models)}
    ordered = sorted(rows.values(), key=lambda r: order.get(r["model"], len(order)))
    args.output.write_text("".join(json.dumps(r) + "\n" for r in ordered))
    sys.stdout.write(summary([r for r in ordered if r["model"] in order]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
