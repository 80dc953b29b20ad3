"""ImageNet-C scoring on tiny synthetic folders, against numbers computed by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from antialias.data import IMAGENET_MEAN, IMAGENET_STD
from antialias.metrics import (
    ALEXNET_C_ERRORS,
    IMAGENET_C_CORRUPTIONS,
    corruption_errors,
    imagenet_c_errors,
    imagenet_c_scores,
)
from antialias.metrics.imagenet_c import ALEXNET_CLEAN_ERROR


def gray(path: Path, value: int, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)


class Threshold(nn.Module):
    """Class 1 when the mean of channel 0 (in [0, 1], after undoing ``mean``/``std``) is > 0.5."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = (x[:, 0] * self.std + self.mean).mean((-2, -1))
        return torch.stack([0.5 - v, v - 0.5], dim=1)


# --------------------------------------------------------------------------------------------
# ImageNet-C
# --------------------------------------------------------------------------------------------


def test_imagenet_c_scores_by_hand():
    errors = {"gaussian_noise": {1: 0.4, 2: 0.8}, "brightness": {1: 0.0, 2: 0.4}}
    alexnet = {"gaussian_noise": {1: 0.5, 2: 1.0}, "brightness": {1: 0.25, 2: 0.55}}
    r = imagenet_c_scores(errors, clean_error=0.2, alexnet_errors=alexnet, alexnet_clean_error=0.3)
    assert r.ce == pytest.approx({"gaussian_noise": 1.2 / 1.5, "brightness": 0.4 / 0.8})
    assert r.mce == pytest.approx((0.8 + 0.5) / 2)
    # Relative: sum of (E_s - E_clean) over sum of (A_s - A_clean).
    rel_gn = ((0.4 - 0.2) + (0.8 - 0.2)) / ((0.5 - 0.3) + (1.0 - 0.3))
    rel_br = ((0.0 - 0.2) + (0.4 - 0.2)) / ((0.25 - 0.3) + (0.55 - 0.3))
    assert r.relative_ce == pytest.approx({"gaussian_noise": rel_gn, "brightness": rel_br})
    assert r.relative_mce == pytest.approx((rel_gn + rel_br) / 2)
    assert not r.complete
    assert r.mean_errors == pytest.approx({"gaussian_noise": 0.6, "brightness": 0.2})


def test_imagenet_c_scores_published_alexnet_normalization():
    # With the published AlexNet means and all 15 corruptions at 5 severities: complete.
    errors = {c: {s: 0.5 for s in range(1, 6)} for c in IMAGENET_C_CORRUPTIONS}
    r = imagenet_c_scores(errors, clean_error=0.25)
    assert r.complete
    assert r.ce["brightness"] == pytest.approx(0.5 / 0.564592)
    assert r.mce == pytest.approx(
        sum(0.5 / ALEXNET_C_ERRORS[c] for c in IMAGENET_C_CORRUPTIONS) / 15
    )
    assert r.relative_ce["fog"] == pytest.approx((0.5 - 0.25) / (0.819324 - ALEXNET_CLEAN_ERROR))
    assert ALEXNET_CLEAN_ERROR == pytest.approx(0.4345)
    # Unknown corruptions keep their errors but get no CE; bad errors are refused.
    r = imagenet_c_scores({"speckle_noise": {1: 0.3}})
    assert r.ce == {} and r.mce is None and r.errors == {"speckle_noise": {1: 0.3}}
    with pytest.raises(ValueError, match=r"must be in \[0, 1\], got 1.5"):
        imagenet_c_scores({"fog": {1: 1.5}})


def _write_imagenet_c(root: Path) -> None:
    # (corruption, severity): values of the class-0 images, of the class-1 images. Threshold()
    # calls class 0 below 128: wrong = class-0 images >= 128 and class-1 images < 128.
    layout = {
        ("gaussian_noise", 1): ([30, 30, 200], [220, 100]),  # 2 wrong of 5
        ("gaussian_noise", 2): ([200, 200, 200], [10, 220]),  # 4 wrong
        ("brightness", 1): ([30, 30, 30], [220, 220]),  # 0 wrong
        ("brightness", 2): ([30, 30, 30], [10, 10]),  # 2 wrong
    }
    for (corruption, severity), (zeros, ones) in layout.items():
        for cls, values in (("n000", zeros), ("n001", ones)):
            for i, v in enumerate(values):
                gray(root / corruption / str(severity) / cls / f"{i}.png", v)


def test_imagenet_c_errors_on_synthetic_folder(tmp_path):
    _write_imagenet_c(tmp_path)
    errors = imagenet_c_errors(Threshold(), tmp_path, transform=transforms.ToTensor(), batch_size=2)
    assert errors == {
        "brightness": {1: pytest.approx(0.0), 2: pytest.approx(0.4)},
        "gaussian_noise": {1: pytest.approx(0.4), 2: pytest.approx(0.8)},
    }
    only = imagenet_c_errors(
        Threshold(),
        tmp_path,
        corruptions=["brightness"],
        severities=[2],
        transform=transforms.ToTensor(),
    )
    assert only == {"brightness": {2: pytest.approx(0.4)}}
    # The default AlexNet normalization on these errors.
    r = imagenet_c_scores(errors)
    assert r.ce["gaussian_noise"] == pytest.approx(0.6 / 0.886428)
    assert r.ce["brightness"] == pytest.approx(0.2 / 0.564592)


def test_imagenet_c_errors_bad_layout(tmp_path):
    _write_imagenet_c(tmp_path)
    gray(tmp_path / "fog" / "1" / "other" / "0.png", 10)
    with pytest.raises(ValueError, match="class folders of .* differ"):
        imagenet_c_errors(Threshold(), tmp_path, transform=transforms.ToTensor())
    with pytest.raises(FileNotFoundError, match="corruption folder .*frost.* does not exist"):
        imagenet_c_errors(
            Threshold(), tmp_path, corruptions=["frost"], transform=transforms.ToTensor()
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        imagenet_c_errors(Threshold(), tmp_path / "missing")


def test_corruption_errors_on_the_fly(tmp_path):
    # Gray images: class 0 at 60/255, class 1 at 200/255. imagecorruptions' brightness adds c to
    # the HSV value (c = 0.1 at severity 1, 0.5 at 5): severity 5 lifts class 0 over the
    # threshold (0.235 + 0.5 > 0.5), severity 1 does not; gaussian noise at severity 1 (sigma
    # 0.08) moves a 40x40 image's mean by ~0.002.
    for i in range(2):
        gray(tmp_path / "a" / f"{i}.png", 60, size=40)
        gray(tmp_path / "b" / f"{i}.png", 200, size=40)
    model = Threshold(IMAGENET_MEAN[0], IMAGENET_STD[0])
    errors = corruption_errors(
        model,
        tmp_path,
        corruptions=["brightness", "gaussian_noise"],
        severities=[1, 5],
        resize=None,
        crop=40,
        batch_size=3,
    )
    assert errors["brightness"] == {1: 0.0, 5: 0.5}
    assert errors["gaussian_noise"][1] == 0.0
    with pytest.raises(ValueError, match=r"unknown corruption\(s\) \['rain'\]"):
        corruption_errors(model, tmp_path, corruptions=["rain"])
