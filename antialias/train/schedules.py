"""Training schedules of layer hyper-parameters (not learning rates, which use torch's schedulers).

:func:`lps_temperature` gives the Gumbel-softmax temperature of learnable polyphase sampling for an
epoch; :func:`antialias.layers.set_lps_temperature` applies it to every LPS layer of a model.
"""

from __future__ import annotations

import math

__all__ = ["lps_temperature"]


def lps_temperature(
    epoch: int,
    initial: float = 1.0,
    gamma: float = 0.85,
    step_size: int = 10,
    minimum: float = 0.025,
) -> float:
    """Step-decay temperature schedule for LPS training: ``max(initial * gamma ** (epoch // step_size), minimum)``.

    The defaults are the step decay of the LPS paper's CIFAR-10 recipe (Rojas-Gomez et al., NeurIPS
    2022: x0.85 every 10 epochs, floor 0.025).

    Args:
        epoch: the epoch, from 0.
        initial: temperature at epoch 0.
        gamma: factor applied every ``step_size`` epochs, in ``(0, 1]``.
        step_size: epochs between two decays.
        minimum: the floor.

    Example:
        >>> [round(lps_temperature(e), 4) for e in (0, 9, 10, 25)]
        [1.0, 1.0, 0.85, 0.7225]
    """
    for name, number, low in (("epoch", epoch, 0), ("step_size", step_size, 1)):
        if isinstance(number, bool) or not isinstance(number, int) or number < low:
            raise ValueError(f"{name} must be an int >= {low}, got {number!r}")
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
    for name, value in (("initial", initial), ("minimum", minimum)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(
                f"{name} (a Gumbel-softmax temperature) must be a finite number > 0, got {value!r}"
            )
    return max(initial * gamma ** (epoch // step_size), minimum)
