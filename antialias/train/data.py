"""Training data: the standard ImageNet augmentation, made independent of how the run is split.

Convention:
    The random crop and flip of image ``i`` in epoch ``e`` are drawn from a generator seeded with
    ``(seed, e, i)`` and nothing else, so an image is augmented the same way whatever the number of
    processes, data-loader workers or restarts. A run on one process and the same run on N processes
    (with the same global batch) therefore see identical batches, and a resumed run sees the batches
    the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["EpochSeededDataset", "TransformedDataset", "check_same_classes", "train_transform"]


def train_transform(
    crop_size: int = 224, *, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> Callable[[Any], torch.Tensor]:
    """The reference's training augmentation: RandomResizedCrop, horizontal flip, ImageNet Normalize.

    Args:
        crop_size: side of the square crop fed to the network.
        mean: per-channel mean; default ImageNet's (``antialias.data.IMAGENET_MEAN``).
        std: per-channel standard deviation; default ImageNet's.

    Shape:
        - Input: a PIL image (any size).
        - Output: :math:`(3, \\text{crop\\_size}, \\text{crop\\_size})` float tensor.

    >>> train_transform(32).transforms[0].size
    (32, 32)
    """
    from torchvision import transforms  # imported here: torchvision is slow to import

    if not isinstance(crop_size, int) or isinstance(crop_size, bool) or crop_size < 1:
        raise ValueError(f"crop_size must be a positive int, got {crop_size!r}")
    from antialias.data import IMAGENET_MEAN, IMAGENET_STD

    return transforms.Compose(
        [
            transforms.RandomResizedCrop(crop_size),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(
                list(IMAGENET_MEAN if mean is None else mean),
                list(IMAGENET_STD if std is None else std),
            ),
        ]
    )


class TransformedDataset(Dataset):
    """Apply a deterministic ``transform`` to the images of ``dataset`` (e.g. for validation)."""

    def __init__(self, dataset: Dataset, transform: Callable[[Any], Any]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, label = self.dataset[index]
        return self._apply(image, index), label

    def _apply(self, image: Any, index: int) -> Any:
        return self.transform(image)


class EpochSeededDataset(TransformedDataset):
    """Apply a random ``transform`` whose randomness depends only on ``(seed, epoch, index)``.

    Call :meth:`set_epoch` before each epoch, before the data loader creates its workers (they copy
    the dataset when an iteration starts).

    Args:
        dataset: yields ``(image, label)`` with untransformed images.
        transform: a callable that draws its randomness from torch's global generator, as
            torchvision's transforms do.
        seed: the run's seed.
    """

    def __init__(self, dataset: Dataset, transform: Callable[[Any], Any], seed: int = 0) -> None:
        super().__init__(dataset, transform)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (0-based)."""
        self.epoch = int(epoch)

    def _apply(self, image: Any, index: int) -> Any:
        # fork_rng restores the global generator afterwards, so the model's own randomness (dropout)
        # is untouched by data loading with or without workers.
        with torch.random.fork_rng(devices=[]):
            # Seed the CPU generator only: torch.manual_seed would also reseed (and, unlike the
            # CPU one, not restore) the CUDA generators that GPU dropout draws from.
            # SeedSequence mixes the three numbers well; consecutive indices get unrelated streams.
            sample_seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(
                1, dtype=np.uint64
            )[0]
            torch.default_generator.manual_seed(int(sample_seed))
            return self.transform(image)


def check_same_classes(
    train_classes: Sequence[str], val_classes: Sequence[str], *, train_dir: str, val_dir: str
) -> None:
    """Check that the training and validation folders have the same class sub-folders.

    Labels are class indices in sorted folder order, so any difference would silently mislabel the
    validation set.

    Raises:
        ValueError: naming the classes found in one folder but not in the other.
    """
    if list(train_classes) == list(val_classes):
        return
    parts = []
    for one, other, names in (
        (train_dir, val_dir, set(train_classes) - set(val_classes)),
        (val_dir, train_dir, set(val_classes) - set(train_classes)),
    ):
        shown = sorted(names)
        if shown:
            more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
            parts.append(
                f"in {one!r} but not in {other!r}: {', '.join(map(repr, shown[:10]))}{more}"
            )
    raise ValueError(
        "training and validation folders must have the same class sub-folders; classes "
        + "; ".join(parts)
    )
