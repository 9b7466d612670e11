r"""Fixed-point requantization for integer-only inference (Jacob et al. 2018, sec. 2.2).

A quantized layer accumulates integer products in int32; its real output is
:math:`M \cdot acc` with the real multiplier :math:`M = S_w S_{in} / S_{out}` (empirically in
(0, 1)). Integer-only hardware cannot multiply by a real, so :math:`M` is written as

.. math::

    M = 2^{-n} M_0, \qquad M_0 \in [0.5, 1),

with :math:`M_0` stored as the int32 :math:`\mathrm{round}(2^{31} M_0) \in [2^{30}, 2^{31})`
(:func:`quantize_multiplier`). Then :math:`M \cdot acc` is an int32 fixed-point multiplication
followed by a rounding right shift, with gemmlowp's exact semantics (all on int64 arrays holding
int32 values, vectorized):

* :func:`saturating_rounding_doubling_high_mul` ``(a, b)``: the high 32 bits of ``2 a b``,
  rounded to nearest (``floor((a b + 2^30) / 2^31)``, ties upward); the one overflowing case
  ``a = b = -2^31`` saturates to ``2^31 - 1``;
* :func:`rounding_divide_by_pot` ``(x, n)``: ``x / 2^n`` rounded to nearest, ties away from 0;
* :func:`multiply_by_quantized_multiplier` ``(acc, M0, n)``: the two in sequence.

Two roundings happen (the Q31 high half, then the shift), so the result can be one step away
from ``round(M acc)`` when the first lands on a tie of the second (``M = 1/4, acc = 1`` gives 1),
exactly as in gemmlowp and TensorFlow Lite.

The ``*_naive`` twins compute the same results with Python integers, element by element, as the
gemmlowp C++ code reads (for tests).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["INT32_MAX", "INT32_MIN", "multiply_by_quantized_multiplier",
           "multiply_by_quantized_multiplier_naive", "quantize_multiplier",
           "rounding_divide_by_pot", "rounding_divide_by_pot_naive",
           "saturating_rounding_doubling_high_mul", "saturating_rounding_doubling_high_mul_naive"]

INT32_MIN = -(2 ** 31)
INT32_MAX = 2 ** 31 - 1


def quantize_multiplier(m) -> tuple[int, int]:
    r"""Write the real multiplier ``m`` in (0, 1) as ``M0 * 2^-31 * 2^-shift``.

    ``m = M0' 2^{-shift}`` with :math:`M0' \in [0.5, 1)` (``math.frexp``), and
    ``M0 = round(2^31 M0')``; if that rounds up to ``2^31``, it is halved and ``shift``
    decreased by one, so ``M0`` always lies in ``[2^30, 2^31)``.

    Parameters
    ----------
    m : float in (0, 1)

    Returns
    -------
    M0 : int in ``[2^30, 2^31)``
    shift : int >= 0
        The right shift.

    Examples
    --------
    >>> quantize_multiplier(0.5), quantize_multiplier(0.75)
    ((1073741824, 0), (1610612736, 0))
    >>> quantize_multiplier(0.1)
    (1717986918, 3)
    """
    if isinstance(m, bool) or not isinstance(m, numbers.Real) or not 0 < m < 1:
        raise ValueError(f"m: expected a real multiplier in (0, 1) (Jacob et al. 2018, sec. "
                         f"2.2), got {m!r}")
    mantissa, exponent = math.frexp(float(m))  # m = mantissa * 2^exponent, mantissa in [0.5, 1)
    m0 = round(mantissa * 2 ** 31)  # exact: mantissa * 2^31 is a float scaled by a power of 2
    shift = -exponent
    if m0 == 2 ** 31:
        m0 //= 2
        shift -= 1
    if shift < 0 or shift > 62:  # m rounds up to 1, or is too small for a 64-bit shift
        raise ValueError(f"m: {m!r} is too close to 0 or 1 for a 31-bit fixed-point multiplier")
    return int(m0), int(shift)


def _as_int32_values(x, name):
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got dtype {x.dtype}")
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise ValueError(f"{name}: expected int32 values, got [{x.min()}, {x.max()}]")
    return x.astype(np.int64)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul``: ``round(a b / 2^31)`` on int32 values.

    ``ab = a b`` (exact in int64); ``nudge = 2^30`` if ``ab >= 0`` else ``1 - 2^30``;
    result ``(ab + nudge) / 2^31`` truncated toward zero (C division), i.e. ``floor((ab + 2^30)
    / 2^31)``. ``a = b = -2^31`` (the only product that overflows) gives ``2^31 - 1``.

    Parameters
    ----------
    a, b : integer ndarrays (or ints) with int32 values, broadcastable

    Returns
    -------
    ndarray of int64 holding int32 values
    """
    a = _as_int32_values(a, "a")
    b = _as_int32_values(b, "b")
    ab = np.asarray(a * b)  # exact: |ab| <= 2^62 (0-d arrays stay arrays)
    # C's (ab + nudge) / 2^31, truncating, is floor((ab + 2^30) / 2^31) for both signs of ab
    # (ab < 0: ceil((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31)), one arithmetic shift
    ab += 1 << 30
    ab >>= 31
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    if overflow.any():
        ab[overflow] = INT32_MAX  # (-2^31)^2 / 2^31 = 2^31 does not fit: saturate
    return ab


def saturating_rounding_doubling_high_mul_naive(a: int, b: int) -> int:
    """Scalar twin of :func:`saturating_rounding_doubling_high_mul` (Python ints, the C++ code
    line by line)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    num = ab + nudge
    quotient = abs(num) // 2 ** 31  # C's division truncates toward zero
    return quotient if num >= 0 else -quotient


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded to nearest, ties away
    from zero.

    ``mask = 2^e - 1``, ``remainder = x & mask``, ``threshold = (mask >> 1) + [x < 0]``,
    result ``(x >> e) + [remainder > threshold]`` (``>>`` arithmetic, i.e. floor).

    Parameters
    ----------
    x : integer ndarray with int32 values
    exponent : int or integer ndarray in ``[0, 31]``, broadcastable with ``x``

    Returns
    -------
    ndarray of int64 holding int32 values
    """
    x = _as_int32_values(x, "x")
    e = np.asarray(exponent)
    if e.dtype.kind not in "iu" or (e.size and (e.min() < 0 or e.max() > 31)):
        raise ValueError(f"exponent: expected integers in [0, 31], got {exponent!r}")
    e = e.astype(np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def rounding_divide_by_pot_naive(x: int, exponent: int) -> int:
    """Scalar twin of :func:`rounding_divide_by_pot` (Python ints, the C++ code line by line)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(acc, m0, shift) -> np.ndarray:
    r""":math:`\mathrm{round}(M \cdot acc)` in integer arithmetic, ``M = M0 2^{-31} 2^{-shift}``:
    ``rounding_divide_by_pot(saturating_rounding_doubling_high_mul(acc, M0), shift)``.

    Parameters
    ----------
    acc : integer ndarray, int32 values (the accumulators)
    m0 : int or integer ndarray in ``[2^30, 2^31)`` (per channel: broadcastable with ``acc``)
    shift : int or integer ndarray in ``[0, 31]``

    Returns
    -------
    ndarray of int64 holding int32 values
    """
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(acc, m0), shift)


def multiply_by_quantized_multiplier_naive(acc: int, m0: int, shift: int) -> int:
    """Scalar twin of :func:`multiply_by_quantized_multiplier`."""
    return rounding_divide_by_pot_naive(saturating_rounding_doubling_high_mul_naive(acc, m0), shift)
