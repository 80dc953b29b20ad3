"""ImageNet-P scoring on tiny synthetic sequences, against numbers computed by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from antialias.metrics import flip_probability, imagenet_p_rates, imagenet_p_scores, top5_distance
from antialias.metrics.imagenet_p import _top5_pair_distance


def gray(path: Path, value: int, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)


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
