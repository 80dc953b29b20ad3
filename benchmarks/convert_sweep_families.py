"""Vision-transformer families before and after ``convert(model, method="aps", circular=True)``.

For each model (random weights: invariance needs no training; a head that starts at zero is drawn at
random too), on smooth random images (bilinear upsampling of noise, so that the logits depend on the
content): circular consistency (:func:`antialias.metrics.circular_consistency`, shifts up to 32) and
crop consistency (:func:`antialias.metrics.crop_consistency`, 224 crops at offsets up to 31) of the
original and the converted model, the largest relative logit change under circular shifts, and the
time per image of one forward pass (batch 8, the two models timed in interleaved rounds by
``benchmarks/run.py``'s ``race``, median of 5, ``torch.no_grad``). One JSON object per model goes
to ``--output``::

    nice -n 19 python benchmarks/convert_sweep_families.py --output
    benchmarks/convert_sweep_families.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
import torchvision
from run import race  # benchmarks/run.py: python puts the script's folder on sys.path
from torch import nn

from antialias import convert
from antialias.metrics import circular_consistency, crop_consistency

FAMILIES: dict[str, Callable[[], nn.Module]] = {
    "torchvision vit_b_16": lambda: torchvision.models.vit_b_16(),
    "torchvision swin_t": lambda: torchvision.models.swin_t(),
    "timm vit_tiny_patch16_224": lambda: timm.create_model("vit_tiny_patch16_224"),
    "timm deit_tiny_distilled_patch16_224": lambda: timm.create_model(
        "deit_tiny_distilled_patch16_224"
    ),
    "timm swin_tiny_patch4_window7_224": lambda: timm.create_model("swin_tiny_patch4_window7_224"),
    "timm twins_svt_small": lambda: timm.create_model("twins_svt_small"),
    "torchvision convnext_tiny": lambda: torchvision.models.convnext_tiny(),
}


def _images(n: int, side: int, seed: int) -> torch.Tensor:
    noise = torch.randn(n, 3, side // 8, side // 8, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(noise, size=(side, side), mode="bilinear", align_corners=False)


def _measure(model: nn.Module, images: torch.Tensor, crops: torch.Tensor) -> dict[str, Any]:
    data = [(images, torch.zeros(len(images), dtype=torch.long))]
    crop_data = [(crops, torch.zeros(len(crops), dtype=torch.long))]
    circular = circular_consistency(
        model, data, max_shift=32, passes=2, generator=torch.Generator().manual_seed(1)
    )
    crop = crop_consistency(
        model,
        crop_data,
        crop_size=224,
        max_offset=32,
        passes=2,
        generator=torch.Generator().manual_seed(2),
    )
    with torch.no_grad():
        logits = model(images)
        change = max(
            (
                (model(torch.roll(images, s, (2, 3))) - logits).abs().max() / logits.abs().max()
            ).item()
            for s in [(1, 0), (5, 7), (17, 29)]
        )
    return {
        "circular_consistency": circular.summary()["consistency"],
        "crop_consistency": crop.summary()["consistency"],
        "max_relative_logit_change": change,
    }


def run(name: str) -> dict[str, Any]:
    torch.manual_seed(0)
    model = FAMILIES[name]().eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.normal_(0, 0.02)
    images, crops = _images(8, 224, 0), _images(8, 255, 3)
    row: dict[str, Any] = {"model": name, "before": _measure(model, images, crops)}
    start = time.perf_counter()
    converted = convert(model, method="aps", circular=True, example_inputs=images[:1])
    row["convert_seconds"] = round(time.perf_counter() - start, 1)
    row["after"] = _measure(converted, images, crops)
    row["state_kept"] = list(converted.state_dict()) == list(model.state_dict())
    with torch.no_grad():
        times = race(
            {"before": lambda: model(images), "after": lambda: converted(images)},
            rounds=5,
            warmup=1,
        )
    for side in ("before", "after"):
        row[side]["ms_per_image"] = 1000 * times[side]["median"] / images.size(0)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("convert_sweep_families.json"))
    parser.add_argument("--models", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    args = parser.parse_args(argv)
    rows = []
    for name in args.models:
        row = run(name)
        print(json.dumps(row), flush=True)
        rows.append(row)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "weights": "random"}
    args.output.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
