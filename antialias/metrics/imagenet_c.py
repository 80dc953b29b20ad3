"""ImageNet-C: robustness to common corruptions (Hendrycks & Dietterich, ICLR 2019).

The paper on anti-aliasing reports it for ResNet-50. Layout: ``root/<corruption>/<severity>/<class>/<image>``.
For each corruption ``c`` the corruption error ``CE_c = sum_s E_{s,c} / sum_s E^AlexNet_{s,c}``
(severities 1..5), mCE the mean of CE over the 15 corruptions; relative CE subtracts the clean
error on both sides: ``(sum_s E_{s,c} - E_clean) / (sum_s E^AlexNet_{s,c} - E^AlexNet_clean)``
(sums of differences).

Without ImageNet-C, :func:`corruption_errors` corrupts any image folder on the fly
(:class:`antialias.datasets.CorruptedImageFolder`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from antialias.data import ImageFolderDataset, eval_transform, load_image_folder
from antialias.datasets import EXTRA_CORRUPTIONS, IMAGENET_C_CORRUPTIONS, CorruptedImageFolder
from antialias.metrics._common import benchmark_folders, score_datasets
from antialias.metrics._common import mean as _mean
from antialias.metrics.accuracy import evaluate_accuracy

__all__ = [
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_C_ERRORS",
    "EXTRA_CORRUPTIONS",
    "IMAGENET_C_CORRUPTIONS",
    "ImageNetCResult",
    "corruption_errors",
    "imagenet_c_errors",
    "imagenet_c_scores",
]

logger = logging.getLogger(__name__)

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


def _errors(
    model: nn.Module,
    corruptions: Iterable[str],
    datasets: Callable[[str], Iterable[tuple[int, Dataset]]],
    *,
    batch_size: int,
    num_workers: int,
    device: torch.device | str | None,
    progress: bool,
) -> dict[str, dict[int, float]]:
    """``{corruption: {severity: top-1 error}}`` of ``model`` on the ``(severity, data set)`` pairs
    that ``datasets(corruption)`` gives."""

    def top1_error(severity: int, loader: DataLoader) -> float:
        result = evaluate_accuracy(model, loader, topk=(1,), device=device, progress=progress)
        return 1.0 - result.summary()["top1"]

    return {
        corruption: score_datasets(
            datasets(corruption),
            top1_error,
            desc=corruption,
            batch_size=batch_size,
            num_workers=num_workers,
        )
        for corruption in corruptions
    }


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
    base, names = benchmark_folders(root, "ImageNet-C", "corruption", corruptions)
    tf = transform if transform is not None else eval_transform(resize=None, crop=224)
    expected = list(classes) if classes is not None else None

    def datasets(name: str) -> Iterable[tuple[int, Dataset]]:
        nonlocal expected
        folder = base / name
        if not folder.is_dir():
            raise FileNotFoundError(f"corruption folder {str(folder)!r} does not exist")
        numbered = (int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
        sevs = list(severities) if severities is not None else sorted(numbered)
        if not sevs:
            raise ValueError(f"no severity folder (1..5) in {str(folder)!r}")
        for severity in sevs:
            dataset = load_image_folder(folder / str(severity), tf, on_corrupt=on_corrupt)  # type: ignore[arg-type]
            if not dataset.labelled:
                raise ValueError(f"{str(folder / str(severity))!r} has no class folders")
            if expected is None:
                expected = dataset.classes
            elif dataset.classes != expected:
                raise ValueError(
                    f"class folders of {dataset.root!r} differ from the other folders' "
                    f"({len(dataset.classes)} vs {len(expected)} classes); labels would not match"
                )
            yield int(severity), dataset

    return _errors(
        model,
        names,
        datasets,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
    )


def corruption_errors(
    model: nn.Module,
    root: str | os.PathLike | ImageFolderDataset,
    *,
    corruptions: Sequence[str] | None = None,
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
    :func:`antialias.datasets.corrupt_image`, then normalized. Pass the result to :func:`imagenet_c_scores` for CE;
    the numbers approximate, not reproduce, the published ImageNet-C (which stores JPEG files).

    Args:
        root: a labelled image folder (ImageNet layout), or an
            :class:`antialias.data.ImageFolderDataset` of one (its transform is not used).
        corruptions: corruption names; None: the 15 of :data:`IMAGENET_C_CORRUPTIONS`.
        severities: severities 1..5 to score.
        resize: shorter side before the crop; None (or 0) keeps the stored size.
        crop: center crop side (at least 32).
        seed: base seed of the corruptions' randomness.
        model, batch_size, num_workers, on_corrupt, device, progress: as for
            :func:`imagenet_c_errors`.

    Returns:
        ``{corruption: {severity: error}}``.
    """
    from torchvision import transforms

    if importlib.util.find_spec("imagecorruptions") is None:  # fail before reading any image
        raise ImportError(
            "on-the-fly corruptions need the imagecorruptions-imaug package: pip install 'antialias[robustness]'"
        )
    corruptions = IMAGENET_C_CORRUPTIONS if corruptions is None else tuple(corruptions)
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
    before = transforms.Compose(
        [*([transforms.Resize(resize)] if resize else []), transforms.CenterCrop(crop)]
    )
    after = eval_transform(
        None, crop
    )  # the corrupted image is the crop already: tensor, normalized

    def datasets(corruption: str) -> Iterable[tuple[int, Dataset]]:
        for severity in severities:
            yield (
                int(severity),
                CorruptedImageFolder(
                    dataset, corruption, int(severity), before=before, after=after, seed=seed
                ),
            )

    return _errors(
        model,
        corruptions,
        datasets,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
    )
