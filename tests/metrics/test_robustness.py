"""ImageNet-C / ImageNet-P scoring on tiny synthetic folders, against numbers computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from antialias.data import IMAGENET_MEAN, IMAGENET_STD, load_image_folder
from antialias.metrics import (
    ALEXNET_C_ERRORS,
    IMAGENET_C_CORRUPTIONS,
    corruption_errors,
    flip_probability,
    imagenet_c_errors,
    imagenet_c_scores,
    imagenet_p_rates,
    imagenet_p_scores,
    top5_distance,
)
from antialias.metrics.robustness import (
    ALEXNET_CLEAN_ERROR,
    CorruptedImageFolder,
    SequenceFolder,
    _top5_pair_distance,
    corrupt_image,
)


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


def test_corrupted_folder_is_reproducible(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "c" / "0.png"
    path.parent.mkdir(parents=True)
    Image.fromarray((rng.random((36, 36, 3)) * 255).astype(np.uint8)).save(path)
    base = load_image_folder(tmp_path)
    make = lambda seed: CorruptedImageFolder(  # noqa: E731
        base, "shot_noise", 3, before=None, after=transforms.ToTensor(), seed=seed
    )
    a, b, c = make(0)[0][0], make(0)[0][0], make(1)[0][0]
    clean = transforms.ToTensor()(Image.open(path).convert("RGB"))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, clean)
    state = np.random.get_state()[1].copy()
    corrupt_image(np.zeros((32, 32, 3), np.uint8), "impulse_noise", 2, seed=5)
    assert np.array_equal(np.random.get_state()[1], state)  # the global state is restored
    with pytest.raises(ValueError, match="severity must be 1..5, got 6"):
        corrupt_image(np.zeros((32, 32, 3), np.uint8), "fog", 6)
    with pytest.raises(ValueError, match="at least 32x32"):
        corrupt_image(np.zeros((16, 40, 3), np.uint8), "fog", 1)


# --------------------------------------------------------------------------------------------
# ImageNet-P
# --------------------------------------------------------------------------------------------

# Logits of 7 classes per frame "code": code 1 swaps classes 0 and 1; code 2 swaps 5 and 6
# (outside the top 5, top-1 unchanged); code 3 sends class 0 to the last rank and 6 to the first.
TABLE = torch.tensor(
    [
        [6.0, 5, 4, 3, 2, 1, 0],
        [5.0, 6, 4, 3, 2, 1, 0],
        [6.0, 5, 4, 3, 2, 0, 1],
        [0.0, 5, 4, 3, 2, 1, 6],
    ]
)


class CodeOracle(nn.Module):
    """Reads the frame's code (pixel value 10 + 20 * code) and returns its row of ``TABLE``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = torch.round((x[:, 0].mean((-2, -1)) * 255 - 10) / 20).long()
        return TABLE[code]


def _write_sequences(root: Path, perturbation: str) -> None:
    for cls, video, codes in (("n0", "v0", [0, 1, 0, 0]), ("n1", "v1", [2, 2, 3, 2])):
        for t, code in enumerate(codes):
            gray(root / perturbation / cls / video / f"{t:03d}.png", 10 + 20 * code)


def test_flip_probability_by_hand():
    seqs = [torch.tensor([0, 1, 0, 0]), torch.tensor([0, 0, 6, 0])]
    assert flip_probability(seqs, noise=True) == pytest.approx((1 / 3 + 1 / 3) / 2)  # vs frame 0
    assert flip_probability(seqs, noise=False) == pytest.approx((2 / 3 + 2 / 3) / 2)  # consecutive
    # Difficulty 2: frames (0, 2), (1, 3) ... compared.
    assert flip_probability(
        [torch.tensor([0, 1, 0, 0, 1])], noise=False, difficulty=2
    ) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no frame pair"):
        flip_probability([torch.tensor([3])], noise=False)


def test_top5_distance_by_hand_and_against_the_published_formula(generator):
    assert _top5_pair_distance(TABLE[0], TABLE[1]) == 2
    assert _top5_pair_distance(TABLE[0], TABLE[2]) == 0
    assert _top5_pair_distance(TABLE[2], TABLE[3]) == 5
    assert _top5_pair_distance(TABLE[3], TABLE[2]) == 5

    def ordinal_ranks(v: np.ndarray) -> np.ndarray:  # rankdata(-v, "ordinal"), 1-based
        ranks = np.empty(len(v), dtype=np.int64)
        ranks[np.argsort(-v, kind="stable")] = np.arange(1, len(v) + 1)
        return ranks

    def published(a: np.ndarray, b: np.ndarray) -> int:
        # Hendrycks & Dietterich's definition, written from its description: sigma = ranks of b
        # taken in the order of a's ranking; distance = sum over a's top 5 of
        # |cumsum_top5[k] - cumsum_top5[sigma_k - 1]|.
        k = len(a)
        cum = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (k - 1 - 5)))
        sigma = ordinal_ranks(b)[np.argsort(ordinal_ranks(a))]
        return int(np.sum(np.abs(cum[:5] - cum[sigma - 1][:5])))

    for _ in range(50):
        a = torch.randn(10, generator=generator)
        b = a + 0.7 * torch.randn(10, generator=generator)
        assert _top5_pair_distance(a, b) == published(a.numpy(), b.numpy())
    seqs = [TABLE[[0, 1, 0, 0]], TABLE[[2, 2, 3, 2]]]
    assert top5_distance(seqs, noise=True) == pytest.approx((2 / 3 + 5 / 3) / 2)
    assert top5_distance(seqs, noise=False) == pytest.approx((4 / 3 + 10 / 3) / 2)


def test_imagenet_p_rates_and_scores_on_frame_folders(tmp_path):
    _write_sequences(tmp_path, "gaussian_noise")
    _write_sequences(tmp_path, "translate")
    rates = imagenet_p_rates(CodeOracle(), tmp_path, transform=transforms.ToTensor(), batch_size=2)
    assert rates["gaussian_noise"] == pytest.approx(
        {"flip_probability": 1 / 3, "top5_distance": 7 / 6}
    )
    assert rates["translate"] == pytest.approx({"flip_probability": 2 / 3, "top5_distance": 7 / 3})
    hard = imagenet_p_rates(
        CodeOracle(),
        tmp_path,
        perturbations=["translate"],
        difficulty=2,
        transform=transforms.ToTensor(),
    )
    assert hard["translate"]["flip_probability"] == pytest.approx(1 / 2)

    alexnet = {
        "gaussian_noise": {"flip_probability": 0.5, "top5_distance": 2.0},
        "translate": {"flip_probability": 0.4, "top5_distance": 1.0},
    }
    r = imagenet_p_scores(rates, alexnet=alexnet)
    assert r.flip_rate == pytest.approx({"gaussian_noise": 2 / 3, "translate": 5 / 3})
    assert r.mfr == pytest.approx(7 / 6)
    assert r.mt5d == pytest.approx((7 / 12 + 7 / 3) / 2)
    assert not r.complete
    raw = imagenet_p_scores(rates)
    assert raw.mfr is None and raw.summary()["mean_flip_probability"] == pytest.approx(1 / 2)
    with pytest.raises(FileNotFoundError, match="ImageNet-P folder .* does not exist"):
        imagenet_p_rates(CodeOracle(), tmp_path, perturbations=["gaussian_noise"], difficulty=2)


def test_sequence_folder_reads_videos(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "n0" / "clip.mp4"
    path.parent.mkdir()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write mp4 here")
    for t in range(5):
        writer.write(np.full((32, 32, 3), 40 * t, dtype=np.uint8))
    writer.release()
    frames, label = SequenceFolder(tmp_path)[0]
    assert frames.shape == (5, 3, 32, 32) and label == 0
    # Lossy codec: the frame brightness still rises as written.
    means = frames.mean((1, 2, 3))
    assert torch.all(means[1:] > means[:-1])
    assert math.isclose(means[0].item(), 0.0, abs_tol=0.05)
