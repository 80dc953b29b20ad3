"""antialias._edits: the module-level edits of convert() (swap with hooks, modes, descriptions)."""

from __future__ import annotations

import pytest
from torch import nn

from antialias._edits import (
    _call_index,
    _describe,
    _follow_mode,
    _pool_ndim,
    _strided,
    _swap,
)


def test_swap_replaces_by_name_and_moves_the_hooks() -> None:
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)))
    handle = net[1][1].register_forward_hook(lambda *args: None)
    net[1][0].register_forward_pre_hook(lambda *args: None)
    new_pool, act = nn.AvgPool2d(2), net[1][0]
    moved: list[str] = []
    result = _swap(net, {"1.1": new_pool, "1.0": nn.Sequential(act, nn.Identity())}, moved)
    assert result is net and net[1][1] is new_pool and net[1][0][0] is act
    assert moved == ["1.1"]  # the wrapping Sequential contains the ReLU: its hook still fires there
    assert new_pool._forward_hooks and act._forward_pre_hooks
    handle.remove()  # the user's handle still works on the moved hook
    assert not new_pool._forward_hooks
    model_moved: list[str] = []
    assert _swap(net, {"": new_pool}, model_moved) is new_pool and model_moved == []


def test_swap_replaces_a_module_at_every_name_in_one_parent() -> None:
    pool = nn.MaxPool2d(2)
    net = nn.Sequential(pool, nn.ReLU(), pool)  # one module, two names in the same parent
    new = nn.AvgPool2d(2)
    _swap(net, {"0": new, "2": new}, [])
    assert net[0] is new and net[2] is new


def test_follow_mode_sets_only_the_new_modules() -> None:
    act, kept = nn.ReLU(), nn.BatchNorm2d(3)
    replaced = nn.Sequential(act, kept)
    replaced.training = False  # the replaced module is in eval mode, its child ``kept`` is not
    new = nn.Sequential(act, kept, nn.Dropout())
    _follow_mode(new, replaced)
    assert not new.training and not new[2].training and kept.training


def test_describe_is_one_line_and_one_level_deep() -> None:
    module = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sequential(nn.ReLU(), nn.Sequential(nn.ReLU())))
    text = _describe(module)
    assert "\n" not in text
    assert (
        text == "Sequential(0=Conv2d(3, 4, kernel_size=(1, 1), stride=(1, 1)), 1=Sequential(...))"
    )


def test_pool_dimension_and_strides() -> None:
    class MyPool(nn.MaxPool3d):
        pass

    assert _pool_ndim(MyPool(2)) == 3 and _pool_ndim(nn.AvgPool1d(2)) == 1
    with pytest.raises(ValueError, match="cannot tell the dimension of Conv2d"):
        _pool_ndim(nn.Conv2d(1, 1, 1))
    assert _strided(nn.MaxPool2d(3, 2)) and not _strided(nn.MaxPool2d(3, 1))
    assert _strided(nn.Conv2d(1, 1, 3, stride=(1, 2))) and not _strided(
        nn.ConvTranspose2d(1, 1, 2, stride=2)
    )
    assert not _strided(nn.ReLU())


def test_call_index_falls_back_to_the_closest_recorded_ancestor() -> None:
    order = {"": 0, "layer1": 1, "layer1.0.conv": 2}
    assert _call_index(order, "layer1.0.conv") == 2
    assert _call_index(order, "layer1.0.conv.blur") == 2  # a new layer: its parent's call
    assert _call_index(order, "layer2.0") == 0
    assert _call_index({}, "layer2") == float("inf")
