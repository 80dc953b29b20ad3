"""The metrics' shared plumbing: the view loop, the renderers, records, checks and the benchmarks' loop."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pytest
import torch
from _metric_models import batches
from torch import nn

from antialias.metrics import NonFiniteLogitsError
from antialias.metrics._common import (
    benchmark_folders,
    check_batch,
    check_generator,
    classify_views,
    crop_views,
    eval_mode,
    forward_views,
    mean,
    positive_int,
    records,
    roll_views,
    score_datasets,
    summary_repr,
)


class TopLeft(nn.Module):
    """Logits: one-hot of the view's top-left pixel (channel 0), over 10 classes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x[:, 0, 0, 0].round().long(), 10).float()


def _numbered(n: int, size: int) -> torch.Tensor:
    """``n`` images whose pixels hold their row: a crop's top-left pixel is the crop's first row."""
    rows = torch.arange(size).float()[:, None].expand(size, size)
    return rows.expand(n, 1, size, size).clone()


def test_classify_views_orders_views_by_image_then_view_and_chunking_changes_nothing():
    images = _numbered(5, 6)  # window 3 + 3 = 6: offset (dy, 0) is rows dy..dy+2
    draws = []

    def draw(n: int) -> torch.Tensor:  # view j of every image: crop at row offset j
        offsets = torch.stack([torch.arange(4), torch.zeros(4, dtype=torch.long)], 1).expand(
            n, -1, -1
        )
        draws.append(n)
        return offsets

    kwargs = {
        "draw": draw,
        "render": crop_views(3, 3),
        "what": "test",
        "device": None,
        "progress": False,
    }
    whole = classify_views(
        TopLeft(), batches(images, torch.arange(5), 2), chunk_size=None, **kwargs
    )
    chunked = classify_views(TopLeft(), batches(images, torch.arange(5), 2), chunk_size=3, **kwargs)
    assert draws == [2, 2, 1, 2, 2, 1]  # one draw per batch, of its size
    assert whole["predictions"].tolist() == [[0, 1, 2, 3]] * 5
    assert whole["labels"].tolist() == list(range(5)) and whole["offsets"].shape == (5, 4, 2)
    assert all(torch.equal(whole[k], chunked[k]) for k in whole)


def test_classify_views_checks_labels_only_when_asked_and_needs_a_batch():
    images = _numbered(2, 4)
    kwargs = {
        "draw": lambda n: torch.zeros(n, 1, 2, dtype=torch.long),
        "render": crop_views(4, 0),
        "what": "the test metric",
        "device": None,
        "progress": False,
        "chunk_size": None,
    }
    unlabelled = [(images, torch.tensor([-1, -1]))]
    assert classify_views(TopLeft(), unlabelled, **kwargs)["predictions"].tolist() == [[0], [0]]
    with pytest.raises(ValueError, match="the test metric needs labelled images"):
        classify_views(TopLeft(), unlabelled, labelled=True, **kwargs)
    with pytest.raises(ValueError, match="images are 4x4 but the test metric needs at least 5x5"):
        classify_views(TopLeft(), unlabelled, min_size=5, **kwargs)
    with pytest.raises(ValueError, match="data yielded no batch"):
        classify_views(TopLeft(), [], **kwargs)


def test_crop_views_centre_the_window_and_roll_views_roll():
    image = torch.arange(36.0).view(1, 1, 6, 6)
    # window of 2 + 2 = 4 centred in 6: y0 = x0 = 1; offset (1, 2) -> rows 2..3, cols 3..4
    crops = crop_views(2, 2)(image, [0, 0], torch.tensor([[0, 0], [1, 2]]))
    torch.testing.assert_close(crops[0, 0], image[0, 0, 1:3, 1:3])
    torch.testing.assert_close(crops[1, 0], image[0, 0, 2:4, 3:5])
    rolled = roll_views(image, [0], torch.tensor([[1, -2]]))
    torch.testing.assert_close(rolled[0], torch.roll(image[0], (1, -2), dims=(-2, -1)))


def test_forward_views_chunks_keeps_the_main_head_and_refuses_non_finite_logits():
    calls = []

    class Aux(nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return x.flatten(1), torch.zeros(1)

    views = torch.arange(14.0).view(7, 2)
    out = forward_views(Aux(), lambda a, b: views[a:b], 7, 3, torch.device("cpu"))
    assert calls == [3, 3, 1] and torch.equal(out, views)
    views[5, 1] = float("nan")
    with pytest.raises(NonFiniteLogitsError, match="for 1 of 3 inputs"):
        forward_views(Aux(), lambda a, b: views[a:b], 7, 3, torch.device("cpu"))
    with pytest.raises(ValueError, match="chunk_size must be a positive number of images, got 0"):
        forward_views(Aux(), lambda a, b: views[a:b], 7, 0, torch.device("cpu"))


def test_check_batch_and_generator_name_the_bad_value():
    with pytest.raises(
        ValueError, match=r"labels must be a \(2,\) tensor matching the images, got shape \(3,\)"
    ):
        check_batch((torch.zeros(2, 1, 4, 4), torch.zeros(3)))
    images, labels = check_batch([torch.zeros(2, 1, 4, 4), [1, 0]])
    assert labels.dtype == torch.long and labels.tolist() == [1, 0]
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        check_generator(3)  # type: ignore[arg-type]
    check_generator(None)


def test_positive_int_mean_and_records():
    assert positive_int("passes", 3) == 3
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match=f"passes must be an integer >= 1, got {bad!r}"):
            positive_int("passes", bad)  # type: ignore[arg-type]
    assert positive_int("max_offset", 0, minimum=0) == 0
    assert mean(torch.tensor([True, False, True, True])) == 0.75 and mean([1.0, 2.0]) == 1.5
    assert math.isnan(mean(torch.empty(0))) and math.isnan(mean([]))
    rows = records(
        torch.tensor([4, 2]), hit=torch.tensor([True, False]), top=torch.tensor([[1, 2], [3, 4]])
    )
    assert rows == [
        {"index": 0, "label": 4, "hit": True, "top": [1, 2]},
        {"index": 1, "label": 2, "hit": False, "top": [3, 4]},
    ]


def test_summary_repr_shows_tensors_by_shape_and_long_lists_by_length():
    @dataclass
    class Result:
        value: float
        per_image: torch.Tensor
        names: list
        maps: dict

    text = summary_repr(
        Result(0.5, torch.zeros(3, 2, dtype=torch.bool), list(range(20)), {"a": torch.ones(4)})
    )
    assert (
        text
        == "Result(value=0.5, per_image=<tensor (3, 2) bool>, names=<list of 20>, maps={'a': <tensor (4,) float32>})"
    )


def test_eval_mode_restores_the_training_flag_even_on_error():
    model = nn.Linear(2, 2).train()
    with pytest.raises(RuntimeError, match="inside"), eval_mode(model):
        assert not model.training and not torch.is_grad_enabled()
        raise RuntimeError("inside")
    assert model.training


def test_benchmark_folders_list_skip_and_name_the_missing(tmp_path):
    for name in ("b", "a", "a_2", "notes.txt"):
        (tmp_path / name).mkdir() if "." not in name else (tmp_path / name).write_text("")
    assert benchmark_folders(tmp_path, "Bench", "condition", None, skip=("_2",)) == (
        tmp_path,
        ["a", "b"],
    )
    assert benchmark_folders(tmp_path, "Bench", "condition", ["z"])[1] == [
        "z"
    ]  # named ones are kept
    with pytest.raises(FileNotFoundError, match="Bench folder .*nope.* does not exist"):
        benchmark_folders(tmp_path / "nope", "Bench", "condition", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no condition folder in Bench folder"):
        benchmark_folders(tmp_path / "empty", "Bench", "condition", None)


def test_score_datasets_builds_each_data_set_when_its_turn_comes(caplog):
    built = []

    def datasets():
        for key in (1, 2):
            built.append(key)
            yield key, torch.utils.data.TensorDataset(torch.arange(5.0) * key)

    def score(key, loader):
        assert built[-1] == key  # the next data set is not built yet
        return float(sum(batch[0].sum() for batch in loader))

    with caplog.at_level(logging.INFO, logger="antialias.metrics._common"):
        scores = score_datasets(datasets(), score, desc="bench", batch_size=2, num_workers=0)
    assert scores == {1: 10.0, 2: 20.0}
    assert "bench/2: 20.0" in caplog.text


def test_metric_results_show_tensors_by_shape_in_their_repr():
    from antialias.metrics import crop_consistency

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3)).eval()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.rand(40, 3, 12, 12), torch.randint(0, 3, (40,))),
        batch_size=20,
    )
    result = crop_consistency(
        model,
        loader,
        crop_size=8,
        max_offset=4,
        passes=1,
        generator=torch.Generator().manual_seed(0),
    )
    text = repr(result)
    assert (
        text.startswith("ConsistencyResult(consistency=") and "agree=<tensor (40, 1) bool>" in text
    )
    assert "tensor([" not in text and len(text) < 400
