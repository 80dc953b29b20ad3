"""Image-folder loading shared by evaluation and training.

:func:`load_image_folder` reads a folder in the ImageNet layout (``root/<class>/<image>``, classes
sorted by name, as torchvision's ``ImageFolder``), or a flat folder of images without labels. It
fails early and clearly on the problems a long evaluation should not discover half-way: a missing
or empty folder, an unreadable image, an image smaller than the crop.

:func:`eval_transform` is the accuracy protocol of the paper (Resize 256, CenterCrop 224) and
:func:`consistency_transform` the shift protocol (Resize 256, CenterCrop 256, from which the metrics
take shifted 224 crops).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from torch.utils.data import Dataset

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMG_EXTENSIONS",
    "CorruptImageError",
    "ImageFolderDataset",
    "consistency_transform",
    "eval_transform",
    "load_image_folder",
]

logger = logging.getLogger(__name__)

#: Per-channel mean and standard deviation of ImageNet (RGB, pixel values in [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: File name endings read as images (lower case), as torchvision's ImageFolder.
IMG_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)

_ON_CORRUPT = ("fail", "skip")


class CorruptImageError(ValueError):
    """An image file that cannot be read; the message names its path."""


# Pixel ranges of the high-depth modes: "I;16*" are 16-bit; "I" (32-bit int) holds 16-bit PNGs in
# older Pillow versions; "F" is 32-bit float (TIFF), in [0, 1] or [0, 255] by convention.
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_rgb(img: Image.Image, path: str) -> Image.Image:
    """An 8-bit RGB copy of ``img``, converting 16-bit and float pixels by their real range.

    PIL's own ``convert("RGB")`` clips such pixels at 255 (a 16-bit image comes out almost white, a
    float image in [0, 1] black): here 16-bit values are divided by 257 (65535 -> 255), float values
    in [0, 1] multiplied by 255, float values in [0, 255] kept; anything else is refused by name.
    """
    if img.mode not in _HIGH_DEPTH_MODES:
        return img.convert("RGB")
    import numpy as np

    pixels = np.asarray(img)
    if pixels.size == 0:
        raise CorruptImageError(f"image {path!r} has no pixels ({img.size[0]}x{img.size[1]})")
    if img.mode == "F":
        if not np.isfinite(pixels).all():
            raise CorruptImageError(
                f"image {path!r} holds NaN or infinite pixels (a float image); expected finite values"
            )
        low, high = float(pixels.min()), float(pixels.max())
        if low >= 0 and high <= 1:
            scaled = pixels * 255.0
        elif low >= 0 and high <= 255:
            scaled = pixels
        else:
            raise CorruptImageError(
                f"image {path!r} is a float image with values in [{low:g}, {high:g}]; expected [0, 1] or [0, 255] "
                "(convert it to 8-bit first)"
            )
    else:
        low, high = int(pixels.min()), int(pixels.max())
        if low < 0 or high > 65535:
            raise CorruptImageError(
                f"image {path!r} is a 32-bit integer image with values in [{low}, {high}]; expected 16-bit values "
                "(0..65535) or an 8-bit image"
            )
        scaled = pixels.astype(np.float64) / 257.0
    gray = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    return gray.convert("RGB")


def _to_size_pair(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    pair = tuple(int(s) for s in size)
    if len(pair) != 2:
        raise ValueError(f"min_size must be an int or a (height, width) pair, got {size!r}")
    return pair  # type: ignore[return-value]


class ImageFolderDataset(Dataset):
    """Images of a folder with their class indices (torchvision ``ImageFolder`` semantics).

    Build it with :func:`load_image_folder`, which checks the folder. Attributes follow
    ``ImageFolder``: ``root``, ``classes`` (sorted class-folder names; empty for a flat folder),
    ``class_to_idx``, ``samples`` (list of ``(path, class_index)``), ``targets``. Images of a flat
    folder (no class sub-folders) get the label ``-1``: no label.

    Args:
        root: the folder.
        samples: ``(path, class_index)`` pairs.
        classes: class names, in index order.
        transform: applied to the RGB ``PIL.Image``.
        rejected: paths of the images the up-front check of :func:`load_image_folder` left out
            (``on_corrupt="skip"``), kept as ``rejected``; :attr:`skipped` lists those that failed later.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        samples: list[tuple[str, int]],
        classes: list[str],
        transform: Callable[[Image.Image], Any] | None = None,
        on_corrupt: Literal["fail", "skip"] = "fail",
        rejected: Sequence[str] = (),
    ) -> None:
        if on_corrupt not in _ON_CORRUPT:
            raise ValueError(f"on_corrupt must be one of {_ON_CORRUPT}, got {on_corrupt!r}")
        self.root = str(root)
        self.rejected = list(rejected)
        self.samples = samples
        self.classes = classes
        self.class_to_idx = {name: i for i, name in enumerate(classes)}
        self.transform = transform
        self.on_corrupt = on_corrupt
        # One flag per image, in shared memory: data-loader workers mark what they skipped, and the
        # main process counts it (each worker writes only its own indices: no race).
        self._failed = torch.zeros(len(samples), dtype=torch.bool)
        if on_corrupt == "skip":
            self._failed.share_memory_()

    @property
    def skipped(self) -> list[str]:
        """Paths of the images that failed to decode and were skipped (``on_corrupt="skip"``)."""
        return [self.samples[i][0] for i in self._failed.nonzero().flatten().tolist()]

    @property
    def targets(self) -> list[int]:
        return [target for _, target in self.samples]

    @property
    def imgs(self) -> list[tuple[str, int]]:
        return self.samples

    @property
    def labelled(self) -> bool:
        """Whether the images have class labels (the folder has class sub-folders)."""
        return bool(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def _decode(self, index: int) -> Image.Image:
        path = self.samples[index][0]
        try:
            with Image.open(path) as img:
                img.load()  # the whole file: a truncated JPEG fails here, not half-way through a batch
                return _to_rgb(img, path)
        except CorruptImageError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            # Raised in DataLoader workers too; the path is what the user needs to act on.
            raise CorruptImageError(
                f"cannot read image {path!r} ({exc}); remove it or pass on_corrupt='skip'"
            ) from exc

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, target = self.samples[index]
        try:
            image = self._decode(index)
        except CorruptImageError as exc:
            if self.on_corrupt != "skip":
                raise
            image, target = self._substitute(index, exc)
        if self.transform is not None:
            image = self.transform(image)
        return image, target

    def _substitute(self, index: int, error: Exception) -> tuple[Image.Image, int]:
        """Skip an image that fails to decode: the next readable image of the same class stands in.

        A batch keeps its size and the class its share; the skipped file is logged by name and
        counted in :attr:`skipped`.
        """
        self._failed[index] = True
        logger.warning(
            f"skipping image {self.samples[index][0]!r}: it cannot be decoded ({error.__cause__ or error})"
        )
        target = self.samples[index][1]
        n = len(self.samples)
        for step in range(1, n):
            other = (index + step) % n
            if self.samples[other][1] != target or bool(self._failed[other]):
                continue
            try:
                return self._decode(other), target
            except CorruptImageError as exc:
                self._failed[other] = True
                logger.warning(
                    f"skipping image {self.samples[other][0]!r}: it cannot be decoded ({exc.__cause__ or exc})"
                )
        raise CorruptImageError(
            f"no readable image left in class {target} of {self.root!r}: every image of it failed to decode"
        ) from error

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={self.root!r}, images={len(self)}, "
            f"classes={len(self.classes)})"
        )


def _find_images(
    directory: Path, extensions: tuple[str, ...], exclude: frozenset[str] = frozenset()
) -> list[str]:
    """Image files under ``directory``: hidden entries ignored, symbolic links followed, each folder once.

    A link back to a folder already walked (``ln -s .. data/a/up``) would otherwise make ``os.walk``
    loop and count images many times under the wrong class.
    """
    found = []
    top = os.path.realpath(directory)
    seen: set[str] = set()

    def follow(real: str) -> bool:
        # Not a folder walked already, not the data root or another class, not an ancestor (a loop).
        return (
            real not in seen
            and (real == top or real not in exclude)
            and not top.startswith(real + os.sep)
        )

    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        real = os.path.realpath(dirpath)
        if not follow(real):
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and follow(os.path.realpath(os.path.join(dirpath, d)))
        )
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(extensions):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def _check_image(path: str, min_size: tuple[int, int] | None) -> str | None:
    """Return why ``path`` is unusable, or None. Reads the header only (fast)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            img.verify()  # cheap integrity check (PNG chunk CRCs, ...) without decoding pixels
    except Exception as exc:  # PIL raises many types for broken files; all mean "unreadable"
        return f"cannot read image {path!r} ({type(exc).__name__}: {exc})"
    if min_size is not None and (height < min_size[0] or width < min_size[1]):
        return (
            f"image {path!r} is {height}x{width} (HxW), smaller than the required "
            f"{min_size[0]}x{min_size[1]}; resize the images first or choose a smaller crop"
        )
    return None


def load_image_folder(
    root: str | os.PathLike,
    transform: Callable[[Image.Image], Any] | None = None,
    *,
    on_corrupt: Literal["fail", "skip"] = "fail",
    extensions: Sequence[str] | None = None,
    verify: bool | None = None,
    min_size: int | Sequence[int] | None = None,
) -> ImageFolderDataset:
    """Load an image folder in the ImageNet layout (``root/<class>/**/<image>``).

    Classes are the sub-folders of ``root``, sorted by name (index 0 for the first), exactly as
    torchvision's ``ImageFolder``, so the ImageNet validation set in the usual layout gets the
    usual class indices (logged). Hidden entries (``.ipynb_checkpoints``, ``.DS_Store``) are
    ignored; symbolic links are followed, each folder once (a link loop cannot repeat images).
    16-bit and float images are converted to 8 bits by their real range (not clipped). A folder with images but no sub-folders is read as unlabelled images
    (label ``-1``), which the label-free metrics (consistency, equivariance) accept.

    Args:
        root: the folder.
        transform: applied to each RGB ``PIL.Image``, e.g. :func:`eval_transform`.
        on_corrupt: ``"fail"``: an unreadable image raises :class:`CorruptImageError` naming its
            path; ``"skip"``: it is dropped with a logged warning (this needs the up-front check,
            so it implies ``verify=True``). Every image is decoded in full when it is first
            loaded; with ``"skip"``, one whose pixel data fails then (a truncated JPEG passes the
            header check) is replaced by the next readable image of its class, logged by name and
            counted in the dataset's ``skipped``.
        extensions: file name endings read as images (case-insensitive); default
            :data:`IMG_EXTENSIONS`.
        verify: open every image's header before returning, so that an unreadable (or too small)
            image is reported now rather than in the middle of an evaluation. Default: only when
            ``on_corrupt="skip"`` or ``min_size`` is given. The check reads headers, not pixels:
            a file whose header is intact but whose pixel data is truncated is still reported, by
            path, when it is loaded.
        min_size: smallest accepted image size, ``int`` or ``(height, width)``, checked on the
            files as stored (before ``transform``). Smaller images fail or are skipped as
            ``on_corrupt`` says.

    Returns:
        An :class:`ImageFolderDataset` yielding ``(transform(image), class_index)``.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        NotADirectoryError: ``root`` is not a folder.
        ValueError: no image in ``root``, or a bad argument.
        CorruptImageError: an unreadable or too small image, with ``on_corrupt="fail"``.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("cat", "dog"):
        ...     (root / name).mkdir()
        ...     Image.new("RGB", (8, 8)).save(root / name / "a.png")
        >>> ds = load_image_folder(root)
        >>> ds.classes, len(ds), ds[1][1]
        (['cat', 'dog'], 2, 1)
    """
    if on_corrupt not in _ON_CORRUPT:
        raise ValueError(f"on_corrupt must be one of {_ON_CORRUPT}, got {on_corrupt!r}")
    exts = IMG_EXTENSIONS if extensions is None else tuple(e.lower() for e in extensions)
    if not exts:
        raise ValueError("extensions must name at least one file ending, got an empty list")
    exts = tuple(e if e.startswith(".") else f".{e}" for e in exts)
    size = _to_size_pair(min_size)
    if verify is None:
        verify = on_corrupt == "skip" or size is not None

    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data folder {str(root)!r} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"data path {str(root)!r} is not a folder")

    # torchvision's ImageFolder rules: class folders are the visible sub-folders (``.ipynb_checkpoints``
    # and other hidden entries are not classes), links to folders included.
    class_dirs = sorted(
        entry.name
        for entry in os.scandir(path)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    samples: list[tuple[str, int]] = []
    classes: list[str] = []
    if class_dirs:
        classes = class_dirs
        # A link into the root or another class is not followed: its images would get this class.
        exclude = frozenset(
            [os.path.realpath(path)] + [os.path.realpath(path / name) for name in class_dirs]
        )
        for index, name in enumerate(class_dirs):
            samples.extend((file, index) for file in _find_images(path / name, exts, exclude))
    if not samples:
        # No class folder holds images: a flat folder of unlabelled images, or nothing at all.
        flat = [
            os.path.join(path, entry.name)
            for entry in os.scandir(path)
            if entry.is_file()
            and not entry.name.startswith(".")
            and entry.name.lower().endswith(exts)
        ]
        if not flat:
            raise ValueError(
                f"no images ({', '.join(exts)}) found in data folder {str(root)!r} "
                "or its class sub-folders"
            )
        classes = []
        samples = [(file, -1) for file in sorted(flat)]
        logger.info("%s has no class folders: %d unlabelled images", root, len(samples))

    rejected = []
    if verify:
        kept = []
        for file, target in samples:
            problem = _check_image(file, size)
            if problem is None:
                kept.append((file, target))
            elif on_corrupt == "fail":
                raise CorruptImageError(problem)
            else:
                logger.warning("skipping %s", problem)
                rejected.append(file)
        if not kept:
            raise ValueError(f"no readable image left in data folder {str(root)!r}")
        if len(kept) < len(samples):
            logger.warning("skipped %d of %d images", len(samples) - len(kept), len(samples))
        samples = kept
    if classes:
        shown = ", ".join(classes[:20]) + (
            f", ... ({len(classes) - 20} more)" if len(classes) > 20 else ""
        )
        logger.info(
            f"{root}: {len(samples)} images in {len(classes)} classes (index order): {shown}"
        )
    return ImageFolderDataset(
        path, samples, classes, transform, on_corrupt=on_corrupt, rejected=rejected
    )


class _ToFloat:
    """A PIL image or array as ``ToTensor`` reads it; a tensor to float32 (integers scaled to ``[0, 1]``)."""

    def __call__(self, image: Any) -> torch.Tensor:
        from torchvision.transforms import functional as F

        return (
            F.convert_image_dtype(image, torch.float32)
            if isinstance(image, torch.Tensor)
            else F.to_tensor(image)
        )

    def __repr__(self) -> str:
        return "ToFloat()"


def eval_transform(
    resize: int | None = 256,
    crop: int | tuple[int, int] = 224,
    *,
    crop_pct: float | None = None,
    interpolation: str = "bilinear",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Callable[[Any], torch.Tensor]:
    """The accuracy protocol: Resize(``resize``) (shorter side), CenterCrop(``crop``), to float, Normalize(``mean``, ``std``).

    The one evaluation transform of the library (the weights' ``transforms()`` is this one too). It
    takes a PIL image (or an ``HxWxC`` array, read as ``ToTensor`` reads it), a ``uint8`` tensor
    ``(3, H, W)`` or a batch ``(N, 3, H, W)``, or a float tensor already in ``[0, 1]``.

    Args:
        resize: shorter side after resizing; ``None`` or 0 keeps the stored size (for folders
            already cropped, such as ImageNet-C).
        crop: side of the square center crop, or its ``(height, width)``.
        crop_pct: the crop's share of the resized image (timm's ``crop_pct``); when given, ``resize``
            becomes ``round(width / crop_pct)`` (256 for 224 at 0.875).
        interpolation: torchvision's ``InterpolationMode`` value (``"bilinear"``, ``"bicubic"``, ...).
        mean: per-channel mean subtracted after scaling to ``[0, 1]``.
        std: per-channel standard deviation divided by.

    Raises:
        ValueError: a crop smaller than 1 pixel or larger than the resized side, an unknown interpolation.

    Shape:
        - Input: a PIL image, :math:`(3, H, W)` or :math:`(N, 3, H, W)`.
        - Output: :math:`(3, crop, crop)` or :math:`(N, 3, crop, crop)`, float32.
    """
    from torchvision import transforms

    size = (crop, crop) if isinstance(crop, int) else (int(crop[0]), int(crop[1]))
    if min(size) < 1:
        raise ValueError(f"crop must be a positive size, got {crop}")
    if crop_pct is not None:
        if not 0 < crop_pct:
            raise ValueError(f"crop_pct must be > 0, got {crop_pct}")
        resize = int(round(size[1] / crop_pct))
    try:
        mode = transforms.InterpolationMode(interpolation)
    except ValueError:
        modes = [m.value for m in transforms.InterpolationMode]
        raise ValueError(f"interpolation must be one of {modes}, got {interpolation!r}") from None
    steps: list[Callable] = []
    if resize:
        if resize < max(size):
            raise ValueError(
                f"resize ({resize}) must be at least crop ({crop}): a smaller image would be "
                "padded with zeros"
            )
        steps.append(transforms.Resize(resize, interpolation=mode, antialias=True))
    steps += [
        transforms.CenterCrop(size),
        _ToFloat(),
        transforms.Normalize(mean=list(mean), std=list(std)),
    ]
    return transforms.Compose(steps)


def consistency_transform(
    resize: int | None = 256,
    crop: int = 256,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Callable[[Image.Image], torch.Tensor]:
    """The shift protocol: Resize(256), CenterCrop(256), to float, Normalize (:func:`eval_transform`).

    The shift metrics take their shifted ``crop_size`` views (224 in the paper) out of this
    larger image: ``crop`` should be ``crop_size + max_offset``.

    Shape:
        - Output: :math:`(3, crop, crop)`, float32.
    """
    return eval_transform(resize, crop, mean=mean, std=std)
