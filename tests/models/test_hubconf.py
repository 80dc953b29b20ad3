"""``hubconf.py``: torch.hub builds the zoo's models from a local checkout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import antialias.models as zoo
from antialias.layers import MaxBlurPool2d

REPO = Path(__file__).resolve().parents[2]


def test_hubconf_offers_every_zoo_model() -> None:
    spec = importlib.util.spec_from_file_location("hubconf_under_test", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entry_points = sorted(
        n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")
    )
    assert set(zoo.list_models()) >= set(entry_points) and len(entry_points) == 23
    assert module.dependencies == ["torch", "torchvision"]


def test_torch_hub_load_local_builds_a_model(hub_dir: Path, tmp_path: Path) -> None:
    model = torch.hub.load(str(REPO), "resnet18", source="local", num_classes=10, filter_size=3)
    assert isinstance(model.maxpool, MaxBlurPool2d) and model.maxpool.taps == [0.25, 0.5, 0.25]
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    # Weights go through the same loading path.
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    again = torch.hub.load(
        str(REPO), "resnet18", source="local", num_classes=10, filter_size=3, weights=str(path)
    )
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True)
    )


def test_pretrained_true_means_the_default_weights(monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("hubconf_pretrained", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen = {}
    monkeypatch.setattr(zoo, "resnet18", lambda **kw: seen.update(kw) or "built")
    entry = module._entry(lambda **kw: zoo.resnet18(**kw))
    assert entry(pretrained=True, num_classes=1000) == "built" and seen == {
        "weights": "DEFAULT",
        "num_classes": 1000,
    }
    with pytest.raises(ValueError, match="not both"):
        entry(pretrained=True, weights="LPF2")
    from antialias.models._registry import get_model_builder

    # The builder's documentation, for torch.hub.help.
    assert module.resnet18.__doc__ == get_model_builder("resnet18").__doc__
