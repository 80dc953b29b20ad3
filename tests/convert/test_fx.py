"""antialias._fx: the graph analysis, the GraphModule insertion and the run-time observation behind convert()."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from antialias import _fx, convert_with_report
from antialias._edits import _LEAVES


class Chain(nn.Module):
    """conv -> norm -> act, then a branch: the chain ends at the activation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.head = nn.Conv2d(4, 4, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(self.bn(self.conv(x)))
        torch._assert(y.ndim == 4, "4D only")  # a metadata read is not a user of the values
        return self.head(y) + y


def _node(graph: fx.Graph, target: str) -> fx.Node:
    return next(n for n in graph.nodes if n.op == "call_module" and n.target == target)


def test_follow_chain_passes_norms_and_activations_and_stops_at_a_branch() -> None:
    model = Chain()
    graph = _fx.trace(model)
    last = _fx.follow_chain(_node(graph, "conv"), model.get_submodule)
    assert last.target == "act"
    assert len(_fx.data_users(last)) == 2  # head and the addition; ``y.ndim`` is not counted
    assert [name for _, name in _fx.output_of(last)] == ["act"]
    assert _fx.call_counts(graph)["act"] == 1


def test_trace_regions_falls_back_to_the_traceable_children() -> None:
    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = Chain()

        def forward(self, x: Tensor) -> Tensor:
            return self.body(x) if x.sum() > 0 else -x  # data-dependent control flow

    regions, failures = _fx.trace_regions(Untraceable(), lambda m: isinstance(m, nn.Conv2d))
    assert [r.prefix for r in regions] == ["body"]
    assert failures[0][0] == "" and "TraceError" in failures[0][1]
    assert regions[0].absolute("conv") == "body.conv"


class Reordered(nn.Module):
    """Children defined in another order than the forward uses them; a strided conv whose activation
    is a function with two users (rule 5: the module becomes a GraphModule)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts = nn.ModuleDict({"head": nn.Conv2d(8, 4, 1), "norm": nn.BatchNorm2d(8)})
        self.register_buffer("scale", torch.tensor(2.0))
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.parts["norm"](self.down(x)))
        return self.parts["head"](y) * self.scale + y.mean()


def test_a_graph_module_keeps_the_order_of_the_state_dict() -> None:
    model = nn.Sequential(Reordered()).eval()
    aa, report = convert_with_report(model, antialias_stem=True)
    assert report.graph_modules == ["0"] and isinstance(aa[0], fx.GraphModule)
    before, after = model.state_dict(), aa.state_dict()
    assert list(after) == list(before)  # parts.head first, down last, as defined
    assert all(torch.equal(before[k], after[k]) for k in before)
    x = torch.randn(1, 3, 16, 16)
    assert aa(x).shape == model(x).shape


def test_insert_after_refuses_a_module_it_cannot_retrace() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x: Tensor) -> Tensor:
            return self.conv(x) if x.sum() > 0 else x

    model = nn.Sequential(nn.Conv2d(3, 3, 1))
    region = _fx.Region("", model, _fx.trace(model))
    node = _node(region.graph, "0")
    result = _fx.insert_after(region, [(node, nn.Identity(), "extra")])
    assert result is not None and result[0] == "" and "extra" in dict(result[1].named_children())
    branchy = Branchy()
    graph = _fx.trace(nn.Sequential(nn.Conv2d(3, 3, 1)))  # a node that cannot be found in Branchy
    region = _fx.Region("", branchy, graph)
    assert _fx.insert_after(region, [(_node(graph, "0"), nn.Identity(), "extra")]) is None


class Hidden(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.conv(x))
        y = F.avg_pool2d(x, 2)
        return y + x[:, :, ::2, ::2] + F.conv2d(y, torch.ones(4, 4, 1, 1), stride=1)


def test_observe_records_order_channels_and_hidden_subsampling() -> None:
    model = Hidden().train()
    fired: list[str] = []
    model.conv.register_forward_hook(lambda *args: fired.append("hook"))
    seen = _fx.observe(model, (torch.randn(1, 3, 16, 16),), {"conv", "pool"}, _LEAVES)
    assert seen.error is None
    assert list(seen.order) == ["", "conv", "pool"]
    assert seen.channels == {"conv": {3}, "pool": {4}}
    calls = [call for owner, call in seen.calls if owner == ""]
    assert calls[0] == "F.avg_pool2d(stride=2)" and calls[1].startswith("slicing with a step")
    assert (
        len(calls) == 2
    )  # the stride-1 F.conv2d and the modules' own calls are not hidden subsampling
    assert fired == [] and model.training  # the model's hooks were set aside, its mode restored
    model(torch.randn(1, 3, 16, 16))
    assert fired == ["hook"]


def test_observe_reports_a_failing_forward() -> None:
    seen = _fx.observe(
        nn.Sequential(nn.Conv2d(3, 4, 1), nn.Linear(5, 2)),
        (torch.randn(1, 3, 4, 4),),
        set(),
        _LEAVES,
    )
    assert seen.error is not None and seen.error.startswith("RuntimeError")
    assert list(seen.order) == ["", "0", "1"]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (nn.ReLU(), True),
        (nn.Hardswish(), True),
        (nn.Softmax(dim=1), False),
        (nn.PReLU(), True),
        (nn.Sequential(nn.ReLU()), False),
    ],
)
def test_is_activation(module: nn.Module, expected: bool) -> None:
    assert _fx.is_activation(module) is expected
