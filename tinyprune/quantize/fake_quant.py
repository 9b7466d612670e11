r"""Fake quantization for quantization-aware training (Jacob et al. 2018, sec. 3).

The network keeps training in floating point, but every weight and every activation it
computes with is first rounded to the grid it will have at inference, ``S (q - Z)``, so that
the training loss sees (and learns to compensate) the quantization error. The rounding has a
zero derivative almost everywhere, so the backward pass uses the straight-through estimator
(STE): the gradient passes unchanged where the value was inside the clamping range and is 0
where it was clamped (:func:`~tinyprune.quantize.affine.fake_quantize_backward`)::

    forward:   w_hat = S (clamp(round(w / S) + Z, q_min, q_max) - Z)
    backward:  dL/dw = dL/dw_hat * [q_min <= round(w / S) + Z <= q_max]

* :class:`FakeQuantize` -- a weight transform (``model.set_transform("fc1.weight", t)``): the
  layer computes with ``w_hat`` while the optimizer updates the float ``w``. Until frozen, the
  range is read from the current weight at every forward (min-max, or percentiles), per tensor
  or per output channel; torch's default for weights is signed, symmetric, per channel.
* :class:`ActFakeQuant` -- a layer placed after a ReLU: fake-quantizes the activation with the
  range its observer estimated (EMA of the batch ranges during training, or a calibration set).

Both are registered (checkpoint specs name them), and both freeze: after calibration (PTQ) or
after some QAT steps, the ranges stop moving.
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.layers import Module, register_layer
from tinyprune.nn.transforms import WeightTransform, register_transform
from tinyprune.nn.validation import check_float_array

from .affine import fake_quantize_backward, fake_quantize_forward, qparams_from_range
from .observers import EMAMinMaxObserver, Observer, make_observer, observer_from_spec

__all__ = ["ActFakeQuant", "FakeQuantize"]

_WEIGHT_OBSERVERS = ("minmax", "percentile")


@register_transform
class FakeQuantize(WeightTransform):
    r"""Weight transform ``W_eff = fake_quantize(W)`` with the straight-through estimator.

    Parameters
    ----------
    bits : int in :data:`~tinyprune.quantize.affine.SUPPORTED_BITS`
    signed, symmetric : bool
        Integer range and scheme (default: signed symmetric, ``Z = 0``, torch's weight default).
    per_channel : bool
        One ``(S, Z)`` per output channel (axis 0 of the weight) or one per tensor.
    observer : {"minmax", "percentile"}
        How the range is read from the current weight.
    percentile : float
        For ``observer="percentile"``.
    frozen : bool
        Use the stored ``scale`` / ``zero_point`` instead of re-reading the range.
    scale, zero_point : ndarray, optional
        The stored quantization parameters (shape ``()`` or ``(C_out,)``); required when frozen.

    Attributes
    ----------
    scale, zero_point : ndarray or None
        The parameters of the last forward pass (the frozen ones once frozen).
    """

    def __init__(self, bits=8, signed=True, symmetric=True, per_channel=True, observer="minmax",
                 percentile=99.99, frozen=False, scale=None, zero_point=None):
        if observer not in _WEIGHT_OBSERVERS:
            raise ValueError(f"FakeQuantize: observer: expected one of {_WEIGHT_OBSERVERS}, got "
                             f"{observer!r}")
        extra = {"percentile": percentile} if observer == "percentile" else {}
        self._observer = make_observer(observer, bits=bits, signed=signed, symmetric=symmetric,
                                       per_channel=per_channel, **extra)
        self.bits, self.signed, self.symmetric = int(bits), bool(signed), bool(symmetric)
        self.per_channel, self.observer, self.percentile = bool(per_channel), observer, percentile
        if not isinstance(frozen, (bool, np.bool_)):
            raise TypeError(f"FakeQuantize: frozen: expected a bool, got {frozen!r}")
        if frozen and (scale is None or zero_point is None):
            raise ValueError("FakeQuantize: frozen=True needs scale and zero_point")
        self.frozen = bool(frozen)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float32)
        self.zero_point = None if zero_point is None else np.asarray(zero_point, dtype=np.int64)

    def qparams_of(self, w) -> tuple[np.ndarray, np.ndarray]:
        """``(S, Z)`` for weight ``w``: the frozen ones, or those of ``w``'s current range."""
        if self.frozen:
            return self.scale, self.zero_point
        lo, hi = self._observer.batch_range(w)
        return qparams_from_range(lo, hi, bits=self.bits, signed=self.signed,
                                  symmetric=self.symmetric)

    def forward(self, w):
        self.scale, self.zero_point = self.qparams_of(w)
        w_hat, mask = fake_quantize_forward(w, self.scale, self.zero_point, bits=self.bits,
                                            signed=self.signed)
        return w_hat, mask  # the mask is the cache of the straight-through estimator

    def backward(self, dw_eff, cache):
        return fake_quantize_backward(dw_eff, cache)  # 1 inside the clamping range, 0 outside

    def freeze(self, w=None) -> None:
        """Fix ``(S, Z)``: those of weight ``w`` if given, else those of the last forward."""
        if w is not None:
            check_float_array(w, "FakeQuantize.freeze: w", finite=True)
            self.scale, self.zero_point = self.qparams_of(w)
        if self.scale is None:
            raise RuntimeError("FakeQuantize.freeze: no quantization parameters yet; pass the "
                               "weight or run a forward pass first")
        self.frozen = True

    def spec(self):
        return {**super().spec(), "bits": self.bits, "signed": self.signed,
                "symmetric": self.symmetric, "per_channel": self.per_channel,
                "observer": self.observer, "percentile": self.percentile, "frozen": self.frozen}

    def arrays(self):
        if self.scale is None:
            return {}
        return {"scale": self.scale, "zero_point": self.zero_point}

    @classmethod
    def from_spec(cls, spec, arrays):
        kwargs = {k: v for k, v in spec.items() if k not in ("type", "module")}
        return cls(**kwargs, scale=arrays.get("scale"), zero_point=arrays.get("zero_point"))


@register_layer
class ActFakeQuant(Module):
    r"""Activation fake quantization: ``y = fake_quantize(x)`` with the range of an observer.

    The observer sees the activation in training passes (``train=True``) and while
    :attr:`calibrating` (post-training calibration in inference mode), unless frozen; an
    inference pass never moves the range (test data must not leak into it). Before the observer
    has seen any data the layer is the identity.

    Backward: the straight-through estimator (gradient 1 where the rounded value was inside the
    clamping range, 0 where it was clamped).

    Parameters
    ----------
    observer : Observer or dict, optional
        An observer (see :mod:`tinyprune.quantize.observers`) or its ``spec()``; default
        ``EMAMinMaxObserver(bits=8, signed=False)`` (unsigned: activations after a ReLU are
        non-negative). Per-tensor only.

    Attributes
    ----------
    calibrating : bool
        Observe also in inference passes (set by :func:`tinyprune.quantize.qat.calibrate`).
    """

    def __init__(self, observer=None):
        super().__init__()
        if observer is None:
            observer = EMAMinMaxObserver(bits=8, signed=False)
        elif isinstance(observer, dict):
            observer = observer_from_spec(observer)
        if not isinstance(observer, Observer):
            raise TypeError(f"ActFakeQuant: observer: expected an Observer or its spec, got "
                            f"{type(observer).__name__}")
        if observer.per_channel:
            raise ValueError("ActFakeQuant: observer: activations are quantized per tensor; "
                             "got a per-channel observer")
        self.observer = observer
        self.calibrating = False

    def forward(self, x, train=False):
        check_float_array(x, f"{self.name} (ActFakeQuant) input", finite=True)
        if train or self.calibrating:
            self.observer.update(x)  # no-op when frozen
        if not self.observer.calibrated:
            self._cache = (None,) if train else None
            return x
        s, z = self.observer.qparams()
        out, mask = fake_quantize_forward(x, s, z, bits=self.observer.bits,
                                          signed=self.observer.signed)
        self._cache = (mask,) if train else None
        return out

    def backward(self, dout, need_dx=True):
        (mask,) = self._cached()
        return dout if mask is None else fake_quantize_backward(dout, mask)

    def freeze(self) -> None:
        """Stop updating the range."""
        self.observer.freeze()

    def spec(self):
        return {"type": "ActFakeQuant", "observer": self.observer.spec()}
