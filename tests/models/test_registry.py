"""antialias.models._registry: register_model, list_models, get_model."""

from __future__ import annotations

import pytest
from _zoo_archs import ARCHS
from torch import nn

import antialias
import antialias.models as zoo
from antialias.models._registry import _MODELS, register_model


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


def test_list_models_include_and_exclude() -> None:
    assert zoo.list_models(include="*resnet*", exclude=["wide_*", "resnext*"]) == [
        "resnet101",
        "resnet152",
        "resnet18",
        "resnet34",
        "resnet50",
    ]
    assert zoo.list_models(include=["alexnet", "vgg11*"]) == ["alexnet", "vgg11", "vgg11_bn"]
    assert len(zoo.list_models("*resnet*")) == 7  # resnet*, wide_resnet*; not resnext*
    with pytest.raises(ValueError, match="not both"):
        zoo.list_models("a*", include="b*")
    with pytest.raises(TypeError, match="list of patterns"):
        zoo.list_models(exclude=[3])
