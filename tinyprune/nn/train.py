"""Training loop: :func:`fit`, :func:`evaluate`, :func:`predict` and the :class:`Callback` hooks.

One training step on a mini-batch ``batch = Batch(x, y, index)``::

    logits = model.forward(batch.x, train=True)          # (B, C)
    value, cache = loss.forward(logits, batch)           # default: softmax cross-entropy
    model.backward(loss.backward(cache))                 # fills model.grads
    callbacks.on_before_step(state)                      # e.g. log or clip the gradients
    optimizer.step(model.grads, masks=model.masks)       # pruned weights stay exactly 0.0
    callbacks.on_step_end(state)                         # e.g. grow the masks (a schedule)

``backward`` *replaces* every layer's gradients (it does not accumulate into them), so no
``zero_grad`` is needed between steps.

Three hooks let the compression techniques plug into training without the loop knowing them:

* ``loss=``: any :class:`~tinyprune.nn.losses.Loss` (a forward/backward pair on the logits that
  sees the batch; knowledge distillation reads the teacher's logits for the same images);
* ``model.masks``: pruning masks, enforced at every step on weights, gradients and optimizer
  state (:mod:`tinyprune.nn.masks`); a callback that changes ``model.masks`` (a pruning schedule)
  takes effect at the next step;
* callbacks (:class:`Callback`), called at the start and end of training, of each epoch and
  around each optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .batching import iterate_minibatches
from .losses import Batch, CrossEntropyLoss, Loss, softmax_cross_entropy_forward
from .masks import zero_pruned_
from .validation import as_generator, check_int

__all__ = ["Callback", "History", "TrainState", "TrainingDivergedError", "evaluate", "fit",
           "predict"]


class TrainingDivergedError(FloatingPointError):
    """The training loss (or the logits) became NaN or infinite; usually the learning rate is
    too large."""


@dataclass
class History:
    """Per-epoch metrics recorded by :func:`fit` (one entry per completed epoch).

    Attributes
    ----------
    loss, accuracy : list of float
        Training loss and accuracy, averaged over the epoch's samples, from the forward pass of
        each batch (with dropout active and weights changing during the epoch).
    val_loss, val_accuracy : list of float
        On ``validation_data`` after each epoch (empty without validation data).
    lr : list of float
        Learning rate used during each epoch.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float]]:
        """Plain dict of the lists (JSON-serialisable)."""
        return {"loss": list(self.loss), "accuracy": list(self.accuracy),
                "val_loss": list(self.val_loss), "val_accuracy": list(self.val_accuracy),
                "lr": list(self.lr)}


@dataclass
class TrainState:
    """What :class:`Callback` hooks see (and may change).

    Attributes
    ----------
    model, optimizer
        The objects being trained.
    epoch : int
        0-based index of the current epoch (``history.loss[epoch]`` is its loss at
        ``on_epoch_end``).
    epochs : int
        Total number of epochs requested.
    step : int
        Global count of optimizer steps: during ``on_before_step``/``on_step_end`` the 1-based
        number of the step being taken; 0 before the first.
    steps_per_epoch : int
        Number of batches per epoch.
    batch_loss : float or None
        Loss of the current batch (``None`` before the first).
    history : History
    stop_training : bool
        Set it to True in a hook to stop after the current step (the epoch is then closed:
        metrics recorded, ``on_epoch_end`` and ``on_train_end`` called).
    """

    model: Any
    optimizer: Any
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    batch_loss: float | None = None
    history: History = field(default_factory=History)
    stop_training: bool = False


class Callback:
    """Base class for training hooks; every hook receives the :class:`TrainState` and does
    nothing by default. Override the ones you need."""

    def on_train_begin(self, state: TrainState) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, state: TrainState) -> None:
        """At the start of epoch ``state.epoch``."""

    def on_before_step(self, state: TrainState) -> None:
        """Gradients are in ``state.model.grads``; the optimizer has not updated yet."""

    def on_step_end(self, state: TrainState) -> None:
        """After the optimizer update of step ``state.step``."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After the epoch's metrics (and validation metrics) are in ``state.history``."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last epoch (also after an early stop)."""


def _check_xy(X, y, xname="X", yname="y"):
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{xname}: expected a numpy.ndarray, got {type(X).__name__}")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{yname}: expected a numpy.ndarray, got {type(y).__name__}")
    if X.ndim < 1 or X.shape[0] == 0:
        raise ValueError(f"{xname}: expected at least one sample, got shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{yname}: expected shape ({X.shape[0]},) to match {xname}, "
                         f"got {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{yname}: expected integer class labels, got dtype {y.dtype}")


def _check_optimizer(model, optimizer):
    if not callable(getattr(optimizer, "step", None)) or not hasattr(optimizer, "params"):
        raise TypeError(f"optimizer: expected an Optimizer (e.g. SGD(model.params, lr=0.1)), "
                        f"got {type(optimizer).__name__}")
    mp, op = model.params, optimizer.params
    if set(mp) != set(op) or any(op[k] is not mp[k] for k in mp):
        raise ValueError("optimizer: it does not hold this model's parameter arrays; build it "
                         "from model.params after the model is final (e.g. after set_dtype)")


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def fit(model, X, y, *, optimizer, epochs=1, batch_size=64, rng=None, shuffle=True,
        drop_last=False, callbacks=(), validation_data=None, progress=True, scheduler=None,
        loss=None):
    """Train ``model`` by mini-batch gradient descent on ``loss`` (default: cross-entropy).

    Parameters
    ----------
    model : Sequential
    X : ndarray (N, ...), the model's dtype
    y : ndarray (N,), integer labels
    optimizer : Optimizer
        Built on ``model.params``.
    epochs : int, ``>= 0``
    batch_size : int, ``>= 1``
    rng : numpy.random.Generator or int, optional
        Shuffling source; required when ``shuffle=True``.
    shuffle, drop_last : bool
        Passed to :func:`tinyprune.nn.batching.iterate_minibatches`.
    callbacks : sequence of Callback
        Called in order at every hook.
    validation_data : (X_val, y_val), optional
        Evaluated with :func:`evaluate` after each epoch.
    progress : bool
        Show a tqdm bar over each epoch's batches (on stderr); False prints nothing.
    scheduler : LRScheduler, optional
        ``scheduler.step()`` is called after each epoch (after ``on_epoch_end``).
    loss : Loss, optional
        The training loss (:class:`~tinyprune.nn.losses.Loss`: ``forward(logits, batch)`` and
        ``backward(cache)``); default :class:`~tinyprune.nn.losses.CrossEntropyLoss`. The
        history's ``loss`` is this loss; ``accuracy`` and the validation metrics are always
        measured against the labels (validation loss: cross-entropy).

    Returns
    -------
    History

    Notes
    -----
    Pruning masks: ``model.masks`` is enforced. The pruned weights are zeroed when training
    starts, and every step is ``optimizer.step(model.grads, masks=model.masks)``: gradients,
    weights and optimizer state stay masked, and masks that a callback adds or grows during
    training (the live ``model.masks`` dict) take effect at the next step.

    Raises
    ------
    TrainingDivergedError
        When a batch's logits or loss become NaN/inf (the message names epoch and step).
    """
    _check_xy(X, y)
    _check_optimizer(model, optimizer)
    epochs = check_int(epochs, "epochs", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if shuffle:
        if rng is None:
            raise ValueError("rng: shuffle=True needs an explicit rng (a numpy.random.Generator "
                             "or an int seed), got None")
        rng = as_generator(rng)
    elif rng is not None:
        rng = as_generator(rng)
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}]: expected a Callback instance, "
                            f"got {type(cb).__name__}")
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data: expected a pair (X_val, y_val)")
        _check_xy(*validation_data, "validation_data[0]", "validation_data[1]")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler: expected an object with a step() method, "
                        f"got {type(scheduler).__name__}")
    if loss is None:
        loss = CrossEntropyLoss()
    elif not isinstance(loss, Loss):
        raise TypeError(f"loss: expected a tinyprune.nn.losses.Loss (forward/backward on the "
                        f"logits), got {type(loss).__name__}")
    masks = getattr(model, "masks", None)
    if not isinstance(masks, dict):
        raise TypeError(f"model.masks: expected a dict name -> bool ndarray, "
                        f"got {type(masks).__name__}")
    optimizer.check_masks(masks)

    n = X.shape[0]
    steps_per_epoch = n // batch_size if drop_last else -(-n // batch_size)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size: drop_last=True with batch_size={batch_size} > N={n} "
                         f"leaves no batch to train on")
    history = History()
    state = TrainState(model=model, optimizer=optimizer, epochs=epochs,
                       steps_per_epoch=steps_per_epoch, history=history)

    params = model.params
    for name, m in masks.items():  # pruned weights are 0.0 from the first step on
        zero_pruned_(params[name], m)
    _train_epochs(model, X, y, optimizer, state, callbacks, batch_size, rng, shuffle, drop_last,
                  validation_data, progress, scheduler, loss)
    return history


def _progress_bar(progress, **kwargs):
    """A tqdm bar, imported only when one is shown (the engine runs without tqdm)."""
    if not progress:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(**kwargs)


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        pass


def _train_epochs(model, X, y, optimizer, state, callbacks, batch_size, rng, shuffle, drop_last,
                  validation_data, progress, scheduler, loss_fn):
    history, epochs, steps_per_epoch = state.history, state.epochs, state.steps_per_epoch

    def call(hook):
        for cb in callbacks:
            getattr(cb, hook)(state)

    call("on_train_begin")
    for epoch in range(epochs):
        state.epoch = epoch
        history.lr.append(float(getattr(optimizer, "lr", float("nan"))))
        call("on_epoch_begin")
        loss_sum, correct, seen = 0.0, 0, 0
        bar = _progress_bar(progress, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                            leave=False, unit="batch")
        try:
            for xb, yb, idx in iterate_minibatches(X, y, batch_size, shuffle=shuffle, rng=rng,
                                                   drop_last=drop_last, return_index=True):
                state.step += 1
                logits = model.forward(xb, train=True)  # (B, C)
                if not np.isfinite(logits).all():
                    _diverged("the logits contain NaN or infinity", state)
                loss, cache = loss_fn.forward(logits, Batch(xb, yb, idx))
                if not np.isfinite(loss):
                    _diverged(f"the loss is {loss}", state)
                state.batch_loss = loss
                model.backward(loss_fn.backward(cache), need_input_grad=False)
                call("on_before_step")
                optimizer.step(model.grads, masks=model.masks)
                call("on_step_end")
                b = yb.shape[0]
                loss_sum += loss * b
                correct += int((logits.argmax(axis=1) == yb).sum())
                seen += b
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if state.stop_training:
                    break
        finally:
            bar.close()
        history.loss.append(loss_sum / seen if seen else float("nan"))
        history.accuracy.append(correct / seen if seen else float("nan"))
        if validation_data is not None:
            metrics = evaluate(model, *validation_data)
            history.val_loss.append(metrics["loss"])
            history.val_accuracy.append(metrics["accuracy"])
        call("on_epoch_end")
        if scheduler is not None:
            scheduler.step()
        if state.stop_training:
            break
    call("on_train_end")


def _diverged(what, state):
    raise TrainingDivergedError(
        f"training diverged at epoch {state.epoch + 1}/{state.epochs}, step {state.step}: {what} "
        f"(last finite batch loss: {state.batch_loss}); try a smaller learning rate "
        f"(lr={getattr(state.optimizer, 'lr', '?')})")


def predict(model, X, batch_size=1000):
    """Logits of ``model`` on ``X`` in inference mode, computed in batches.

    Parameters
    ----------
    model : Sequential
    X : ndarray (N, ...)
    batch_size : int

    Returns
    -------
    logits : ndarray (N, C), the model's dtype
    """
    if not isinstance(X, np.ndarray) or X.ndim < 1 or X.shape[0] == 0:
        shape = getattr(X, "shape", type(X).__name__)
        raise ValueError(f"X: expected a non-empty ndarray, got {shape}")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    outs = [model.forward(X[s], train=False) for s in _batches(X.shape[0], batch_size)]
    return np.concatenate(outs, axis=0)  # (N, C)


def evaluate(model, X, y, *, batch_size=1000) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)`` in inference mode.

    Parameters
    ----------
    model : Sequential
    X : ndarray (N, ...)
    y : ndarray (N,), integer labels
    batch_size : int

    Returns
    -------
    dict
        ``{"loss": float, "accuracy": float}`` (accuracy in [0, 1]).
    """
    _check_xy(X, y)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    loss_sum, correct = 0.0, 0
    for s in _batches(X.shape[0], batch_size):
        logits = model.forward(X[s], train=False)  # (B, C)
        loss, _ = softmax_cross_entropy_forward(logits, y[s])
        loss_sum += loss * logits.shape[0]
        correct += int((logits.argmax(axis=1) == y[s]).sum())
    n = X.shape[0]
    return {"loss": loss_sum / n, "accuracy": correct / n}

