"""Shared fixtures: seeded generators, the device and float dtypes under test."""

from __future__ import annotations

import os

import pytest
import torch

# Test inputs are tiny: one intra-op thread per test process is faster than two (measured 6-10x on the
# shared 2-core machine), and pytest-xdist runs one process per core.
torch.set_num_threads(int(os.environ.get("ANTIALIAS_TEST_THREADS", "1")))

# The Triton kernels run in Triton's CPU interpreter unless the tests target a GPU; Triton reads this when it
# is first imported, so it is set before any test module imports it (no other test uses Triton).
if os.environ.get("ANTIALIAS_TEST_DEVICE", "cpu") == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ANTIALIAS_TEST_NETWORK") == "1":
        return
    skip = pytest.mark.skip(reason="needs the internet; set ANTIALIAS_TEST_NETWORK=1")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU generator with a fixed seed: tests draw their inputs from it, never from global state."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def device() -> torch.device:
    """The device under test: ``ANTIALIAS_TEST_DEVICE`` (e.g. ``cuda``) or the CPU."""
    return torch.device(os.environ.get("ANTIALIAS_TEST_DEVICE", "cpu"))


_INIT_FUNCTIONS = ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "constant_", "ones_",
                   "zeros_", "xavier_uniform_", "xavier_normal_", "trunc_normal_")


@pytest.fixture
def no_random_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip ``nn.init`` while models build, for tests whose every value is overwritten by a strict load."""
    for name in _INIT_FUNCTIONS:
        monkeypatch.setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
