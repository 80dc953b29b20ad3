"""GPU benchmark of the blur layers and the anti-aliased networks, one command, JSON out (issue 12).

Usage::

    python benchmarks/gpu.py --output gpu.json                     # one GPU, about 5 minutes
    python benchmarks/gpu.py --device cpu --quick                  # smoke check on a CPU (seconds)

Two tables, side by side in one run:

- ``layers``: blur-pool (filter 4, stride 2, reflect where the library has it) forward and forward+backward
  for ours per backend (``triton``: the fused kernels; ``slices``: the strided formulation; see
  ``antialias.layers.set_backend``), the reference ``antialiased_cnns.BlurPool``, ``timm.layers.BlurPool2d``
  and ``kornia.filters.BlurPool2D`` when importable, and the copy floor (``x.clone()``: one read, one
  write); NCHW and channels_last, float32 and bfloat16; eager, and ``torch.compile`` of ours and the
  reference (``--compile-layers``).
- ``networks``: ResNet-18/50, MobileNetV2, DenseNet-121 at 224 px, channels_last, bfloat16 autocast:
  torchvision's model, the reference's (when importable) and ours per backend; inference img/s, training
  img/s (SGD step), peak training memory (CUDA only); eager and compiled (``--compile-archs``).

Method: CUDA-event timings, median over ``--iters`` after warm-up (CPU: ``time.perf_counter``); every
candidate is timed in the same process, so ratios are comparable; absolute times are not asserted
anywhere. Missing peers drop their column; a failing candidate records its error and the run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger("benchmarks.gpu")

ARCH_BATCH = {"resnet50": 128, "resnet18": 256, "mobilenet_v2": 128, "densenet121": 64}


# ------------------------------------------------------------------------------------------------
# timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int) -> dict[str, float]:
    """Median, min and max milliseconds of ``fn()`` over ``iters`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return {
        "median_ms": round(statistics.median(times), 4),
        "min_ms": round(min(times), 4),
        "max_ms": round(max(times), 4),
    }


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a failing candidate is a result, not the end of the run
        logger.debug(traceback.format_exc())
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


# ------------------------------------------------------------------------------------------------
# layers


def _backends(device: torch.device) -> list[str]:
    from antialias.layers._triton import available

    if device.type == "cuda":
        return ["triton", "slices"] if available() else ["slices"]
    return ["cpu", "slices"]


class _WithBackend(nn.Module):
    """A layer whose forward runs under one ``set_backend`` (so torch.compile sees the same choice)."""

    def __init__(self, layer: nn.Module, backend: str) -> None:
        super().__init__()
        self.layer = layer
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from antialias.layers import functional as AF

        with AF.set_backend(self.backend):
            return self.layer(x)


def _layer_candidates(channels: int, device: torch.device) -> dict[str, Callable[[], nn.Module]]:
    from antialias.layers import BlurPool2d

    out: dict[str, Callable[[], nn.Module]] = {}
    for backend in _backends(device):
        out[f"ours[{backend}]"] = lambda b=backend: _WithBackend(
            BlurPool2d(channels, filter_size=4), b
        )
    with contextlib.suppress(ImportError):
        import antialiased_cnns

        out["reference"] = lambda: antialiased_cnns.BlurPool(channels, filt_size=4)
    with contextlib.suppress(ImportError):
        import timm.layers

        out["timm"] = lambda: timm.layers.BlurPool2d(channels, filt_size=4)
    with contextlib.suppress(ImportError):
        import kornia.filters

        out["kornia"] = lambda: kornia.filters.BlurPool2D(4)
    return out


def bench_layers(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for shape in args.shapes:
        n, c, h, w = shape
        for fmt_name, fmt in (
            ("NCHW", torch.contiguous_format),
            ("channels_last", torch.channels_last),
        ):
            for dtype in args.dtypes:
                x = torch.randn(n, c, h, w, device=device, dtype=dtype).contiguous(
                    memory_format=fmt
                )
                row: dict[str, Any] = {
                    "shape": shape,
                    "format": fmt_name,
                    "dtype": str(dtype).replace("torch.", ""),
                }
                row["floor"] = bench(lambda x=x: x.clone(), device, args.warmup, args.iters)
                for i, (name, make) in enumerate(_layer_candidates(c, device).items()):
                    modes = [("eager", False)]
                    if args.compile_layers and (i == 0 or name == "reference"):
                        modes.append(
                            ("compiled", True)
                        )  # ours: compile traces one form whatever the backend
                    for mode, compiled in modes:
                        row[f"{name}/{mode}"] = _guard(
                            lambda make=make, compiled=compiled, x=x, dtype=dtype: _time_layer(
                                make().to(device, dtype), x, compiled, device, args
                            )
                        )
                rows.append(row)
                logger.info(json.dumps(row))
    return rows


def _time_layer(
    layer: nn.Module,
    x: torch.Tensor,
    compiled: bool,
    device: torch.device,
    args: argparse.Namespace,
) -> dict[str, Any]:
    if compiled and isinstance(layer, _WithBackend):
        layer = layer.layer
    fn: Callable[[torch.Tensor], torch.Tensor] = torch.compile(layer) if compiled else layer
    out: dict[str, Any] = {"fwd": bench(lambda: fn(x), device, args.warmup, args.iters)}
    xg = x.detach().clone().requires_grad_(True)
    upstream = torch.randn_like(fn(xg))

    def fwd_bwd() -> None:
        xg.grad = None
        fn(xg).backward(upstream)

    out["fwd_bwd"] = bench(fwd_bwd, device, args.warmup, args.iters)
    return out


# ------------------------------------------------------------------------------------------------
# networks


def _net_candidates(arch: str, device: torch.device) -> dict[str, Callable[[], nn.Module]]:
    import torchvision

    from antialias.models import get_model

    out: dict[str, Callable[[], nn.Module]] = {
        "torchvision": lambda: getattr(torchvision.models, arch)()
    }
    with contextlib.suppress(ImportError):
        import antialiased_cnns

        out["reference"] = lambda: getattr(antialiased_cnns, arch)(filter_size=4)
    for backend in _backends(device):
        out[f"ours[{backend}]"] = lambda b=backend: _WithBackend(get_model(arch, filter_size=4), b)
    return out


def _time_network(
    model: nn.Module,
    batch: int,
    size: int,
    compiled: bool,
    device: torch.device,
    args: argparse.Namespace,
) -> dict[str, Any]:
    if compiled and isinstance(model, _WithBackend):
        model = model.layer  # compile traces the same (slices) form whatever the backend
    model = model.to(device).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    target = torch.randint(0, 1000, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    fn: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model) if compiled else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def infer() -> None:
        with torch.no_grad(), autocast:
            fn(x)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(fn(x), target)
        loss.backward()
        opt.step()

    model.eval()
    t_inf = bench(infer, device, args.net_warmup, args.net_iters)
    model.train()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t_train = bench(step, device, args.net_warmup, args.net_iters)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "infer_img_s": round(batch / t_inf["median_ms"] * 1e3, 1),
        "train_img_s": round(batch / t_train["median_ms"] * 1e3, 1),
        "train_peak_GiB": None if peak is None else round(peak, 3),
        "infer": t_inf,
        "train": t_train,
    }


def bench_networks(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for arch in args.archs:
        batch = args.batch or ARCH_BATCH.get(arch, 64)
        row: dict[str, Any] = {"arch": arch, "batch": batch, "size": args.image_size}
        for name, make in _net_candidates(arch, device).items():
            compile_it = arch in args.compile_archs and not (
                name.startswith("ours[") and not name.endswith("[slices]")
            )
            modes = [("eager", False)] + ([("compiled", True)] if compile_it else [])
            for mode, compiled in modes:
                torch.manual_seed(0)
                row[f"{name}/{mode}"] = _guard(
                    lambda make=make, compiled=compiled, batch=batch: _time_network(
                        make(), batch, args.image_size, compiled, device, args
                    )
                )
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        base = row.get("torchvision/eager", {})
        if "train_img_s" in base:
            row["train_ratio_to_torchvision"] = {
                k: round(v["train_img_s"] / base["train_img_s"], 3)
                for k, v in row.items()
                if isinstance(v, dict) and "train_img_s" in v
            }
        rows.append(row)
        logger.info(json.dumps(row))
    return rows


# ------------------------------------------------------------------------------------------------
# command line


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda or cpu")
    parser.add_argument(
        "--quick", action="store_true", help="tiny shapes and iterations (a smoke check)"
    )
    parser.add_argument(
        "--sections", nargs="+", default=["layers", "networks"], choices=["layers", "networks"]
    )
    parser.add_argument(
        "--shapes",
        type=lambda s: [int(v) for v in s.split("x")],
        nargs="+",
        default=None,
        help="blur-pool inputs NxCxHxW (default 64x256x56x56 32x64x224x224)",
    )
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--compile-layers", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--archs", nargs="+", default=list(ARCH_BATCH))
    parser.add_argument(
        "--compile-archs",
        nargs="*",
        default=["resnet50"],
        help="networks also timed under torch.compile (compiling is the slow part)",
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="network batch (default per arch: 256/128/128/64)"
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--net-warmup", type=int, default=3)
    parser.add_argument("--net-iters", type=int, default=10)
    parser.add_argument("--output", default=None, help="write the JSON here (default: stdout)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "--device cuda: no CUDA device here (use --device cpu --quick for a smoke check)"
        )
    if args.quick:
        args.shapes = args.shapes or [[2, 8, 16, 16]]
        args.archs = args.archs if args.archs != list(ARCH_BATCH) else ["resnet18"]
        args.batch = args.batch or 2
        args.image_size = 64 if args.image_size == 224 else args.image_size
        args.warmup, args.iters, args.net_warmup, args.net_iters = 1, 2, 1, 1
        args.compile_layers = False  # compiling dominates a smoke check
        args.compile_archs = (
            [a for a in args.compile_archs if a in args.archs]
            if args.compile_archs != ["resnet50"]
            else []
        )
    args.shapes = args.shapes or [[64, 256, 56, 56], [32, 64, 224, 224]]
    args.dtypes = [getattr(torch, d) for d in args.dtypes]
    started = time.time()
    result: dict[str, Any] = {
        "args": {
            k: (
                v
                if not isinstance(v, list) or not v or not isinstance(v[0], torch.dtype)
                else [str(d) for d in v]
            )
            for k, v in vars(args).items()
        },
        "env": {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        },
    }
    with contextlib.suppress(ImportError):
        import triton

        result["env"]["triton"] = triton.__version__
    if "layers" in args.sections:
        result["layers"] = bench_layers(args, device)
    if "networks" in args.sections:
        result["networks"] = bench_networks(args, device)
    result["seconds"] = round(time.time() - started, 1)
    text = json.dumps(result, indent=1)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
