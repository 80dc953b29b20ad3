"""APS / LPS polyphase sampling: the rule against a direct re-implementation, exact shift behaviour,
round trips with the up layer, LPS training, leader/follower links, the factory, errors, NaN through the phase
choice (polyphase.py with the private _polyphase_modules.py and _polyphase_ops.py)."""

import copy
import itertools
import math

import pytest
import torch
from _families import LPS, NDIMS, nd_shape
from torch import nn

from antialias.layers import (
    ApsDown1d,
    ApsDown2d,
    ApsDown3d,
    BlurConv2d,
    LpsDown1d,
    LpsDown2d,
    LpsScorer,
    PolyphaseUp1d,
    PolyphaseUp2d,
    aps_down1d,
    aps_down2d,
    create_downsample,
    link_residual_phases,
    list_downsample_methods,
    lps_down2d,
    polyphase_up1d,
    polyphase_up2d,
    set_lps_temperature,
)
from antialias.layers._polyphase_ops import aps_norms as _aps_norms
from antialias.layers.polyphase import NORMS
from antialias.train import lps_temperature

APS = {1: ApsDown1d, 2: ApsDown2d, 3: ApsDown3d}
APS_FN = {1: aps_down1d, 2: aps_down2d}
UP = {1: PolyphaseUp1d, 2: PolyphaseUp2d}
UP_FN = {1: polyphase_up1d, 2: polyphase_up2d}


def _strides(stride, ndim):
    return (stride,) * ndim if isinstance(stride, int) else tuple(stride)


def reference_aps(x, stride, norm="l2"):
    """The APS rule written out directly: slice every component, norm in exact arithmetic (math.fsum
    in float64), keep the first component with the largest norm (lowest flat index on ties).
    Axes not divisible by the stride are extended circularly at their end."""
    ndim = x.dim() - 2
    strides = _strides(stride, ndim)
    for d, s in enumerate(strides):
        length = x.size(d + 2)
        total = -(-length // s) * s
        x = x.index_select(d + 2, torch.arange(total) % length)
    outputs, phases = [], []
    for sample in x:
        best, best_phase, best_comp = None, None, None
        for flat, offsets in enumerate(itertools.product(*(range(s) for s in strides))):
            comp = sample[
                (slice(None),)
                + tuple(slice(o, None, s) for o, s in zip(offsets, strides, strict=True))
            ]
            values = comp.double().flatten().tolist()
            value = (
                math.fsum(v * v for v in values)
                if norm == "l2"
                else math.fsum(abs(v) for v in values)
            )
            if best is None or value > best:
                best, best_phase, best_comp = value, flat, comp
        outputs.append(best_comp)
        phases.append(best_phase)
    return torch.stack(outputs), torch.tensor(phases)


def _unravel(flat, strides):
    out = []
    for s in reversed(strides):
        out.append(flat % s)
        flat //= s
    return out[::-1]


# ------------------------------------------------------------------------------------------------
# The rule


@pytest.mark.parametrize("norm", ["l2", "l1"])
@pytest.mark.parametrize(
    "ndim,stride,size",
    [
        (1, 2, (12,)),
        (1, 3, (13,)),
        (1, 4, (9,)),
        (2, 2, (8, 6)),
        (2, 3, (9, 12)),
        (2, (2, 3), (6, 9)),
        (2, (3, 1), (7, 5)),
        (2, 2, (7, 5)),
    ],
)
def test_equals_direct_rule(generator, device, norm, ndim, stride, size):
    x = torch.randn((5, 3) + size, generator=generator).to(device)
    expected, expected_phase = reference_aps(x.cpu(), stride, norm)
    actual, phase = APS_FN[ndim](x, stride=stride, norm=norm, return_phase=True)
    assert phase.dtype == torch.int64
    assert torch.equal(phase.cpu(), expected_phase)
    assert torch.equal(actual.cpu(), expected)
    assert actual.shape[2:] == tuple(
        -(-n // s) for n, s in zip(size, _strides(stride, ndim), strict=True)
    )


def test_hand_made_inputs():
    x = torch.tensor([[[1.0, 5.0, 2.0, -6.0]]])
    y, phase = aps_down1d(x, return_phase=True)
    assert phase.tolist() == [1] and y.tolist() == [[[5.0, -6.0]]]
    # l2 and l1 disagree: component 0 = [3, 0] (l2 9, l1 3), component 1 = [2, 2] (l2 8, l1 4).
    x = torch.tensor([[[3.0, 2.0, 0.0, 2.0]]])
    assert aps_down1d(x, norm="l2", return_phase=True)[1].tolist() == [0]
    assert aps_down1d(x, norm="l1", return_phase=True)[1].tolist() == [1]
    # the norm runs over channels: channel 0 alone prefers phase 0 (9 > 0), both together phase 1 (9 < 18)
    x = torch.tensor([[[3.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 3.0]]])
    assert aps_down1d(x[:, :1], return_phase=True)[1].tolist() == [0]
    assert aps_down1d(x, return_phase=True)[1].tolist() == [1]
    # per sample: two samples choose different phases in one batch
    x = torch.zeros(2, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0
    x[1, 0, 2, 1] = 1.0
    y, phase = aps_down2d(x, return_phase=True)
    assert phase.tolist() == [3, 1]
    assert y[0, 0, 0, 0] == 1 and y[1, 0, 1, 0] == 1


def test_ties_go_to_the_lowest_phase():
    x = torch.zeros(1, 1, 4, 4)
    assert aps_down2d(x, return_phase=True)[1].tolist() == [0]  # all components tie
    x[0, 0, 1, 0] = 3.0  # phase (1, 0) = 2
    x[0, 0, 0, 1] = -3.0  # phase (0, 1) = 1, same l2 and l1 norm
    for norm in ("l2", "l1"):
        y, phase = aps_down2d(x, norm=norm, return_phase=True)
        assert phase.tolist() == [1]
        assert torch.equal(y, x[:, :, 0::2, 1::2])
    assert torch.equal(reference_aps(x, 2)[1], torch.tensor([1]))
    # a constant map: every component ties, and every shift gives the same output
    ones = torch.ones(1, 2, 6, 6)
    assert aps_down2d(ones, stride=3, return_phase=True)[1].tolist() == [0]


def test_nan_component_wins():
    """A NaN must reach the output: its component's NaN norm beats every number."""
    x = torch.tensor([[[float("nan"), 1.0, 0.0, 1.0]]])
    y, phase = aps_down1d(x, return_phase=True)
    assert phase.tolist() == [0] and y.isnan().any()


@pytest.mark.parametrize("value", [math.inf, -math.inf, 1e30, 3e38, 1e300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_huge_or_infinite_value_selects_its_component(generator, value, dtype):
    """Squares of 1e30 overflow float32: the norms are computed without overflow, and an
    infinity gives its component an infinite norm; the phase is always valid for the up layer."""
    if dtype == torch.float32 and abs(value) > 3.4e38 and math.isfinite(value):
        return
    for row, col in itertools.product(range(2), range(2)):
        x = torch.randn(2, 3, 8, 8, generator=generator, dtype=dtype)
        x[1, 2, 4 + row, 2 + col] = value
        y, phase = ApsDown2d(3, return_phase=True)(x)
        assert 0 <= phase.min() and phase.max() <= 3
        assert phase[1].item() == 2 * row + col  # the component holding the value
        up = PolyphaseUp2d(3)(y, phase)
        assert up[1, 2, 4 + row, 2 + col].item() == pytest.approx(value)


# ------------------------------------------------------------------------------------------------
# Exact circular-shift behaviour


@pytest.mark.parametrize("shape", [(2, 6, 6, 10), (2, 16, 32, 32), (3, 64, 14, 14), (1, 5, 8, 22)])
def test_norms_of_a_shift_are_an_exact_permutation(generator, shape):
    # Values of many magnitudes make sums order-dependent; the norms must not be. (A plain
    # x.pow(2).sum(1) fails this for the 6-channel 6x10 map: torch adds the channels of different
    # positions in different orders.)
    scale = torch.logspace(-3, 3, shape[1]).view(1, -1, 1, 1)
    x = torch.randn(shape, generator=generator) * scale
    for norm in NORMS:
        norms = _aps_norms(x, [2, 2], norm)
        for shift in [(1, 0), (0, 1), (1, 1), (5, 3), (-3, 7)]:
            shifted = _aps_norms(torch.roll(x, shift, dims=(2, 3)), [2, 2], norm)
            p = torch.tensor(
                [((a + shift[0]) % 2) * 2 + (b + shift[1]) % 2 for a in range(2) for b in range(2)]
            )
            assert torch.equal(shifted[:, p], norms), (norm, shift)


@pytest.mark.parametrize("filter_size", [1, 3, 4])
@pytest.mark.parametrize("stride", [2, 3, (2, 3)])
def test_circular_shift_shifts_the_output(generator, device, stride, filter_size):
    """aps(roll(x, t)) == roll(aps(x), floor((p + t) / s)) exactly, with phase (p + t) mod s."""
    strides = _strides(stride, 2)
    x = torch.randn(3, 4, 12, 18, generator=generator).to(device)
    layer = ApsDown2d(4, stride=stride, filter_size=filter_size, return_phase=True)
    y, phase = layer(x)
    for t in [(1, 0), (0, 1), (1, 1), (2, 5), (7, 13), (-1, -4)]:
        ys, phases = layer(torch.roll(x, t, dims=(2, 3)))
        for n in range(x.size(0)):
            p = _unravel(int(phase[n]), strides)
            expected_p = [(pk + tk) % s for pk, tk, s in zip(p, t, strides, strict=True)]
            assert _unravel(int(phases[n]), strides) == expected_p
            k = [(pk + tk) // s for pk, tk, s in zip(p, t, strides, strict=True)]
            assert torch.equal(ys[n], torch.roll(y[n], k, dims=(1, 2))), (t, n)


@pytest.mark.parametrize("filter_size", [3, 4, "gaussian-5"])
def test_shifted_views_in_one_batch_are_exact(generator, filter_size):
    """All shifts of an image in one batch (as the shift metrics run them): every view's output is
    bitwise a circular shift of the first one's, wherever the view sits in the batch; the blur before
    the selection must round every position the same way for that."""
    x = torch.randn(1, 3, 32, 32, generator=generator)
    shifts = [(0, 0), (1, 0), (0, 1), (1, 1), (3, 5), (16, 7), (31, 30)]
    views = torch.cat([torch.roll(x, t, dims=(2, 3)) for t in shifts])
    y, phase = aps_down2d(views, filter_size=filter_size, return_phase=True)
    for i, t in enumerate(shifts):
        p = _unravel(int(phase[0]), [2, 2])
        assert _unravel(int(phase[i]), [2, 2]) == [
            (pk + tk) % 2 for pk, tk in zip(p, t, strict=True)
        ]
        k = [(pk + tk) // 2 for pk, tk in zip(p, t, strict=True)]
        assert torch.equal(y[i], torch.roll(y[0], k, dims=(1, 2))), t


def test_circular_shift_1d_and_3d(generator):
    x = torch.randn(2, 3, 15, generator=generator)
    y = ApsDown1d(stride=3)(x)
    outs = {
        tuple(ApsDown1d(stride=3)(torch.roll(x, t, 2))[0].flatten().tolist()) for t in range(15)
    }
    rolls = {tuple(torch.roll(y[0], k, 1).flatten().tolist()) for k in range(5)}
    assert outs <= rolls
    v = torch.randn(1, 2, 4, 4, 6, generator=generator)
    y = ApsDown3d()(v)
    ys = ApsDown3d()(torch.roll(v, (1, 3, 1), dims=(2, 3, 4)))
    assert any(
        torch.equal(ys, torch.roll(y, k, dims=(2, 3, 4)))
        for k in itertools.product(range(2), range(2), range(3))
    )


def test_plain_subsampling_is_not_shift_invariant(generator):
    """The control: stride-2 slicing of a shifted input is not a shift of the output; APS's is."""
    x = torch.randn(1, 3, 8, 8, generator=generator)
    y, ys = x[..., ::2, ::2], torch.roll(x, (1, 0), dims=(2, 3))[..., ::2, ::2]
    assert not any(torch.equal(ys, torch.roll(y, (k, 0), dims=(2, 3))) for k in range(4))


# ------------------------------------------------------------------------------------------------
# Up layer: round trips and equivariant encoder-decoders


@pytest.mark.parametrize(
    "ndim,stride,size", [(1, 2, (10,)), (1, 3, (12,)), (2, 2, (6, 8)), (2, (3, 2), (9, 4))]
)
def test_round_trip(generator, device, ndim, stride, size):
    strides = _strides(stride, ndim)
    x = torch.randn((3, 2) + size, generator=generator).to(device)
    y, phase = APS_FN[ndim](x, stride=stride, return_phase=True)
    back = UP_FN[ndim](y, phase, stride=stride)
    assert back.shape == x.shape
    # up(down(x)) keeps exactly the chosen samples of x, in place, and zeros elsewhere
    for n in range(3):
        mask = torch.zeros(size, dtype=torch.bool)
        offsets = _unravel(int(phase[n]), strides)
        mask[tuple(slice(o, None, s) for o, s in zip(offsets, strides, strict=True))] = True
        assert torch.equal(back[n].cpu(), torch.where(mask, x[n].cpu(), torch.zeros(())))
    # down(up(y, p)) == (y, p): the placed component is the only non-zero one
    again, phase2 = APS_FN[ndim](back, stride=stride, return_phase=True)
    assert torch.equal(phase2, phase) and torch.equal(again, y)
    # the module does the same
    assert torch.equal(UP[ndim](stride=stride)(y, phase), back)


def test_round_trip_with_soft_weights(generator):
    y = torch.randn(2, 3, 4, 5, generator=generator)
    weights = torch.softmax(torch.randn(2, 4, generator=generator), 1)
    up = polyphase_up2d(y, weights)
    for p in range(4):
        a, b = divmod(p, 2)
        assert torch.allclose(up[:, :, a::2, b::2], y * weights[:, p, None, None, None])
    # one-hot weights equal the index form
    one_hot = torch.nn.functional.one_hot(torch.tensor([2, 1]), 4).float()
    assert torch.equal(polyphase_up2d(y, one_hot), polyphase_up2d(y, torch.tensor([2, 1])))


def test_up_interpolation_and_output_size():
    y = torch.tensor([[[2.0, 4.0, 8.0]]])
    # triangle-3 after placement at stride 2 is linear interpolation (circular at the border)
    up = polyphase_up1d(y, torch.tensor([0]), filter_size="triangle-3")
    assert up.tolist() == [[[2.0, 3.0, 4.0, 6.0, 8.0, 5.0]]]
    up = polyphase_up1d(y, torch.tensor([1]), filter_size="triangle-3")
    assert up.tolist() == [[[5.0, 2.0, 3.0, 4.0, 6.0, 8.0]]]
    # an odd-sized input: extended circularly to 8, down to 4, up to 8, cropped back to 7
    x = torch.tensor([[[9.0, 1.0, 0.0, 3.0, 0.0, 5.0, 0.0]]])
    z, phase = aps_down1d(x, return_phase=True)  # phase 1 ends with the wrapped first sample
    assert z.tolist() == [[[1.0, 3.0, 5.0, 9.0]]] and phase.tolist() == [1]
    x[0, 0, 0] = 0.0
    z, phase = aps_down1d(x, return_phase=True)
    assert z.tolist() == [[[1.0, 3.0, 5.0, 0.0]]] and phase.tolist() == [1]
    assert torch.equal(polyphase_up1d(z, phase, output_size=7), x)
    with pytest.raises(ValueError, match="output_size"):
        polyphase_up1d(z, phase, output_size=5)


def test_encoder_decoder_is_equivariant(generator):
    """down -> conv -> up with circular padding: a circular shift of the input shifts the output."""
    torch.manual_seed(0)
    down = ApsDown2d(3, return_phase=True, filter_size=3)
    conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular")
    up = PolyphaseUp2d(3, filter_size="triangle-3")

    def net(x):
        y, phase = down(x)
        return up(conv(y), phase)

    x = torch.randn(2, 3, 8, 12, generator=generator)
    out = net(x)
    for t in [(1, 0), (0, 3), (5, 7)]:
        assert torch.allclose(
            net(torch.roll(x, t, dims=(2, 3))), torch.roll(out, t, dims=(2, 3)), atol=1e-6
        )


def test_up_follows_its_down_layer(generator):
    down = ApsDown2d()
    up = PolyphaseUp2d().follow(down)
    x = torch.randn(2, 3, 8, 8, generator=generator)
    y = down(x)
    expected = polyphase_up2d(y, aps_down2d(x, return_phase=True)[1])
    assert torch.equal(up(y), expected)
    with pytest.raises(RuntimeError, match="has not run yet"):
        up(y)  # the phase was consumed; a second call must not silently reuse it


# ------------------------------------------------------------------------------------------------
# Modules, dtypes, layouts, gradients


def test_module_equals_functional(generator):
    x = torch.randn(2, 5, 12, 10, generator=generator)
    for kwargs in [
        {},
        {"stride": 3},
        {"stride": (2, 1), "norm": "l1"},
        {"filter_size": 4, "pad_mode": "reflect"},
    ]:
        assert torch.equal(ApsDown2d(5, **kwargs)(x), aps_down2d(x, **kwargs))
    torch.manual_seed(0)
    lps = LpsDown2d(5, stride=2).eval()
    assert torch.equal(lps(x), lps_down2d(x, lps.scorer))


def test_repr():
    assert repr(ApsDown2d(64)) == "ApsDown2d(channels=64, stride=2, pad_mode='circular', norm='l2')"
    assert repr(ApsDown1d(stride=3, norm="l1", filter_size=4, return_phase=True)) == (
        "ApsDown1d(channels=None, stride=3, filter_size=4, pad_mode='circular', norm='l1', return_phase=True)"
    )
    assert (
        repr(PolyphaseUp2d(8, stride=(2, 1)))
        == "PolyphaseUp2d(channels=8, stride=(2, 1), pad_mode='circular')"
    )
    lps = LpsDown2d(8, tau=0.5, hard=True)
    assert lps.extra_repr() == "channels=8, stride=2, pad_mode='circular', tau=0.5, hard=True"
    assert "(scorer): LpsScorer" in repr(lps)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_dtypes(generator, dtype):
    x = torch.randn(2, 3, 8, 8, generator=generator)
    y, phase = aps_down2d(x.to(dtype), return_phase=True)
    assert y.dtype == dtype
    assert torch.equal(phase, reference_aps(x.to(dtype).float(), 2)[1])


def test_channels_last_is_kept(generator):
    x = torch.randn(2, 4, 8, 8, generator=generator).contiguous(memory_format=torch.channels_last)
    y = ApsDown2d()(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, ApsDown2d()(x.contiguous()))


def test_gradcheck():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 6, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: aps_down2d(t, filter_size=3), (x,))
    y = torch.randn(2, 2, 3, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.softmax(torch.randn(2, 4, dtype=torch.float64, generator=gen), 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: polyphase_up2d(a, b, filter_size=3), (y, w))


@pytest.mark.slow
def test_compile_equals_eager(generator):
    x = torch.randn(2, 3, 8, 10, generator=generator)
    for layer in [ApsDown2d(3, filter_size=3), LpsDown2d(3).eval()]:
        compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
        assert torch.equal(compiled(x), layer(x))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind", ["aps", "lps"])
def test_export_and_onnx_match_eager(tmp_path, generator, kind):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    layer = ApsDown2d(3, filter_size=3) if kind == "aps" else LpsDown2d(3).eval()
    x = torch.randn(2, 3, 8, 10, generator=generator)
    # a second input whose samples choose other phases: the selection must not be baked in
    second = torch.roll(x, (1, 1), dims=(2, 3))
    layer.return_phase = True
    assert not torch.equal(layer(x)[1], layer(second)[1])
    layer.return_phase = False
    exported = torch.export.export(layer, (x,))
    assert torch.equal(exported.module()(second), layer(second))
    path = tmp_path / "layer.onnx"
    torch.onnx.export(layer, (x,), str(path), dynamo=True)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: second.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), layer(second), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------
# LPS


def test_lps_scorer_is_invariant_to_circular_shifts(generator):
    torch.manual_seed(0)
    scorer = LpsScorer(2, channels=4, hidden_channels=6)
    c = torch.randn(3, 4, 6, 10, generator=generator)
    scores = scorer(c)
    assert scores.shape == (3,)
    for t in [(1, 0), (0, 1), (3, 7)]:
        assert torch.equal(scorer(torch.roll(c, t, dims=(2, 3))), scores)
    zero_pad = LpsScorer(2, channels=4, padding_mode="zeros")
    assert not torch.equal(zero_pad(torch.roll(c, (1, 1), dims=(2, 3))), zero_pad(c))


def test_lps_eval_selects_the_best_scored_component(generator):
    torch.manual_seed(0)
    lps = LpsDown2d(3, stride=(2, 3), return_phase=True).eval()
    x = torch.randn(4, 3, 8, 9, generator=generator)
    y, phase = lps(x)
    for n in range(4):
        comps = [x[n, :, a::2, b::3] for a in range(2) for b in range(3)]
        scores = lps.scorer(torch.stack(comps))
        assert int(phase[n]) == int(torch.argmax(scores))
        assert torch.equal(y[n], comps[int(phase[n])])
    # exact invariance in evaluation, like APS
    for t in [(1, 0), (1, 2), (3, 5)]:
        ys, _ = lps(torch.roll(x, t, dims=(2, 3)))
        for n in range(4):
            assert any(
                torch.equal(ys[n], torch.roll(y[n], k, dims=(1, 2)))
                for k in itertools.product(range(4), range(3))
            )


def test_lps_training_mixes_with_gumbel_softmax(generator):
    torch.manual_seed(0)
    scorer = LpsScorer(1, channels=2)
    x = torch.randn(3, 2, 8, generator=generator)
    y, weights = lps_down1d_train(x, scorer, tau=1.0, generator=torch.Generator().manual_seed(5))
    assert weights.shape == (3, 2) and torch.allclose(weights.sum(1), torch.ones(3))
    assert torch.allclose(
        y, weights[:, 0, None, None] * x[..., 0::2] + weights[:, 1, None, None] * x[..., 1::2]
    )
    # the same generator seed draws the same noise
    y2, w2 = lps_down1d_train(x, scorer, tau=1.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(w2, weights)
    # a low temperature gives nearly one-hot weights; hard=True gives exactly one-hot values
    _, cold = lps_down1d_train(x, scorer, tau=1e-3, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(cold.max(1).values, torch.ones(3), atol=1e-4)
    _, hard = lps_down1d_train(
        x, scorer, tau=1.0, hard=True, generator=torch.Generator().manual_seed(5)
    )
    assert set(hard.detach().flatten().tolist()) <= {0.0, 1.0}


def lps_down1d_train(x, scorer, **kwargs):
    from antialias.layers import lps_down1d

    return lps_down1d(x, scorer, training=True, return_phase=True, **kwargs)


@pytest.mark.parametrize("hard", [False, True])
def test_lps_gradients_reach_the_scorer(generator, hard):
    torch.manual_seed(0)
    lps = LpsDown2d(3, hard=hard).train()
    x = torch.randn(2, 3, 8, 8, generator=generator)
    (lps(x) * torch.randn(2, 3, 4, 4, generator=generator)).sum().backward()
    for name, p in lps.scorer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_lps_temperature():
    lps = LpsDown1d(2, tau=2.0)
    assert lps.tau == 2.0
    model = nn.Sequential(lps, nn.ReLU(), LpsDown1d(2))
    assert set_lps_temperature(model, 0.3) == 2 and lps.tau == 0.3
    assert lps_temperature(0) == 1.0 and lps_temperature(10) == 0.85
    assert lps_temperature(10_000) == 0.025
    assert lps_temperature(20, initial=0.5, gamma=0.5, step_size=5, minimum=0.01) == 0.5 * 0.5**4
    with pytest.raises(ValueError, match="tau"):
        lps.tau = 0.0
    with pytest.raises(ValueError, match="epoch"):
        lps_temperature(-1)


# ------------------------------------------------------------------------------------------------
# Leaders and followers (residual blocks)


class _Block(nn.Module):
    """A residual block in torchvision's shape: main path first, then the shortcut."""

    def __init__(self, method="aps"):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")
        self.relu = nn.ReLU()
        self.conv2 = BlurConv2d.from_conv(
            nn.Conv2d(4, 4, 3, stride=2, padding=1, padding_mode="circular"),
            downsample=create_downsample(method, 2, 4, 2, pad_mode="circular"),
        )
        self.downsample = nn.Sequential(
            BlurConv2d.from_conv(
                nn.Conv2d(3, 4, 1, stride=2),
                downsample=create_downsample(method, 2, 3, 2, pad_mode="circular"),
            )
        )

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))) + self.downsample(x))


@pytest.mark.parametrize("method", ["aps", "lps"])
def test_linked_block_is_equivariant(generator, method):
    torch.manual_seed(0)
    block = _Block(method).eval()
    x = torch.randn(2, 3, 8, 8, generator=generator)
    assert link_residual_phases(block) == [("conv2.blur", "downsample.0.blur")]
    assert link_residual_phases(block) == [("conv2.blur", "downsample.0.blur")]  # idempotent
    assert block.downsample[0].blur.leader is block.conv2.blur
    pooled = block(x).mean((2, 3))
    for t in [(1, 0), (0, 1), (1, 1), (3, 6)]:
        assert torch.allclose(
            block(torch.roll(x, t, dims=(2, 3))).mean((2, 3)), pooled, atol=1e-6
        ), t


def test_unlinked_block_is_not_equivariant(generator):
    """Why the link exists: the two paths choose their phases from different maps."""
    torch.manual_seed(0)
    block = _Block("aps").eval()
    x = torch.randn(2, 3, 8, 8, generator=generator)
    pooled = block(x).mean((2, 3))
    diffs = [
        (block(torch.roll(x, t, dims=(2, 3))).mean((2, 3)) - pooled).abs().max()
        for t in [(1, 0), (0, 1), (1, 1)]
    ]
    assert max(diffs) > 1e-3


def test_follower_state_and_copies(generator):
    torch.manual_seed(0)
    block = _Block("lps")
    keys_before = set(block.state_dict())
    link_residual_phases(block)
    # the follower dropped its unused scorer; the leader's remains; the link adds no key
    assert block.downsample[0].blur.scorer is None
    assert keys_before - set(block.state_dict()) == {
        k for k in keys_before if k.startswith("downsample.0.blur.scorer.")
    }
    assert any(k.startswith("conv2.blur.scorer.") for k in block.state_dict())
    twin = copy.deepcopy(block)
    assert twin.downsample[0].blur.leader is twin.conv2.blur
    x = torch.randn(2, 3, 8, 8, generator=generator)
    block.eval()
    twin.eval()
    assert torch.equal(twin(x), block(x))
    assert "follows a leader" in repr(block.downsample[0].blur)
    # a phase published by a training pass that never reached its follower is not copied
    block.train()
    block.conv2(torch.randn(2, 4, 8, 8, generator=generator))
    assert block.conv2.blur._published is not None
    assert copy.deepcopy(block).conv2.blur._published is None


def test_follower_errors(generator):
    leader, follower = ApsDown2d(), ApsDown2d().follow(ApsDown2d())
    follower.follow(leader)
    with pytest.raises(RuntimeError, match="has not run yet"):
        follower(torch.randn(1, 1, 4, 4))
    leader(torch.randn(2, 1, 4, 4))
    with pytest.raises(RuntimeError, match="batch of 2"):
        follower(torch.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="strides must match"):
        ApsDown2d(stride=3).follow(leader)
    with pytest.raises(ValueError, match="cannot follow itself"):
        leader.follow(leader)
    with pytest.raises(TypeError, match="APS or LPS"):
        leader.follow(nn.Identity())
    follower.follow(None)
    assert follower.leader is None and leader._n_followers == 0


def test_link_skips_ambiguous_blocks(caplog):
    block = nn.Module()
    block.a, block.b = ApsDown2d(), ApsDown2d()
    block.downsample = ApsDown2d()
    assert link_residual_phases(block) == []
    assert "expected one polyphase layer" in caplog.text


# ------------------------------------------------------------------------------------------------
# Factory, public names and errors


def test_public_surface():
    import antialias.layers

    names = [
        "ApsDown1d",
        "ApsDown2d",
        "ApsDown3d",
        "LpsDown1d",
        "LpsDown2d",
        "LpsDown3d",
        "LpsScorer",
        "PolyphaseUp1d",
        "PolyphaseUp2d",
        "PolyphaseUp3d",
        "aps_down1d",
        "aps_down2d",
        "aps_down3d",
        "lps_down1d",
        "lps_down2d",
        "lps_down3d",
        "polyphase_up1d",
        "polyphase_up2d",
        "polyphase_up3d",
        "link_residual_phases",
        "set_lps_temperature",
    ]
    for name in names:
        assert name in antialias.layers.__all__, name
        assert callable(getattr(antialias.layers, name)), name


def test_factory():
    assert {"aps", "lps", "blur"} <= set(list_downsample_methods())
    aps = create_downsample("aps", 2, 64, (2, 3), filter_size=3, pad_mode="circular", norm="l1")
    assert (
        isinstance(aps, ApsDown2d)
        and aps.stride == [2, 3]
        and aps.norm == "l1"
        and aps.taps == [0.25, 0.5, 0.25]
    )
    assert isinstance(create_downsample("aps", 1, None, 2), ApsDown1d)
    assert isinstance(create_downsample("aps", 3, 4, 2), ApsDown3d)
    lps = create_downsample("lps", 2, 16, 2, hidden_channels=8)
    assert isinstance(lps, LpsDown2d) and lps.scorer.conv1.out_channels == 8
    with pytest.raises(ValueError, match="needs channels"):
        create_downsample("lps", 2, None, 2)


def test_errors():
    with pytest.raises(ValueError, match="norm must be one of"):
        ApsDown2d(norm="l3")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ApsDown2d(stride=0)
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        ApsDown2d(pad_mode="wrap")
    with pytest.raises(ValueError, match="needs channels"):
        LpsDown2d(None)
    with pytest.raises(ValueError, match="needs channels"):
        LpsDown2d()
    with pytest.raises(ValueError, match="tau"):
        LpsDown2d(4, tau=-1.0)
    with pytest.raises(ValueError, match="kernel_size must be an odd"):
        LpsScorer(2, 4, kernel_size=2)
    with pytest.raises(ValueError, match="4D input"):
        ApsDown2d()(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="built for 3 channels"):
        ApsDown2d(3)(torch.zeros(1, 4, 4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        aps_down2d(torch.zeros(1, 1, 4, 4, dtype=torch.int64))
    y = torch.zeros(2, 1, 2, 2)
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        polyphase_up2d(y, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        polyphase_up2d(y, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        polyphase_up2d(y, torch.ones(2, 3))
    with pytest.raises(ValueError, match="needs the phase"):
        PolyphaseUp2d()(y)
    with pytest.raises(TypeError, match="scorer must be a callable"):
        lps_down2d(y, scorer=3)


# ------------------------------------------------------------------------------------------------
# Degenerate inputs


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("filter_size", [1, 3])
def test_nan_propagates_through_aps(generator, ndim, filter_size):
    x = torch.randn(nd_shape(3, 2, ndim, size=4), generator=generator)
    for index in itertools.product(*(range(s) for s in x.shape[2:])):  # every phase of the NaN
        bad = x.clone()
        bad[(1, 1) + index] = float("nan")
        y, phase = APS[ndim](filter_size=filter_size, return_phase=True)(bad)
        assert torch.isnan(y[1]).any(), index
        # the other samples of the batch are untouched
        clean, clean_phase = APS[ndim](filter_size=filter_size, return_phase=True)(x)
        assert torch.equal(y[[0, 2]], clean[[0, 2]]) and torch.equal(
            phase[[0, 2]], clean_phase[[0, 2]]
        )


@pytest.mark.parametrize("ndim", NDIMS)
def test_nan_propagates_through_lps(generator, ndim):
    torch.manual_seed(0)
    x = torch.randn(nd_shape(2, 3, ndim, size=4), generator=generator)
    lps = LPS[ndim](3)
    for index in itertools.product(*(range(2) for _ in range(ndim))):  # one NaN in each phase
        bad = x.clone()
        bad[(0, 0) + index] = float("nan")
        assert torch.isnan(lps.eval()(bad)[0]).any(), index
        assert torch.isnan(lps.train()(bad)[0]).any(), index
        assert not torch.isnan(lps.eval()(bad)[1]).any()


def test_nan_wins_over_infinity():
    x = torch.tensor([[[float("inf"), float("nan"), 1.0, 2.0]]])
    y, phase = ApsDown1d(return_phase=True)(x)
    assert phase.tolist() == [1] and torch.isnan(y).any()
    # two NaN components: the lowest phase, as for ties
    x = torch.tensor([[[float("nan"), float("nan"), 1.0, 2.0]]])
    assert ApsDown1d(return_phase=True)(x)[1].tolist() == [0]


def test_polyphase_up_interpolation_keeps_constants_or_is_refused():
    phase = torch.tensor([3])
    out = PolyphaseUp2d(filter_size="triangle-3")(torch.ones(1, 1, 3, 3), phase)
    torch.testing.assert_close(out, torch.ones_like(out))
    out = PolyphaseUp2d(stride=3, filter_size="triangle-5")(torch.ones(1, 1, 3, 3), phase)
    torch.testing.assert_close(out, torch.ones_like(out))
    with pytest.raises(
        ValueError,
        match=r"PolyphaseUp2d: filter_size='triangle-3' does not keep a constant map constant at scale factor 3",
    ):
        PolyphaseUp2d(stride=3, filter_size="triangle-3")
    with pytest.raises(ValueError, match=r"polyphase_up2d: .* at scale factor 3"):
        polyphase_up2d(torch.ones(1, 1, 2, 2), phase, stride=3, filter_size=3)
    # placement alone (filter 1, the default) is the inverse of the down layer, zeros elsewhere
    assert PolyphaseUp2d()(torch.ones(1, 1, 2, 2), phase).sum() == 4


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_every_function_names_itself_in_its_input_error(ndim: int) -> None:
    import antialias.layers.polyphase as P

    flat = torch.randn(3, 4)
    calls = {
        f"aps_down{ndim}d": lambda f: f(flat),
        f"lps_down{ndim}d": lambda f: f(flat, P.LpsScorer(ndim, channels=4)),
        f"polyphase_up{ndim}d": lambda f: f(flat, torch.tensor([0])),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"^{name} expects a {ndim + 2}D input"):
            call(getattr(P, name))
