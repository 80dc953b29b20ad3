"""Accuracy on models whose answers follow from their construction: top-k, along the diagonal, worst case."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _metric_models import batches
from torch import nn

from antialias.metrics import accuracy, diagonal_shift, evaluate_accuracy, worst_case_accuracy

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


@pytest.mark.parametrize("metric", [accuracy, diagonal_shift, worst_case_accuracy])
def test_float_labels_are_refused_never_truncated(metric):
    x = torch.arange(6.0).view(1, 6, 1, 1).expand(2, 6, 40, 40).clone()
    for labels in (torch.tensor([0.7, 1.9]), torch.tensor([1.0, 2.0])):
        with pytest.raises(TypeError, match=r"labels must be an integer tensor.*float32"):
            metric(LabelFromPixel(), [(x, labels)])


def test_accuracy_restores_training_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).train()
    accuracy(model, [(torch.zeros(1, 1, 2, 2), torch.tensor([0]))])
    assert model.training


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
