"""Figures of the lecture's slides (around layer: draws results of the technique packages,
which never draw themselves). Every function imports matplotlib only when called, returns a
``matplotlib.figure.Figure`` and accepts an ``ax`` (or ``axes``) to draw into.

================================================ =============================================
slide                                            function
================================================ =============================================
Pruning at different granularities               :func:`plot_granularity`
Weight distribution before / after pruning,      :func:`plot_weight_histogram`
linear quantization grid, k-means weight sharing
Finding pruning ratios (sensitivity analysis)    :func:`plot_sensitivity`
Accuracy vs sparsity / bits / rank / ratio       :func:`plot_accuracy_vs`
Overview: accuracy vs storage of every technique :func:`plot_tradeoff`
Low-rank factorization (singular values, energy) :func:`plot_spectrum`
The lottery ticket hypothesis                    :func:`plot_lottery`
Deep Compression (bytes stage by stage)          :func:`plot_storage_stages`
================================================ =============================================
"""

from .curves import plot_accuracy_vs, plot_tradeoff
from .pruning import (
    plot_granularity,
    plot_lottery,
    plot_sensitivity,
    plot_weight_histogram,
    weight_image,
)
from .spectrum import plot_spectrum
from .storage import plot_storage_stages

__all__ = [
    "plot_accuracy_vs",
    "plot_granularity",
    "plot_lottery",
    "plot_sensitivity",
    "plot_spectrum",
    "plot_storage_stages",
    "plot_tradeoff",
    "plot_weight_histogram",
    "weight_image",
]
