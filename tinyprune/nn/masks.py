"""Pruning masks in the engine: the one mechanism that keeps pruned weights exactly 0.0.

A model's masks live in ``model.masks`` (``{"fc1.weight": bool array}``, True = kept, keyed like
``model.params``). :func:`tinyprune.nn.train.fit` enforces them at every step, and nothing else
does: after pruning, the usual recipe is to fine-tune the surviving weights (Han et al.,
"Learning both Weights and Connections for Efficient Neural Networks", NeurIPS 2015: train,
prune, retrain), and for a pruned weight to *stay* pruned, zeroing it after each update is not
enough with momentum or Adam (their state would keep pushing it). So each optimizer step
(:meth:`tinyprune.nn.optim.Optimizer.step` with ``masks=``) applies the mask at three places:

1. the gradient, before the update: ``g <- g * M`` (the weight-decay term ``lambda W`` is 0 there);
2. the weight, after the update: ``W <- 0`` where ``M`` is False;
3. the optimizer state (momentum buffer, Adam moments): ``s <- 0`` where ``M`` is False.

Step 2 and 3 *set* zeros (``np.copyto(W, 0, where=~M)``) rather than multiply by the mask, so a
pruned entry is ``+0.0`` whatever the update computed there (``-0.0``, or NaN from ``0/0``).
The technique layer (:mod:`tinyprune.prune.masked`) builds on these functions: ``set_masks_``
combines new masks into ``model.masks``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_masks", "zero_pruned_"]


def check_masks(params: dict, masks, name: str = "masks") -> dict[str, np.ndarray]:
    """Validate ``masks`` against ``params`` and return it unchanged.

    Parameters
    ----------
    params : dict[str, ndarray]
        The parameters the masks refer to (``model.params``).
    masks : dict[str, ndarray of bool]
        ``True`` = kept; may cover a subset of ``params``.
    name : str
        Used in the error messages.

    Raises
    ------
    TypeError
        ``masks`` is not a dict, or a mask is not a boolean ndarray.
    ValueError
        A key names no parameter, or a mask's shape differs from its parameter's.
    """
    if not isinstance(masks, dict):
        raise TypeError(f"{name}: expected a dict name -> bool ndarray, got {type(masks).__name__}")
    for key, m in masks.items():
        if key not in params:
            raise ValueError(f"{name}: {key!r} is not a parameter of the model; "
                             f"parameters: {list(params)}")
        if not isinstance(m, np.ndarray) or m.dtype != np.bool_:
            what = m.dtype if isinstance(m, np.ndarray) else type(m).__name__
            raise TypeError(f"{name}[{key!r}]: expected a boolean ndarray, got {what}")
        if m.shape != params[key].shape:
            raise ValueError(f"{name}[{key!r}]: expected shape {params[key].shape}, got {m.shape}")
    return masks


def zero_pruned_(array: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Set ``array`` to ``+0.0`` wherever ``mask`` is False, in place; returns ``array``.

    Unlike ``array *= mask`` this gives exactly ``+0.0`` also where ``array`` holds ``-x``, NaN
    or infinity. No checks (engine-internal; callers validate with :func:`check_masks`).
    """
    np.copyto(array, 0, where=~mask)
    return array
