"""Physical removal of pruned channels and neurons ("thinning").

Channel-level pruning only pays off once the pruned filters are really gone: the layer becomes a
smaller dense layer and the *next* layer loses the matching inputs (Li et al., "Pruning Filters for
Efficient ConvNets", ICLR 2017; the lecture's "Easy to accelerate (just a smaller matrix!)").

The walk over a :class:`~tinyprune.nn.Sequential` tracks which channels (or features) of the current
activation survive:

* Conv2d / Linear: keep the input slice ``W[:, kept_in]``; an output unit is removed when its whole
  weight row is masked (``~mask.any()`` over the row) and its bias is masked too (or zero), so the
  unit's output is exactly 0 in the masked model; the last layer keeps all outputs.
* ReLU, MaxPool2d, Dropout: act per channel, so the kept set passes through.
* Flatten: channel ``c`` of a ``(C, H, W)`` activation becomes features ``c*H*W ... c*H*W + H*W - 1``
  (C order), e.g. the lecture net's 9216 = 64 x 12 x 12 inputs of ``fc1``.

A removed unit whose output is not exactly zero (unmasked non-zero bias) cannot be dropped without
changing the function, so it is kept; :func:`thin_model` reports it.

The masks are *applied* to the kept weights (``W[kept] * M[kept]``), whether or not they were
applied to ``model`` before: the thin model always computes the masked model's function, including
the element-level zeros inside kept units.
"""

from __future__ import annotations

import numpy as np

from ..nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from ..nn.model import Sequential


def _check_masks(model, masks) -> None:
    if not isinstance(masks, dict):
        raise TypeError(f"masks: expected a dict of boolean arrays, got {type(masks).__name__}")
    params = model.params
    for name, m in masks.items():
        if name not in params:
            raise ValueError(f"masks: {name!r} is not a parameter of the model; parameters: "
                             f"{list(params)}")
        if not isinstance(m, np.ndarray) or m.dtype != np.bool_:
            raise TypeError(f"masks[{name!r}]: expected a boolean ndarray, got "
                            f"{getattr(m, 'dtype', type(m).__name__)}")
        if m.shape != params[name].shape:
            raise ValueError(f"masks[{name!r}]: expected shape {params[name].shape} (the "
                             f"parameter's), got {m.shape}")


def removable_units(model: Sequential, masks: dict) -> dict[str, np.ndarray]:
    """Output units (channels / neurons) of each weighted layer whose outputs are exactly zero.

    Parameters
    ----------
    model : Sequential
    masks : dict[str, ndarray of bool]
        Masks keyed by parameter name (True = kept); missing keys mean "dense".

    Returns
    -------
    dict[str, ndarray of bool]
        For each Linear/Conv2d layer name, a ``(out_units,)`` boolean array, True = removable.
        The last weighted layer (the classifier) never has removable units.
    """
    _check_masks(model, masks)
    weighted = [ln for ln, layer in model.layers.items() if isinstance(layer, (Linear, Conv2d))]
    result = {}
    for ln in weighted:
        layer = model.layers[ln]
        w = layer.params["weight"]
        wmask = masks.get(f"{ln}.weight")
        if wmask is None:
            result[ln] = np.zeros(w.shape[0], dtype=bool)
            continue
        row_dead = ~wmask.reshape(w.shape[0], -1).any(axis=1) | ~(w != 0).reshape(
            w.shape[0], -1).any(axis=1)
        if "bias" in layer.params:
            b = layer.params["bias"]
            bmask = masks.get(f"{ln}.bias")
            bias_zero = (b == 0) if bmask is None else (~bmask | (b == 0))
            row_dead &= bias_zero
        result[ln] = row_dead
    if weighted:
        result[weighted[-1]] = np.zeros_like(result[weighted[-1]])
    return result


def thin_model(model: Sequential, masks: dict | None = None):
    """Build a smaller dense model without the pruned output channels / neurons.

    Parameters
    ----------
    model : Sequential
        The model (left unchanged); its masks need not have been applied yet.
    masks : dict[str, ndarray of bool], optional
        Defaults to ``model.masks``.

    Returns
    -------
    thin : Sequential
        New model with the sliced parameters *times their sliced masks* (copies) and the surviving
        parts of ``masks`` in ``thin.masks`` (so any fine-grained sparsity inside kept channels is
        preserved). It computes the same function as ``model`` with ``masks`` applied.
    kept : dict[str, ndarray of int]
        For each weighted layer, the indices of the output units that were kept.
    """
    masks = model.masks if masks is None else masks
    if model.input_shape is None:
        raise ValueError("thin_model: the model needs an input_shape to map conv channels to "
                         "flattened features")
    removable = removable_units(model, masks)
    spec = model.spec()
    new_layers = []
    new_params: dict[str, np.ndarray] = {}
    new_masks: dict[str, np.ndarray] = {}
    kept_out: dict[str, np.ndarray] = {}
    kept_in = np.arange(model.input_shape[0])  # surviving channels of the current activation
    shape = model.input_shape
    for ls, (ln, layer) in zip(spec["layers"], model.layers.items(), strict=True):
        ls = dict(ls)
        if isinstance(layer, (Linear, Conv2d)):
            keep = np.flatnonzero(~removable[ln])
            if keep.size == 0:
                raise ValueError(f"thin_model: every output unit of layer {ln!r} is pruned, so the "
                                 f"network's output no longer depends on its input; keep at least "
                                 f"one unit")
            kept_out[ln] = keep
            for pname, p in layer.params.items():
                full = f"{ln}.{pname}"
                sliced = p[keep][:, kept_in] if pname == "weight" else p[keep]  # a copy
                if full in masks:
                    m = masks[full]
                    new_masks[full] = np.ascontiguousarray(
                        m[keep][:, kept_in] if pname == "weight" else m[keep])
                    sliced *= new_masks[full]  # W * M: the masked model's weights
                new_params[full] = np.ascontiguousarray(sliced)
            if isinstance(layer, Linear):
                ls.update(in_features=int(kept_in.size), out_features=int(keep.size))
            else:
                ls.update(in_channels=int(kept_in.size), out_channels=int(keep.size))
            kept_in = keep
        elif isinstance(layer, Flatten):
            c, *spatial = shape
            per = int(np.prod(spatial)) if spatial else 1
            kept_in = (kept_in[:, None] * per + np.arange(per)[None, :]).ravel()
        elif not isinstance(layer, (ReLU, MaxPool2d, Dropout)):
            raise ValueError(f"thin_model: do not know how {type(layer).__name__} layer {ln!r} "
                             f"maps channels")
        shape = layer.output_shape(shape)
        new_layers.append(ls)
    spec["layers"] = new_layers
    thin = Sequential.from_spec(spec)
    for full, value in new_params.items():
        thin.set_param(full, value)
    thin.masks = new_masks
    return thin, kept_out
