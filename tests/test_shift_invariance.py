"""The guarantee of polyphase sampling: with circular padding and global average pooling, an APS (or
evaluation-mode LPS) ResNet-18 gives the same logits for every circular shift of its input; the
baseline and the blur-pool versions of the same network do not. Checked on the zoo's builders, on
``convert()`` (every placement) and on a hand-built network."""

import pytest
import torch
import torchvision
from torch import nn

from antialias.conversion import convert
from antialias.layers import BlurConv2d, LpsDown2d, create_downsample, link_residual_phases
from antialias.layers.polyphase import _PolyphaseDownNd
from antialias.models import get_model

SHIFTS = [(0, 0), (1, 0), (0, 1), (1, 1), (3, 5), (-7, 2), (16, 16), (31, 1), (2, -9)]
# Float rounding only. On CPU, APS/LPS without blur measure exactly 0; with blur-4, the 2x2 maps of
# layer4 blur into four components equal up to rounding, whose exact ties (lowest phase wins) move the
# logits by ~1e-6.
TOLERANCE = 1e-5
CIRCULAR = {"pad_mode": "circular", "conv_padding_mode": "circular"}


def _circular_resnet18(seed=0) -> nn.Module:
    """torchvision's ResNet-18 with random weights and every convolution padded circularly."""
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=10)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.padding_mode = "circular"
    return model.eval()


def _zoo(method: str, filter_size=1, seed=0) -> nn.Module:
    """The zoo's ResNet-18 with ``method`` at every subsampling, the stem included, circular padding."""
    torch.manual_seed(seed)
    return get_model(
        "resnet18",
        method=method,
        filter_size=filter_size,
        antialias_stem=True,
        num_classes=10,
        **CIRCULAR,
    ).eval()


def _converted(method: str, placement="paper", filter_size=1) -> nn.Module:
    return convert(
        _circular_resnet18(),
        filter_size,
        method=method,
        antialias_stem=True,
        placement=placement,
        **CIRCULAR,
    ).eval()


def _hand_built(method: str, filter_size=1, link=True) -> nn.Module:
    """The same network built by hand from the layer primitives (independent of convert and the zoo)."""
    model = _circular_resnet18()

    def down(channels):
        return create_downsample(
            method, 2, channels, 2, filter_size=filter_size, pad_mode="circular"
        )

    model.conv1 = BlurConv2d.from_conv(model.conv1, downsample=down(3))
    model.maxpool = nn.Sequential(nn.CircularPad2d(1), nn.MaxPool2d(3, stride=1), down(64))
    for layer in (model.layer2, model.layer3, model.layer4):
        block = layer[0]
        block.conv1.stride = (1, 1)
        block.conv2 = BlurConv2d.from_conv(block.conv2, downsample=down(block.conv2.in_channels))
        block.downsample[0] = BlurConv2d.from_conv(
            block.downsample[0], downsample=down(block.downsample[0].in_channels)
        )
    if link:
        assert len(link_residual_phases(model)) == 3
    return model.eval()


def _shift_spread(model: nn.Module, x: torch.Tensor, shifts=SHIFTS) -> float:
    """Largest change of any logit over the circular shifts of ``x`` (all views in one batch)."""
    views = torch.cat([torch.roll(x, s, dims=(2, 3)) for s in shifts])
    with torch.no_grad():
        logits = model(views).view(len(shifts), x.size(0), -1)
    return (logits - logits[0]).abs().max().item()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method,filter_size", [("aps", 1), ("aps", 4), ("lps", 1), ("lps", 3)])
def test_zoo_polyphase_resnet18_is_invariant_to_circular_shifts(images, method, filter_size):
    model = _zoo(method, filter_size)
    assert sum(isinstance(m, _PolyphaseDownNd) for m in model.modules()) == 8
    assert _shift_spread(model, images) <= TOLERANCE


@pytest.mark.parametrize(
    "method,placement",
    [("aps", "paper"), ("aps", "reference"), ("aps", "before"), ("lps", "paper")],
)
def test_converted_resnet18_is_invariant_to_circular_shifts(images, method, placement):
    assert _shift_spread(_converted(method, placement), images) <= TOLERANCE


@pytest.mark.parametrize("method", ["aps", "lps"])
def test_hand_built_resnet18_is_invariant_to_circular_shifts(images, method):
    assert _shift_spread(_hand_built(method, 3), images) <= TOLERANCE


def test_aps_resnet18_invariance_on_a_non_square_input():
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    assert _shift_spread(_zoo("aps", 3), x, [(0, 0), (1, 0), (0, 33), (17, -5)]) <= TOLERANCE


@pytest.mark.parametrize("build", ["baseline", "zoo-blur", "convert-blur"])
def test_baseline_and_blur_pool_are_not_invariant(images, build):
    model = {
        "baseline": _circular_resnet18,
        "zoo-blur": lambda: _zoo("blur", 4),
        "convert-blur": lambda: _converted("blur", filter_size=4),
    }[build]()
    # Measured: baseline ~1.7, blur-pool ~0.02-0.08 on logits of magnitude ~1-4: far above rounding.
    assert _shift_spread(model, images) > 1000 * TOLERANCE


def test_unlinked_residual_phases_break_the_guarantee(images):
    """Main path and shortcut must keep the same phase; chosen independently, they misalign."""
    model = _converted("aps")
    followers = [
        m for m in model.modules() if isinstance(m, _PolyphaseDownNd) and m.leader is not None
    ]
    assert len(followers) == 3
    assert _shift_spread(model, images) <= TOLERANCE
    for m in followers:
        m.follow(None)
    assert _shift_spread(model, images) > 1000 * TOLERANCE
    assert _shift_spread(_hand_built("aps", link=False), images) > 1000 * TOLERANCE


def test_lps_resnet18_trains_its_scorers(images):
    model = _zoo("lps").train()
    lps = [m for m in model.modules() if isinstance(m, LpsDown2d)]
    leaders = [m for m in lps if m.leader is None]
    assert len(lps) == 8 and len(leaders) == 5  # 3 shortcut layers follow their main paths
    assert all(m.scorer is None for m in lps if m.leader is not None)
    loss = nn.functional.cross_entropy(model(images), torch.tensor([0, 1, 2]))
    loss.backward()
    for i, layer in enumerate(leaders):
        for name, p in layer.scorer.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (i, name)
    assert model.fc.weight.grad.abs().sum() > 0
