r"""Compressed storage of an N:M sparse weight, and a matmul that uses it directly.

With ``n_pruned`` of every ``m`` weights pruned (:mod:`tinyprune.prune.nm`), each group of ``m``
stores only its ``k = m - n_pruned`` kept values plus, for each, its position inside the group: an
index in ``[0, m)``, i.e. :math:`\lceil \log_2 m \rceil` bits (2 bits for 2:4). This is the
layout of NVIDIA's sparse tensor cores (Mishra et al., "Accelerating Sparse Deep Neural Networks",
2021): a 2:4 float16 matrix takes half the values plus 2-bit metadata per value.

:class:`NMSparse` holds

* ``values``  -- ``(out, groups, k)``, the kept weights (dtype of the weight);
* ``indices`` -- ``(out, groups, k)``, ``uint8``, increasing positions inside each group;
* ``shape``, ``n_pruned``, ``m``.

Groups follow :mod:`tinyprune.prune.nm` (``m`` consecutive weights of ``w.reshape(out, -1)``,
``groups = ceil(L / m)``); with ``allow_partial=True`` a row whose length ``L`` is not a
multiple of ``m`` is zero-padded, the padding counting as pruned, exactly like
:func:`~tinyprune.prune.nm.nm_mask`.
"""

from __future__ import annotations

import numpy as np

from .criteria import check_weight
from .nm import _check_rows, check_nm, nm_group_view

_GATHER_BUDGET = 1 << 18  # elements gathered per chunk in matmul (1 MiB of float32, cache-sized)


class NMSparse:
    """An N:M sparse weight in compressed form (see the module docstring).

    Build it with :meth:`compress`; :meth:`decompress` gives the dense weight back exactly and
    :meth:`matmul` computes ``x @ W.T`` from the compressed form.

    Parameters
    ----------
    values : ndarray, shape ``(out, groups, m - n_pruned)``, float32/float64
    indices : ndarray of uint8, same shape, entries in ``[0, m)`` increasing along the last axis
    shape : tuple of int
        The dense weight's shape, ``(out, in)`` or ``(C_out, C_in, KH, KW)``.
    n_pruned, m : int
        The pattern: ``n_pruned`` of every ``m`` pruned (2:4 is ``n_pruned=2, m=4``).
    """

    def __init__(self, values, indices, shape, n_pruned, m):
        n_pruned, m = check_nm(n_pruned, m)
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (2, 4):
            raise ValueError(f"shape: expected a 2-D or 4-D weight shape, got {shape}")
        length = int(np.prod(shape[1:]))
        expected = (shape[0], -(-length // m), m - n_pruned)
        check_weight(values, "values")
        if values.shape != expected:
            raise ValueError(f"values: expected shape {expected}, got {values.shape}")
        if not isinstance(indices, np.ndarray) or indices.dtype != np.uint8:
            got = indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__
            raise TypeError(f"indices: expected a uint8 ndarray, got {got}")
        if indices.shape != expected:
            raise ValueError(f"indices: expected shape {expected}, got {indices.shape}")
        steps = np.diff(indices.astype(np.int16), axis=-1)  # int16: uint8 differences wrap
        if indices.size and (indices.max() >= m or np.any(steps <= 0)):
            raise ValueError(f"indices: expected strictly increasing positions in [0, {m}) "
                             f"within each group")
        self.values, self.indices = values, indices
        self.shape, self.n_pruned, self.m = shape, n_pruned, m

    # ------------------------------------------------------------------ construction
    @classmethod
    def compress(cls, w, n_pruned, m, *, allow_partial=False) -> NMSparse:
        """Compress an N:M compliant weight (every group has at least ``n_pruned`` zeros).

        Each group keeps the positions of its nonzeros, completed with its first zero positions
        when it has more than ``n_pruned`` zeros, so exactly ``k = m - n_pruned`` are stored.

        Parameters
        ----------
        w : ndarray, ``(out, in)`` or ``(C_out, C_in, KH, KW)``, float32/float64
            Typically ``w * nm_mask(w, n_pruned, m)``. Not modified.
        n_pruned, m : int
            ``0 <= n_pruned < m <= 256`` (indices are stored as uint8).
        allow_partial : bool
            Accept a row length that is not a multiple of ``m`` (padded, padding pruned).

        Raises
        ------
        ValueError
            A group has more than ``m - n_pruned`` nonzeros (the message names the first
            offending row and group), or the pattern / shape is invalid.
        """
        w = check_weight(w)
        n_pruned, m = check_nm(n_pruned, m)
        if m > 256:
            raise ValueError(f"m: expected m <= 256 (positions are stored as uint8), got {m}")
        length = _check_rows(w, m, allow_partial)
        k = m - n_pruned
        nonzero = nm_group_view(w != 0, m, fill=False)  # (out, groups, m)
        counts = nonzero.sum(axis=-1)  # (out, groups)
        if np.any(counts > k):
            o, g = (int(i) for i in np.argwhere(counts > k)[0])
            stop = min((g + 1) * m, length)
            raise ValueError(f"w: not {n_pruned}:{m} compliant (n_pruned:m): row {o}, group {g} "
                             f"(positions {g * m}..{stop - 1} of the flattened row) has "
                             f"{counts[o, g]} nonzeros, at most m - n_pruned = {k} allowed")
        # nonzeros first (in index order), then zeros (in index order); keep k, sorted
        order = np.argsort(~nonzero, axis=-1, kind="stable")[..., :k]  # (out, groups, k)
        idx = np.sort(order, axis=-1)
        values = np.take_along_axis(nm_group_view(w, m, fill=0), idx, axis=-1)  # (out, groups, k)
        return cls(values, idx.astype(np.uint8), w.shape, n_pruned, m)

    def decompress(self) -> np.ndarray:
        """The dense weight, shape :attr:`shape` (exact round trip of :meth:`compress`)."""
        out, groups, _ = self.values.shape
        dense = np.zeros((out, groups, self.m), dtype=self.values.dtype)  # (out, groups, m)
        np.put_along_axis(dense, self.indices.astype(np.intp), self.values, axis=-1)
        return dense.reshape(out, groups * self.m)[:, :self.length].reshape(self.shape)

    # ------------------------------------------------------------------ compute
    def _check_x(self, x):
        check_weight(x, "x")
        if x.ndim != 2 or x.shape[1] != self.length:
            raise ValueError(f"x: expected shape (batch, {self.length}) (batch, in*KH*KW), "
                             f"got {x.shape}")
        return x

    def matmul(self, x) -> np.ndarray:
        r"""``x @ W.T`` without densifying ``W``.

        .. math:: y_{b,o} = \sum_{g} \sum_{j < k} v_{o,g,j}\, x_{b,\; g m + \mathrm{idx}_{o,g,j}}

        The columns of ``x`` that meet a kept weight are gathered by index (``x.T[cols]``, rows of
        length ``batch``) and contracted with the values by a batched matrix-vector product, in
        chunks of output rows to bound memory.

        Parameters
        ----------
        x : ndarray, shape ``(batch, in)``, float32/64
            ``in = C_in*KH*KW`` for a conv weight, in its ``(C_in, KH, KW)`` order.

        Returns
        -------
        ndarray, shape ``(batch, out)``, dtype ``result_type(x, values)``
        """
        x = self._check_x(x)
        out, groups, k = self.values.shape
        batch = x.shape[0]
        xt = np.zeros((groups * self.m, batch), dtype=x.dtype)  # (groups*m, batch), padded
        xt[:self.length] = x.T
        cols = (np.arange(groups) * self.m)[None, :, None] + self.indices  # (out, groups, k)
        cols = cols.reshape(out, groups * k)  # (out, G*k)
        vals = self.values.reshape(out, 1, groups * k)  # (out, 1, G*k)
        y = np.empty((out, batch), dtype=np.result_type(x, self.values))  # (out, batch)
        step = max(1, _GATHER_BUDGET // max(1, groups * k * batch))
        for o0 in range(0, out, step):
            gathered = xt[cols[o0:o0 + step]]  # (c, G*k, batch)
            y[o0:o0 + step] = np.matmul(vals[o0:o0 + step], gathered)[:, 0, :]  # (c, batch)
        return y.T

    def matmul_naive(self, x) -> np.ndarray:
        """Loop twin of :meth:`matmul` (for tests)."""
        x = self._check_x(x)
        out, groups, k = self.values.shape
        y = np.zeros((x.shape[0], out), dtype=np.result_type(x, self.values))
        for o in range(out):
            for g in range(groups):
                for j in range(k):
                    col = g * self.m + int(self.indices[o, g, j])
                    if col < self.length:
                        y[:, o] += self.values[o, g, j] * x[:, col]
        return y

    # ------------------------------------------------------------------ accounting
    @property
    def length(self) -> int:
        """Row length ``L = in*KH*KW`` of the dense weight viewed as ``(out, L)``."""
        return int(np.prod(self.shape[1:]))

    @property
    def index_bits(self) -> int:
        r"""Bits per stored position, :math:`\lceil \log_2 m \rceil` (0 for ``m = 1``)."""
        return (self.m - 1).bit_length()

    @property
    def values_nbytes(self) -> int:
        """Bytes of the kept values."""
        return int(self.values.nbytes)

    @property
    def index_nbytes(self) -> int:
        """Bytes of the positions packed at :attr:`index_bits` bits each (rounded up)."""
        return -(-self.values.size * self.index_bits // 8)

    @property
    def nbytes(self) -> int:
        r"""Storage of the compressed weight: values bytes + packed index bytes.

        (The in-memory ``indices`` array uses one uint8 per position; this counts what a packed
        format needs: :math:`\lceil \log_2 m \rceil` bits per kept value.)
        """
        return self.values_nbytes + self.index_nbytes

    @property
    def dense_nbytes(self) -> int:
        """Bytes of the dense weight in the same dtype."""
        return int(np.prod(self.shape)) * self.values.dtype.itemsize

    def __repr__(self) -> str:
        return (f"NMSparse(shape={self.shape}, n_pruned={self.n_pruned}, m={self.m}, "
                f"dtype={self.values.dtype}, nbytes={self.nbytes}, "
                f"dense_nbytes={self.dense_nbytes})")
