"""Shared data of the training tests (a uniquely named module: ``conftest`` is ambiguous on sys.path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Settings that make a run take well under a second: 8 training images of 40x40, crops of 32.
TINY: dict[str, Any] = {
    "batch_size": 4,
    "lr": 0.1,
    "crop_size": 32,
    "val_resize": 32,
    "max_offset": 8,
    "workers": 0,
    "progress": False,
    "device": "cpu",
}


def write_image_tree(
    root: Path,
    classes: tuple[str, ...] = ("blue", "red"),
    per_class: int = 4,
    size: int = 40,
    seed: int = 0,
) -> Path:
    """Write ``root/<class>/<i>.png``: noisy images whose dominant colour is the class."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
            pixels[..., (2, 0, 1)[index % 3]] += 150
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root
