"""Anti-aliased sampling layers and their functional twins.

Every public name of the submodules is re-exported here (each submodule's ``__all__`` lists them).
"""

from antialias.layers import (
    adaptive,
    alias_free,
    anchor,
    blurpool,
    factory,
    fourier,
    functional,
    polyphase,
    upsample,
    wavelet,
)
from antialias.layers.adaptive import *  # noqa: F403
from antialias.layers.alias_free import *  # noqa: F403
from antialias.layers.anchor import *  # noqa: F403
from antialias.layers.blurpool import *  # noqa: F403
from antialias.layers.factory import *  # noqa: F403
from antialias.layers.fourier import *  # noqa: F403
from antialias.layers.functional import *  # noqa: F403
from antialias.layers.polyphase import *  # noqa: F403
from antialias.layers.upsample import *  # noqa: F403
from antialias.layers.wavelet import *  # noqa: F403

__all__: list[str] = []
__all__ += blurpool.__all__
__all__ += upsample.__all__
__all__ += functional.__all__
__all__ += factory.__all__
__all__ += polyphase.__all__
__all__ += adaptive.__all__
__all__ += alias_free.__all__
__all__ += anchor.__all__
__all__ += fourier.__all__
__all__ += wavelet.__all__

_MOVED = {"lps_temperature": "antialias.train.lps_temperature"}


def __getattr__(name: str) -> object:
    # Names that left this module in 0.2 fail with their new home (a training schedule is not a layer).
    if name in _MOVED:
        raise AttributeError(f"antialias.layers.{name} moved to {_MOVED[name]}")
    raise AttributeError(f"module 'antialias.layers' has no attribute {name!r}")
