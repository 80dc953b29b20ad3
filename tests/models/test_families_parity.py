"""Our zoo reproduces the reference (antialiased-cnns 0.3) exactly: all 23 architectures x filter sizes 2..5.

For each (arch, k): the reference model ``antialiased_cnns.<arch>(filter_size=k)`` gets random weights,
its state dict is saved in the official format (``{'state_dict': sd}``, with the ``*.filt`` buffers and
the reference's key layout), and our builder loads the file through ``weights=path``. In eval mode the
logits on the same random input agree to 1e-5 of their scale.

Speed (2 CPU cores): both sides use ``num_classes=10`` and small inputs (the smallest the reference's
reflect padding accepts at k=5; H != W to catch transposed axes). The reference's random
initialization is skipped (every value is then overwritten by a strict load, checked below), and the
random values of an architecture are drawn once and shared by its four filter sizes: they do not
depend on k. Odd k are saved in torch's legacy (non-zip) format, as the 2019 official files were.
"""

from __future__ import annotations

from pathlib import Path

import antialiased_cnns
import pytest
import torch
from _zoo_archs import ARCHS
from torch import Tensor, nn

import antialias.models as zoo

FILTER_SIZES = [2, 3, 4, 5]
NUM_CLASSES = 10

pytestmark = pytest.mark.slow  # ~1-2 min for the 97 cases on 2 cores


def input_size(arch: str) -> tuple[int, int]:
    """The smallest (H, W) (H != W) on which the reference runs at k = 5 (its reflect pad must fit)."""
    if arch == "alexnet":
        return 96, 104
    if arch.startswith("vgg"):
        return 64, 72
    return 40, 48


_VALUES: dict[str, dict[str, Tensor]] = {}  # the random values of the last architecture drawn


def random_values(arch: str, template: dict[str, Tensor]) -> dict[str, Tensor]:
    """Random weights for every entry of the reference's state dict but the blur buffers (seeded per arch)."""
    if arch not in _VALUES:
        _VALUES.clear()  # keep one architecture in memory (VGG: ~0.5 GB)
        g = torch.Generator().manual_seed(sum(map(ord, arch)))
        values = {}
        for name, t in template.items():
            if name.endswith(".filt") or name.endswith("num_batches_tracked"):
                continue
            leaf = name.rpartition(".")[2]
            if leaf == "running_var":
                v = torch.empty(t.shape).uniform_(0.5, 1.5, generator=g)
            elif leaf == "weight" and t.dim() == 1:  # BN scale
                v = torch.empty(t.shape).uniform_(0.5, 1.5, generator=g)
            elif t.dim() == 1:  # biases, BN shift and running mean
                v = torch.empty(t.shape).uniform_(-0.2, 0.2, generator=g)
            else:  # He-like scale keeps activations of the deep random nets in range
                bound = (6.0 / t[0].numel()) ** 0.5
                v = torch.empty(t.shape).uniform_(-bound, bound, generator=g)
            values[name] = v
        _VALUES[arch] = values
    return _VALUES[arch]


def reference_model(arch: str, k: int, **kwargs: object) -> nn.Module:
    ref = getattr(antialiased_cnns, arch)(filter_size=k, num_classes=NUM_CLASSES, **kwargs)
    values = random_values(arch, ref.state_dict())
    # assign=True: the reference's parameters become the random tensors (no 0.5 GB copy for VGG).
    result = ref.load_state_dict(values, strict=False, assign=True)
    # Everything but the blur buffers (computed by the reference from k) is overwritten.
    assert not result.unexpected_keys
    assert result.missing_keys and all(key.endswith(".filt") for key in result.missing_keys)
    return ref.eval()


def assert_same_logits(ref: nn.Module, ours: nn.Module, arch: str, seed: int) -> None:
    h, w = input_size(arch)
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = ref(x)
        actual = ours(x)
    assert actual.shape == expected.shape == (1, NUM_CLASSES)
    assert torch.isfinite(expected).all()
    scale = expected.abs().max()
    assert scale > 0
    err = (actual - expected).abs().max() / scale
    assert err <= 1e-5, f"{arch}: max |ours - reference| / max |reference| = {err:.2e}"


@pytest.mark.parametrize(("arch", "k"), [(a, k) for a in ARCHS for k in FILTER_SIZES])
def test_reference_checkpoint_gives_reference_logits(
    arch: str, k: int, tmp_path: Path, no_random_init: None
) -> None:
    ref = reference_model(arch, k)
    path = tmp_path / f"{arch}_lpf{k}.pth"
    torch.save({"state_dict": ref.state_dict()}, path, _use_new_zipfile_serialization=k % 2 == 0)
    assert any(
        key.endswith(".filt") for key in ref.state_dict()
    )  # the official layout, blur buffers included

    ours = zoo.get_model(arch, weights=str(path), num_classes=NUM_CLASSES).eval()
    path.unlink()  # pytest keeps the last runs' tmp folders: do not leave 92 checkpoints (up to 0.5 GB each)

    # filter_size was taken from the checkpoint's blur buffers; nothing of ours is persistent blur state.
    blur = [m for m in ours.modules() if hasattr(m, "taps")]
    assert blur and all(len(m.taps) == k for m in blur)
    assert not any(key.endswith(".filt") for key in ours.state_dict())
    assert_same_logits(ref, ours, arch, seed=k)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "densenet121"])
def test_reference_pool_only_false_is_antialias_stem(
    arch: str, tmp_path: Path, no_random_init: None
) -> None:
    ref = reference_model(arch, 3, pool_only=False)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": ref.state_dict()}, path)
    ours = zoo.get_model(
        arch, weights=path, filter_size=3, antialias_stem=True, num_classes=NUM_CLASSES
    ).eval()
    path.unlink()
    assert_same_logits(ref, ours, arch, seed=7)


def test_reference_mobilenet_classifier_maps_to_torchvision_name(
    tmp_path: Path, no_random_init: None
) -> None:
    """The reference's MobileNetV2 classifier is Sequential(Linear): key classifier.0.*; ours keeps
    torchvision's Sequential(Dropout, Linear): classifier.1.*; the remap moves the key."""
    ref = reference_model("mobilenet_v2", 4)
    assert "classifier.0.weight" in ref.state_dict()
    ours = zoo.mobilenet_v2(weights=ref.state_dict(), num_classes=NUM_CLASSES).eval()
    assert (
        "classifier.1.weight" in ours.state_dict()
        and "classifier.0.weight" not in ours.state_dict()
    )
    assert isinstance(ours.classifier[0], nn.Dropout)
    torch.testing.assert_close(ours.classifier[1].weight, ref.classifier[0].weight, rtol=0, atol=0)
    assert_same_logits(ref, ours, "mobilenet_v2", seed=3)


def test_every_reference_architecture_is_in_the_zoo() -> None:
    assert set(ARCHS) <= set(zoo.list_models())
    for arch in ARCHS:
        assert callable(getattr(antialiased_cnns, arch))
