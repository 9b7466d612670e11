r"""N:M metadata: what a 2:4 sparse weight costs in bits, and its positions as packed bits.

With ``n_pruned`` of every ``m`` consecutive weights of a row pruned (the lecture's "N:M"; NVIDIA
says "2:4" for 2 *kept* of 4 -- for 2:4 both readings mean 50%), each group of ``m`` keeps
``k = m - n_pruned`` values, and each kept value carries its position inside the group,
:math:`\lceil \log_2 m \rceil` bits (2 bits for 2:4). This is the layout of NVIDIA's sparse
tensor cores (Mishra et al., "Accelerating Sparse Deep Neural Networks", 2021):

.. math:: \text{bits} = \underbrace{R\,G\,k\,b_v}_{\text{values}}
          + \underbrace{R\,G\,k\,\lceil \log_2 m \rceil}_{\text{metadata}},
          \qquad G = \lceil L / m \rceil ,

for a weight viewed as ``(R, L) = (out, in*KH*KW)`` with ``b_v`` bits per value (a partial last
group is padded, the padding counting as pruned).

* :func:`nm_storage_bits` -- the exact bits for a pattern and a tensor shape;
* :func:`nm_encode_positions` / :func:`nm_decode_positions` -- a keep-mask to packed positions and
  back (:func:`nm_encode_positions_naive` is the loop twin). A group with fewer than ``k`` kept
  entries is completed with its first unkept positions (they store a zero value), like the
  compressed storage in ``tinyprune.prune.nm_storage``; for a mask with exactly ``k`` kept per
  group the round trip is exact.
"""

from __future__ import annotations

import numpy as np

from tinyprune.common.bitpack import pack_bits, unpack_bits
from tinyprune.nn.validation import check_int

__all__ = ["nm_decode_positions", "nm_encode_positions", "nm_encode_positions_naive",
           "nm_position_bits", "nm_storage_bits"]


def _check_nm(n_pruned, m):
    m = check_int(m, "m", minimum=1)
    n_pruned = check_int(n_pruned, "n_pruned", minimum=0)
    if n_pruned >= m:
        raise ValueError(f"n_pruned: expected 0 <= n_pruned < m = {m}, got {n_pruned}")
    if m > 2**16:
        raise ValueError(f"m: expected m <= 65536, got {m}")
    return n_pruned, m


def _check_shape(shape):
    if not isinstance(shape, (tuple, list)) or len(shape) < 1:
        raise TypeError(f"shape: expected a tuple of ints, got {shape!r}")
    return tuple(check_int(s, "shape", minimum=0) for s in shape)


def _rows_length(shape):
    if len(shape) == 1:
        return 1, shape[0]
    return shape[0], int(np.prod(shape[1:]))


def nm_position_bits(m) -> int:
    r"""Bits per stored position, :math:`\lceil \log_2 m \rceil` (0 when ``m = 1``)."""
    m = check_int(m, "m", minimum=1)
    return (m - 1).bit_length()


def nm_storage_bits(shape, n_pruned, m, *, value_bits=32) -> dict:
    """Exact storage of an N:M sparse weight of the given shape.

    Parameters
    ----------
    shape : tuple of int
        ``(out, in)``, ``(C_out, C_in, KH, KW)`` or ``(n,)`` (one row).
    n_pruned, m : int
        ``n_pruned`` of every ``m`` pruned, ``0 <= n_pruned < m`` (2:4 is ``n_pruned=2, m=4``).
    value_bits : int
        Bits per kept value (32 for float32, 16 for the tensor cores' float16).

    Returns
    -------
    dict
        ``kept`` (values stored), ``position_bits`` (per value), ``value_bits`` (total),
        ``metadata_bits`` (total), ``total_bits``, ``dense_bits`` (``prod(shape) * value_bits``),
        ``nbytes`` (values and metadata each rounded up to whole bytes).

    Examples
    --------
    >>> nm_storage_bits((128, 9216), 2, 4)["metadata_bits"]  # 2 bits per kept value
    1179648
    """
    shape = _check_shape(shape)
    n_pruned, m = _check_nm(n_pruned, m)
    value_bits = check_int(value_bits, "value_bits", minimum=1)
    rows, length = _rows_length(shape)
    kept = rows * (-(-length // m)) * (m - n_pruned)
    pb = nm_position_bits(m)
    vbits, mbits = kept * value_bits, kept * pb
    return {"kept": kept, "position_bits": pb, "value_bits": vbits, "metadata_bits": mbits,
            "total_bits": vbits + mbits, "dense_bits": rows * length * value_bits,
            "nbytes": -(-vbits // 8) + -(-mbits // 8)}


def _check_mask(mask, n_pruned, m):
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError(f"mask: expected a bool ndarray (True = kept), got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.ndim == 0:
        raise ValueError("mask: expected at least 1 dimension, got a scalar")
    rows, length = _rows_length(mask.shape)
    groups = -(-length // m)
    padded = np.zeros((rows, groups * m), dtype=bool)  # (rows, G*m), padding pruned
    padded[:, :length] = mask.reshape(rows, length)
    grouped = padded.reshape(rows, groups, m)  # (rows, G, m)
    counts = grouped.sum(axis=-1)  # (rows, G)
    k = m - n_pruned
    if np.any(counts > k):
        r, g = (int(i) for i in np.argwhere(counts > k)[0])
        raise ValueError(f"mask: row {r}, group {g} keeps {counts[r, g]} entries, at most "
                         f"m - n_pruned = {k} allowed for {n_pruned}:{m} (n_pruned:m)")
    return grouped


def nm_encode_positions(mask, n_pruned, m) -> np.ndarray:
    r"""Pack the positions of the kept entries, :math:`\lceil \log_2 m \rceil` bits each.

    Parameters
    ----------
    mask : ndarray of bool, ``(out, in)``, ``(C_out, C_in, KH, KW)`` or ``(n,)``; True = kept
        At most ``k = m - n_pruned`` True per group of ``m`` consecutive entries of a row.
    n_pruned, m : int

    Returns
    -------
    ndarray of uint8, shape ``(ceil(rows * G * k * bits / 8),)``
        Positions (``0..m-1``, increasing within each group), group after group, row after row;
        empty when ``m = 1``.
    """
    n_pruned, m = _check_nm(n_pruned, m)
    grouped = _check_mask(mask, n_pruned, m)  # (rows, G, m)
    k = m - n_pruned
    order = np.argsort(~grouped, axis=-1, kind="stable")[..., :k]  # kept first, then unkept
    pos = np.sort(order, axis=-1)  # (rows, G, k)
    bits = nm_position_bits(m)
    return pack_bits(pos, bits) if bits else np.zeros(0, np.uint8)


def nm_encode_positions_naive(mask, n_pruned, m) -> np.ndarray:
    """Loop twin of :func:`nm_encode_positions` (group by group; for tests)."""
    n_pruned, m = _check_nm(n_pruned, m)
    grouped = _check_mask(mask, n_pruned, m)
    k = m - n_pruned
    positions = []
    for row in grouped:
        for group in row:
            kept = [j for j in range(m) if group[j]]
            fill = [j for j in range(m) if not group[j]][:k - len(kept)]
            positions.extend(sorted(kept + fill))
    bits = nm_position_bits(m)
    return pack_bits(np.array(positions, dtype=np.int64), bits) if bits else np.zeros(0, np.uint8)


def nm_decode_positions(data, shape, n_pruned, m) -> np.ndarray:
    """The keep-mask of the stored positions (inverse of :func:`nm_encode_positions`).

    Parameters
    ----------
    data : ndarray of uint8 (or bytes)
    shape : tuple of int
        The weight's shape.
    n_pruned, m : int

    Returns
    -------
    ndarray of bool, shape ``shape``: True where a value is stored.

    Raises
    ------
    ValueError
        ``data`` too short, or positions not strictly increasing within a group.
    """
    shape = _check_shape(shape)
    n_pruned, m = _check_nm(n_pruned, m)
    rows, length = _rows_length(shape)
    groups, k = -(-length // m), m - n_pruned
    count = rows * groups * k
    bits = nm_position_bits(m)
    if bits:
        pos = unpack_bits(data, bits, count).astype(np.intp).reshape(rows, groups, k)
    else:
        pos = np.zeros((rows, groups, k), dtype=np.intp)  # m = 1: the only position is 0
    if np.any(pos >= m) or np.any(np.diff(pos, axis=-1) <= 0):
        raise ValueError(f"data: positions must increase strictly within each group of {m}")
    out = np.zeros((rows, groups, m), dtype=bool)  # (rows, G, m)
    np.put_along_axis(out, pos, True, axis=-1)
    return out.reshape(rows, groups * m)[:, :length].reshape(shape)

