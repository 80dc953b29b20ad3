"""Training augmentation that depends only on (seed, epoch, image index)."""

from __future__ import annotations

import pytest
import torch

from antialias.data import load_image_folder
from antialias.train.data import EpochSeededDataset, check_same_classes, train_transform


def test_augmentation_depends_on_seed_epoch_and_index_only(image_data):
    folder = load_image_folder(image_data / "train")
    data = EpochSeededDataset(folder, train_transform(32), seed=5)
    first = data[3][0]
    torch.manual_seed(123)  # the global generator does not matter...
    state = torch.get_rng_state()
    assert torch.equal(data[3][0], first)
    assert torch.equal(torch.get_rng_state(), state)  # ... and is left untouched
    assert first.shape == (3, 32, 32)
    data.set_epoch(1)
    assert not torch.equal(data[3][0], first)  # another epoch, another crop
    other = EpochSeededDataset(folder, train_transform(32), seed=6)
    assert not torch.equal(other[3][0], first)


def test_class_mismatch_names_both_sides():
    with pytest.raises(
        ValueError, match=r"in 'tr' but not in 'va': 'cat'; in 'va' but not in 'tr': 'dog'"
    ):
        check_same_classes(["cat", "cow"], ["cow", "dog"], train_dir="tr", val_dir="va")
    check_same_classes(["a", "b"], ["a", "b"], train_dir="tr", val_dir="va")
