"""convert() on vision transformers (antialias/_transformers.py): anchored patch embeddings give
exact circular-shift invariance.

Small configurations of the families of torchvision (ViT, Swin) and timm (ViT, DeiT, Swin, Twins),
random weights, non-square inputs where the model allows, odd shifts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import timm
import torch
import torchvision
from torch import Tensor, nn

from antialias import convert, convert_with_report
from antialias.layers import AnchoredConv2d, BlurConv2d

SHIFTS = [(1, 0), (0, 3), (3, 5), (17, 29)]

MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int]]] = {
    "torchvision_vit": (
        lambda: torchvision.models.VisionTransformer(
            image_size=32,
            patch_size=8,
            num_layers=1,
            num_heads=2,
            hidden_dim=16,
            mlp_dim=32,
            num_classes=10,
        ),
        (32, 32),  # torchvision's ViT takes square inputs only
    ),
    "torchvision_swin": (
        lambda: torchvision.models.SwinTransformer(
            patch_size=[4, 4],
            embed_dim=16,
            depths=[1, 1],
            num_heads=[1, 2],
            window_size=[4, 4],
            num_classes=10,
        ),
        (32, 48),
    ),
    "timm_vit": (
        lambda: timm.create_model(
            "vit_tiny_patch16_224", img_size=(32, 48), patch_size=8, depth=1, num_classes=10
        ),
        (32, 48),
    ),
    "timm_deit_distilled": (
        lambda: timm.create_model(
            "deit_tiny_distilled_patch16_224",
            img_size=(32, 48),
            patch_size=8,
            depth=1,
            num_classes=10,
        ),
        (32, 48),
    ),
    "timm_swin": (
        lambda: timm.create_model(
            "swin_tiny_patch4_window7_224",
            img_size=(32, 64),
            embed_dim=16,
            depths=(1, 1),
            num_heads=(1, 2),
            window_size=4,
            num_classes=10,
        ),
        (32, 64),
    ),
    "timm_twins_svt": (
        lambda: timm.create_model(
            "twins_svt_small",
            img_size=64,
            embed_dims=(16, 32, 64, 128),
            depths=(1, 1, 1, 1),
            num_heads=(1, 2, 4, 8),
            num_classes=10,
        ),
        (64, 96),
    ),
}


def _build(name: str) -> nn.Module:
    """The model with random weights everywhere (torchvision's ViT starts with a zero head)."""
    torch.manual_seed(0)
    model = MODELS[name][0]().eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.normal_(0, 0.2)
    return model


def _input(hw: tuple[int, int]) -> Tensor:
    return torch.randn(2, 3, *hw, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list(MODELS))
def test_aps_circular_makes_transformers_exactly_invariant(name: str) -> None:
    hw = MODELS[name][1]
    model = _build(name)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = _input(hw)
    aa, report = convert_with_report(model, method="aps", circular=True, example_inputs=x[:1])
    assert report.invariance.startswith("checked")
    # the first patch embedding is anchored, its token grid too; no parameter added or changed
    first = report.converted[0]
    assert "token grid anchored" in first.placement
    assert isinstance(aa.get_submodule(first.name), AnchoredConv2d)
    after = aa.state_dict()
    assert list(after) == list(state)
    assert all(torch.equal(after[k], v) for k, v in state.items())
    with torch.no_grad():
        logits = aa(x)
        for shift in SHIFTS:
            shifted = aa(torch.roll(x, shift, (2, 3)))
            torch.testing.assert_close(shifted, logits, rtol=1e-5, atol=1e-6)
            assert torch.equal(shifted.argmax(1), logits.argmax(1))
        # the original is not invariant: the test could fail
        plain = [model(torch.roll(x, s, (2, 3))) for s in SHIFTS]
    assert any((p - model(x)).abs().max() > 1e-3 for p in plain)


def test_later_patch_embeddings_are_left_to_the_token_anchor() -> None:
    build, hw = MODELS["timm_twins_svt"]
    aa, report = convert_with_report(
        build().eval(), method="aps", circular=True, example_inputs=_input(hw)[:1]
    )
    assert [c.name for c in report.converted] == ["patch_embeds.0.proj"]
    reasons = {s.name: s.reason for s in report.skipped}
    assert reasons["patch_embeds.1.proj"].startswith("after the token anchor of patch_embeds.0")
    assert type(aa.patch_embeds[1].proj) is nn.Conv2d


def test_blur_low_passes_a_patch_embedding_and_keeps_its_weights() -> None:
    build, hw = MODELS["timm_vit"]
    model = build().eval()
    x = _input(hw)
    aa, report = convert_with_report(model, example_inputs=x[:1])
    proj = aa.patch_embed.proj
    assert isinstance(proj, BlurConv2d) and proj.stride == (8, 8)
    assert proj.weight is not model.patch_embed.proj.weight  # a copy: the model is not modified
    assert torch.equal(proj.weight, model.patch_embed.proj.weight)
    assert report.converted[0].name == "patch_embed.proj"
    assert sorted(aa.state_dict()) == sorted(model.state_dict())
    with torch.no_grad():
        assert aa(x).shape == model(x).shape
        # a constant image stays constant through the low-pass: the same logits as the original
        c = torch.full((1, 3, *hw), 0.5)
        torch.testing.assert_close(aa(c), model(c), rtol=1e-5, atol=1e-5)


def test_convnext_anchors_every_patchify_and_is_invariant() -> None:
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    torch.manual_seed(0)
    model = ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)], num_classes=10)
    x = torch.randn(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    aa, report = convert_with_report(
        model.eval(), method="aps", circular=True, example_inputs=x[:1]
    )
    # small patches are scored by the output norm (the later ones follow a LayerNorm: input ties)
    scores = [aa.get_submodule(c.name).score for c in report.converted]
    assert scores == ["output", "output"]
    with torch.no_grad():
        for shift in SHIFTS:
            torch.testing.assert_close(
                aa(torch.roll(x, shift, (2, 3))), aa(x), rtol=1e-5, atol=1e-6
            )


def test_lps_anchors_by_norm_too() -> None:
    build, hw = MODELS["timm_vit"]
    x = _input(hw)
    aa = convert(build().eval(), method="lps", circular=True, example_inputs=x[:1])
    with torch.no_grad():
        torch.testing.assert_close(aa(torch.roll(x, (3, 7), (2, 3))), aa(x), rtol=1e-5, atol=1e-6)
