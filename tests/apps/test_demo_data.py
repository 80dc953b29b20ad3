"""The demo's data sets: digits' fixed split and normalization, CIFAR-10's conversion (antialias.apps.demo.data)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sklearn")

from antialias.apps import demo  # noqa: E402
from antialias.apps.demo import load_data  # noqa: E402


@pytest.fixture(scope="module")
def digits() -> demo.DemoData:
    return load_data("digits")


def test_digits_split_and_normalization(digits):
    assert digits.train_images.shape == (1347, 1, 32, 32) and digits.test_images.shape == (
        450,
        1,
        32,
        32,
    )
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
            self.data = torch.randint(
                0, 256, (n, 32, 32, 3), generator=g, dtype=torch.uint8
            ).numpy()
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
    assert torch.equal(
        data.train_images[0, 0].flatten().argsort(stable=True),
        expected[0].flatten().argsort(stable=True),
    )
