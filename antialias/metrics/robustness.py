"""Robustness to common corruptions (ImageNet-C) and perturbations (ImageNet-P).

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" (ICLR 2019). The paper on anti-aliasing reports both for ResNet-50.

ImageNet-C: ``root/<corruption>/<severity>/<class>/<image>``. For each corruption ``c`` the
corruption error ``CE_c = sum_s E_{s,c} / sum_s E^AlexNet_{s,c}`` (severities 1..5), mCE the mean
of CE over the 15 corruptions; relative CE subtracts the clean error on both sides:
``(sum_s E_{s,c} - E_clean) / (sum_s E^AlexNet_{s,c} - E^AlexNet_clean)`` (sums of differences).

ImageNet-P: ``root/<perturbation>/<class>/<sequence>``, a sequence being a video file (``.mp4``,
the published format, decoded with OpenCV) or a folder of frame images. The flip probability
``FP`` is the fraction of frame pairs whose top-1 class differs: for noise perturbations each frame
against the first, for the others consecutive frames (``difficulty`` frames apart); averaged per
sequence, then over sequences. ``FR = FP / FP^AlexNet``; mFR is the mean over the 10
perturbations. The top-5 distance ``T5D`` compares the top-5 rankings of the same frame pairs;
mT5D likewise.

Without ImageNet-C, :func:`corruption_errors` corrupts any image folder on the fly with the
``imagecorruptions`` package (the ImageNet-C corruption code as a library).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from antialias.data import IMG_EXTENSIONS, ImageFolderDataset, eval_transform, load_image_folder
from antialias.metrics._common import eval_mode, forward_views, iterate, resolve_device
from antialias.metrics.shift import evaluate_accuracy

__all__ = [
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_C_ERRORS",
    "EXTRA_CORRUPTIONS",
    "IMAGENET_C_CORRUPTIONS",
    "IMAGENET_P_PERTURBATIONS",
    "CorruptedImageFolder",
    "ImageNetCResult",
    "ImageNetPResult",
    "SequenceFolder",
    "corrupt_image",
    "corruption_errors",
    "flip_probability",
    "imagenet_c_errors",
    "imagenet_c_scores",
    "imagenet_p_rates",
    "imagenet_p_scores",
    "top5_distance",
]

logger = logging.getLogger(__name__)

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

#: The imagecorruptions package's four extra corruptions (its validation set): scored, never in mCE.
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

#: AlexNet's top-1 error on ImageNet-C, mean over severities 1..5 (Hendrycks & Dietterich).
ALEXNET_C_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}

#: AlexNet's clean top-1 error (top-1 accuracy 56.55%, Zhang 2019 Table), for relative mCE.
ALEXNET_CLEAN_ERROR: float = 1 - 0.5655

#: The 10 ImageNet-P perturbations that mFR and mT5D average.
IMAGENET_P_PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "motion_blur",
    "zoom_blur",
    "snow",
    "brightness",
    "translate",
    "rotate",
    "tilt",
    "scale",
)

_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else float("nan")


def _top1_error(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    device: torch.device | str | None,
    progress: bool,
) -> float:
    """Top-1 error of ``model`` on a labelled ``dataset`` (one ImageNet-C corruption and severity)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    result = evaluate_accuracy(model, loader, topk=(1,), device=device, progress=progress)
    return 1.0 - result.summary()["top1"]


# --------------------------------------------------------------------------------------------
# ImageNet-C
# --------------------------------------------------------------------------------------------


@dataclass
class ImageNetCResult:
    """ImageNet-C scores. Errors and CEs are fractions (mCE 0.767 is the usual "76.7").

    Attributes:
        errors: ``{corruption: {severity: top-1 error}}``.
        clean_error: top-1 error on the clean images, if known.
        ce: ``{corruption: CE}`` for corruptions with an AlexNet reference.
        relative_ce: ``{corruption: relative CE}`` (needs ``clean_error``).
        mce: mean CE over the corruptions in ``ce``; None if none.
        relative_mce: mean relative CE; None without ``clean_error``.
        complete: whether all 15 corruptions and severities 1..5 were scored (only then is mCE
            comparable with published numbers).
    """

    errors: dict[str, dict[int, float]]
    clean_error: float | None
    ce: dict[str, float]
    relative_ce: dict[str, float]
    mce: float | None
    relative_mce: float | None
    complete: bool
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_errors(self) -> dict[str, float]:
        """``{corruption: error averaged over its severities}``."""
        return {c: _mean(by_sev.values()) for c, by_sev in self.errors.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "mce": self.mce,
            "relative_mce": self.relative_mce,
            "clean_error": self.clean_error,
            "complete": self.complete,
            "ce": self.ce,
            "relative_ce": self.relative_ce,
            "mean_errors": self.mean_errors,
            "errors": {c: {str(s): e for s, e in sev.items()} for c, sev in self.errors.items()},
            **self.params,
        }

    def records(self) -> list[dict[str, Any]]:
        return []


def imagenet_c_scores(
    errors: Mapping[str, Mapping[int, float]],
    *,
    clean_error: float | None = None,
    alexnet_errors: Mapping[str, float | Mapping[int, float]] | None = None,
    alexnet_clean_error: float = ALEXNET_CLEAN_ERROR,
) -> ImageNetCResult:
    """CE, mCE and relative mCE from error rates (a pure function).

    Args:
        errors: ``{corruption: {severity: top-1 error}}``, errors in [0, 1].
        clean_error: the model's clean top-1 error, for the relative scores.
        alexnet_errors: AlexNet's errors per corruption, either the mean over severities 1..5
            (a float) or ``{severity: error}``; default :data:`ALEXNET_C_ERRORS`. With a float,
            the model's errors must cover severities 1..5 for the ratio of sums to be the ratio of
            means; otherwise the CE is still computed from the mean over the given severities and a
            warning is logged.
        alexnet_clean_error: AlexNet's clean error, for relative mCE.

    Returns:
        An :class:`ImageNetCResult`. Corruptions without an AlexNet reference keep their errors
        but get no CE.

    Example:
        >>> r = imagenet_c_scores({"brightness": {s: 0.282296 for s in range(1, 6)}})
        >>> round(r.ce["brightness"], 6)
        0.5
    """
    reference = ALEXNET_C_ERRORS if alexnet_errors is None else alexnet_errors
    ce: dict[str, float] = {}
    relative: dict[str, float] = {}
    all_severities = True
    normalized: dict[str, dict[int, float]] = {}
    for corruption, by_severity in errors.items():
        sev = {int(s): float(e) for s, e in by_severity.items()}
        if not sev:
            raise ValueError(f"no severity scored for corruption {corruption!r}")
        for s, e in sev.items():
            if not 0.0 <= e <= 1.0:
                raise ValueError(f"error of {corruption!r} severity {s} must be in [0, 1], got {e}")
        normalized[corruption] = dict(sorted(sev.items()))
        if sorted(sev) != [1, 2, 3, 4, 5]:
            all_severities = False
        model_mean = _mean(sev.values())
        ref = reference.get(corruption)
        if ref is None:
            logger.info("no AlexNet reference for %r: no CE", corruption)
            continue
        if isinstance(ref, Mapping):
            missing = [s for s in sev if s not in ref]
            if missing:
                raise ValueError(f"AlexNet errors for {corruption!r} lack severities {missing}")
            ref_mean = _mean(float(ref[s]) for s in sev)
        else:
            ref_mean = float(ref)
            if sorted(sev) != [1, 2, 3, 4, 5]:
                logger.warning(
                    "%s: severities %s only; its CE divides by AlexNet's mean over 1..5",
                    corruption,
                    sorted(sev),
                )
        ce[corruption] = model_mean / ref_mean
        if clean_error is not None:
            denominator = ref_mean - alexnet_clean_error
            if denominator <= 0:
                raise ValueError(
                    f"AlexNet's {corruption!r} error ({ref_mean}) must exceed its clean error "
                    f"({alexnet_clean_error}) for a relative CE"
                )
            relative[corruption] = (model_mean - clean_error) / denominator
    complete = all_severities and set(IMAGENET_C_CORRUPTIONS) <= set(ce)
    return ImageNetCResult(
        errors=normalized,
        clean_error=clean_error,
        ce=ce,
        relative_ce=relative,
        mce=_mean(ce.values()) if ce else None,
        relative_mce=_mean(relative.values()) if relative else None,
        complete=complete,
    )


def _numeric_dirs(path: Path) -> list[int]:
    return sorted(int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit())


def imagenet_c_errors(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] | None = None,
    transform: Callable | None = None,
    classes: Sequence[str] | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    on_corrupt: str = "fail",
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, dict[int, float]]:
    """Top-1 error of ``model`` on an ImageNet-C folder, per corruption and severity.

    Args:
        model: classifier returning ``(N, classes)`` logits.
        root: ``root/<corruption>/<severity>/<class>/<image>``.
        corruptions: which to score; default every corruption folder in ``root``.
        severities: which to score; default every numeric folder of each corruption.
        transform: image transform; default CenterCrop(224) + ToTensor + ImageNet Normalize (the
            published images are already 224x224).
        classes: expected class-folder names, in label order (e.g. those of the clean set); by
            default every folder must have the class list of the first one scored.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes.
        on_corrupt: ``"fail"`` or ``"skip"`` for unreadable images.
        device: where to run; default the model's device.
        progress: show progress bars.

    Returns:
        ``{corruption: {severity: error}}``, errors in [0, 1].
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"ImageNet-C folder {str(root)!r} does not exist")
    names = (
        list(corruptions)
        if corruptions is not None
        else sorted(p.name for p in base.iterdir() if p.is_dir())
    )
    if not names:
        raise ValueError(f"no corruption folder in ImageNet-C folder {str(root)!r}")
    tf = transform if transform is not None else eval_transform(resize=None, crop=224)
    expected = list(classes) if classes is not None else None
    errors: dict[str, dict[int, float]] = {}
    for name in names:
        folder = base / name
        if not folder.is_dir():
            raise FileNotFoundError(f"corruption folder {str(folder)!r} does not exist")
        sevs = list(severities) if severities is not None else _numeric_dirs(folder)
        if not sevs:
            raise ValueError(f"no severity folder (1..5) in {str(folder)!r}")
        errors[name] = {}
        for severity in sevs:
            dataset = load_image_folder(
                folder / str(severity),
                tf,
                on_corrupt=on_corrupt,  # type: ignore[arg-type]
            )
            if not dataset.labelled:
                raise ValueError(f"{str(folder / str(severity))!r} has no class folders")
            if expected is None:
                expected = dataset.classes
            elif dataset.classes != expected:
                raise ValueError(
                    f"class folders of {dataset.root!r} differ from the other folders' "
                    f"({len(dataset.classes)} vs {len(expected)} classes); labels would not match"
                )
            errors[name][int(severity)] = _top1_error(
                model, dataset, batch_size, num_workers, device, progress
            )
            logger.info("%s/%s: error %.4f", name, severity, errors[name][int(severity)])
    return errors


# --------------------------------------------------------------------------------------------
# On-the-fly corruptions (imagecorruptions)
# --------------------------------------------------------------------------------------------

_CORRUPT_FN: Callable | None = None


class _NumpyCompat(types.ModuleType):
    """numpy, plus the aliases that numpy 2 removed and imagecorruptions 1.1 still uses."""

    def __init__(self) -> None:
        super().__init__("numpy")
        self.float_ = np.float64

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


class _SkimageUtilCompat(types.ModuleType):
    """skimage.util whose ``random_noise`` draws its seed from numpy's global generator.

    ``random_noise`` (impulse noise) otherwise seeds a fresh generator from the OS, which the
    seed of :func:`corrupt_image` cannot reach.
    """

    def __init__(self, util: types.ModuleType) -> None:
        super().__init__("skimage.util")
        self._util = util

    def __getattr__(self, name: str) -> Any:
        return getattr(self._util, name)

    def random_noise(self, image: Any, *args: Any, **kw: Any) -> Any:
        if not args and kw.get("rng") is None:
            kw["rng"] = int(np.random.randint(2**31 - 1))
        return self._util.random_noise(image, *args, **kw)


class _SkimageCompat(types.ModuleType):
    """skimage with :class:`_SkimageUtilCompat` as ``util``."""

    def __init__(self, skimage: types.ModuleType) -> None:
        super().__init__("skimage")
        self._skimage = skimage
        self.util = _SkimageUtilCompat(importlib.import_module("skimage.util"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._skimage, name)


def _load_imagecorruptions() -> Callable:
    """Import ``imagecorruptions.corrupt``, adapting the 2020 release to today's numpy/skimage.

    imagecorruptions 1.1.2 (its last release) imports ``pkg_resources`` (gone from recent
    setuptools), calls ``skimage.filters.gaussian(multichannel=...)`` (removed in scikit-image
    0.19) and uses ``np.float_`` (removed in numpy 2); its impulse noise ignores numpy's seed.
    The fixes below touch only that package's module namespace; a fixed fork installing the same
    module (imagecorruptions-imaug) needs none of them and is left as it is.
    """
    global _CORRUPT_FN
    if _CORRUPT_FN is not None:
        return _CORRUPT_FN
    shimmed = False
    if "imagecorruptions" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None:
                raise ModuleNotFoundError(package)
            return os.path.join(os.path.dirname(spec.origin), name)

        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
        shimmed = True
    try:
        with warnings.catch_warnings():
            # Its scipy/skimage imports are deprecated spellings: noise for our users.
            warnings.simplefilter("ignore", DeprecationWarning)
            package = importlib.import_module("imagecorruptions")
    except ModuleNotFoundError as exc:
        raise ImportError(
            "on-the-fly corruptions need the imagecorruptions package: "
            "pip install 'antialias[robustness]'"
        ) from exc
    finally:
        if shimmed:
            # The shim served imagecorruptions' import only; do not leave a fake package around.
            sys.modules.pop("pkg_resources", None)
    module = importlib.import_module("imagecorruptions.corruptions")
    gaussian = getattr(module, "gaussian", None)
    if gaussian is not None and "multichannel" not in inspect.signature(gaussian).parameters:

        def gaussian_compat(image: Any, *args: Any, multichannel: bool | None = None, **kw: Any):
            if multichannel:
                kw.setdefault("channel_axis", -1)
            return gaussian(image, *args, **kw)

        module.gaussian = gaussian_compat  # type: ignore[attr-defined]
    if not hasattr(np, "float_") and getattr(module, "np", None) is np:
        module.np = _NumpyCompat()  # type: ignore[attr-defined]
    skimage = getattr(module, "sk", None)
    if isinstance(skimage, types.ModuleType) and not isinstance(skimage, _SkimageCompat):
        module.sk = _SkimageCompat(skimage)  # type: ignore[attr-defined]
    _CORRUPT_FN = package.corrupt
    return _CORRUPT_FN


def corrupt_image(
    image: Image.Image | np.ndarray,
    corruption: str,
    severity: int,
    *,
    seed: int | None = None,
) -> np.ndarray:
    """Apply an ImageNet-C corruption with the ``imagecorruptions`` package.

    Args:
        image: RGB ``PIL.Image`` or ``(H, W, 3)`` uint8 array, at least 32x32.
        corruption: one of :data:`IMAGENET_C_CORRUPTIONS` or :data:`EXTRA_CORRUPTIONS`.
        severity: 1..5.
        seed: seeds numpy's global generator, which the package draws from, for this call only
            (the previous state is restored); None leaves it alone.

    Returns:
        The corrupted image, ``(H, W, 3)`` uint8.
    """
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity must be 1..5, got {severity!r}")
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {array.dtype} {array.shape}")
    if min(array.shape[:2]) < 32:
        raise ValueError(f"corruptions need images of at least 32x32, got {array.shape[:2]}")
    corrupt = _load_imagecorruptions()
    state = np.random.get_state() if seed is not None else None
    try:
        if seed is not None:
            np.random.seed(seed)
        try:
            out = corrupt(array, corruption_name=corruption, severity=severity)
        except KeyError as exc:
            raise ValueError(f"unknown corruption {corruption!r}") from exc
    finally:
        if state is not None:
            np.random.set_state(state)
    out = np.asarray(out)
    if out.dtype != np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    # Some corruptions (frost, ...) may return a different size for non-square inputs.
    if out.shape[:2] != array.shape[:2]:
        out = np.asarray(Image.fromarray(out).resize(array.shape[1::-1], Image.BILINEAR))
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


def corruption_errors(
    model: nn.Module,
    root: str | os.PathLike | ImageFolderDataset,
    *,
    corruptions: Sequence[str] = IMAGENET_C_CORRUPTIONS,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    resize: int | None = 256,
    crop: int = 224,
    seed: int = 0,
    batch_size: int = 64,
    num_workers: int = 0,
    on_corrupt: str = "fail",
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, dict[int, float]]:
    """Top-1 error under corruptions applied on the fly to any image folder.

    Each image is resized and center-cropped (as ImageNet-C was made), corrupted with
    :func:`corrupt_image`, then normalized. Pass the result to :func:`imagenet_c_scores` for CE;
    the numbers approximate, not reproduce, the published ImageNet-C (which stores JPEG files).

    Args:
        model: classifier returning ``(N, classes)`` logits.
        root: a labelled image folder (ImageNet layout), or an
            :class:`antialias.data.ImageFolderDataset` of one (its transform is not used).
        corruptions: corruption names.
        severities: severities 1..5 to score.
        resize: shorter side before the crop; None keeps the stored size.
        crop: center crop side (at least 32).
        seed: base seed of the corruptions' randomness.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes.
        on_corrupt: ``"fail"`` or ``"skip"`` for unreadable images.
        device: where to run; default the model's device.
        progress: show progress bars.

    Returns:
        ``{corruption: {severity: error}}``.
    """
    from torchvision import transforms

    from antialias.data import IMAGENET_MEAN, IMAGENET_STD

    _load_imagecorruptions()
    known = set(IMAGENET_C_CORRUPTIONS + EXTRA_CORRUPTIONS)
    unknown = [c for c in corruptions if c not in known]
    if unknown:
        raise ValueError(f"unknown corruption(s) {unknown}; expected some of {sorted(known)}")
    if isinstance(root, ImageFolderDataset):
        dataset = ImageFolderDataset(root.root, list(root.samples), list(root.classes), None)
    else:
        dataset = load_image_folder(root, None, on_corrupt=on_corrupt)  # type: ignore[arg-type]
    if not dataset.labelled:
        raise ValueError(
            f"corruption errors need labelled images; {dataset.root!r} has no class folders"
        )
    before_steps: list[Callable] = []
    if resize:
        before_steps.append(transforms.Resize(resize))
    before_steps.append(transforms.CenterCrop(crop))
    before = transforms.Compose(before_steps)
    after = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD))]
    )
    errors: dict[str, dict[int, float]] = {}
    for corruption in corruptions:
        errors[corruption] = {}
        for severity in severities:
            corrupted = CorruptedImageFolder(
                dataset, corruption, int(severity), before=before, after=after, seed=seed
            )
            errors[corruption][int(severity)] = _top1_error(
                model, corrupted, batch_size, num_workers, device, progress
            )
    return errors


# --------------------------------------------------------------------------------------------
# ImageNet-P
# --------------------------------------------------------------------------------------------


def _pairs(length: int, noise: bool, difficulty: int) -> list[tuple[int, int]]:
    """Frame index pairs compared in one sequence (see the module docstring)."""
    if noise:
        return [(0, j) for j in range(1, length)]
    pairs = []
    for start in range(difficulty):
        frames = list(range(start, length, difficulty))
        pairs += list(zip(frames[:-1], frames[1:], strict=True))
    return pairs


def _check_sequences(sequences: Sequence[torch.Tensor], what: str) -> None:
    if len(sequences) == 0:
        raise ValueError(f"{what}: no sequence given")


def flip_probability(
    predictions: Sequence[torch.Tensor] | torch.Tensor,
    *,
    noise: bool,
    difficulty: int = 1,
) -> float:
    """ImageNet-P flip probability of top-1 predictions over perturbation sequences.

    Args:
        predictions: per sequence, the ``(T,)`` top-1 class of each frame (or a ``(V, T)`` tensor).
        noise: noise perturbations compare every frame with the first; the others compare frames
            ``difficulty`` apart, consecutively.
        difficulty: frame step for non-noise perturbations (1, 2 or 3 in ImageNet-P).

    Returns:
        The mean over sequences of the fraction of compared frame pairs whose top-1 differs.

    Example:
        >>> flip_probability([torch.tensor([0, 0, 1, 1])], noise=False)  # 1 flip in 3 pairs
        0.3333333333333333
    """
    _check_sequences(predictions, "flip_probability")
    if difficulty < 1:
        raise ValueError(f"difficulty must be >= 1, got {difficulty}")
    rates = []
    for preds in predictions:
        preds = torch.as_tensor(preds)
        pairs = _pairs(preds.shape[0], noise, difficulty)
        if not pairs:
            raise ValueError(f"a sequence of {preds.shape[0]} frames has no frame pair to compare")
        flips = [bool(preds[a] != preds[b]) for a, b in pairs]
        rates.append(sum(flips) / len(flips))
    return _mean(rates)


def _top5_pair_distance(reference: torch.Tensor, other: torch.Tensor) -> int:
    """Top-5 distance between the rankings of two logit vectors (Hendrycks & Dietterich).

    For the k-th class of the reference's top 5 (k = 0..4) with 0-based rank r_k in ``other``:
    ``sum_k |k - min(r_k, 5)|``. Ties are ranked in index order (an ordinal ranking).
    """
    k = min(5, reference.numel())
    # Stable ascending sort of the negated logits: ties keep index order (ordinal ranks).
    order_ref = torch.sort(-reference, stable=True).indices
    order_other = torch.sort(-other, stable=True).indices
    rank_other = torch.empty_like(order_other)
    rank_other[order_other] = torch.arange(order_other.numel())
    ranks = rank_other[order_ref[:k]].clamp(max=k)
    return int((ranks - torch.arange(k)).abs().sum())


def top5_distance(
    logits: Sequence[torch.Tensor],
    *,
    noise: bool,
    difficulty: int = 1,
) -> float:
    """ImageNet-P top-5 distance over perturbation sequences.

    Args:
        logits: per sequence, the ``(T, classes)`` logits (or any scores) of its frames.
        noise: see :func:`flip_probability`.
        difficulty: see :func:`flip_probability`.

    Returns:
        The mean over sequences of the mean top-5 distance of the compared frame pairs (0 when the
        top-5 rankings never change; at most 15).
    """
    _check_sequences(logits, "top5_distance")
    if difficulty < 1:
        raise ValueError(f"difficulty must be >= 1, got {difficulty}")
    per_sequence = []
    for seq in logits:
        seq = torch.as_tensor(seq)
        if seq.dim() != 2:
            raise ValueError(f"each sequence's logits must be (T, classes), got {tuple(seq.shape)}")
        pairs = _pairs(seq.shape[0], noise, difficulty)
        if not pairs:
            raise ValueError(f"a sequence of {seq.shape[0]} frames has no frame pair to compare")
        per_sequence.append(_mean(_top5_pair_distance(seq[a], seq[b]) for a, b in pairs))
    return _mean(per_sequence)


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
                if entry.is_dir() or entry.name.lower().endswith(_VIDEO_EXTENSIONS):
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


def _collate_sequences(batch: list[tuple[torch.Tensor, int]]) -> list[torch.Tensor]:
    return [frames for frames, _ in batch]


@dataclass
class ImageNetPResult:
    """ImageNet-P scores.

    Attributes:
        flip_probability: ``{perturbation: FP}``, in [0, 1].
        top5_distance: ``{perturbation: T5D}``.
        flip_rate: ``{perturbation: FP / FP_AlexNet}`` where AlexNet's is known.
        top5_rate: ``{perturbation: T5D / T5D_AlexNet}`` where known.
        mfr: mean flip rate (None without AlexNet references).
        mt5d: mean normalized top-5 distance (None without references).
        complete: all 10 perturbations normalized.
    """

    flip_probability: dict[str, float]
    top5_distance: dict[str, float]
    flip_rate: dict[str, float]
    top5_rate: dict[str, float]
    mfr: float | None
    mt5d: float | None
    complete: bool
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "mfr": self.mfr,
            "mt5d": self.mt5d,
            "mean_flip_probability": _mean(self.flip_probability.values()),
            "mean_top5_distance": _mean(self.top5_distance.values()),
            "complete": self.complete,
            "flip_probability": self.flip_probability,
            "top5_distance": self.top5_distance,
            "flip_rate": self.flip_rate,
            "top5_rate": self.top5_rate,
            **self.params,
        }

    def records(self) -> list[dict[str, Any]]:
        return []


def imagenet_p_scores(
    rates: Mapping[str, Mapping[str, float]],
    *,
    alexnet: Mapping[str, Mapping[str, float]] | None = None,
) -> ImageNetPResult:
    """FR, mFR, normalized T5D and mT5D from raw rates (a pure function).

    Args:
        rates: ``{perturbation: {"flip_probability": FP, "top5_distance": T5D}}`` of the model,
            e.g. from :func:`imagenet_p_rates`.
        alexnet: the same for AlexNet, evaluated on the same sequences (the normalizer of mFR and
            mT5D). Without it only the raw rates are reported.

    Returns:
        An :class:`ImageNetPResult`.
    """
    fp = {p: float(r["flip_probability"]) for p, r in rates.items()}
    t5d = {p: float(r["top5_distance"]) for p, r in rates.items()}
    fr: dict[str, float] = {}
    t5r: dict[str, float] = {}
    for p in rates:
        ref = (alexnet or {}).get(p)
        if ref is None:
            continue
        if ref["flip_probability"] > 0:
            fr[p] = fp[p] / float(ref["flip_probability"])
        if ref["top5_distance"] > 0:
            t5r[p] = t5d[p] / float(ref["top5_distance"])
    return ImageNetPResult(
        flip_probability=fp,
        top5_distance=t5d,
        flip_rate=fr,
        top5_rate=t5r,
        mfr=_mean(fr.values()) if fr else None,
        mt5d=_mean(t5r.values()) if t5r else None,
        complete=set(IMAGENET_P_PERTURBATIONS) <= set(fr)
        and set(IMAGENET_P_PERTURBATIONS) <= set(t5r),
    )


def imagenet_p_rates(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    perturbations: Sequence[str] | None = None,
    difficulty: int = 1,
    transform: Callable | None = None,
    batch_size: int = 4,
    num_workers: int = 0,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Flip probability and top-5 distance of ``model`` on ImageNet-P sequences.

    Args:
        model: classifier returning ``(N, classes)`` logits.
        root: ``root/<perturbation>/<class>/<sequence>``; noise perturbations at ``difficulty``
            d > 1 are read from ``root/<perturbation>_<d>`` (the published layout).
        perturbations: which to score; default every perturbation folder in ``root``.
        difficulty: 1, 2 or 3 (frame step for non-noise perturbations).
        transform: frame transform; default ToTensor + ImageNet Normalize (published frames
            are already 224x224).
        batch_size: sequences per batch (all their frames go through the model together).
        num_workers: DataLoader worker processes.
        chunk_size: most frames per forward pass; None: all frames of a batch.
        device: where to run; default the model's device.
        progress: show progress bars.

    Returns:
        ``{perturbation: {"flip_probability": FP, "top5_distance": T5D}}``.
    """
    from torchvision import transforms

    from antialias.data import IMAGENET_MEAN, IMAGENET_STD

    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"ImageNet-P folder {str(root)!r} does not exist")
    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty must be 1, 2 or 3, got {difficulty}")
    if perturbations is None:
        names = sorted(
            p.name for p in base.iterdir() if p.is_dir() and p.name[-2:] not in ("_2", "_3")
        )
    else:
        names = list(perturbations)
    if not names:
        raise ValueError(f"no perturbation folder in ImageNet-P folder {str(root)!r}")
    tf = transform or transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD))]
    )
    dev = resolve_device(model, device)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        noise = "noise" in name
        folder = base / (f"{name}_{difficulty}" if noise and difficulty > 1 else name)
        dataset = SequenceFolder(folder, tf)
        predictions: list[torch.Tensor] = []
        logits_all: list[torch.Tensor] = []
        with eval_mode(model):
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                shuffle=False,
                num_workers=num_workers,
                collate_fn=_collate_sequences,
            )
            for sequences in iterate(loader, progress, name):
                # Sequences may differ in length: run their frames together, split after.
                lengths = [seq.shape[0] for seq in sequences]
                flat = torch.cat(sequences)
                logits = forward_views(
                    model, lambda a, b, flat=flat: flat[a:b], flat.shape[0], chunk_size, dev
                )
                for seq in logits.cpu().split(lengths):
                    logits_all.append(seq)
                    predictions.append(seq.argmax(1))
        out[name] = {
            "flip_probability": flip_probability(predictions, noise=noise, difficulty=difficulty),
            "top5_distance": top5_distance(logits_all, noise=noise, difficulty=difficulty),
        }
    return out
