"""CPU benchmarks of antialias against its peers, printed as ratios measured in one run.

Usage::

    python benchmarks/run.py [--quick] [--output benchmarks/results.json] [--sections layers networks]

Two sections:

- ``layers``: blur-pool forward and forward+backward of ``antialias.layers.BlurPool2d`` against the
  reference (``antialiased_cnns.BlurPool``), timm (``timm.layers.BlurPool2d``), kornia
  (``kornia.filters.BlurPool2D``) and the memory floor; NCHW and channels_last, float32 and bfloat16,
  eager and ``torch.compile``, filter sizes 2..5.
- ``networks``: ResNet-18, ResNet-50, MobileNetV2 and DenseNet-121: the zoo's anti-aliased model
  (``antialias.models.get_model(name, filter_size=4)``) against torchvision's baseline and the
  reference's anti-aliased model; inference and one SGD training step; time, peak memory and FLOPs.

Method (see benchmarks/README.md):

- Times: candidates of one comparison are run in interleaved rounds (each round runs every candidate
  once) after warm-up; the median over rounds is reported, with the spread (min-max over rounds) in the
  JSON. The machine may be shared: compare within a run, through the ratios. glibc's allocator is
  held steady (``steady_allocator``), so a large output costs the same page faults in every round.
- Memory floor: reading the input once and writing the output once at the bandwidth of a plain copy of
  the input (``torch.Tensor.copy_``, same layout and dtype); forward+backward: twice that (the backward
  reads the output gradient and writes the input gradient).
- Peak memory (CPU has no allocator statistics): ``torch.profiler`` with ``profile_memory=True``; the
  running sum of every operator's own allocations (at its start) and frees (at its end), relative to
  the start of the measured call. Gradients are set to None before the training step, so its peak holds
  activations, gradients and temporaries, not weights or optimizer state.
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass (batch 1). It counts
  convolutions and matrix products; our blur-pool is counted in its elementwise formulation (uncounted,
  as the baseline's pooling), the reference's depthwise-convolution blur is counted.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import json
import logging
import math
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger("benchmarks")

# ------------------------------------------------------------------------------------------------
# Timing and memory


def race(
    candidates: dict[str, Callable[[], Any]], rounds: int, warmup: int = 2
) -> dict[str, dict[str, Any]]:
    """Time the candidates in interleaved rounds; return median/min/max seconds (and every round) per name.

    Each round runs every candidate once, starting from a different one (rotation), so no candidate always
    runs right after the same neighbour; ratios are best taken per round (:func:`paired_ratio`), since a
    load change on a shared machine then hits both sides of a ratio.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - start)
    return {
        n: {"median": statistics.median(v), "min": min(v), "max": max(v), "rounds": v}
        for n, v in times.items()
    }


def paired_ratio(times: dict[str, dict[str, Any]], name: str, base: str) -> dict[str, float]:
    """Median and interquartile range over rounds of ``time[name] / time[base]`` measured in the same round."""
    ratios = sorted(
        a / b for a, b in zip(times[name]["rounds"], times[base]["rounds"], strict=True)
    )
    if len(ratios) < 4:
        return {"median": statistics.median(ratios), "q1": ratios[0], "q3": ratios[-1]}
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return {"median": statistics.median(ratios), "q1": q1, "q3": q3}


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated on the CPU during ``fn()`` above what was live when it started."""
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    changes = []
    for event in prof.events():
        delta = event.self_cpu_memory_usage
        if delta > 0:
            changes.append((event.time_range.start, delta))
        elif delta < 0:
            changes.append((event.time_range.end, delta))
    changes.sort()
    current = peak = 0
    for _, delta in changes:
        current += delta
        peak = max(peak, current)
    return peak


def count_flops(model: nn.Module, x: Tensor) -> int:
    """FLOPs of one forward pass, our blur-pool run as its elementwise strided slices (uncounted)."""
    from torch.utils.flop_counter import FlopCounterMode

    from antialias.layers.functional import set_backend

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), set_backend("slices"), counter:
        model(x)
    return int(counter.get_total_flops())


# ------------------------------------------------------------------------------------------------
# Blur-pool layers


def _peers(channels: int, k: int) -> dict[str, Callable[[], nn.Module]]:
    """Constructors of the blur-pool of each library (reflect padding where the library has it)."""
    peers: dict[str, Callable[[], nn.Module]] = {}
    from antialias.layers import BlurPool2d

    peers["ours"] = lambda: BlurPool2d(channels, filter_size=k, stride=2)
    try:
        import antialiased_cnns

        peers["reference"] = lambda: antialiased_cnns.BlurPool(channels, filt_size=k, stride=2)
    except ImportError:
        logger.warning("antialiased_cnns is not installed: no reference column")
    try:
        from timm.layers import BlurPool2d as TimmBlurPool2d

        peers["timm"] = lambda: TimmBlurPool2d(channels, filt_size=k, stride=2)
    except ImportError:
        logger.warning("timm is not installed: no timm column")
    try:
        import kornia

        peers["kornia"] = lambda: kornia.filters.BlurPool2D(kernel_size=k, stride=2)
    except ImportError:
        logger.warning("kornia is not installed: no kornia column")
    return peers


def _forward(module: Callable[[Tensor], Tensor], x: Tensor) -> Callable[[], Any]:
    def run() -> Any:
        with torch.no_grad():
            return module(x)

    return run


def _forward_backward(module: Callable[[Tensor], Tensor], x: Tensor) -> Callable[[], Any]:
    x = x.detach().clone().requires_grad_(True)
    with torch.no_grad():
        out = module(x)
    # A dense upstream gradient in the output's layout, as a network's next layer would send.
    grad = torch.randn_like(out)

    def run() -> None:
        x.grad = None
        module(x).backward(grad)

    return run


def bench_layers(args: argparse.Namespace) -> list[dict[str, Any]]:
    n, c, h, w = args.shape
    formats = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    rows: list[dict[str, Any]] = []
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(n, c, h, w, generator=gen)
    out_numel = n * c * math.ceil(h / 2) * math.ceil(w / 2)
    for fmt_name, fmt in formats.items():
        for dtype_name, dtype in dtypes.items():
            x = base.to(dtype).contiguous(memory_format=fmt)
            buffer = torch.empty_like(x)
            # Bytes of the floor over bytes of the copy: the copy reads and writes the input.
            floor_share = (x.numel() + out_numel) / (2 * x.numel())
            for mode in args.modes:
                for k in args.filters:
                    peers = _peers(c, k)
                    if mode == "compile" and not args.compile_peers:
                        peers = {
                            name: make
                            for name, make in peers.items()
                            if name in ("ours", "reference")
                        }
                    modules: dict[str, Callable[[Tensor], Tensor]] = {}
                    if mode == "compile":
                        torch._dynamo.reset()  # a fresh cache per configuration: no recompile limit
                    for name, make in peers.items():
                        module = make().to(dtype)
                        if mode == "compile":
                            module = torch.compile(
                                module, dynamic=False, fullgraph=(name == "ours")
                            )
                        modules[name] = module
                    for pass_name, wrap in (
                        ("forward", _forward),
                        ("forward+backward", _forward_backward),
                    ):
                        if (
                            mode == "compile"
                            and pass_name == "forward+backward"
                            and k not in args.compile_backward_filters
                        ):
                            continue
                        label = f"{fmt_name} {dtype_name} {mode} k={k} {pass_name}"
                        logger.info("layers: %s", label)
                        runs = {name: wrap(module, x) for name, module in modules.items()}
                        # The copy runs in the same rounds, so the floor sees the same machine load.
                        runs["copy"] = lambda b=buffer, t=x: b.copy_(t)
                        times = race(runs, rounds=args.rounds)
                        copy = times.pop("copy")
                        floor_s = (
                            floor_share
                            * copy["median"]
                            * (2 if pass_name == "forward+backward" else 1)
                        )
                        row = {
                            "format": fmt_name,
                            "dtype": dtype_name,
                            "mode": mode,
                            "filter_size": k,
                            "pass": pass_name,
                            "shape": [n, c, h, w],
                            "floor_s": floor_s,
                            "copy_s": copy,
                            "times": times,
                        }
                        ours = times["ours"]["median"]
                        row["speedup"] = {
                            name: t["median"] / ours for name, t in times.items() if name != "ours"
                        }
                        # per-round ratios: steadier than a ratio of medians when the machine's load drifts
                        row["speedup_paired"] = {
                            name: paired_ratio(times, name, "ours")
                            for name in times
                            if name != "ours"
                        }
                        row["ours_over_floor"] = ours / floor_s
                        rows.append(row)
                        _print_layer_row(row)
    return rows


_LAYER_HEADER = False


def _print_layer_row(row: dict[str, Any]) -> None:
    global _LAYER_HEADER
    if not _LAYER_HEADER:
        print(
            f"\n{'blur-pool (ms, median)':44s} {'ours':>8s} {'ref':>8s} {'timm':>8s} {'kornia':>8s} {'floor':>7s}"
            f" | {'ref/ours [IQR]':>20s} {'timm/ours [IQR]':>21s} {'kornia/ours [IQR]':>23s} {'ours/floor':>10s}"
        )
        _LAYER_HEADER = True
    label = f"{row['format']} {row['dtype']} {row['mode']} k={row['filter_size']} {'fwd' if row['pass'] == 'forward' else 'fwd+bwd'}"
    t = row["times"]

    def ms(name: str) -> str:
        return f"{t[name]['median'] * 1e3:8.2f}" if name in t else f"{'-':>8s}"

    def ratio(name: str, width: int) -> str:
        # the per-round ratio's median, then its interquartile range
        if name not in row["speedup_paired"]:
            return f"{'-':>{width + 12}s}"
        p = row["speedup_paired"][name]
        return f"{p['median']:{width}.2f}x [{p['q1']:.2f}-{p['q3']:.2f}]"

    print(
        f"{label:44s} {ms('ours')} {ms('reference')} {ms('timm')} {ms('kornia')} {row['floor_s'] * 1e3:7.2f}"
        f" | {ratio('reference', 7)} {ratio('timm', 8)} {ratio('kornia', 10)} {row['ours_over_floor']:9.2f}x",
        flush=True,
    )


# ------------------------------------------------------------------------------------------------
# Whole networks


def _models(arch: str, filter_size: int = 4) -> dict[str, Callable[[], nn.Module]]:
    import torchvision

    import antialias.models

    makers: dict[str, Callable[[], nn.Module]] = {
        "torchvision": lambda: getattr(torchvision.models, arch)(),
        "ours": lambda: antialias.models.get_model(arch, filter_size=filter_size),
    }
    try:
        import antialiased_cnns

        makers["reference"] = lambda: getattr(antialiased_cnns, arch)(filter_size=filter_size)
    except ImportError:
        logger.warning("antialiased_cnns is not installed: no reference column")
    return makers


def _train_step(
    model: nn.Module, x: Tensor, target: Tensor
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(prepare, step): ``prepare`` drops the gradients (outside the measured call), ``step`` trains once."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def prepare() -> None:
        optimizer.zero_grad(set_to_none=True)

    def step() -> None:
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        optimizer.step()

    return prepare, step


def bench_networks(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    gen = torch.Generator().manual_seed(0)
    for arch in args.archs:
        for fmt_name in args.network_formats:
            fmt = torch.channels_last if fmt_name == "channels_last" else torch.contiguous_format
            makers = _models(arch)
            models = {name: make().to(memory_format=fmt) for name, make in makers.items()}
            flops = (
                {
                    name: count_flops(
                        m.eval(), torch.randn(1, 3, args.image_size, args.image_size, generator=gen)
                    )
                    for name, m in models.items()
                }
                if fmt_name == "NCHW"
                else {}
            )
            row: dict[str, Any] = {
                "arch": arch,
                "format": fmt_name,
                "batch": args.batch,
                "image_size": args.image_size,
                "train_batch": args.train_batch,
                "flops": flops,
            }
            # Inference
            x = torch.randn(
                args.batch, 3, args.image_size, args.image_size, generator=gen
            ).contiguous(memory_format=fmt)
            for m in models.values():
                m.eval()

            def infer(m: nn.Module, x: Tensor = x) -> Callable[[], Any]:
                def run() -> Any:
                    with torch.inference_mode():
                        return m(x)

                return run

            logger.info("networks: %s %s inference", arch, fmt_name)
            row["inference"] = race(
                {n: infer(m) for n, m in models.items()}, rounds=args.net_rounds, warmup=1
            )
            row["inference_peak_bytes"] = {n: peak_memory(infer(m)) for n, m in models.items()}
            # One training step
            xt = torch.randn(
                args.train_batch, 3, args.image_size, args.image_size, generator=gen
            ).contiguous(memory_format=fmt)
            target = torch.randint(0, 1000, (args.train_batch,), generator=gen)
            steps = {}
            for n, m in models.items():
                m.train()
                steps[n] = _train_step(m, xt, target)

            def timed(prepare: Callable[[], None], step: Callable[[], None]) -> Callable[[], None]:
                def run() -> None:
                    prepare()
                    step()

                return run

            logger.info("networks: %s %s training step", arch, fmt_name)
            row["train_step"] = race(
                {n: timed(*s) for n, s in steps.items()}, rounds=args.net_rounds, warmup=1
            )
            peaks = {}
            for n, (prepare, step) in steps.items():
                prepare()
                peaks[n] = peak_memory(step)
            if fmt_name == "NCHW":
                # The same network with the trivial filter: the stride-1 layers without any blur. Its
                # memory over torchvision's is what the paper's design makes inherent.
                import antialias.models

                k1 = antialias.models.get_model(arch, filter_size=1).train()
                prepare, step = _train_step(k1, xt, target)
                step()
                prepare()
                peaks["ours_filter1"] = peak_memory(step)
                del k1
            row["train_peak_bytes"] = peaks
            rows.append(row)
            _print_network_row(row)
            del models, steps
            gc.collect()
    return rows


def _print_network_row(row: dict[str, Any]) -> None:
    tv = "torchvision"
    label = f"{row['arch']} {row['format']}"
    inf, tr = row["inference"], row["train_step"]
    mem_i, mem_t = row["inference_peak_bytes"], row["train_peak_bytes"]
    print(
        f"\n{label} (inference batch {row['batch']}, training batch {row['train_batch']}, {row['image_size']}px)"
    )
    print(
        f"  {'model':15s} {'infer ms':>9s} {'x tv':>6s} {'train ms':>9s} {'x tv':>6s} {'infer MB':>9s} {'train MB':>9s} {'x tv':>6s} {'GFLOPs':>7s} {'x tv':>6s}"
    )
    for name in ("torchvision", "reference", "ours", "ours_filter1"):
        if name not in mem_t:
            continue
        cells = []
        if name in inf:
            cells.append(
                f"{inf[name]['median'] * 1e3:9.1f} {inf[name]['median'] / inf[tv]['median']:6.3f}"
            )
            cells.append(
                f"{tr[name]['median'] * 1e3:9.1f} {tr[name]['median'] / tr[tv]['median']:6.3f}"
            )
            cells.append(f"{mem_i[name] / 2**20:9.1f}")
        else:
            cells.append(f"{'-':>9s} {'-':>6s} {'-':>9s} {'-':>6s} {'-':>9s}")
        cells.append(f"{mem_t[name] / 2**20:9.1f} {mem_t[name] / mem_t[tv]:6.3f}")
        if name in row["flops"]:
            cells.append(
                f"{row['flops'][name] / 1e9:7.2f} {row['flops'][name] / row['flops'][tv]:6.3f}"
            )
        label_name = {"ours_filter1": "ours (k=1)"}.get(name, name)
        print(f"  {label_name:15s} " + " ".join(cells), flush=True)
    if "reference" in inf:
        print(
            f"  ours vs reference: inference {inf['ours']['median'] / inf['reference']['median']:.3f}x time, "
            f"training {tr['ours']['median'] / tr['reference']['median']:.3f}x time, "
            f"{mem_t['ours'] / mem_t['reference']:.3f}x training peak memory",
            flush=True,
        )


# ------------------------------------------------------------------------------------------------
# Command line


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small shapes, filter 4 only, fewer rounds (about a minute)",
    )
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    parser.add_argument(
        "--sections", nargs="+", choices=["layers", "networks"], default=["layers", "networks"]
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=4,
        default=None,
        metavar=("N", "C", "H", "W"),
        help="blur-pool input shape (default 16 256 56 56; --quick: 4 64 56 56)",
    )
    parser.add_argument(
        "--filters",
        type=int,
        nargs="+",
        default=None,
        help="blur-pool filter sizes (default 2 3 4 5)",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=["eager", "compile"], default=["eager", "compile"]
    )
    parser.add_argument(
        "--compile-peers",
        action="store_true",
        help="also compile timm and kornia (slow to compile)",
    )
    parser.add_argument(
        "--compile-backward-filters",
        type=int,
        nargs="*",
        default=[4],
        help="filter sizes whose compiled forward+backward is measured",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="timing rounds per blur-pool comparison (default 15; --quick: 11)",
    )
    parser.add_argument(
        "--archs", nargs="+", default=["resnet18", "resnet50", "mobilenet_v2", "densenet121"]
    )
    parser.add_argument(
        "--network-formats", nargs="+", choices=["NCHW", "channels_last"], default=["NCHW"]
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="inference batch (default 8; --quick: 2)"
    )
    parser.add_argument(
        "--train-batch", type=int, default=None, help="training batch (default 8; --quick: 2)"
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument(
        "--net-rounds",
        type=int,
        default=None,
        help="timing rounds per network comparison (default 4; --quick: 3)",
    )
    return parser


def _defaults(args: argparse.Namespace) -> None:
    quick = args.quick
    args.shape = args.shape or ([4, 64, 56, 56] if quick else [16, 256, 56, 56])
    args.filters = args.filters or ([4] if quick else [2, 3, 4, 5])
    args.rounds = args.rounds or (11 if quick else 15)
    args.batch = args.batch or (2 if quick else 8)
    args.train_batch = args.train_batch or (2 if quick else 8)
    args.net_rounds = args.net_rounds or (3 if quick else 4)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    _defaults(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    allocator = steady_allocator()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import antialias
    from antialias.layers._cpu import native_bf16

    meta = {
        "command": " ".join(
            ["python", "benchmarks/run.py"] + (argv if argv is not None else sys.argv[1:])
        ),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "antialias": antialias.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(),
        "allocator": allocator,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    print(
        f"torch {meta['torch']}, {meta['threads']} threads, {meta['processor']} "
        f"({meta['cpu_capability']}, native bf16: {meta['native_bf16']})"
    )
    results: dict[str, Any] = {"meta": meta}
    start = time.perf_counter()
    if "layers" in args.sections:
        results["layers"] = bench_layers(args)
    if "networks" in args.sections:
        results["networks"] = bench_networks(args)
    meta["seconds"] = round(time.perf_counter() - start, 1)
    print(f"\n{meta['seconds']:.0f} s")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.output}")
    return 0


def steady_allocator() -> str:
    """Fix glibc's thresholds for returning memory to the system, so that every candidate's large
    tensors come from the same heap in every round.

    By default glibc raises its mmap threshold to the size of the last large block freed, up to 32
    MiB: whether a 10 MiB output is served from the heap or from fresh pages (a page fault per 4
    KiB, up to 3x the time of a matrix product) then depends on what the previous candidate freed.
    Setting ``M_MMAP_THRESHOLD`` (32 MiB) and ``M_TRIM_THRESHOLD`` (1 GiB) ends that; the same
    effect as the environment variables ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``.
    Returns what was set, or why nothing was (not glibc).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "default (not glibc)"
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    if mallopt(m_mmap_threshold, 32 << 20) != 1 or mallopt(m_trim_threshold, 1 << 30) != 1:
        return "default (mallopt refused)"
    return "glibc, mmap threshold 32 MiB, trim threshold 1 GiB"


def cpu_name() -> str:
    """The CPU's model name, with its family and model numbers where /proc/cpuinfo has them
    (virtual machines often hide the name)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("model name", "cpu family", "model") and key not in fields:
                fields[key] = value
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{fields['model name']} (family {fields['cpu family']}, model {fields['model']})"
    return fields["model name"]


if __name__ == "__main__":
    sys.exit(main())
