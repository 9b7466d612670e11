r"""Pruning criteria: which weights (or structural sets of weights) matter least.

A criterion maps a weight array to *scores*, one per structural set (see
:mod:`tinyprune.prune.granularity`); **higher score = more important**, so the lowest-scoring sets
are pruned first (:mod:`tinyprune.prune.select`).

Magnitude-based (the lecture's "heuristic pruning criterion", Han et al. 2015):

* :func:`magnitude` -- elementwise :math:`\mathrm{Importance} = |W|`;
* :func:`lp_norm` -- :math:`\|W^{(S)}\|_p = (\sum_{i \in S} |w_i|^p)^{1/p}` over each set S,
  with :func:`l1` (:math:`\sum_{i \in S} |w_i|`) and :func:`l2`
  (:math:`\sqrt{\sum_{i \in S} |w_i|^2}`), and :math:`p = \infty` giving
  :math:`\max_{i \in S} |w_i|`.

Similarity and clustering (the lecture's "remove the redundancy across weights or filters"):

* :func:`geometric_median_scores` -- FPGM (He et al., "Filter Pruning via Geometric Median for Deep
  Convolutional Neural Networks Acceleration", CVPR 2019);
* :func:`cluster_redundancy_scores` -- k-means on the filters, one representative kept per cluster
  (Wu et al., "Cluster-Based Structural Redundancy Identification for Neural Network
  Compression", Entropy 2023), with the shared :func:`tinyprune.common.kmeans.kmeans`.

And :func:`random_scores`, the baseline every criterion should beat.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..common.kmeans import kmeans, kmeans_naive, kmeans_plusplus_init  # noqa: F401 (re-exported)
from ..nn.validation import as_generator, check_float_array, check_int
from .granularity import group_reduce, set_shape

CRITERIA = ("magnitude", "l1", "l2", "linf", "lp", "random", "geometric_median", "cluster")
"""Criterion names understood by :func:`tinyprune.prune.select.prune_weight`."""

# --------------------------------------------------------------------------- input checks
def check_weight(w, name: str = "w") -> np.ndarray:
    """Return ``w`` unchanged after checking it is a non-empty, finite float32/float64 ndarray.

    A NaN or infinite weight would give NaN scores and a silently wrong mask, so it is an error
    (:func:`tinyprune.nn.validation.check_float_array` with ``finite=True, nonempty=True``).
    """
    return check_float_array(w, name, finite=True, nonempty=True)


def _check_filters(w, name="w") -> np.ndarray:
    """``w`` as a float64 matrix of flattened filters, shape ``(out, in*KH*KW)``."""
    w = check_weight(w, name)
    if w.ndim not in (2, 4):
        raise ValueError(f"{name}: expected a Linear (out, in) or Conv2d (C_out, C_in, KH, KW) "
                         f"weight, got shape {w.shape}")
    return w.reshape(w.shape[0], -1).astype(np.float64)  # (out, D)


# --------------------------------------------------------------------------- magnitude
def magnitude(w) -> np.ndarray:
    r"""Elementwise magnitude, :math:`\mathrm{Importance} = |W|`.

    Parameters
    ----------
    w : ndarray, float32 or float64, any shape

    Returns
    -------
    ndarray, shape and dtype of ``w`` (a new array)
    """
    return np.abs(check_weight(w))


def lp_norm(w, p, granularity="element", *, vector_size=None) -> np.ndarray:
    r"""L_p norm of each structural set, :math:`\|W^{(S)}\|_p = (\sum_{i \in S} |w_i|^p)^{1/p}`.

    Parameters
    ----------
    w : ndarray, shape ``(out, in)`` or ``(C_out, C_in, KH, KW)`` (any shape for "element")
    p : float
        ``p > 0``; ``np.inf`` gives :math:`\max_{i \in S} |w_i|`. For ``p < 1`` this is not a norm
        but is still a valid (monotone) score.
    granularity : str
        One of :data:`~tinyprune.prune.granularity.GRANULARITIES`. For "element" and "nm" every
        set is one weight and the score is ``|w|`` whatever ``p``.
    vector_size : int, optional
        Run length of a Linear "vector" set (see :mod:`~tinyprune.prune.granularity`).

    Returns
    -------
    ndarray, shape :func:`~tinyprune.prune.granularity.set_shape`, dtype of ``w``
    """
    w = check_weight(w)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not p > 0:
        raise ValueError(f"p: expected a real number > 0 (or np.inf), got {p!r}")
    a = np.abs(w)
    if granularity in ("element", "nm"):
        set_shape(w.shape, granularity)  # validates the name
        return a
    if p == np.inf:
        return group_reduce(a, granularity, reduce="max", vector_size=vector_size)
    if p == 1:
        return group_reduce(a, granularity, vector_size=vector_size)
    if p == 2:
        return np.sqrt(group_reduce(a * a, granularity, vector_size=vector_size))
    p = float(p)
    return group_reduce(a**p, granularity, vector_size=vector_size) ** (1.0 / p)


def l1(w, granularity="element", *, vector_size=None) -> np.ndarray:
    r"""L1 norm of each set, :math:`\sum_{i \in S} |w_i|` (:func:`lp_norm` with ``p = 1``)."""
    return lp_norm(w, 1, granularity, vector_size=vector_size)


def l2(w, granularity="element", *, vector_size=None) -> np.ndarray:
    r"""L2 norm of each set, :math:`\sqrt{\sum_{i \in S} w_i^2}` (:func:`lp_norm`, ``p = 2``)."""
    return lp_norm(w, 2, granularity, vector_size=vector_size)


def random_scores(w, rng, granularity="element", *, vector_size=None) -> np.ndarray:
    """Uniform random scores in [0, 1), one per set: the baseline criterion.

    Parameters
    ----------
    w : ndarray
        Only its shape is used (and validated).
    rng : numpy.random.Generator or int seed
    granularity : str

    Returns
    -------
    ndarray, float64, shape :func:`~tinyprune.prune.granularity.set_shape`
    """
    check_weight(w)
    rng = as_generator(rng)
    return rng.random(set_shape(w.shape, granularity, vector_size=vector_size))


# --------------------------------------------------------------------------- FPGM
def pairwise_distances(x) -> np.ndarray:
    r"""Euclidean distances between the rows of ``x``, :math:`D_{ij} = \|x_i - x_j\|_2`.

    Uses :math:`\|a - b\|^2 = \|a\|^2 + \|b\|^2 - 2 a \cdot b` (one matrix product), clipped at 0
    and with an exactly zero diagonal.

    Parameters
    ----------
    x : ndarray, shape ``(n, D)``, float64

    Returns
    -------
    ndarray, shape ``(n, n)``, float64
    """
    sq = np.einsum("nd,nd->n", x, x)  # (n,)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)  # (n, n)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


def geometric_median_scores(w) -> np.ndarray:
    r"""FPGM redundancy scores of the filters (output channels / neurons) of a layer.

    .. math:: \mathrm{score}_i = \sum_j \|F_i - F_j\|_2

    where :math:`F_i` is filter ``i`` flattened. The filter closest to the geometric median of the
    layer (smallest summed distance) is the one best replaced by the others, so it scores lowest
    and is pruned first, whatever its norm (He et al., "Filter Pruning via Geometric Median for
    Deep Convolutional Neural Networks Acceleration", CVPR 2019).

    Parameters
    ----------
    w : ndarray, shape ``(out, in)`` or ``(C_out, C_in, KH, KW)``

    Returns
    -------
    ndarray, shape ``(out,)``, float64 -- scores for granularity "channel".
    """
    return pairwise_distances(_check_filters(w)).sum(axis=1)


def geometric_median_scores_naive(w) -> np.ndarray:
    """Loop twin of :func:`geometric_median_scores` (for tests)."""
    f = _check_filters(w)
    n = f.shape[0]
    scores = np.zeros(n)
    for i in range(n):
        for j in range(n):
            scores[i] += np.sqrt(np.sum((f[i] - f[j]) ** 2))
    return scores


# --------------------------------------------------------------------------- clustering
def cluster_redundancy_scores(w, n_clusters, rng, *, max_iter=100) -> np.ndarray:
    r"""Clustering-based redundancy scores of the filters (output channels / neurons) of a layer.

    After Wu et al., "Cluster-Based Structural Redundancy Identification for Neural Network
    Compression", Entropy 2023: filters that fall in the same cluster are redundant with each
    other, so one *representative* per cluster is kept and the rest can go.

    1. Cluster the flattened filters :math:`F_i` (rows of ``w.reshape(out, -1)``) with
       :func:`kmeans` (k-means++ seeding from ``rng``); every cluster is non-empty.
    2. The representative :math:`r(c)` of cluster ``c`` is its member closest to the centroid
       :math:`\mu_c` (lowest index on ties).
    3. Scores (higher = keep):

       .. math::
          \mathrm{score}_i = \begin{cases}
              1 + |c| / n & i = r(c) \text{ (representative of a cluster of } |c|
              \text{ filters)} \\
              d_i / (1 + d_i), \; d_i = \|F_i - F_{r(c_i)}\|_2 & \text{otherwise}
          \end{cases}

       Representatives score in (1, 2], every other filter in [0, 1), so pruning the
       ``n - n_clusters`` lowest-scoring filters removes exactly the non-representatives; pruning
       fewer removes first the filters closest to (most redundant with) their representative.

    Parameters
    ----------
    w : ndarray, shape ``(out, in)`` or ``(C_out, C_in, KH, KW)``
    n_clusters : int, ``1 <= n_clusters <= out``
    rng : numpy.random.Generator or int seed
    max_iter : int
        Lloyd iterations at most.

    Returns
    -------
    ndarray, shape ``(out,)``, float64 -- scores for granularity "channel".
    """
    f = _check_filters(w)  # (n, D)
    n = f.shape[0]
    n_clusters = check_int(n_clusters, "n_clusters (at most the number of filters)", minimum=1,
                           maximum=n)
    centroids, labels = kmeans(f, n_clusters, rng, max_iter=max_iter)
    own = np.sqrt(np.sum((f - centroids[labels]) ** 2, axis=1))  # (n,) distance to own centroid
    member = labels[None, :] == np.arange(n_clusters)[:, None]  # (k, n)
    reps = np.argmin(np.where(member, own[None, :], np.inf), axis=1)  # (k,)
    d = np.sqrt(np.sum((f - f[reps[labels]]) ** 2, axis=1))  # (n,) distance to representative
    scores = d / (1.0 + d)
    scores[reps] = 1.0 + member.sum(axis=1) / n
    return scores
