"""The demo's data: scikit-learn's bundled digits on a 32x32 canvas, or CIFAR-10, as normalized tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.apps.demo.config import DATASETS
from antialias.datasets import cifar10

__all__ = ["DemoData", "load_data"]


@dataclass
class DemoData:
    """Normalized tensors of one data set.

    Attributes:
        name: ``"digits"`` or ``"cifar10"``.
        train_images: ``(N, C, 32, 32)`` float32, normalized.
        train_labels: ``(N,)`` int64.
        test_images: ``(M, C, 32, 32)``, the images as trained (centred digits).
        test_labels: ``(M,)``.
        background: per-channel value of an empty (black / mean-colour) pixel after normalization,
            used to pad the test images for the crop protocols.
        classes: class names.
    """

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    background: Tensor
    classes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[1])

    def padded_test_images(self, pad: int) -> Tensor:
        """The test images padded by ``pad`` pixels on every side with the background value."""
        n, c, h, w = self.test_images.shape
        out = self.background.view(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
        out[:, :, pad : pad + h, pad : pad + w] = self.test_images
        return out


def _digits(canvas: int = 32, scale: int = 2) -> tuple[Tensor, Tensor, list[str]]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "the digits demo needs scikit-learn: pip install 'antialias[demo]'"
        ) from exc
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    # Nearest-neighbour upscaling keeps the scans' sharp pixel edges: the high frequencies whose
    # aliasing the experiment is about (and no interpolation blurs them away before the network).
    images = F.interpolate(images, scale_factor=scale, mode="nearest")
    size = images.shape[-1]
    top = (canvas - size) // 2
    out = torch.zeros(images.shape[0], 1, canvas, canvas)
    out[:, :, top : top + size, top : top + size] = images
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return out, labels, [str(c) for c in bunch.target_names]


def _cifar10(root: str | None, download: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, list[str]]:
    if root is None:
        raise ValueError(
            "--dataset cifar10 needs --data DIR: the folder that holds (or will hold, with --download) cifar-10-batches-py"
        )
    path = Path(root).expanduser()
    try:
        # Read safely: a planted batch file cannot run code (see antialias.datasets.cifar10).
        train = cifar10(path, train=True, download=download)
        test = cifar10(path, train=False, download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(
            f"CIFAR-10 not found in {str(path)!r} (expected {str(path / 'cifar-10-batches-py')!r}); "
            "pass --download to fetch it (needs the internet), or point --data at a folder that has it"
        ) from exc
    except OSError as exc:  # download failed: offline
        raise FileNotFoundError(f"could not download CIFAR-10 into {str(path)!r}: {exc}") from exc

    def to_tensor(ds: Any) -> tuple[Tensor, Tensor]:
        images = torch.as_tensor(ds.data).permute(0, 3, 1, 2).float() / 255.0
        return images, torch.as_tensor(ds.targets, dtype=torch.int64)

    return (*to_tensor(train), *to_tensor(test), list(train.classes))


def load_data(
    dataset: str = "digits",
    *,
    data_dir: str | None = None,
    download: bool = False,
    train_size: int | None = None,
    test_size: int | None = None,
) -> DemoData:
    """Load and normalize the demo's data set.

    Digits: the 1,797 scans, upscaled x2 and centred on a 32x32 canvas, split once (a fixed
    permutation, generator seed 0) into 1,347 training and 450 test images. CIFAR-10: torchvision's
    training and test sets. Both are normalized with the training set's per-channel mean and
    standard deviation.

    The arguments are :class:`~antialias.apps.demo.DemoConfig`'s fields of the same names.

    Raises:
        ValueError: unknown data set, or CIFAR-10 without ``data_dir``.
        FileNotFoundError: CIFAR-10 missing from ``data_dir`` (and not downloaded).
    """
    if dataset == "digits":
        images, labels, classes = _digits()
        perm = torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(0))
        test_idx, train_idx = perm[:450], perm[450:]
        x_train, y_train = images[train_idx], labels[train_idx]
        x_test, y_test = images[test_idx], labels[test_idx]
    elif dataset == "cifar10":
        x_train, y_train, x_test, y_test, classes = _cifar10(data_dir, download)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    x_train, y_train, x_test, y_test = (
        x_train[:train_size],
        y_train[:train_size],
        x_test[:test_size],
        y_test[:test_size],
    )
    mean = x_train.mean(dim=(0, 2, 3))
    std = x_train.std(dim=(0, 2, 3)).clamp_min(1e-6)

    def norm(x: Tensor) -> Tensor:
        return ((x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)).contiguous()

    # The background of the digits is black (0); CIFAR-10 is padded with its mean colour.
    background = -mean / std if dataset == "digits" else torch.zeros_like(mean)
    return DemoData(dataset, norm(x_train), y_train, norm(x_test), y_test, background, classes)
