"""Former home of the ImageNet-C/P scores and data sets; kept until ``antialias eval`` reads the metric table.

The formulas live in :mod:`antialias.metrics.imagenet_c` and :mod:`antialias.metrics.imagenet_p`,
the data sets and corruptions in :mod:`antialias.datasets`.
"""

from antialias.datasets import EXTRA_CORRUPTIONS as EXTRA_CORRUPTIONS
from antialias.datasets import IMAGENET_C_CORRUPTIONS as IMAGENET_C_CORRUPTIONS
from antialias.metrics.imagenet_c import corruption_errors as corruption_errors
from antialias.metrics.imagenet_c import imagenet_c_errors as imagenet_c_errors
from antialias.metrics.imagenet_c import imagenet_c_scores as imagenet_c_scores
from antialias.metrics.imagenet_p import imagenet_p_rates as imagenet_p_rates
from antialias.metrics.imagenet_p import imagenet_p_scores as imagenet_p_scores

__all__ = [
    "EXTRA_CORRUPTIONS",
    "IMAGENET_C_CORRUPTIONS",
    "corruption_errors",
    "imagenet_c_errors",
    "imagenet_c_scores",
    "imagenet_p_rates",
    "imagenet_p_scores",
]
