r"""The knowledge-distillation loss of Hinton, Vinyals & Dean (2015), forward and backward.

A student with logits :math:`z_s` learns from a teacher's logits :math:`z_t` on the same images,
softened by a temperature :math:`T`:

.. math::

    p^T = \mathrm{softmax}(z_s / T), \qquad q^T = \mathrm{softmax}(z_t / T)

    L = \alpha\, T^2\, \frac{1}{N} \sum_i \mathrm{KL}(q^T_i \,\|\, p^T_i)
        + (1 - \alpha)\, \frac{1}{N} \sum_i -\log \mathrm{softmax}(z_s)_{i y_i},
    \qquad \mathrm{KL}(q \,\|\, p) = \sum_c q_c (\log q_c - \log p_c)

    \frac{\partial L}{\partial z_s} = \frac{\alpha\, T}{N} (p^T - q^T)
        + \frac{1 - \alpha}{N} (\mathrm{softmax}(z_s) - \mathrm{onehot}(y))

Why :math:`T^2` (Hinton et al. 2015, section 2): the derivative of the soft term with respect to
:math:`z_s` is :math:`(p^T - q^T)/T`, and for a large :math:`T` the probabilities themselves differ
by about :math:`(z_s - z_t)/(C\,T)` (:math:`C` classes, zero-mean logits), so the soft-target
gradient shrinks like :math:`1/T^2`. Multiplying the KL term by :math:`T^2` cancels that: the
soft and hard terms keep the same relative weight, and :math:`\alpha` means the same thing,
whatever temperature is tried.

``T = 1`` and ``alpha = 1`` is plain KL matching of the teacher's distribution; ``alpha = 0`` is
ordinary training on the labels. The same value as PyTorch's
``alpha * T**2 * kl_div(log_softmax(z_s / T), softmax(z_t / T), reduction="batchmean")
+ (1 - alpha) * cross_entropy(z_s, y)``.

Every softmax subtracts the row maximum first (log-sum-exp), so temperatures from 0.05 to 20
and beyond and logits of ``±1e4`` give finite values and gradients; a teacher probability that
underflows to 0 contributes exactly 0 to the KL sum (its log stays finite).

Reference: G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a Neural Network",
NeurIPS Deep Learning Workshop, 2014 (arXiv:1503.02531, 2015).
"""

from __future__ import annotations

import numbers

import numpy as np

from tinyprune.nn.losses import (
    Batch,
    Loss,
    log_softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from tinyprune.nn.model import Sequential
from tinyprune.nn.validation import check_float_array, check_probability

__all__ = [
    "DistillationLoss",
    "check_temperature",
    "distillation_loss_backward",
    "distillation_loss_forward",
    "softmax_with_temperature",
]


def check_temperature(temperature, name: str = "temperature") -> float:
    """Return ``temperature`` as a float after checking it is a finite number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"{name}: expected a positive number, got {temperature!r}")
    temperature = float(temperature)
    if not (np.isfinite(temperature) and temperature > 0.0):
        raise ValueError(f"{name}: expected a finite number > 0, got {temperature}")
    return temperature


def _check_alpha(alpha) -> float:
    return check_probability(alpha, "alpha", allow_one=True)


def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    r"""Soft targets :math:`\mathrm{softmax}(z / T)`, row by row.

    A higher ``T`` flattens the distribution and reveals how the model ranks the wrong classes
    (Hinton's "dark knowledge"); ``T = 1`` is the ordinary softmax; ``T -> 0`` tends to one-hot.

    Parameters
    ----------
    logits : ndarray (N, C), float32 or float64, finite
    temperature : float > 0

    Returns
    -------
    ndarray (N, C), dtype of ``logits``; each row sums to 1.
    """
    temperature = check_temperature(temperature)
    check_float_array(logits, "logits", ndim=2)
    return np.exp(log_softmax(logits / logits.dtype.type(temperature)))  # (N, C)


def distillation_loss_forward(student_logits, teacher_logits, y, *, temperature, alpha):
    r"""The distillation loss (see the module docstring) and the cache for its gradient.

    Parameters
    ----------
    student_logits : ndarray (N, C), float32 or float64, finite
    teacher_logits : ndarray (N, C), float32 or float64, finite
        The teacher's logits for the same N images (cast to the student's dtype).
    y : ndarray (N,) of int labels in [0, C), or None when ``alpha == 1``
    temperature : float > 0
    alpha : float in [0, 1]
        Weight of the soft (teacher) term; ``1 - alpha`` weighs the cross-entropy on ``y``.

    Returns
    -------
    loss : float
        :math:`\alpha T^2 \overline{\mathrm{KL}} + (1 - \alpha) \overline{\mathrm{CE}}`, >= 0.
    cache : tuple
        For :func:`distillation_loss_backward`.

    Raises
    ------
    ValueError
        ``temperature <= 0``, ``alpha`` outside [0, 1], teacher and student logits of different
        shapes (e.g. class counts), non-finite logits, labels outside [0, C), ``y`` None with
        ``alpha < 1``.
    TypeError
        Non-float logits, non-integer labels.
    """
    temperature = check_temperature(temperature)
    alpha = _check_alpha(alpha)
    check_float_array(student_logits, "student_logits", ndim=2)
    check_float_array(teacher_logits, "teacher_logits", ndim=2)
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits: expected the student's shape {student_logits.shape} "
                         f"(N samples, C classes), got {teacher_logits.shape}")
    dtype = student_logits.dtype
    t = dtype.type(temperature)
    n = student_logits.shape[0]

    logp = log_softmax(student_logits / t)  # (N, C) student at temperature T
    logq = log_softmax(teacher_logits.astype(dtype, copy=False) / t)  # (N, C) teacher
    q = np.exp(logq)  # (N, C); an entry that underflows to 0 adds exactly 0 below
    # KL(q || p) per row is >= 0; the clamp only removes a rounding error of either sign
    kl = np.maximum((q * (logq - logp)).sum(axis=1), 0.0)  # (N,)
    loss = alpha * temperature ** 2 * float(kl.mean())
    ce_cache = None
    if alpha < 1.0:
        if y is None:
            raise ValueError(f"y: labels are needed for the cross-entropy term when alpha < 1, "
                             f"got None with alpha={alpha}")
        ce, ce_cache = softmax_cross_entropy_forward(student_logits, y)
        loss += (1.0 - alpha) * ce
    return float(loss), (np.exp(logp), q, ce_cache, temperature, alpha, n)


def distillation_loss_backward(cache) -> np.ndarray:
    r"""Gradient of the distillation loss with respect to the student's logits.

    Parameters
    ----------
    cache : tuple
        From :func:`distillation_loss_forward`.

    Returns
    -------
    dlogits : ndarray (N, C), the student logits' dtype
        :math:`\frac{\alpha T}{N} (p^T - q^T) + \frac{1 - \alpha}{N}(\mathrm{softmax}(z_s) -
        \mathrm{onehot}(y))`; every row sums to 0 (up to rounding).
    """
    p, q, ce_cache, temperature, alpha, n = cache
    dlogits = (p - q) * p.dtype.type(alpha * temperature / n)  # (N, C)
    if ce_cache is not None:
        dlogits += p.dtype.type(1.0 - alpha) * softmax_cross_entropy_backward(ce_cache)
    return dlogits


class DistillationLoss(Loss):
    """The distillation loss as the ``loss=`` of :func:`tinyprune.nn.train.fit`.

    The teacher's logits for each batch come either from an array computed beforehand for the
    whole training set (``teacher_logits[batch.index]``: one teacher pass in total, the usual
    choice) or from running ``teacher`` on ``batch.x`` at every step (no memory for the logits,
    one teacher forward pass per step). The teacher runs in inference mode (no dropout) and is
    never trained.

    Parameters
    ----------
    temperature : float > 0
    alpha : float in [0, 1]
    teacher_logits : ndarray (N_train, C), float, optional
        Row ``i`` holds the teacher's logits for sample ``i`` of the ``X`` given to ``fit``.
    teacher : Sequential, optional
        Exactly one of ``teacher_logits`` and ``teacher``.

    Examples
    --------
    >>> from tinyprune.nn.train import fit, predict
    >>> loss = DistillationLoss(teacher_logits=predict(teacher, X), temperature=4, alpha=0.9)
    >>> fit(student, X, y, optimizer=opt, epochs=5, rng=0, loss=loss)  # doctest: +SKIP
    """

    def __init__(self, *, temperature, alpha, teacher_logits=None, teacher=None):
        self.temperature = check_temperature(temperature)
        self.alpha = _check_alpha(alpha)
        if (teacher_logits is None) == (teacher is None):
            raise ValueError("DistillationLoss: give exactly one of teacher_logits (precomputed "
                             "for the training set) and teacher (a model run on each batch)")
        if teacher_logits is not None:
            check_float_array(teacher_logits, "teacher_logits", ndim=2, finite=True)
        elif not isinstance(teacher, Sequential):
            raise TypeError(f"teacher: expected a Sequential, got {type(teacher).__name__}")
        self.teacher_logits = teacher_logits
        self.teacher = teacher

    def batch_teacher_logits(self, batch: Batch) -> np.ndarray:
        """The teacher's logits (B, C) for ``batch``."""
        if self.teacher is not None:
            return self.teacher.forward(batch.x.astype(self.teacher.dtype, copy=False),
                                        train=False)  # (B, C)
        idx = np.asarray(batch.index)
        n_rows = self.teacher_logits.shape[0]
        if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
            bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
            raise ValueError(f"teacher_logits: holds {n_rows} rows but the batch refers to sample "
                             f"{bad}; compute them on the same X that is given to fit")
        return self.teacher_logits[idx]  # (B, C)

    def forward(self, logits, batch):
        return distillation_loss_forward(logits, self.batch_teacher_logits(batch), batch.y,
                                         temperature=self.temperature, alpha=self.alpha)

    def backward(self, cache):
        return distillation_loss_backward(cache)

    def __repr__(self):
        source = "teacher" if self.teacher is not None else "teacher_logits"
        return (f"DistillationLoss(temperature={self.temperature}, alpha={self.alpha}, "
                f"from={source})")
