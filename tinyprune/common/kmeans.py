r"""k-means clustering (Lloyd's algorithm with k-means++ seeding), shared by the techniques.

Pruning clusters filters (:func:`tinyprune.prune.criteria.cluster_redundancy_scores`: rows of
``(n, D)``); weight sharing clusters scalar weights (``x`` of shape ``(n,)``). Both use
:func:`kmeans`:

* seeding (Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007):
  :func:`kmeans_plusplus_init`;
* or initial centroids given by the caller (``init=``; weight sharing's linear, density and
  random initialisations, Han et al. 2016);
* assignment :math:`c_i = \arg\min_k \|x_i - \mu_k\|^2` (lowest ``k`` on ties; the squared
  distances are computed as :math:`\sum_d (x_{id} - \mu_{kd})^2`, exactly as the loop twin
  does, so both break ties alike; :func:`assign`) and update
  :math:`\mu_k = \mathrm{mean}\{x_i : c_i = k\}` (an empty cluster keeps its centre; :func:`update`)
  until the assignment stops changing (Lloyd 1982);
* every cluster non-empty at the end.

Only the seeding draws from ``rng``, so the same ``rng`` (or int seed) gives bit-identical results.
:func:`kmeans_naive` is the loop twin the tests compare against.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..nn.validation import as_generator, check_float_array, check_int
from .kmeans_1d import SortedAssigner

__all__ = ["assign", "kmeans", "kmeans_naive", "kmeans_plusplus_init", "update",
           "within_cluster_ss"]

_ASSIGN_ROWS = 1 << 14  # rows per chunk of the (rows, k) distance matrix in the assignment step


def _check_data(x, n_clusters, max_iter=None):
    """``x`` as a float64 ``(n, D)`` matrix (a 1-D ``x`` becomes ``(n, 1)``), and the checks."""
    check_float_array(x, "x", finite=True, nonempty=True)
    if x.ndim not in (1, 2):
        raise ValueError(f"x: expected shape (n,) or (n, d), got {x.shape}")
    x2 = x.reshape(x.shape[0], -1).astype(np.float64)  # (n, D), a copy
    n_clusters = check_int(n_clusters, "n_clusters", minimum=1, maximum=x2.shape[0])
    if max_iter is not None:
        check_int(max_iter, "max_iter", minimum=1)
    return x2, n_clusters


def kmeans_plusplus_init(x, n_clusters, rng) -> np.ndarray:
    r"""k-means++ seeding: indices of ``n_clusters`` distinct rows of ``x``.

    The first centre is uniform; each next one is drawn with probability proportional to
    :math:`D(x)^2`, the squared distance to the nearest centre chosen so far. If every remaining
    point coincides with a centre (all :math:`D^2 = 0`), the next centre is drawn uniformly among
    the rows not yet chosen, so the indices are always distinct.

    Parameters
    ----------
    x : ndarray, shape ``(n,)`` or ``(n, D)``, float32/float64, finite
    n_clusters : int, ``1 <= n_clusters <= n``
    rng : numpy.random.Generator or int seed

    Returns
    -------
    ndarray of int, shape ``(n_clusters,)``
    """
    x, n_clusters = _check_data(x, n_clusters)
    return _plusplus(x, n_clusters, as_generator(rng))


def _plusplus(x, n_clusters, rng) -> np.ndarray:
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


def assign(x, centroids) -> np.ndarray:
    r"""Assignment step: :math:`c_i = \arg\min_k \sum_d (x_{id} - \mu_{kd})^2`, lowest ``k`` on ties.

    Parameters
    ----------
    x : ndarray (n, D), float64
    centroids : ndarray (k, D), float64

    Returns
    -------
    labels : ndarray (n,), int64
    """
    labels = np.empty(x.shape[0], dtype=np.int64)  # (n,)
    for s in range(0, x.shape[0], _ASSIGN_ROWS):  # row chunks bound the (rows, k, D) memory
        diff = x[s:s + _ASSIGN_ROWS, None, :] - centroids[None, :, :]  # (rows, k, D)
        labels[s:s + _ASSIGN_ROWS] = np.argmin((diff * diff).sum(axis=2), axis=1)
    return labels


def update(x, labels, centroids) -> np.ndarray:
    r"""Update step: :math:`\mu_k = \mathrm{mean}\{x_i : c_i = k\}`; a cluster with no member keeps
    its centre ``centroids[k]`` (never NaN).

    Parameters
    ----------
    x : ndarray (n, D) or (n,), float32/float64, finite
        The points (1-D: scalars, e.g. the kept weights of a layer).
    labels : ndarray (n,) of int in ``[0, k)``
        The cluster of each point (from :func:`assign`).
    centroids : ndarray (k, D) (or (k,) for a 1-D ``x``), float
        The current centres; not modified.

    Returns
    -------
    ndarray, shape of ``centroids``, float64
        New array.

    Examples
    --------
    >>> update(np.array([0.0, 1.0, 5.0]), np.array([0, 0, 1]), np.array([0.0, 4.0, 9.0]))
    array([0.5, 5. , 9. ])
    """
    check_float_array(x, "x", finite=True)
    check_float_array(centroids, "centroids", finite=True, nonempty=True)
    if x.ndim not in (1, 2) or centroids.ndim != x.ndim or \
            (x.ndim == 2 and centroids.shape[1] != x.shape[1]):
        raise ValueError(f"centroids: expected shape (k,) for x of shape (n,) or (k, d) for x of "
                         f"shape (n, d); got centroids {centroids.shape} and x {x.shape}")
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise TypeError(f"labels: expected an integer ndarray, got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)}")
    k = centroids.shape[0]
    if labels.shape != (x.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() >= k)):
        raise ValueError(f"labels: expected shape ({x.shape[0]},) with values in [0, {k}), got "
                         f"shape {labels.shape}" + (f", values in [{labels.min()}, {labels.max()}]"
                                                    if labels.size else ""))
    x2 = (x[:, None] if x.ndim == 1 else x).astype(np.float64, copy=False)  # (n, D), n may be 0
    c2 = centroids[:, None] if centroids.ndim == 1 else centroids
    new = _update(x2, labels, c2.astype(np.float64))  # (k, D), a copy
    return new.reshape(centroids.shape)


def _update(x, labels, centroids) -> np.ndarray:
    """:func:`update` without the checks: ``x`` (n, D) float64, ``centroids`` (k, D) float64,
    updated in place and returned."""
    k = centroids.shape[0]
    counts = np.bincount(labels, minlength=k)  # (k,)
    sums = _cluster_sums(x, labels, k)  # (k, D)
    filled = counts > 0
    centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


def within_cluster_ss(x, centroids, labels) -> float:
    r""":math:`\sum_i \|x_i - \mu_{c_i}\|^2`, the quantity Lloyd's two steps never increase.

    ``x`` (n, D) or (n,), ``centroids`` (k, D) or (k,) alike, ``labels`` (n,) ints."""
    return float(((x - centroids[labels]) ** 2).sum())


def _cluster_sums(x, labels, k) -> np.ndarray:
    """Per-cluster sums of the rows of ``x``: ``sums[labels[i]] += x[i]``, shape ``(k, D)``."""
    return np.stack([np.bincount(labels, weights=x[:, d], minlength=k)
                     for d in range(x.shape[1])], axis=1)  # loop over the D dimensions only


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


def _shaped(x, centroids):
    return centroids[:, 0] if x.ndim == 1 else centroids


def _initial_centroids(x, x2, n_clusters, rng, init):
    if init is None:
        return x2[_plusplus(x2, n_clusters, as_generator(rng))].copy()  # (k, D)
    check_float_array(init, "init", finite=True)
    want = (n_clusters,) if x.ndim == 1 else (n_clusters, x2.shape[1])
    if init.shape != want:
        raise ValueError(f"init: expected initial centroids of shape {want}, got {init.shape}")
    return init.reshape(n_clusters, -1).astype(np.float64)  # a copy: init is not modified


def kmeans(x, n_clusters, rng=None, *, max_iter=100, init=None, fast=True,
           fill_empty=True) -> tuple[np.ndarray, np.ndarray]:
    r"""k-means (Lloyd's algorithm, vectorized) with k-means++ seeding or given centroids.

    Alternates the assignment :math:`c_i = \arg\min_k \|x_i - \mu_k\|^2` (lowest ``k`` on ties)
    and the update :math:`\mu_k = \mathrm{mean}\{x_i : c_i = k\}` (an empty cluster keeps its
    centre) until the assignment stops changing or ``max_iter`` iterations. Clusters still empty at
    the end each take the point farthest from its centroid, so all ``n_clusters`` are non-empty.

    Parameters
    ----------
    x : ndarray, shape ``(n,)`` (scalars, e.g. weights to share) or ``(n, D)``, float32/float64
        Finite values; never modified.
    n_clusters : int, ``1 <= n_clusters <= n``
    rng : numpy.random.Generator or int seed
        Only the seeding draws from it.
    max_iter : int, ``>= 1``

    Returns
    -------
    centroids : ndarray, shape ``(n_clusters,)`` for 1-D ``x`` else ``(n_clusters, D)``, float64
    labels : ndarray of int, shape ``(n,)``

    Raises
    ------
    TypeError
        ``x`` not a float array (integers: convert first), ``n_clusters``/``max_iter`` not ints,
        ``rng`` neither a Generator nor an int.
    ValueError
        ``x`` empty, not 1-D/2-D, or with NaN/inf; ``n_clusters`` outside ``[1, n]``;
        ``max_iter < 1``.

    Examples
    --------
    >>> centroids, labels = kmeans(np.array([0.0, 0.1, 5.0, 5.2]), 2, rng=0)
    >>> sorted(np.round(centroids, 2).tolist())
    [0.05, 5.1]
    """
    x2, n_clusters = _check_data(x, n_clusters, max_iter)
    centroids = _initial_centroids(x, x2, n_clusters, rng, init)  # (k, D)
    step = SortedAssigner(x2[:, 0], assign) if fast and x.ndim == 1 else partial(assign, x2)
    labels = np.full(x2.shape[0], -1)
    for _ in range(max_iter):
        new = step(centroids)  # (n,)
        if np.array_equal(new, labels):
            break
        labels = new
        _update(x2, labels, centroids)  # (k, D), empty clusters keep their centre
    labels = labels.astype(np.int64)
    if fill_empty:
        _fill_empty_clusters(x2, labels, centroids)
    return _shaped(x, centroids), labels


def kmeans_naive(x, n_clusters, rng=None, *, max_iter=100, init=None):
    """Loop twin of :func:`kmeans` (same seeding, same tie rules; for tests)."""
    x2, n_clusters = _check_data(x, n_clusters, max_iter)
    n = x2.shape[0]
    centroids = _initial_centroids(x, x2, n_clusters, rng, init)
    labels = [-1] * n
    for _ in range(max_iter):
        new = []
        for i in range(n):
            d = [np.sum((x2[i] - centroids[k]) ** 2) for k in range(n_clusters)]
            new.append(int(np.argmin(d)))
        if new == labels:
            break
        labels = new
        for k in range(n_clusters):
            members = [x2[i] for i in range(n) if labels[i] == k]
            if members:
                centroids[k] = np.mean(members, axis=0)
    labels = np.array(labels)
    _fill_empty_clusters(x2, labels, centroids)
    return _shaped(x, centroids), labels
