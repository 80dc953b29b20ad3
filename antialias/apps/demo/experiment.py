"""The whole demo experiment: every variant with every seed, in worker processes; results as a JSON-ready dict."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import platform
import queue
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from antialias.apps.demo.config import METRICS, DemoConfig, Variant, spec_name, variant_lr
from antialias.apps.demo.data import DemoData, load_data
from antialias.apps.demo.training import evaluate_model, train_model
from antialias.devices import resolve_device
from antialias.layers import check_backend

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)

# Per-process state of the worker pool: the data set is loaded once per worker.
_WORKER: dict[str, Any] = {}


def _run_one(
    variant: Variant, seed: int, data: DemoData, config: DemoConfig, report: Callable[[str], None]
) -> dict[str, Any]:
    model, info = train_model(
        variant, seed, data, config, on_epoch=lambda epoch, loss: report("epoch")
    )
    start = time.perf_counter()
    metrics = evaluate_model(model, data, config, seed)
    info["eval_time_s"] = time.perf_counter() - start
    report("eval")
    return {"variant": variant.name, "seed": seed, **info, **metrics}


def _worker_init(config: DemoConfig, messages: Any, threads: int, data: DemoData | None) -> None:
    torch.set_num_threads(threads)
    _WORKER.update(config=config, messages=messages, data=data or _load(config, download=False))


def _worker_task(variant: Variant, seed: int) -> dict[str, Any]:
    return _run_one(variant, seed, _WORKER["data"], _WORKER["config"], _WORKER["messages"].put)


def _load(config: DemoConfig, download: bool) -> DemoData:
    return load_data(
        config.dataset,
        data_dir=config.data_dir,
        download=download,
        train_size=config.train_size,
        test_size=config.test_size,
    )


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def run_demo(config: DemoConfig | None = None) -> dict[str, Any]:
    """Train and evaluate every variant with every seed; return the results (see :func:`write_outputs`).

    On the CPU the models are trained in ``config.workers`` processes at once (one thread each;
    small networks use one core far better than several), on other devices one after the other.
    The worker processes are started with ``spawn``, which re-imports the caller's main module: a
    script that calls this function with more than one worker must do so under
    ``if __name__ == "__main__":``. A model's numbers do not depend on the process that trained it
    (for the same number of threads: a pool worker uses one).

    Returns:
        A JSON-ready dict: ``"config"``, ``"environment"``, ``"wall_time_s"``, ``"variants"`` (per
        variant: its peak learning rate ``"lr"``, per-seed metrics, ``"summary"`` with
        mean/std/min/max per metric and the mean diagonal curves), and ``"comparison"`` (each
        variant against the baseline).
    """
    config = config or DemoConfig()
    start = time.perf_counter()
    variants = config.variants()
    device = resolve_device(config.device)  # a bad name or missing CUDA fails before any training
    check_backend(device)  # so does a forced ANTIALIAS_BACKEND that cannot run on it
    # Loading in the parent first surfaces data errors (and downloads) before any worker starts.
    data = _load(config, download=config.download)
    if config.dataset == "cifar10" and device.type == "cpu":
        logger.warning(
            "CIFAR-10 on the CPU takes hours at the default size; --device cuda is recommended"
        )
    tasks = [(v, s) for s in config.seeds for v in variants]
    epochs = config.resolved_epochs
    cores = _cpu_count()
    workers = 1 if device.type != "cpu" else min(config.workers or cores, len(tasks))
    logger.info(
        f"training {len(tasks)} models ({len(variants)} variants x {len(config.seeds)} seeds, {epochs} "
        f"epochs) on {config.device} with {workers} worker(s)"
    )
    results: list[dict[str, Any]] = []
    with tqdm(
        total=len(tasks) * (epochs + 1),
        desc="antialias demo",
        unit="epoch",
        disable=not config.progress,
        dynamic_ncols=True,
    ) as bar:
        if workers == 1:
            threads = torch.get_num_threads()
            if device.type == "cpu":
                torch.set_num_threads(cores)
            try:
                for variant, seed in tasks:
                    bar.set_postfix_str(f"{variant.name} seed {seed}")
                    results.append(_run_one(variant, seed, data, config, lambda _: bar.update(1)))
            finally:
                torch.set_num_threads(threads)
        else:
            results = _run_pool(config, data, tasks, workers, max(1, cores // workers), bar)
    return _collect(config, variants, data, results, workers, time.perf_counter() - start)


def _run_pool(
    config: DemoConfig,
    data: DemoData,
    tasks: list[tuple[Variant, int]],
    workers: int,
    threads: int,
    bar: Any,
) -> list[dict[str, Any]]:
    # "spawn": forking a process whose OpenMP runtime is initialized can hang the child. Spawned
    # workers re-import the caller's main module, hence the ``__main__`` guard asked of scripts.
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    # The digits (7 MB) travel to the workers; a large data set is cheaper to read again from disk.
    shipped = data if data.train_images.numel() <= 2**24 else None
    results: list[dict[str, Any]] = []
    initargs = (config, messages, threads, shipped)
    with cf.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=initargs
    ) as pool:
        futures = {pool.submit(_worker_task, v, s): (v, s) for v, s in tasks}
        pending = set(futures)
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                _drain(messages, bar)
                for future in done:
                    results.append(future.result())
                    variant, seed = futures[future]
                    bar.set_postfix_str(f"{variant.name} seed {seed} done")
        except BaseException:
            # A failed model (or Ctrl-C) ends the run: do not train the queued ones first.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        _drain(messages, bar)
    order = {(v.name, s): i for i, (v, s) in enumerate(tasks)}
    return sorted(results, key=lambda r: order[(r["variant"], r["seed"])])


def _drain(messages: Any, bar: Any) -> None:
    while True:
        try:
            messages.get_nowait()
        except queue.Empty:
            return
        bar.update(1)


def _collect(
    config: DemoConfig,
    variants: list[Variant],
    data: DemoData,
    results: list[dict[str, Any]],
    workers: int,
    wall: float,
) -> dict[str, Any]:
    m = config.max_shift
    out_variants = []
    for variant in variants:
        runs = [r for r in results if r["variant"] == variant.name]
        probs = torch.stack([r["diagonal"]["probabilities"] for r in runs])  # (seeds, M, D)
        preds = torch.stack([r["diagonal"]["predictions"] for r in runs])
        correct = (preds == data.test_labels.view(1, -1, 1)).float()
        per_seed_prob = probs.mean(1)  # (seeds, D)
        per_seed_acc = correct.mean(1)
        keys = dict.fromkeys([key for key, _ in METRICS + config.metrics] + ["epoch_time_s"])
        summary = {key: _spread([float(r[key]) for r in runs]) for key in keys}
        out_variants.append(
            {
                "name": variant.name,
                "label": variant.label,
                "method": variant.method,
                "filter_size": spec_name(variant.filter_size)
                if variant.filter_size is not None
                else None,
                "lr": variant_lr(variant, config),
                "seeds": [
                    {k: v for k, v in r.items() if k not in ("variant", "diagonal")} for r in runs
                ],
                "summary": summary,
                "diagonal": {
                    "shifts": list(range(-m, m + 1)),
                    "probability_mean": per_seed_prob.mean(0).tolist(),
                    "probability_std": _std0(per_seed_prob).tolist(),
                    "accuracy_mean": per_seed_acc.mean(0).tolist(),
                    "accuracy_std": _std0(per_seed_acc).tolist(),
                    # One test image's curve per seed (the paper's Figure 1 shows single images).
                    "example_image": 0,
                    "example_probability": probs[:, 0].tolist(),
                },
            }
        )
    return {
        "config": config.to_dict(),
        "data": {
            "dataset": data.name,
            "train_images": int(data.train_labels.numel()),
            "test_images": int(data.test_labels.numel()),
            "image_size": list(data.test_images.shape[1:]),
        },
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_cores": _cpu_count(),
            "workers": workers,
            "device": config.device,
        },
        "wall_time_s": wall,
        "variants": out_variants,
        "comparison": _compare(out_variants),
    }


def _std0(x: Tensor) -> Tensor:
    return x.std(0) if x.shape[0] > 1 else torch.zeros_like(x[0])


def _compare(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each variant against the baseline: the difference of the means and whether it exceeds the spread.

    ``exceeds_spread``: the difference is larger than the sum of the two standard deviations over
    seeds. ``ranges_disjoint``: every seed of one beats every seed of the other.
    """
    base = next((v for v in variants if v["method"] == "max"), None)
    if base is None:
        return []
    out = []
    for v in variants:
        if v is base:
            continue
        for key in ("circular_consistency", "crop_consistency", "shift_accuracy", "clean_accuracy"):
            a, b = v["summary"][key], base["summary"][key]
            diff = a["mean"] - b["mean"]
            out.append(
                {
                    "variant": v["name"],
                    "metric": key,
                    "difference": diff,
                    "spread": a["std"] + b["std"],
                    "exceeds_spread": abs(diff) > a["std"] + b["std"],
                    "ranges_disjoint": a["min"] > b["max"] or a["max"] < b["min"],
                }
            )
    return out
