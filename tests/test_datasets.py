"""Robustness data sets: corruptions on the fly (imagecorruptions-imaug) and ImageNet-P sequences."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from antialias.data import load_image_folder
from antialias.datasets import (
    EXTRA_CORRUPTIONS,
    IMAGENET_C_CORRUPTIONS,
    CorruptedImageFolder,
    SequenceFolder,
    corrupt_image,
)

pytest.importorskip("imagecorruptions")


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


def test_every_corruption_is_reproducible_from_its_seed():
    image = (np.random.default_rng(1).random((36, 40, 3)) * 255).astype(np.uint8)
    for name in IMAGENET_C_CORRUPTIONS + EXTRA_CORRUPTIONS:
        a = corrupt_image(image, name, 2, seed=7)
        assert a.dtype == np.uint8 and a.shape == image.shape, name
        assert np.array_equal(a, corrupt_image(Image.fromarray(image), name, 2, seed=7)), name
        assert not np.array_equal(a, image), name
    # Those drawing from generators of their own (skimage's, numba's) follow the seed too.
    for name in ("gaussian_noise", "impulse_noise", "glass_blur"):
        assert not np.array_equal(
            corrupt_image(image, name, 3, seed=1), corrupt_image(image, name, 3, seed=2)
        ), name


def test_corrupt_image_errors(monkeypatch):
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        corrupt_image(image, "rain", 1)
    with pytest.raises(ValueError, match="must be RGB uint8"):
        corrupt_image(image.astype(np.float32), "fog", 1)
    monkeypatch.setitem(sys.modules, "imagecorruptions", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'antialias\[robustness\]'"):
        corrupt_image(image, "fog", 1)
