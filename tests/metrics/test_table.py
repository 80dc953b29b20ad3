"""The metric table: every row matches its function, and reports the columns it promises."""

from __future__ import annotations

import inspect

import pytest
import torch
from _metric_models import CircularNet

from antialias.metrics.table import METRIC_TABLE, get_metric, list_metrics

VALUES = {
    "crop": 16,
    "max_offset": 4,
    "shared_offsets": False,
    "passes": 2,
    "batch_size": 8,
    "circular_shift": 4,
    "fractional_shift": 1.0,
    "worst_case_shift": 2,
    "worst_case_mode": "crop",
    "layers": None,
    "equivariance_shift": 2,
    "equivariance_images": 2,
}


@pytest.mark.parametrize("name", list_metrics())
def test_every_row_matches_its_function(name):
    spec = METRIC_TABLE[name]
    assert spec.name == name and spec.description
    params = inspect.signature(spec.function).parameters
    assert list(params)[0] == "model" and {"device", "progress"} <= set(params)
    assert set(spec.options) <= set(params), set(spec.options) - set(params)
    assert (spec.path is not None) == (spec.input == "path")
    assert spec.needs_images == (spec.input != "path")
    assert spec.plot in (None, "diagonal", "consistency", "equivariance")
    assert spec.across_models <= (spec.score is not None)


def test_the_table_covers_the_metrics_and_refuses_unknown_names():
    assert list_metrics() == [
        "accuracy",
        "consistency",
        "diagonal",
        "circular",
        "fractional",
        "worst-case",
        "equivariance",
        "imagenet-c",
        "imagenet-p",
        "corruptions",
    ]
    with pytest.raises(ValueError, match="unknown metric 'psnr'; expected one of"):
        get_metric("psnr")
    with pytest.raises(KeyError, match=r"metric 'consistency' needs the values \['generator'\]"):
        get_metric("consistency").bind({k: v for k, v in VALUES.items()})


@pytest.mark.parametrize("name", [n for n in list_metrics() if METRIC_TABLE[n].input == "images"])
def test_image_metrics_run_from_their_row_and_report_their_columns(name, generator):
    spec = get_metric(name)
    kwargs = spec.bind({**VALUES, "generator": torch.Generator().manual_seed(0)})
    side = VALUES["crop"] + spec.margin(kwargs)
    assert side == VALUES["crop"] + {"consistency": 4, "diagonal": 4, "worst-case": 2}.get(name, 0)
    n = VALUES[spec.limit] if spec.limit else 4
    images = torch.randn(n, 3, side, side, generator=generator)
    labels = torch.arange(n) % 5
    torch.manual_seed(0)
    model = CircularNet().eval()
    result = spec.function(model, [(images, labels)], device="cpu", progress=False, **kwargs)
    summary = result.summary()
    for column in spec.columns:
        assert column.key in summary
    if name == "circular":
        assert summary["consistency"] == 1.0  # the model is exactly invariant to circular shifts
