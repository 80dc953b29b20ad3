"""Fixtures of the metric tests; the models with known answers are in ``_metric_models.py``."""

from __future__ import annotations

import sys
from pathlib import Path

# The test modules import ``_metric_models`` from this folder, whatever pytest's import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
