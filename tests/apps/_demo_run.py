"""One reduced demo run, shared by the experiment and report tests (computed once per session).

A helper module rather than a ``conftest.py``: a second conftest beside ``tests/conftest.py`` collides
with it under ``--doctest-modules`` (both import as ``conftest``).
"""

from __future__ import annotations

import functools

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"  # the first bytes of every PNG file


@functools.cache
def reduced_run() -> dict:
    """Two seeds of the baseline, blur-3 and APS, one epoch on 96 digits."""
    from antialias.apps.demo import DemoConfig, experiment, run_demo

    config = DemoConfig(
        seeds=(0, 1),
        epochs=1,
        filters=(3,),
        train_size=96,
        test_size=24,
        passes=2,
        workers=1,
        progress=False,
    )
    with pytest.MonkeyPatch.context() as mp:
        # One thread: on a busy 2-core machine two threads per tiny model cost far more than they give.
        mp.setattr(experiment, "_cpu_count", lambda: 1)
        return run_demo(config)
