"""The demo's variants and configuration (antialias.apps.demo.config)."""

from __future__ import annotations

import pytest

from antialias.apps import demo
from antialias.apps.demo import DemoConfig, make_variants
from antialias.apps.demo import config as demo_config


def test_make_variants_names_and_labels():
    variants = make_variants((2, 5, "box-3"), aps=False)
    assert [v.name for v in variants] == ["baseline", "blur-2", "blur-5", "blur-box-3"]
    assert [v.method for v in variants] == ["max", "blur", "blur", "blur"]
    assert variants[1].label == "MaxBlurPool Rect-2" and variants[2].label == "MaxBlurPool Bin-5"


def test_make_variants_includes_aps_when_registered(monkeypatch):
    assert (
        make_variants((), baseline=False, aps=True)[0].method == "aps"
    )  # the polyphase layers exist here
    monkeypatch.setattr(demo_config, "list_downsample_methods", lambda: ["blur"])
    assert [v.name for v in make_variants((4,))] == ["baseline", "blur-4"]
    with pytest.raises(ValueError, match="polyphase"):
        make_variants((4,), aps=True)


def test_make_variants_rejects_duplicates_and_nothing():
    with pytest.raises(ValueError, match="distinct"):
        make_variants((4, 4), aps=False)
    with pytest.raises(ValueError, match="no variant"):
        make_variants((), baseline=False, aps=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dataset": "mnist"}, "dataset must be one of"),
        ({"seeds": ()}, "at least one seed"),
        ({"seeds": (1, 1)}, "distinct"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"max_shift": 0}, "max_shift"),
        ({"widths": (8, 16)}, "three positive channel counts"),
        ({"lr": 0.0}, "lr must be > 0"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DemoConfig(**kwargs)


def test_config_dataset_defaults():
    digits = DemoConfig()
    assert (digits.resolved_epochs, digits.resolved_widths, digits.resolved_batch_size) == (
        6,
        (16, 32, 64),
        32,
    )
    cifar = DemoConfig(dataset="cifar10")
    assert (cifar.resolved_epochs, cifar.resolved_widths, cifar.resolved_batch_size) == (
        15,
        (32, 64, 128),
        128,
    )
    assert DemoConfig(epochs=2, widths=(4, 4, 4), batch_size=8).to_dict()["batch_size"] == 8


def test_parse_methods_names_filters_and_labels():
    variants = demo.parse_methods(["max", "blur", "blur-box-3", "aps", "lps-2"])
    assert [(v.name, v.method, v.filter_size) for v in variants] == [
        ("max", "max", None),
        ("blur", "blur", None),
        ("blur-box-3", "blur", "box-3"),
        ("aps", "aps", None),
        ("lps-2", "lps", 2),
    ]
    assert [v.label for v in variants] == [
        "MaxPool (baseline)",
        "MaxBlurPool Tri-4",
        "MaxBlurPool box-3",
        "MaxPool + APS",
        "MaxPool + LPS (2)",
    ]


@pytest.mark.parametrize(
    "names, error, match",
    [
        (["max", "nope"], ValueError, "unknown method 'nope'"),
        (["blur-sinc-3"], ValueError, "bad filter in method 'blur-sinc-3'"),
        (["aps", "aps"], ValueError, "methods must be distinct"),
        ([], ValueError, "at least one method"),
        ("max,aps", TypeError, "sequence of method names"),
    ],
)
def test_parse_methods_errors(names, error, match):
    with pytest.raises(error, match=match):
        demo.parse_methods(names)
    if error is ValueError and names:
        with pytest.raises(ValueError, match=match):
            DemoConfig(methods=tuple(names))


def test_the_vit_variants_train_at_a_tenth_of_the_learning_rate():
    config = DemoConfig(models=("cnn", "vit"), filters=(3,), aps=False, lr=0.02)
    lrs = {v.name: demo_config.variant_lr(v, config) for v in config.variants()}
    assert lrs == {
        "baseline": 0.02,
        "blur-3": 0.02,
        "vit": pytest.approx(0.002),
        "vit-anchored": pytest.approx(0.002),
    }
