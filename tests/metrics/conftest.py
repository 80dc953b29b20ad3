"""Fixtures of the metric tests; the models with known answers are in ``_metric_models.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# The test modules import ``_metric_models`` from this folder, whatever pytest's import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is faster on a shared 2-core machine than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
