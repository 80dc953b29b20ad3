"""Data sets of the robustness benchmarks: ImageNet-C corruptions on the fly and ImageNet-P sequences.

:func:`corrupt_image` applies the ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) with
the maintained ``imagecorruptions-imaug`` package (the benchmark's corruption code as a library,
installed by ``antialias[robustness]``), reproducibly from a seed; :class:`CorruptedImageFolder`
views an image folder through one corruption and severity. :class:`SequenceFolder` reads
ImageNet-P perturbation sequences (videos or frame folders). :func:`cifar10` reads torchvision's
CIFAR-10 without letting its pickled batches run code. The scores live in
:mod:`antialias.metrics.imagenet_c` and :mod:`antialias.metrics.imagenet_p`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from antialias.data import IMG_EXTENSIONS

if TYPE_CHECKING:
    from torchvision.datasets import CIFAR10

__all__ = [
    "EXTRA_CORRUPTIONS",
    "IMAGENET_C_CORRUPTIONS",
    "VIDEO_EXTENSIONS",
    "CorruptedImageFolder",
    "SequenceFolder",
    "cifar10",
    "collate_sequences",
    "corrupt_image",
]

#: The 15 ImageNet-C corruptions that mCE averages (noise, blur, weather, digital).
IMAGENET_C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)

#: The benchmark's four extra corruptions (its validation set), scored but never in mCE.
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

#: File name endings read as ImageNet-P videos (lower case).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm")

# Corruptions that draw from a generator of their own (skimage's, numba's) and take its seed as an
# argument; the others draw from numpy's global generator.
_OWN_SEED = ("impulse_noise", "glass_blur")


def _corruptions() -> Any:
    try:
        return importlib.import_module("imagecorruptions")
    except ModuleNotFoundError as exc:
        raise ImportError(
            "on-the-fly corruptions need the imagecorruptions-imaug package: pip install 'antialias[robustness]'"
        ) from exc


def corrupt_image(
    image: Image.Image | np.ndarray,
    corruption: str,
    severity: int,
    *,
    seed: int | None = None,
) -> np.ndarray:
    """Apply an ImageNet-C corruption (``imagecorruptions-imaug``).

    Args:
        image: RGB ``PIL.Image`` or ``(H, W, 3)`` uint8 array, at least 32x32.
        corruption: one of :data:`IMAGENET_C_CORRUPTIONS` or :data:`EXTRA_CORRUPTIONS`.
        severity: 1..5.
        seed: makes the corruption reproducible: seeds numpy's global generator for this call
            only (the previous state is restored) and the corruptions that draw from a generator
            of their own; None: fresh randomness.

    Returns:
        The corrupted image, ``(H, W, 3)`` uint8, the size of ``image``.

    Raises:
        ValueError: an unknown corruption, a severity outside 1..5, or not an RGB uint8 image of at
            least 32x32.
        ImportError: the package is not installed.
    """
    if corruption not in IMAGENET_C_CORRUPTIONS + EXTRA_CORRUPTIONS:
        raise ValueError(
            f"unknown corruption {corruption!r}; expected one of {IMAGENET_C_CORRUPTIONS + EXTRA_CORRUPTIONS}"
        )
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity must be 1..5, got {severity!r}")
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {array.dtype} {array.shape}")
    if min(array.shape[:2]) < 32:
        raise ValueError(f"corruptions need images of at least 32x32, got {array.shape[:2]}")
    package = _corruptions()
    state = np.random.get_state() if seed is not None else None
    try:
        options: dict[str, Any] = {}
        if seed is not None:
            np.random.seed(seed)
            if corruption in _OWN_SEED:
                options["seed"] = int(np.random.randint(2**31 - 1))
        out = package.corrupt(array, corruption_name=corruption, severity=severity, **options)
    finally:
        if state is not None:
            np.random.set_state(state)
    out = np.asarray(out)
    if out.dtype != np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    # Some corruptions (frost, ...) may return another size for non-square inputs.
    if out.shape[:2] != array.shape[:2]:
        out = np.asarray(Image.fromarray(out).resize(array.shape[1::-1], Image.Resampling.BILINEAR))
    return out


class CorruptedImageFolder(Dataset):
    """An image folder seen through one corruption at one severity, reproducibly.

    ``before`` (e.g. Resize 256 + CenterCrop 224, how ImageNet-C was made) is applied to the
    PIL image, then the corruption, then ``after`` (ToTensor + Normalize). Image ``i`` is
    corrupted with a seed derived from ``(seed, i, corruption, severity)``, so results do not
    depend on batch order or workers.

    Args:
        dataset: an :class:`antialias.data.ImageFolderDataset` with ``transform=None``.
        corruption: corruption name.
        severity: 1..5.
        before: PIL -> PIL transform applied before corrupting.
        after: PIL -> tensor transform applied after.
        seed: base seed.
    """

    def __init__(
        self,
        dataset: Dataset,
        corruption: str,
        severity: int,
        *,
        before: Callable | None,
        after: Callable,
        seed: int = 0,
    ) -> None:
        self.dataset = dataset
        self.corruption = corruption
        self.severity = severity
        self.before = before
        self.after = after
        self.seed = seed
        names = IMAGENET_C_CORRUPTIONS + EXTRA_CORRUPTIONS
        self._code = names.index(corruption) if corruption in names else len(names)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[index]
        if self.before is not None:
            image = self.before(image)
        seq = np.random.SeedSequence([self.seed, index, self._code, self.severity])
        seed = int(seq.generate_state(1)[0])
        corrupted = corrupt_image(image, self.corruption, self.severity, seed=seed)
        return self.after(Image.fromarray(corrupted)), label


class SequenceFolder(Dataset):
    """ImageNet-P sequences: ``root/<class>/<sequence>``, a video file or a folder of frames.

    Yields ``(frames, label)`` with ``frames`` of shape ``(T, C, H, W)``. Videos are decoded with
    OpenCV (``opencv-python``), as the published evaluation does; frame folders are read in name
    order.

    Args:
        root: the perturbation's folder.
        transform: applied to each frame (a ``PIL.Image``).
    """

    def __init__(self, root: str | os.PathLike, transform: Callable | None = None) -> None:
        base = Path(root)
        if not base.is_dir():
            raise FileNotFoundError(f"ImageNet-P folder {str(root)!r} does not exist")
        self.root = str(base)
        self.classes = sorted(p.name for p in base.iterdir() if p.is_dir())
        self.transform = transform
        self.samples: list[tuple[str, int]] = []
        for index, name in enumerate(self.classes):
            for entry in sorted((base / name).iterdir()):
                if entry.is_dir() or entry.name.lower().endswith(VIDEO_EXTENSIONS):
                    self.samples.append((str(entry), index))
        if not self.samples:
            raise ValueError(
                f"no sequence (video file or frame folder) in the class folders of {str(root)!r}"
            )

    def __len__(self) -> int:
        return len(self.samples)

    def _frames(self, path: str) -> list[Image.Image]:
        if os.path.isdir(path):
            files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMG_EXTENSIONS))
            frames = []
            for name in files:
                try:
                    with Image.open(os.path.join(path, name)) as img:
                        frames.append(img.convert("RGB"))
                except OSError as exc:
                    raise ValueError(
                        f"cannot read frame {os.path.join(path, name)!r} ({exc})"
                    ) from exc
            return frames
        try:
            import cv2
        except ImportError as exc:
            raise ImportError(
                "decoding ImageNet-P videos needs OpenCV: pip install opencv-python "
                "(or extract the frames into one folder per sequence)"
            ) from exc
        capture = cv2.VideoCapture(path)
        frames = []
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        finally:
            capture.release()
        return frames

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        frames = self._frames(path)
        if len(frames) < 2:
            raise ValueError(f"sequence {path!r} has {len(frames)} frame(s); at least 2 needed")
        if self.transform is not None:
            tensors = [self.transform(f) for f in frames]
        else:
            tensors = [torch.from_numpy(np.array(f)).permute(2, 0, 1).float() / 255 for f in frames]
        return torch.stack(tensors), label


def collate_sequences(batch: list[tuple[torch.Tensor, int]]) -> list[torch.Tensor]:
    """A DataLoader ``collate_fn`` for :class:`SequenceFolder`: the frames of each sequence, as a list."""
    return [frames for frames, _ in batch]


def cifar10(root: str | os.PathLike, *, train: bool, download: bool = False) -> CIFAR10:
    """torchvision's ``CIFAR10``, its pickled batches read with restricted unpickling.

    Only plain values and numpy arrays are built from the batch files, so a planted batch cannot
    run code, even past torchvision's MD5 check.

    Args:
        root: the folder holding (or to hold, with ``download``) ``cifar-10-batches-py``.
        train: the training set, else the test set.
        download: let torchvision download the archive when it is missing (needs the internet).

    Raises:
        RuntimeError: torchvision's "Dataset not found or corrupted".
        OSError: the download failed.
        antialias._io.UnsafeFileError: a batch file names a function or class it may not build.
    """
    import torchvision.datasets.cifar as tv_cifar
    from torchvision.datasets import CIFAR10

    from antialias._io import restricted_unpickling

    with restricted_unpickling(tv_cifar):
        return CIFAR10(str(root), train=train, download=download)
