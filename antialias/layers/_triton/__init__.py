"""Fused Triton kernels for the blur layers (issue 12), loaded lazily.

Three layers, as in Triton's layer-norm tutorial: ``kernels.py`` holds the ``@triton.jit`` kernels (pure index
arithmetic on pointers), ``tables.py`` the host-side per-axis index tables they read (padding, stride, taps and
zero-insertion folded in), ``function.py`` the ``torch.autograd.Function`` s that launch them. The layers and
functional twins reach them only through the backend dispatch in :mod:`antialias.layers.functional`.

Importing this package never imports Triton; :func:`available` does, once.
"""

from __future__ import annotations

import functools
import os

__all__ = ["available", "interpreting"]


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether ``import triton`` succeeds (Triton ships with PyTorch's Linux CUDA wheels)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


def interpreting() -> bool:
    """Whether Triton runs its kernels in the CPU interpreter (``TRITON_INTERPRET=1`` before ``import triton``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
