"""Polyphase and token anchoring: equivariance, invariance, shapes, parameters kept, errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from antialias.layers import (
    AnchoredConv1d,
    AnchoredConv2d,
    PolyphaseAnchor1d,
    PolyphaseAnchor2d,
    TokenAnchor1d,
    TokenAnchor2d,
    polyphase_anchor1d,
    polyphase_anchor2d,
    token_anchor1d,
    token_anchor2d,
)


def _randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shift", [(1, 0), (0, 3), (5, 7), (13, 22)])
@pytest.mark.parametrize("stride", [2, 4, (2, 4)])
def test_polyphase_anchor_turns_every_shift_into_a_multiple_of_the_stride(
    shift: tuple[int, int], stride: int | tuple[int, int]
) -> None:
    x = _randn(2, 3, 16, 24)
    out, s = polyphase_anchor2d(x, stride, return_shift=True)
    out2, s2 = polyphase_anchor2d(torch.roll(x, shift, (2, 3)), stride, return_shift=True)
    steps = (2, 2) if stride == 2 else (4, 4) if stride == 4 else (2, 4)
    for n in range(2):
        moved = [
            (t + b - a) % side for t, a, b, side in zip(shift, s[n], s2[n], (16, 24), strict=True)
        ]
        assert all(m % k == 0 for m, k in zip(moved, steps, strict=True))
        assert torch.equal(out2[n], torch.roll(out[n], moved, (1, 2)))
        assert torch.equal(out[n], torch.roll(x[n], s[n].tolist(), (1, 2)))


def test_polyphase_anchor_1d_and_module_forms() -> None:
    x = _randn(3, 2, 40)
    out, s = polyphase_anchor1d(x, 4, return_shift=True)
    assert out.shape == x.shape and s.shape == (3, 1)
    assert torch.equal(PolyphaseAnchor1d(4)(x), out)
    shifted = polyphase_anchor1d(torch.roll(x, 7, 2), 4)
    assert any(torch.equal(shifted, torch.roll(out, k, 2)) for k in range(0, 40, 4))
    x2 = _randn(2, 3, 8, 12)
    assert torch.equal(PolyphaseAnchor2d(4)(x2), polyphase_anchor2d(x2, 4))
    assert repr(PolyphaseAnchor2d(16)) == "PolyphaseAnchor2d(stride=(16, 16), norm='l2')"
    assert not list(PolyphaseAnchor2d(2).state_dict())


@pytest.mark.parametrize("shift", [(1, 1), (3, 0), (7, 11)])
def test_token_anchor_is_invariant_to_circular_shifts(shift: tuple[int, int]) -> None:
    x = _randn(2, 5, 6, 9)
    assert torch.equal(token_anchor2d(torch.roll(x, shift, (2, 3))), token_anchor2d(x))
    assert torch.equal(TokenAnchor2d()(x), token_anchor2d(x))
    y = _randn(2, 5, 11)
    assert torch.equal(token_anchor1d(torch.roll(y, 4, 2)), TokenAnchor1d()(y))
    top = (x * x).sum(1).flatten(1).argmax(1)
    out = token_anchor2d(x)
    for n in range(2):  # the token of largest norm is at the origin
        assert torch.equal(out[n, :, 0, 0], x[n].flatten(1)[:, top[n]])


@pytest.mark.parametrize("shift", [(1, 0), (3, 5), (17, 29)])
def test_anchored_patchify_with_token_anchor_gives_the_same_tokens(
    shift: tuple[int, int],
) -> None:
    conv = AnchoredConv2d(3, 8, 4, token_anchor=True)
    x = _randn(2, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(conv(torch.roll(x, shift, (2, 3))), conv(x))
    assert conv(x).shape == (2, 8, 8, 12)


def test_anchored_patchify_moves_its_tokens_by_whole_tokens() -> None:
    conv = AnchoredConv2d(3, 8, 4)
    x = _randn(1, 3, 32, 48)
    with torch.no_grad():
        y, y2 = conv(x), conv(torch.roll(x, (5, 10), (2, 3)))
    assert any(torch.equal(y2, torch.roll(y, (i, j), (2, 3))) for i in range(8) for j in range(12))


def test_output_score_breaks_the_ties_of_a_normalized_input() -> None:
    """After a LayerNorm every position has one energy: the input norms tie, the outputs do not."""
    x = _randn(1, 16, 16, 20)
    x = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (16,)).permute(0, 3, 1, 2)
    conv = AnchoredConv2d(16, 8, 2, score="output")
    with torch.no_grad():
        y = conv(x)
        for shift in [(1, 0), (0, 1), (3, 5)]:
            y2 = conv(torch.roll(x, shift, (2, 3)))
            assert any(
                torch.allclose(y2, torch.roll(y, (i, j), (2, 3)), rtol=0, atol=1e-5)
                for i in range(8)
                for j in range(10)
            )
    # and it is the plain convolution on the input rolled to the chosen phase
    dense = nn.functional.conv2d(
        nn.functional.pad(x, (0, 1, 0, 1), mode="circular"), conv.weight, conv.bias
    )
    assert any(
        torch.allclose(y, dense[..., i::2, j::2], atol=1e-6) for i in range(2) for j in range(2)
    )


def test_output_score_selects_the_rolled_component_per_sample() -> None:
    """Per sample, the output is the dense convolution rolled to its largest-norm phase and kept at
    every stride-th sample, bitwise, for sides divisible by the stride and not."""
    from antialias.layers.anchor import _anchor

    conv = AnchoredConv2d(3, 5, 4, score="output")
    for h, w in [(16, 20), (17, 18)]:
        x = _randn(3, 3, h, w)
        x[1] = torch.roll(x[0], (1, 3), (1, 2))  # the samples choose different phases
        with torch.no_grad():
            dense = nn.functional.conv2d(
                nn.functional.pad(x, (0, 3, 0, 3), mode="circular"), conv.weight, conv.bias
            )
            rolled, shift = _anchor(dense, (4, 4), "l2")
            expected = rolled[..., 0 : (h // 4) * 4 : 4, 0 : (w // 4) * 4 : 4]
            assert torch.equal(conv(x), expected), (h, w)
        assert not torch.equal(shift[0], shift[1])


def test_from_conv_keeps_the_parameters_and_their_names() -> None:
    conv = nn.Conv2d(3, 8, 16, stride=16)
    anchored = AnchoredConv2d.from_conv(conv, token_anchor=True)
    assert anchored.weight is conv.weight and anchored.bias is conv.bias
    assert list(anchored.state_dict()) == list(conv.state_dict())
    assert isinstance(anchored, nn.Conv2d)
    x = _randn(1, 3, 32, 32)
    with torch.no_grad():  # phase (0, 0) chosen: the same as the convolution, up to the token roll
        assert anchored(x).shape == conv(x).shape
    one = AnchoredConv1d.from_conv(nn.Conv1d(1, 4, 16, stride=16))
    assert one(_randn(2, 1, 160)).shape == (2, 4, 10)
    assert "token_anchor=True" in repr(anchored) and "score='input'" in repr(anchored)


def test_gradients_flow() -> None:
    conv = AnchoredConv2d(3, 4, 2, token_anchor=True)
    x = _randn(2, 3, 8, 8).requires_grad_()
    conv(x).square().sum().backward()
    assert x.grad is not None and conv.weight.grad is not None
    assert torch.isfinite(x.grad).all()


def test_errors_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="kernel_size == stride"):
        AnchoredConv2d.from_conv(nn.Conv2d(3, 4, 3, stride=2, padding=1))
    with pytest.raises(TypeError, match="expects an nn.Conv2d"):
        AnchoredConv2d.from_conv(nn.Conv1d(3, 4, 2, stride=2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score must be one of"):
        AnchoredConv2d(3, 4, 2, score="phase")
    with pytest.raises(ValueError, match="norm must be one of"):
        PolyphaseAnchor2d(2, norm="l3")
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        PolyphaseAnchor2d(0)
    with pytest.raises(TypeError, match="stride must be an int or a tuple of 2 ints, got True"):
        PolyphaseAnchor2d(True)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"4D input \(N, C, H, W\), got a 3D tensor of shape \[2, 3, 8\]"
    ):
        polyphase_anchor2d(_randn(2, 3, 8), 2)
    with pytest.raises(ValueError, match=r"3D input \(N, C, L\), got a 2D tensor"):
        polyphase_anchor1d(_randn(2, 3), 2)
    with pytest.raises(TypeError, match="floating-point"):
        token_anchor2d(torch.ones(1, 1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"spatial axis 0 of size >= 1 .*shape \[1, 1, 0\]"):
        token_anchor1d(torch.ones(1, 1, 0))
