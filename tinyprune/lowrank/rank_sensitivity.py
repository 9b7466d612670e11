r"""Rank selection by sensitivity: the lecture's sensitivity analysis with the rank as the knob.

As for pruning ratios ("Finding pruning ratios"), each layer :math:`L_i` is changed alone, here
replaced by its rank-:math:`r` factorization for each :math:`r` in a list, and the validation
accuracy is recorded: :math:`\Delta Acc_r^i = Acc_{dense} - Acc_r^i`. For a degradation threshold
:math:`T`, each layer gets the **smallest** rank whose drop is at most :math:`T` (a smaller rank
saves more weights); a layer with no such rank stays dense. Evaluate on a validation split carved
from the training data, never on the test set, so that the test accuracy of the final model stays
an honest estimate.

* :func:`rank_sensitivity_scan` -- the table (one :func:`~tinyprune.lowrank.factorize_model`
  call and one evaluation per point);
* :meth:`RankSensitivity.ranks_for_threshold` -- the ranks for a threshold :math:`T`, ready for
  ``factorize_model(model, ranks)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.model import Sequential
from ..nn.train import evaluate
from ..nn.validation import check_int, check_real
from .factorize import factorize_model, weight_matrix

__all__ = ["RankSensitivity", "rank_sensitivity_scan"]


@dataclass
class RankSensitivity:
    """Validation accuracy with one layer factorized at a time.

    Attributes
    ----------
    layers : list of str
    ranks : list of int
    accuracy : ndarray (n_layers, n_ranks), float
        ``accuracy[i, j]``: layer ``layers[i]`` at rank ``ranks[j]`` (NaN where the rank is above
        ``min(m, n)`` of that layer, or would not save weights).
    baseline : float
        Accuracy of the dense model on the same images.
    weights_saved : ndarray (n_layers, n_ranks), int
        Dense weights minus the factors' weights, ``m n - r (m + n)`` (0 where NaN above).
    """

    layers: list
    ranks: list
    accuracy: np.ndarray
    baseline: float
    weights_saved: np.ndarray

    @property
    def drop(self) -> np.ndarray:
        """:math:`\\Delta Acc` (n_layers, n_ranks): dense accuracy minus factorized accuracy."""
        return self.baseline - self.accuracy

    def ranks_for_threshold(self, threshold) -> dict[str, int]:
        """``{layer: rank}``: per layer the smallest rank whose drop is ``<= threshold``; layers
        where no rank qualifies are left out (they stay dense)."""
        t = check_real(threshold, "threshold")
        chosen = {}
        for i, name in enumerate(self.layers):
            ok = [r for j, r in enumerate(self.ranks)
                  if np.isfinite(self.accuracy[i, j]) and self.drop[i, j] <= t]
            if ok:
                chosen[name] = min(ok)
        return chosen

    def to_dict(self) -> dict:
        return {"layers": list(self.layers), "ranks": list(self.ranks),
                "baseline": self.baseline,
                "accuracy": [[None if np.isnan(a) else float(a) for a in row]
                             for row in self.accuracy],
                "weights_saved": self.weights_saved.tolist()}


def rank_sensitivity_scan(model, X_val, y_val, layers, ranks, *,
                          batch_size=1000) -> RankSensitivity:
    """Factorize each layer alone at each rank and record the validation accuracy.

    Parameters
    ----------
    model : Sequential
        Not modified.
    X_val : ndarray (N, ...), y_val : ndarray (N,) of int
        A validation split of the training data (not the test set).
    layers : list of str
        Linear / Conv2d layer names (``["fc1", "conv2"]``).
    ranks : list of int, each ``>= 1``
        Ranks to try; a rank above ``min(m, n)`` of a layer, or one whose factors would hold as
        many weights as the dense layer, is recorded as NaN for that layer.
    batch_size : int

    Returns
    -------
    RankSensitivity

    Examples
    --------
    >>> import numpy as np
    >>> from tinyprune.nn import lenet_300_100
    >>> m = lenet_300_100()
    >>> x = np.random.default_rng(0).standard_normal((50, 1, 28, 28)).astype(np.float32)
    >>> y = m(x).argmax(axis=1)  # the dense model is right on every image
    >>> res = rank_sensitivity_scan(m, x, y, ["fc1"], [4, 64])
    >>> res.baseline, res.ranks_for_threshold(0.5) == {"fc1": 4}
    (1.0, True)
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"layers: expected a non-empty list of layer names, got {layers!r}")
    if not isinstance(ranks, (list, tuple)) or not ranks:
        raise ValueError(f"ranks: expected a non-empty list of ranks, got {ranks!r}")
    ranks = [check_int(r, "ranks", minimum=1) for r in ranks]
    shapes = {}
    for name in layers:
        if name not in model.layers:
            raise ValueError(f"layers: no layer named {name!r}; layers: {list(model.layers)}")
        shapes[name] = weight_matrix(model[name]).shape  # (m, n); raises for other layer types
    baseline = evaluate(model, X_val, y_val, batch_size=batch_size)["accuracy"]
    accuracy = np.full((len(layers), len(ranks)), np.nan)
    saved = np.zeros((len(layers), len(ranks)), dtype=np.int64)
    for i, name in enumerate(layers):
        m, n = shapes[name]
        for j, r in enumerate(ranks):
            if r > min(m, n) or r * (m + n) >= m * n:
                continue  # not a valid or not a saving factorization of this layer
            small = factorize_model(model, {name: r})
            accuracy[i, j] = evaluate(small, X_val, y_val, batch_size=batch_size)["accuracy"]
            saved[i, j] = m * n - r * (m + n)
    return RankSensitivity(list(layers), ranks, accuracy, float(baseline), saved)
