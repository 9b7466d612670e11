r"""Bit packing: store unsigned integers of ``b`` bits each (``1 <= b <= 32``) back to back.

A compressed model stores most of its numbers in fewer than 8 bits: 4- or 5-bit relative indices
and codebook indices in Deep Compression (Han et al., "Deep Compression", ICLR 2016, Sec. 2-3),
2-bit positions in NVIDIA's 2:4 layout. :func:`pack_bits` writes ``n`` values of ``b`` bits as
one bit string of ``n * b`` bits, most significant bit first, value after value, zero-padded to
whole bytes:

.. math:: \text{bytes} = \lceil n b / 8 \rceil .

:func:`unpack_bits` reads them back. Both are vectorized (``np.unpackbits`` / ``np.packbits`` on a
``(n, 32)`` bit matrix), with :func:`pack_bits_naive` as the readable loop twin.
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.validation import check_int

__all__ = ["packed_nbytes", "pack_bits", "pack_bits_naive", "unpack_bits", "uint_dtype"]


def _check_bits(bits) -> int:
    bits = check_int(bits, "bits", minimum=1)
    if bits > 32:
        raise ValueError(f"bits: expected an integer in [1, 32], got {bits}")
    return bits


def uint_dtype(bits: int) -> np.dtype:
    """The smallest unsigned dtype holding ``bits`` bits (uint8, uint16, uint32 or uint64)."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if bits <= 8 * np.dtype(dt).itemsize:
            return np.dtype(dt)
    raise ValueError(f"bits: expected at most 64, got {bits}")


def packed_nbytes(count: int, bits: int) -> int:
    r"""Bytes of ``count`` values of ``bits`` bits: :math:`\lceil count \cdot bits / 8 \rceil`."""
    count = check_int(count, "count", minimum=0)
    return -(-count * _check_bits(bits) // 8)


def _check_values(values, bits):
    if not isinstance(values, np.ndarray):
        raise TypeError(f"values: expected a numpy.ndarray of unsigned integers, "
                        f"got {type(values).__name__}")
    if values.dtype.kind not in "ui":
        raise TypeError(f"values: expected an integer dtype, got {values.dtype}")
    if values.size:
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or hi >= 1 << bits:
            raise ValueError(f"values: expected integers in [0, 2**{bits} - 1 = {(1 << bits) - 1}] "
                             f"for bits={bits}, got min {lo}, max {hi}")
    return values.reshape(-1)


def pack_bits(values, bits) -> np.ndarray:
    """Pack unsigned integers into a bit string, ``bits`` bits each, most significant bit first.

    Parameters
    ----------
    values : ndarray of int, any shape (flattened in C order), entries in ``[0, 2**bits)``
    bits : int
        Bits per value, ``1 <= bits <= 32``.

    Returns
    -------
    ndarray of uint8, shape ``(ceil(n * bits / 8),)``
        Value ``i`` occupies bits ``[i * bits, (i + 1) * bits)`` of the string (bit 0 = the most
        significant bit of byte 0); the last byte is padded with zero bits.

    Examples
    --------
    >>> pack_bits(np.array([1, 2, 3]), 2)  # 01 10 11 00
    array([108], dtype=uint8)
    """
    bits = _check_bits(bits)
    flat = _check_values(values, bits)
    word = flat.astype(">u4")  # (n,) big-endian 32-bit words
    matrix = np.unpackbits(word.view(np.uint8).reshape(-1, 4), axis=1)  # (n, 32) bits, MSB first
    return np.packbits(matrix[:, 32 - bits:].reshape(-1))  # keep the low ``bits`` bits of each


def pack_bits_naive(values, bits) -> np.ndarray:
    """Loop twin of :func:`pack_bits` (one bit at a time; for tests)."""
    bits = _check_bits(bits)
    flat = _check_values(values, bits)
    out = np.zeros(-(-flat.size * bits // 8), dtype=np.uint8)
    pos = 0
    for v in flat.tolist():
        for j in range(bits - 1, -1, -1):
            if (v >> j) & 1:
                out[pos >> 3] |= 0x80 >> (pos & 7)
            pos += 1
    return out


def unpack_bits(data, bits, count) -> np.ndarray:
    """Read ``count`` values of ``bits`` bits from a bit string written by :func:`pack_bits`.

    Parameters
    ----------
    data : ndarray of uint8, 1-D (or ``bytes``), at least ``ceil(count * bits / 8)`` bytes
    bits : int
        ``1 <= bits <= 32``.
    count : int
        Number of values, ``>= 0``.

    Returns
    -------
    ndarray, shape ``(count,)``, dtype :func:`uint_dtype` ``(bits)`` (uint8, uint16 or uint32)
    """
    bits = _check_bits(bits)
    count = check_int(count, "count", minimum=0)
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = np.frombuffer(data, dtype=np.uint8)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 1:
        raise TypeError(f"data: expected a 1-D uint8 ndarray or bytes, got "
                        f"{getattr(data, 'dtype', type(data).__name__)}")
    need = -(-count * bits // 8)
    if data.size < need:
        raise ValueError(f"data: expected at least {need} bytes for {count} values of {bits} bits, "
                         f"got {data.size}")
    stream = np.unpackbits(data[:need], count=count * bits)  # (count * bits,)
    matrix = np.zeros((count, 32), dtype=np.uint8)  # (count, 32), high bits zero
    matrix[:, 32 - bits:] = stream.reshape(count, bits)
    words = np.packbits(matrix, axis=1).view(">u4").reshape(count)  # (count,)
    return words.astype(uint_dtype(bits))
