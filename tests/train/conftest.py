"""Fixtures of the training tests: a tiny ImageNet-layout folder and tiny run settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from _train_data import write_image_tree

HERE = Path(__file__).resolve().parent

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
