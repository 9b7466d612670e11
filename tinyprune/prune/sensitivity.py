r"""Finding pruning ratios: per-layer sensitivity analysis (the lecture's "Finding Pruning Ratios").

Layers differ in how much pruning they tolerate (the first layer is often the most sensitive, the
big fully connected layers the most redundant), so each layer gets its own ratio. The slide's
recipe:

1. pick a layer :math:`L_i`; prune only :math:`L_i` with ratio :math:`r \in \{0, 0.1, \dots, 0.9\}`
   and record the accuracy degradation :math:`\Delta Acc_r^i = Acc_{dense} - Acc_r^i`
   (:func:`sensitivity_scan`; positive = accuracy lost);
2. repeat for all layers;
3. pick a degradation threshold :math:`T`: each layer gets the largest :math:`r` with
   :math:`\Delta Acc_r^i \le T`, and :math:`T` is the smallest value whose overall pruning rate (by
   weight count) reaches the target (:func:`select_threshold`, an exact search over the measured
   :math:`\Delta Acc` values); :func:`apply_ratios` turns the chosen ratios into masks.

The accuracies are measured on a **validation split carved from the training data**
(:func:`validation_split`), never on the test set: the ratios are a choice made from data, and
choosing them on the test set would make the test accuracy of the pruned model an optimistic,
tuned figure instead of an estimate of its accuracy on unseen data. The split uses a fixed seed so
that the table is reproducible.

Speed: the reference :func:`sensitivity_scan_naive` prunes, evaluates the whole network and
restores, point by point. :func:`sensitivity_scan` gives the same accuracies faster: pruning layer
:math:`L_i` does not change the activations below it, so for each layer the network's prefix runs
once per batch and only the suffix from :math:`L_i` up runs once per ratio (and :math:`r = 0`
is the unpruned baseline, evaluated once).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace

import numpy as np

from ..nn.model import Sequential
from ..nn.train import evaluate
from ..nn.validation import as_generator, check_int
from .model_pruning import prune_model

DEFAULT_RATIOS = tuple(round(0.1 * k, 1) for k in range(10))  # 0.0, 0.1, ..., 0.9


# --------------------------------------------------------------------------- data
def _check_xy(X, y, xname="X", yname="y"):
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{xname}: expected a numpy.ndarray, got {type(X).__name__}")
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
        got = y.dtype if isinstance(y, np.ndarray) else type(y).__name__
        raise TypeError(f"{yname}: expected an ndarray of integer labels, got {got}")
    if X.ndim < 1 or X.shape[0] == 0 or y.shape != (X.shape[0],):
        raise ValueError(f"{yname}: expected shape ({X.shape[0] if X.ndim else '?'},) matching "
                         f"{xname} {X.shape}, got {y.shape}")


def validation_split(X, y, fraction, rng):
    """Split ``(X, y)`` into a training part and a validation part, by a seeded permutation.

    Parameters
    ----------
    X : ndarray (N, ...)
    y : ndarray (N,), integer labels
    fraction : float in (0, 1)
        Share of the samples that go to validation: ``round(fraction * N)`` clamped to
        ``[1, N - 1]``.
    rng : numpy.random.Generator or int
        Draws the permutation; the same seed gives the same split.

    Returns
    -------
    X_train, y_train, X_val, y_val : ndarray
        New arrays (the inputs are not modified); each part keeps the original sample order.
    """
    _check_xy(X, y)
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(fraction, numbers.Real) \
            or not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction: expected a number in (0, 1), got {fraction!r}")
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"X: expected at least 2 samples to split, got {n}")
    n_val = min(max(round(float(fraction) * n), 1), n - 1)
    perm = as_generator(rng).permutation(n)  # (N,)
    is_val = np.zeros(n, dtype=bool)
    is_val[perm[:n_val]] = True
    return X[~is_val], y[~is_val], X[is_val], y[is_val]


# --------------------------------------------------------------------------- result
@dataclass
class SensitivityResult:
    """The sensitivity table and (after :meth:`choose`) the threshold and per-layer ratios.

    Attributes
    ----------
    layers : list of str
        Weight names scanned (``"conv1.weight"``), in model order.
    ratios : list of float
        The pruning ratios r (columns of the table).
    accuracy : ndarray (n_layers, n_ratios), float64
        Validation accuracy with only ``layers[i]`` pruned at ``ratios[j]``.
    baseline : float
        Validation accuracy of the unpruned model.
    sizes : dict[str, int]
        Number of weights per layer (for the overall pruning rate).
    criterion, granularity : str
        How each point was pruned.
    n_val : int
        Validation samples.
    threshold : float or None
        T chosen by :meth:`choose`.
    chosen : dict[str, float] or None
        Ratio per layer for ``threshold``.
    target_sparsity, pruning_rate : float or None
        Requested and reached overall pruning rate (by weight count).
    seconds : float or None
        Wall time of the scan.
    """

    layers: list
    ratios: list
    accuracy: np.ndarray
    baseline: float
    sizes: dict
    criterion: str = "l1"
    granularity: str = "element"
    n_val: int = 0
    threshold: float | None = None
    chosen: dict | None = None
    target_sparsity: float | None = None
    pruning_rate: float | None = None
    seconds: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def delta(self) -> np.ndarray:
        r""":math:`\Delta Acc_r^i = Acc_{dense} - Acc_r^i`, shape (n_layers, n_ratios)."""
        return self.baseline - self.accuracy

    def choose(self, target_sparsity) -> SensitivityResult:
        """A copy with the threshold T and the ratios that reach ``target_sparsity``
        (:func:`select_threshold`)."""
        sizes = [self.sizes[k] for k in self.layers]
        t, ratios, rate = select_threshold(self.delta, self.ratios, sizes, target_sparsity)
        return replace(self, threshold=t, chosen=dict(zip(self.layers, ratios, strict=True)),
                       target_sparsity=float(target_sparsity), pruning_rate=rate)

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every field (arrays as nested lists)."""
        return {"layers": list(self.layers), "ratios": [float(r) for r in self.ratios],
                "accuracy": self.accuracy.tolist(), "delta": self.delta.tolist(),
                "baseline": float(self.baseline), "sizes": {k: int(v) for k, v in self.sizes.items()},
                "criterion": self.criterion, "granularity": self.granularity,
                "n_val": int(self.n_val), "threshold": self.threshold,
                "chosen": self.chosen, "target_sparsity": self.target_sparsity,
                "pruning_rate": self.pruning_rate, "seconds": self.seconds, **self.extra}


# --------------------------------------------------------------------------- threshold
def ratios_for_threshold(delta, ratios, threshold) -> np.ndarray:
    r"""Per layer, the largest ratio whose degradation is at most ``threshold``.

    .. math:: r_i(T) = \max\{r_j : \Delta Acc_{r_j}^i \le T\}

    (0.0 for a layer with no such point). It never decreases as T grows.

    Parameters
    ----------
    delta : ndarray (n_layers, n_ratios)
    ratios : sequence of float, length n_ratios
    threshold : float

    Returns
    -------
    ndarray (n_layers,), float64
    """
    r = np.asarray(ratios, dtype=np.float64)  # (R,)
    ok = np.asarray(delta) <= threshold  # (L, R)
    return np.where(ok, r[None, :], 0.0).max(axis=1, initial=0.0)  # (L,)


def select_threshold(delta, ratios, sizes, target_sparsity):
    r"""The smallest degradation threshold T whose per-layer ratios reach ``target_sparsity``.

    The overall pruning rate of a threshold is :math:`\rho(T) = \sum_i r_i(T)\, n_i / \sum_i n_i`
    with :math:`r_i(T)` from :func:`ratios_for_threshold` and :math:`n_i` the layer's weight count.
    :math:`\rho` is a non-decreasing step function that changes only at the measured values
    :math:`\Delta Acc_r^i`, so the exact answer is the smallest measured value with
    :math:`\rho \ge` target (no bisection tolerance needed).

    Parameters
    ----------
    delta : array_like (n_layers, n_ratios), finite
        Degradations :math:`\Delta Acc_r^i` (accuracy lost; may be negative).
    ratios : sequence of float in [0, 1], length n_ratios
    sizes : sequence of int > 0, length n_layers
        Weights per layer.
    target_sparsity : float in [0, 1]

    Returns
    -------
    threshold : float
    chosen : list of float
        Ratio per layer.
    rate : float
        :math:`\rho(T)` (>= target).

    Raises
    ------
    ValueError
        When even the largest measured degradation does not reach the target (the message gives
        the largest reachable rate), or on malformed input.
    """
    delta = np.asarray(delta, dtype=np.float64)
    r = np.asarray(ratios, dtype=np.float64)
    n = np.asarray(sizes, dtype=np.float64)
    if delta.ndim != 2 or delta.shape[1] != r.shape[0] or r.ndim != 1:
        raise ValueError(f"delta: expected shape (n_layers, {r.shape[0] if r.ndim == 1 else '?'})"
                         f" matching ratios, got {delta.shape}")
    if delta.size == 0:
        raise ValueError("delta: expected at least one layer and one ratio, got none")
    if not np.isfinite(delta).all():
        raise ValueError("delta: expected finite values, found NaN or infinity")
    if not ((r >= 0.0) & (r <= 1.0)).all():
        raise ValueError(f"ratios: expected values in [0, 1], got {r.tolist()}")
    if n.shape != (delta.shape[0],) or not (n > 0).all():
        raise ValueError(f"sizes: expected {delta.shape[0]} positive weight counts, "
                         f"got {np.asarray(sizes).tolist()}")
    if isinstance(target_sparsity, (bool, np.bool_)) or not isinstance(target_sparsity,
                                                                        numbers.Real):
        raise TypeError(f"target_sparsity: expected a float in [0, 1], got {target_sparsity!r}")
    if not 0.0 <= float(target_sparsity) <= 1.0:
        raise ValueError(f"target_sparsity: expected a float in [0, 1], got {target_sparsity}")
    candidates = np.unique(delta)  # sorted
    chosen = np.stack([ratios_for_threshold(delta, r, t) for t in candidates])  # (K, L)
    rates = chosen @ n / n.sum()  # (K,)
    reach = np.flatnonzero(rates >= float(target_sparsity) - 1e-12)
    if reach.size == 0:
        raise ValueError(f"target_sparsity: expected at most {rates[-1]:.4f}, the rate reached "
                         f"with every layer at its largest measured ratio, got {target_sparsity}")
    k = reach[0]
    return float(candidates[k]), [float(v) for v in chosen[k]], float(rates[k])


def apply_ratios(model, chosen, *, criterion="l1", granularity="element", p=None, rng=None,
                 vector_size=None) -> dict[str, np.ndarray]:
    """Masks pruning each layer of ``chosen`` to its ratio (``relative_to="total"``).

    Parameters
    ----------
    model : Sequential
        Read only; apply the masks with :func:`~tinyprune.prune.masked.set_masks_`.
    chosen : dict[str, float]
        Weight name -> ratio (``SensitivityResult.chosen``).
    criterion, granularity, p, rng, vector_size
        As in :func:`~tinyprune.prune.model_pruning.prune_model` (use the scan's).

    Returns
    -------
    dict[str, ndarray of bool]
    """
    if not isinstance(chosen, dict):
        raise TypeError(f"chosen: expected a dict name -> ratio, got {type(chosen).__name__}")
    rng = None if rng is None else as_generator(rng)
    masks = {}
    for name, ratio in chosen.items():
        masks.update(prune_model(model, [name], float(ratio), criterion=criterion,
                                 granularity=granularity, relative_to="total", p=p, rng=rng,
                                 vector_size=vector_size))
    return masks


# --------------------------------------------------------------------------- scans
def _check_scan_args(model, X, y, layers, ratios, batch_size):
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    _check_xy(X, y, "X_val", "y_val")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    weights = [k for k, v in model.params.items() if k.endswith(".weight") and v.ndim >= 2]
    if layers is None:
        names = weights
    else:
        layers = [layers] if isinstance(layers, str) else list(layers)
        names = [t if t in model.params else f"{t}.weight" for t in layers]
        bad = [t for t, nm in zip(layers, names, strict=True) if nm not in weights]
        if bad or not names:
            raise ValueError(f"layers: expected names among {weights}, got {layers!r}")
    if isinstance(ratios, (str, bytes)) or not hasattr(ratios, "__len__") or len(ratios) == 0:
        raise TypeError(f"ratios: expected a non-empty sequence of floats in [0, 1], "
                        f"got {ratios!r}")
    rs = []
    for r in ratios:
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Real) \
                or not 0.0 <= float(r) <= 1.0:
            raise ValueError(f"ratios: expected floats in [0, 1], got {list(ratios)!r}")
        rs.append(float(r))
    return names, rs, batch_size


def _point_masks(work, name, ratios, kw):
    """Masks of ``name`` (and its bias for channel pruning) at every ratio."""
    rng = None if kw.get("rng") is None else as_generator(kw["rng"])
    return [prune_model(work, [name], r, relative_to="total", **{**kw, "rng": rng})
            for r in ratios]


def _set_pruned_(work, original, masks):
    """Parameters of ``work`` <- ``original * mask`` for the masked names."""
    params = work.params
    for k, m in masks.items():
        np.multiply(original[k], m, out=params[k])


def sensitivity_scan_naive(model, X_val, y_val, *, layers=None, ratios=DEFAULT_RATIOS,
                           criterion="l1", granularity="element", p=None, rng=None,
                           vector_size=None, batch_size=1000) -> SensitivityResult:
    """Reference scan: for every layer and ratio, prune only that layer, evaluate the whole
    network on the validation data, restore. Same arguments and result as
    :func:`sensitivity_scan`, which it is tested to equal exactly."""
    names, ratios, batch_size = _check_scan_args(model, X_val, y_val, layers, ratios, batch_size)
    kw = {"criterion": criterion, "granularity": granularity, "p": p, "rng": rng,
          "vector_size": vector_size}
    work = model.copy()  # the caller's model is never touched
    original = {k: v.copy() for k, v in work.params.items()}
    baseline = evaluate(work, X_val, y_val, batch_size=batch_size)["accuracy"]
    acc = np.empty((len(names), len(ratios)))  # (L, R)
    for i, name in enumerate(names):
        for j, masks in enumerate(_point_masks(work, name, ratios, kw)):
            _set_pruned_(work, original, masks)
            acc[i, j] = evaluate(work, X_val, y_val, batch_size=batch_size)["accuracy"]
            for k in masks:  # restore exactly
                work.params[k][...] = original[k]
    sizes = {k: int(model.params[k].size) for k in names}
    return SensitivityResult(names, ratios, acc, float(baseline), sizes, str(criterion),
                             granularity, int(X_val.shape[0]))


def _split_at(work, layer_name):
    """Two Sequentials sharing ``work``'s modules: the layers before ``layer_name`` and the rest
    (same ``fast`` and chunking settings, so each runs exactly as inside ``work``)."""
    items = list(work.layers.items())
    i = [ln for ln, _ in items].index(layer_name)
    parts = []
    for chunk in (items[:i], items[i:]):
        if not chunk:
            parts.append(None)
            continue
        seq = Sequential(chunk, name=work.name, fast=work.fast)
        seq.inference_chunk = work.inference_chunk
        parts.append(seq)
    return parts


def sensitivity_scan(model, X_val, y_val, *, layers=None, ratios=DEFAULT_RATIOS, criterion="l1",
                     granularity="element", p=None, rng=None, vector_size=None,
                     batch_size=1000, fast=True) -> SensitivityResult:
    r"""Validation accuracy with one layer pruned at a time, for every layer and ratio.

    For each layer :math:`L_i` in ``layers`` and each :math:`r` in ``ratios``, only :math:`L_i` is
    pruned to ratio :math:`r` (``round(r * n_units)`` units, ``relative_to="total"``, with the
    given criterion and granularity of :func:`~tinyprune.prune.select.prune_weight`; existing
    ``model.masks`` are kept) and the model is evaluated on ``(X_val, y_val)``.

    Fast path of :func:`sensitivity_scan_naive` (tested equal): the activations entering
    :math:`L_i` do not depend on :math:`L_i`'s weights, so each batch runs through the layers
    below :math:`L_i` once, then through :math:`L_i` and above once per ratio; the ratio 0 is the
    baseline, computed once. Works on a copy: ``model`` is never modified.

    Parameters
    ----------
    model : Sequential
    X_val : ndarray (N, ...), the model's dtype
        Validation inputs (carve them from the training data: :func:`validation_split`).
    y_val : ndarray (N,), integer labels
    layers : list of str, optional
        Weight or layer names; default every Linear/Conv2d weight.
    ratios : sequence of float in [0, 1]
        Default 0.0, 0.1, ..., 0.9.
    criterion, granularity, p, rng, vector_size
        As in :func:`~tinyprune.prune.model_pruning.prune_model`; an int ``rng`` is re-seeded for
        each layer so that each layer's points are reproducible on their own.
    batch_size : int
        Samples per forward pass.
    fast : bool
        False runs the reference :func:`sensitivity_scan_naive` instead (same result).

    Returns
    -------
    SensitivityResult
        Call :meth:`SensitivityResult.choose` for the threshold and ratios of a target sparsity.

    Examples
    --------
    >>> from tinyprune.nn import lenet_300_100
    >>> x = np.random.default_rng(0).random((50, 1, 28, 28), dtype=np.float32)
    >>> y = np.arange(50) % 10
    >>> res = sensitivity_scan(lenet_300_100(), x, y, ratios=[0.0, 0.5, 0.9])
    >>> res.accuracy.shape
    (3, 3)
    """
    if not fast:
        return sensitivity_scan_naive(model, X_val, y_val, layers=layers, ratios=ratios,
                                      criterion=criterion, granularity=granularity, p=p, rng=rng,
                                      vector_size=vector_size, batch_size=batch_size)
    names, ratios, batch_size = _check_scan_args(model, X_val, y_val, layers, ratios, batch_size)
    kw = {"criterion": criterion, "granularity": granularity, "p": p, "rng": rng,
          "vector_size": vector_size}
    work = model.copy()
    original = {k: v.copy() for k, v in work.params.items()}
    baseline = evaluate(work, X_val, y_val, batch_size=batch_size)["accuracy"]
    n = X_val.shape[0]
    acc = np.empty((len(names), len(ratios)))  # (L, R)
    for i, name in enumerate(names):
        point_masks = _point_masks(work, name, ratios, kw)
        # points that change a weight (r = 0 does not: its accuracy is the baseline)
        todo = [j for j, m in enumerate(point_masks)
                if any(np.any(original[k][~mk]) for k, mk in m.items())]
        acc[i] = baseline
        prefix, suffix = _split_at(work, name.rpartition(".")[0])
        correct = np.zeros(len(ratios), dtype=np.int64)
        for s in range(0, n, batch_size):
            xb, yb = X_val[s:s + batch_size], y_val[s:s + batch_size]
            h = xb if prefix is None else prefix.forward(xb)  # input of L_i, computed once
            for j in todo:
                _set_pruned_(work, original, point_masks[j])
                logits = suffix.forward(h)  # (B, C)
                correct[j] += int((logits.argmax(axis=1) == yb).sum())
        for k in point_masks[0]:
            work.params[k][...] = original[k]
        acc[i, todo] = correct[todo] / n
    sizes = {k: int(model.params[k].size) for k in names}
    return SensitivityResult(names, ratios, acc, float(baseline), sizes, str(criterion),
                             granularity, int(n))


# --------------------------------------------------------------------------- report
def format_sensitivity(result: SensitivityResult) -> str:
    """Text table: one row per layer, validation accuracy per ratio; ``*`` marks the chosen
    ratio; the last lines give T and the overall pruning rate when chosen."""
    head = f"{'layer':<14}{'weights':>10} " + "".join(f"{'r=' + format(r, 'g'):>8}"
                                                      for r in result.ratios)
    lines = [f"validation accuracy (dense {result.baseline:.4f}, {result.n_val} samples, "
             f"{result.criterion}/{result.granularity})", head]
    for i, name in enumerate(result.layers):
        cells = []
        for j, r in enumerate(result.ratios):
            mark = "*" if result.chosen is not None and result.chosen[name] == r else " "
            cells.append(f"{result.accuracy[i, j]:>7.4f}{mark}")
        lines.append(f"{name:<14}{result.sizes[name]:>10,} " + "".join(cells))
    if result.threshold is not None:
        lines.append(f"T = {result.threshold:.4f} (accuracy drop); overall pruning rate "
                     f"{result.pruning_rate:.4f} >= target {result.target_sparsity:.4f}")
    return "\n".join(lines)
