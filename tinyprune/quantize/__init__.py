"""Quantization: fewer bits per parameter (the lecture's second compression technique).

Lecture -> functions:

* uniform affine quantization ``r = S (q - Z)`` (Jacob et al. 2018): :mod:`.affine`
  (:func:`quantize`, :func:`dequantize`, :func:`fake_quantize`, :func:`qparams_from_range`);
"""

from .affine import (
    SUPPORTED_BITS,
    dequantize,
    fake_quantize,
    fake_quantize_backward,
    fake_quantize_forward,
    int_dtype,
    qparams_from_range,
    qrange,
    quantize,
)

__all__ = [
    "SUPPORTED_BITS", "dequantize", "fake_quantize", "fake_quantize_backward",
    "fake_quantize_forward", "int_dtype", "qparams_from_range", "qrange", "quantize",
]
