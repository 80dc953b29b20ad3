"""Fixtures of the training tests: a tiny ImageNet-layout folder and tiny run settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent

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


@pytest.fixture
def image_data(tmp_path: Path) -> Path:
    """``data/train`` and ``data/val``, two classes of four images each."""
    root = tmp_path / "data"
    write_image_tree(root / "train", seed=0)
    write_image_tree(root / "val", seed=1)
    return root


@pytest.fixture
def tiny_models(monkeypatch: pytest.MonkeyPatch) -> str:
    """Make ``_tiny_models`` importable (``--model _tiny_models:tiny_net``); returns its folder."""
    monkeypatch.syspath_prepend(str(HERE))
    return str(HERE)
