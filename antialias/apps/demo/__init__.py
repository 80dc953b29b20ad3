"""The ``antialias demo`` experiment: aliasing makes a small CNN shift-variant; blur-pool and APS fix it.

A few-minute version of the paper's central experiment (Zhang, ICML 2019, Figure 1 and Table 1),
runnable on a laptop CPU without downloading anything:

1. Data (:func:`load_data`): scikit-learn's handwritten digits (1,797 real 8x8 scans, bundled inside
   the scikit-learn wheel) on a 32x32 canvas, or torchvision's CIFAR-10 (the paper's CIFAR setting).
2. Models (:class:`DemoNet`): a small CNN with circular padding, one variant per downsampling method
   (:func:`make_variants`, :func:`parse_methods`), all trained with the same seeds and *without*
   shift augmentation (:func:`train_model`).
3. Evaluation (:func:`evaluate_model`, through :mod:`antialias.metrics`): clean accuracy, accuracy
   and consistency under shifts, the probability of the correct class along a diagonal shift (the
   paper's Figure 1); mean and spread over the seeds.

Convention:
    Shifts span ``-max_shift..max_shift`` pixels per axis (8 by default), drawn uniformly and
    independently per axis, image and view. Circular protocol:
    :func:`~antialias.metrics.circular_consistency` rolls the 32x32 test images, first rolled by
    ``-max_shift``, by amounts from ``{0, ..., 2 * max_shift}``. Crop protocol:
    :func:`~antialias.metrics.crop_consistency` and :func:`~antialias.metrics.diagonal_shift` take
    32x32 crops at offsets ``0..2 * max_shift`` of the test images padded by ``max_shift`` pixels with
    the background value; offset ``max_shift`` is the unshifted image (reported as shift 0). On the
    digits the 16x16 digit stays whole inside every crop, so a crop shift there moves the digit over
    a constant background: the same views as the circular protocol, drawn independently.

Why this setting (measured): with zero padding and crop shifts the baseline and the
anti-aliased nets were about equally (in)consistent, and with random-crop training both reached
about 99.5%, leaving nothing to show. Circular padding isolates what the paper is about: the
subsampling.

Example:
    >>> from antialias.apps.demo import DemoConfig, format_table, run_demo
    >>> result = run_demo(DemoConfig(seeds=(0,), epochs=1, filters=(4,), train_size=64,
    ...                              test_size=16, passes=1, progress=False))  # doctest: +SKIP
    >>> print(format_table(result))  # doctest: +SKIP

Layout: :mod:`.config` (what to train), :mod:`.data`, :mod:`.model`, :mod:`.training` (one
model), :mod:`.experiment` (all of them, in worker processes), :mod:`.report` (table, JSON, plots).
The package uses only the library's public names.
"""

from antialias.apps.demo.config import COMPARISON_METRICS as COMPARISON_METRICS
from antialias.apps.demo.config import DATASETS as DATASETS
from antialias.apps.demo.config import METRICS as METRICS
from antialias.apps.demo.config import MODELS as MODELS
from antialias.apps.demo.config import DemoConfig as DemoConfig
from antialias.apps.demo.config import Variant as Variant
from antialias.apps.demo.config import check_models as check_models
from antialias.apps.demo.config import make_variants as make_variants
from antialias.apps.demo.config import parse_methods as parse_methods
from antialias.apps.demo.data import DemoData as DemoData
from antialias.apps.demo.data import load_data as load_data
from antialias.apps.demo.experiment import run_demo as run_demo
from antialias.apps.demo.model import DemoNet as DemoNet
from antialias.apps.demo.model import DemoViT as DemoViT
from antialias.apps.demo.report import format_table as format_table
from antialias.apps.demo.report import write_outputs as write_outputs
from antialias.apps.demo.training import evaluate_model as evaluate_model
from antialias.apps.demo.training import train_model as train_model

__all__ = [
    "COMPARISON_METRICS",
    "DATASETS",
    "METRICS",
    "MODELS",
    "DemoConfig",
    "DemoData",
    "DemoNet",
    "DemoViT",
    "Variant",
    "check_models",
    "evaluate_model",
    "format_table",
    "load_data",
    "make_variants",
    "parse_methods",
    "run_demo",
    "train_model",
    "write_outputs",
]
