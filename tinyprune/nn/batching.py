"""Mini-batch iteration with explicit randomness.

Used by :func:`tinyprune.nn.train.fit` and ``evaluate``; imports only NumPy.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np

__all__ = ["iterate_minibatches"]


def _as_rng(rng, shuffle: bool) -> np.random.Generator | None:
    if rng is None:
        if shuffle:
            raise ValueError(
                "rng: expected a numpy.random.Generator or an int seed when shuffle=True, "
                "got None (pass rng=np.random.default_rng(seed), or shuffle=False)"
            )
        return None
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng: expected a non-negative int seed, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}"
    )


def iterate_minibatches(
    X: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = True, rng=None,
    drop_last: bool = False, return_index: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield ``(xb, yb)`` mini-batches covering ``X`` and ``y`` once (one epoch).

    Parameters
    ----------
    X : numpy.ndarray
        Samples, shape (N, ...), e.g. (N, C, H, W). Never modified.
    y : numpy.ndarray
        Targets, shape (N, ...). Never modified.
    batch_size : int
        Samples per batch (>= 1). The last batch may be smaller unless ``drop_last``.
    shuffle : bool
        Visit the samples in a random order drawn from ``rng``.
    rng : numpy.random.Generator or int, optional
        Source of the permutation; required when ``shuffle`` is True. An int is used as the
        seed of a fresh ``np.random.default_rng``, so it gives the *same* order on every call:
        pass one Generator across epochs to get a new order each epoch.
    drop_last : bool
        Skip the final batch when it has fewer than ``batch_size`` samples.
    return_index : bool
        Also yield the positions of the batch's samples in ``X`` (a third item).

    Yields
    ------
    xb : numpy.ndarray
        Shape (B, ...): a view of ``X`` when ``shuffle`` is False, a copy otherwise.
    yb : numpy.ndarray
        Shape (B, ...), matching ``xb``.
    index : numpy.ndarray of int64, shape (B,)
        Only with ``return_index``: ``X[index]`` equals ``xb``.

    Raises
    ------
    TypeError, ValueError
        Raised at call time (not at the first ``next``) for non-array inputs, mismatched
        lengths, a bad ``batch_size`` or ``rng``, or ``shuffle=True`` without ``rng``.

    Notes
    -----
    The permutation is drawn from ``rng`` when the function is called, not lazily.
    """
    if not isinstance(X, np.ndarray):
        raise TypeError(f"X: expected a numpy.ndarray, got {type(X).__name__}")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"y: expected a numpy.ndarray, got {type(y).__name__}")
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"X, y: expected arrays with a sample axis, got shapes {X.shape} "
                         f"and {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"y: expected {X.shape[0]} samples like X, got {y.shape[0]} "
                         f"(X {X.shape}, y {y.shape})")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size: expected an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size}")
    for name, flag in (("shuffle", shuffle), ("drop_last", drop_last),
                       ("return_index", return_index)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name}: expected a bool, got {flag!r}")
    gen = _as_rng(rng, bool(shuffle))
    order = gen.permutation(X.shape[0]) if shuffle else None
    return _batches(X, y, int(batch_size), order, bool(drop_last), bool(return_index))


def _batches(X, y, batch_size, order, drop_last, return_index):
    n = X.shape[0]
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        if order is None:
            batch = X[start:end], y[start:end]  # views
            idx = np.arange(start, end, dtype=np.int64) if return_index else None
        else:
            idx = order[start:end]  # (B,)
            batch = X[idx], y[idx]
        yield (*batch, idx) if return_index else batch
