"""benchmarks/run.py: the helpers its CPU tables rest on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from antialias.layers import BlurPool2d
from antialias.layers.functional import get_backend

RUN_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def _load():
    spec = importlib.util.spec_from_file_location("benchmarks_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flops_count_the_blur_as_elementwise():
    """FLOPs count convolutions and matrix products: our blur runs as slices there (uncounted, as
    the baseline's pooling), and the backend comes back afterwards."""
    run = _load()
    before = get_backend()
    x = torch.randn(1, 3, 16, 16)
    assert run.count_flops(nn.Sequential(BlurPool2d()), x) == 0
    conv = nn.Conv2d(3, 4, 1, bias=False)
    assert run.count_flops(nn.Sequential(BlurPool2d(), conv), x) == 2 * 3 * 4 * 8 * 8
    assert get_backend() == before


def test_paired_ratio_is_per_round():
    run = _load()
    times = {"a": {"rounds": [2.0, 4.0, 6.0]}, "b": {"rounds": [1.0, 1.0, 3.0]}}
    assert run.paired_ratio(times, "a", "b")["median"] == 2.0
