"""resolve_device: the one device resolver."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from antialias.devices import resolve_device


def test_explicit_and_automatic_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device() == expected and resolve_device("auto") == expected


def test_none_means_the_models_device():
    assert resolve_device(model=nn.Linear(2, 2).to(torch.float64)) == torch.device("cpu")
    assert resolve_device(model=nn.ReLU()) == torch.device("cpu")  # no tensor: never guesses CUDA
    assert resolve_device("cpu", model=nn.Linear(2, 2)) == torch.device("cpu")  # explicit wins


@pytest.mark.parametrize(
    "device, match",
    [
        ("nonsense", "'nonsense' is not a device name"),
        ("meta", "holds no data"),
        (3.5, "is not a device name"),
    ],
)
def test_bad_devices(device, match):
    with pytest.raises(ValueError, match=match):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")


def test_cuda_gets_the_local_ranks_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 1)
    assert resolve_device(local_rank=2) == torch.device("cuda", 0)
    assert resolve_device("cuda:1", local_rank=0) == torch.device("cuda", 1)
