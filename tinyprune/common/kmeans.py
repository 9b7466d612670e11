r"""k-means clustering (Lloyd's algorithm), shared by the technique packages.

TEMPORARY (quantize branch): a plain re-implementation with the shared signature
``kmeans(x, n_clusters, rng, *, max_iter=100, init=None) -> (centroids, labels)``, so that the
weight-sharing code of :mod:`tinyprune.quantize` can be written against it before the package's
one k-means moves here from the pruning criteria. To be reconciled at merge time.

Lloyd's algorithm alternates two steps until the assignment stops changing:

* assignment: :math:`c_i = \arg\min_k \|x_i - \mu_k\|^2` (lowest ``k`` on ties);
* update: :math:`\mu_k = \operatorname{mean}\{x_i : c_i = k\}`; a cluster left empty keeps its
  centroid (deterministic; it may win points back at the next assignment).

Neither step can increase the within-cluster sum of squares
:math:`\sum_i \|x_i - \mu_{c_i}\|^2`.
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.validation import as_generator, check_float_array, check_int

__all__ = ["assign", "kmeans", "within_cluster_ss"]

_CHUNK = 16384


def assign(x, centroids) -> np.ndarray:
    """Assignment step: index of the nearest centroid for each row of ``x`` (lowest on ties).

    Parameters
    ----------
    x : ndarray (n, d), float64
    centroids : ndarray (k, d), float64

    Returns
    -------
    labels : ndarray (n,), int64
    """
    labels = np.empty(x.shape[0], dtype=np.int64)
    for s in range(0, x.shape[0], _CHUNK):  # chunks of rows bound the (rows, k, d) memory
        d2 = ((x[s:s + _CHUNK, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)  # (rows, k)
        labels[s:s + _CHUNK] = np.argmin(d2, axis=1)
    return labels


def within_cluster_ss(x, centroids, labels) -> float:
    r""":math:`\sum_i \|x_i - \mu_{c_i}\|^2` (the quantity Lloyd's steps never increase)."""
    return float(((x - centroids[labels]) ** 2).sum())


def kmeans(x, n_clusters, rng, *, max_iter=100, init=None) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means.

    Parameters
    ----------
    x : ndarray (n, d), float32 or float64
        The points (for 1-D data pass ``x[:, None]``); finite.
    n_clusters : int, ``1 <= n_clusters <= n``
    rng : numpy.random.Generator or int seed
        Draws the initial centroids (``n_clusters`` distinct rows, Forgy) when ``init`` is None.
    max_iter : int, ``>= 1``
        Maximum number of (assignment, update) rounds.
    init : ndarray (n_clusters, d), optional
        Initial centroids (e.g. a weight-sharing initialisation: linear, density, k-means++).

    Returns
    -------
    centroids : ndarray (n_clusters, d), float64
    labels : ndarray (n,), int64
        ``labels[i]`` is the cluster of ``x[i]``; a cluster may end up empty.
    """
    check_float_array(x, "x", ndim=2, finite=True)
    n = x.shape[0]
    n_clusters = check_int(n_clusters, "n_clusters", minimum=1)
    if n_clusters > n:
        raise ValueError(f"n_clusters: expected at most n = {n} points, got {n_clusters}")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    rng = as_generator(rng, "rng")
    x = x.astype(np.float64)
    if init is None:
        centroids = x[rng.choice(n, size=n_clusters, replace=False)].copy()  # (k, d)
    else:
        check_float_array(init, "init", ndim=2, finite=True)
        if init.shape != (n_clusters, x.shape[1]):
            raise ValueError(f"init: expected shape {(n_clusters, x.shape[1])}, got {init.shape}")
        centroids = init.astype(np.float64)  # a copy: the caller's array is not touched
    labels = np.full(n, -1)
    for _ in range(max_iter):
        new = assign(x, centroids)  # (n,)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=n_clusters)  # (k,)
        for j in range(x.shape[1]):  # loop over the few dimensions only
            sums = np.bincount(labels, weights=x[:, j], minlength=n_clusters)  # (k,)
            filled = counts > 0
            centroids[filled, j] = sums[filled] / counts[filled]
    return centroids, labels
