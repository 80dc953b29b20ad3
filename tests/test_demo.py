"""The demo experiment (antialias.apps.demo): data, model family, a reduced run and its outputs."""

from __future__ import annotations

import json
import math

import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from antialias.apps import demo  # noqa: E402
from antialias.apps.demo import (  # noqa: E402
    DemoConfig,
    DemoNet,
    experiment,  # noqa: E402
    load_data,
    make_variants,
    run_demo,
    write_outputs,
)
from antialias.apps.demo import config as demo_config  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits() -> demo.DemoData:
    return load_data("digits")


@pytest.fixture(scope="module")
def reduced_result() -> dict:
    config = DemoConfig(
        seeds=(0, 1), epochs=1, filters=(3,), train_size=96, test_size=24, passes=2, workers=1, progress=False
    )
    with pytest.MonkeyPatch.context() as mp:
        # One thread: on a busy 2-core machine two threads per tiny model cost far more than they give.
        mp.setattr(experiment, "_cpu_count", lambda: 1)
        return run_demo(config)


# ---------------------------------------------------------------------------------------------
# Variants and configuration


def test_make_variants_names_and_labels():
    variants = make_variants((2, 5, "box-3"), aps=False)
    assert [v.name for v in variants] == ["baseline", "blur-2", "blur-5", "blur-box-3"]
    assert [v.method for v in variants] == ["max", "blur", "blur", "blur"]
    assert variants[1].label == "MaxBlurPool Rect-2" and variants[2].label == "MaxBlurPool Bin-5"


def test_make_variants_includes_aps_when_registered(monkeypatch):
    assert make_variants((), baseline=False, aps=True)[0].method == "aps"  # the polyphase layers exist here
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
    assert (digits.resolved_epochs, digits.resolved_widths, digits.resolved_batch_size) == (6, (16, 32, 64), 32)
    cifar = DemoConfig(dataset="cifar10")
    assert (cifar.resolved_epochs, cifar.resolved_widths, cifar.resolved_batch_size) == (15, (32, 64, 128), 128)
    assert DemoConfig(epochs=2, widths=(4, 4, 4), batch_size=8).to_dict()["batch_size"] == 8


# ---------------------------------------------------------------------------------------------
# Data


def test_digits_split_and_normalization(digits):
    assert digits.train_images.shape == (1347, 1, 32, 32) and digits.test_images.shape == (450, 1, 32, 32)
    assert digits.num_classes == 10 and set(digits.test_labels.tolist()) == set(range(10))
    assert abs(float(digits.train_images.mean())) < 1e-4
    assert float(digits.train_images.std()) == pytest.approx(1.0, abs=1e-3)
    # The 16x16 digit sits in the centre: the 8-pixel frame is background everywhere.
    frame = digits.test_images.clone()
    frame[:, :, 8:24, 8:24] = digits.background.view(1, 1, 1, 1)
    assert torch.equal(frame, digits.background.view(1, 1, 1, 1).expand_as(frame))


def test_digits_split_is_fixed(digits):
    again = load_data("digits", train_size=5, test_size=3)
    assert torch.equal(again.test_labels, digits.test_labels[:3])
    assert torch.equal(again.train_labels, digits.train_labels[:5])


def test_crop_shift_equals_circular_shift_on_digits(digits):
    # The docstring's claim: the whole digit stays inside every crop of the padded canvas, so a
    # shifted crop is a circular shift of the 32x32 image.
    m = 8
    padded = digits.padded_test_images(m)[:20]
    images = digits.test_images[:20]
    assert padded.shape[-1] == 32 + 2 * m
    for dy in (-8, -3, 0, 5, 8):
        for dx in (-8, 1, 8):
            crop = padded[..., m - dy : m - dy + 32, m - dx : m - dx + 32]
            assert torch.equal(crop, torch.roll(images, (dy, dx), dims=(-2, -1)))


def test_cifar10_needs_a_folder(tmp_path):
    with pytest.raises(ValueError, match="needs --data"):
        load_data("cifar10")
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found in .*--download"):
        load_data("cifar10", data_dir=str(tmp_path / "nowhere"))


def test_cifar10_conversion(monkeypatch, tmp_path):
    torchvision = pytest.importorskip("torchvision")

    class FakeCIFAR10:
        classes = [f"class{i}" for i in range(10)]

        def __init__(self, root, train, download):
            n = 40 if train else 12
            g = torch.Generator().manual_seed(int(train))
            self.data = torch.randint(0, 256, (n, 32, 32, 3), generator=g, dtype=torch.uint8).numpy()
            self.targets = [i % 10 for i in range(n)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    data = load_data("cifar10", data_dir=str(tmp_path))
    assert data.train_images.shape == (40, 3, 32, 32) and data.test_images.shape == (12, 3, 32, 32)
    assert data.in_channels == 3 and data.num_classes == 10
    per_channel = data.train_images.mean(dim=(0, 2, 3))
    assert torch.allclose(per_channel, torch.zeros(3), atol=1e-5)
    assert torch.equal(data.background, torch.zeros(3))  # padded with the mean colour
    expected = torch.as_tensor(FakeCIFAR10("", True, False).data[0]).permute(2, 0, 1).float() / 255
    # Normalization is affine per channel: the order of pixel values within a channel is kept.
    assert torch.equal(data.train_images[0, 0].flatten().argsort(stable=True), expected[0].flatten().argsort(stable=True))


# ---------------------------------------------------------------------------------------------
# Model family


def _variant(name: str) -> demo.Variant:
    return next(v for v in make_variants((4,)) if v.name == name)


def test_variants_share_initial_weights():
    states = []
    for name in ("baseline", "blur-4", "aps"):
        torch.manual_seed(3)
        states.append(DemoNet(_variant(name)).state_dict())
    assert states[0].keys() == states[1].keys() == states[2].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]) and torch.equal(states[0][key], states[2][key])


@pytest.mark.parametrize("name", ["baseline", "blur-4", "aps"])
def test_demonet_is_invariant_to_shifts_by_the_total_stride(name, generator):
    torch.manual_seed(0)
    net = DemoNet(_variant(name)).eval()
    x = torch.randn(4, 1, 32, 32, generator=generator)
    with torch.no_grad():
        ref = net(x)
        for shift in ((8, 0), (0, 16), (-8, 24)):
            torch.testing.assert_close(net(torch.roll(x, shift, dims=(-2, -1))), ref, rtol=1e-4, atol=1e-5)


def test_aps_is_invariant_to_every_shift_and_baseline_is_not(generator):
    torch.manual_seed(0)
    aps = DemoNet(_variant("aps")).eval()
    torch.manual_seed(0)
    base = DemoNet(_variant("baseline")).eval()
    x = torch.randn(4, 1, 32, 32, generator=generator)
    with torch.no_grad():
        for shift in ((1, 0), (0, 3), (5, 7)):
            shifted = torch.roll(x, shift, dims=(-2, -1))
            torch.testing.assert_close(aps(shifted), aps(x), rtol=1e-4, atol=1e-5)
            assert (base(shifted) - base(x)).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------
# A reduced run and its outputs


def test_reduced_run_structure(reduced_result):
    r = reduced_result
    assert json.loads(json.dumps(r)) == r  # JSON-ready
    assert [v["name"] for v in r["variants"]] == ["baseline", "blur-3", "aps"]
    assert r["data"] == {"dataset": "digits", "train_images": 96, "test_images": 24, "image_size": [1, 32, 32]}
    assert r["config"]["seeds"] == [0, 1] and r["config"]["epochs"] == 1
    for v in r["variants"]:
        assert [s["seed"] for s in v["seeds"]] == [0, 1]
        for key, _ in demo.METRICS:
            values = [s[key] for s in v["seeds"]]
            assert all(0.0 <= x <= 1.0 for x in values)
            summary = v["summary"][key]
            assert summary["mean"] == pytest.approx(sum(values) / 2)
            assert summary["std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
            assert summary["min"] == min(values) and summary["max"] == max(values)
        d = v["diagonal"]
        assert d["shifts"] == list(range(-8, 9))
        assert len(d["probability_mean"]) == 17 and len(d["example_probability"]) == 2
        assert all(0.0 <= p <= 1.0 for p in d["probability_mean"])


def test_reduced_run_aps_is_exactly_consistent(reduced_result):
    # Guaranteed by construction (circular padding, APS, global pooling), whatever the training.
    aps = next(v for v in reduced_result["variants"] if v["name"] == "aps")
    for seed in aps["seeds"]:
        assert seed["circular_consistency"] == 1.0 and seed["crop_consistency"] == 1.0
        assert seed["diagonal_stability"] == 1.0
        assert seed["shift_accuracy"] == pytest.approx(seed["clean_accuracy"])


def test_reduced_run_comparison(reduced_result):
    rows = {(c["variant"], c["metric"]): c for c in reduced_result["comparison"]}
    assert set(v for v, _ in rows) == {"blur-3", "aps"}
    base = reduced_result["variants"][0]["summary"]["circular_consistency"]
    aps = reduced_result["variants"][2]["summary"]["circular_consistency"]
    row = rows[("aps", "circular_consistency")]
    assert row["difference"] == pytest.approx(aps["mean"] - base["mean"])
    assert row["exceeds_spread"] == (abs(row["difference"]) > base["std"] + aps["std"])


def test_write_outputs(reduced_result, tmp_path):
    paths = write_outputs(reduced_result, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "consistency.png", "diagonal.png", "results.json", "table.md"
    ]
    assert json.loads(paths["json"].read_text()) == reduced_result
    for key in ("consistency", "diagonal"):
        data = paths[key].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    table = paths["table"].read_text()
    assert table.startswith("| model |") and "MaxBlurPool Tri-3" in table and "MaxPool + APS" in table
    assert "± " in table and "mean ± std over 2 seeds" in table


def test_write_outputs_refuses_a_file(reduced_result, tmp_path):
    target = tmp_path / "file.json"
    target.write_text("{}")
    with pytest.raises(NotADirectoryError, match="must be a folder"):
        write_outputs(reduced_result, target)


def test_format_table_text(reduced_result):
    table = demo.format_table(reduced_result)
    lines = table.splitlines()
    assert lines[0].startswith("model") and "consistency (circular)" in lines[0]
    assert len(lines) == 2 + 3 + 1
    aps = next(v for v in reduced_result["variants"] if v["name"] == "aps")
    assert f"{100 * aps['summary']['clean_accuracy']['mean']:.1f} ± " in lines[4]


# ---------------------------------------------------------------------------------------------
# Method comparison (methods=)


def test_parse_methods_names_filters_and_labels():
    variants = demo.parse_methods(["max", "blur", "blur-box-3", "aps", "lps-2"])
    assert [(v.name, v.method, v.filter_size) for v in variants] == [
        ("max", "max", None), ("blur", "blur", None), ("blur-box-3", "blur", "box-3"), ("aps", "aps", None),
        ("lps-2", "lps", 2),
    ]
    assert [v.label for v in variants] == [
        "MaxPool (baseline)", "MaxBlurPool Tri-4", "MaxBlurPool box-3", "MaxPool + APS", "MaxPool + LPS (2)"
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


@pytest.mark.parametrize("name", ["aps", "lps"])
def test_every_registered_method_builds_a_circularly_invariant_demonet(name, generator):
    # Polyphase sampling after a wrapped dense max keeps the whole net invariant to any circular shift.
    torch.manual_seed(0)
    net = DemoNet(demo.parse_methods([name])[0]).eval()
    x = torch.randn(2, 1, 32, 32, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(net(torch.roll(x, (3, -5), dims=(-2, -1))), net(x), rtol=1e-4, atol=1e-5)


def test_comparison_run_adds_subpixel_consistency_and_epoch_time(tmp_path):
    config = DemoConfig(
        seeds=(0,), epochs=1, methods=("max", "blur-3", "lps"), train_size=64, test_size=16, passes=1,
        workers=1, progress=False,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiment, "_cpu_count", lambda: 1)
        result = run_demo(config)
    assert result["config"]["methods"] == ["max", "blur-3", "lps"]
    assert [v["name"] for v in result["variants"]] == ["max", "blur-3", "lps"]
    for v in result["variants"]:
        seed = v["seeds"][0]
        assert 0.0 <= seed["fractional_consistency"] <= 1.0
        assert seed["epoch_time_s"] == pytest.approx(seed["train_time_s"]) and seed["epoch_time_s"] > 0
        for key, _ in demo.COMPARISON_METRICS:
            assert v["summary"][key]["mean"] == seed[key]
    lps = result["variants"][2]["seeds"][0]
    assert lps["circular_consistency"] == 1.0 and lps["crop_consistency"] == 1.0  # exact, whatever the training
    assert {c["variant"] for c in result["comparison"]} == {"blur-3", "lps"}  # against the "max" baseline
    lines = demo.format_table(result).splitlines()
    assert "consistency (sub-pixel)" in lines[0] and "s / epoch" in lines[0]
    assert lines[-1] == "(percent (times in seconds), 1 seed)"
    paths = write_outputs(result, tmp_path)
    assert "| MaxPool + LPS |" in paths["table"].read_text()
    assert paths["consistency"].read_bytes().startswith(PNG_MAGIC)
