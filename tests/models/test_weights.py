"""antialias.models._weights: the weights catalog, its enums and the data of every entry."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from _zoo_archs import ARCHS

import antialias.models as zoo

PAPER = {
    "alexnet",
    "vgg16",
    "vgg16_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "densenet121",
    "mobilenet_v2",
}


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
            assert (
                w.url == tv.url and w.filter_size is None and w.num_params == tv.meta["num_params"]
            )
        else:
            assert (
                w.url
                == f"https://antialiased-cnns.s3.us-east-2.amazonaws.com/weights_v0.1/{arch}_{member.name.lower()}-{w.sha256_prefix}.pth"
            )
            assert w.license == "CC BY-NC-SA 4.0 (non-commercial)" and "non-commercial" in w.docs
            assert w.filter_size == int(member.name[3])
            assert w.recipe == ("finetune" if member.name.endswith("FINETUNE") else "scratch")
        assert w.meta["_metrics"]["ImageNet-1K"]["acc@1"] == w.top1


def test_published_numbers() -> None:
    assert (zoo.ResNet50_Weights.DEFAULT.top1, zoo.ResNet50_Weights.DEFAULT.consistency) == (
        77.41,
        91.32,
    )
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


def test_preprocessing_transform() -> None:
    from PIL import Image

    transform = zoo.ResNet50_Weights.DEFAULT.transforms()
    out = transform(Image.new("RGB", (300, 400), (124, 116, 104)))
    assert out.shape == (3, 224, 224)
    assert out.abs().max() < 0.02  # ImageNet's mean color normalizes to ~0


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
    assert {
        zoo.get_model_weights(a).__name__ for a in ARCHS
    } <= classes  # visible to IDEs and type checkers
    assert "__all__ +=" not in source
