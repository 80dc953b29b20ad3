"""antialias: make convolutional networks shift-invariant again.

Blur-pool layers (Zhang, ICML 2019), an anti-aliased model zoo with torchvision's parameter names, a
one-call converter for any CNN, and metrics that measure shift-invariance.
"""

__version__ = "0.1.0"

from antialias import filters as filters
from antialias import layers as layers
from antialias.convert import ConversionReport as ConversionReport
from antialias.convert import convert as convert
from antialias.convert import convert_with_report as convert_with_report
from antialias.filters import get_kernel as get_kernel
from antialias.filters import get_taps as get_taps
from antialias.layers import BlurConv1d as BlurConv1d
from antialias.layers import BlurConv2d as BlurConv2d
from antialias.layers import BlurConv3d as BlurConv3d
from antialias.layers import BlurPool1d as BlurPool1d
from antialias.layers import BlurPool2d as BlurPool2d
from antialias.layers import BlurPool3d as BlurPool3d
from antialias.layers import BlurUpsample1d as BlurUpsample1d
from antialias.layers import BlurUpsample2d as BlurUpsample2d
from antialias.layers import BlurUpsample3d as BlurUpsample3d
from antialias.layers import MaxBlurPool1d as MaxBlurPool1d
from antialias.layers import MaxBlurPool2d as MaxBlurPool2d
from antialias.layers import MaxBlurPool3d as MaxBlurPool3d
from antialias.models import get_model as get_model
from antialias.models import list_models as list_models

__all__ = [
    "__version__",
    "filters",
    "layers",
    "get_kernel",
    "get_taps",
    "BlurConv1d",
    "BlurConv2d",
    "BlurConv3d",
    "BlurPool1d",
    "BlurPool2d",
    "BlurPool3d",
    "BlurUpsample1d",
    "BlurUpsample2d",
    "BlurUpsample3d",
    "MaxBlurPool1d",
    "MaxBlurPool2d",
    "MaxBlurPool3d",
    "ConversionReport",
    "convert",
    "convert_with_report",
    "get_model",
    "list_models",
]
