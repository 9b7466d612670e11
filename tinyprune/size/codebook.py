r"""Codebook storage: a per-layer table of shared values plus one ``b``-bit index per weight.

After weight sharing (trained quantization, Han et al., "Deep Compression", ICLR 2016, Sec. 3,
Fig. 3) the weights of a layer take at most :math:`k = 2^b` distinct values, the centroids. The
layer is then stored as the codebook (``k`` float32 values) and, per weight, the ``b``-bit index of
its centroid, bit-packed:

.. math:: \text{bits} = n\,b + 32\,k  \qquad (\text{paper, Eq. 1: } r = \frac{n\,32}{n \log_2 k + 32 k}).

Two ways in: :func:`codebook_encode` finds the codebook of an array whose entries take at most
``2**bits`` distinct values (sorted by value; equal values share an entry, ``-0.0`` and ``+0.0``
are kept apart so the round trip is exact bit for bit); :func:`codebook_from_indices` stores a
given ``(codebook, indices)`` pair (what k-means returns). :func:`codebook_decode` gives the array
back: ``codebook[indices]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyprune.common.bitpack import pack_bits, packed_nbytes, unpack_bits
from tinyprune.nn.validation import check_float_array, check_int

__all__ = ["CodebookStorage", "bits_for", "codebook_decode", "codebook_encode",
           "codebook_from_indices"]


def bits_for(k: int) -> int:
    r"""Index bits for a codebook of ``k`` entries, :math:`\max(1, \lceil \log_2 k \rceil)`."""
    k = check_int(k, "k", minimum=1)
    return max(1, (k - 1).bit_length())


@dataclass(frozen=True)
class CodebookStorage:
    """An array stored as codebook + packed indices.

    Attributes
    ----------
    codebook : ndarray, shape ``(k,)``, float32/float64, ``k <= 2**bits``
    packed : ndarray of uint8, shape ``(ceil(n * bits / 8),)``
        The indices, :func:`~tinyprune.common.bitpack.pack_bits` at ``bits`` bits.
    bits : int
        Bits per index, ``1..16``.
    shape : tuple of int
        Shape of the stored array (``n = prod(shape)``).
    """

    codebook: np.ndarray
    packed: np.ndarray
    bits: int
    shape: tuple

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def indices(self) -> np.ndarray:
        """The unpacked indices, shape :attr:`shape`."""
        return unpack_bits(self.packed, self.bits, self.size).reshape(self.shape)

    @property
    def codebook_nbytes(self) -> int:
        return int(self.codebook.nbytes)

    @property
    def index_nbytes(self) -> int:
        return packed_nbytes(self.size, self.bits)

    @property
    def nbytes(self) -> int:
        """Codebook bytes + packed index bytes."""
        return self.codebook_nbytes + self.index_nbytes


def _check_bits(bits):
    bits = check_int(bits, "bits", minimum=1)
    if bits > 16:
        raise ValueError(f"bits: expected an integer in [1, 16], got {bits}")
    return bits


def _bit_view(x):
    """The bit patterns of a float array as unsigned integers (so ``-0.0 != +0.0``)."""
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint64)


def codebook_encode(x, bits=None) -> CodebookStorage:
    """Store an array whose entries take at most ``2**bits`` distinct values.

    Parameters
    ----------
    x : ndarray, float32/float64, any shape, finite
        Typically a weight after weight sharing, or the stored values of a sparse weight.
        Not modified.
    bits : int, optional
        Bits per index (``1..16``); default the fewest that fit, :func:`bits_for` ``(k)``.

    Returns
    -------
    CodebookStorage
        ``codebook`` = the distinct values (by bit pattern), sorted by value.

    Raises
    ------
    ValueError
        More than ``2**bits`` distinct values, or non-finite entries.
    """
    check_float_array(x, "x", finite=True)
    pattern = _bit_view(np.ascontiguousarray(x)).reshape(-1)  # (n,)
    uniq, inverse = np.unique(pattern, return_inverse=True)  # uniq: (k,)
    values = uniq.view(x.dtype)  # (k,)
    order = np.argsort(values, kind="stable")  # by value; +0.0 / -0.0 in bit-pattern order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    k = max(1, uniq.size)
    if bits is None:
        bits = bits_for(k)
    bits = _check_bits(bits)
    if uniq.size > 1 << bits:
        raise ValueError(f"x: expected at most 2**bits = {1 << bits} distinct values for "
                         f"bits={bits}, got {uniq.size}")
    idx = rank[inverse.reshape(-1)]  # (n,)
    return CodebookStorage(values[order].copy(), pack_bits(idx, bits), bits, tuple(x.shape))


def codebook_from_indices(codebook, indices, bits=None) -> CodebookStorage:
    """Store a given codebook and index array (e.g. the output of k-means weight sharing).

    Parameters
    ----------
    codebook : ndarray, shape ``(k,)``, float32/float64, finite
    indices : ndarray of int, any shape, entries in ``[0, k)``
    bits : int, optional
        Bits per index; default :func:`bits_for` ``(k)``; must satisfy ``k <= 2**bits``.
    """
    check_float_array(codebook, "codebook", ndim=1, finite=True)
    if codebook.size == 0:
        raise ValueError("codebook: expected at least one entry, got 0")
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "ui":
        raise TypeError(f"indices: expected an integer ndarray, got "
                        f"{getattr(indices, 'dtype', type(indices).__name__)}")
    k = codebook.size
    bits = bits_for(k) if bits is None else _check_bits(bits)
    if k > 1 << bits:
        raise ValueError(f"codebook: expected at most 2**bits = {1 << bits} entries, got {k}")
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= k):
        raise ValueError(f"indices: expected entries in [0, {k - 1}], got min "
                         f"{int(indices.min())}, max {int(indices.max())}")
    return CodebookStorage(codebook.copy(), pack_bits(indices, bits), bits, tuple(indices.shape))


def codebook_decode(storage: CodebookStorage) -> np.ndarray:
    """``codebook[indices]``, shape ``storage.shape`` (exact, bit for bit)."""
    if not isinstance(storage, CodebookStorage):
        raise TypeError(f"storage: expected a CodebookStorage, got {type(storage).__name__}")
    idx = storage.indices.astype(np.intp)
    if idx.size and int(idx.max()) >= storage.codebook.size:
        raise ValueError(f"storage: index {int(idx.max())} beyond the codebook's "
                         f"{storage.codebook.size} entries")
    return storage.codebook[idx]
