"""Fixtures of the converter's model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

_INIT_FUNCTIONS = ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "constant_", "ones_",
                   "zeros_", "xavier_uniform_", "xavier_normal_", "trunc_normal_")


@pytest.fixture
def no_random_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip nn.init while models build: every value is overwritten by a strict load afterwards."""
    for name in _INIT_FUNCTIONS:
        monkeypatch.setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These tests run whole networks on tiny inputs: intra-op threads do not pay there, and on a
    busy machine their spin-waiting multiplies the CPU time (measured: 5x on 2 shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
