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
from antialias.layers import AnchoredConv1d, AnchoredConv2d, BlurConv2d, BlurPatchMerging

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


class _VideoTokens(nn.Module):
    """A 3D patch embedding, a position embedding, then a 2D patchify convolution of the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, 8, (2, 4, 4), stride=(2, 4, 4))
        self.pos_embed = nn.Parameter(torch.zeros(1, 8, 1, 4, 4))
        self.merge = nn.Conv2d(8, 8, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        tokens = (self.proj(x) + self.pos_embed).mean(2)
        return self.merge(tokens).flatten(1)


@pytest.mark.parametrize("method", ["aps", "lps"])
def test_a_3d_patch_embedding_is_reported_as_unable_to_anchor_the_tokens(method: str) -> None:
    with pytest.warns(UserWarning, match="nothing to anti-alias"):
        aa, report = convert_with_report(
            _VideoTokens(), method=method, example_inputs=torch.randn(1, 3, 4, 16, 16)
        )
    reasons = {s.name: s.reason for s in report.skipped}
    why = "the token grid cannot be anchored: proj is 3D (anchoring is 1D and 2D)"
    assert reasons == {"proj": why, "merge": why}
    assert type(aa.proj) is nn.Conv3d and type(aa.merge) is nn.Conv2d


@pytest.mark.parametrize("name", ["torchvision_swin", "timm_swin"])
def test_blur_low_passes_swins_patch_mergings_and_keeps_the_state(name: str) -> None:
    model, hw = _build(name).eval(), MODELS[name][1]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = _input(hw)
    expected_shape = model(x).shape
    aa, report = convert_with_report(model, example_inputs=x[:1])
    mergings = [n for n, m in aa.named_modules() if isinstance(m, BlurPatchMerging)]
    rows = {c.name: c.placement for c in report.converted}
    assert mergings and all(
        rows[n] == "low-pass before the 2x2 merge, at stride 1" for n in mergings
    )
    assert not report.skipped, report.skipped  # no slicing in forward() is left unreported
    after = aa.state_dict()
    assert list(after) == list(state) and all(torch.equal(after[k], state[k]) for k in state)
    assert aa(x).shape == expected_shape
    # excluded, a merging stays as it was and says why
    _, report = convert_with_report(_build(name), exclude=mergings[0], example_inputs=x[:1])
    assert [s.reason for s in report.skipped] == [f"excluded by pattern {mergings[0]!r}"]
    # under APS the token anchor hands the mergings the same tokens: they are not edited
    aa = convert(_build(name), method="aps", example_inputs=x[:1])
    assert not any(isinstance(m, BlurPatchMerging) for m in aa.modules())


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


class _Embed(nn.Module):
    """A patch embedding with an absolute position embedding (token processing)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 8, stride=8)
        self.pos_embed = nn.Parameter(torch.randn(1, 8, 4, 4))

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x) + self.pos_embed


def test_a_low_pass_patch_embedding_takes_the_model_dtype() -> None:
    """The layer before a float64 patch embedding is float64 too (a learned method here)."""
    torch.manual_seed(0)
    model = _Embed().double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    aa, report = convert_with_report(model, method="adaptive", example_inputs=x[:1])
    assert report.converted[0].placement == "low-pass before the patch embedding"
    assert all(t.dtype == torch.float64 for t in aa.state_dict().values() if t.is_floating_point())
    with torch.no_grad():
        assert aa(x).dtype == torch.float64
    # the model's own keys and values are kept; the learned filter adds its parameters
    before, after = model.state_dict(), aa.state_dict()
    assert list(after)[: len(before)] == list(before)
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert all(k.startswith("proj.blur.") for k in list(after)[len(before) :])


@pytest.mark.parametrize("method", ["blur", "aps"])
def test_hooks_on_a_patch_embedding_move_to_its_replacement(method: str) -> None:
    model = _Embed().eval()
    calls: list[str] = []
    model.proj.register_forward_hook(lambda module, args, out: calls.append(type(module).__name__))
    x = torch.randn(1, 3, 32, 32)
    aa, report = convert_with_report(model, method=method, example_inputs=x)
    assert report.hooks_moved == ["proj"]
    calls.clear()
    with torch.no_grad():
        aa(x)
    assert calls == [type(aa.proj).__name__]
    assert type(aa.proj) is (BlurConv2d if method == "blur" else AnchoredConv2d)


@pytest.mark.parametrize("method", ["blur", "aps"])
def test_a_patch_embedding_under_two_names_is_replaced_under_both(method: str) -> None:
    model = _Embed().eval()
    model.add_module("stem", model.proj)  # the same module, registered twice
    aa, report = convert_with_report(model, method=method, example_inputs=torch.randn(1, 3, 32, 32))
    assert aa.stem is aa.proj
    assert type(aa.proj) is (BlurConv2d if method == "blur" else AnchoredConv2d)
    assert [c.name for c in report.converted] == ["proj"]
    assert report.converted[0].placement.endswith("the same module at stem, edited there too")
    assert sorted(aa.state_dict()) == sorted(model.state_dict())


def test_anchored_convolutions_are_reported_as_anchored_with_their_own_score() -> None:
    """An AnchoredConv1d stem stays itself, reported as anchored (not left alone as the stem); an
    AnchoredConv2d keeps its score and the report says it."""
    model = nn.Sequential(AnchoredConv1d(1, 4, 16), nn.ReLU(), nn.Conv1d(4, 4, 3, padding=1))
    aa, report = convert_with_report(model, method="aps", example_inputs=torch.randn(1, 1, 160))
    assert aa[0] is not model[0] and type(aa[0]) is AnchoredConv1d
    assert [(c.name, c.placement) for c in report.converted] == [("0", "anchored by input norm")]
    assert all(s.name != "0" for s in report.skipped)

    model2 = nn.Sequential(AnchoredConv2d(3, 8, 4, score="input"), nn.ReLU())
    aa2, report = convert_with_report(
        model2, method="aps", example_inputs=torch.randn(1, 3, 16, 16)
    )
    assert aa2[0].score == "input"
    assert [(c.name, c.placement) for c in report.converted] == [("0", "anchored by input norm")]
