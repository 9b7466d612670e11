r"""Truncated SVD of a weight matrix and the rules that choose its rank.

A weight :math:`W \in \mathbb{R}^{m \times n}` (a Linear layer's ``(out, in)`` weight, or a
Conv2d weight reshaped to ``(C_out, C_in KH KW)``) has the singular value decomposition
:math:`W = U \Sigma V^T`, :math:`\sigma_1 \ge \sigma_2 \ge \dots \ge 0`. Keeping the ``r`` largest
singular values gives

.. math::

    W_r = U_r \Sigma_r V_r^T, \qquad
    \|W - W_r\|_F^2 = \sum_{i > r} \sigma_i^2,

and by the Eckart-Young theorem no matrix of rank ``r`` is closer to ``W`` in the Frobenius norm.

Rank rules (:func:`choose_rank`):

* explicit: ``rank=r``;
* kept energy: the smallest ``r`` with :math:`\sum_{i \le r} \sigma_i^2 / \sum_i \sigma_i^2 \ge e`
  (:func:`energy_rank`);
* target reduction: the largest ``r`` whose two factors hold at most ``(1 - reduction)`` of the
  dense weight count, :math:`r (m + n) \le (1 - \text{reduction})\, m n` (:func:`reduction_rank`).
  For a convolution the two factor layers produce outputs of the same spatial size, so the
  multiply-accumulates fall by exactly the same fraction as the weights.

References: C. Eckart and G. Young, "The approximation of one matrix by another of lower rank",
Psychometrika 1 (1936); J. Xue, J. Li and Y. Gong, "Restructuring of deep neural network acoustic
models with singular value decomposition", Interspeech 2013.
"""

from __future__ import annotations

import numbers

import numpy as np

from tinyprune.nn.validation import check_float_array, check_int

__all__ = [
    "choose_rank",
    "energy_curve",
    "energy_rank",
    "energy_rank_naive",
    "low_rank_approximation",
    "reduction_rank",
    "singular_values",
    "svd_factors",
]


def _check_matrix(w, name="w"):
    check_float_array(w, name, ndim=2, finite=True)
    if w.size == 0:
        raise ValueError(f"{name}: expected a non-empty (m, n) matrix, got shape {w.shape}")
    return w


def _check_rank(rank, shape, name="rank"):
    rank = check_int(rank, name, minimum=1)
    top = min(shape)
    if rank > top:
        raise ValueError(f"{name}: expected an integer in [1, min(m, n)] = [1, {top}] for a "
                         f"matrix of shape {tuple(shape)}, got {rank}")
    return rank


def _check_energy(energy, name="energy"):
    if isinstance(energy, bool) or not isinstance(energy, numbers.Real):
        raise TypeError(f"{name}: expected a number in (0, 1], got {energy!r}")
    energy = float(energy)
    if not 0.0 < energy <= 1.0:  # also rejects NaN
        raise ValueError(f"{name}: expected a fraction of the energy in (0, 1], got {energy}")
    return energy


def _check_singular_values(s, name="s"):
    check_float_array(s, name, ndim=1, finite=True)
    if s.size == 0:
        raise ValueError(f"{name}: expected at least one singular value, got shape {s.shape}")
    if (s < 0).any() or (np.diff(s) > 0).any():
        raise ValueError(f"{name}: expected non-negative singular values in non-increasing "
                         f"order (as numpy.linalg.svd returns them)")
    return s


def singular_values(w: np.ndarray) -> np.ndarray:
    r"""The singular values of ``w``, largest first, computed in float64.

    Parameters
    ----------
    w : ndarray (m, n), float32 or float64, finite

    Returns
    -------
    ndarray (min(m, n),), float64
        :math:`\sigma_1 \ge \dots \ge \sigma_{\min(m, n)} \ge 0`.
    """
    _check_matrix(w)
    return np.linalg.svd(w.astype(np.float64), compute_uv=False)  # (min(m, n),)


def energy_curve(s: np.ndarray) -> np.ndarray:
    r"""Fraction of the energy kept by each rank: ``curve[r - 1]`` is
    :math:`\sum_{i \le r} \sigma_i^2 / \sum_i \sigma_i^2`.

    Parameters
    ----------
    s : ndarray (k,), float, non-negative, non-increasing (from :func:`singular_values`)

    Returns
    -------
    ndarray (k,), float64, non-decreasing, last entry exactly 1.0
        (all ones when every singular value is 0: nothing is lost at any rank).
    """
    _check_singular_values(s)
    cum = np.cumsum(s.astype(np.float64) ** 2)  # (k,)
    total = cum[-1]  # the same rounding as the partial sums, so the last ratio is exactly 1
    if total == 0.0:
        return np.ones_like(cum)
    return cum / total


def energy_rank(s: np.ndarray, energy: float) -> int:
    r"""The smallest rank whose kept energy reaches ``energy``.

    .. math::

        r^* = \min \{ r : \textstyle\sum_{i \le r} \sigma_i^2 \big/ \sum_i \sigma_i^2 \ge e \}

    Parameters
    ----------
    s : ndarray (k,), float, non-negative, non-increasing
    energy : float in (0, 1]

    Returns
    -------
    int in [1, k]
        (1 for an all-zero matrix). The ratios are the float64 values of :func:`energy_curve`.

    Examples
    --------
    >>> energy_rank(np.array([3.0, 2.0, 1.0]), 0.9)  # 9/14 = 0.64, 13/14 = 0.93
    2
    """
    energy = _check_energy(energy)
    curve = energy_curve(s)  # (k,)
    return int(np.searchsorted(curve, energy, side="left")) + 1


def energy_rank_naive(s: np.ndarray, energy: float) -> int:
    """Loop twin of :func:`energy_rank`: try r = 1, 2, ... until the kept energy reaches
    ``energy`` (same ratios, same result)."""
    energy = _check_energy(energy)
    curve = energy_curve(s)
    for r in range(1, curve.size + 1):
        if curve[r - 1] >= energy:
            return r
    return curve.size  # unreachable: the last ratio is 1.0 >= energy


def reduction_rank(shape, reduction: float) -> int:
    r"""The largest rank whose factors keep at most ``1 - reduction`` of the weights.

    A rank-``r`` factorization of an ``(m, n)`` weight holds :math:`r (m + n)` weights instead of
    :math:`m n`; this returns :math:`\lfloor (1 - \text{reduction})\, m n / (m + n) \rfloor`.

    Parameters
    ----------
    shape : (int, int)
        ``(m, n)``: ``(out, in)`` for a Linear weight, ``(C_out, C_in KH KW)`` for a Conv2d.
    reduction : float in (0, 1)
        Fraction of the weights (and of the multiply-accumulates) to remove.

    Returns
    -------
    int >= 1

    Raises
    ------
    ValueError
        When even rank 1 keeps more than ``1 - reduction`` of the weights.

    Examples
    --------
    >>> reduction_rank((128, 9216), 0.8)  # the lecture net's fc1: 25 * 9344 <= 0.2 * 1,179,648
    25
    """
    if isinstance(reduction, bool) or not isinstance(reduction, numbers.Real):
        raise TypeError(f"reduction: expected a number in (0, 1), got {reduction!r}")
    reduction = float(reduction)
    if not 0.0 < reduction < 1.0:
        raise ValueError(f"reduction: expected a fraction in (0, 1), got {reduction}")
    m, n = (check_int(v, "shape", minimum=1) for v in shape)
    budget = (1.0 - reduction) * m * n  # weights the two factors may hold
    rank = min(int(np.floor(budget / (m + n))), m, n)
    if rank < 1:
        raise ValueError(f"reduction: {reduction} is unreachable for a ({m}, {n}) weight: rank 1 "
                         f"already keeps {(m + n) / (m * n):.3g} of its {m * n} weights")
    return rank


def choose_rank(w: np.ndarray, *, rank=None, energy=None, reduction=None) -> int:
    """The rank for ``w`` by exactly one rule: ``rank``, ``energy`` or ``reduction``.

    Parameters
    ----------
    w : ndarray (m, n), float32 or float64
    rank : int in [1, min(m, n)], optional
    energy : float in (0, 1], optional
        See :func:`energy_rank`.
    reduction : float in (0, 1), optional
        See :func:`reduction_rank`.

    Returns
    -------
    int in [1, min(m, n)]
    """
    _check_matrix(w)
    given = [k for k, v in (("rank", rank), ("energy", energy), ("reduction", reduction))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"choose_rank: give exactly one of rank, energy, reduction; got "
                         f"{given or 'none'}")
    if rank is not None:
        return _check_rank(rank, w.shape)
    if energy is not None:
        return energy_rank(singular_values(w), energy)
    return reduction_rank(w.shape, reduction)


def svd_factors(w: np.ndarray, rank: int):
    r"""Balanced rank-``r`` factors ``A`` (r, n) and ``B`` (m, r) with ``B @ A = W_r``.

    .. math::

        A = \Sigma_r^{1/2} V_r^T, \qquad B = U_r \Sigma_r^{1/2}, \qquad B A = U_r \Sigma_r V_r^T

    The square root of :math:`\Sigma_r` goes to each side, so row ``i`` of ``A`` and column ``i``
    of ``B`` both have norm :math:`\sqrt{\sigma_i}`. Putting all of :math:`\Sigma` on one side
    would give one factor orthonormal rows (entries ~ ``1/sqrt(n)``) and the other the whole
    scale (``sigma_1`` can be 100x larger): the gradients of the two layers would then differ by
    that ratio during fine-tuning, and a per-tensor quantizer would waste its range on the
    unbalanced factor. The split is computed in float64 and returned in the dtype of ``w``.

    Parameters
    ----------
    w : ndarray (m, n), float32 or float64, finite
    rank : int in [1, min(m, n)]

    Returns
    -------
    a : ndarray (rank, n), dtype of ``w``
        The first layer's weight (``in -> rank``).
    b : ndarray (m, rank), dtype of ``w``
        The second layer's weight (``rank -> out``).
    """
    _check_matrix(w)
    rank = _check_rank(rank, w.shape)
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)  # (m, k), (k,), (k, n)
    root = np.sqrt(s[:rank])  # (r,)
    a = root[:, None] * vt[:rank]  # (r, n)
    b = u[:, :rank] * root[None, :]  # (m, r)
    return a.astype(w.dtype), b.astype(w.dtype)


def low_rank_approximation(w: np.ndarray, rank: int) -> np.ndarray:
    r"""The best rank-``r`` approximation :math:`W_r = U_r \Sigma_r V_r^T` (Eckart-Young).

    Parameters
    ----------
    w : ndarray (m, n), float32 or float64, finite
    rank : int in [1, min(m, n)]

    Returns
    -------
    ndarray (m, n), dtype of ``w`` (computed in float64)
    """
    _check_matrix(w)
    rank = _check_rank(rank, w.shape)
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)  # (m, k), (k,), (k, n)
    return ((u[:, :rank] * s[:rank]) @ vt[:rank]).astype(w.dtype)  # (m, n)
