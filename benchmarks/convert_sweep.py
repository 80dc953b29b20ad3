"""convert() on every torchvision model and the smallest model of each timm family (issue 15).

Each model runs in its own subprocess with a time limit, random weights and a small input:

1. the original's output (evaluation mode);
2. ``convert_with_report(model, example_inputs=...)``;
3. the state dict keeps its keys and values; the report names every strided convolution and pool
   (converted, or left alone with a reason);
4. the converted model runs in evaluation mode with the original's output shapes, and forward + backward
   in training mode.

One JSON line per model goes to ``--output``; a Markdown summary table is printed at the end (and with
``--summary FILE`` only the table is printed, from an earlier run). Run it on an idle machine, e.g.::

    nice -n 19 python benchmarks/convert_sweep.py --output benchmarks/convert_sweep.jsonl --jobs 1
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

TORCHVISION_GROUPS = ("", "quantization", "detection", "segmentation", "video", "optical_flow")
# Prefixes that name a variant, not an architecture: the family is then the next word (tf_efficientnet).
_VARIANT_PREFIXES = {"tf", "legacy", "dm", "eca", "ecaresnet", "gc", "seresnet", "skresnet", "nf", "test", "vit", "samvit"}


_LARGE = re.compile(r"giant|huge|large|xlarge|xxl|_g_|_h_|_l_|big|_e_|gigantic|enormous|_b[4-8]|_l\d|_m_|medium|base|_b_")


_SMALL_WORDS = ("atto", "femto", "pico", "nano", "xxs", "tiny", "xs", "mini", "small", "s")


def _size_hint(name: str) -> tuple[int, int, int]:
    """Sorts the names that say small first: a size word, then the smallest number in the name."""
    words = re.split(r"[_.]", name)
    rank = min((i for i, w in enumerate(_SMALL_WORDS) for word in words if word.startswith(w)), default=len(_SMALL_WORDS))
    numbers = [int(n) for n in re.findall(r"\d+", name)]
    return rank, min(numbers, default=999), len(name)


def timm_families() -> dict[str, str]:
    """The smallest model (fewest parameters, counted on the meta device) of each timm family.

    Names that say large (``large``, ``huge``, ``base`` ...) are counted only when a family has no other,
    and of the rest the three whose names say smallest (:func:`_size_hint`).
    """
    import timm
    import torch

    families: dict[str, list[str]] = {}
    for name in timm.list_models():
        if name.startswith("test_"):
            continue
        words = name.split("_")
        family = words[0] if words[0] not in _VARIANT_PREFIXES or len(words) == 1 else "_".join(words[:2])
        families.setdefault(re.sub(r"\d.*$", "", family) or family, []).append(name)
    chosen = {}
    for family, names in sorted(families.items()):
        small = sorted([n for n in names if not _LARGE.search(n)] or names, key=_size_hint)[:3]
        best: tuple[int, str] | None = None
        for name in small:
            try:
                with torch.device("meta"):
                    count = sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters())
            except Exception:  # a model that cannot even be built on the meta device: sweep it anyway
                count = 1 << 62
            if best is None or count < best[0]:
                best = (count, name)
        assert best is not None
        chosen[family] = best[1]
    return chosen


def torchvision_models() -> list[str]:
    import torchvision.models as tvm

    names = []
    for group in TORCHVISION_GROUPS:
        module = getattr(tvm, group) if group else tvm
        names += [f"torchvision:{group}:{name}" for name in tvm.list_models(module=module)]
    return names


def all_models() -> list[str]:
    return torchvision_models() + [f"timm::{name}" for name in timm_families().values()]


# ----------------------------------------------------------------------------------------------------
# One model (runs in the subprocess)


def _build(spec: str) -> tuple[Any, Any, str]:
    """(model, example inputs, kind) with random weights."""
    import torch
    import torchvision.models as tvm

    torch.manual_seed(0)
    source, group, name = spec.split(":")
    if source == "timm":
        import timm

        model = timm.create_model(name, pretrained=False)
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        size = cfg.get("input_size", (3, 224, 224))
        fixed = cfg.get("fixed_input_size", False)
        side = size[-1] if fixed else max(64, min(size[-1], 96))
        return model, (torch.randn(2, size[0], side, side),), "classification"
    module = getattr(tvm, group) if group else tvm
    if group == "quantization":
        builder = getattr(module, name.removeprefix("quantized_"))  # list_models names them quantized_*
        side = 299 if "inception" in name else 96
        return builder(weights=None, quantize=False), (torch.randn(2, 3, side, side),), "classification"
    if group == "detection":
        sizes = {} if name.startswith("ssd") else {"min_size": 96, "max_size": 96}  # SSD: its own fixed size
        model = tvm.get_model(name, weights=None, weights_backbone=None, num_classes=3, **sizes)
        return model, ([torch.rand(3, 96, 96), torch.rand(3, 96, 96)],), "detection"
    if group == "segmentation":
        model = tvm.get_model(name, weights=None, weights_backbone=None, num_classes=3, aux_loss=False)
        return model, (torch.randn(2, 3, 64, 64),), "segmentation"
    if group == "video":
        side = 112 if name.startswith(("mvit", "s3d", "swin3d")) else 64
        frames = 16 if name.startswith("mvit") else 8
        return tvm.get_model(name, weights=None), (torch.randn(1, 3, frames, side, side),), "video"
    if group == "optical_flow":
        model = tvm.get_model(name, weights=None)
        return model, (torch.randn(1, 3, 128, 128), torch.randn(1, 3, 128, 128)), "optical_flow"
    side = 299 if name == "inception_v3" else (224 if name.startswith(("vit", "swin", "maxvit")) else 96)
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
        targets.append({
            "boxes": box, "labels": torch.tensor([1]), "masks": torch.zeros(1, 96, 96, dtype=torch.uint8),
            "keypoints": torch.tensor([[[20.0, 30.0, 1.0]] * 17]),
        })
    return images, targets


def run_one(spec: str) -> dict[str, Any]:
    import torch

    from antialias.convert import convert_with_report

    torch.set_num_threads(1)
    start = time.perf_counter()
    result: dict[str, Any] = {"model": spec, "status": "ok"}
    model, inputs, kind = _build(spec)
    model.eval()
    with torch.no_grad():
        expected = _shapes(model(*inputs), kind == "detection")
    strided = {
        n for n, m in model.named_modules()
        if isinstance(m, (torch.nn.modules.conv._ConvNd, torch.nn.modules.pooling._MaxPoolNd,
                          torch.nn.modules.pooling._AvgPoolNd, torch.nn.modules.pooling._LPPoolNd))
        and any(s > 1 for s in ((m.stride,) if isinstance(m.stride, int) else (m.stride or m.kernel_size)))  # type: ignore[union-attr]
        and not getattr(m, "transposed", False)
    }
    converted, report = convert_with_report(model, example_inputs=inputs)
    result["converted"] = len(report.converted)
    result["left_alone"] = sorted({s.reason for s in report.skipped if s.reason != "stride 1"})
    result["unreported"] = sorted(strided - {c.name for c in report.converted} - {s.name for s in report.skipped})
    result["functional"] = [s.layer for s in report.skipped if ":" in s.name]
    result["graph_modules"] = len(report.graph_modules)
    result["ceil_pools"] = sum("ceil_mode" in c.placement for c in report.converted)
    before, after = model.state_dict(), converted.state_dict()
    result["state_kept"] = list(before) == list(after) and all(torch.equal(before[k], after[k]) for k in before)
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

    lines = [
        "| models | convert + state dict kept | eval, same output shapes | forward + backward (train) | every strided layer reported |",
        "|---|---|---|---|---|",
        f"| {total} | {count('state_kept')}/{total} | {count('eval_shapes_kept')}/{total} | {count('trains')}/{total} | "
        f"{sum(1 for r in results if r.get('unreported') == [])}/{total} |",
        "",
        f"Status: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}.",
    ]
    failures = [r for r in results if r["status"] != "ok"]
    if failures:
        lines += ["", "| model | status | error |", "|---|---|---|"]
        lines += [f"| {r['model']} | {r['status']} | {str(r.get('error', r.get('unreported', '')))[:140]} |" for r in failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("convert_sweep.jsonl"), help="JSON lines, one per model")
    parser.add_argument("--models", nargs="*", help="specs source:group:name (default: all)")
    parser.add_argument("--torchvision-only", action="store_true", help="only torchvision's models")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per model")
    parser.add_argument("--jobs", type=int, default=1, help="models run at the same time")
    parser.add_argument("--summary", type=Path, help="print the table of an earlier run's JSON lines and exit")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the subprocess's entry
    args = parser.parse_args(argv)
    if args.one:
        try:
            result = run_one(args.one)
        except Exception as exc:
            result = {"model": args.one, "status": "error", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]}
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    if args.summary:
        sys.stdout.write(summary([json.loads(line) for line in args.summary.read_text().splitlines() if line]) + "\n")
        return 0
    models = args.models or (torchvision_models() if args.torchvision_only else all_models())
    done = set()
    if args.output.exists():
        done = {json.loads(line)["model"] for line in args.output.read_text().splitlines() if line}
    pending = [m for m in models if m not in done]
    running: list[tuple[str, subprocess.Popen[str], float]] = []
    with args.output.open("a") as out:
        while pending or running:
            while pending and len(running) < args.jobs:
                spec = pending.pop(0)
                proc = subprocess.Popen([sys.executable, __file__, "--one", spec], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
                running.append((spec, proc, time.monotonic()))
            time.sleep(0.2)
            for item in list(running):
                spec, proc, started = item
                if proc.poll() is None and time.monotonic() - started < args.timeout:
                    continue
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    line = json.dumps({"model": spec, "status": "timeout", "error": f"over {args.timeout:.0f} s"})
                else:
                    lines = (proc.stdout.read() if proc.stdout else "").strip().splitlines()
                    line = lines[-1] if lines else json.dumps({"model": spec, "status": "crash", "error": f"exit {proc.returncode}"})
                out.write(line + "\n")
                out.flush()
                running.remove(item)
    results = [json.loads(line) for line in args.output.read_text().splitlines() if line]
    sys.stdout.write(summary([r for r in results if r["model"] in set(models)]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
