"""``antialias eval`` on a tiny folder of real PNG/JPEG files written by the tests."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from antialias.cli import main

# Small sizes keep every call fast: 44x50 images, resize 40, crop 32, offsets up to 8.
SMALL = ["--resize", "40", "--crop", "32", "--max-offset", "8", "--workers", "0", "--no-progress"]
COLORS = {"n0_red": (220, 30, 30), "n1_green": (30, 220, 30), "n2_blue": (30, 30, 220)}

MODELS = textwrap.dedent(
    '''
    """Models with known answers for the eval CLI tests."""
    import torch
    from torch import nn



    class ColorOracle(nn.Module):
        """The dominant colour is the class (red 0, green 1, blue 2)."""

        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

        def forward(self, x):
            return 10 * (x * self.std + self.mean).mean((-2, -1))


    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([2.0, 0.0, 0.0]))

        def forward(self, x):
            return self.bias.expand(x.shape[0], 3)


    def oracle():
        return ColorOracle()


    def constant():
        return Constant()


    class Brightness(nn.Module):
        """Class 1 when the (un-normalized) red channel's mean is over 0.5, else class 0."""

        def forward(self, x):
            v = (x[:, 0] * 0.229 + 0.485).mean((-2, -1))
            return torch.stack([0.5 - v, v - 0.5, torch.full_like(v, -9.0)], dim=1)


    def brightness():
        return Brightness()


    def cnn():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
        )
    '''
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """3 classes x 2 images (one PNG, one JPEG), coloured by class with a little noise."""
    rng = np.random.default_rng(0)
    root = tmp_path / "val"
    for cls, color in COLORS.items():
        (root / cls).mkdir(parents=True)
        for i, fmt in enumerate(("png", "jpg")):
            noise = rng.integers(-20, 20, size=(44, 50, 3))
            pixels = np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / cls / f"img{i}.{fmt}")
    return root


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "eval_tiny_models.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("eval_tiny_models", None)
    return "eval_tiny_models"


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["eval", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_shows_the_defaults_of_options_not_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "--on-corrupt {fail,skip}",
        "--max-offset N",
        "(default: 256)",
        "corruptions: ImageNet-C",
    ):
        assert text in out, text
    assert "(default: None)" not in out and "(default: False)" not in out


def test_compares_models_side_by_side(data, models, tmp_path, capsys):
    out_json = tmp_path / "res" / "results.json"
    plots = tmp_path / "plots"
    code, out, err = run_cli(
        [
            "--model",
            f"{models}:oracle",
            "--model",
            f"{models}:constant",
            "--data",
            str(data),
            "--metrics",
            "accuracy,consistency,diagonal,circular,worst-case",
            "--output",
            str(out_json),
            "--plots",
            str(plots),
            "--worst-case-shift",
            "2",
            *SMALL,
        ],
        capsys,
    )
    assert code == 0, err
    assert "Traceback" not in err
    # The table: one column per model.
    header = out.splitlines()[0].split()
    assert header == ["metric", f"{models}:oracle", f"{models}:constant"]
    assert any(
        line.startswith("top-1 (%)") and "100.00" in line and "33.33" in line
        for line in out.splitlines()
    )

    result = json.loads(out_json.read_text())
    oracle = result["models"][f"{models}:oracle"]["metrics"]
    constant = result["models"][f"{models}:constant"]["metrics"]
    assert oracle["accuracy"] == {"top1": 1.0, "top5": 1.0, "images": 6}
    assert constant["accuracy"]["top1"] == pytest.approx(1 / 3)
    for m in (oracle, constant):
        assert m["consistency"]["consistency"] == 1.0 and m["circular"]["consistency"] == 1.0
        assert m["consistency"]["max_offset"] == 8 and m["consistency"]["passes"] == 5
    assert oracle["diagonal"]["accuracy"] == 1.0 and len(oracle["diagonal"]["offsets"]) == 9
    # Constant logits (2, 0, 0): P(class 0) = e^2 / (e^2 + 2) for the 2 red images, 1 / (e^2 + 2)
    # for the 4 others.
    e2 = math.exp(2)
    expected = (2 * e2 / (e2 + 2) + 4 / (e2 + 2)) / 6
    assert constant["diagonal"]["probability"] == pytest.approx(expected, rel=1e-6)
    assert constant["worst-case"]["worst_case_accuracy"] == pytest.approx(1 / 3)
    assert result["config"]["crop"] == 32 and result["metrics"][0] == "accuracy"
    assert sorted(p.name for p in plots.iterdir()) == [
        ".antialias-outputs",  # the manifest: a later run may replace these plots
        "circular.png",
        "consistency.png",
        "diagonal.png",
    ]


def test_weights_torchscript_and_records(data, models, tmp_path, capsys):
    import eval_tiny_models as tiny  # the fixture made it importable

    # A DDP-style checkpoint: {'state_dict': {'module.bias': ...}} that favours class 2.
    ckpt = tmp_path / "blue.pth"
    torch.save({"state_dict": {"module.bias": torch.tensor([0.0, 0.0, 5.0])}}, ckpt)
    scripted = tmp_path / "oracle.pt"
    with pytest.warns(FutureWarning):
        torch.jit.save(torch.jit.script(tiny.oracle()), str(scripted))
    out_json = tmp_path / "r.json"
    code, out, err = run_cli(
        [
            "--model",
            f"{models}:constant",
            "--weights",
            str(ckpt),
            "--model",
            str(scripted),
            "--weights",
            "none",
            "--label",
            "blue",
            "--label",
            "scripted",
            "--data",
            str(data),
            "--metrics",
            "accuracy,diagonal",
            "--records",
            "--output",
            str(out_json),
            *SMALL,
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out_json.read_text())
    blue = result["models"]["blue"]
    assert blue["weights"] == str(ckpt)
    records = blue["records"]["accuracy"]
    assert [r["prediction"] for r in records] == [2] * 6  # the checkpoint was loaded
    assert len(blue["records"]["diagonal"][0]["probabilities"]) == 9
    assert result["models"]["scripted"]["metrics"]["accuracy"]["top1"] == 1.0


def test_real_zoo_and_torchvision_baseline(data, capsys):
    # The zoo's (anti-aliased) resnet18 by name; torchvision's baseline as module:function.
    code, out, err = run_cli(
        [
            "--model",
            "resnet18",
            "--model",
            "torchvision.models:resnet18",
            "--data",
            str(data),
            "--metrics",
            "accuracy",
            "--max-images",
            "2",
            "--batch-size",
            "2",
            *SMALL,
        ],
        capsys,
    )
    assert code == 0, err
    assert out.splitlines()[0].split() == ["metric", "resnet18", "torchvision.models:resnet18"]


def test_robustness_metrics_wiring(data, models, tmp_path, capsys):
    # ImageNet-C: per severity, class n0 dark (right), n1 bright (right), n2 dark (always wrong).
    imagenet_c = tmp_path / "imagenet-c"
    for severity in (1, 2):
        for cls, value in zip(COLORS, (30, 200, 30), strict=True):
            folder = imagenet_c / "brightness" / str(severity) / cls
            folder.mkdir(parents=True)
            Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(folder / "a.png")
    # ImageNet-P: one translate sequence whose prediction flips at frame 1 and back at frame 2.
    seq = tmp_path / "imagenet-p" / "translate" / "n0_red" / "v0"
    seq.mkdir(parents=True)
    for t, value in enumerate((30, 200, 30, 30)):
        Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(seq / f"{t}.png")
    alexnet = tmp_path / "alexnet_p.json"
    alexnet.write_text(json.dumps({"translate": {"flip_probability": 0.5, "top5_distance": 1.0}}))
    out_json = tmp_path / "r.json"
    code, out, err = run_cli(
        [
            "--model",
            f"{models}:brightness",
            "--data",
            str(data),
            "--metrics",
            "accuracy,imagenet-c,imagenet-p,corruptions",
            "--imagenet-c",
            str(imagenet_c),
            "--imagenet-p",
            str(tmp_path / "imagenet-p"),
            "--alexnet-p",
            str(alexnet),
            "--corruptions",
            "brightness",
            "--severities",
            "1,2",
            "--crop",
            "32",
            "--resize",
            "40",
            "--workers",
            "0",
            "--no-progress",
            "--output",
            str(out_json),
        ],
        capsys,
    )
    assert code == 0, err
    m = json.loads(out_json.read_text())["models"][f"{models}:brightness"]["metrics"]
    assert m["imagenet-c"]["errors"] == {
        "brightness": {"1": pytest.approx(1 / 3), "2": pytest.approx(1 / 3)}
    }
    assert m["imagenet-c"]["ce"]["brightness"] == pytest.approx((1 / 3) / 0.564592)
    clean = 1 - m["accuracy"]["top1"]
    assert m["imagenet-c"]["clean_error"] == pytest.approx(clean)
    assert m["imagenet-p"]["flip_probability"]["translate"] == pytest.approx(2 / 3)
    assert m["imagenet-p"]["mfr"] == pytest.approx((2 / 3) / 0.5)
    assert m["imagenet-p"]["normalizer"] == f"--alexnet-p {alexnet}"
    # On the fly: brightness +0.1 / +0.2 (HSV value) keeps the bright images bright and the red
    # ones (value 0.86) over 0.5: the same predictions as on clean images.
    assert m["corruptions"]["errors"]["brightness"] == {
        "1": pytest.approx(clean),
        "2": pytest.approx(clean),
    }
    assert "ImageNet-C mCE (%)" in out and "ImageNet-P mFR (%)" in out


def test_zoo_first_then_torchvision(data, capsys, monkeypatch):
    calls = []

    def get_model(name, **kwargs):
        calls.append((name, kwargs))
        return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())

    import antialias.models
    from antialias.models import _registry

    # A stand-in zoo with one model, in the registry the one resolver reads.
    monkeypatch.setattr(_registry, "get_model", get_model)
    monkeypatch.setattr(_registry, "list_models", lambda *args, **kwargs: ["aa_tiny"])
    # eval checks names against the public list before building anything
    monkeypatch.setattr(antialias.models, "list_models", _registry.list_models)
    code, out, err = run_cli(
        [
            "--model",
            "aa_tiny",
            "--weights",
            "DEFAULT",
            "--data",
            str(data),
            "--metrics",
            "accuracy",
            *SMALL,
        ],
        capsys,
    )
    assert code == 0, err
    assert calls == [("aa_tiny", {"weights": "DEFAULT"})]
    # A name the zoo lacks falls back to torchvision (random weights: only that it runs).
    code, out, err = run_cli(
        [
            "--model",
            "shufflenet_v2_x0_5",
            "--data",
            str(data),
            "--metrics",
            "accuracy",
            "--max-images",
            "2",
            *SMALL,
        ],
        capsys,
    )
    assert code == 0, err
    assert "shufflenet_v2_x0_5" in out.splitlines()[0]


def test_progress_bars_and_equivariance(data, models, capsys):
    code, out, err = run_cli(
        [
            "--model",
            f"{models}:cnn",
            "--data",
            str(data),
            "--metrics",
            "fractional,equivariance",
            "--equivariance-shift",
            "2",
            "--resize",
            "40",
            "--crop",
            "32",
            "--workers",
            "0",
        ],
        capsys,
    )
    assert code == 0, err
    assert "equivariance" in err and "batch" in err  # tqdm bars on stderr
    rows = [line.split()[0:2] for line in out.splitlines()[2:]]
    assert ["fractional", "consistency"] in rows
    assert any(r[0] == "equivariance" for r in rows)


# --------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit code 2, no traceback
# --------------------------------------------------------------------------------------------


def assert_clean_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("antialias eval: error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_and_empty_folder(tmp_path, models, capsys):
    code, _, err = run_cli(
        ["--model", f"{models}:oracle", "--data", str(tmp_path / "nope"), *SMALL], capsys
    )
    assert_clean_error(code, err, "data folder", "nope", "does not exist")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(
        ["--model", f"{models}:oracle", "--data", str(tmp_path / "empty"), *SMALL], capsys
    )
    assert_clean_error(code, err, "no images")


def test_corrupt_image_fail_or_skip(data, models, tmp_path, capsys, caplog):
    bad = data / "n1_green" / "zz_broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    args = ["--model", f"{models}:oracle", "--data", str(data), "--metrics", "accuracy", *SMALL]
    code, _, err = run_cli(args, capsys)
    assert_clean_error(code, err, "zz_broken.jpg")
    out_json = tmp_path / "skip.json"
    code, _, err = run_cli([*args, "--on-corrupt", "skip", "--output", str(out_json)], capsys)
    assert code == 0 and "zz_broken.jpg" in caplog.text  # a logged warning
    result = json.loads(out_json.read_text())
    assert result["models"][f"{models}:oracle"]["metrics"]["accuracy"]["images"] == 6
    assert result["skipped_images"] == 1  # counted in the results, not only logged
    code, _, err = run_cli([*args, "--output", str(out_json)], capsys)  # nothing to skip: 0
    assert (
        code == 2 and json.loads(out_json.read_text())["skipped_images"] == 1
    )  # a failed run writes nothing
    bad.unlink()
    code, _, err = run_cli([*args, "--on-corrupt", "skip", "--output", str(out_json)], capsys)
    assert code == 0 and json.loads(out_json.read_text())["skipped_images"] == 0


def test_truncated_image_is_named_from_a_worker(data, models, tmp_path, capsys):
    # The header is intact, the pixel data is not: found when a DataLoader worker decodes it.
    path = data / "n0_red" / "img1.jpg"
    original = path.read_bytes()
    path.write_bytes(original[:300])
    args = ["--model", f"{models}:oracle", "--data", str(data), "--metrics", "accuracy", *SMALL]
    args[args.index("--workers") + 1] = "1"
    code, _, err = run_cli(args, capsys)
    assert_clean_error(code, err, "img1.jpg")
    # Skipped when it fails to decode in the worker (the next image of its class stands in), and counted.
    path.write_bytes(original[: len(original) * 4 // 5])  # the header check passes
    out_json = tmp_path / "skip.json"
    code, _, err = run_cli(
        [
            *args,
            "--on-corrupt",
            "skip",
            "--metrics",
            "accuracy,consistency",
            "--output",
            str(out_json),
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert (
        result["skipped_images"] == 1
        and result["models"][f"{models}:oracle"]["metrics"]["accuracy"]["images"] == 6
    )


def test_images_smaller_than_the_crop(data, models, capsys):
    code, _, err = run_cli(
        [
            "--model",
            f"{models}:oracle",
            "--data",
            str(data),
            "--metrics",
            "accuracy",
            "--resize",
            "0",
            "--crop",
            "48",
            "--workers",
            "0",
            "--no-progress",
        ],
        capsys,
    )
    assert_clean_error(code, err, "is 44x50 (HxW), smaller than the required 48x48")
    code, _, err = run_cli(
        [
            "--model",
            f"{models}:oracle",
            "--data",
            str(data),
            "--metrics",
            "consistency",
            "--resize",
            "36",
            "--crop",
            "32",
            "--max-offset",
            "8",
        ],
        capsys,
    )
    assert_clean_error(code, err, "--resize 36 is smaller than --crop + --max-offset = 40")


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--metrics", "accuracy,bogus"], ("unknown metric(s) bogus", "consistency")),
        (["--metrics", "imagenet-c"], ("needs --imagenet-c",)),
        (["--weights", "a.pth", "--weights", "b.pth"], ("give --weights once per --model",)),
        (["--device", "nonsense"], ("--device 'nonsense'",)),
        (["--passes", "0"], ("--passes must be >= 1",)),
    ],
)
def test_bad_arguments(data, models, capsys, extra, fragments):
    code, _, err = run_cli(
        ["--model", f"{models}:oracle", "--data", str(data), *SMALL, *extra], capsys
    )
    assert_clean_error(code, err, *fragments)


def test_bad_models(data, models, tmp_path, capsys):
    base = ["--data", str(data), "--metrics", "accuracy", *SMALL]
    code, _, err = run_cli(["--model", "resnet1", *base], capsys)
    assert_clean_error(code, err, "unknown model 'resnet1'", "did you mean")
    code, _, err = run_cli(["--model", "no_such_module:build", *base], capsys)
    assert_clean_error(code, err, "cannot import 'no_such_module'")
    code, _, err = run_cli(["--model", f"{models}:missing", *base], capsys)
    assert_clean_error(code, err, "has no attribute 'missing'")
    wrong = tmp_path / "wrong.pth"
    torch.save({"other.weight": torch.zeros(2)}, wrong)
    code, _, err = run_cli(
        ["--model", f"{models}:constant", "--weights", str(wrong), *base], capsys
    )
    assert_clean_error(
        code, err, "does not fit the Constant model", "1 missing keys", "1 unexpected keys"
    )
    code, _, err = run_cli(["--model", str(wrong), *base], capsys)
    assert_clean_error(code, err, "is not a TorchScript file")


# --- models checked before the first image; class counts from the checkpoint -----------------


def test_a_bad_second_model_fails_before_any_image_is_evaluated(
    data, models, tmp_path, capsys, monkeypatch
):
    import antialias.cli.eval as cli_eval

    evaluated = []
    monkeypatch.setattr(cli_eval, "_evaluate", lambda entry, *a, **k: evaluated.append(entry.label))
    out = tmp_path / "results.json"
    code, _, err = run_cli(
        [
            "--model",
            f"{models}:oracle",
            "--model",
            "resnet1",
            "--data",
            str(data),
            "--metrics",
            "accuracy",
            "--output",
            str(out),
            *SMALL,
        ],
        capsys,
    )
    assert_clean_error(code, err, "unknown model 'resnet1'")
    assert evaluated == [] and not out.exists()


def test_num_classes_from_the_checkpoint_the_option_or_the_data(data, tmp_path, capsys, caplog):
    from antialias.models import get_model

    trained = get_model("resnet18", num_classes=3)
    described = tmp_path / "weights.pt"
    torch.save(
        {"state_dict": trained.state_dict(), "antialias": {"arch": "resnet18", "num_classes": 3}},
        described,
    )
    plain = tmp_path / "plain.pt"
    torch.save(torchvision_resnet18(5).state_dict(), plain)
    base = ["--data", str(data), "--metrics", "accuracy", "--batch-size", "6", *SMALL]
    with caplog.at_level("WARNING"):
        code, out, err = run_cli(
            [
                "--model",
                "resnet18",
                "--weights",
                str(described),  # 3 classes, from the file
                "--model",
                "torchvision.models:resnet18",
                "--weights",
                "none",  # a factory: as it builds
                "--model",
                "resnet18",
                "--weights",
                str(plain),  # 5 classes, from the classifier's shape
                *base,
            ],
            capsys,
        )
    assert code == 0, err
    assert (
        "model 'torchvision.models:resnet18' has no --weights" not in caplog.text
    )  # a factory: unknown
    assert "model 'torchvision.models:resnet18' has 1000 outputs but the data has 3" in caplog.text
    assert "model 'resnet18#2' has 5 outputs but the data has 3 classes" in caplog.text
    assert "'resnet18' has" not in caplog.text
    code, out, err = run_cli(
        [
            "--model",
            "resnet18",
            "--model",
            "resnet18",
            "--num-classes",
            "3",
            "--weights",
            "none",
            "--weights",
            str(described),
            *base,
        ],
        capsys,
    )
    assert code == 0, err
    assert "has no --weights: it is randomly initialised" in caplog.text
    code, _, err = run_cli(
        ["--model", "resnet18", "--weights", str(plain), "--num-classes", "3", *base], capsys
    )
    assert_clean_error(code, err, "--num-classes 3 but weights", "have 5 classes")


def torchvision_resnet18(num_classes: int) -> torch.nn.Module:
    import torchvision

    return torchvision.models.resnet18(num_classes=num_classes)


def test_methods_evaluate_each_model_converted_by_each_method(
    data, models, tmp_path, capsys, monkeypatch
):
    import antialias

    calls, real_convert = [], antialias.convert

    def recording_convert(model, **options):
        calls.append(options)
        return real_convert(model, **options)

    monkeypatch.setattr(antialias, "convert", recording_convert)
    out_json = tmp_path / "results.json"
    code, out, err = run_cli(
        [
            "--model",
            f"{models}:cnn",
            "--methods",
            "blur-4,aps,flc",
            "--data",
            str(data),
            "--metrics",
            "accuracy,circular",
            "--output",
            str(out_json),
            *SMALL,
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out_json.read_text())
    labels = list(result["models"])
    assert labels == [
        f"{models}:cnn",
        f"{models}:cnn+blur-4",
        f"{models}:cnn+aps",
        f"{models}:cnn+flc",
    ]
    for label in labels:
        assert label in out
        assert set(result["models"][label]["metrics"]) == {"accuracy", "circular"}
    assert calls == [{"method": "blur", "filter_size": 4}, {"method": "aps"}, {"method": "flc"}]


@pytest.mark.parametrize(
    ("methods", "fragment"),
    [("nope", "unknown method 'nope'"), ("blur-nope-9", "cannot convert model")],
)
def test_bad_methods_fail_before_any_image(data, models, capsys, methods, fragment):
    code, _, err = run_cli(
        ["--model", f"{models}:cnn", "--methods", methods, "--data", str(data), *SMALL], capsys
    )
    assert code == 2 and fragment in err, err


def test_imagenet_p_is_normalized_only_by_the_plain_alexnet(caplog):
    import argparse

    from antialias.cli.eval import _Entry, _finish_imagenet_p

    def entry(label: str, spec: str, fp: float, converted: bool = False) -> _Entry:
        rates = {"translate": {"flip_probability": fp, "top5_distance": fp}}
        return _Entry(label, spec, None, converted=converted, results={"imagenet-p": rates})

    args = argparse.Namespace(alexnet_p=None)
    # The zoo's alexnet is anti-aliased: never the normalizer, and the log says what to give.
    entries = [entry("mine", "resnet18", 0.2), entry("alexnet", "alexnet", 0.1)]
    _finish_imagenet_p(entries, args)
    assert entries[0].metrics["imagenet-p"]["mfr"] is None
    assert entries[0].metrics["imagenet-p"]["normalizer"] is None
    assert "torchvision.models:alexnet" in caplog.text
    # torchvision's plain AlexNet is, not its converted copy.
    plain = "torchvision.models:alexnet"
    entries = [
        entry("mine", "resnet18", 0.2),
        entry("alexnet+aps", plain, 0.8, converted=True),
        entry("tv", plain, 0.4),
    ]
    _finish_imagenet_p(entries, args)
    assert entries[0].metrics["imagenet-p"]["mfr"] == pytest.approx(0.5)
    assert entries[0].metrics["imagenet-p"]["normalizer"] == f"model tv ({plain})"


# --- user errors come first and alone: before any model is built or warning logged ------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (
            ["--model", "resnt18"],
            ("unknown model 'resnt18' (did you mean 'resnet18' or 'resnet152' or 'resnet101'?)",),
        ),
        (["--model", "resnet18", "--data", "MISSING"], ("--data folder", "does not exist")),
        (
            ["--model", "resnet18", "--weights", "nowhere.pth"],
            ("--weights 'nowhere.pth'", "does not exist"),
        ),
    ],
)
def test_errors_come_before_any_model_is_built_or_warning_logged(
    data, tmp_path, capsys, caplog, monkeypatch, argv, fragments
):
    import antialias.cli.eval as cli_eval

    built = []
    monkeypatch.setattr(cli_eval, "_build", lambda *a, **k: built.append(a) or torch.nn.Identity())
    argv = [str(tmp_path / "missing") if a == "MISSING" else a for a in argv]
    if "--data" not in argv:
        argv += ["--data", str(data)]
    with caplog.at_level("INFO"):  # "loading model", "randomly initialised" would be INFO, WARNING
        code, _, err = run_cli([*argv, "--metrics", "accuracy", *SMALL], capsys)
    assert_clean_error(code, err, *fragments)
    assert built == [] and not caplog.records, caplog.text
    # The hint names each candidate once (the zoo and torchvision share 'resnet18').
    assert err.count("'resnet18'") <= 1


def test_a_text_file_as_weights_is_one_line_without_torch_internals(data, tmp_path, capsys):
    text = tmp_path / "weights.txt"
    text.write_text("a b c")  # torch.load fails on it with "pop from empty list"
    code, _, err = run_cli(
        ["--model", "resnet18", "--weights", str(text), "--data", str(data), *SMALL], capsys
    )
    assert_clean_error(code, err, "weights.txt", "expected a file written by torch.save")
    assert "pop from empty list" not in err and len(err.strip().splitlines()) == 1, err


def test_weights_given_as_a_url(data, models, tmp_path, hub_dir, capsys):
    # A URL is downloaded (hash-checked when its name carries one) by the one loader, like a file.
    ckpt = tmp_path / "blue.pth"
    torch.save({"state_dict": {"bias": torch.tensor([0.0, 0.0, 5.0])}}, ckpt)
    out_json = tmp_path / "r.json"
    args = ["--model", f"{models}:constant", "--weights", ckpt.as_uri(), "--label", "blue"]
    args += ["--data", str(data)]
    code, out, err = run_cli(
        [*args, "--metrics", "accuracy", "--records", "--output", str(out_json), *SMALL], capsys
    )
    assert code == 0, err
    records = json.loads(out_json.read_text())["models"]["blue"]["records"]["accuracy"]
    assert [r["prediction"] for r in records] == [2] * 6  # the downloaded weights were loaded
