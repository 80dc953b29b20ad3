"""Tiny networks for the training tests, importable as ``_tiny_models:<name>`` (``--model``)."""

from __future__ import annotations

from torch import nn

__all__ = ["tiny_net", "tiny_net_dropout"]


def tiny_net(num_classes: int = 2) -> nn.Module:
    """Two strided convolutions and a linear classifier; no batch norm, so that runs on one and on
    several processes compute the same thing."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    )


def tiny_net_dropout(num_classes: int = 2) -> nn.Module:
    """:func:`tiny_net` with dropout, whose random masks a resumed run must reproduce."""
    model = tiny_net(num_classes)
    model.insert(len(model) - 1, nn.Dropout(0.5))
    return model
