"""Distillation in one call: train a student on a teacher's soft targets with ``fit``.

The common recipe for a compressed network is to recover its accuracy by distilling it from its
own dense parent rather than by fine-tuning on the labels alone: the parent's soft targets carry
more information per image than the one-hot labels (Hinton et al. 2015). :func:`distill` works
for any student, because everything a compressed student needs is already enforced by ``fit``:

* a pruned student keeps its ``model.masks`` (pruned weights stay exactly 0.0);
* a quantized student computes with its weight transforms (fake quantization, straight-through
  gradients);
* a factorized student (:func:`tinyprune.lowrank.factorize_model`) is an ordinary ``Sequential``.
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.model import Sequential
from tinyprune.nn.train import History, fit, predict
from tinyprune.nn.validation import check_float_array, check_int, check_probability

from .loss import DistillationLoss, check_temperature

__all__ = ["compute_teacher_logits", "distill"]


def compute_teacher_logits(teacher: Sequential, X: np.ndarray, *,
                           batch_size: int = 1000) -> np.ndarray:
    """The teacher's logits on ``X`` in inference mode, to precompute soft targets once.

    Parameters
    ----------
    teacher : Sequential
    X : ndarray (N, ...), float (cast to the teacher's dtype)
    batch_size : int

    Returns
    -------
    ndarray (N, C), the teacher's dtype
    """
    if not isinstance(teacher, Sequential):
        raise TypeError(f"teacher: expected a Sequential, got {type(teacher).__name__}")
    check_float_array(X, "X")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    return predict(teacher, X.astype(teacher.dtype, copy=False), batch_size=batch_size)


def distill(student, teacher, X, y, *, temperature, alpha, optimizer, epochs=1, batch_size=64,
            rng=None, precompute=True, teacher_logits=None, **fit_kwargs) -> History:
    """Train ``student`` (in place) on ``alpha`` soft targets from ``teacher`` + ``1 - alpha``
    labels: :func:`~tinyprune.nn.train.fit` with a :class:`DistillationLoss`.

    Parameters
    ----------
    student : Sequential
        Trained in place; its masks and weight transforms are respected (see the module
        docstring).
    teacher : Sequential or None
        Never modified; run in inference mode. May be None when ``teacher_logits`` is given.
    X : ndarray (N, ...), the student's dtype
    y : ndarray (N,), integer labels
    temperature : float > 0
    alpha : float in [0, 1]
    optimizer : Optimizer
        Built on ``student.params``.
    epochs, batch_size, rng
        As in ``fit`` (``rng`` is needed to shuffle).
    precompute : bool
        Compute the teacher's logits on all of ``X`` once (default) rather than on every batch.
    teacher_logits : ndarray (N, C), optional
        The teacher's logits on ``X``, computed beforehand (e.g. shared by several students).
    **fit_kwargs
        Passed to ``fit`` (``validation_data``, ``callbacks``, ``scheduler``, ``progress``...).

    Returns
    -------
    History
        From ``fit``; ``loss`` is the distillation loss, accuracies are against the labels.

    Raises
    ------
    ValueError
        Bad ``temperature`` / ``alpha``; teacher and student with different class counts;
        ``teacher_logits`` not of shape (N, C); neither or both of a teacher and its logits.
    TypeError
        ``student`` or ``teacher`` not a Sequential; a ``loss`` in ``fit_kwargs``.
    """
    if not isinstance(student, Sequential):
        raise TypeError(f"student: expected a Sequential, got {type(student).__name__}")
    if teacher is not None and not isinstance(teacher, Sequential):
        raise TypeError(f"teacher: expected a Sequential, got {type(teacher).__name__}")
    if "loss" in fit_kwargs:
        raise TypeError("distill: the loss is the distillation loss; do not pass loss=")
    if (teacher is None) == (teacher_logits is None):
        raise ValueError("distill: give exactly one of a teacher model and its precomputed "
                         "teacher_logits")
    check_temperature(temperature)
    check_probability(alpha, "alpha", allow_one=True)
    check_float_array(X, "X")
    if X.ndim < 1 or X.shape[0] == 0:
        raise ValueError(f"X: expected at least one sample, got shape {X.shape}")
    n_student = student.forward(X[:1], train=False).shape[1]  # the student's class count

    if teacher is not None:
        n_teacher = teacher.forward(X[:1].astype(teacher.dtype, copy=False)).shape[1]
        if n_teacher != n_student:
            raise ValueError(f"teacher: outputs {n_teacher} classes, the student {n_student}; "
                             f"they must match")
        if precompute:
            teacher_logits = compute_teacher_logits(teacher, X)
    if teacher_logits is not None:
        check_float_array(teacher_logits, "teacher_logits", ndim=2, finite=True)
        if teacher_logits.shape != (X.shape[0], n_student):
            raise ValueError(f"teacher_logits: expected shape ({X.shape[0]}, {n_student}) (one "
                             f"row per sample of X, one column per student class), got "
                             f"{teacher_logits.shape}")
        loss = DistillationLoss(teacher_logits=teacher_logits, temperature=temperature,
                                alpha=alpha)
    else:
        loss = DistillationLoss(teacher=teacher, temperature=temperature, alpha=alpha)
    return fit(student, X, y, optimizer=optimizer, epochs=epochs, batch_size=batch_size, rng=rng,
               loss=loss, **fit_kwargs)
