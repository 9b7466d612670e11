"""Low-rank factorization (technique layer): a weight matrix replaced by its truncated SVD.

The lecture's slide "What is low-rank factorization?" (decomposing large dense weight matrices into
smaller, lower-rank matrices) maps to:

* :mod:`~tinyprune.lowrank.svd`: the singular values and their energy curve
  (:func:`singular_values`, :func:`energy_curve`), the best rank-r approximation
  (:func:`low_rank_approximation`, Eckart-Young), its balanced factors (:func:`svd_factors`) and
  the rank rules (:func:`choose_rank`: explicit, kept energy :func:`energy_rank`, target
  reduction :func:`reduction_rank`);
* :mod:`~tinyprune.lowrank.factorize`: a Linear or Conv2d layer replaced by two thinner layers
  of the same types (:func:`factorize_linear`, :func:`factorize_conv2d`), chosen layers of a model
  in one call (:func:`factorize_model`, a new model), and :func:`factorized_layers` to inspect it.

Fine-tune the factorized model with :func:`tinyprune.nn.train.fit` (or distil it from its dense
parent with :func:`tinyprune.distill.distill`). Ranks come from a rule (energy, target reduction)
or from a sensitivity scan with the rank as the knob (:mod:`~tinyprune.lowrank.rank_sensitivity`:
:func:`rank_sensitivity_scan`, then ``ranks_for_threshold(T)``).
"""

from .factorize import (
    FACTOR_SUFFIXES,
    factorize_conv2d,
    factorize_layer,
    factorize_linear,
    factorize_model,
    factorized_layers,
    weight_matrix,
)
from .rank_sensitivity import RankSensitivity, rank_sensitivity_scan
from .svd import (
    choose_rank,
    energy_curve,
    energy_rank,
    energy_rank_naive,
    low_rank_approximation,
    reduction_rank,
    singular_values,
    svd_factors,
)

__all__ = [
    "RankSensitivity",
    "rank_sensitivity_scan",
    "FACTOR_SUFFIXES",
    "choose_rank",
    "energy_curve",
    "energy_rank",
    "energy_rank_naive",
    "factorize_conv2d",
    "factorize_layer",
    "factorize_linear",
    "factorize_model",
    "factorized_layers",
    "low_rank_approximation",
    "reduction_rank",
    "singular_values",
    "svd_factors",
    "weight_matrix",
]
