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
  Compression", Entropy 2023), with :func:`kmeans` written here in NumPy.

And :func:`random_scores`, the baseline every criterion should beat.
"""

from __future__ import annotations

import numbers

import numpy as np

from .granularity import group_reduce, set_shape

CRITERIA = ("magnitude", "l1", "l2", "linf", "lp", "random", "geometric_median", "cluster")
"""Criterion names understood by :func:`tinyprune.prune.select.prune_weight`."""

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- input checks
def check_weight(w, name: str = "w") -> np.ndarray:
    """Return ``w`` unchanged after checking it is a float32/float64 ndarray without NaN."""
    if not isinstance(w, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(w).__name__}")
    if w.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {w.dtype}")
    if np.isnan(w).any():
        first = tuple(int(i) for i in np.argwhere(np.isnan(w))[0])
        raise ValueError(f"{name}: expected no NaN, found NaN at index {first}")
    return w


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """Return a Generator: ``rng`` itself, or ``np.random.default_rng(rng)`` for an int seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name}: expected a numpy.random.Generator or an int seed, "
                    f"got {type(rng).__name__}")


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
    rng = check_rng(rng)
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
def kmeans_plusplus_init(x, n_clusters, rng) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): indices of ``n_clusters`` rows of ``x``.

    The first centre is uniform; each next one is drawn with probability proportional to
    :math:`D(x)^2`, the squared distance to the nearest centre chosen so far. If every remaining
    point coincides with a centre (all :math:`D^2 = 0`), the next centre is drawn uniformly among
    the rows not yet chosen, so the indices are always distinct.

    Parameters
    ----------
    x : ndarray, shape ``(n, D)``, float64
    n_clusters : int, ``1 <= n_clusters <= n``
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int, shape ``(n_clusters,)``
    """
    n = x.shape[0]
    sq = np.einsum("nd,nd->n", x, x)  # (n,)

    def sq_dist_to(i):  # ||x_j - x_i||^2 for all j, one matrix-vector product
        return np.maximum(sq + sq[i] - 2.0 * (x @ x[i]), 0.0)  # (n,)

    chosen = [int(rng.integers(n))]
    d2 = sq_dist_to(chosen[0])  # (n,)
    d2[chosen[0]] = 0.0
    for _ in range(1, n_clusters):
        total = d2.sum()
        if total > 0:
            nxt = int(rng.choice(n, p=d2 / total))
        else:
            free = np.setdiff1d(np.arange(n), chosen)
            nxt = int(rng.choice(free))
        chosen.append(nxt)
        np.minimum(d2, sq_dist_to(nxt), out=d2)
        d2[chosen] = 0.0  # exactly zero at the centres (rounding could leave a tiny weight)
    return np.array(chosen)


def _sq_dists(x, c) -> np.ndarray:
    """Squared distances between rows of ``x`` (n, D) and ``c`` (k, D): shape (n, k)."""
    d2 = np.einsum("nd,nd->n", x, x)[:, None] + np.einsum("kd,kd->k", c, c)[None, :] \
        - 2.0 * (x @ c.T)  # (n, k)
    return np.maximum(d2, 0.0, out=d2)


def _fill_empty_clusters(x, labels, centroids) -> None:
    """Give every empty cluster one point, in place: the point farthest from its own centroid
    among clusters of two or more members (lowest index on ties). Loops over clusters only."""
    k = centroids.shape[0]
    for c in range(k):
        counts = np.bincount(labels, minlength=k)
        if counts[c] > 0:
            continue
        own = np.sum((x - centroids[labels]) ** 2, axis=1)  # (n,)
        own[counts[labels] < 2] = -1.0  # never empty another cluster
        i = int(np.argmax(own))
        old = labels[i]
        labels[i] = c
        centroids[c] = x[i]
        centroids[old] = x[labels == old].mean(axis=0)


def kmeans(x, n_clusters, rng, *, max_iter=100) -> tuple[np.ndarray, np.ndarray]:
    r"""k-means (Lloyd's algorithm, vectorized) with k-means++ seeding.

    Alternates the assignment :math:`c_i = \arg\min_k \|x_i - \mu_k\|^2` (lowest ``k`` on ties)
    and the update :math:`\mu_k = \mathrm{mean}\{x_i : c_i = k\}` (an empty cluster keeps its
    centre) until the assignment stops changing or ``max_iter`` iterations. Clusters still empty at
    the end each take the point farthest from its centroid, so all ``n_clusters`` are non-empty.

    Parameters
    ----------
    x : ndarray, shape ``(n, D)``
    n_clusters : int, ``1 <= n_clusters <= n``
    rng : numpy.random.Generator or int seed
        Only the seeding draws from it.
    max_iter : int

    Returns
    -------
    centroids : ndarray, shape ``(n_clusters, D)``, float64
    labels : ndarray of int, shape ``(n,)``
    """
    x = np.asarray(x, dtype=np.float64)
    rng = check_rng(rng)
    n = x.shape[0]
    centroids = x[kmeans_plusplus_init(x, n_clusters, rng)].copy()  # (k, D)
    labels = np.full(n, -1)
    for _ in range(max_iter):
        new = np.argmin(_sq_dists(x, centroids), axis=1)  # (n,)
        if np.array_equal(new, labels):
            break
        labels = new
        onehot = np.zeros((n, n_clusters))
        onehot[np.arange(n), labels] = 1.0  # (n, k)
        counts = onehot.sum(axis=0)  # (k,)
        sums = onehot.T @ x  # (k, D)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    _fill_empty_clusters(x, labels, centroids)
    return centroids, labels


def kmeans_naive(x, n_clusters, rng, *, max_iter=100) -> tuple[np.ndarray, np.ndarray]:
    """Loop twin of :func:`kmeans` (same seeding, same tie rules; for tests)."""
    x = np.asarray(x, dtype=np.float64)
    rng = check_rng(rng)
    n = x.shape[0]
    centroids = x[kmeans_plusplus_init(x, n_clusters, rng)].copy()
    labels = [-1] * n
    for _ in range(max_iter):
        new = []
        for i in range(n):
            d = [np.sum((x[i] - centroids[k]) ** 2) for k in range(n_clusters)]
            new.append(int(np.argmin(d)))
        if new == labels:
            break
        labels = new
        for k in range(n_clusters):
            members = [x[i] for i in range(n) if labels[i] == k]
            if members:
                centroids[k] = np.mean(members, axis=0)
    labels = np.array(labels)
    _fill_empty_clusters(x, labels, centroids)
    return centroids, labels


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
    if (isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral)
            or not 1 <= n_clusters <= n):
        raise ValueError(f"n_clusters: expected an int in [1, {n}] (the number of filters), "
                         f"got {n_clusters!r}")
    centroids, labels = kmeans(f, int(n_clusters), rng, max_iter=max_iter)
    own = np.sqrt(np.sum((f - centroids[labels]) ** 2, axis=1))  # (n,) distance to own centroid
    member = labels[None, :] == np.arange(n_clusters)[:, None]  # (k, n)
    reps = np.argmin(np.where(member, own[None, :], np.inf), axis=1)  # (k,)
    d = np.sqrt(np.sum((f - f[reps[labels]]) ** 2, axis=1))  # (n,) distance to representative
    scores = d / (1.0 + d)
    scores[reps] = 1.0 + member.sum(axis=1) / n
    return scores
