"""antialias.models._head: weights with another class count, descriptions stored with the weights, torchvision's enums."""

from __future__ import annotations

import pytest
import torch
import torchvision

import antialias.models as zoo


def _save(obj: object, path) -> str:
    torch.save(obj, path)
    return str(path)


def test_get_model_with_another_class_count_reinitialises_only_the_classifier(
    tmp_path, caplog
) -> None:
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    path = _save(source.state_dict(), tmp_path / "r18.pth")
    with caplog.at_level("WARNING", logger="antialias.models._head"):
        model = zoo.get_model("resnet18", weights=path, num_classes=10)
    assert model.fc.out_features == 10
    assert "re-initialised the classifier 'fc' (1000 -> 10 classes)" in caplog.text
    for name, tensor in source.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(model.state_dict()[name], tensor), name
    # Without num_classes, the checkpoint's classifier says 1000.
    assert zoo.get_model("resnet18", weights=path).fc.out_features == 1000
    # Anything but the classifier still loads strictly.
    state = source.state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    bad = _save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"layer1\.0\.conv1\.weight"):
        zoo.get_model("resnet18", weights=bad, num_classes=10)


def test_get_model_reads_the_class_count_and_filter_from_our_files(tmp_path) -> None:
    trained = zoo.get_model("resnet18", num_classes=7, filter_size=3)
    meta = {"arch": "resnet18", "num_classes": 7, "filter_size": 3}
    path = _save({"state_dict": trained.state_dict(), "antialias": meta}, tmp_path / "weights.pt")
    model = zoo.get_model("resnet18", weights=path)
    assert model.fc.out_features == 7 and model.maxpool.taps == [0.25, 0.5, 0.25]
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), trained.state_dict().values(), strict=True)
    )
    # A plain file without a description: the classifier's shape says 7.
    plain = _save(trained.state_dict(), tmp_path / "plain.pt")
    assert zoo.get_model("resnet18", weights=plain, filter_size=3).fc.out_features == 7


def test_torchvision_weights_enums_are_accepted_for_their_architecture() -> None:
    from antialias.models._load import _torchvision_enum

    tv = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    assert _torchvision_enum(tv, "resnet18") is tv
    assert _torchvision_enum("IMAGENET1K_V1", "resnet18") is tv
    assert _torchvision_enum("DEFAULT", "resnet18") is None  # our catalog's name wins
    with pytest.raises(
        ValueError,
        match=r"ResNet18_Weights\.IMAGENET1K_V1 are not for 'resnet50'.*takes ResNet50_Weights",
    ):
        zoo.get_model("resnet50", weights=tv)


def test_weights_of_another_source_are_flagged(tmp_path, caplog) -> None:
    baseline = torchvision.models.resnet18(num_classes=3)
    meta = {"arch": "resnet18", "num_classes": 3, "source": "torchvision"}
    path = _save({"state_dict": baseline.state_dict(), "antialias": meta}, tmp_path / "baseline.pt")
    with caplog.at_level("WARNING", logger="antialias.models._head"):
        zoo.get_model("resnet18", weights=path)
    assert "trained on the 'torchvision' model (antialias train --baseline)" in caplog.text
