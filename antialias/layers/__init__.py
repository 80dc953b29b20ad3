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
    merging,
    polyphase,
    trim,
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
from antialias.layers.merging import *  # noqa: F403
from antialias.layers.polyphase import *  # noqa: F403
from antialias.layers.trim import *  # noqa: F403
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
__all__ += trim.__all__
__all__ += merging.__all__
