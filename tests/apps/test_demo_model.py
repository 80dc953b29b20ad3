"""DemoNet, one per variant: shared initial weights, invariance to shifts (antialias.apps.demo.model)."""

from __future__ import annotations

import pytest
import torch

from antialias.apps import demo
from antialias.apps.demo import DemoNet, make_variants


def _variant(name: str) -> demo.Variant:
    return next(v for v in make_variants((4,)) if v.name == name)


def test_variants_share_initial_weights():
    states = []
    for name in ("baseline", "blur-4", "aps"):
        torch.manual_seed(3)
        states.append(DemoNet(_variant(name)).state_dict())
    assert states[0].keys() == states[1].keys() == states[2].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]) and torch.equal(
            states[0][key], states[2][key]
        )


@pytest.mark.parametrize("name", ["baseline", "blur-4", "aps"])
def test_demonet_is_invariant_to_shifts_by_the_total_stride(name, generator):
    torch.manual_seed(0)
    net = DemoNet(_variant(name)).eval()
    x = torch.randn(4, 1, 32, 32, generator=generator)
    with torch.no_grad():
        ref = net(x)
        for shift in ((8, 0), (0, 16), (-8, 24)):
            torch.testing.assert_close(
                net(torch.roll(x, shift, dims=(-2, -1))), ref, rtol=1e-4, atol=1e-5
            )


def test_aps_is_invariant_to_every_shift_and_baseline_is_not(generator):
    torch.manual_seed(0)
    aps = DemoNet(_variant("aps")).eval()
    torch.manual_seed(0)
    base = DemoNet(_variant("baseline")).eval()
    x = torch.randn(4, 1, 32, 32, generator=generator)
    with torch.no_grad():
        for shift in ((1, 0), (0, 3), (5, 7)):
            shifted = torch.roll(x, shift, dims=(-2, -1))
            torch.testing.assert_close(aps(shifted), aps(x), rtol=1e-4, atol=1e-5)
            assert (base(shifted) - base(x)).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["aps", "lps"])
def test_every_registered_method_builds_a_circularly_invariant_demonet(name, generator):
    # Polyphase sampling after a wrapped dense max keeps the whole net invariant to any circular shift.
    torch.manual_seed(0)
    net = DemoNet(demo.parse_methods([name])[0]).eval()
    x = torch.randn(2, 1, 32, 32, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(
            net(torch.roll(x, (3, -5), dims=(-2, -1))), net(x), rtol=1e-4, atol=1e-5
        )


def test_anchored_demo_vit_is_invariant_to_every_circular_shift_and_the_plain_one_is_not(generator):
    from antialias.apps.demo import DemoConfig, DemoViT
    from antialias.apps.demo.model import build_model

    variants = {v.name: v for v in DemoConfig(models=("cnn", "vit")).variants()}
    assert {"baseline", "vit", "vit-anchored"} <= set(variants)
    torch.manual_seed(0)
    plain = build_model(variants["vit"], (16, 32, 64), 1, 10).eval()
    torch.manual_seed(0)
    anchored = build_model(variants["vit-anchored"], (16, 32, 64), 1, 10).eval()
    assert isinstance(anchored, DemoViT)
    assert list(plain.state_dict()) == list(anchored.state_dict())  # anchoring adds no parameters
    x = torch.randn(4, 1, 32, 32, generator=generator)
    with torch.no_grad():
        for shift in [(1, 0), (3, 5), (13, 30)]:
            rolled = torch.roll(x, shift, (2, 3))
            torch.testing.assert_close(anchored(rolled), anchored(x), rtol=1e-5, atol=1e-6)
        assert (plain(torch.roll(x, (1, 0), (2, 3))) - plain(x)).abs().max() > 1e-4
    with pytest.raises(ValueError, match="models must hold 'cnn'"):
        DemoConfig(models=("vit",))
