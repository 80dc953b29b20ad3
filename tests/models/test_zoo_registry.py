"""The zoo's registry, builders and weights catalog: names, keys, options, and the data of every entry."""

from __future__ import annotations

import inspect
import re

import pytest
import torch
import torchvision
from torch import nn

import antialias
import antialias.models as zoo
from antialias.layers import BlurConv2d, BlurPool2d, MaxBlurPool2d, register_downsample
from antialias.layers.factory import list_downsample_methods
from antialias.models._registry import _MODELS, register_model

# The reference's 23 architectures (other modules may register more models).
ARCHS = sorted([
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161", "densenet169", "densenet201",
    "mobilenet_v2",
])


def test_registry_lists_the_23_reference_architectures() -> None:
    assert set(ARCHS) <= set(zoo.list_models())
    assert zoo.list_models() == sorted(zoo.list_models())
    assert zoo.list_models("vgg1[69]_bn") == ["vgg16_bn", "vgg19_bn"]
    assert zoo.list_models("wide_*") == ["wide_resnet101_2", "wide_resnet50_2"]
    assert zoo.list_models("nothing*") == []
    assert antialias.list_models is zoo.list_models and antialias.get_model is zoo.get_model


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ValueError, match="'resnet50' is already registered"):
        register_model("resnet50")(lambda **kw: nn.Identity())
    assert _MODELS["resnet50"] is zoo.resnet50


def test_get_model_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet51'.*resnet50"):
        zoo.get_model("resnet51")


@pytest.mark.parametrize("arch", ARCHS)
def test_builder_is_keyword_only_and_documented(arch: str) -> None:
    builder = getattr(zoo, arch)
    params = inspect.signature(builder).parameters
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params.values())
    for name in ("weights", "progress", "filter_size", "antialias_stem", "method", "pad_mode", "conv_padding_mode"):
        assert name in params, name
    assert "non-commercial" in builder.__doc__ and zoo.get_model_weights(arch).__name__ in builder.__doc__


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_keys_are_torchvision_keys(arch: str) -> None:
    """Same keys and shapes as torchvision's model (blur buffers are not persistent), so torchvision's
    state dict loads strictly. On the meta device: no memory, no initialization."""
    with torch.device("meta"):
        ours = zoo.get_model(arch)
        theirs = torchvision.models.get_model(arch, weights=None)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    assert {k: v.shape for k, v in ours_sd.items()} == {k: v.shape for k, v in theirs_sd.items()}
    ours.load_state_dict(theirs_sd, strict=True)
    assert sum(p.numel() for p in ours.parameters()) == zoo.get_model_weights(arch).DEFAULT.num_params
    blur = [m for m in ours.modules() if isinstance(m, (BlurPool2d, MaxBlurPool2d, BlurConv2d))]
    assert blur, f"{arch} has no anti-aliased layer"


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "densenet121"])
def test_torchvision_weights_load_strictly_and_run(arch: str) -> None:
    """With real tensors (the parity tests load every architecture; these are the quick ones)."""
    theirs = torchvision.models.get_model(arch, weights=None, num_classes=10)
    ours = zoo.get_model(arch, num_classes=10, filter_size=3)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # ...and through weights= (a state dict in torchvision's layout goes through the same path).
    again = zoo.get_model(arch, weights=theirs.state_dict(), num_classes=10).eval()
    out = again(torch.randn(2, 3, 64, 72, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_resnet50_placement_matches_the_reference() -> None:
    model = zoo.resnet50(num_classes=10)
    assert isinstance(model.maxpool, MaxBlurPool2d)
    assert model.maxpool.kernel_size == [2, 2] and model.maxpool.padding == [0, 0]  # the reference's quirk
    assert model.conv1.stride == (2, 2)
    for layer in (model.layer2, model.layer3, model.layer4):
        block = layer[0]
        assert block.conv2.stride == (1, 1) and isinstance(block.conv3, BlurConv2d)
        assert isinstance(block.downsample[0], BlurConv2d) and block.downsample[0].stride == (1, 1)
        assert not any(isinstance(m, BlurConv2d) for b in layer[1:] for m in b.modules())
    assert sum(isinstance(m, (BlurPool2d, MaxBlurPool2d)) for m in model.modules()) == 7  # as the reference
    text = repr(model)
    assert "MaxBlurPool2d(kernel_size=2, padding=0, channels=64, filter_size=4" in text
    assert "BlurPool2d(channels=512, filter_size=4, stride=2" in text


def test_basic_block_and_stem_option() -> None:
    model = zoo.resnet18(num_classes=10, antialias_stem=True, filter_size=5)
    assert model.conv1.stride == (1, 1)
    # conv1 -> bn1 -> relu -> blur -> max 2x2 -> blur (the reference's pool_only=False), the first blur after the relu
    assert isinstance(model.relu, nn.Sequential) and isinstance(model.relu[1], BlurPool2d)
    assert isinstance(model.maxpool, MaxBlurPool2d)
    block = model.layer2[0]
    assert block.conv1.stride == (1, 1) and isinstance(block.conv2, BlurConv2d)
    out = model(torch.randn(1, 3, 32, 40))
    assert out.shape == (1, 10)


def test_family_placements() -> None:
    with torch.device("meta"):  # structure only: no memory, no initialization
        _check_family_placements()


def _check_family_placements() -> None:
    alex = zoo.alexnet(num_classes=10)  # the reference's AlexNet anti-aliases its stem by default
    assert alex.features[0].stride == (2, 2)
    assert isinstance(alex.features[1], nn.Sequential) and isinstance(alex.features[1][1], BlurPool2d)
    assert [type(m).__name__ for m in alex.features if isinstance(m, MaxBlurPool2d)] == ["MaxBlurPool2d"] * 3
    assert zoo.alexnet(antialias_stem=False, num_classes=10).features[0].stride == (4, 4)

    vgg = zoo.vgg11(num_classes=10)
    assert sum(isinstance(m, MaxBlurPool2d) for m in vgg.features) == 5
    assert not any(isinstance(m, nn.MaxPool2d) for m in vgg.features)
    with pytest.raises(ValueError, match="vgg11 has no strided stem convolution"):
        zoo.vgg11(antialias_stem=True)

    dense = zoo.densenet121(num_classes=10)
    assert isinstance(dense.features.pool0, MaxBlurPool2d) and dense.features.pool0.padding == [1, 1]
    for i in (1, 2, 3):  # the blur goes before the transition's 1x1 conv (they commute; 4x fewer conv FLOPs)
        transition = dense.features.get_submodule(f"transition{i}")
        assert isinstance(transition.conv, BlurConv2d) and transition.conv.stride == (1, 1)
        assert isinstance(transition.conv.blur, BlurPool2d) and transition.conv.blur.stride == [2, 2]
        assert isinstance(transition.pool, nn.Identity)
    aps_dense = zoo.densenet121(num_classes=10, method="aps")  # content-dependent sampling keeps the reference order
    assert not isinstance(aps_dense.features.transition1.pool, nn.Identity)

    mobile = zoo.mobilenet_v2(num_classes=10)
    assert mobile.features[0][0].stride == (2, 2)  # stem not anti-aliased: the reference's quirk
    strided = [b for b in mobile.features[1:-1] if b.stride == 2]
    assert len(strided) == 4
    for block in strided:
        assert isinstance(block.conv[-2], BlurConv2d) and block.conv[-3][0].stride == (1, 1)
    features = zoo.mobilenet_v2(num_classes=10, antialias_stem=True).features
    # conv -> BN -> ReLU6 -> blur, the blur in the next (stride-1, depthwise) conv: BlurConv2d
    assert features[0][0].stride == (1, 1) and isinstance(features[1].conv[0][0], BlurConv2d)


@pytest.mark.parametrize("filter_size", [1, 2, 3, 4, 5, 6, 7, "box-3", "triangle-5", [1.0, 2.0, 1.0]])
def test_filter_sizes(filter_size: object) -> None:
    model = zoo.resnet18(num_classes=3, filter_size=filter_size).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_bad_options_raise_at_construction() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        zoo.resnet18(method="nope")
    with pytest.raises(ValueError, match="conv_padding_mode must be one of"):
        zoo.resnet18(conv_padding_mode="mirror")
    with pytest.raises(ValueError, match="pad_mode"):
        zoo.resnet18(pad_mode="mirror")
    with pytest.raises(TypeError, match="antialias_stem must be a bool"):
        zoo.resnet18(antialias_stem="yes")


def test_conv_padding_mode_option() -> None:
    model = zoo.resnet18(num_classes=10, pad_mode="circular", conv_padding_mode="circular").eval()
    assert all(m.padding_mode == "circular" for m in model.modules() if isinstance(m, nn.Conv2d))
    assert all(m.pad_mode == "circular" for m in model.modules() if isinstance(m, BlurPool2d))
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


class _Subsample(nn.Module):
    """A toy downsampling method for the test: plain subsampling, parameter-free."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :: self.stride, :: self.stride]


def test_method_uses_the_downsample_factory_everywhere() -> None:
    if "zoo_test_subsample" not in list_downsample_methods():
        register_downsample("zoo_test_subsample", lambda ndim, channels, stride, **kw: _Subsample(stride))
    model = zoo.resnet50(num_classes=10, method="zoo_test_subsample")
    assert not any(isinstance(m, (BlurPool2d, MaxBlurPool2d)) for m in model.modules())
    assert sum(isinstance(m, _Subsample) for m in model.modules()) == 7
    assert isinstance(model.maxpool[0], nn.MaxPool2d) and model.maxpool[0].stride == 1
    with torch.device("meta"):
        assert list(model.state_dict()) == list(torchvision.models.resnet50(num_classes=10).state_dict())
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_gradients_reach_every_parameter() -> None:
    model = zoo.mobilenet_v2(num_classes=4, filter_size=3)
    model(torch.randn(2, 3, 48, 48)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# ---- the weights catalog --------------------------------------------------------------------------

PAPER = {"alexnet", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet101", "densenet121", "mobilenet_v2"}


@pytest.mark.parametrize("arch", ARCHS)
def test_weights_catalog(arch: str) -> None:
    enum = zoo.get_model_weights(arch)
    assert enum is getattr(zoo, enum.__name__)
    assert enum.__name__ == torchvision.models.get_model_weights(arch).__name__
    names = list(enum.__members__)
    scratch = ["LPF2", "LPF3", "LPF4", "LPF5"] if arch in PAPER else []
    assert names == ["LPF4_FINETUNE", *scratch, "TORCHVISION_IMAGENET1K_V1", "DEFAULT"]
    assert enum.DEFAULT is enum.LPF4_FINETUNE
    for member in enum:
        w = member.value
        assert w.arch == arch and w.num_classes == 1000
        assert re.fullmatch(r"[0-9a-f]{8}", w.sha256_prefix)
        assert w.preprocessing.resize_size == 256 and w.preprocessing.input_size == (3, 224, 224)
        if w.recipe == "torchvision":
            tv = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
            assert w.url == tv.url and w.filter_size is None and w.num_params == tv.meta["num_params"]
        else:
            assert w.url == f"https://antialiased-cnns.s3.us-east-2.amazonaws.com/weights_v0.1/{arch}_{member.name.lower()}-{w.sha256_prefix}.pth"
            assert w.license == "CC BY-NC-SA 4.0 (non-commercial)" and "non-commercial" in w.docs
            assert w.filter_size == int(member.name[3])
            assert w.recipe == ("finetune" if member.name.endswith("FINETUNE") else "scratch")
        assert w.meta["_metrics"]["ImageNet-1K"]["acc@1"] == w.top1


def test_published_numbers() -> None:
    assert (zoo.ResNet50_Weights.DEFAULT.top1, zoo.ResNet50_Weights.DEFAULT.consistency) == (77.41, 91.32)
    assert (zoo.ResNet50_Weights.LPF5.top1, zoo.ResNet50_Weights.LPF5.consistency) == (77.04, 91.31)
    assert zoo.ResNet50_Weights.TORCHVISION_IMAGENET1K_V1.top1 == 76.16
    assert zoo.MobileNet_V2_Weights.DEFAULT.file_name == "mobilenet_v2_lpf4_finetune-7eed94b1.pth"
    assert zoo.ResNet18_Weights.DEFAULT.sha256_prefix == "8cc58f59"
    assert zoo.VGG19_Weights.DEFAULT.top1 is None  # not in REFERENCE.md: nothing made up
    total = sum(1 for a in ARCHS for m in zoo.get_model_weights(a) if m.recipe != "torchvision")
    assert total == 23 + 9 * 4


def test_weights_verify() -> None:
    enum = zoo.ResNet50_Weights
    assert enum.verify("LPF2") is enum.LPF2
    assert enum.verify("ResNet50_Weights.DEFAULT") is enum.LPF4_FINETUNE
    assert enum.verify(None) is None
    with pytest.raises(ValueError, match=r"unknown weights 'LPF9'.*LPF4_FINETUNE"):
        enum.verify("LPF9")
    with pytest.raises(ValueError, match="weights for 'resnet18'"):
        enum.verify(zoo.ResNet18_Weights.DEFAULT)
    assert repr(enum.DEFAULT) == "ResNet50_Weights.LPF4_FINETUNE"


def test_mirror_changes_the_download_url(monkeypatch: pytest.MonkeyPatch) -> None:
    w = zoo.ResNet18_Weights.LPF3.value
    monkeypatch.delenv("ANTIALIAS_WEIGHTS_MIRROR", raising=False)
    assert w.download_url == w.url
    monkeypatch.setenv("ANTIALIAS_WEIGHTS_MIRROR", "https://mirror.example/aa/")
    assert w.download_url == "https://mirror.example/aa/resnet18_lpf3-449351b9.pth"
    tv = zoo.ResNet18_Weights.TORCHVISION_IMAGENET1K_V1.value
    assert tv.download_url == tv.url  # the mirror is for the reference's bucket only


def test_catalog_weights_and_build_options_must_agree() -> None:
    with pytest.raises(ValueError, match="trained with filter_size=4, got filter_size=5"):
        zoo.resnet50(weights="DEFAULT", filter_size=5)
    with pytest.raises(ValueError, match="have 1000 classes, got num_classes=10"):
        zoo.resnet50(weights=zoo.ResNet50_Weights.LPF2, num_classes=10)
    with pytest.raises(ValueError, match="weights for 'resnet18'"):
        zoo.resnet50(weights=zoo.ResNet18_Weights.DEFAULT)


def test_preprocessing_transform() -> None:
    from PIL import Image

    transform = zoo.ResNet50_Weights.DEFAULT.transforms()
    out = transform(Image.new("RGB", (300, 400), (124, 116, 104)))
    assert out.shape == (3, 224, 224)
    assert out.abs().max() < 0.02  # ImageNet's mean color normalizes to ~0


# ---- weights with another class count, descriptions stored with the weights, torchvision enums --------


def _save(obj: object, path) -> str:
    torch.save(obj, path)
    return str(path)


def test_get_model_with_another_class_count_reinitialises_only_the_classifier(tmp_path, caplog) -> None:
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
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values(), strict=True))
    # A plain file without a description: the classifier's shape says 7.
    plain = _save(trained.state_dict(), tmp_path / "plain.pt")
    assert zoo.get_model("resnet18", weights=plain, filter_size=3).fc.out_features == 7


def test_torchvision_weights_enums_are_accepted_for_their_architecture() -> None:
    from antialias.models._head import _torchvision_enum

    tv = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    assert _torchvision_enum(tv, "resnet18") is tv
    assert _torchvision_enum("IMAGENET1K_V1", "resnet18") is tv
    assert _torchvision_enum("DEFAULT", "resnet18") is None  # our catalog's name wins
    with pytest.raises(ValueError, match=r"ResNet18_Weights\.IMAGENET1K_V1 are not for 'resnet50'.*takes ResNet50_Weights"):
        zoo.get_model("resnet50", weights=tv)


def test_list_models_include_and_exclude() -> None:
    assert zoo.list_models(include="*resnet*", exclude=["wide_*", "resnext*"]) == [
        "resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert zoo.list_models(include=["alexnet", "vgg11*"]) == ["alexnet", "vgg11", "vgg11_bn"]
    assert len(zoo.list_models("*resnet*")) == 7  # resnet*, wide_resnet*; not resnext*
    with pytest.raises(ValueError, match="not both"):
        zoo.list_models("a*", include="b*")
    with pytest.raises(TypeError, match="list of patterns"):
        zoo.list_models(exclude=[3])


def test_get_weight_categories_and_tensor_transforms() -> None:
    assert zoo.get_weight("ResNet50_Weights.DEFAULT") is zoo.ResNet50_Weights.LPF4_FINETUNE
    assert zoo.get_weight("MobileNet_V2_Weights.LPF3").filter_size == 3
    with pytest.raises(ValueError, match="EnumName.MEMBER"):
        zoo.get_weight("Nope_Weights.DEFAULT")
    with pytest.raises(ValueError, match="unknown weights 'LPF9'"):
        zoo.get_weight("ResNet50_Weights.LPF9")
    categories = zoo.ResNet50_Weights.DEFAULT.meta["categories"]
    assert len(categories) == 1000 and categories[0] == "tench"
    transform = zoo.ResNet50_Weights.DEFAULT.transforms()
    image = torch.full((3, 300, 400), 120, dtype=torch.uint8)
    one = transform(image)
    assert one.shape == (3, 224, 224) and one.dtype == torch.float32
    batch = transform(torch.rand(2, 3, 256, 256))
    assert batch.shape == (2, 3, 224, 224)
    # uint8 and PIL give the same numbers.
    from PIL import Image

    pil = transform(Image.fromarray(image.permute(1, 2, 0).numpy()))
    assert torch.allclose(one, pil, atol=1e-6)


def test_weights_enums_are_static_classes() -> None:
    import ast
    from pathlib import Path

    source = Path(zoo.__file__).with_name("_weights.py").read_text()
    classes = {n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    assert {zoo.get_model_weights(a).__name__ for a in ARCHS} <= classes  # visible to IDEs and type checkers
    assert "__all__ +=" not in source


def test_weights_of_another_source_are_flagged(tmp_path, caplog) -> None:
    baseline = torchvision.models.resnet18(num_classes=3)
    meta = {"arch": "resnet18", "num_classes": 3, "source": "torchvision"}
    path = _save({"state_dict": baseline.state_dict(), "antialias": meta}, tmp_path / "baseline.pt")
    with caplog.at_level("WARNING", logger="antialias.models._head"):
        zoo.get_model("resnet18", weights=path)
    assert "trained on the 'torchvision' model (antialias train --baseline)" in caplog.text
