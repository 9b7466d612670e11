r"""Sparse storage: CSR with *relative* column indices of ``b`` bits and filler zeros.

Deep Compression (Han, Mao & Dally, ICLR 2016, Sec. 2 and Fig. 2) stores a pruned weight in
compressed sparse row form, but instead of each nonzero's absolute column it stores the
*difference* to the previous stored entry, in only ``b`` bits (the paper: 8 bits for conv layers,
5 for fc layers; the EIE accelerator uses 4). When a gap is too long for ``b`` bits, a **filler
zero** is stored: an entry of value 0 placed as far as the ``b`` bits reach.

Conventions (decided here, tested):

* A weight is viewed as a matrix ``(rows, cols) = (out, in)`` for Linear and
  ``(C_out, C_in*KH*KW)`` for Conv2d (the reshape ``w.reshape(out, -1)``); 1-D arrays are one row.
* **The relative index restarts at every row**: the first entry of a row is counted from the
  row's start. Together with the row pointers this is a true CSR (a row can be decoded alone,
  rows in parallel); running the differences over the flattened matrix, as the paper's figure
  does for one vector, would make the row pointers redundant but the rows sequential.
* The stored code of an entry is the **number of zeros skipped** since the previous stored entry
  of the row (for the first entry: since the row start), i.e. the column difference minus one:

  .. math:: c_j = \mathrm{col}_j - \mathrm{col}_{j-1} - 1, \qquad \mathrm{col}_{-1} = -1,
            \qquad 0 \le c_j \le 2^b - 1 .

  ``b`` bits therefore reach a column difference of :math:`2^b` (the paper's "span exceeds
  :math:`8 = 2^3`" for 3 bits). A run of :math:`g \ge 2^b` zeros is split by
  :math:`\lfloor g / 2^b \rfloor` filler zeros, each with code :math:`2^b - 1`; the entry after
  them gets code :math:`g \bmod 2^b`.
* Fig. 2 of the paper, 3-bit indices, nonzeros 3.4, 0.9, 1.7 at columns 1, 4, 15: the stored
  entries are at columns 1, 4, **12** (filler), 15 with values 3.4, 0.9, 0, 1.7 and codes
  1, 2, 7, 2; the figure's "diff" row (1, 3, 8, 3) is the column difference, counted from column
  0 for the first entry.
* Zeros are compared by value: ``-0.0`` is a zero (decoded as ``+0.0``).

Bits (exact, each stream rounded up to whole bytes on its own):

* values: ``n_stored * 8 * itemsize`` (float32: 32 bits; codebook indices replace them in
  :mod:`tinyprune.size.accounting`);
* relative indices: ``n_stored * b``;
* row pointers: ``rows + 1`` pointers into the stored entries, each of
  ``max(1, bit_length(n_stored))`` bits.

Functions: :func:`csr_encode` (vectorized), :func:`csr_encode_naive` (its loop twin),
:func:`csr_decode`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyprune.common.bitpack import packed_nbytes
from tinyprune.nn.validation import check_float_array, check_int

__all__ = ["RelativeCSR", "csr_decode", "csr_encode", "csr_encode_naive", "check_index_bits",
           "as_matrix"]


def check_index_bits(index_bits, name="index_bits") -> int:
    """``1 <= index_bits <= 16`` as an int."""
    b = check_int(index_bits, name, minimum=1)
    if b > 16:
        raise ValueError(f"{name}: expected an integer in [1, 16], got {b}")
    return b


def as_matrix(w, name="w") -> np.ndarray:
    """``w`` (float32/float64, finite, ndim >= 1) viewed as ``(rows, cols)``: ``w.reshape(out, -1)``."""
    check_float_array(w, name, finite=True)
    if w.ndim == 0:
        raise ValueError(f"{name}: expected an array with at least 1 dimension, got a scalar")
    if w.ndim == 1:
        return w.reshape(1, -1)  # (1, n)
    return w.reshape(w.shape[0], -1)  # (rows, cols)


@dataclass(frozen=True)
class RelativeCSR:
    """A sparse weight in CSR form with relative indices (see the module docstring).

    Attributes
    ----------
    values : ndarray, shape ``(n_stored,)``, the weight's dtype
        Stored entries in row-major order; filler zeros included (value 0).
    rel : ndarray, shape ``(n_stored,)``, uint16
        Codes in ``[0, 2**index_bits)``: zeros skipped before each entry within its row.
    row_ptr : ndarray, shape ``(rows + 1,)``, int64
        Entries of row ``r`` are ``values[row_ptr[r]:row_ptr[r + 1]]``.
    shape : tuple of int
        The dense weight's shape.
    index_bits : int
        ``b``, bits per relative index.
    """

    values: np.ndarray
    rel: np.ndarray
    row_ptr: np.ndarray
    shape: tuple
    index_bits: int

    @property
    def n_stored(self) -> int:
        """Stored entries (nonzeros + filler zeros)."""
        return int(self.values.size)

    @property
    def n_fillers(self) -> int:
        """Filler zeros among the stored entries (entries whose value is 0)."""
        return int(np.count_nonzero(self.values == 0))

    @property
    def pointer_bits(self) -> int:
        """Bits per row pointer, ``max(1, bit_length(n_stored))`` (pointers lie in ``[0, n_stored]``)."""
        return max(1, self.n_stored.bit_length())

    @property
    def values_nbytes(self) -> int:
        """Bytes of the stored values in their dtype (float32: 4 per entry)."""
        return int(self.values.nbytes)

    @property
    def index_nbytes(self) -> int:
        """Bytes of the relative indices packed at ``index_bits`` bits each."""
        return packed_nbytes(self.n_stored, self.index_bits)

    @property
    def row_ptr_nbytes(self) -> int:
        """Bytes of the ``rows + 1`` row pointers packed at :attr:`pointer_bits` bits each."""
        return packed_nbytes(self.row_ptr.size, self.pointer_bits)

    @property
    def nbytes(self) -> int:
        """Values + relative indices + row pointers, bytes."""
        return self.values_nbytes + self.index_nbytes + self.row_ptr_nbytes


def _check_csr_input(w, index_bits):
    index_bits = check_index_bits(index_bits)
    return as_matrix(w), index_bits


def csr_encode(w, index_bits) -> RelativeCSR:
    r"""Encode a (pruned) weight as CSR with ``index_bits``-bit relative indices.

    For a nonzero preceded by :math:`g` zeros in its row (since the previous nonzero or the row
    start), :math:`f = \lfloor g / 2^b \rfloor` filler zeros are stored first, each with code
    :math:`2^b - 1`, then the nonzero with code :math:`g - f\,2^b`. Vectorized: every nonzero
    expands to :math:`f + 1` stored entries with ``np.repeat``.

    Parameters
    ----------
    w : ndarray, float32/float64, shape ``(out, in)``, ``(C_out, C_in, KH, KW)`` or ``(n,)``
        Finite; not modified. Zeros (``w == 0``) are not stored.
    index_bits : int
        ``b`` in ``[1, 16]``.

    Returns
    -------
    RelativeCSR

    Examples
    --------
    The paper's Fig. 2 (3-bit indices):

    >>> w = np.zeros(16, np.float32); w[[1, 4, 15]] = [3.4, 0.9, 1.7]
    >>> c = csr_encode(w, 3)
    >>> c.values.tolist() == [np.float32(3.4), np.float32(0.9), 0.0, np.float32(1.7)]
    True
    >>> c.rel.tolist()
    [1, 2, 7, 2]
    """
    mat, b = _check_csr_input(w, index_bits)
    rows, cols = mat.shape
    r, c = np.nonzero(mat)  # (nnz,), row-major order
    prev = np.empty_like(c)  # column of the previous nonzero of the same row, -1 at a row start
    prev[1:] = c[:-1]
    first = np.ones(r.size, dtype=bool)
    first[1:] = r[1:] != r[:-1]
    prev[first] = -1
    gap = c - prev - 1  # (nnz,) zeros skipped
    span = 1 << b
    fillers = gap // span  # (nnz,)
    reps = fillers + 1  # stored entries per nonzero
    owner = np.repeat(np.arange(r.size), reps)  # (n_stored,) nonzero each entry belongs to
    is_last = np.zeros(owner.size, dtype=bool)
    is_last[np.cumsum(reps) - 1] = True  # the nonzero itself comes after its fillers
    rel = np.where(is_last, gap[owner] - fillers[owner] * span, span - 1).astype(np.uint16)
    values = np.zeros(owner.size, dtype=mat.dtype)
    values[is_last] = mat[r, c]
    counts = np.bincount(r, weights=reps, minlength=rows).astype(np.int64)  # (rows,)
    row_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # (rows + 1,)
    return RelativeCSR(values, rel, row_ptr, tuple(w.shape), b)


def csr_encode_naive(w, index_bits) -> RelativeCSR:
    """Loop twin of :func:`csr_encode`: walk every row, column by column (for tests)."""
    mat, b = _check_csr_input(w, index_bits)
    span = 1 << b
    values, rel, row_ptr = [], [], [0]
    for row in mat:
        zeros = 0  # zeros since the last stored entry (trailing zeros of a row cost nothing)
        for x in row:
            if x == 0:
                zeros += 1
                continue
            while zeros >= span:  # b bits cannot skip that many: a filler zero after span-1
                values.append(0.0)
                rel.append(span - 1)
                zeros -= span
            values.append(x)
            rel.append(zeros)
            zeros = 0
        row_ptr.append(len(values))
    return RelativeCSR(np.array(values, dtype=mat.dtype), np.array(rel, dtype=np.uint16),
                       np.array(row_ptr, dtype=np.int64), tuple(w.shape), b)


def csr_decode(csr: RelativeCSR) -> np.ndarray:
    r"""The dense weight back from a :class:`RelativeCSR` (exact; ``-0.0`` comes back as ``+0.0``).

    Column of entry ``j`` of a row: :math:`\mathrm{col}_j = \sum_{i \le j} (c_i + 1) - 1`, a
    cumulative sum restarted at every row pointer.

    Raises
    ------
    TypeError, ValueError
        Inconsistent arrays: lengths, codes out of range, row pointers not increasing from 0 to
        ``n_stored``, or a column beyond the row's end.
    """
    if not isinstance(csr, RelativeCSR):
        raise TypeError(f"csr: expected a RelativeCSR, got {type(csr).__name__}")
    b = check_index_bits(csr.index_bits, "csr.index_bits")
    shape = tuple(csr.shape)
    if not shape or any(not isinstance(s, (int, np.integer)) or s < 0 for s in shape):
        raise ValueError(f"csr.shape: expected a tuple of non-negative ints, got {shape}")
    rows = shape[0] if len(shape) > 1 else 1
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    values, rel, ptr = csr.values, csr.rel, csr.row_ptr
    check_float_array(values, "csr.values", ndim=1)
    if not isinstance(rel, np.ndarray) or rel.dtype.kind not in "ui" or rel.shape != values.shape:
        raise ValueError(f"csr.rel: expected an integer array of shape {values.shape}, got "
                         f"{getattr(rel, 'dtype', type(rel).__name__)} "
                         f"{getattr(rel, 'shape', '')}")
    if rel.size and (int(rel.min()) < 0 or int(rel.max()) >= 1 << b):
        raise ValueError(f"csr.rel: expected codes in [0, {(1 << b) - 1}], got max {int(rel.max())}")
    if (not isinstance(ptr, np.ndarray) or ptr.dtype.kind not in "ui" or ptr.shape != (rows + 1,)
            or ptr[0] != 0 or ptr[-1] != values.size or np.any(np.diff(ptr.astype(np.int64)) < 0)):
        raise ValueError(f"csr.row_ptr: expected {rows + 1} non-decreasing pointers from 0 to "
                         f"{values.size}")
    steps = rel.astype(np.int64) + 1  # (n_stored,) column difference of each entry
    csum = np.cumsum(steps)  # (n_stored,)
    row_of = np.repeat(np.arange(rows), np.diff(ptr.astype(np.int64)))  # (n_stored,)
    before = np.concatenate([[0], csum])[ptr[:-1].astype(np.int64)]  # (rows,) csum at row start
    col = csum - before[row_of] - 1  # (n_stored,)
    if col.size and int(col.max()) >= cols:
        j = int(np.argmax(col >= cols))
        raise ValueError(f"csr: entry {j} of row {int(row_of[j])} lands on column {int(col[j])}, "
                         f"beyond the row length {cols}")
    dense = np.zeros((rows, cols), dtype=values.dtype)  # (rows, cols)
    dense[row_of, col] = values
    return dense.reshape(shape)
