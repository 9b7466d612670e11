r"""Uniform affine quantization: :math:`r = S\,(q - Z)` (Jacob et al. 2018, eq. 1).

A real value :math:`r` is represented by an integer :math:`q` of ``bits`` bits, a real scale
:math:`S > 0` and an integer zero point :math:`Z`, chosen so that the real 0.0 is exactly the
integer :math:`Z` (zero padding and ReLU zeros are then exact)::

    quantize:       q = clamp(round(r / S) + Z, q_min, q_max)       # round half to even
    dequantize:     r_hat = S (q - Z)
    fake-quantize:  r_hat = S (clamp(round(r / S) + Z, q_min, q_max) - Z)   (float in, float out)

Integer ranges (:func:`qrange`): signed ``[-2^(b-1), 2^(b-1) - 1]``, unsigned ``[0, 2^b - 1]``,
for ``b`` in 2..8 and 16. Per-tensor: one ``(S, Z)``; per-channel: one pair per index of axis 0
(a weight's output channel), ``scale`` and ``zero_point`` of shape ``(C,)``.

Choosing ``(S, Z)`` from a range ``[min, max]`` (:func:`qparams_from_range`) follows PyTorch's
observers (``torch.ao.quantization``, ``_calculate_qparams``) step for step, in float32: the range
is first widened to contain 0; asymmetric ``S = (max - min) / (q_max - q_min)`` and
``Z = q_min - round(min / S)``; symmetric ``S = max(|min|, |max|) / ((q_max - q_min) / 2)`` with
``Z = 0`` (signed) or ``2^(b-1)`` (unsigned); ``S`` is at least float32's machine epsilon.

Rounding exactly as PyTorch: ``S`` is a float32 and :math:`r / S` is computed as ``r * (1 / S)``
with ``1 / S`` in float32, as torch's kernels do (the two can fall on different sides of a half;
the product is taken in the input's precision), rounded half to even
(``np.rint``, C's ``nearbyint``), then ``Z`` is added and the result clamped. This is the
formula of ``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine`` (bit-exact,
tested). ``torch.quantize_per_tensor`` and ``torch.quantize_per_channel`` (fbgemm's "legacy"
kernels) add ``Z`` *before* rounding, in float32, which gives another integer only when
``r / S`` lies within float32 rounding of a half-integer and ``Z`` is odd; everywhere else they
agree with :func:`quantize` (tested). Here one formula serves quantize, fake-quantize, per-tensor
and per-channel alike, so ``fake_quantize(r) == dequantize(quantize(r))`` always.

Functions
---------
qrange                 integer range of a bit width
qparams_from_range     (S, Z) from (min, max), as torch's observers
quantize / dequantize  r -> q and q -> r_hat
fake_quantize_forward  r -> r_hat and the straight-through mask; fake_quantize_backward
"""

from __future__ import annotations

import numbers

import numpy as np

from tinyprune.nn.validation import check_float_array

__all__ = ["SUPPORTED_BITS", "dequantize", "fake_quantize", "fake_quantize_backward",
           "fake_quantize_forward", "int_dtype", "qparams_from_range", "qrange", "quantize"]

#: The bit widths of the integers ``q``.
SUPPORTED_BITS = (2, 3, 4, 5, 6, 7, 8, 16)

#: Smallest scale an observer returns (torch: ``torch.finfo(torch.float32).eps``).
EPS = np.finfo(np.float32).eps


def qrange(bits=8, signed=True) -> tuple[int, int]:
    """``(q_min, q_max)`` of a ``bits``-bit integer: signed ``[-2^(b-1), 2^(b-1) - 1]``,
    unsigned ``[0, 2^b - 1]``.

    Examples
    --------
    >>> qrange(8, signed=True), qrange(8, signed=False), qrange(4)
    ((-128, 127), (0, 255), (-8, 7))
    """
    _check_bits(bits)
    if not isinstance(signed, (bool, np.bool_)):
        raise TypeError(f"signed: expected a bool, got {signed!r}")
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def int_dtype(bits=8, signed=True) -> np.dtype:
    """The NumPy integer type that stores ``q``: int8/uint8 up to 8 bits, int16/uint16 at 16."""
    _check_bits(bits)
    size = 8 if bits <= 8 else 16
    return np.dtype(f"{'' if signed else 'u'}int{size}")


def _check_bits(bits):
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) \
            or int(bits) not in SUPPORTED_BITS:
        raise ValueError(f"bits: expected one of {SUPPORTED_BITS}, got {bits!r}")


def qparams_from_range(min_val, max_val, *, bits=8, signed=True, symmetric=False):
    r"""Scale and zero point for the real range ``[min_val, max_val]``, as torch's observers.

    Computed in float32 exactly as ``torch.ao.quantization``'s ``_calculate_qparams``::

        min_neg = min(min_val, 0);  max_pos = max(max_val, 0)     # 0.0 must be in the range
        asymmetric:  S = (max_pos - min_neg) / (q_max - q_min)
                     S = max(S, eps);  Z = clamp(q_min - round(min_neg / S), q_min, q_max)
        symmetric:   S = max(-min_neg, max_pos) / ((q_max - q_min) / 2)
                     S = max(S, eps);  Z = 0 (signed) or 2^(bits-1) (unsigned)

    A degenerate range (``min_val == max_val``) is widened to contain 0 first, so it is only
    degenerate when both are 0 (an all-zero tensor): then ``S = eps`` (float32 machine epsilon,
    as torch) and ``Z = q_min`` (asymmetric) or the symmetric ``Z``, and every value quantizes
    to ``Z`` and dequantizes to exactly 0.0 -- no error, no NaN.

    Parameters
    ----------
    min_val, max_val : float or ndarray of shape ``(C,)``
        Per-tensor (scalars) or per-channel ranges; finite, ``min_val <= max_val``.
    bits : int in :data:`SUPPORTED_BITS`
    signed : bool
        Signed (``int8``: -128..127) or unsigned (``uint8``: 0..255) integers.
    symmetric : bool
        Symmetric range around 0 (``Z`` fixed) or the tight asymmetric one.

    Returns
    -------
    scale : ndarray, float32, shape ``()`` or ``(C,)``
    zero_point : ndarray, int64, same shape

    Notes
    -----
    torch's unsigned symmetric zero point is 128 at its default 8-bit range (``2^(b-1)``, used
    here for every width) but ``(q_min + q_max) // 2`` when a custom range is passed.

    References
    ----------
    Jacob et al., "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference", CVPR 2018, sec. 2.1.
    """
    qmin, qmax = qrange(bits, signed)
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric: expected a bool, got {symmetric!r}")
    mn, mx = _check_range(min_val, max_val)
    min_neg = np.minimum(mn, np.float32(0))
    max_pos = np.maximum(mx, np.float32(0))
    if symmetric:
        max_pos = np.maximum(-min_neg, max_pos)
        scale = max_pos / np.float32((qmax - qmin) / 2)
        scale = np.maximum(scale, EPS)
        zero_point = np.full(mn.shape, 0 if signed else 2 ** (bits - 1), dtype=np.int64)
    else:
        scale = (max_pos - min_neg) / np.float32(qmax - qmin)
        scale = np.maximum(scale, EPS)
        zero_point = qmin - np.rint(min_neg / scale).astype(np.int64)
        zero_point = np.clip(zero_point, qmin, qmax)
    return np.asarray(scale, dtype=np.float32), np.asarray(zero_point, dtype=np.int64)


def _check_range(min_val, max_val):
    arrays = {}
    for name, value in (("min_val", min_val), ("max_val", max_val)):
        v = np.asarray(value)
        if v.dtype.kind not in "fiu" or v.ndim > 1:
            raise TypeError(f"{name}: expected a real number or a 1-D array, got {value!r}")
        if not np.isfinite(v).all():
            raise ValueError(f"{name}: expected finite values, got {v}")
        arrays[name] = v
    mn, mx = arrays["min_val"], arrays["max_val"]
    if mn.shape != mx.shape:
        raise ValueError(f"min_val, max_val: expected the same shape, got {mn.shape} and "
                         f"{mx.shape}")
    if (mn > mx).any():
        raise ValueError(f"min_val, max_val: expected min_val <= max_val, got {mn} > {mx}")
    return mn.astype(np.float32), mx.astype(np.float32)


def _check_qparams(x_shape, scale, zero_point, bits, signed):
    """Validated ``(S, Z)``, ``S`` in float32, reshaped to broadcast against ``x``
    (per-channel along axis 0)."""
    qmin, qmax = qrange(bits, signed)
    s = np.asarray(scale)
    z = np.asarray(zero_point)
    if s.dtype.kind != "f" or s.ndim > 1:
        raise TypeError(f"scale: expected a float or a 1-D float array, got {scale!r}")
    if z.dtype.kind not in "iu" or z.ndim > 1:
        raise TypeError(f"zero_point: expected an integer or a 1-D integer array (0.0 must be "
                        f"exactly representable), got {zero_point!r}")
    if s.shape != z.shape:
        raise ValueError(f"scale, zero_point: expected the same shape, got {s.shape} and {z.shape}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"scale: expected finite values > 0, got {s}")
    s = s.astype(np.float32)
    with np.errstate(over="ignore"):
        inv_finite = np.isfinite(np.float32(1) / s).all()
    if not inv_finite or not (s > 0).all():
        raise ValueError(f"scale: 1 / scale overflows float32, got scale {scale}")
    if ((z < qmin) | (z > qmax)).any():
        raise ValueError(f"zero_point: expected integers in [{qmin}, {qmax}] for bits={bits}, "
                         f"signed={signed}, got {z}")
    if s.ndim == 1:  # per-channel along axis 0
        if len(x_shape) == 0 or x_shape[0] != s.shape[0]:
            raise ValueError(f"scale: per-channel scale of shape {s.shape} needs a tensor with "
                             f"{s.shape[0]} entries on axis 0, got shape {tuple(x_shape)}")
        bshape = (s.shape[0],) + (1,) * (len(x_shape) - 1)
        s, z = s.reshape(bshape), z.reshape(bshape)
    return s, z.astype(np.int64), qmin, qmax


def _round_to_grid(x, s, z):
    """``round(x * (1 / S)) + Z`` before clamping (float64 holding integers)."""
    inv_scale = (np.float32(1) / s).astype(x.dtype)  # 1/S in float32, as torch (1.0f / scale)
    return np.rint(x * inv_scale) + z  # round half to even, then add Z (exact in float64)


def quantize(x, scale, zero_point, *, bits=8, signed=True) -> np.ndarray:
    r"""Quantize: :math:`q = \mathrm{clamp}(\mathrm{round}(x / S) + Z,\ q_{min},\ q_{max})`.

    Parameters
    ----------
    x : ndarray, float32 or float64, any shape (finite)
    scale : float or ndarray ``(C,)``, > 0
        ``(C,)``: per-channel along axis 0 (``x.shape[0] == C``). Used as float32, as torch.
    zero_point : int or integer ndarray ``(C,)`` in ``[q_min, q_max]``
    bits : int in :data:`SUPPORTED_BITS`
    signed : bool

    Returns
    -------
    q : ndarray, shape of ``x``, :func:`int_dtype` (int8/uint8/int16/uint16)

    Examples
    --------
    >>> quantize(np.array([-1.0, 0.0, 0.26, 5.0], dtype=np.float32), 0.1, 3, bits=4)
    array([-7,  3,  6,  7], dtype=int8)
    """
    check_float_array(x, "x", finite=True)
    s, z, qmin, qmax = _check_qparams(x.shape, scale, zero_point, bits, signed)
    q = np.clip(_round_to_grid(x, s, z), qmin, qmax)  # shape of x
    return q.astype(int_dtype(bits, signed))


def dequantize(q, scale, zero_point, *, bits=8, signed=True, dtype=np.float32) -> np.ndarray:
    r"""Dequantize: :math:`\hat r = S\,(q - Z)`.

    Parameters
    ----------
    q : integer ndarray with values in ``[q_min, q_max]``
    scale, zero_point, bits, signed
        As in :func:`quantize`.
    dtype : float32 or float64
        Of the result (``(q - Z) * S`` rounded once, as torch's ``dequantize``).

    Returns
    -------
    ndarray, shape of ``q``, ``dtype``
    """
    if not isinstance(q, np.ndarray) or q.dtype.kind not in "iu":
        raise TypeError(f"q: expected an integer ndarray, got "
                        f"{getattr(q, 'dtype', type(q).__name__)}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
    s, z, qmin, qmax = _check_qparams(q.shape, scale, zero_point, bits, signed)
    if q.size and (q.min() < qmin or q.max() > qmax):
        raise ValueError(f"q: expected values in [{qmin}, {qmax}], got [{q.min()}, {q.max()}]")
    return ((q.astype(np.int64) - z).astype(dtype) * s.astype(dtype)).astype(dtype)


def fake_quantize_forward(x, scale, zero_point, *, bits=8, signed=True):
    r"""Fake quantization and its straight-through mask.

    .. math::

        q = \mathrm{round}(x / S) + Z, \qquad
        \hat x = S\,(\mathrm{clamp}(q, q_{min}, q_{max}) - Z), \qquad
        m = [\,q_{min} \le q \le q_{max}\,]

    The straight-through estimator (Bengio et al. 2013; Jacob et al. 2018 sec. 3) treats the
    rounding as the identity: :math:`\partial \hat x / \partial x = m`, i.e. 1 where the
    rounded value lies inside the clamping range and 0 where it is clamped, exactly as torch's
    ``fake_quantize_per_tensor_affine`` backward (whose mask is also taken after rounding).

    Parameters
    ----------
    x : ndarray, float32 or float64, any shape (finite)
    scale, zero_point, bits, signed
        As in :func:`quantize`.

    Returns
    -------
    x_hat : ndarray, shape and dtype of ``x``
    mask : ndarray of bool, shape of ``x`` (the cache for :func:`fake_quantize_backward`)
    """
    check_float_array(x, "x", finite=True)
    s, z, qmin, qmax = _check_qparams(x.shape, scale, zero_point, bits, signed)
    q = _round_to_grid(x, s, z)  # shape of x, not clamped yet
    mask = (q >= qmin) & (q <= qmax)  # where the straight-through gradient passes
    x_hat = ((np.clip(q, qmin, qmax) - z) * s).astype(x.dtype)  # exact product, one rounding
    return x_hat, mask


def fake_quantize_backward(dx_hat, mask) -> np.ndarray:
    r"""Straight-through estimator: :math:`\partial L / \partial x = m \odot \partial L /
    \partial \hat x` (gradient 1 inside the clamping range, 0 outside).

    Parameters
    ----------
    dx_hat : ndarray, float, shape of ``x``
    mask : ndarray of bool, shape of ``x`` (from :func:`fake_quantize_forward`)
    """
    return np.where(mask, dx_hat, dx_hat.dtype.type(0))


def fake_quantize(x, scale, zero_point, *, bits=8, signed=True) -> np.ndarray:
    """:func:`fake_quantize_forward` without the mask: ``dequantize(quantize(x))`` in ``x``'s
    dtype."""
    return fake_quantize_forward(x, scale, zero_point, bits=bits, signed=signed)[0]
