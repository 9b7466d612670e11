r"""k-means weight sharing (Han, Mao & Dally, "Deep Compression", ICLR 2016, sec. 3).

The weights of a layer are clustered into :math:`k = 2^b` groups; every weight is replaced by
its cluster's centroid, so the layer stores a *codebook* of :math:`k` floats plus a
:math:`b`-bit *index* per weight::

    codebook, indices = cluster_weights(w, bits=5)      # k-means on the layer's weights
    w_shared = reconstruct(codebook, indices)           # codebook[indices], 0 where pruned

* Initialisation (sec. 3.1): ``"linear"`` (centroids evenly spaced between the smallest and the
  largest weight; Han et al. found it best, since it keeps the rare large weights),
  ``"density"`` (evenly spaced on the y axis of the weights' CDF: quantiles), ``"random"``
  (Forgy: ``k`` distinct weights drawn at random) and ``"kmeans++"`` (Arthur & Vassilvitskii
  2007: each next centroid drawn with probability proportional to its squared distance to the
  nearest one so far). Then Lloyd's k-means (:func:`tinyprune.common.kmeans.kmeans`).
* Pruning first: weights that are pruned (exactly 0, or False in ``model.masks``) are not
  clustered and stay exactly 0 (index ``-1``).
* Centroid fine-tuning (sec. 3.3): with the indices fixed, the gradient of a centroid is the sum
  of the gradients of its cluster's weights,
  :math:`\partial L / \partial c_k = \sum_{i: I_i = k} \partial L / \partial W_i`.
  :class:`WeightSharing` is the weight transform that trains them with the ordinary optimizers:
  every stored weight of a cluster holds the centroid (a copy), the forward pass reads
  ``codebook[indices]``, and the backward pass gives each copy the centroid's gradient (the sum
  over its cluster). One SGD step on the stored weights is then exactly the centroid update
  :math:`c_k \leftarrow c_k - \eta \sum_{i: I_i = k} \partial L / \partial W_i` applied to every
  copy, and the copies stay equal under momentum, weight decay and Adam (same value, same
  gradient, same state). Since the gradient is a sum over the cluster, a good SGD learning rate
  shrinks as the clusters grow: :func:`centroid_lr` gives ``1 / (largest mean cluster size)``.

Functions
---------
init_centroids   linear / density / random / k-means++ initial centroids of 1-D data
cluster_weights  k-means of one weight tensor -> (codebook, indices)
reconstruct      codebook[indices] (0 where pruned)
WeightSharing    the weight transform for centroid fine-tuning
share_weights    a copy of a model with shared weights and the transforms set
centroid_lr      an SGD learning rate for centroid fine-tuning, from the cluster sizes
"""

from __future__ import annotations

import numpy as np

from tinyprune.common.kmeans import kmeans
from tinyprune.nn.layers import Conv2d, Linear
from tinyprune.nn.model import Sequential
from tinyprune.nn.transforms import WeightTransform, register_transform
from tinyprune.nn.validation import as_generator, check_float_array, check_int, check_real

__all__ = ["INITS", "WeightSharing", "centroid_lr", "cluster_weights", "init_centroids",
           "reconstruct", "share_weights"]

#: The initialisations of :func:`init_centroids`.
INITS = ("linear", "density", "random", "kmeans++")

_MAX_BITS = 16


def _kmeans_plusplus_1d(values, k, rng) -> np.ndarray:
    """k-means++ seeding on 1-D data (loop over the ``k`` centroids only)."""
    n = values.shape[0]
    centroids = [values[rng.integers(n)]]
    d2 = (values - centroids[0]) ** 2  # (n,) squared distance to the nearest centroid
    for _ in range(1, k):
        total = d2.sum()
        i = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centroids.append(values[i])
        np.minimum(d2, (values - values[i]) ** 2, out=d2)
    return np.array(centroids)


def init_centroids(values, n_clusters, init="linear", rng=None) -> np.ndarray:
    r"""Initial centroids for clustering the 1-D ``values`` (Han et al. 2016, sec. 3.1).

    ========== ===============================================================================
    linear     :math:`c_j = \min + j (\max - \min) / (k - 1)`, ``j = 0..k-1``
    density    :math:`c_j = F^{-1}((2j + 1) / 2k)`: the CDF ``F`` split into ``k`` equal steps
               on its y axis, each centroid at a step's middle (quantiles of the values)
    random     Forgy: ``k`` values drawn without replacement
    kmeans++   first centroid uniform, each next with probability :math:`\propto D(x)^2`
    ========== ===============================================================================

    Parameters
    ----------
    values : ndarray (n,), float32 or float64, finite, ``n >= n_clusters``
    n_clusters : int, ``>= 1``
    init : str in :data:`INITS`
    rng : numpy.random.Generator or int seed
        Required by ``"random"`` and ``"kmeans++"``; unused by the others.

    Returns
    -------
    centroids : ndarray (n_clusters,), float64
    """
    check_float_array(values, "values", ndim=1, finite=True)
    k = check_int(n_clusters, "n_clusters", minimum=1)
    if values.shape[0] < k:
        raise ValueError(f"n_clusters: expected at most {values.shape[0]} (the number of "
                         f"values), got {k}")
    if init not in INITS:
        raise ValueError(f"init: expected one of {INITS}, got {init!r}")
    v = values.astype(np.float64)
    if init == "linear":
        return np.linspace(v.min(), v.max(), k)
    if init == "density":
        return np.quantile(v, (2 * np.arange(k) + 1) / (2 * k))
    rng = as_generator(rng, "rng")
    if init == "random":
        return v[rng.choice(v.shape[0], size=k, replace=False)]
    return _kmeans_plusplus_1d(v, k, rng)


def _check_bits(bits, name="bits"):
    bits = check_int(bits, name, minimum=1)
    if bits > _MAX_BITS:
        raise ValueError(f"{name}: expected at most {_MAX_BITS} bits (2^{_MAX_BITS} clusters), "
                         f"got {bits}")
    return bits


def cluster_weights(w, bits, *, init="linear", rng=None, mask=None, max_iter=100,
                    reserve_zero=False):
    r"""k-means weight sharing of one weight tensor: ``(codebook, indices)``.

    The kept weights (non-zero, and True in ``mask``) are clustered into at most
    :math:`2^{bits}` clusters with Lloyd's k-means from :func:`init_centroids`; a cluster that
    ends up empty is dropped (so the codebook may be shorter, never with unused entries).

    Parameters
    ----------
    w : ndarray, float32 or float64, any shape, finite
    bits : int, ``1..16``
        ``2^bits`` clusters (fewer when there are fewer kept weights).
    init : str in :data:`INITS`
    rng : numpy.random.Generator or int seed
        For the random initialisations (``"random"``, ``"kmeans++"``).
    mask : ndarray of bool, shape of ``w``, optional
        Pruning mask (True = kept); pruned weights are not clustered.
    max_iter : int
        Lloyd iterations.
    reserve_zero : bool
        Keep one of the :math:`2^{bits}` codes for the value 0: cluster into at most
        :math:`2^{bits} - 1` centroids. Deep Compression's sparse storage stores *filler zeros*
        (a gap longer than the relative index reaches, :mod:`tinyprune.size.csr`); they share the
        codebook with the centroids, so without a reserved code a layer with fillers needs
        :math:`2^{bits} + 1` entries, one more bit per stored weight.

    Returns
    -------
    codebook : ndarray (k,), dtype of ``w``
        The centroids (cluster means), ``k <= 2^bits`` (``<= 2^bits - 1`` with
        ``reserve_zero``).
    indices : ndarray of int32, shape of ``w``
        Cluster of each weight; ``-1`` for pruned weights.

    Examples
    --------
    >>> w = np.array([[0.1, 0.12, 0.0], [0.9, 1.1, 0.11]], dtype=np.float32)
    >>> codebook, indices = cluster_weights(w, 1)
    >>> codebook.round(2), indices
    (array([0.11, 1.  ], dtype=float32), array([[ 0,  0, -1],
           [ 1,  1,  0]], dtype=int32))
    """
    check_float_array(w, "w", finite=True)
    bits = _check_bits(bits)
    if not isinstance(reserve_zero, (bool, np.bool_)):
        raise TypeError(f"reserve_zero: expected a bool, got {reserve_zero!r}")
    kept = w != 0
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != w.shape:
            raise ValueError(f"mask: expected a bool array of shape {w.shape}, got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} "
                             f"{getattr(mask, 'shape', '')}")
        kept &= mask
    indices = np.full(w.shape, -1, dtype=np.int32)
    values = w[kept].astype(np.float64)  # (n_kept,)
    if values.size == 0:
        return np.zeros(0, dtype=w.dtype), indices
    k = min(2 ** bits - int(bool(reserve_zero)), values.size)
    start = init_centroids(values, k, init, rng)  # (k,)
    centroids, labels = kmeans(values, k, max_iter=max_iter, init=start,
                               fill_empty=False)  # (k,), (n_kept,)
    used = np.bincount(labels, minlength=k) > 0  # drop empty clusters, keep the order
    new_label = np.cumsum(used) - 1  # (k,)
    indices[kept] = new_label[labels]
    return centroids[used].astype(w.dtype), indices


def reconstruct(codebook, indices) -> np.ndarray:
    """``codebook[indices]``, and 0 where ``indices == -1`` (pruned).

    Parameters
    ----------
    codebook : ndarray (k,), float
    indices : integer ndarray, values in ``[-1, k)``

    Returns
    -------
    ndarray, shape of ``indices``, dtype of ``codebook``
    """
    check_float_array(codebook, "codebook", ndim=1)
    _check_indices(indices, codebook.shape[0])
    out = np.zeros(indices.shape, dtype=codebook.dtype)
    kept = indices >= 0
    out[kept] = codebook[indices[kept]]
    return out


def _check_indices(indices, k=None):
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
        raise TypeError(f"indices: expected an integer ndarray, got "
                        f"{getattr(indices, 'dtype', type(indices).__name__)}")
    if indices.size and (indices.min() < -1 or (k is not None and indices.max() >= k)):
        top = "k - 1" if k is None else k - 1
        raise ValueError(f"indices: expected values in [-1, {top}], got "
                         f"[{indices.min()}, {indices.max()}]")


@register_transform
class WeightSharing(WeightTransform):
    r"""Weight transform for centroid fine-tuning with fixed cluster indices.

    The stored weight ``W`` holds, in every position of cluster ``k``, the centroid ``c_k``
    (:func:`share_weights` sets it so); ``-1`` marks pruned positions.

    * forward: ``W_eff = c[indices]`` with ``c_k`` read from the first weight of cluster ``k``
      (all its weights are equal), and ``0`` where pruned;
    * backward: every weight of cluster ``k`` receives
      :math:`g_k = \sum_{i: I_i = k} \partial L / \partial W_{\mathrm{eff}, i}`, the centroid's
      gradient (Han et al. 2016, sec. 3.3), and pruned weights receive 0.

    The exact derivative of "read the first copy" would give the whole :math:`g_k` to one copy;
    giving it to *every* copy instead is what keeps the copies equal, so that an optimizer step
    on ``W`` is the centroid step :math:`c_k \leftarrow c_k - \eta\, g_k` (tested).

    Parameters
    ----------
    indices : integer ndarray, the weight's shape
        Cluster index per weight, ``-1`` for pruned ones (from :func:`cluster_weights`).
    """

    def __init__(self, indices):
        _check_indices(indices)
        self.indices = np.array(indices, dtype=np.int32)  # a copy: fixed during fine-tuning
        flat = self.indices.ravel()
        kept = np.flatnonzero(flat >= 0)
        clusters, first = np.unique(flat[kept], return_index=True)
        self.n_clusters = int(clusters[-1]) + 1 if clusters.size else 0
        if clusters.size != self.n_clusters:
            raise ValueError(f"indices: every cluster 0..{self.n_clusters - 1} needs a weight; "
                             f"missing {sorted(set(range(self.n_clusters)) - set(clusters))}")
        self._first = kept[first]  # (k,) flat position of each cluster's first weight
        self._kept = kept  # (n_kept,) flat positions of the kept weights
        self._kept_idx = flat[kept]  # (n_kept,) their clusters

    def codebook(self, w) -> np.ndarray:
        """The centroids ``c`` (``(k,)``, dtype of ``w``) held by the stored weight ``w``."""
        return w.ravel()[self._first]

    def _check(self, a, name):
        if not isinstance(a, np.ndarray) or a.shape != self.indices.shape:
            raise ValueError(f"WeightSharing: {name}: expected shape {self.indices.shape}, got "
                             f"{getattr(a, 'shape', type(a).__name__)}")

    def forward(self, w):
        self._check(w, "w")
        c = self.codebook(w)  # (k,)
        w_eff = np.zeros(w.shape, dtype=w.dtype)  # C order: ravel() is a view
        w_eff.ravel()[self._kept] = c[self._kept_idx]  # codebook[indices], 0 where pruned
        return w_eff, None

    def backward(self, dw_eff, cache):
        self._check(dw_eff, "dw_eff")
        g = np.bincount(self._kept_idx, weights=dw_eff.ravel()[self._kept],
                        minlength=self.n_clusters)  # (k,) sum of the cluster's gradients
        dw = np.zeros(dw_eff.shape, dtype=dw_eff.dtype)
        dw.ravel()[self._kept] = g[self._kept_idx]  # every copy gets its centroid's gradient
        return dw

    def arrays(self):
        return {"indices": self.indices}

    @classmethod
    def from_spec(cls, spec, arrays):
        return cls(arrays["indices"])

    def __repr__(self):
        return f"WeightSharing(shape={self.indices.shape}, n_clusters={self.n_clusters})"


def share_weights(model, bits, *, init="linear", rng=None, layers=None, max_iter=100,
                  reserve_zero=False):
    """A copy of ``model`` whose weights are shared (k-means) and ready for centroid
    fine-tuning with :func:`tinyprune.nn.train.fit`.

    Each chosen layer's weight is clustered (:func:`cluster_weights`, respecting
    ``model.masks`` and zeros), replaced by ``codebook[indices]`` and given a
    :class:`WeightSharing` transform. Biases are not shared (Han et al. 2016).

    Parameters
    ----------
    model : Sequential
        Not modified.
    bits : int or dict[str, int]
        Bits per index, for every layer or per layer name (Han et al.: conv 8, fc 5).
    init : str in :data:`INITS`
    rng : numpy.random.Generator or int seed
        For the random initialisations; the layers draw from it in order.
    layers : list of str, optional
        Default: every Linear / Conv2d (or the keys of ``bits`` when it is a dict).
    max_iter : int
    reserve_zero : bool
        As in :func:`cluster_weights`: at most :math:`2^{bits} - 1` centroids, so that the filler
        zeros of the sparse storage fit the same ``bits`` (Deep Compression's pipeline).

    Returns
    -------
    Sequential
        The new model; ``new.transforms[name].codebook(new.params[name])`` is the codebook.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    if layers is None:
        layers = list(bits) if isinstance(bits, dict) else [
            n for n, m in model.layers.items() if isinstance(m, (Linear, Conv2d))]
    for n in layers:
        if n not in model.layers or not isinstance(model.layers[n], (Linear, Conv2d)):
            raise ValueError(f"layers: {n!r} is not a Linear or Conv2d layer of the model; "
                             f"layers: {list(model.layers)}")
    if isinstance(bits, dict):
        missing = [n for n in layers if n not in bits]
        if missing:
            raise ValueError(f"bits: no entry for layers {missing}")
    per_layer = {n: _check_bits(bits[n] if isinstance(bits, dict) else bits, f"bits[{n!r}]")
                 for n in layers}
    if init in ("random", "kmeans++"):
        rng = as_generator(rng, "rng")
    new = model.copy()
    for n in layers:
        name = f"{n}.weight"
        codebook, indices = cluster_weights(new.params[name], per_layer[n], init=init, rng=rng,
                                            mask=new.masks.get(name), max_iter=max_iter,
                                            reserve_zero=reserve_zero)
        new.set_param(name, reconstruct(codebook, indices))
        new.set_transform(name, WeightSharing(indices))
    return new


def centroid_lr(model, scale=1.0) -> float:
    r"""An SGD learning rate for centroid fine-tuning that scales with the cluster sizes:
    :math:`\eta = \text{scale} / \bar n`, :math:`\bar n` the largest mean cluster size
    (kept weights per centroid) over the model's :class:`WeightSharing` weights.

    A centroid's gradient is the *sum* of its cluster's :math:`n_k` weight gradients (Han et
    al. 2016, sec. 3.3), so the same learning rate moves a centroid of a big cluster much
    further: with a fixed rate, fewer bits (bigger clusters) or a bigger layer diverge. Scaling
    the rate by :math:`1 / \bar n` keeps the gradient the sum (the centroid update is still
    Han's) and makes its size independent of the clustering. Measured on LeNet-300-100
    (SGD, momentum 0.9, batch 64, Fashion-MNIST): with ``scale = 1`` fine-tuning at 2 to 6 bits
    never diverged and improved the shared model, while 1e-3 diverged at 2-3 bits (and at 5 bits
    on a model trained 10 epochs); divergence began at about ``scale`` 5 to 15. Adam does not
    need this (its steps do not scale with the gradient).

    Parameters
    ----------
    model : Sequential
        With at least one :class:`WeightSharing` transform (:func:`share_weights`).
    scale : float, ``> 0``
        :math:`\eta \bar n`.

    Returns
    -------
    float

    Examples
    --------
    >>> from tinyprune.nn import lenet_300_100
    >>> shared = share_weights(lenet_300_100(seed=0), 3)  # fc1: 235,200 weights, 8 clusters
    >>> centroid_lr(shared) == 8 / 235200
    True
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    scale = check_real(scale, "scale", minimum=0.0, exclusive_minimum=True)
    sizes = [np.count_nonzero(t.indices >= 0) / t.n_clusters
             for t in model.transforms.values()
             if isinstance(t, WeightSharing) and t.n_clusters > 0]
    if not sizes:
        raise ValueError(f"model: no weight-shared layer (WeightSharing transform); transforms: "
                         f"{sorted(model.transforms)}")
    return float(scale / max(sizes))
