"""antialias.models._resolve: build_model, the one model resolver (names, factories, saved models, weights files), and load_init_weights."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from antialias.models import CheckpointError, load_weights, weights_num_classes
from antialias.train import build_model, load_init_weights


@pytest.mark.parametrize("source", ["torchvision", "zoo", "convert"])
def test_init_weights_from_torchvision_load_strictly(tmp_path, source):
    torch.manual_seed(0)
    baseline = torchvision.models.resnet18(num_classes=2)
    init = tmp_path / "resnet18_torchvision.pth"
    torch.save(baseline.state_dict(), init)
    model = build_model("resnet18", num_classes=2, source=source)
    if source != "torchvision":  # anti-aliased, with torchvision's names
        assert any(type(m).__name__.startswith(("Blur", "MaxBlur")) for m in model.modules())
    load_init_weights(model, str(init), arch="resnet18")
    assert list(model.state_dict()) == list(baseline.state_dict())
    for name, tensor in baseline.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_init_weights_that_do_not_match_are_refused_with_the_keys(tmp_path):
    model = build_model("resnet18", num_classes=2, source="torchvision")
    state = model.state_dict()
    del state["fc.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(
        ValueError, match=r"1 missing keys: fc\.bias; 1 unexpected keys: extra\.weight"
    ):
        load_init_weights(model, str(path), arch="resnet18")
    wrong_classes = build_model("resnet18", num_classes=3, source="torchvision").state_dict()
    torch.save(wrong_classes, path)
    with pytest.raises(
        ValueError, match=r"shape mismatches: fc\.weight: checkpoint \(3, 512\) vs model \(2, 512\)"
    ):
        load_init_weights(model, str(path), arch="resnet18")


def test_a_weights_file_sizes_and_loads_a_torchvision_model_strictly(tmp_path):
    torch.manual_seed(0)
    trained = torchvision.models.resnet18(num_classes=5)
    path = tmp_path / "plain.pt"
    torch.save(trained.state_dict(), path)
    assert weights_num_classes(path) == 5  # the classifier's shape tells
    model = build_model("resnet18", source="torchvision", weights=str(path))
    assert model.fc.out_features == 5
    for name, tensor in trained.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    with pytest.raises(ValueError, match=r"num_classes 3 but weights .*plain\.pt' have 5 classes"):
        build_model("resnet18", num_classes=3, source="torchvision", weights=str(path))
    described = tmp_path / "described.pt"
    torch.save({"state_dict": trained.state_dict(), "antialias": {"num_classes": 5}}, described)
    assert weights_num_classes(described) == 5  # the description tells


def test_a_weights_file_for_a_factory_and_for_the_zoo(tmp_path):
    torch.manual_seed(0)
    trained = torchvision.models.resnet18(num_classes=4)
    path = tmp_path / "w.pt"
    torch.save(trained.state_dict(), path)
    model = build_model(
        "torchvision.models:resnet18", weights=str(path)
    )  # a factory sized for the file
    assert model.fc.out_features == 4 and torch.equal(model.fc.weight, trained.fc.weight)
    zoo = build_model("resnet18", source="auto", weights=str(path))  # the zoo reads the file itself
    assert zoo.fc.out_features == 4 and torch.equal(zoo.fc.weight, trained.fc.weight)
    assert any(type(m).__name__.startswith("MaxBlur") for m in zoo.modules())
    assert (
        build_model("resnet18", weights="none").fc.out_features == 1000
    )  # "none": random initialisation


def test_a_saved_model_file_and_its_errors(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    scripted = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), str(scripted))
    x = torch.randn(2, 3, 2, 2)
    assert torch.equal(build_model(str(scripted))(x), net(x))
    with pytest.raises(ValueError, match="must be a file"):
        build_model(str(scripted), weights="DEFAULT")
    wrong = tmp_path / "wrong.pth"
    torch.save({"other.weight": torch.zeros(2)}, wrong)
    with pytest.raises(ValueError, match="is not a TorchScript file"):
        build_model(str(wrong))
    with pytest.raises(
        ValueError,
        match="does not fit the Sequential model .*1 missing keys: 1.bias.*1 unexpected keys: "
        "other.weight",
    ):
        load_weights(net, {"1.weight": torch.zeros(3, 12), "other.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"unknown model 'resnet1'.*did you mean"):
        build_model("resnet1")
    with pytest.raises(ValueError, match="model source must be one of"):
        build_model("resnet18", source="hub")


def test_a_function_that_builds_no_model_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="model 'os:system' is not a model builder: missing"):
        build_model("os:system")


def test_init_weights_with_nan_name_the_file(tmp_path) -> None:
    from safetensors.torch import save_file

    model = torchvision.models.resnet18(num_classes=4)
    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    state["layer1.0.conv1.weight"].view(-1)[7] = float("nan")  # a flipped exponent bit
    path = tmp_path / "flipped.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"init weights '.*flipped.safetensors'.*NaN or Inf"):
        load_init_weights(model, str(path), arch="resnet18")


def test_weights_given_as_a_url_load_through_the_download(tmp_path, hub_dir) -> None:
    net = torchvision.models.resnet18(num_classes=3)
    path = tmp_path / "w.pth"
    torch.save(net.state_dict(), path)
    url = path.as_uri()  # file://: the same download path as http(s), offline
    model = build_model("resnet18", source="torchvision", weights=url)
    assert torch.equal(model.fc.weight, net.fc.weight)
    zoo = build_model("resnet18", weights=url)  # the zoo's own loader takes URLs too
    assert zoo.fc.out_features == 3
