"""Fused Triton kernels for the blur layers, loaded lazily.

As in Triton's layer-norm tutorial: ``kernels.py`` holds the ``@triton.jit`` kernels (pure index
arithmetic on pointers), ``tables.py`` the per-axis index tables they read (the CPU kernels use
their dense form), ``function.py`` the ``torch.autograd.Function`` s that launch them. The layers
reach them through :func:`antialias.layers.functional._choose`. Importing this package never
imports Triton; :func:`available` does, once.
"""

from __future__ import annotations

import functools
import os

__all__ = ["available", "interpreting"]


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether ``import triton`` succeeds (Triton ships with PyTorch's Linux CUDA wheels)."""
    try:
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


def interpreting() -> bool:
    """Whether Triton runs its kernels in the CPU interpreter (``TRITON_INTERPRET=1`` at import)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
