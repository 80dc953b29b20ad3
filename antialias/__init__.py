"""antialias: make convolutional networks shift-invariant again.

Blur-pool layers (Zhang, ICML 2019), an anti-aliased model zoo with torchvision's parameter names, a
one-call converter for any CNN, and metrics that measure shift-invariance.
"""

__version__ = "0.1.0"

from antialias import filters as filters
from antialias import layers as layers
from antialias.conversion import ConversionReport as ConversionReport
from antialias.conversion import convert as convert
from antialias.conversion import convert_with_report as convert_with_report
from antialias.filters import get_kernel as get_kernel
from antialias.filters import get_taps as get_taps
from antialias.layers.blurpool import *  # noqa: F403  (BlurPool*d, MaxBlurPool*d, BlurConv*d)
from antialias.layers.upsample import *  # noqa: F403  (BlurUpsample*d)
from antialias.models import get_model as get_model
from antialias.models import list_models as list_models

__all__ = [
    *layers.blurpool.__all__,
    *layers.upsample.__all__,
    "__version__",
    "filters",
    "layers",
    "get_kernel",
    "get_taps",
    "ConversionReport",
    "convert",
    "convert_with_report",
    "get_model",
    "list_models",
]
