"""Post-training quantization (PTQ) and quantization-aware training (QAT) on a whole model.

Recipe (Jacob et al. 2018, sec. 3; Krishnamoorthi, "Quantizing deep convolutional networks for
efficient inference: A whitepaper", 2018, sec. 3-4)::

    qmodel = prepare_qat(model, bits=8)        # FakeQuantize on every weight, ActFakeQuant after
                                                # every ReLU (a new model; `model` is untouched)
    # PTQ: estimate activation ranges on a calibration set, then freeze them
    ptq = calibrate(qmodel, X_cal)
    # QAT: fine-tune with fake quantization; freeze the ranges after some steps
    fit(qmodel, X, y, optimizer=SGD(qmodel.params, lr=0.01), rng=0,
        callbacks=[FreezeObservers(after_steps=200)])

Functions
---------
prepare_qat       copy of a model with fake quantization of weights and activations
calibrate         copy with activation ranges estimated on calibration data (then frozen)
freeze_           freeze every range of a prepared model, in place
FreezeObservers   callback: freeze_ after a number of optimizer steps
"""

from __future__ import annotations

from tinyprune.nn.layers import Conv2d, Linear, ReLU
from tinyprune.nn.model import Sequential
from tinyprune.nn.train import Callback
from tinyprune.nn.validation import check_float_array, check_int

from .affine import qrange
from .fake_quant import ActFakeQuant, FakeQuantize
from .observers import make_observer

__all__ = ["FreezeObservers", "calibrate", "freeze_", "prepare_qat"]


def prepare_qat(model, *, bits=8, per_channel=True, symmetric=True, weight_observer="minmax",
                act_bits=8, act_observer="ema", averaging_constant=0.01, percentile=99.99,
                quantize_input=False, layers=None) -> Sequential:
    """A copy of ``model`` that computes with fake-quantized weights and activations.

    Every ``Linear`` / ``Conv2d`` weight (or those of ``layers``) gets a :class:`FakeQuantize`
    transform (signed integers); every ``ReLU`` is followed by an :class:`ActFakeQuant` layer
    named ``"<relu>_fq"`` (unsigned, asymmetric, per tensor); biases stay float (at inference
    they are int32 with scale ``S_w S_in``, Jacob et al. 2018 sec. 2.4).

    Parameters
    ----------
    model : Sequential
        Not modified (its masks, buffers and parameters are copied).
    bits : int
        Weight bits (2..8 or 16).
    per_channel, symmetric : bool
        Weight scheme: one ``(S, Z)`` per output channel; symmetric (``Z = 0``) or not.
    weight_observer : {"minmax", "percentile"}
    act_bits : int
        Activation bits.
    act_observer : {"ema", "minmax", "percentile"}
        Range estimator of the activation layers.
    averaging_constant, percentile : float
        Hyper-parameters of the ``"ema"`` and ``"percentile"`` observers.
    quantize_input : bool
        Also insert ``"input_fq"`` (asymmetric, unsigned) before the first layer.
    layers : list of str, optional
        Names of the layers whose weights are fake-quantized (default: all Linear / Conv2d).

    Returns
    -------
    Sequential
        A new model (parameters copied), weight transforms set, observers not calibrated yet.

    Raises
    ------
    TypeError, ValueError
        Not a Sequential, bad bits/observer names, a layer that is not Linear/Conv2d, a weight
        that already has a transform, or a name clash with an inserted layer.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    qrange(bits)
    qrange(act_bits)
    if layers is None:
        layers = [n for n, m in model.layers.items() if isinstance(m, (Linear, Conv2d))]
    for n in layers:
        if n not in model.layers or not isinstance(model.layers[n], (Linear, Conv2d)):
            raise ValueError(f"layers: {n!r} is not a Linear or Conv2d layer of the model; "
                             f"layers: {list(model.layers)}")
        if "weight" in model.layers[n].transforms:
            raise ValueError(f"layers: {n}.weight already has a transform "
                             f"{model.layers[n].transforms['weight']!r}")
    extra = {"ema": {"averaging_constant": averaging_constant},
             "percentile": {"percentile": percentile}}.get(act_observer, {})

    def act_layer():  # unsigned asymmetric, per tensor
        return ActFakeQuant(make_observer(act_observer, bits=act_bits, signed=False, **extra))

    act_layer()  # validates the observer's name and hyper-parameters before any copying

    base = model.copy()
    stack = [("input_fq", act_layer())] if quantize_input else []
    for name, layer in base.layers.items():
        stack.append((name, layer))
        if isinstance(layer, ReLU):
            stack.append((f"{name}_fq", act_layer()))
    names = [n for n, _ in stack]
    clash = {n for n in names if names.count(n) > 1}
    if clash:
        raise ValueError(f"model: layer names {sorted(clash)} clash with the inserted "
                         f"fake-quantization layers")
    new = Sequential(stack, input_shape=base.input_shape, name=base.name)
    new.masks, new.buffers = base.masks, base.buffers
    for n in layers:
        new.set_transform(f"{n}.weight", FakeQuantize(
            bits, signed=True, symmetric=symmetric, per_channel=per_channel,
            observer=weight_observer, percentile=percentile))
    return new


def _act_layers(model):
    return [m for m in model.layers.values() if isinstance(m, ActFakeQuant)]


def freeze_(model) -> Sequential:
    """Freeze every activation range and every weight's ``(S, Z)`` (those of the current
    weights) of a prepared model, in place; returns ``model``."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    for layer in _act_layers(model):
        layer.freeze()
    params = model.params
    for name, t in model.transforms.items():
        if isinstance(t, FakeQuantize):
            t.freeze(params[name])
    return model


def calibrate(model, X_cal, *, batch_size=256, freeze=True) -> Sequential:
    """Post-training calibration: a copy of ``model`` whose activation observers have seen
    ``X_cal`` (inference mode: no dropout, no weight update).

    Parameters
    ----------
    model : Sequential
        A prepared model (:func:`prepare_qat`); not modified.
    X_cal : ndarray (N, ...), the model's dtype
        Calibration inputs (a few hundred training images are typical).
    batch_size : int
        The observers see one batch at a time (the EMA and percentile observers average over
        batches).
    freeze : bool
        Freeze every range afterwards (:func:`freeze_`).

    Returns
    -------
    Sequential
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    check_float_array(X_cal, "X_cal", finite=True, nonempty=True)
    if X_cal.ndim < 1:
        raise ValueError(f"X_cal: expected samples (N, ...), got shape {X_cal.shape}")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    new = model.copy()
    acts = _act_layers(new)
    if not acts and not any(isinstance(t, FakeQuantize) for t in new.transforms.values()):
        raise ValueError("model: no fake-quantization layers or transforms; call prepare_qat "
                         "first")
    for layer in acts:
        layer.calibrating = True
    chunk, new.inference_chunk = new.inference_chunk, None  # observers see whole batches
    try:
        for start in range(0, X_cal.shape[0], batch_size):
            new.forward(X_cal[start:start + batch_size], train=False)
    finally:
        new.inference_chunk = chunk
        for layer in acts:
            layer.calibrating = False
    if freeze:
        freeze_(new)
    return new


class FreezeObservers(Callback):
    """Freeze every range of the model (:func:`freeze_`) after ``after_steps`` optimizer steps
    (QAT: ranges settle first, then the weights fine-tune against fixed grids)."""

    def __init__(self, after_steps):
        self.after_steps = check_int(after_steps, "after_steps", minimum=0)
        self.done = False

    def on_step_end(self, state):
        if not self.done and state.step >= self.after_steps:
            freeze_(state.model)
            self.done = True

    def on_train_begin(self, state):
        if self.after_steps == 0:
            self.on_step_end(state)
