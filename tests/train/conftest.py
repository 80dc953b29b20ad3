"""Fixtures of the training tests: tiny models importable by name (``image_data`` is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def tiny_models(monkeypatch: pytest.MonkeyPatch) -> str:
    """Make ``_tiny_models`` importable (``--model _tiny_models:tiny_net``); returns its folder."""
    monkeypatch.syspath_prepend(str(HERE))
    return str(HERE)
