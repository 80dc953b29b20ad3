"""Shift consistency on models whose answers follow from their construction."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from _metric_models import CircularNet, CornerParity, StridedNet, batches, parity_images
from torch import nn

from antialias.conversion import convert
from antialias.metrics import (
    circular_consistency,
    crop_consistency,
    fractional_consistency,
    fractional_shift,
)
from antialias.models import get_model

# --------------------------------------------------------------------------------------------
# fractional_shift
# --------------------------------------------------------------------------------------------


def test_fractional_shift_integer_equals_roll(generator):
    x = torch.randn(2, 3, 9, 10, generator=generator)
    for shift in [(0, 0), (1, 0), (-3, 4), (9, 25)]:
        expected = torch.roll(x, shift, dims=(-2, -1))
        torch.testing.assert_close(fractional_shift(x, shift), expected, atol=1e-5, rtol=0)


def test_fractional_shift_per_sample_and_half_pixel_sine(generator):
    # A band-limited sine shifted by half a pixel is the sine sampled half a pixel later: exact.
    n = 16
    grid = torch.arange(n, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * 3 * grid / n)
    x = wave[None, :].expand(n, n)[None].repeat(2, 1, 1)  # (2, H, W), varies along W
    out = fractional_shift(x, torch.tensor([[0.0, 0.5], [0.0, -2.25]]))
    torch.testing.assert_close(out[0], torch.cos(2 * math.pi * 3 * (grid - 0.5) / n).expand(n, n))
    torch.testing.assert_close(out[1], torch.cos(2 * math.pi * 3 * (grid + 2.25) / n).expand(n, n))
    # Shifts compose, and the mean (DC) is preserved.
    # (Odd sizes: an even size has a Nyquist row whose sub-pixel shift is kept real, which does
    # not compose.)
    y = torch.randn(1, 4, 11, 13, generator=generator, dtype=torch.float64)
    a = fractional_shift(fractional_shift(y, (0.3, 0.7)), (0.7, 1.3))
    torch.testing.assert_close(a, torch.roll(y, (1, 2), dims=(-2, -1)))
    torch.testing.assert_close(fractional_shift(y, (0.4, 0.1)).mean(), y.mean())


def test_fractional_shift_rejects_bad_input():
    with pytest.raises(TypeError, match="float tensor"):
        fractional_shift(torch.zeros(4, 4, dtype=torch.long), (1, 1))
    with pytest.raises(ValueError, match=r"shift must have shape \(2,\) or \(3, 2\)"):
        fractional_shift(torch.zeros(3, 1, 4, 4), torch.zeros(2, 2))


# --------------------------------------------------------------------------------------------
# crop consistency
# --------------------------------------------------------------------------------------------


def test_crop_consistency_shift_invariant_model_scores_one(generator):
    # 4-periodic images, crops of 8 (a multiple of the period): every crop is a circular shift of
    # every other, and the circular conv + global pool is exactly invariant to circular shifts.
    torch.manual_seed(0)
    model = CircularNet(classes=5)
    # Per-image colour offsets make the images (and the predictions) differ.
    tile = torch.randn(12, 3, 4, 4, generator=generator) + 3 * torch.randn(
        12, 3, 1, 1, generator=generator
    )
    images = tile.repeat(1, 1, 4, 4)  # 16x16 >= 8 + 8 - 1
    labels = torch.zeros(12, dtype=torch.long)
    result = crop_consistency(
        model, batches(images, labels, 5), crop_size=8, max_offset=8, passes=4, generator=generator
    )
    assert result.consistency == 1.0
    assert result.agree.shape == (12, 4) and result.agree.all()
    assert len(set(result.predictions.flatten().tolist())) > 1  # not a constant classifier


@pytest.mark.parametrize("max_offset", [4, 5])
def test_crop_consistency_parity_model_matches_probability(max_offset):
    # Crops at (dy, dx) are classified by the parities of dy and dx: a pair agrees iff both
    # parities match. With offsets uniform in 0..m-1, P(same parity) per axis is
    # (ceil(m/2)/m)^2 + (floor(m/2)/m)^2 and the axes are independent.
    m = max_offset
    per_axis = (math.ceil(m / 2) / m) ** 2 + (math.floor(m / 2) / m) ** 2
    expected = per_axis**2
    crop = 2
    images = parity_images(512, crop + m - 1)
    labels = torch.zeros(512, dtype=torch.long)
    g = torch.Generator().manual_seed(1)
    result = crop_consistency(
        CornerParity(),
        batches(images, labels, 128),
        crop_size=crop,
        max_offset=m,
        passes=8,
        generator=g,
    )
    # Exact: the agreement recorded is the parity predicate of the recorded offsets.
    off = result.offsets
    assert off.min() >= 0 and off.max() == m - 1
    same = ((off[:, :, 0, :] % 2) == (off[:, :, 1, :] % 2)).all(-1)
    assert torch.equal(result.agree, same)
    assert result.consistency == pytest.approx(same.float().mean().item(), abs=1e-12)
    assert torch.equal(result.predictions, 2 * (off[..., 0] % 2) + off[..., 1] % 2)
    # Statistical: 4096 pairs, standard error < 0.007; 4 standard errors.
    sigma = math.sqrt(expected * (1 - expected) / same.numel())
    assert abs(result.consistency - expected) < 4 * sigma


def test_crop_consistency_is_reproducible_and_per_image_by_default():
    images = parity_images(16, 9)
    labels = torch.zeros(16, dtype=torch.long)
    data = batches(images, labels, 8)
    a = crop_consistency(
        CornerParity(), data, crop_size=2, max_offset=8, generator=torch.Generator().manual_seed(3)
    )
    b = crop_consistency(
        CornerParity(), data, crop_size=2, max_offset=8, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a.offsets, b.offsets) and a.consistency == b.consistency
    # Per-image draws: the images of a batch do not all share their offsets.
    assert not (a.offsets[:8] == a.offsets[:1]).all()
    shared = crop_consistency(
        CornerParity(),
        data,
        crop_size=2,
        max_offset=8,
        shared_offsets=True,
        generator=torch.Generator().manual_seed(3),
    )
    assert (shared.offsets[:8] == shared.offsets[:1]).all() and (
        shared.offsets[8:] == shared.offsets[8:9]
    ).all()
    assert not torch.equal(shared.offsets[0], shared.offsets[8])


def _reference_validate_shift(model, loader, offsets_for, passes, crop):
    """A direct re-implementation of the reference's ``validate_shift`` loop (antialiased-cnns
    main.py): for each pass over the data, for each batch, two crops at offsets shared by the
    batch, the agreement percentage of the batch, averaged with the batch size as weight. The
    offsets, which the reference draws from ``np.random.randint(32, size=2)``, are given."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for ep in range(passes):
            for i, (images, _) in enumerate(loader):
                off0, off1 = offsets_for(i, ep)
                out0 = model(images[:, :, off0[0] : off0[0] + crop, off0[1] : off0[1] + crop])
                out1 = model(images[:, :, off1[0] : off1[0] + crop, off1[1] : off1[1] + crop])
                agree = 100.0 * (out0.argmax(1) == out1.argmax(1)).float().mean()
                total += agree.item() * images.size(0)
                count += images.size(0)
    return total / count


def test_crop_consistency_parity_with_reference_loop(generator):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2),
        nn.ReLU(),
        nn.Conv2d(8, 10, 3, stride=2),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
    )
    crop, max_offset, passes = 12, 6, 5
    images = torch.randn(11, 3, crop + max_offset, crop + max_offset, generator=generator)
    loader = batches(images, torch.zeros(11, dtype=torch.long), 4)  # 4, 4, 3: uneven weights
    ours = crop_consistency(
        model,
        loader,
        crop_size=crop,
        max_offset=max_offset,
        passes=passes,
        shared_offsets=True,
        generator=torch.Generator().manual_seed(5),
    )
    starts = [0, 4, 8]

    def offsets_for(batch, ep):
        pair = ours.offsets[starts[batch], ep]  # shared by the batch
        return pair[0].tolist(), pair[1].tolist()

    reference = _reference_validate_shift(model, loader, offsets_for, passes, crop)
    assert 0 < ours.consistency < 1  # the model is not invariant: the comparison means something
    # The reference averages float32 percentages; ours counts agreeing pairs.
    assert 100 * ours.consistency == pytest.approx(reference, abs=1e-4)


def test_crop_consistency_chunking_does_not_change_results(generator):
    torch.manual_seed(0)
    model = StridedNet()
    images = torch.randn(6, 3, 20, 20, generator=generator)
    data = batches(images, torch.zeros(6, dtype=torch.long), 3)
    whole = crop_consistency(
        model, data, crop_size=12, max_offset=8, generator=torch.Generator().manual_seed(0)
    )
    chunked = crop_consistency(
        model,
        data,
        crop_size=12,
        max_offset=8,
        generator=torch.Generator().manual_seed(0),
        chunk_size=7,
    )
    assert torch.equal(whole.predictions, chunked.predictions)


def test_crop_consistency_counts_forward_passes(generator):
    calls = []

    class Counting(nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return x.mean((1, 2, 3))[:, None].expand(-1, 3)

    images = torch.randn(8, 3, 12, 12, generator=generator)
    crop_consistency(
        Counting(),
        batches(images, torch.zeros(8, dtype=torch.long), 4),
        crop_size=8,
        max_offset=5,
        passes=5,
    )
    assert calls == [40, 40]  # all 2 * passes crops of a batch's 4 images in one pass


def test_crop_consistency_bad_input():
    model = CornerParity()
    small = [(torch.zeros(2, 2, 20, 20), torch.zeros(2, dtype=torch.long))]
    with pytest.raises(
        ValueError, match=r"images are 20x20 but crop consistency needs at least 255x255"
    ):
        crop_consistency(model, small)
    with pytest.raises(ValueError, match="max_offset must be an integer >= 1, got 0"):
        crop_consistency(model, small, crop_size=4, max_offset=0)
    with pytest.raises(TypeError, match="torch.Generator"):
        crop_consistency(model, small, crop_size=4, max_offset=2, generator=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        crop_consistency(model, [(torch.zeros(2, 20, 20), torch.zeros(2))], crop_size=4)
    with pytest.raises(TypeError, match=r"\(images, labels\) batches"):
        crop_consistency(model, [torch.zeros(2, 2, 20, 20)], crop_size=4)


def test_consistency_result_records_and_summary():
    images = parity_images(3, 5)
    labels = torch.tensor([0, 1, 3])
    r = crop_consistency(
        CornerParity(),
        [(images, labels)],
        crop_size=2,
        max_offset=4,
        passes=2,
        generator=torch.Generator().manual_seed(0),
    )
    s = r.summary()
    assert s["consistency"] == r.consistency and s["images"] == 3 and s["passes"] == 2
    correct = (r.predictions == labels[:, None, None]).float().mean().item()
    assert s["accuracy"] == pytest.approx(correct)
    rec = r.records()
    assert len(rec) == 3 and rec[2]["label"] == 3 and len(rec[2]["offsets"]) == 2


# --------------------------------------------------------------------------------------------
# circular and fractional consistency
# --------------------------------------------------------------------------------------------


def test_circular_consistency_exact_for_circular_model_not_for_strided(generator):
    torch.manual_seed(0)
    images = torch.randn(24, 3, 16, 16, generator=generator)
    data = batches(images, torch.zeros(24, dtype=torch.long), 8)
    invariant = circular_consistency(
        CircularNet(), data, max_shift=16, generator=torch.Generator().manual_seed(0)
    )
    assert invariant.consistency == 1.0
    assert invariant.offsets.max() == 15
    torch.manual_seed(1)
    strided = circular_consistency(
        StridedNet(), data, max_shift=16, generator=torch.Generator().manual_seed(0)
    )
    assert strided.consistency < 0.9
    # Pairs whose shifts have the same parity on both axes differ by an even shift: those agree.
    off = strided.offsets
    even = (((off[:, :, 0] - off[:, :, 1]) % 2) == 0).all(-1)
    assert strided.agree[even].all()


def test_fractional_consistency_linear_pool_model_is_invariant(generator):
    # A sub-pixel (Fourier) shift keeps the mean of every channel: pool + linear cannot change.
    images = torch.randn(16, 3, 12, 12, generator=generator)
    data = batches(images, torch.zeros(16, dtype=torch.long), 8)
    torch.manual_seed(0)
    linear = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))
    r = fractional_consistency(
        linear, data, max_shift=1.0, generator=torch.Generator().manual_seed(0)
    )
    assert r.consistency == 1.0
    assert r.offsets.dtype == torch.float64 and 0 <= r.offsets.min() and r.offsets.max() < 1
    torch.manual_seed(1)
    strided = fractional_consistency(
        StridedNet(), data, max_shift=1.0, generator=torch.Generator().manual_seed(0)
    )
    assert strided.consistency < 1.0


# --------------------------------------------------------------------------------------------
# polyphase models (their invariance itself: tests/test_shift_invariance.py)
# --------------------------------------------------------------------------------------------


def test_shift_metrics_work_on_polyphase_models():
    """Circularly padded APS/LPS ResNet-18s (zoo and converted) score exactly 1 under circular shifts."""
    circular = {"pad_mode": "circular", "conv_padding_mode": "circular"}
    torch.manual_seed(0)
    aps = get_model(
        "resnet18", method="aps", filter_size=1, antialias_stem=True, num_classes=10, **circular
    ).eval()
    torch.manual_seed(0)
    baseline = torchvision.models.resnet18(num_classes=10)
    for m in baseline.modules():
        if isinstance(m, nn.Conv2d):
            m.padding_mode = "circular"
    lps = convert(
        baseline.eval(), 1, method="lps", antialias_stem=True, placement="paper", **circular
    ).eval()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    data = [(images, torch.tensor([0, 1, 2])), (images.flip(3)[:2], torch.tensor([3, 4]))]
    result = circular_consistency(
        aps, data, max_shift=32, passes=2, generator=torch.Generator().manual_seed(0)
    )
    assert result.consistency == 1.0 and result.agree.shape == (5, 2)
    assert (
        circular_consistency(
            lps, data, max_shift=32, passes=2, generator=torch.Generator().manual_seed(0)
        ).consistency
        == 1.0
    )
    assert lps.training is False
    # crop consistency needs no divisibility: 24x24 crops of the 32x32 images (24 is not a multiple of 32)
    crops = crop_consistency(
        aps, data, crop_size=24, max_offset=8, passes=2, generator=torch.Generator().manual_seed(0)
    )
    assert 0.0 <= crops.consistency <= 1.0 and crops.agree.shape == (5, 2)
