"""Dropout's keep mask ``rng.random(shape, dtype) >= p``, drawn without making the floats.

NumPy makes a uniform float from the generator's raw bits: a float32 is
``(next_uint32 >> 8) * 2**-24`` and a float64 is ``(next_uint64 >> 11) * 2**-53`` (see
``numpy/random/src/distributions``). So ``u >= p`` is an integer comparison of the raw bits with a
threshold, and :func:`keep_mask` does exactly that on the bits of
``rng.bit_generator.random_raw``: the mask is **bit-for-bit** the one the float draw gives, and the
generator ends in the **same state** (including PCG64's buffered half word), so every later draw
is unchanged too. It is about twice as fast (the floats are never made).

The fast path needs a bit generator whose 32-bit draws are the two halves of a 64-bit one, low half
first, with the high half buffered (``has_uint32``/``uinteger`` in its state): NumPy's ``PCG64``
and ``PCG64DXSM``. Any other generator takes the plain float draw.
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

from .validation import check_int, check_probability

_FAST = (np.random.PCG64, np.random.PCG64DXSM)
_BITS = {np.dtype(np.float32): 24, np.dtype(np.float64): 53}  # mantissa bits of a uniform draw


def keep_mask(rng, shape, p, dtype=np.float32):
    """``rng.random(shape, dtype=dtype) >= dtype(p)``, exactly, leaving ``rng`` in the same state.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : int or tuple of int
    p : float in [0, 1)
        Drop probability (compared in ``dtype``, as the float draw would be).
    dtype : float32 or float64
        The float type the uniform numbers would have.

    Returns
    -------
    keep : ndarray of bool, shape ``shape``

    Raises
    ------
    TypeError
        ``rng`` is not a Generator, ``dtype`` is not float32/float64, a shape entry is not an int.
    ValueError
        ``p`` is outside [0, 1) or NaN, a shape entry is negative.

    Notes
    -----
    With ``b`` mantissa bits (24 or 53), ``u = k * 2**-b`` for the integer ``k`` = the top ``b``
    bits of a raw word ``r``, so ``u >= p`` iff ``k >= ceil(p * 2**b)`` iff
    ``r >= ceil(p * 2**b) << (w - b)`` for a ``w``-bit word.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"keep_mask: rng must be a numpy.random.Generator, got {rng!r}")
    p = check_probability(p, "keep_mask: p")
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    shape = tuple(check_int(s, "keep_mask: shape entry", minimum=0) for s in shape)
    dt = np.dtype(dtype)
    if dt not in _BITS:
        raise TypeError(f"keep_mask: dtype must be float32 or float64, got {dt}")
    bg = rng.bit_generator
    if type(bg) not in _FAST or sys.byteorder != "little":
        return rng.random(shape, dtype=dt) >= dt.type(p)
    bits = _BITS[dt]
    k = math.ceil(float(dt.type(p)) * 2.0 ** bits)  # exact: p * 2**b is a float64 product of
    # a float and a power of two
    count = math.prod(shape)
    if dt == np.float64:  # next_uint64 draws raw words, the uint32 buffer is not involved
        raw = bg.random_raw(count).reshape(shape)  # uint64
        if k >= 1 << 53:
            return np.zeros(shape, dtype=bool)
        return raw >= np.uint64(k << 11)
    state = bg.state
    buffered = bool(state["has_uint32"]) and count > 0
    need = count - buffered  # 32-bit halves still to draw
    words = bg.random_raw((need + 1) // 2)  # uint64
    if words.size:  # the generator's buffer after the same number of next_uint32 calls
        after = bg.state
        after["has_uint32"] = need % 2
        after["uinteger"] = int(words[-1] >> np.uint64(32))
        bg.state = after
    elif buffered:
        after = bg.state
        after["has_uint32"] = 0
        bg.state = after
    keep = np.empty(count, dtype=bool)
    if k >= 1 << 24:
        keep[:] = False
        return keep.reshape(shape)
    threshold = np.uint32(k << 8)
    if buffered:
        keep[0] = np.uint32(state["uinteger"]) >= threshold
    np.greater_equal(words.view(np.uint32)[:need], threshold, out=keep[buffered:])  # low half
    # first (little-endian)
    return keep.reshape(shape)
