"""From scores to masks: prune the lowest-scoring units, with explicit semantics.

A *unit* is one structural set (one weight, one kernel row, one kernel, one filter, one input
channel: :mod:`tinyprune.prune.granularity`); masks are boolean, **True = kept**. The rules below
are shared by :func:`select_mask`, :func:`prune_weight` and :func:`global_masks`.

``amount``
    A float fraction in [0, 1] or a non-negative int count of units (``bool`` is rejected with
    TypeError). A float is turned into a count with Python's ``round(amount * n)`` (banker's
    rounding, ``round(2.5) == 2``), exactly like ``torch.nn.utils.prune``
    (``_compute_nparams_toprune``).

``relative_to="remaining"`` (default; ``torch.nn.utils.prune``'s behaviour)
    ``n`` is the number of units still unpruned: prune ``round(amount * n_remaining)`` (or the
    count) *more* units. Pruning 0.5 twice leaves 25%. An int count above ``n_remaining`` raises.

``relative_to="total"`` (the TF model-optimization / Distiller view: a target sparsity)
    ``n`` is the number of all units: after the call ``round(amount * n_total)`` (or the count)
    units are pruned in total; already-pruned units count toward the target, so pruning again with
    the same target changes nothing (and a target below the current sparsity prunes nothing -- a
    pruned unit is never revived). An int count above ``n_total`` raises.

Ranking and ties
    Only units still unpruned are ranked; the ``k`` lowest-scoring are pruned. Among equal scores
    the unit with the **lower flat index** (row-major index into the per-set array; for
    :func:`global_masks`, into the concatenation of the layers in dict order) is pruned first.
    Implemented without a full sort: ``np.partition`` finds the k-th smallest score ``t``; every
    score ``< t`` is pruned and the first (lowest-index) units with score ``== t`` fill the rest.

Monotone masks
    ``new_mask = current_mask & chosen``: previously pruned units are never revived.

Structured granularities and a current mask
    A set counts as *pruned* only when **all** its weights are pruned in ``current_mask``. A
    partially pruned set is still a remaining unit: it is ranked with the others, scored on the
    *effective* weight ``w * current_mask`` (its pruned weights count as 0), and if it is kept its
    already-pruned weights stay pruned. This is what ``torch.nn.utils.prune``'s ``PruningContainer``
    does for ``ln_structured`` (it skips the channels whose mask sums to 0 and scores the masked
    weight). Every criterion in :func:`prune_weight` sees the effective weight.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..nn.validation import as_generator, check_int
from .criteria import (
    CRITERIA,
    check_weight,
    cluster_redundancy_scores,
    geometric_median_scores,
    lp_norm,
)
from .granularity import check_granularity, expand_to_weight, group_reduce, set_shape
from .nm import check_nm, nm_mask

RELATIVE_TO = ("remaining", "total")


# --------------------------------------------------------------------------- amounts
def check_amount(amount):
    """Return ``amount`` as a Python int (count) or float (fraction in [0, 1]), else raise."""
    if isinstance(amount, (bool, np.bool_)):
        raise TypeError(f"amount: expected a float fraction in [0, 1] or an int count, "
                        f"got a bool ({amount!r})")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(f"amount: expected a non-negative int count, got {amount}")
        return int(amount)
    if isinstance(amount, numbers.Real):
        amount = float(amount)
        if not 0.0 <= amount <= 1.0:  # also rejects NaN
            raise ValueError(f"amount: expected a float fraction in [0, 1], got {amount}")
        return amount
    raise TypeError(f"amount: expected a float fraction in [0, 1] or an int count, "
                    f"got {type(amount).__name__}")


def check_relative_to(relative_to) -> str:
    """Return ``relative_to`` if it is "remaining" or "total", else raise ValueError."""
    if relative_to not in RELATIVE_TO:
        raise ValueError(f"relative_to: expected one of {RELATIVE_TO}, got {relative_to!r}")
    return relative_to


def n_to_prune(amount, n_total, n_remaining, relative_to="remaining") -> int:
    """Number of *additional* units to prune (see the module docstring).

    Parameters
    ----------
    amount : float in [0, 1] or int >= 0
    n_total : int
        All units.
    n_remaining : int
        Units not yet pruned.
    relative_to : {"remaining", "total"}

    Returns
    -------
    int, ``0 <= k <= n_remaining``
        ``round(amount * n_remaining)`` (or the count) for "remaining";
        ``max(0, round(amount * n_total) - (n_total - n_remaining))`` (or with the count as
        target) for "total".
    """
    amount = check_amount(amount)
    relative_to = check_relative_to(relative_to)
    n_total = check_int(n_total, "n_total", minimum=0)
    n_remaining = check_int(n_remaining, "n_remaining (at most n_total)", minimum=0,
                            maximum=n_total)
    base = n_remaining if relative_to == "remaining" else n_total
    if isinstance(amount, int):
        if amount > base:
            raise ValueError(f"amount: an int count must be <= the number of {relative_to} units "
                             f"({base}), got {amount}")
        target = amount
    else:
        target = round(amount * base)
    if relative_to == "remaining":
        return target
    return max(0, target - (n_total - n_remaining))


# --------------------------------------------------------------------------- core
def lowest_k(values, k) -> np.ndarray:
    """Indices of the ``k`` smallest entries of the 1-D ``values``, lower index first on ties.

    ``np.partition`` gives the k-th smallest value ``t`` in O(n); all entries ``< t`` are taken,
    then the lowest-index entries ``== t`` up to ``k``. The indices are returned unsorted.
    """
    n = values.shape[0]
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k >= n:
        return np.arange(n)
    t = np.partition(values, k - 1)[k - 1]
    below = np.flatnonzero(values < t)
    ties = np.flatnonzero(values == t)[: k - below.size]
    return np.concatenate([below, ties])


def _prune_k(scores, k, alive) -> np.ndarray:
    """Keep-mask (shape of ``scores``): ``alive`` minus its ``k`` lowest-scoring units."""
    flat = scores.reshape(-1)
    keep = np.ones(flat.shape, dtype=bool) if alive is None else alive.reshape(-1).copy()
    if k > 0:
        if alive is None or keep.all():
            keep[lowest_k(flat, k)] = False
        else:
            idx = np.flatnonzero(keep)  # increasing, so ties still go to the lower flat index
            keep[idx[lowest_k(flat[idx], k)]] = False
    return keep.reshape(scores.shape)


def _check_scores(scores, name="scores") -> np.ndarray:
    if not isinstance(scores, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(scores).__name__}")
    if scores.dtype == np.bool_ or not (np.issubdtype(scores.dtype, np.integer)
                                        or np.issubdtype(scores.dtype, np.floating)):
        raise TypeError(f"{name}: expected a real (int or float) array, got dtype {scores.dtype}")
    if np.issubdtype(scores.dtype, np.floating) and np.isnan(scores).any():
        raise ValueError(f"{name}: expected no NaN, found NaN")
    return scores


def check_mask(mask, shape, name="current_mask") -> np.ndarray:
    """Return ``mask`` after checking it is a boolean ndarray of ``shape``."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        got = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"{name}: expected a boolean numpy.ndarray (True = kept), got {got}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {mask.shape}")
    return mask


def select_mask(scores, amount, *, relative_to="remaining", current_mask=None) -> np.ndarray:
    r"""Keep-mask that prunes the lowest-scoring units (module docstring for the exact rules).

    .. math:: M = M_{\mathrm{current}} \wedge
              \neg\, \mathrm{lowest}_k\{s_u : M_{\mathrm{current}, u}\}

    Parameters
    ----------
    scores : ndarray, any shape, real dtype
        One score per unit (higher = more important). NaN is rejected; ``+-inf`` is allowed.
    amount : float in [0, 1] or int >= 0
        Fraction or count of units to prune, read according to ``relative_to``.
    relative_to : {"remaining", "total"}
    current_mask : ndarray of bool, shape of ``scores``, optional
        Units already pruned (False) are excluded from the ranking and stay pruned.

    Returns
    -------
    ndarray of bool, shape of ``scores`` -- True = kept; a new array.
    """
    scores = _check_scores(scores)
    if current_mask is not None:
        check_mask(current_mask, scores.shape)
        n_alive = int(np.count_nonzero(current_mask))
    else:
        n_alive = scores.size
    k = n_to_prune(amount, scores.size, n_alive, relative_to)
    return _prune_k(scores, k, current_mask)


def select_mask_naive(scores, amount, *, relative_to="remaining", current_mask=None):
    """Loop twin of :func:`select_mask`: sort the remaining units by (score, flat index)."""
    scores = _check_scores(scores)
    flat = scores.reshape(-1).tolist()
    keep = [True] * len(flat) if current_mask is None else current_mask.reshape(-1).tolist()
    alive = [i for i in range(len(flat)) if keep[i]]
    k = n_to_prune(amount, len(flat), len(alive), relative_to)
    for i in sorted(alive, key=lambda i: (flat[i], i))[:k]:
        keep[i] = False
    return np.array(keep, dtype=bool).reshape(scores.shape)


# --------------------------------------------------------------------------- weights
def _check_criterion(criterion, p):
    if callable(criterion):
        if p is not None:
            raise ValueError("p: only used with criterion='lp', got a callable criterion")
        return criterion
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {CRITERIA} or a callable "
                         f"f(w, granularity) -> scores, got {criterion!r}")
    if criterion == "lp" and p is None:
        raise ValueError("p: criterion='lp' needs the norm order p (> 0 or np.inf), got None")
    if criterion != "lp" and p is not None:
        raise ValueError(f"p: only used with criterion='lp', got p={p!r} with "
                         f"criterion={criterion!r}")
    return criterion


_P = {"magnitude": 1, "l1": 1, "l2": 2, "linf": np.inf}


def _set_scores(w_eff, criterion, granularity, *, p, rng, vector_size, alive, k):
    """Scores per set of the effective weight; ``alive`` (per set) and ``k`` are used by the
    filter-similarity criteria, which compare only the remaining filters."""
    shape = set_shape(w_eff.shape, granularity, vector_size=vector_size)
    if callable(criterion):
        scores = criterion(w_eff, granularity)
        if not isinstance(scores, np.ndarray) or scores.shape != shape:
            got = scores.shape if isinstance(scores, np.ndarray) else type(scores).__name__
            raise ValueError(f"criterion: a callable must return an ndarray of the per-set shape "
                             f"{shape} for granularity {granularity!r}, got {got}")
        return _check_scores(scores, "criterion(w, granularity)")
    if criterion == "random":
        return as_generator(rng).random(shape)
    if criterion in ("geometric_median", "cluster"):
        if granularity != "channel":
            raise ValueError(f"granularity: criterion {criterion!r} scores filters; expected "
                             f"'channel', got {granularity!r}")
        live = np.ones(shape, dtype=bool) if alive is None else alive
        scores = np.full(shape, -np.inf)
        if criterion == "geometric_median":
            if live.any():
                scores[live] = geometric_median_scores(w_eff[live])
        elif live.sum() - k >= 1:  # cluster: one cluster per filter to keep
            scores[live] = cluster_redundancy_scores(w_eff[live], int(live.sum() - k),
                                                     as_generator(rng))
        return scores
    order = p if criterion == "lp" else _P[criterion]
    return lp_norm(w_eff, order, granularity, vector_size=vector_size)


def _nm_pattern(amount, n_pruned, m):
    m = 4 if m is None else m
    if n_pruned is None:
        if amount is None:
            raise ValueError("n_pruned: granularity 'nm' needs n_pruned (weights pruned per "
                             "group of m) or an amount, got neither")
        amount = check_amount(amount)
        n_pruned = amount if isinstance(amount, int) else round(amount * m)
    elif amount is not None:
        a = check_amount(amount)
        implied = a if isinstance(a, int) else round(a * m)
        if implied != n_pruned:
            raise ValueError(f"amount: with granularity 'nm' amount={amount!r} means "
                             f"n_pruned={implied} per group of m={m}, which contradicts "
                             f"n_pruned={n_pruned}; pass one of them (or amount=None)")
    return check_nm(n_pruned, m)


def _prune_nm(w, w_eff, amount, criterion, current_mask, p, rng, n_pruned, m, allow_partial):
    n_pruned, m = _nm_pattern(amount, n_pruned, m)
    if criterion in ("geometric_median", "cluster"):
        raise ValueError(f"criterion: {criterion!r} scores filters and cannot make an N:M "
                         f"pattern; use an elementwise criterion")
    scores = _set_scores(w_eff, criterion, "nm", p=p, rng=rng, vector_size=None, alive=None, k=0)
    if current_mask is not None:  # already-pruned weights fill their group's quota first
        scores = np.where(current_mask, scores, -np.inf)
    keep = nm_mask(w, n_pruned, m, scores=scores, allow_partial=allow_partial)
    return keep if current_mask is None else keep & current_mask


def prune_weight(w, amount, *, criterion="l1", granularity="element", current_mask=None,
                 relative_to="remaining", p=None, rng=None, vector_size=None,
                 n_pruned=None, m=None, allow_partial=False) -> np.ndarray:
    r"""Keep-mask for one weight: score its structural sets, prune the lowest-scoring ones.

    1. Effective weight :math:`\tilde W = W \odot M_{\mathrm{current}}`.
    2. Per-set scores :math:`s_S = \mathrm{criterion}(\tilde W^{(S)})`, e.g. L1
       :math:`\sum_{i \in S} |\tilde w_i|`.
    3. A set is remaining if any of its weights is kept; :func:`select_mask` prunes the
       ``round(amount * n)`` lowest-scoring remaining sets (rules in the module docstring).
    4. :math:`M = \mathrm{expand}(M_{\mathrm{sets}}) \wedge M_{\mathrm{current}}`.

    Parameters
    ----------
    w : ndarray, float32/float64
        Linear ``(out, in)`` or Conv2d ``(C_out, C_in, KH, KW)`` weight (any shape for "element").
        Never modified.
    amount : float in [0, 1], int >= 0, or None (only for "nm" with ``n_pruned``)
        Fraction or count of units (sets) to prune.
    criterion : str or callable
        One of :data:`~tinyprune.prune.criteria.CRITERIA`: "magnitude" (``|w|``; for a structured
        granularity the same as "l1", the slide's row-wise magnitude), "l1", "l2", "linf", "lp"
        (with ``p``), "random" (with ``rng``), "geometric_median" (FPGM, "channel" only) or
        "cluster" ("channel" only, with ``rng``: k-means with one cluster per filter to keep, so
        exactly the non-representatives are pruned). A callable ``f(w_eff, granularity)`` must
        return scores of the per-set shape.
    granularity : str
        One of :data:`~tinyprune.prune.granularity.GRANULARITIES`.
    current_mask : ndarray of bool, shape of ``w``, optional
        Previous mask (True = kept); the result is a subset of it.
    relative_to : {"remaining", "total"}
    p : float, optional
        Norm order for criterion "lp".
    rng : numpy.random.Generator or int seed, optional
        For "random" and "cluster".
    vector_size : int, optional
        Run length of a Linear "vector" set (default 4); for Conv2d None or KW.
    n_pruned, m : int, optional
        N:M pattern for granularity "nm" (``m`` defaults to 4). If ``n_pruned`` is None it is
        ``round(amount * m)`` for a fraction, or ``amount`` for an int (a count per group).
        ``relative_to`` has no effect on "nm": the pattern is a per-group target and weights
        already pruned in ``current_mask`` count toward their group's ``n_pruned`` (pruned first).
    allow_partial : bool
        "nm" only: accept rows whose length is not a multiple of ``m``
        (:mod:`tinyprune.prune.nm`).

    Returns
    -------
    ndarray of bool, shape of ``w`` -- True = kept; constant over each structural set (within
    the weights still kept by ``current_mask``).
    """
    w = check_weight(w)
    granularity = check_granularity(granularity)
    criterion = _check_criterion(criterion, p)
    relative_to = check_relative_to(relative_to)
    if current_mask is not None:
        check_mask(current_mask, w.shape)
    w_eff = w if current_mask is None else np.where(current_mask, w, w.dtype.type(0))
    if granularity == "nm":
        return _prune_nm(w, w_eff, amount, criterion, current_mask, p, rng, n_pruned, m,
                         allow_partial)
    if n_pruned is not None or m is not None:
        raise ValueError(f"n_pruned/m: only used with granularity 'nm', got "
                         f"granularity={granularity!r}")
    if amount is None:
        raise TypeError("amount: expected a float fraction in [0, 1] or an int count, got None")
    alive = None
    if current_mask is not None:
        alive = group_reduce(current_mask, granularity, reduce="any", vector_size=vector_size)
    n_total = int(np.prod(set_shape(w.shape, granularity, vector_size=vector_size)))
    n_alive = n_total if alive is None else int(np.count_nonzero(alive))
    k = n_to_prune(amount, n_total, n_alive, relative_to)
    scores = _set_scores(w_eff, criterion, granularity, p=p, rng=rng, vector_size=vector_size,
                         alive=alive, k=k)
    keep_sets = _prune_k(scores, k, alive)
    keep = expand_to_weight(keep_sets, granularity, w.shape, vector_size=vector_size)
    return keep if current_mask is None else np.logical_and(keep, current_mask, out=keep)


def global_masks(weights, amount, *, criterion="l1", granularity="element", current_masks=None,
                 relative_to="remaining", p=None, rng=None, vector_size=None) -> dict:
    """Keep-masks for several layers ranked together (global pruning).

    The per-set scores of every layer in ``weights`` are concatenated (in dict order) and
    :func:`select_mask` prunes the lowest ``round(amount * n)`` of all of them, so layers end up
    with different sparsities. The caller chooses which layers take part (typically leaving the
    first conv and the classifier out). With granularity "element" and criterion "l1" (or
    "magnitude") the ranking is on :math:`|w|` of the remaining weights, exactly like
    ``torch.nn.utils.prune.global_unstructured(..., pruning_method=L1Unstructured)``. For
    structured granularities note that norms of sets of different sizes (e.g. fc1 rows vs conv2
    filters) are compared as they are.

    Parameters
    ----------
    weights : dict[str, ndarray]
        Parameter name -> weight (never modified).
    amount : float in [0, 1] or int >= 0
        Fraction or count of all units (of all layers together).
    criterion : str or callable
        As in :func:`prune_weight`, except "geometric_median" and "cluster" (per-layer scores,
        not comparable across layers).
    granularity : str
        As in :func:`prune_weight`, except "nm" (a per-group pattern: use :func:`prune_weight`).
    current_masks : dict[str, ndarray of bool], optional
        Previous masks for some or all of the names.
    relative_to, p, rng, vector_size
        As in :func:`prune_weight`.

    Returns
    -------
    dict[str, ndarray of bool] -- one keep-mask per name, shaped like its weight.
    """
    if not isinstance(weights, dict) or not weights:
        raise TypeError(f"weights: expected a non-empty dict name -> ndarray, got "
                        f"{type(weights).__name__}" + (" (empty)" if weights == {} else ""))
    granularity = check_granularity(granularity)
    if granularity == "nm":
        raise ValueError("granularity: 'nm' is a per-group pattern with nothing to rank "
                         "globally; use prune_weight(..., granularity='nm') per layer")
    criterion = _check_criterion(criterion, p)
    if criterion in ("geometric_median", "cluster"):
        raise ValueError(f"criterion: {criterion!r} scores are relative to one layer and not "
                         f"comparable across layers; use prune_weight per layer")
    relative_to = check_relative_to(relative_to)
    current_masks = {} if current_masks is None else current_masks
    if not isinstance(current_masks, dict):
        raise TypeError(f"current_masks: expected a dict or None, got "
                        f"{type(current_masks).__name__}")
    extra = set(current_masks) - set(weights)
    if extra:
        raise ValueError(f"current_masks: names {sorted(extra)} are not in weights "
                         f"{list(weights)}")
    if rng is not None:
        rng = as_generator(rng)
    scores, alive, shapes, w_effs = [], [], {}, {}
    for name, w in weights.items():
        w = check_weight(w, f"weights[{name!r}]")
        cur = current_masks.get(name)
        if cur is not None:
            check_mask(cur, w.shape, f"current_masks[{name!r}]")
        w_eff = w if cur is None else np.where(cur, w, w.dtype.type(0))
        s = _set_scores(w_eff, criterion, granularity, p=p, rng=rng, vector_size=vector_size,
                        alive=None, k=0)
        a = np.ones(s.shape, dtype=bool) if cur is None else \
            group_reduce(cur, granularity, reduce="any", vector_size=vector_size)
        scores.append(s.reshape(-1).astype(np.float64, copy=False))
        alive.append(a.reshape(-1))
        shapes[name], w_effs[name] = s.shape, w
    all_scores = np.concatenate(scores)
    all_alive = np.concatenate(alive)
    k = n_to_prune(amount, all_scores.size, int(np.count_nonzero(all_alive)), relative_to)
    keep_all = _prune_k(all_scores, k, all_alive)
    out, start = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        keep_sets = keep_all[start:start + size].reshape(shape)
        start += size
        keep = expand_to_weight(keep_sets, granularity, w_effs[name].shape,
                                vector_size=vector_size)
        cur = current_masks.get(name)
        out[name] = keep if cur is None else np.logical_and(keep, cur, out=keep)
    return out
