r"""Range estimation ("observers"): the ``[min, max]`` a tensor is quantized over, and from it
``(S, Z)`` (:func:`~tinyprune.quantize.affine.qparams_from_range`).

A weight's range is known (the weight itself); an activation's range must be *estimated* on a
calibration set -- a few batches of training images run through the network (post-training
quantization) -- or tracked during quantization-aware training (Jacob et al. 2018, sec. 3:
"exponential moving averages (EMA)" of the batch ranges). Each observer sees one tensor at a
time (:meth:`Observer.update`), keeps a running ``(min_val, max_val)``, and stops changing once
frozen (:meth:`Observer.freeze`):

==========================  ==============================================================
:class:`MinMaxObserver`      ``min = min(min, min(x))``, ``max = max(max, max(x))``
                             (torch ``MinMaxObserver`` / ``PerChannelMinMaxObserver``)
:class:`EMAMinMaxObserver`   ``min <- min + c (min(x) - min)``, same for ``max``; the first batch
                             sets them (torch ``MovingAverageMinMaxObserver``, ``c = 0.01``)
:class:`PercentileObserver`  outlier-robust: the ``p``-th and ``(100 - p)``-th percentiles of
                             each batch, averaged over the batches (clips rare outliers, which
                             otherwise stretch ``S`` and waste the grid on empty range)
==========================  ==============================================================

``per_channel=True`` keeps one range per index of axis 0 (a weight's output channel). The
arithmetic is float32, in torch's order, so scale and zero point equal torch's bit for bit
(tested).
"""

from __future__ import annotations

import numbers

import numpy as np

from tinyprune.nn.validation import check_float_array

from .affine import qparams_from_range, qrange

__all__ = ["EMAMinMaxObserver", "MinMaxObserver", "Observer", "PercentileObserver",
           "make_observer", "observer_from_spec"]


class Observer:
    """Base class: a running range ``[min_val, max_val]`` and the ``(S, Z)`` it gives.

    Parameters
    ----------
    bits : int in :data:`~tinyprune.quantize.affine.SUPPORTED_BITS`
    signed, symmetric : bool
        Integer range and scheme of :func:`~tinyprune.quantize.affine.qparams_from_range`
        (default: unsigned asymmetric, torch's activation default ``quint8``).
    per_channel : bool
        One range per index of axis 0 instead of one per tensor.
    min_val, max_val : float or list of float, optional
        Saved state (from :meth:`spec`); None before the first :meth:`update`.
    frozen : bool
        A frozen observer ignores :meth:`update`.

    Attributes
    ----------
    min_val, max_val : ndarray float32, shape ``()`` or ``(C,)``, or None
    """

    kind = "base"

    def __init__(self, *, bits=8, signed=False, symmetric=False, per_channel=False,
                 min_val=None, max_val=None, frozen=False):
        qrange(bits, signed)  # validates bits and signed
        for name, v in (("symmetric", symmetric), ("per_channel", per_channel),
                        ("frozen", frozen)):
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{type(self).__name__}: {name}: expected a bool, got {v!r}")
        self.bits, self.signed, self.symmetric = int(bits), bool(signed), bool(symmetric)
        self.per_channel, self.frozen = bool(per_channel), bool(frozen)
        self.min_val = self.max_val = None
        if (min_val is None) != (max_val is None):
            raise ValueError(f"{type(self).__name__}: min_val and max_val: give both or neither")
        if min_val is not None:
            qparams_from_range(min_val, max_val, bits=bits, signed=signed)  # validates
            self.min_val = np.asarray(min_val, dtype=np.float32)
            self.max_val = np.asarray(max_val, dtype=np.float32)

    # -- what one tensor says --------------------------------------------------------------
    def batch_range(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(min(x), max(x))``: scalars, or per index of axis 0 (float32)."""
        if self.per_channel:
            flat = x.reshape(x.shape[0], -1)  # (C, rest)
            return flat.min(axis=1).astype(np.float32), flat.max(axis=1).astype(np.float32)
        return np.float32(x.min()), np.float32(x.max())

    def _combine(self, lo, hi) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- interface -------------------------------------------------------------------------
    def update(self, x) -> None:
        """Fold the range of ``x`` into the running range (nothing when :attr:`frozen`).

        Parameters
        ----------
        x : ndarray, float32 or float64, finite, non-empty; ``(C, ...)`` when per-channel
        """
        if self.frozen:
            return
        name = f"{type(self).__name__}.update: x"
        check_float_array(x, name, finite=True)
        if x.size == 0 or (x.ndim == 0 and self.per_channel):
            raise ValueError(f"{name}: expected a non-empty array, got shape {x.shape}")
        if self.per_channel and self.min_val is not None and x.shape[0] != self.min_val.shape[0]:
            raise ValueError(f"{name}: expected {self.min_val.shape[0]} channels on axis 0, got "
                             f"shape {x.shape}")
        lo, hi = self.batch_range(x)
        if self.min_val is None:
            self.min_val, self.max_val = np.asarray(lo), np.asarray(hi)
        else:
            self._combine(np.asarray(lo), np.asarray(hi))

    __call__ = update

    @property
    def calibrated(self) -> bool:
        """Whether a range is known (some data seen, or state loaded)."""
        return self.min_val is not None

    def qparams(self) -> tuple[np.ndarray, np.ndarray]:
        """``(scale, zero_point)`` for the current range (float32 and int64 arrays).

        Raises
        ------
        RuntimeError
            No data seen yet.
        """
        if not self.calibrated:
            raise RuntimeError(f"{type(self).__name__}: no range yet; call update() on "
                               f"calibration data first")
        return qparams_from_range(self.min_val, self.max_val, bits=self.bits,
                                  signed=self.signed, symmetric=self.symmetric)

    def freeze(self) -> None:
        """Stop updating the range (after calibration, or after some QAT steps)."""
        self.frozen = True

    def reset(self) -> None:
        """Forget the range (and unfreeze)."""
        self.min_val = self.max_val = None
        self.frozen = False

    def spec(self) -> dict:
        """JSON-serialisable hyper-parameters *and* state (the range is a few floats)."""
        def tolist(v):
            return None if v is None else v.tolist()
        return {"kind": self.kind, "bits": self.bits, "signed": self.signed,
                "symmetric": self.symmetric, "per_channel": self.per_channel,
                "min_val": tolist(self.min_val), "max_val": tolist(self.max_val),
                "frozen": self.frozen, **self._extra_spec()}

    def _extra_spec(self) -> dict:
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "kind")
        return f"{type(self).__name__}({args})"


class MinMaxObserver(Observer):
    """Running minimum and maximum over every tensor seen (torch's ``MinMaxObserver``)."""

    kind = "minmax"

    def _combine(self, lo, hi):
        self.min_val = np.minimum(self.min_val, lo)
        self.max_val = np.maximum(self.max_val, hi)


class EMAMinMaxObserver(Observer):
    r"""Exponential moving average of the batch ranges (torch's
    ``MovingAverageMinMaxObserver``; Jacob et al. 2018, sec. 3, for activations in QAT):

    .. math::

        m \leftarrow m + c\,(\min(x) - m), \qquad M \leftarrow M + c\,(\max(x) - M)

    in float32; the first tensor sets ``(m, M)``.

    Parameters
    ----------
    averaging_constant : float in (0, 1]
        ``c`` (torch default 0.01).
    """

    kind = "ema"

    def __init__(self, *, averaging_constant=0.01, **kwargs):
        if isinstance(averaging_constant, bool) or not isinstance(averaging_constant, numbers.Real) \
                or not 0 < averaging_constant <= 1:
            raise ValueError(f"EMAMinMaxObserver: averaging_constant: expected a number in "
                             f"(0, 1], got {averaging_constant!r}")
        super().__init__(**kwargs)
        self.averaging_constant = float(averaging_constant)

    def _combine(self, lo, hi):
        c = np.float32(self.averaging_constant)
        self.min_val = (self.min_val + c * (lo - self.min_val)).astype(np.float32)
        self.max_val = (self.max_val + c * (hi - self.max_val)).astype(np.float32)

    def _extra_spec(self):
        return {"averaging_constant": self.averaging_constant}


class PercentileObserver(Observer):
    r"""Outlier-robust range: per batch the ``(100 - p)``-th and ``p``-th percentiles, averaged
    over the batches seen (a running mean).

    A few outliers (one huge activation) stretch a min-max range, and so the step ``S``, for
    every other value; clipping them at a high percentile trades a large error on the rare
    outlier for a smaller rounding error on all the rest (e.g. McKinstry et al. 2019; Wu et
    al., "Integer Quantization for Deep Learning Inference", 2020, sec. 4).

    Parameters
    ----------
    percentile : float in (50, 100]
        ``p`` (100 gives min-max per batch, averaged).
    n_batches : int
        Saved state: the number of batches averaged so far.
    """

    kind = "percentile"

    def __init__(self, *, percentile=99.99, n_batches=0, **kwargs):
        if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real) \
                or not 50 < percentile <= 100:
            raise ValueError(f"PercentileObserver: percentile: expected a number in (50, 100], "
                             f"got {percentile!r}")
        super().__init__(**kwargs)
        self.percentile = float(percentile)
        self.n_batches = int(n_batches)

    def batch_range(self, x):
        q = [100.0 - self.percentile, self.percentile]
        if self.per_channel:
            lo, hi = np.percentile(x.reshape(x.shape[0], -1), q, axis=1)  # (2, C)
        else:
            lo, hi = np.percentile(x, q)
        return np.asarray(lo, dtype=np.float32), np.asarray(hi, dtype=np.float32)

    def update(self, x):
        super().update(x)
        if not self.frozen:
            self.n_batches += 1

    def _combine(self, lo, hi):
        n = self.n_batches + 1  # the running mean over n batches (this one included)
        self.min_val = (self.min_val + (lo - self.min_val) / np.float32(n)).astype(np.float32)
        self.max_val = (self.max_val + (hi - self.max_val) / np.float32(n)).astype(np.float32)

    def reset(self):
        super().reset()
        self.n_batches = 0

    def _extra_spec(self):
        return {"percentile": self.percentile, "n_batches": self.n_batches}


OBSERVERS = {cls.kind: cls for cls in (MinMaxObserver, EMAMinMaxObserver, PercentileObserver)}


def make_observer(kind="minmax", **kwargs) -> Observer:
    """Build an observer by name: ``"minmax"``, ``"ema"`` or ``"percentile"``."""
    if kind not in OBSERVERS:
        raise ValueError(f"observer: expected one of {sorted(OBSERVERS)}, got {kind!r}")
    return OBSERVERS[kind](**kwargs)


def observer_from_spec(spec) -> Observer:
    """Rebuild an observer (hyper-parameters and range) from :meth:`Observer.spec` output."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ValueError(f"observer spec: expected a dict with a 'kind' key, got {spec!r}")
    kwargs = {k: v for k, v in spec.items() if k != "kind"}
    try:
        return make_observer(spec["kind"], **kwargs)
    except TypeError as exc:
        raise ValueError(f"observer spec: bad arguments {kwargs}: {exc}") from None
