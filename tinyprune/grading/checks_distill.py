"""Distillation assignment: the knowledge-distillation loss and its gradient.

Reference: :func:`tinyprune.distill.loss.distillation_loss_forward` and
:func:`~tinyprune.distill.loss.distillation_loss_backward` (Hinton, Vinyals & Dean 2015).
"""

from __future__ import annotations

import numpy as np

from ..distill.loss import distillation_loss_backward, distillation_loss_forward
from .cases import Assignment, Case, CaseGroup, Mistake, check_array, register, seeded
from .checks_quantize import _is_real, _scalar


def kd_loss_reference(student_logits, teacher_logits, y, temperature, alpha):
    """``(loss, dlogits)``: ``loss = alpha T^2 mean_i KL(softmax(z_t/T) || softmax(z_s/T)) +
    (1 - alpha) mean_i CE(z_s, y)`` (a float) and its gradient w.r.t. ``student_logits``."""
    loss, cache = distillation_loss_forward(student_logits, teacher_logits, y,
                                            temperature=temperature, alpha=alpha)
    return loss, distillation_loss_backward(cache)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kd_variant(t_student=True, t_teacher=True, t_squared=True, reverse=False, swap=False,
                batch_mean=True, grad="formula"):
    """The loss with one thing done wrong, in float64; ``grad="formula"``: the slide's
    ``alpha T / N (p - q)`` applied to the wrong quantities, ``"exact"``: the true derivative
    of the wrong loss."""
    def variant(zs, zt, y, temperature, alpha):
        t = float(temperature)
        zs64, zt64 = zs.astype(np.float64), zt.astype(np.float64)
        n = zs.shape[0] if batch_mean else 1
        p = _softmax(zs64 / t if t_student else zs64)
        q = _softmax(zt64 / t if t_teacher else zt64)
        a_kd, a_ce = (1 - alpha, alpha) if swap else (alpha, 1 - alpha)
        factor = t * t if t_squared else 1.0
        with np.errstate(divide="ignore"):
            logp, logq = np.log(p), np.log(q)
        if reverse:
            kl = (p * (logp - logq)).sum(axis=1)
        else:
            kl = (np.where(q > 0, q * (logq - logp), 0.0)).sum(axis=1)
        p1 = _softmax(zs64)
        onehot = np.eye(zs.shape[1])[y]
        ce = -np.log(p1[np.arange(zs.shape[0]), y])
        loss = a_kd * factor * kl.sum() / n + a_ce * ce.sum() / n
        if grad == "exact":
            inner = 1.0 / t if t_student else 1.0
            if reverse:
                g = logp - logq
                dkl = inner * p * (g - (p * g).sum(axis=1, keepdims=True))
            else:
                dkl = inner * (p - q)
            d = a_kd * factor * dkl / n
        else:
            d = a_kd * t * (p - q) / n
        d = d + a_ce * (p1 - onehot) / n
        return float(loss), d.astype(zs.dtype)
    return variant


def _variants(**kw):
    return (_kd_variant(**kw), _kd_variant(grad="exact", **kw))


def _kd_compare(expected, got):
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"the result: expected a tuple (loss, dlogits), got {type(got).__name__}" + \
            (f" of {len(got)} values" if isinstance(got, tuple | list) else "")
    loss = _scalar(got[0])
    if not _is_real(loss) or not np.isfinite(float(loss)):
        return f"loss: expected a finite float, got {type(loss).__name__} {loss!r}"
    tol = 1e-5 if expected[1].dtype == np.float32 else 1e-9
    if not np.isclose(float(loss), float(expected[0]), rtol=tol, atol=tol):
        return f"loss: expected {float(expected[0])!r}, got {float(loss)!r}"
    return check_array(got[1], expected[1], "dlogits")


def _kd_case(rng, n, c, dtype, temperature, alpha, scale=3.0):
    zs = (scale * rng.standard_normal((n, c))).astype(dtype)
    zt = (scale * rng.standard_normal((n, c))).astype(dtype)
    y = rng.integers(0, c, size=n).astype(np.int64)
    return (zs, zt, y, float(temperature), float(alpha))


def _kd_cases_fixed():
    zs = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, -1.0]], dtype=np.float32)
    zt = np.array([[3.0, 0.5, -1.0], [1.0, 2.0, 0.0]], dtype=np.float32)
    y = np.array([0, 1])
    rng = seeded(130)
    return [Case("2 samples, T = 4, alpha = 0.7", (zs, zt, y, 4.0, 0.7)),
            Case("soft targets only (alpha = 1)", (zs, zt, y, 2.0, 1.0), "no cross-entropy"),
            Case("float64, T = 3, alpha = 0.9", _kd_case(rng, 5, 4, np.float64, 3.0, 0.9)),
            Case("10 classes, T = 8", _kd_case(rng, 6, 10, np.float32, 8.0, 0.5))]


def _kd_cases_settings():
    rng = seeded(131)
    return [Case("labels only (alpha = 0)", _kd_case(rng, 4, 5, np.float64, 4.0, 0.0),
                 "plain cross-entropy, the teacher plays no role"),
            Case("T = 1", _kd_case(rng, 4, 5, np.float64, 1.0, 0.6)),
            Case("small T = 0.5", _kd_case(rng, 4, 5, np.float64, 0.5, 0.6)),
            Case("large logits", _kd_case(rng, 3, 6, np.float64, 2.0, 0.8, scale=40.0),
                 "subtract the row maximum before exp")]


def _kd_cases_generated():
    cases = []
    for i in range(10):
        rng = seeded(13000 + i)
        n, c = int(rng.integers(1, 9)), int(rng.integers(2, 11))
        temperature = (2.0, 4.0, 6.0, 1.5, 10.0)[i % 5]
        alpha = float(np.round(rng.uniform(0.1, 0.9), 2)) if i % 4 else 1.0
        cases.append(Case(f"generated #{i}", _kd_case(rng, n, c, (np.float32, np.float64)[i % 2],
                                                      temperature, alpha)))
    return cases


register(Assignment(
    name="kd_loss",
    function="kd_loss",
    arg_names=("student_logits", "teacher_logits", "y", "temperature", "alpha"),
    reference=kd_loss_reference,
    description="kd_loss(student_logits, teacher_logits, y, temperature, alpha) -> (loss, "
                "dlogits): loss = alpha T^2 mean_i KL(softmax(z_t/T) || softmax(z_s/T)) + "
                "(1 - alpha) mean_i CE(z_s, y) as a float; dlogits = dloss/dz_s, (N, C) in the "
                "logits' dtype.",
    groups=(CaseGroup("worked examples", 4.0, _kd_cases_fixed),
            CaseGroup("temperature and alpha", 2.0, _kd_cases_settings),
            CaseGroup("generated", 4.0, _kd_cases_generated)),
    compare=_kd_compare,
    mistakes=(
        Mistake("missing_t_squared", "forgets the T^2 factor on the soft term: the soft "
                "gradients shrink like 1/T^2, so Hinton et al. multiply the KL term by T^2",
                _variants(t_squared=False)),
        Mistake("temperature_one_side", "divides only one side's logits by T: both the "
                "student's and the teacher's softmax use the temperature",
                _variants(t_student=False) + _variants(t_teacher=False)),
        Mistake("kl_reversed", "the KL direction is reversed: KL(teacher || student) = "
                "sum q (log q - log p), with q the teacher's soft targets",
                _variants(reverse=True)),
        Mistake("alpha_swapped", "the weights are swapped: alpha weighs the soft (teacher) term,"
                " 1 - alpha the cross-entropy with the labels", _variants(swap=True)),
        Mistake("sum_not_mean", "sums over the batch instead of averaging (divide the loss and "
                "the gradient by N)", _variants(batch_mean=False)),
    ),
))
