"""Shift metrics on models whose answers follow from their construction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _metric_models import CircularNet, CornerParity, StridedNet, parity_images
from torch import nn

from antialias.metrics import (
    accuracy,
    circular_consistency,
    crop_consistency,
    diagonal_shift,
    evaluate_accuracy,
    fractional_consistency,
    fractional_shift,
    worst_case_accuracy,
)


def batches(
    images: torch.Tensor, labels: torch.Tensor, size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, len(images), size)]


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
# accuracy
# --------------------------------------------------------------------------------------------


class LabelFromPixel(nn.Module):
    """Logits = the first pixel's values over channels: the test writes the ranking in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 0, 0]


def test_accuracy_topk_by_hand():
    # 6 classes; each image's channel values give its ranking: class 5 > 4 > ... > 0.
    x = torch.arange(6.0).view(1, 6, 1, 1).expand(4, 6, 2, 2).clone()
    labels = torch.tensor([5, 4, 1, 0])  # ranks 1, 2, 5, 6
    data = batches(x, labels, 3)  # batches of 3 and 1: the mean is over images
    assert accuracy(LabelFromPixel(), data) == {"top1": 0.25, "top5": 0.75}
    assert accuracy(LabelFromPixel(), data, topk=(2, 10)) == {"top2": 0.5, "top10": 1.0}
    result = evaluate_accuracy(LabelFromPixel(), data)
    assert result.predictions.tolist() == [5, 5, 5, 5]
    assert result.records()[1] == {
        "index": 1,
        "label": 4,
        "prediction": 5,
        "top1": False,
        "top5": True,
    }


def test_accuracy_rejects_labels_beyond_model_and_unlabelled():
    x = torch.zeros(2, 3, 2, 2)
    with pytest.raises(ValueError, match="label 7 but the model outputs only 3 classes"):
        accuracy(LabelFromPixel(), [(x, torch.tensor([0, 7]))])
    with pytest.raises(ValueError, match="needs labelled images"):
        accuracy(LabelFromPixel(), [(x, torch.tensor([-1, -1]))])
    with pytest.raises(ValueError, match="no batch"):
        accuracy(LabelFromPixel(), [])


def test_accuracy_restores_training_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).train()
    accuracy(model, [(torch.zeros(1, 1, 2, 2), torch.tensor([0]))])
    assert model.training


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
# diagonal
# --------------------------------------------------------------------------------------------


class DiagonalOracle(nn.Module):
    """Reads the crop's offset ``o`` (channel 0, top-left pixel, written as o / 100) and the label
    (channel 1, as label / 10). The correct class gets logit +2 when (o + label) % 3 == 0, else
    -1; the other 3 classes get 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = torch.round(x[:, 0, 0, 0] * 100).long()
        label = torch.round(x[:, 1, 0, 0] * 10).long()
        good = (o + label) % 3 == 0
        logits = torch.zeros(x.shape[0], 4)
        logits[torch.arange(x.shape[0]), label] = torch.where(good, 2.0, -1.0)
        return logits


def test_diagonal_controlled_errors():
    crop, max_offset = 4, 6
    size = crop + max_offset
    labels = torch.tensor([0, 1, 2, 0, 1])
    rows = torch.arange(size).float()[:, None].expand(size, size) / 100
    images = torch.stack(
        [torch.stack([rows, torch.full((size, size), lab / 10)]) for lab in labels.tolist()]
    )
    r = diagonal_shift(
        DiagonalOracle(), batches(images, labels, 2), crop_size=crop, max_offset=max_offset
    )
    assert r.offsets.tolist() == list(range(7))
    good = torch.tensor([[(o + lab) % 3 == 0 for o in range(7)] for lab in labels.tolist()])
    assert torch.equal(r.correct, good)
    p_good, p_bad = math.exp(2) / (math.exp(2) + 3), math.exp(-1) / (math.exp(-1) + 3)
    expected_p = torch.where(good, p_good, p_bad)
    torch.testing.assert_close(r.probabilities, expected_p.float())
    # Per offset: labels {0: 2 images, 1: 2, 2: 1}; offset o is right for label (-o) % 3.
    count = {0: 2, 1: 2, 2: 1}
    for o in range(7):
        n_good = count[(-o) % 3]
        assert r.accuracy_per_offset[o].item() == pytest.approx(n_good / 5)
        assert r.probability_per_offset[o].item() == pytest.approx(
            (n_good * p_good + (5 - n_good) * p_bad) / 5
        )
    s = r.summary()
    assert s["stability"] == 0.0 and len(s["accuracy_per_offset"]) == 7
    assert r.records()[0]["predictions"][0] == 0


def test_diagonal_needs_labels_and_size():
    with pytest.raises(ValueError, match="needs at least 256x256"):
        diagonal_shift(
            DiagonalOracle(), [(torch.zeros(1, 2, 255, 255), torch.zeros(1, dtype=torch.long))]
        )
    with pytest.raises(ValueError, match="needs labelled images"):
        diagonal_shift(
            DiagonalOracle(),
            [(torch.zeros(1, 2, 6, 6), torch.tensor([-1]))],
            crop_size=4,
            max_offset=2,
        )


# --------------------------------------------------------------------------------------------
# worst case
# --------------------------------------------------------------------------------------------


class MarkerOracle(nn.Module):
    """Predicts the label (channel 1, as label / 10) unless the view's top-left pixel carries the
    marker (channel 0 == 1): then the next class."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        label = torch.round(x[:, 1, 0, 0] * 10).long()
        wrong = x[:, 0, 0, 0] > 0.5
        return F.one_hot(torch.where(wrong, (label + 1) % 3, label), 3).float()


def _marker_images(markers, size=8, labels=(0, 1, 2, 1)):
    images = torch.zeros(len(markers), 2, size, size)
    for k, (mark, lab) in enumerate(zip(markers, labels, strict=True)):
        images[k, 1] = lab / 10
        if mark is not None:
            images[k, 0, mark[0], mark[1]] = 1.0
    return images, torch.tensor(labels)


def test_worst_case_circular_controlled_errors():
    # After torch.roll by (dy, dx) the top-left pixel is the original (-dy % 8, -dx % 8). For
    # shifts in -2..2 that reaches rows/cols {0, 1, 2, 6, 7}: a marker at (4, 4) is never seen, one
    # at (1, 7) is seen at shift (-1, 1) only, one at (0, 0) at shift (0, 0) only.
    images, labels = _marker_images([None, (4, 4), (1, 7), (0, 0)])
    r = worst_case_accuracy(MarkerOracle(), batches(images, labels, 3), max_shift=2)
    assert r.shifts_y.tolist() == [-2, -1, 0, 1, 2]
    assert r.worst_case_accuracy == 0.5
    assert r.unshifted_accuracy == 0.75
    per_shift = r.accuracy_per_shift
    assert per_shift[2, 2].item() == 0.75  # (0, 0)
    assert per_shift[1, 3].item() == 0.75  # (-1, 1)
    assert per_shift.sum().item() == pytest.approx(25 - 0.5)
    s = r.summary()
    assert s["mean_accuracy"] == pytest.approx((100 - 2) / 100)
    assert [rec["correct_all"] for rec in r.records()] == [True, True, False, False]


def test_worst_case_crop_mode_offsets():
    # Crops of 4 at offsets 0..2 of a 6x6 image: the top-left pixel is (dy, dx). A marker at
    # (2, 1) is hit at offset (2, 1) only.
    images, labels = _marker_images([None, (2, 1), (3, 3), None], size=6)
    r = worst_case_accuracy(
        MarkerOracle(), [(images, labels)], max_shift=2, mode="crop", crop_size=4
    )
    assert r.shifts_y.tolist() == [0, 1, 2]
    assert r.worst_case_accuracy == 0.75
    assert not r.correct[1, 2, 1] and r.correct[1].sum() == 8
    with pytest.raises(ValueError, match="mode must be 'circular' or 'crop'"):
        worst_case_accuracy(MarkerOracle(), [(images, labels)], mode="reflect")  # type: ignore[arg-type]
