"""Quantization: fewer bits per parameter (the lecture's second compression technique:
"reduce the total number of bits required to represent each parameter").

Lecture / paper -> module -> functions:

* uniform affine quantization ``r = S (q - Z)`` (Jacob et al. 2018, sec. 2.1): :mod:`.affine`
  (:func:`quantize`, :func:`dequantize`, :func:`fake_quantize`, :func:`qparams_from_range`);
* range estimation, calibration (min-max, EMA, percentile): :mod:`.observers`;
* quantization-aware training with the straight-through estimator (Jacob et al. 2018, sec. 3):
  :mod:`.fake_quant` (:class:`FakeQuantize` weight transform, :class:`ActFakeQuant` layer) and
  :mod:`.qat` (:func:`prepare_qat`, :func:`calibrate` for post-training quantization);
* k-means weight sharing, codebook + indices, centroid fine-tuning (Han et al. 2016, sec. 3):
  :mod:`.weight_sharing` (:func:`cluster_weights`, :func:`share_weights`,
  :class:`WeightSharing`, :func:`centroid_lr`);
* integer-only inference (Jacob et al. 2018, sec. 2.2-2.4): :mod:`.fixed_point` (gemmlowp's
  fixed-point requantization, :func:`quantize_multiplier`) and :mod:`.integer`
  (:func:`convert` a float model into an :class:`IntegerModel`; :func:`simulate`).
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
from .fake_quant import ActFakeQuant, FakeQuantize
from .fixed_point import multiply_by_quantized_multiplier, quantize_multiplier
from .integer import IntegerModel, convert, simulate
from .observers import (
    EMAMinMaxObserver,
    MinMaxObserver,
    Observer,
    PercentileObserver,
    make_observer,
    observer_from_spec,
)
from .qat import FreezeObservers, calibrate, freeze_, prepare_qat
from .weight_sharing import (
    INITS,
    WeightSharing,
    centroid_lr,
    cluster_weights,
    init_centroids,
    reconstruct,
    share_weights,
)

__all__ = [
    "ActFakeQuant", "EMAMinMaxObserver", "FakeQuantize", "FreezeObservers", "INITS", "IntegerModel",
    "MinMaxObserver", "Observer", "PercentileObserver", "SUPPORTED_BITS", "WeightSharing",
    "calibrate", "centroid_lr", "cluster_weights", "convert", "dequantize", "fake_quantize",
    "fake_quantize_backward", "fake_quantize_forward", "freeze_", "init_centroids", "int_dtype",
    "make_observer", "multiply_by_quantized_multiplier", "observer_from_spec", "prepare_qat",
    "qparams_from_range", "qrange", "quantize", "quantize_multiplier", "reconstruct",
    "share_weights", "simulate",
]
