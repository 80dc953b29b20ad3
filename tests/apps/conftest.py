"""Fixtures of the demo's tests: one reduced run, shared by the experiment and report tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def reduced_result() -> dict:
    """Two seeds of the baseline, blur-3 and APS, one epoch on 96 digits (the run takes a while: once per session)."""
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from antialias.apps.demo import DemoConfig, experiment, run_demo

    config = DemoConfig(
        seeds=(0, 1), epochs=1, filters=(3,), train_size=96, test_size=24, passes=2, workers=1, progress=False
    )
    with pytest.MonkeyPatch.context() as mp:
        # One thread: on a busy 2-core machine two threads per tiny model cost far more than they give.
        mp.setattr(experiment, "_cpu_count", lambda: 1)
        return run_demo(config)
