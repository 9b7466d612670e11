"""Masks on a model, and training that keeps pruned weights exactly zero.

After pruning, the usual recipe is to fine-tune the surviving weights (Han et al., "Learning both
Weights and Connections for Efficient Neural Networks", NeurIPS 2015: train, prune, retrain). For
the pruned weights to *stay* pruned, zeroing them after each update is not enough with momentum or
Adam: their optimizer state would keep pushing them. So the mask is applied at three places:

1. the weights, once when training starts: ``W <- W * M``;
2. the gradients, before every update: ``g <- g * M`` (weight decay ``lambda W`` is zero there too);
3. the optimizer state (momentum buffer, Adam moments): ``s <- s * M`` after every update.

With (2) and (3) a pruned weight receives an update of exactly 0.0 under SGD (with momentum,
Nesterov, weight decay) and Adam, so it stays exactly 0.0; (1) is re-applied after each step as a
cheap guarantee.
"""

from __future__ import annotations

import numpy as np

from ..nn.model import Sequential
from ..nn.train import Callback


def check_masks(model: Sequential, masks: dict) -> dict[str, np.ndarray]:
    """Validate ``masks`` against ``model``'s parameters and return it.

    Raises
    ------
    TypeError
        A mask is not a boolean ndarray.
    ValueError
        A key names no parameter, or a mask's shape differs from its parameter's.
    """
    if not isinstance(masks, dict):
        raise TypeError(f"masks: expected a dict of boolean arrays, got {type(masks).__name__}")
    params = model.params
    for name, m in masks.items():
        if name not in params:
            raise ValueError(f"masks: {name!r} is not a parameter of the model; "
                             f"parameters: {list(params)}")
        if not isinstance(m, np.ndarray) or m.dtype != np.bool_:
            dtype = getattr(m, "dtype", type(m).__name__)
            raise TypeError(f"masks[{name!r}]: expected a boolean ndarray, got {dtype}")
        if m.shape != params[name].shape:
            raise ValueError(f"masks[{name!r}]: expected shape {params[name].shape}, "
                             f"got {m.shape}")
    return masks


def apply_masks_(model: Sequential, masks: dict | None = None) -> None:
    """Zero the pruned weights of ``model`` in place (``W *= M``). Defaults to ``model.masks``."""
    masks = check_masks(model, model.masks if masks is None else masks)
    params = model.params
    for name, m in masks.items():
        np.multiply(params[name], m, out=params[name])


def set_masks_(model: Sequential, masks: dict, *, reset: bool = False) -> dict[str, np.ndarray]:
    """Combine ``masks`` into ``model.masks`` monotonically and zero the pruned weights.

    A weight pruned before stays pruned: the stored mask becomes ``old & new``. Pass
    ``reset=True`` to replace the masks on purpose (a pruned weight then comes back with the value
    it has now, which is 0.0 unless it was changed by hand).

    Returns
    -------
    dict[str, ndarray of bool]
        The model's masks after the update.
    """
    check_masks(model, masks)
    for name, m in masks.items():
        old = model.masks.get(name)
        model.masks[name] = m.copy() if (reset or old is None) else (old & m)
    apply_masks_(model)
    return model.masks


def remove_masks_(model: Sequential) -> None:
    """Forget all masks (the weights keep their current values, zeros included)."""
    model.masks = {}


class MaskedTraining(Callback):
    """Training callback that keeps ``masks`` enforced (weights, gradients, optimizer state).

    Parameters
    ----------
    masks : dict[str, ndarray of bool], optional
        Defaults to the model's own ``model.masks`` when training starts.

    Notes
    -----
    :func:`tinyprune.nn.train.fit` adds this behaviour by itself for a model that has masks; use the
    callback explicitly with your own training loop, or to enforce masks other than the model's.
    """

    def __init__(self, masks: dict | None = None):
        self.masks = masks

    def on_train_begin(self, state):
        masks = state.model.masks if self.masks is None else self.masks
        self._masks = check_masks(state.model, masks)
        apply_masks_(state.model, self._masks)
        state.optimizer.masks = self._masks

    def on_before_step(self, state):
        grads = state.model.grads
        for name, m in self._masks.items():
            np.multiply(grads[name], m, out=grads[name])

    def on_step_end(self, state):
        apply_masks_(state.model, self._masks)
