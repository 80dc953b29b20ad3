"""Measure how shift-invariant a classifier is: the paper's protocols, the later ones, robustness.

Accuracy (:mod:`antialias.metrics.accuracy`): :func:`accuracy`, along a diagonal shift
(:func:`diagonal_shift`, Figure 1) and under the worst shift (:func:`worst_case_accuracy`). Shift
consistency (:mod:`antialias.metrics.shift`): :func:`crop_consistency` (the paper's consistency),
:func:`circular_consistency`, :func:`fractional_consistency`. Internal equivariance
(:mod:`antialias.metrics.equivariance`): :func:`feature_equivariance`. Robustness: ImageNet-C
(:mod:`antialias.metrics.imagenet_c`: :func:`imagenet_c_errors`, :func:`imagenet_c_scores`,
on-the-fly :func:`corruption_errors`) and ImageNet-P (:mod:`antialias.metrics.imagenet_p`:
:func:`imagenet_p_rates`, :func:`imagenet_p_scores`); their data sets live in
:mod:`antialias.datasets`. The metric table
(:data:`METRIC_TABLE`, :func:`get_metric`, :mod:`antialias.metrics.table`) names every metric with
its options, input, score, table rows and plot, for applications. Plots live in
:mod:`antialias.metrics.plots` (needs matplotlib; imported on use).
"""

from antialias.metrics._common import NonFiniteLogitsError as NonFiniteLogitsError
from antialias.metrics.accuracy import AccuracyResult as AccuracyResult
from antialias.metrics.accuracy import DiagonalResult as DiagonalResult
from antialias.metrics.accuracy import WorstCaseResult as WorstCaseResult
from antialias.metrics.accuracy import accuracy as accuracy
from antialias.metrics.accuracy import diagonal_shift as diagonal_shift
from antialias.metrics.accuracy import evaluate_accuracy as evaluate_accuracy
from antialias.metrics.accuracy import worst_case_accuracy as worst_case_accuracy
from antialias.metrics.equivariance import EquivarianceResult as EquivarianceResult
from antialias.metrics.equivariance import feature_equivariance as feature_equivariance
from antialias.metrics.imagenet_c import ALEXNET_C_ERRORS as ALEXNET_C_ERRORS
from antialias.metrics.imagenet_c import IMAGENET_C_CORRUPTIONS as IMAGENET_C_CORRUPTIONS
from antialias.metrics.imagenet_c import ImageNetCResult as ImageNetCResult
from antialias.metrics.imagenet_c import corruption_errors as corruption_errors
from antialias.metrics.imagenet_c import imagenet_c_errors as imagenet_c_errors
from antialias.metrics.imagenet_c import imagenet_c_scores as imagenet_c_scores
from antialias.metrics.imagenet_p import IMAGENET_P_PERTURBATIONS as IMAGENET_P_PERTURBATIONS
from antialias.metrics.imagenet_p import ImageNetPResult as ImageNetPResult
from antialias.metrics.imagenet_p import flip_probability as flip_probability
from antialias.metrics.imagenet_p import imagenet_p_rates as imagenet_p_rates
from antialias.metrics.imagenet_p import imagenet_p_scores as imagenet_p_scores
from antialias.metrics.imagenet_p import top5_distance as top5_distance
from antialias.metrics.shift import ConsistencyResult as ConsistencyResult
from antialias.metrics.shift import circular_consistency as circular_consistency
from antialias.metrics.shift import crop_consistency as crop_consistency
from antialias.metrics.shift import fractional_consistency as fractional_consistency
from antialias.metrics.shift import fractional_shift as fractional_shift
from antialias.metrics.table import METRIC_TABLE as METRIC_TABLE
from antialias.metrics.table import MetricSpec as MetricSpec
from antialias.metrics.table import get_metric as get_metric
from antialias.metrics.table import list_metrics as list_metrics

__all__ = [
    "ALEXNET_C_ERRORS",
    "IMAGENET_C_CORRUPTIONS",
    "IMAGENET_P_PERTURBATIONS",
    "METRIC_TABLE",
    "AccuracyResult",
    "ConsistencyResult",
    "DiagonalResult",
    "EquivarianceResult",
    "ImageNetCResult",
    "ImageNetPResult",
    "MetricSpec",
    "NonFiniteLogitsError",
    "WorstCaseResult",
    "accuracy",
    "circular_consistency",
    "corruption_errors",
    "crop_consistency",
    "diagonal_shift",
    "evaluate_accuracy",
    "feature_equivariance",
    "flip_probability",
    "fractional_consistency",
    "fractional_shift",
    "get_metric",
    "imagenet_c_errors",
    "imagenet_c_scores",
    "imagenet_p_rates",
    "imagenet_p_scores",
    "list_metrics",
    "top5_distance",
    "worst_case_accuracy",
]
