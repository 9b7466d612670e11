"""Masks on a model: combine new pruning masks into ``model.masks``, zero the pruned weights.

``model.masks`` (``{"fc1.weight": bool array}``, True = kept) is the one place masks live, and
:func:`tinyprune.nn.train.fit` is the one place they are enforced while training: at every step
the gradients are masked before the update, and the pruned weights and their optimizer state
(momentum, Adam moments) are set to exactly ``0.0`` after it (see :mod:`tinyprune.nn.masks`).
So after ``set_masks_(model, masks)`` any ``fit`` call fine-tunes the survivors while the
pruned weights stay exactly 0.0 (Han et al., "Learning both Weights and Connections for
Efficient Neural Networks", NeurIPS 2015: train, prune, retrain); a pruning schedule is a
training callback that calls ``set_masks_`` (the masks it adds take effect at the next step).
"""

from __future__ import annotations

import numpy as np

from ..nn import masks as _engine_masks
from ..nn.model import Sequential


def check_masks(model: Sequential, masks: dict) -> dict[str, np.ndarray]:
    """Validate ``masks`` against ``model``'s parameters and return it.

    Raises
    ------
    TypeError
        ``masks`` is not a dict, or a mask is not a boolean ndarray.
    ValueError
        A key names no parameter, or a mask's shape differs from its parameter's.
    """
    return _engine_masks.check_masks(model.params, masks)


def apply_masks_(model: Sequential, masks: dict | None = None) -> None:
    """Set the pruned weights of ``model`` to exactly ``0.0`` in place (``W[~M] = 0``).

    ``masks`` defaults to ``model.masks``.
    """
    masks = check_masks(model, model.masks if masks is None else masks)
    params = model.params
    for name, m in masks.items():
        _engine_masks.zero_pruned_(params[name], m)


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
