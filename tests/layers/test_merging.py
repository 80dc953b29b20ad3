"""BlurPatchMerging: Swin's patch merging (torchvision's and timm's, v1 and v2) after a low-pass
filter at stride 1, with the original's parameters and state-dict keys."""

from __future__ import annotations

import pytest
import timm.models.swin_transformer as timm_swin
import timm.models.swin_transformer_v2 as timm_swin_v2
import torch
import torchvision.models.swin_transformer as tv_swin
from torch import nn

from antialias.layers import BlurPatchMerging, BlurPool2d

MERGINGS = {
    "torchvision_v1": lambda: tv_swin.PatchMerging(8),
    "torchvision_v2": lambda: tv_swin.PatchMergingV2(8),
    "timm_v1": lambda: timm_swin.PatchMerging(8),
    "timm_v2": lambda: timm_swin_v2.PatchMerging(8, out_dim=12),
}


def _merging(name: str) -> nn.Module:
    merging = MERGINGS[name]()
    with torch.no_grad():
        for p in merging.parameters():
            p.normal_(generator=torch.Generator().manual_seed(1))
    return merging


@pytest.mark.parametrize("name", list(MERGINGS))
def test_without_a_filter_it_is_the_original_merging(name: str, generator) -> None:
    merging = _merging(name)
    blurred = BlurPatchMerging.from_merging(merging, filter_size=1)
    for hw in ((6, 8), (7, 5), (1, 1)):  # odd sides: Swin pads the end
        x = torch.randn(2, *hw, 8, generator=generator)
        assert torch.equal(blurred(x), merging(x)), hw
    assert list(blurred.state_dict()) == list(merging.state_dict())
    assert blurred.reduction is merging.reduction and blurred.norm is merging.norm


@pytest.mark.parametrize("name", list(MERGINGS))
def test_the_filter_runs_before_the_merge(name: str, generator) -> None:
    merging = _merging(name)
    blurred = BlurPatchMerging.from_merging(merging)
    x = torch.randn(2, 6, 10, 8, generator=generator)
    blur = BlurPool2d(8, stride=1)
    smooth = blur(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(blurred(x), merging(smooth), rtol=0, atol=1e-6)
    assert not torch.allclose(blurred(x), merging(x))
    # leading axes before (H, W, C) are kept, as torchvision's merging keeps them
    assert blurred(x.unsqueeze(0)).shape == (1, *merging(x).shape)


def test_a_module_without_a_reduction_and_a_norm_is_refused() -> None:
    with pytest.raises(TypeError, match="expected a patch merging .* got Linear"):
        BlurPatchMerging.from_merging(nn.Linear(8, 8))
    with pytest.raises(ValueError, match="4 \\* C features, got in_features=6"):
        BlurPatchMerging(nn.Linear(6, 4), nn.LayerNorm(6))
