"""Prune chosen layers of a model in one call: layer-wise or global, any criterion/granularity.

This is the glue between the pure per-weight functions (:func:`~tinyprune.prune.select.prune_weight`,
:func:`~tinyprune.prune.select.global_masks`) and a :class:`~tinyprune.nn.Sequential`: it reads the
weights and the model's current masks (so iterative pruning is monotone) and returns new masks keyed
by parameter name. Apply them with :func:`tinyprune.prune.masked.set_masks_`.
"""

from __future__ import annotations

import numpy as np

from ..nn.model import Sequential
from .select import global_masks, prune_weight

STRUCTURED_OUTPUT = ("channel",)


def prune_model(model: Sequential, targets, amount=None, *, criterion="l1",
                granularity="element", global_ranking=False, relative_to="remaining",
                n_pruned=None, m=None, p=None, rng=None, vector_size=None,
                prune_bias=True) -> dict[str, np.ndarray]:
    """Masks for the weights named in ``targets`` (True = kept), combined with ``model.masks``.

    Parameters
    ----------
    model : Sequential
        Read only; use :func:`~tinyprune.prune.masked.set_masks_` to apply the result.
    targets : list of str
        Weight names (``"conv1.weight"``) or layer names (``"conv1"``) to prune; everything else
        stays dense (e.g. leave the first conv and the classifier out of a global ranking).
    amount : float in [0, 1] or int
        Fraction (or count) of units to prune in each layer, or of all target layers together with
        ``global_ranking``. Ignored-and-must-be-None for ``granularity="nm"`` when ``n_pruned`` is
        given.
    criterion, granularity, relative_to, p, rng, vector_size
        As in :func:`~tinyprune.prune.select.prune_weight`.
    global_ranking : bool
        Rank the units of all targets together (:func:`~tinyprune.prune.select.global_masks`).
    n_pruned, m : int, optional
        N:M pattern for ``granularity="nm"`` (``n_pruned`` of every ``m`` consecutive weights along
        the input dimension are pruned; 2:4 is 50%). Rows whose length is not a multiple of ``m``
        (a 1x3x3 conv1 filter) are padded: the padding counts as pruned first.
    prune_bias : bool
        With ``granularity="channel"``, also mask the bias of every pruned output channel, so the
        channel outputs exactly zero and can be removed physically
        (:func:`~tinyprune.prune.thinning.thin_model`). Default True.

    Returns
    -------
    dict[str, ndarray of bool]
        One mask per target weight (plus ``"<layer>.bias"`` for channel pruning), each already
        ``&``-combined with the model's current mask for that parameter.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    if isinstance(targets, str):
        targets = [targets]
    params = model.params
    names = []
    for t in targets:
        name = t if t in params else f"{t}.weight"
        if name not in params or not name.endswith(".weight"):
            weights = [k for k in params if k.endswith(".weight")]
            raise ValueError(f"targets: {t!r} is not a weight of the model; weights: {weights}")
        names.append(name)
    if not names:
        raise ValueError("targets: expected at least one weight name, got none")
    current = {k: model.masks[k] for k in names if k in model.masks}
    if granularity == "nm":
        masks = {k: prune_weight(params[k], amount, criterion=criterion, granularity="nm",
                                 current_mask=current.get(k), p=p, rng=rng, n_pruned=n_pruned,
                                 m=m, allow_partial=True) for k in names}
    elif global_ranking:
        masks = global_masks({k: params[k] for k in names}, amount, criterion=criterion,
                             granularity=granularity, current_masks=current,
                             relative_to=relative_to, p=p, rng=rng, vector_size=vector_size)
    else:
        if isinstance(rng, int):
            rng = np.random.default_rng(rng)
        masks = {k: prune_weight(params[k], amount, criterion=criterion,
                                 granularity=granularity, current_mask=current.get(k),
                                 relative_to=relative_to, p=p, rng=rng,
                                 vector_size=vector_size) for k in names}
    if granularity in STRUCTURED_OUTPUT and prune_bias:
        for k in names:
            bias = k[: -len("weight")] + "bias"
            if bias in params:
                alive = masks[k].reshape(masks[k].shape[0], -1).any(axis=1)  # (out,)
                old = model.masks.get(bias)
                masks[bias] = alive if old is None else (alive & old)
    return masks
