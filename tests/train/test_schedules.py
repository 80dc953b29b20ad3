"""lps_temperature: the step-decay Gumbel-softmax temperature of LPS training."""

from __future__ import annotations

import pytest

from antialias.train import lps_temperature


def test_lps_temperature_decays_by_steps_to_its_floor():
    assert lps_temperature(0) == 1.0 and lps_temperature(9) == 1.0 and lps_temperature(10) == 0.85
    assert lps_temperature(10_000) == 0.025
    assert lps_temperature(20, initial=0.5, gamma=0.5, step_size=5, minimum=0.01) == 0.5 * 0.5**4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epoch": -1}, "epoch must be an int >= 0"),
        ({"epoch": 1, "step_size": 0}, "step_size must be an int >= 1"),
        ({"epoch": 1, "gamma": 1.5}, r"gamma must be in \(0, 1\]"),
        ({"epoch": 1, "minimum": 0.0}, "minimum .* must be a finite number > 0"),
    ],
)
def test_lps_temperature_names_the_bad_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lps_temperature(**kwargs)
