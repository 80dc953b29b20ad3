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

__all__ = [
    "LICENSE",
    "MIRROR_ENV",
    "Preprocessing",
    "Weights",
    "WeightsEnum",
    "get_model_weights",
    "get_weight",
    "AlexNet_Weights",
    "VGG11_Weights",
    "VGG11_BN_Weights",
    "VGG13_Weights",
    "VGG13_BN_Weights",
    "VGG16_Weights",
    "VGG16_BN_Weights",
    "VGG19_Weights",
    "VGG19_BN_Weights",
    "ResNet18_Weights",
    "ResNet34_Weights",
    "ResNet50_Weights",
    "ResNet101_Weights",
    "ResNet152_Weights",
    "ResNeXt50_32X4D_Weights",
    "ResNeXt101_32X8D_Weights",
    "Wide_ResNet50_2_Weights",
    "Wide_ResNet101_2_Weights",
    "DenseNet121_Weights",
    "DenseNet161_Weights",
    "DenseNet169_Weights",
    "DenseNet201_Weights",
    "MobileNet_V2_Weights",
]

LICENSE = "CC BY-NC-SA 4.0 (non-commercial)"
"""License of the reference's weights: Creative Commons Attribution-NonCommercial-ShareAlike 4.0."""
TORCHVISION_LICENSE = "torchvision's terms (BSD-3-Clause code; ImageNet's terms of access may apply)"

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
        """The shorter side before the center crop: ``round(crop / crop_pct)`` (256 for 224)."""
        return int(round(self.input_size[-1] / self.crop_pct))

    def transforms(self) -> Callable[[Any], Any]:
        """The evaluation transform: :func:`antialias.data.eval_transform` with these fields.

        Shape:
            - Input: a PIL image, ``(3, H, W)`` or ``(N, 3, H, W)`` (``uint8``, or float in ``[0, 1]``).
            - Output: ``(3, 224, 224)`` or ``(N, 3, 224, 224)`` (``input_size``), float32.
        """
        from antialias.data import eval_transform

        return eval_transform(crop=self.input_size[-2:], crop_pct=self.crop_pct, interpolation=self.interpolation,
                              mean=self.mean, std=self.std)


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
            raise ValueError(f"{self.file_name!r} does not follow the '<name>-<sha256 prefix>.pth' convention")
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
            raise ValueError(f"unknown weights {obj!r} for {cls.__name__}; expected one of {list(cls.__members__)}")
        raise TypeError(f"expected a {cls.__name__} member or its name, got {type(obj).__name__}")

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: expose the Weights' fields on the member.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.value, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


# --------------------------------------------------------------------------------------------------
# The catalog. Facts from the reference (file names and their SHA-256 prefixes) and from
# REFERENCE.md section 3 (published top-1 / consistency in percent); num_params from torchvision.

# arch: (enum name, lpf4_finetune hash, {k: scratch hash}, torchvision V1 file, num_params)
_CATALOG: dict[str, tuple[str, str, dict[int, str], str, int]] = {
    "alexnet": ("AlexNet_Weights", "20598a7a",
                {2: "da8aca74", 3: "f9bbc410", 4: "0114fe25", 5: "4fa3706a"}, "alexnet-owt-7be5be79.pth", 61100840),
    "vgg11": ("VGG11_Weights", "35eab449", {}, "vgg11-8a719046.pth", 132863336),
    "vgg11_bn": ("VGG11_BN_Weights", "5d60b5e4", {}, "vgg11_bn-6002323d.pth", 132868840),
    "vgg13": ("VGG13_Weights", "d8ff02c4", {}, "vgg13-19584684.pth", 133047848),
    "vgg13_bn": ("VGG13_BN_Weights", "45e2a72f", {}, "vgg13_bn-abd245e5.pth", 133053736),
    "vgg16": ("VGG16_Weights", "79c9dff7",
              {2: "60268e0c", 3: "e9b0ce42", 4: "de9267ac", 5: "1391f70c"}, "vgg16-397923af.pth", 138357544),
    "vgg16_bn": ("VGG16_BN_Weights", "1dd798d1",
                 {2: "2c2052a8", 3: "1782878a", 4: "a1c3559b", 5: "c500b52f"}, "vgg16_bn-6c64b313.pth", 138365992),
    "vgg19": ("VGG19_Weights", "7ab2cf45", {}, "vgg19-dcbb9e9d.pth", 143667240),
    "vgg19_bn": ("VGG19_BN_Weights", "d0114293", {}, "vgg19_bn-c79401a0.pth", 143678248),
    "resnet18": ("ResNet18_Weights", "8cc58f59",
                 {2: "6e2ee76f", 3: "449351b9", 4: "8c77af40", 5: "c1eed0a1"}, "resnet18-f37072fd.pth", 11689512),
    "resnet34": ("ResNet34_Weights", "db622952",
                 {2: "4707aed9", 3: "16aa6c48", 4: "55747267", 5: "85283561"}, "resnet34-b627a593.pth", 21797672),
    "resnet50": ("ResNet50_Weights", "cad66808",
                 {2: "f0f7589d", 3: "a4e868d2", 4: "994b528f", 5: "9953c9ad"}, "resnet50-0676ba61.pth", 25557032),
    "resnet101": ("ResNet101_Weights", "9280acb0",
                  {2: "3d00941d", 3: "928f1444", 4: "f8a116ff", 5: "1f3745af"}, "resnet101-63fe2227.pth", 44549160),
    "resnet152": ("ResNet152_Weights", "7f67d9ae", {}, "resnet152-394f9c45.pth", 60192808),
    "resnext50_32x4d": ("ResNeXt50_32X4D_Weights", "9106e549", {}, "resnext50_32x4d-7cdf4587.pth", 25028904),
    "resnext101_32x8d": ("ResNeXt101_32X8D_Weights", "8f13a25d", {}, "resnext101_32x8d-8ba56ff5.pth", 88791336),
    "wide_resnet50_2": ("Wide_ResNet50_2_Weights", "02a183f7", {}, "wide_resnet50_2-95faca4d.pth", 68883240),
    "wide_resnet101_2": ("Wide_ResNet101_2_Weights", "da4eae04", {}, "wide_resnet101_2-32ee1156.pth", 126886696),
    "densenet121": ("DenseNet121_Weights", "eceaa619",
                    {2: "7da7d4cd", 3: "0f267ad8", 4: "edeaab00", 5: "ebc7880c"}, "densenet121-a639ec97.pth", 7978856),
    "densenet161": ("DenseNet161_Weights", "a5e0f328", {}, "densenet161-8d451a50.pth", 28681000),
    "densenet169": ("DenseNet169_Weights", "992131e6", {}, "densenet169-b2777c0a.pth", 14149480),
    "densenet201": ("DenseNet201_Weights", "736979b2", {}, "densenet201-c1103571.pth", 20013928),
    "mobilenet_v2": ("MobileNet_V2_Weights", "7eed94b1",
                     {2: "f4379012", 3: "23b2e2ee", 4: "2e0b9cb9", 5: "ab8fe968"}, "mobilenet_v2-b0353104.pth", 3504872),
}

# Published top-1 / consistency (%), REFERENCE.md section 3: torchvision baseline and lpf4_finetune.
_BASELINE = {
    "alexnet": (56.55, 78.18), "vgg16": (71.59, 88.52), "vgg16_bn": (73.36, 89.24),
    "resnet18": (69.74, 85.11), "resnet34": (73.30, 87.56), "resnet50": (76.16, 89.20),
    "resnet101": (77.37, 89.81), "resnet152": (78.31, 90.92), "densenet121": (74.43, 88.81),
    "mobilenet_v2": (71.88, 86.50),
}
_FINETUNE = {
    "alexnet": (56.94, 83.31), "vgg16": (72.96, 90.91), "vgg16_bn": (75.13, 91.58),
    "resnet18": (71.67, 88.36), "resnet34": (74.60, 89.77), "resnet50": (77.41, 91.32),
    "resnet101": (78.38, 91.97), "resnet152": (79.07, 92.42), "densenet121": (75.79, 90.35),
    "mobilenet_v2": (72.72, 87.73),
}
_SCRATCH = {("resnet50", 2): (76.81, 89.96), ("resnet50", 3): (76.83, 90.91),
            ("resnet50", 4): (77.23, 91.29), ("resnet50", 5): (77.04, 91.31)}

def _official(arch: str, k: int, recipe: str) -> Weights:
    """The catalog entry of the reference's ``arch`` trained with filter ``k`` (``recipe``: finetune/scratch)."""
    _, finetune_hash, scratch, _, num_params = _CATALOG[arch]
    none: tuple[float | None, float | None] = (None, None)
    if recipe == "finetune":
        suffix, digest, numbers = "lpf4_finetune", finetune_hash, _FINETUNE.get(arch, none)
        how = "fine-tuned from torchvision's baseline"
    else:
        suffix, digest, numbers = f"lpf{k}", scratch[k], _SCRATCH.get((arch, k), none)
        how = "trained from scratch"
    return Weights(
        url=f"{REFERENCE_BASE_URL}{arch}_{suffix}-{digest}.pth", arch=arch, filter_size=k, recipe=recipe,
        top1=numbers[0], consistency=numbers[1], num_params=num_params, license=LICENSE,
        docs=f"The reference's (Zhang, ICML 2019) anti-aliased {arch}, filter_size={k}, {how}. {LICENSE}.",
    )


def _torchvision(arch: str) -> Weights:
    """The catalog entry of torchvision's baseline (not anti-aliased) ``arch``, IMAGENET1K_V1."""
    _, _, _, tv_file, num_params = _CATALOG[arch]
    top1, consistency = _BASELINE.get(arch, (None, None))
    return Weights(
        url=TORCHVISION_BASE_URL + tv_file, arch=arch, filter_size=None, recipe="torchvision", top1=top1,
        consistency=consistency, num_params=num_params, license=TORCHVISION_LICENSE,
        docs=f"torchvision's baseline {arch} (IMAGENET1K_V1), not anti-aliased: the starting point for fine-tuning.",
    )


# One class per architecture, written out so that IDEs and type checkers see every member.

class AlexNet_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``alexnet``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("alexnet", 4, "finetune")
    LPF2 = _official("alexnet", 2, "scratch")
    LPF3 = _official("alexnet", 3, "scratch")
    LPF4 = _official("alexnet", 4, "scratch")
    LPF5 = _official("alexnet", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("alexnet")
    DEFAULT = LPF4_FINETUNE


class VGG11_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``vgg11``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("vgg11", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg11")
    DEFAULT = LPF4_FINETUNE


class VGG11_BN_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``vgg11_bn``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("vgg11_bn", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg11_bn")
    DEFAULT = LPF4_FINETUNE


class VGG13_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``vgg13``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("vgg13", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg13")
    DEFAULT = LPF4_FINETUNE


class VGG13_BN_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``vgg13_bn``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("vgg13_bn", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg13_bn")
    DEFAULT = LPF4_FINETUNE


class VGG16_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``vgg16``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("vgg16", 4, "finetune")
    LPF2 = _official("vgg16", 2, "scratch")
    LPF3 = _official("vgg16", 3, "scratch")
    LPF4 = _official("vgg16", 4, "scratch")
    LPF5 = _official("vgg16", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg16")
    DEFAULT = LPF4_FINETUNE


class VGG16_BN_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``vgg16_bn``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("vgg16_bn", 4, "finetune")
    LPF2 = _official("vgg16_bn", 2, "scratch")
    LPF3 = _official("vgg16_bn", 3, "scratch")
    LPF4 = _official("vgg16_bn", 4, "scratch")
    LPF5 = _official("vgg16_bn", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg16_bn")
    DEFAULT = LPF4_FINETUNE


class VGG19_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``vgg19``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("vgg19", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg19")
    DEFAULT = LPF4_FINETUNE


class VGG19_BN_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``vgg19_bn``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("vgg19_bn", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("vgg19_bn")
    DEFAULT = LPF4_FINETUNE


class ResNet18_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``resnet18``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("resnet18", 4, "finetune")
    LPF2 = _official("resnet18", 2, "scratch")
    LPF3 = _official("resnet18", 3, "scratch")
    LPF4 = _official("resnet18", 4, "scratch")
    LPF5 = _official("resnet18", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet18")
    DEFAULT = LPF4_FINETUNE


class ResNet34_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``resnet34``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("resnet34", 4, "finetune")
    LPF2 = _official("resnet34", 2, "scratch")
    LPF3 = _official("resnet34", 3, "scratch")
    LPF4 = _official("resnet34", 4, "scratch")
    LPF5 = _official("resnet34", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet34")
    DEFAULT = LPF4_FINETUNE


class ResNet50_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``resnet50``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("resnet50", 4, "finetune")
    LPF2 = _official("resnet50", 2, "scratch")
    LPF3 = _official("resnet50", 3, "scratch")
    LPF4 = _official("resnet50", 4, "scratch")
    LPF5 = _official("resnet50", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet50")
    DEFAULT = LPF4_FINETUNE


class ResNet101_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``resnet101``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("resnet101", 4, "finetune")
    LPF2 = _official("resnet101", 2, "scratch")
    LPF3 = _official("resnet101", 3, "scratch")
    LPF4 = _official("resnet101", 4, "scratch")
    LPF5 = _official("resnet101", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet101")
    DEFAULT = LPF4_FINETUNE


class ResNet152_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``resnet152``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("resnet152", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnet152")
    DEFAULT = LPF4_FINETUNE


class ResNeXt50_32X4D_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``resnext50_32x4d``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("resnext50_32x4d", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnext50_32x4d")
    DEFAULT = LPF4_FINETUNE


class ResNeXt101_32X8D_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``resnext101_32x8d``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("resnext101_32x8d", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("resnext101_32x8d")
    DEFAULT = LPF4_FINETUNE


class Wide_ResNet50_2_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``wide_resnet50_2``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("wide_resnet50_2", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("wide_resnet50_2")
    DEFAULT = LPF4_FINETUNE


class Wide_ResNet101_2_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``wide_resnet101_2``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("wide_resnet101_2", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("wide_resnet101_2")
    DEFAULT = LPF4_FINETUNE


class DenseNet121_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``densenet121``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("densenet121", 4, "finetune")
    LPF2 = _official("densenet121", 2, "scratch")
    LPF3 = _official("densenet121", 3, "scratch")
    LPF4 = _official("densenet121", 4, "scratch")
    LPF5 = _official("densenet121", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("densenet121")
    DEFAULT = LPF4_FINETUNE


class DenseNet161_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``densenet161``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("densenet161", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("densenet161")
    DEFAULT = LPF4_FINETUNE


class DenseNet169_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``densenet169``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("densenet169", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("densenet169")
    DEFAULT = LPF4_FINETUNE


class DenseNet201_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``densenet201``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("densenet201", 4, "finetune")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("densenet201")
    DEFAULT = LPF4_FINETUNE


class MobileNet_V2_Weights(WeightsEnum):
    """Pretrained weights of the anti-aliased ``mobilenet_v2``. ``DEFAULT`` is ``LPF4_FINETUNE``; the reference's
    weights (``LPF*``) are CC BY-NC-SA 4.0: non-commercial use only."""

    LPF4_FINETUNE = _official("mobilenet_v2", 4, "finetune")
    LPF2 = _official("mobilenet_v2", 2, "scratch")
    LPF3 = _official("mobilenet_v2", 3, "scratch")
    LPF4 = _official("mobilenet_v2", 4, "scratch")
    LPF5 = _official("mobilenet_v2", 5, "scratch")
    TORCHVISION_IMAGENET1K_V1 = _torchvision("mobilenet_v2")
    DEFAULT = LPF4_FINETUNE

_REGISTRY: dict[str, type[WeightsEnum]] = {
    w.DEFAULT.value.arch: w
    for w in (
        AlexNet_Weights, VGG11_Weights, VGG11_BN_Weights, VGG13_Weights, VGG13_BN_Weights, VGG16_Weights,
        VGG16_BN_Weights, VGG19_Weights, VGG19_BN_Weights, ResNet18_Weights, ResNet34_Weights, ResNet50_Weights,
        ResNet101_Weights, ResNet152_Weights, ResNeXt50_32X4D_Weights, ResNeXt101_32X8D_Weights,
        Wide_ResNet50_2_Weights, Wide_ResNet101_2_Weights, DenseNet121_Weights, DenseNet161_Weights,
        DenseNet169_Weights, DenseNet201_Weights, MobileNet_V2_Weights,
    )
}

WEIGHTS_ENUMS: tuple[str, ...] = tuple(e.__name__ for e in _REGISTRY.values())
"""The names of the 23 weights enums (also in ``__all__``)."""


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
        raise ValueError(f"no pretrained weights for {name!r}; the zoo has weights for {sorted(_REGISTRY)}") from None
