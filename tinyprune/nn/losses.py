r"""Softmax and the softmax cross-entropy loss (forward/backward pair).

Every function subtracts the row maximum before exponentiating (the log-sum-exp trick), so logits
of any finite magnitude (``±1e4`` and beyond, float32 or float64) give finite results.

For logits :math:`z \in \mathbb{R}^{N \times C}` and integer labels :math:`y \in \{0..C-1\}^N`:

.. math::

    \log p_{ic} = z_{ic} - m_i - \log \sum_k e^{z_{ik} - m_i}, \qquad m_i = \max_k z_{ik}

    L = -\frac{1}{N} \sum_i \log p_{i y_i}, \qquad
    \frac{\partial L}{\partial z_{ic}} = \frac{1}{N} (p_{ic} - [c = y_i])

Reference: Goodfellow, Bengio & Courville, *Deep Learning* (2016), sections 4.1 and 6.2.2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import check_float_array

__all__ = [
    "Batch",
    "CrossEntropyLoss",
    "Loss",
    "cross_entropy",
    "log_softmax",
    "softmax",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
]


def _check_logits(logits, name="logits"):
    check_float_array(logits, name, ndim=2)
    n, c = logits.shape
    if n == 0 or c == 0:
        raise ValueError(f"{name}: expected a non-empty (N, C) array, got shape {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    return logits


def _check_labels(y, n, c, name="y"):
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of integer class labels, "
                        f"got {type(y).__name__}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer dtype, got {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of shape ({n},), got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per row of logits), got {y.shape[0]}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= c:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name}: labels must lie in [0, {c}) for {c} classes, found {bad}")
    return y


def log_softmax(logits):
    r"""Row-wise log-softmax, computed stably.

    Parameters
    ----------
    logits : ndarray (N, C), float32 or float64, finite

    Returns
    -------
    ndarray (N, C), same dtype
        :math:`z_{ic} - m_i - \log \sum_k e^{z_{ik} - m_i}` with :math:`m_i = \max_k z_{ik}`.
    """
    _check_logits(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), max entry 0
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1), in [0, log C]
    return shifted - lse  # (N, C)


def softmax(logits):
    r"""Row-wise softmax :math:`p_{ic} = e^{z_{ic} - m_i} / \sum_k e^{z_{ik} - m_i}`.

    Parameters
    ----------
    logits : ndarray (N, C), float32 or float64, finite

    Returns
    -------
    ndarray (N, C), same dtype; each row sums to 1.
    """
    _check_logits(logits)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))  # (N, C), in (0, 1]
    e /= e.sum(axis=1, keepdims=True)  # (N, C)
    return e


def softmax_cross_entropy_forward(logits, y):
    r"""Mean softmax cross-entropy (``torch.nn.functional.cross_entropy`` with integer targets).

    Parameters
    ----------
    logits : ndarray (N, C), float32 or float64, finite
    y : ndarray (N,), integer labels in ``[0, C)``

    Returns
    -------
    loss : float
        :math:`-\frac{1}{N}\sum_i \log p_{i y_i}` (computed in the dtype of ``logits``).
    cache : tuple
        ``(probs (N, C), y (N,))`` for :func:`softmax_cross_entropy_backward`.
    """
    _check_logits(logits)
    n, c = logits.shape
    _check_labels(y, n, c)
    logp = log_softmax(logits)  # (N, C)
    rows = np.arange(n)
    loss = -logp[rows, y].mean()
    probs = np.exp(logp)  # (N, C)
    return float(loss), (probs, y)


def softmax_cross_entropy_backward(cache):
    """Gradient of the mean cross-entropy with respect to the logits.

    Parameters
    ----------
    cache : tuple
        From :func:`softmax_cross_entropy_forward`.

    Returns
    -------
    dlogits : ndarray (N, C), dtype of the logits
        :math:`(p_{ic} - [c = y_i]) / N`.
    """
    probs, y = cache
    n = probs.shape[0]
    dlogits = probs.copy()  # (N, C); the cache stays untouched
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    return dlogits


def cross_entropy(logits, y) -> float:
    """Mean softmax cross-entropy of ``logits`` (N, C) against integer labels ``y`` (N,)."""
    return softmax_cross_entropy_forward(logits, y)[0]


# ------------------------------------------------------------------ the loss hook of ``fit``


@dataclass(frozen=True)
class Batch:
    """One training mini-batch, as :func:`tinyprune.nn.train.fit` hands it to a :class:`Loss`.

    Attributes
    ----------
    x : ndarray (B, ...)
        The batch's inputs.
    y : ndarray (B,), integer labels
    index : ndarray (B,), int64
        Positions of the batch's samples in the arrays given to ``fit`` (``X[index] == x``), so
        a loss can look up per-sample data computed beforehand, e.g. a teacher's logits.
    """

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray


class Loss:
    """A training loss on the logits, as a forward/backward pair (the ``loss=`` of ``fit``).

    Subclasses implement

    * ``forward(logits, batch) -> (value, cache)``: ``logits`` (B, C) of the model on
      ``batch.x``; ``value`` a Python float (the mean over the batch); ``cache`` anything
      :meth:`backward` needs;
    * ``backward(cache) -> dlogits``: ``d value / d logits``, an array (B, C) of the logits'
      dtype.

    Knowledge distillation is such a loss: its ``forward`` reads the teacher's logits for the
    same images (``teacher_logits[batch.index]``, or the teacher run on ``batch.x``).
    """

    def forward(self, logits: np.ndarray, batch: Batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, cache) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, logits, batch):
        return self.forward(logits, batch)[0]


class CrossEntropyLoss(Loss):
    """Mean softmax cross-entropy against ``batch.y`` (the default loss of ``fit``)."""

    def forward(self, logits, batch):
        return softmax_cross_entropy_forward(logits, batch.y)

    def backward(self, cache):
        return softmax_cross_entropy_backward(cache)

    def __repr__(self):
        return "CrossEntropyLoss()"
