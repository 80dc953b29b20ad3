"""antialias.models._reference: the reference's checkpoint layout translated by name, its filter read and checked."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import antialias.models as zoo
from antialias.models import CheckpointError, remap_reference_state_dict
from antialias.models._reference import infer_filter_size


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_wrong_filter_size_for_a_reference_checkpoint(tmp_path: Path) -> None:
    import antialiased_cnns

    ref = antialiased_cnns.resnet18(filter_size=5, num_classes=10)
    path = tmp_path / "ref_lpf5.pth"
    torch.save({"state_dict": ref.state_dict()}, path)
    with pytest.raises(
        CheckpointError,
        match=r"trained with filter_size=5 .*shape \(64, 1, 5, 5\).*use 3-tap filters",
    ):
        zoo.resnet18(weights=path, num_classes=10, filter_size=3)
    assert zoo.resnet18(weights=path, num_classes=10).maxpool.taps == [
        1 / 16,
        4 / 16,
        6 / 16,
        4 / 16,
        1 / 16,
    ]


def test_remap_rules_by_name() -> None:
    model = zoo.mobilenet_v2(num_classes=10)
    ref = {
        "features.2.conv.2.filt": torch.ones(96, 1, 4, 4),  # a spliced blur
        "features.2.conv.3.weight": torch.ones(24, 96, 1, 1),  # -> conv.2
        "features.2.conv.4.running_mean": torch.ones(24),  # -> conv.3
        "features.2.conv.1.0.weight": torch.ones(96, 1, 3, 3),  # before the blur: unchanged
        "features.1.conv.1.weight": torch.ones(16, 32, 1, 1),  # a block without blur: unchanged
        "classifier.0.weight": torch.ones(10, 1280),  # the omitted Dropout -> classifier.1
    }
    assert sorted(remap_reference_state_dict(ref, model)) == [
        "classifier.1.weight",
        "features.1.conv.1.weight",
        "features.2.conv.1.0.weight",
        "features.2.conv.2.weight",
        "features.2.conv.3.running_mean",
    ]
    same = {k: v for k, v in model.state_dict().items()}
    assert list(remap_reference_state_dict(same, model)) == list(
        same
    )  # our own layout is a fixed point


def test_legacy_densenet_names(tmp_path: Path) -> None:
    model = zoo.densenet121(num_classes=10)
    legacy = {}
    for key, value in model.state_dict().items():
        legacy[
            key.replace("denselayer1.norm1.", "denselayer1.norm.1.").replace(
                "denselayer2.conv2.", "denselayer2.conv.2."
            )
        ] = value
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    assert _same_weights(zoo.densenet121(weights=legacy, num_classes=10), model)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7])
def test_infer_filter_size_reads_the_binomial_of_the_blur_buffers(k: int) -> None:
    row = torch.tensor([float(math.comb(k - 1, i)) for i in range(k)])
    kernel = torch.outer(row, row) / row.sum() ** 2
    state = {
        "maxpool.1.filt": kernel.expand(64, 1, k, k),
        "layer2.0.conv2.0.filt": kernel.expand(128, 1, k, k),
    }
    assert infer_filter_size(state) == k
    assert (
        infer_filter_size({"fc.weight": torch.ones(2, 2)}) is None
    )  # no blur buffers: torchvision's layout
    box = torch.full((3, 3), 1 / 9)
    assert (
        infer_filter_size({"maxpool.1.filt": box.expand(64, 1, 3, 3)}) is None
    )  # not a binomial filter
