"""GPU benchmark of the blur layers and the anti-aliased networks, one command, JSON out.

Usage::

    python benchmarks/gpu.py --output gpu.json                     # one GPU, about 5 minutes
    python benchmarks/gpu.py --device cpu --quick                  # smoke check on a CPU (seconds)
    python benchmarks/gpu.py --compile-cost --output aot.json      # no GPU needed (about 1 minute)

``--compile-cost`` records the Triton specialisations (one compiled binary each) that one
bf16-autocast, channels_last training step of the zoo's ResNet-50, MobileNetV2 and DenseNet-121
launches, on the CPU, and compiles each ahead of time for sm_80 and sm_90 with Triton's bundled
ptxas: per model, the count and the sum of the compile times, what the first step on a GPU spends
compiling.

Two tables, side by side in one run:

- ``layers``: blur-pool (filter 4, stride 2, reflect where the library has it) forward and
  forward+backward for ours per backend (``triton``: the fused kernels; ``slices``: the strided
  formulation; see ``antialias.layers.set_backend``), the reference ``antialiased_cnns.BlurPool``,
  ``timm.layers.BlurPool2d`` and ``kornia.filters.BlurPool2D`` when importable, and the copy floor
  (``x.clone()``: one read, one write); NCHW and channels_last, float32 and bfloat16; eager, and
  ``torch.compile`` of ours and the reference (``--compile-layers``).
- ``networks``: ResNet-18/50, MobileNetV2, DenseNet-121 at 224 px, channels_last, bfloat16 autocast:
  torchvision's model, the reference's (when importable) and ours per backend; inference img/s,
  training img/s (SGD step), peak training memory (CUDA only), the first step's seconds (compiles
  included); eager and compiled (``--compile-archs``).

Method: CUDA-event timings, median over ``--iters`` after warm-up (CPU: ``time.perf_counter``);
every candidate is timed in the same process, so ratios are comparable; absolute times are not
asserted anywhere. Missing peers drop their column; a failing candidate records its error and the
run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

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
    """A layer whose forward runs under one ``set_backend`` (torch.compile sees the same choice)."""

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


def bench_layers(
    args: argparse.Namespace,
    device: torch.device,
    rows: list[dict[str, Any]],
    emit: Callable[[], None],
) -> list[dict[str, Any]]:
    """Append one row per shape, format and dtype to ``rows``, calling ``emit`` after each."""
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
                emit()
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

    # The first training step, compiles included (Triton's, from a cold cache when the process is
    # the first to launch these kernels: gpu_check.sh gives the networks a fresh TRITON_CACHE_DIR).
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    step()
    _sync(device)
    first_step_s = time.perf_counter() - t0
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
        "first_step_s": round(first_step_s, 2),
        "infer": t_inf,
        "train": t_train,
    }


def bench_networks(
    args: argparse.Namespace,
    device: torch.device,
    rows: list[dict[str, Any]],
    emit: Callable[[], None],
) -> list[dict[str, Any]]:
    """Append one row per architecture to ``rows``, calling ``emit`` after each candidate."""
    for arch in args.archs:
        batch = args.batch or ARCH_BATCH.get(arch, 64)
        row: dict[str, Any] = {"arch": arch, "batch": batch, "size": args.image_size}
        rows.append(row)
        for name, make in _net_candidates(arch, device).items():
            compile_it = arch in args.compile_archs and not (
                name.startswith("ours[") and not name.endswith("[slices]")
            )
            modes = [("eager", False)] + ([("compiled", True)] if compile_it else [])
            for mode, compiled in modes:
                if mode not in args.net_modes:
                    continue
                torch.manual_seed(0)
                row[f"{name}/{mode}"] = _guard(
                    lambda make=make, compiled=compiled, batch=batch: _time_network(
                        make(), batch, args.image_size, compiled, device, args
                    )
                )
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                _train_ratios(row)
                emit()
        logger.info(json.dumps(row))
    return rows


def _train_ratios(row: dict[str, Any]) -> None:
    """Training throughput over torchvision's: eager's, and the same mode's (eager, compiled)."""
    timed = {k: v for k, v in row.items() if isinstance(v, dict) and "train_img_s" in v}
    base = timed.get("torchvision/eager")
    if base is not None:
        row["train_ratio_to_torchvision"] = {
            k: round(v["train_img_s"] / base["train_img_s"], 3) for k, v in timed.items()
        }
    same: dict[str, float] = {}
    for k, v in timed.items():
        ref = timed.get("torchvision/" + k.rsplit("/", 1)[1])
        if ref is not None:
            same[k] = round(v["train_img_s"] / ref["train_img_s"], 3)
    if same:
        row["train_ratio_to_torchvision_same_mode"] = same


# ------------------------------------------------------------------------------------------------
# ahead-of-time compile cost (no GPU needed)
#
# A real launch compiles one binary per distinct (kernel, argument types, constexprs, alignment
# attributes). The recorder replaces the kernel's launcher: each launch is specialised with
# Triton's own binder for a CUDA target (the cache key a GPU launch computes) and its outputs are
# computed with torch on the CPU, so a training step on CPU tensors runs to the end. Triton's
# launcher only sees tensors, ints and constexprs, none of which depend on the device; the block
# size is the GPU's because the launcher runs as on a GPU (only the dispatch is told that Triton
# interprets here).

AOT_KERNELS = ("separable_kernel",)
AOT_TARGETS = {"sm_80": 80, "sm_90": 90}
AOT_ARCHS = ("resnet50", "mobilenet_v2", "densenet121")


class Specialisation(NamedTuple):
    """One binary a GPU launch compiles: the launch's Triton signature, constexprs, attributes."""

    kernel: str
    signature: tuple[tuple[str, str], ...]
    constexprs: tuple[tuple[tuple[int, ...], Any], ...]
    attrs: tuple[tuple[tuple[int, ...], tuple[tuple[str, int], ...]], ...]
    options: tuple[tuple[str, Any], ...]

    def describe(self) -> dict[str, Any]:
        names = [name for name, _ in self.signature]
        return {
            "kernel": self.kernel,
            "types": {n: t for n, t in self.signature if t != "constexpr"},
            "constexprs": {names[path[0]]: value for path, value in self.constexprs},
            "divisible_by_16": [names[path[0]] for path, a in self.attrs if a],
        }


def _cpu_table_gather(
    v: torch.Tensor, tables: list[torch.Tensor], acc: torch.dtype
) -> torch.Tensor:
    """``sum_r w[o, r] v[idx[o, r]]`` along the last three axes of a 5D tensor (``idx < 0``: 0)."""
    v = v.to(acc)
    for axis, (idx, wt) in zip(
        (2, 3, 4), zip(tables[0::2], tables[1::2], strict=True), strict=True
    ):
        idx, wt = idx.long(), wt.to(acc)
        used = idx >= 0
        picked = v.index_select(axis, idx.clamp(min=0).flatten())
        shape = list(v.shape)
        shape[axis : axis + 1] = list(idx.shape)
        picked = picked.reshape(shape)
        weight = (wt * used).reshape([idx.size(0) if a == axis else 1 for a in range(5)] + [-1])
        v = (picked.movedim(axis + 1, -1) * weight).sum(-1)
    return v


def _as5d(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(list(t.shape[:2]) + [1] * (5 - t.dim()) + list(t.shape[2:]))


def _cpu_launch(name: str, a: dict[str, Any]) -> None:
    """What the kernel ``name`` writes into its output, computed with torch (any device)."""
    if name == "separable_kernel":
        acc = torch.float64 if a["ACC_F64"] else torch.float32
        tables = [
            a[k] for k in ("idx_d_ptr", "w_d_ptr", "idx_h_ptr", "w_h_ptr", "idx_w_ptr", "w_w_ptr")
        ]
        a["y_ptr"].copy_(
            _cpu_table_gather(_as5d(a["x_ptr"]), tables, acc).reshape(a["y_ptr"].shape)
        )
    else:
        raise ValueError(f"no CPU twin for kernel {name!r}, expected one of {AOT_KERNELS}")


class _Recorder:
    """Replaces a ``@triton.jit`` kernel: ``kernel[grid](*args, **constexprs)`` records, computes.

    With ``backend=None`` it only computes (a kernel under Triton's interpreter has no binder).
    """

    def __init__(self, name: str, fn: Any, backend: Any, seen: list[Specialisation]) -> None:
        self.name, self.fn, self.backend, self.seen = name, fn, backend, seen
        self.params = inspect.signature(fn.fn)
        self.binder = None
        if backend is not None:
            from triton.runtime.jit import create_function_from_signature

            self.binder = create_function_from_signature(fn.signature, fn.params, backend)

    def __getitem__(self, grid: Any) -> Callable[..., None]:
        def launch(*args: Any, **kwargs: Any) -> None:
            if self.binder is not None:
                self.seen.append(self._specialise(args, kwargs))
            named = {k: v for k, v in kwargs.items() if k in self.params.parameters}  # no num_warps
            _cpu_launch(self.name, dict(self.params.bind(*args, **named).arguments))

        return launch

    def _specialise(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Specialisation:
        assert self.binder is not None
        bound, specialization, options = self.binder(*args, **kwargs)
        _, signature, constexprs, attrs = self.fn._pack_args(
            self.backend, dict(kwargs), bound, specialization, options
        )
        return Specialisation(
            kernel=self.name,
            signature=tuple(signature.items()),
            constexprs=tuple(sorted(constexprs.items())),
            attrs=tuple(sorted((k, tuple(tuple(p) for p in v)) for k, v in attrs.items())),
            options=tuple(sorted(options.items())),
        )


@contextlib.contextmanager
def record_launches(record: bool = True) -> Iterator[list[Specialisation]]:
    """Run the Triton backend on CPU tensors, each launch computed by a torch twin of its kernel.

    With ``record``, every launch is also specialised as a CUDA launch would be (the kernels must be
    compiled ones: ``TRITON_INTERPRET`` unset when Triton was imported).
    """
    from antialias.layers import _triton, set_backend
    from antialias.layers._triton import kernels

    seen: list[Specialisation] = []
    backend = None
    if record:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import make_backend

        backend = make_backend(GPUTarget("cuda", 90, 32))
    saved = {name: getattr(kernels, name) for name in AOT_KERNELS}
    really = _triton.interpreting

    def interpreting() -> bool:
        # True for the dispatch (so that CPU tensors reach the launcher), the truth for the launcher
        # itself (so that it sizes blocks as it does on a GPU), whichever way it asks.
        caller = sys._getframe(1).f_globals.get("__name__", "")
        return really() or not caller.startswith(_triton.__name__)

    try:
        for name, fn in saved.items():
            setattr(kernels, name, _Recorder(name, fn, backend, seen))
        _triton.interpreting = interpreting
        with set_backend("triton"):
            yield seen
    finally:
        for name, fn in saved.items():
            setattr(kernels, name, fn)
        _triton.interpreting = really


def training_step_specialisations(
    arch: str, batch: int, size: int, *, seed: int = 0
) -> list[Specialisation]:
    """The distinct launches of one bf16-autocast, channels_last SGD step of the zoo's ``arch``.

    A batch that is a multiple of 16 gives the alignment attributes of any such batch (128 too).
    """
    from antialias.models import get_model

    torch.manual_seed(seed)
    model = get_model(arch).to(memory_format=torch.channels_last).train()
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 1000, (batch,))
    with record_launches() as seen:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), target)
        loss.backward()
    return list(dict.fromkeys(seen))


def compile_specialisation(spec: Specialisation, arch: int) -> dict[str, Any]:
    """Compile ``spec`` to a cubin for ``sm_<arch>`` with Triton's bundled ptxas, cache bypassed."""
    import tempfile

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend

    from antialias.layers._triton import kernels

    fn = getattr(kernels, spec.kernel)
    target = GPUTarget("cuda", arch, 32)
    options = make_backend(target).parse_options(dict(spec.options))
    src = ASTSource(
        fn=fn,
        signature=dict(spec.signature),
        constexprs=dict(spec.constexprs),
        attrs={k: [list(p) for p in v] for k, v in spec.attrs},
    )
    with tempfile.TemporaryDirectory() as cache, triton.knobs.cache.scope():
        triton.knobs.cache.dir = cache
        t0 = time.perf_counter()
        compiled = triton.compile(src, target=target, options=options.__dict__)
        seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "cubin_bytes": len(compiled.asm["cubin"])}


def _from_compile_hook(kernel: str, compile: dict[str, Any]) -> Specialisation:
    """The specialisation a Triton ``jit_cache_hook`` is called with (``compile``: its argument)."""
    attrs = compile["configs"][0]
    return Specialisation(
        kernel=kernel,
        signature=tuple(compile["signature"].items()),
        constexprs=tuple(sorted(compile["constants"].items())),
        attrs=tuple(sorted((k, tuple(tuple(p) for p in v)) for k, v in attrs.items())),
        options=(),
    )


def compare_specialisations(
    recorded: list[Specialisation], launched: list[Specialisation]
) -> dict[str, Any]:
    """Whether the CPU recording names the binaries a CUDA step compiled, and the differences."""
    rec = {json.dumps(s.describe(), sort_keys=True) for s in recorded}
    gpu = {json.dumps(s.describe(), sort_keys=True) for s in launched}
    return {
        "count": len(gpu),
        "same_as_recorded": rec == gpu,
        "only_on_cuda": [json.loads(k) for k in sorted(gpu - rec)],
        "only_recorded": [json.loads(k) for k in sorted(rec - gpu)],
    }


def cuda_step_specialisations(arch: str, batch: int, size: int) -> list[Specialisation]:
    """What Triton compiles during one real bf16 channels_last CUDA training step (needs a GPU)."""
    import triton

    from antialias.layers._triton import kernels
    from antialias.models import get_model

    seen: list[Specialisation] = []

    def hook(*, fn: Any, compile: dict[str, Any], **_: Any) -> None:
        seen.append(_from_compile_hook(fn.name, compile))
        return None  # compile as usual

    for name in AOT_KERNELS:  # every specialisation of this model is a miss, as in a new process
        getattr(kernels, name).device_caches.clear()
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = get_model(arch).to(device).to(memory_format=torch.channels_last).train()
    x = torch.randn(batch, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    target = torch.randint(0, 1000, (batch,), device=device)
    with triton.knobs.runtime.scope():
        triton.knobs.runtime.jit_cache_hook = hook
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), target)
        loss.backward()
        torch.cuda.synchronize(device)
    return list(dict.fromkeys(seen))


def bench_compile_cost(args: argparse.Namespace) -> dict[str, Any]:
    """Per model: its distinct specialisations and the sum of their compile times per target."""
    out: dict[str, Any] = {"batch": args.aot_batch, "size": args.aot_size, "models": {}}
    timed: dict[tuple[Specialisation, str], dict[str, Any]] = {}
    for arch in args.aot_archs:
        specs = training_step_specialisations(arch, args.aot_batch, args.aot_size)
        row: dict[str, Any] = {"count": len(specs), "targets": {}}
        for target in args.aot_targets:
            total, biggest = 0.0, 0
            for spec in specs:
                if (spec, target) not in timed:
                    timed[(spec, target)] = compile_specialisation(spec, AOT_TARGETS[target])
                total += timed[(spec, target)]["seconds"]
                biggest = max(biggest, timed[(spec, target)]["cubin_bytes"])
            row["targets"][target] = {
                "compile_seconds_sum": round(total, 2),
                "largest_cubin_bytes": biggest,
            }
        row["specialisations"] = [
            dict(s.describe(), compiled={t: timed[(s, t)] for t in args.aot_targets}) for s in specs
        ]
        if torch.cuda.is_available() and args.aot_check_cuda:
            # the recording checked against a real step, at the benchmark's batch
            row["cuda_step"] = _guard(
                lambda arch=arch, specs=specs: compare_specialisations(
                    specs,
                    cuda_step_specialisations(arch, ARCH_BATCH.get(arch, 64), args.aot_size),
                )
            )
        out["models"][arch] = row
        logger.info(json.dumps({arch: row["targets"], "count": row["count"]}))
    union = {spec for spec, _ in timed}
    out["all_models"] = {
        "count": len(union),
        "targets": {
            t: {"compile_seconds_sum": round(sum(timed[(s, t)]["seconds"] for s in union), 2)}
            for t in args.aot_targets
        },
    }
    return out


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
    parser.add_argument(
        "--net-modes",
        nargs="+",
        default=["eager", "compiled"],
        choices=["eager", "compiled"],
        help="which network modes to time (compiled: only the --compile-archs)",
    )
    parser.add_argument("--net-warmup", type=int, default=3)
    parser.add_argument("--net-iters", type=int, default=10)
    parser.add_argument(
        "--compile-cost",
        action="store_true",
        help="only record the Triton specialisations of one bf16 channels_last training step per "
        "--aot-archs model (on the CPU) and time their ahead-of-time compile per --aot-targets",
    )
    parser.add_argument("--aot-archs", nargs="+", default=list(AOT_ARCHS))
    parser.add_argument(
        "--aot-targets", nargs="+", default=list(AOT_TARGETS), choices=list(AOT_TARGETS)
    )
    parser.add_argument(
        "--aot-batch",
        type=int,
        default=1,
        help="batch of the recorded step: a multiple of 16 specialises as 128 does; for the three "
        "zoo models 1 does too (the same specialisations as at 16)",
    )
    parser.add_argument("--aot-size", type=int, default=224, help="image size of the recorded step")
    parser.add_argument(
        "--aot-check-cuda",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="where CUDA is available, also run each model's step on the GPU (the benchmark's "
        "batch) and compare what Triton compiles there with the recording",
    )
    parser.add_argument("--output", default=None, help="write the JSON here (default: stdout)")
    return parser


def _write(result: dict[str, Any], output: str | None) -> None:
    text = json.dumps(result, indent=1)
    if output:
        with open(output, "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


def compile_cost_main(args: argparse.Namespace) -> int:
    import triton
    from run import cpu_name  # benchmarks/run.py: python puts the script's folder on sys.path

    started = time.time()
    result: dict[str, Any] = {
        "env": {
            "torch": torch.__version__,
            "triton": triton.__version__,
            "cpu": cpu_name(),
            "threads": torch.get_num_threads(),
            "ptxas": triton.knobs.nvidia.ptxas.path,
        },
        "compile_cost": bench_compile_cost(args),
    }
    result["seconds"] = round(time.time() - started, 1)
    _write(result, args.output)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.compile_cost:
        return compile_cost_main(args)
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

    # The JSON is rewritten after every row: a run stopped by a time limit keeps what it measured.
    def emit() -> None:
        if args.output:
            _write(dict(result, seconds=round(time.time() - started, 1)), args.output)

    if "layers" in args.sections:
        bench_layers(args, device, result.setdefault("layers", []), emit)
    if "networks" in args.sections:
        bench_networks(args, device, result.setdefault("networks", []), emit)
    result["seconds"] = round(time.time() - started, 1)
    _write(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
