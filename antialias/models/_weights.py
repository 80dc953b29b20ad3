"""Pretrained weights described as data: one torchvision-style enum per architecture.

Each architecture ``arch`` has an enum (``ResNet50_Weights``, ``VGG16_BN_Weights`` ... the names
torchvision uses) with these UPPERCASE members:

- ``LPF4_FINETUNE``: the reference's anti-aliased model (Zhang, ICML 2019) fine-tuned from
  torchvision's baseline with ``filter_size=4``; every one of the 23 architectures. ``DEFAULT`` is this.
- ``LPF2`` .. ``LPF5``: the reference's models trained from scratch with filter sizes 2..5 (alexnet,
  vgg16, vgg16_bn, resnet18/34/50/101, densenet121, mobilenet_v2).
- ``TORCHVISION_IMAGENET1K_V1``: torchvision's baseline (not anti-aliased) ImageNet weights. Our models
  keep torchvision's parameter names, so these load strictly into the anti-aliased model: the starting
  point of fine-tuning (the paper's best results come from fine-tuning, lr 0.01 for 60 epochs).

License: the reference's weights (``LPF*``) are CC BY-NC-SA 4.0: **non-commercial use only**. They are
downloaded from the reference's bucket (or from the mirror named by the ``ANTIALIAS_WEIGHTS_MIRROR``
environment variable) into torch.hub's cache, with their SHA-256 prefix checked. torchvision's weights
come under torchvision's terms (BSD-3-Clause code; ImageNet's terms of access may apply).

Example:
    >>> w = ResNet50_Weights.DEFAULT
    >>> w.name, w.filter_size, w.recipe, w.top1, w.consistency
    ('LPF4_FINETUNE', 4, 'finetune', 77.41, 91.32)
    >>> w.file_name, w.sha256_prefix
    ('resnet50_lpf4_finetune-cad66808.pth', 'cad66808')
    >>> w.license
    'CC BY-NC-SA 4.0 (non-commercial)'
    >>> ResNet50_Weights.verify("LPF2").filter_size
    2
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from antialias.data import IMAGENET_MEAN, IMAGENET_STD  # the one mean/std of the library

# The 23 weights enums below (WEIGHTS_ENUMS names them) are exported by antialias.models.
__all__ = [
    "LICENSE",
    "MIRROR_ENV",
    "WEIGHTS_ENUMS",
    "Preprocessing",
    "Weights",
    "WeightsEnum",
    "get_model_weights",
    "get_weight",
]

LICENSE = "CC BY-NC-SA 4.0 (non-commercial)"
"""License of the reference's weights: Creative Commons Attribution-NonCommercial-ShareAlike 4.0."""
TORCHVISION_LICENSE = (
    "torchvision's terms (BSD-3-Clause code; ImageNet's terms of access may apply)"
)

MIRROR_ENV = "ANTIALIAS_WEIGHTS_MIRROR"
"""Environment variable: a base URL (or folder URL) that replaces the reference's bucket for downloads."""
REFERENCE_BASE_URL = "https://antialiased-cnns.s3.us-east-2.amazonaws.com/weights_v0.1/"
TORCHVISION_BASE_URL = "https://download.pytorch.org/models/"


# torch.hub's file naming: "<name>-<first hex digits of the SHA-256>.<ext>".
_HASH_RE = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class Preprocessing:
    """How images are prepared for a set of weights (the fields of timm's ``PretrainedCfg``).

    The reference evaluates with ``Resize(256)`` (bilinear), ``CenterCrop(224)`` and ImageNet's
    mean and std: ``crop_pct = 224 / 256``.
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def resize_size(self) -> int:
        """The shorter side before the center crop, ``round(crop / crop_pct)`` (256 for 224)."""
        return int(round(self.input_size[-1] / self.crop_pct))

    def transforms(self) -> Callable[[Any], Any]:
        """The evaluation transform: :func:`antialias.data.eval_transform` with these fields.

        Shape:
            - Input: a PIL image, ``(3, H, W)`` or ``(N, 3, H, W)`` (``uint8``, or float in ``[0, 1]``).
            - Output: ``(3, 224, 224)`` or ``(N, 3, 224, 224)`` (``input_size``), float32.
        """
        from antialias.data import eval_transform

        return eval_transform(
            crop=self.input_size[-2:],
            crop_pct=self.crop_pct,
            interpolation=self.interpolation,
            mean=self.mean,
            std=self.std,
        )


@dataclass(frozen=True)
class Weights:
    """One set of pretrained weights.

    Attributes:
        url: where the file lives; its name follows torch.hub's ``<name>-<sha256 prefix>.pth``.
        arch: the registered architecture the weights are for.
        filter_size: the blur filter the weights were trained with; ``None`` for baseline weights
            (no blur), which load into an anti-aliased model of any filter size.
        recipe: ``"finetune"`` (fine-tuned from torchvision's baseline), ``"scratch"`` (trained from
            scratch), or ``"torchvision"`` (the baseline itself).
        top1: published ImageNet top-1 accuracy in percent (``None`` where none is published).
        consistency: published shift consistency in percent (paper's protocol), or ``None``.
        num_params: number of parameters (anti-aliasing adds none).
        license: the terms under which the weights may be used.
        preprocessing: image preprocessing the numbers were measured with.
        num_classes: number of outputs of the classifier (ImageNet-1k).
        docs: a sentence on where the weights come from.
    """

    url: str
    arch: str
    filter_size: int | None
    recipe: str
    top1: float | None
    consistency: float | None
    num_params: int
    license: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    num_classes: int = 1000
    docs: str = ""

    @property
    def file_name(self) -> str:
        """The file name in the URL (and in torch.hub's cache)."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str:
        """The first hex digits of the file's SHA-256, from its name (torch.hub's convention)."""
        match = _HASH_RE.search(self.file_name)
        if match is None:  # every catalog URL carries its hash; a test guards this
            raise ValueError(
                f"{self.file_name!r} does not follow the '<name>-<sha256 prefix>.pth' convention"
            )
        return match.group(1)

    @property
    def download_url(self) -> str:
        """``url``, or the same file under ``$ANTIALIAS_WEIGHTS_MIRROR`` for the reference's weights."""
        mirror = os.environ.get(MIRROR_ENV)
        if mirror and self.url.startswith(REFERENCE_BASE_URL):
            if not mirror.startswith(("http://", "https://", "file://")):
                raise ValueError(
                    f"environment variable {MIRROR_ENV}={mirror!r} is not a URL; expected a base URL such as "
                    "https://host/weights/ or file:///path/to/weights/"
                )
            return mirror.rstrip("/") + "/" + self.file_name
        return self.url

    @property
    def meta(self) -> dict[str, Any]:
        """torchvision-style metadata (``num_params``, ``_metrics``, ``_docs``, ``categories``) plus ours."""
        p = self.preprocessing
        return {
            "arch": self.arch,
            "filter_size": self.filter_size,
            "recipe": self.recipe,
            "num_params": self.num_params,
            "num_classes": self.num_classes,
            "license": self.license,
            "sha256_prefix": self.sha256_prefix,
            "_metrics": {"ImageNet-1K": {"acc@1": self.top1, "consistency": self.consistency}},
            "_docs": self.docs,
            "categories": _imagenet_categories() if self.num_classes == 1000 else None,
            "input_size": p.input_size,
            "interpolation": p.interpolation,
            "crop_pct": p.crop_pct,
            "mean": p.mean,
            "std": p.std,
        }

    def transforms(self) -> Callable[[Any], Any]:
        """The evaluation preprocessing as a torchvision transform (see :class:`Preprocessing`)."""
        return self.preprocessing.transforms()


def _imagenet_categories() -> list[str]:
    """ImageNet-1k's 1000 class names, in index order (torchvision's list)."""
    import torchvision

    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


# Not torchvision's WeightsEnum: its get_state_dict skips the hash check of a cached file (Safety).
class WeightsEnum(Enum):
    """Base of the per-architecture weights enums; members hold a :class:`Weights`.

    Attribute access falls through to the :class:`Weights` (``ResNet50_Weights.DEFAULT.url``).
    """

    @classmethod
    def verify(cls, obj: Any) -> WeightsEnum | None:
        """Return the member ``obj`` names: a member, ``"NAME"`` or ``"EnumName.NAME"``; ``None`` stays ``None``.

        Raises:
            ValueError: a member of another architecture's enum, or an unknown name.
            TypeError: anything else.
        """
        if obj is None or isinstance(obj, cls):
            return obj
        if isinstance(obj, WeightsEnum):
            raise ValueError(
                f"{type(obj).__name__}.{obj.name} are weights for {obj.value.arch!r}; "
                f"this model takes {cls.__name__} ({', '.join(cls.__members__)})"
            )
        if isinstance(obj, str):
            name = obj[len(cls.__name__) + 1 :] if obj.startswith(cls.__name__ + ".") else obj
            if name in cls.__members__:
                return cls.__members__[name]
            raise ValueError(
                f"unknown weights {obj!r} for {cls.__name__}; expected one of {list(cls.__members__)}"
            )
        raise TypeError(f"expected a {cls.__name__} member or its name, got {type(obj).__name__}")

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: expose the Weights' fields on the member.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.value, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


# --------------------------------------------------------------------------------------------------
# The catalog: one line per file. Facts from the reference (file names, which carry their SHA-256
# prefix) and REFERENCE.md section 3 (published top-1 / consistency in percent, None where none is
# published); parameter counts from torchvision (anti-aliasing adds none).

_NUM_PARAMS = {
    "alexnet": 61100840,
    "vgg11": 132863336,
    "vgg11_bn": 132868840,
    "vgg13": 133047848,
    "vgg13_bn": 133053736,
    "vgg16": 138357544,
    "vgg16_bn": 138365992,
    "vgg19": 143667240,
    "vgg19_bn": 143678248,
    "resnet18": 11689512,
    "resnet34": 21797672,
    "resnet50": 25557032,
    "resnet101": 44549160,
    "resnet152": 60192808,
    "resnext50_32x4d": 25028904,
    "resnext101_32x8d": 88791336,
    "wide_resnet50_2": 68883240,
    "wide_resnet101_2": 126886696,
    "densenet121": 7978856,
    "densenet161": 28681000,
    "densenet169": 14149480,
    "densenet201": 20013928,
    "mobilenet_v2": 3504872,
}


def _reference(stem: str, top1: float | None = None, consistency: float | None = None) -> Weights:
    """The reference's ``<arch>_lpf<k>[_finetune]-<hash>.pth``: ``finetune`` from torchvision's baseline, or from scratch."""
    arch, _, tail = stem.partition("_lpf")
    k, recipe = int(tail[0]), "finetune" if "_finetune-" in tail else "scratch"
    how = (
        "fine-tuned from torchvision's baseline" if recipe == "finetune" else "trained from scratch"
    )
    return Weights(
        url=f"{REFERENCE_BASE_URL}{stem}.pth",
        arch=arch,
        filter_size=k,
        recipe=recipe,
        top1=top1,
        consistency=consistency,
        num_params=_NUM_PARAMS[arch],
        license=LICENSE,
        docs=f"The reference's (Zhang, ICML 2019) anti-aliased {arch}, filter_size={k}, {how}. {LICENSE}.",
    )


def _torchvision(stem: str, top1: float | None = None, consistency: float | None = None) -> Weights:
    """torchvision's baseline (not anti-aliased) ``<arch>-<hash>.pth``, IMAGENET1K_V1."""
    arch = stem.partition("-")[0]
    return Weights(
        url=f"{TORCHVISION_BASE_URL}{stem}.pth",
        arch=arch,
        filter_size=None,
        recipe="torchvision",
        top1=top1,
        consistency=consistency,
        num_params=_NUM_PARAMS[arch],
        license=TORCHVISION_LICENSE,
        docs=f"torchvision's baseline {arch} (IMAGENET1K_V1), not anti-aliased: the starting point for fine-tuning.",
    )


def _scratch(arch: str, *hashes: str) -> tuple[Weights, ...]:
    """The reference's ``LPF2`` .. ``LPF5`` of ``arch``, trained from scratch (no published metrics)."""
    return tuple(_reference(f"{arch}_lpf{k}-{h}") for k, h in enumerate(hashes, start=2))


# One class per architecture, written out so that IDEs and type checkers see every member.


class AlexNet_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("alexnet_lpf4_finetune-20598a7a", 56.94, 83.31)
    LPF2, LPF3, LPF4, LPF5 = _scratch("alexnet", "da8aca74", "f9bbc410", "0114fe25", "4fa3706a")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("alexnet-owt-7be5be79", 56.55, 78.18)
    DEFAULT = LPF4_FINETUNE


class VGG11_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("vgg11_lpf4_finetune-35eab449")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg11-8a719046")
    DEFAULT = LPF4_FINETUNE


class VGG11_BN_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("vgg11_bn_lpf4_finetune-5d60b5e4")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg11_bn-6002323d")
    DEFAULT = LPF4_FINETUNE


class VGG13_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("vgg13_lpf4_finetune-d8ff02c4")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg13-19584684")
    DEFAULT = LPF4_FINETUNE


class VGG13_BN_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("vgg13_bn_lpf4_finetune-45e2a72f")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg13_bn-abd245e5")
    DEFAULT = LPF4_FINETUNE


class VGG16_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("vgg16_lpf4_finetune-79c9dff7", 72.96, 90.91)
    LPF2, LPF3, LPF4, LPF5 = _scratch("vgg16", "60268e0c", "e9b0ce42", "de9267ac", "1391f70c")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg16-397923af", 71.59, 88.52)
    DEFAULT = LPF4_FINETUNE


class VGG16_BN_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("vgg16_bn_lpf4_finetune-1dd798d1", 75.13, 91.58)
    LPF2, LPF3, LPF4, LPF5 = _scratch("vgg16_bn", "2c2052a8", "1782878a", "a1c3559b", "c500b52f")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg16_bn-6c64b313", 73.36, 89.24)
    DEFAULT = LPF4_FINETUNE


class VGG19_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("vgg19_lpf4_finetune-7ab2cf45")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg19-dcbb9e9d")
    DEFAULT = LPF4_FINETUNE


class VGG19_BN_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("vgg19_bn_lpf4_finetune-d0114293")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg19_bn-c79401a0")
    DEFAULT = LPF4_FINETUNE


class ResNet18_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("resnet18_lpf4_finetune-8cc58f59", 71.67, 88.36)
    LPF2, LPF3, LPF4, LPF5 = _scratch("resnet18", "6e2ee76f", "449351b9", "8c77af40", "c1eed0a1")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet18-f37072fd", 69.74, 85.11)
    DEFAULT = LPF4_FINETUNE


class ResNet34_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("resnet34_lpf4_finetune-db622952", 74.6, 89.77)
    LPF2, LPF3, LPF4, LPF5 = _scratch("resnet34", "4707aed9", "16aa6c48", "55747267", "85283561")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet34-b627a593", 73.3, 87.56)
    DEFAULT = LPF4_FINETUNE


class ResNet50_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("resnet50_lpf4_finetune-cad66808", 77.41, 91.32)
    LPF2 = _reference("resnet50_lpf2-f0f7589d", 76.81, 89.96)
    LPF3 = _reference("resnet50_lpf3-a4e868d2", 76.83, 90.91)
    LPF4 = _reference("resnet50_lpf4-994b528f", 77.23, 91.29)
    LPF5 = _reference("resnet50_lpf5-9953c9ad", 77.04, 91.31)
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet50-0676ba61", 76.16, 89.2)
    DEFAULT = LPF4_FINETUNE


class ResNet101_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("resnet101_lpf4_finetune-9280acb0", 78.38, 91.97)
    LPF2, LPF3, LPF4, LPF5 = _scratch("resnet101", "3d00941d", "928f1444", "f8a116ff", "1f3745af")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet101-63fe2227", 77.37, 89.81)
    DEFAULT = LPF4_FINETUNE


class ResNet152_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("resnet152_lpf4_finetune-7f67d9ae", 79.07, 92.42)
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet152-394f9c45", 78.31, 90.92)
    DEFAULT = LPF4_FINETUNE


class ResNeXt50_32X4D_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("resnext50_32x4d_lpf4_finetune-9106e549")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnext50_32x4d-7cdf4587")
    DEFAULT = LPF4_FINETUNE


class ResNeXt101_32X8D_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("resnext101_32x8d_lpf4_finetune-8f13a25d")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnext101_32x8d-8ba56ff5")
    DEFAULT = LPF4_FINETUNE


class Wide_ResNet50_2_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("wide_resnet50_2_lpf4_finetune-02a183f7")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("wide_resnet50_2-95faca4d")
    DEFAULT = LPF4_FINETUNE


class Wide_ResNet101_2_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("wide_resnet101_2_lpf4_finetune-da4eae04")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("wide_resnet101_2-32ee1156")
    DEFAULT = LPF4_FINETUNE


class DenseNet121_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("densenet121_lpf4_finetune-eceaa619", 75.79, 90.35)
    LPF2, LPF3, LPF4, LPF5 = _scratch("densenet121", "7da7d4cd", "0f267ad8", "edeaab00", "ebc7880c")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("densenet121-a639ec97", 74.43, 88.81)
    DEFAULT = LPF4_FINETUNE


class DenseNet161_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("densenet161_lpf4_finetune-a5e0f328")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("densenet161-8d451a50")
    DEFAULT = LPF4_FINETUNE


class DenseNet169_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("densenet169_lpf4_finetune-992131e6")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("densenet169-b2777c0a")
    DEFAULT = LPF4_FINETUNE


class DenseNet201_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("densenet201_lpf4_finetune-736979b2")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("densenet201-c1103571")
    DEFAULT = LPF4_FINETUNE


class MobileNet_V2_Weights(WeightsEnum):
    LPF4_FINETUNE = _reference("mobilenet_v2_lpf4_finetune-7eed94b1", 72.72, 87.73)
    LPF2, LPF3, LPF4, LPF5 = _scratch(
        "mobilenet_v2", "f4379012", "23b2e2ee", "2e0b9cb9", "ab8fe968"
    )
    TORCHVISION_IMAGENET1K_V1 = _torchvision("mobilenet_v2-b0353104", 71.88, 86.5)
    DEFAULT = LPF4_FINETUNE


_REGISTRY: dict[str, type[WeightsEnum]] = {
    e["DEFAULT"].value.arch: e for e in WeightsEnum.__subclasses__()
}

for _enum in _REGISTRY.values():
    _enum.__doc__ = (
        f"Weights of the anti-aliased ``{_enum['DEFAULT'].value.arch}``; ``LPF*``: CC BY-NC-SA 4.0, "
        "non-commercial use only."
    )

WEIGHTS_ENUMS: tuple[str, ...] = tuple(e.__name__ for e in _REGISTRY.values())
"""The names of the 23 weights enums."""


def get_weight(name: str) -> WeightsEnum:
    """The catalog entry ``"EnumName.MEMBER"`` (torchvision's convention), e.g. ``"ResNet50_Weights.DEFAULT"``.

    Example:
        >>> get_weight("ResNet50_Weights.LPF2").filter_size
        2

    Raises:
        ValueError: ``name`` is not ``"EnumName.MEMBER"`` of one of the zoo's enums.
    """
    enum_name, _, member = name.partition(".")
    enums = {e.__name__: e for e in _REGISTRY.values()}
    if not member or enum_name not in enums:
        raise ValueError(
            f"unknown weights {name!r}; expected 'EnumName.MEMBER' with EnumName one of {sorted(enums)}"
        )
    return enums[enum_name].verify(member)  # type: ignore[return-value]


def get_model_weights(name: str) -> type[WeightsEnum]:
    """The weights enum of the registered architecture ``name`` (``"resnet50"`` -> ``ResNet50_Weights``).

    Raises:
        ValueError: if the zoo has no weights for ``name``.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"no pretrained weights for {name!r}; the zoo has weights for {sorted(_REGISTRY)}"
        ) from None
