"""Pattern-based N:M sparsity: in every group of ``m`` consecutive weights, ``n_pruned`` are pruned.

The lecture says "N:M sparsity means that in each contiguous M elements, N of them is pruned";
NVIDIA's "2:4" (Mishra et al., "Accelerating Sparse Deep Neural Networks", 2021; Ampere sparse
tensor cores) counts the *kept* weights instead. To make neither reading possible by accident the
arguments here are named ``n_pruned`` and ``m``: ``n_pruned=2, m=4`` prunes 2 of every 4, i.e.
keeps 2 of every 4 -- 2:4 is 50% sparsity under either reading, but 1:4 is not (``n_pruned=1,
m=4`` keeps 3 of 4: 25% sparsity).

Groups
    ``m`` consecutive weights along the **input** dimension: for a Linear weight ``(out, in)`` the
    row ``W[o, :]`` is cut into ``W[o, g*m:(g+1)*m]``; for a Conv2d weight
    ``(C_out, C_in, KH, KW)`` the filter is flattened to its ``C_in*KH*KW`` row first (row-major:
    ``i``, then ``kh``, then ``kw``: PyTorch's memory order of the filter, so a group is a run of
    consecutive weights in ``conv.weight``). In general the groups are those of
    ``w.reshape(out, -1)``.

Selection
    Within each group the ``n_pruned`` lowest-scoring weights are pruned (scores default to
    ``|w|``); among equal scores the lower index in the group is pruned first.

Rows whose length ``L`` is not a multiple of ``m``
    Raise ``ValueError`` unless ``allow_partial=True``. Then each row is treated as zero-padded to
    a multiple of ``m`` and **the padding counts as pruned first**: the trailing partial group of
    ``r = L mod m`` real weights prunes ``max(0, n_pruned - (m - r))`` of them (the lowest-scoring
    ones). This is what a hardware format that pads rows to whole groups stores, and it is what
    :class:`tinyprune.prune.nm_storage.NMSparse` does. Example, 2:4 on a row of 9 weights: two full
    groups prune 2 each, the last weight (``r = 1``) is kept.
"""

from __future__ import annotations

import numpy as np

from ..nn.validation import check_int
from .criteria import check_weight


def check_nm(n_pruned, m) -> tuple[int, int]:
    """Validate an N:M pattern: ints with ``m >= 1`` and ``0 <= n_pruned < m``."""
    n_pruned = check_int(n_pruned, "n_pruned", minimum=0)
    m = check_int(m, "m", minimum=1)
    if n_pruned >= m:
        raise ValueError(f"n_pruned: expected n_pruned < m (at least one weight kept per group), "
                         f"got n_pruned={n_pruned}, m={m}")
    return int(n_pruned), int(m)


def nm_group_view(x, m, *, fill=None) -> np.ndarray:
    """``x`` (a weight-shaped array) as N:M groups of shape ``(out, n_groups, m)``.

    Parameters
    ----------
    x : ndarray, shape ``(out, ...)``
        Flattened to rows ``x.reshape(out, L)``.
    m : int
        Group size.
    fill : scalar, optional
        Pad value for the trailing partial group when ``L`` is not a multiple of ``m``. Without it
        such a row raises ValueError. (To count zeros the way the N:M rule does, pad flags of
        "pruned" with True: the padding counts as pruned.)

    Returns
    -------
    ndarray, shape ``(out, ceil(L / m), m)``
        A view of ``x`` when ``L % m == 0`` (and ``x`` is contiguous), else a padded copy.
    """
    x = np.asarray(x)
    m = check_int(m, "m", minimum=1)
    if x.ndim < 1:
        raise ValueError(f"x: expected an array of at least 1 dimension, got shape {x.shape}")
    rows = x.reshape(x.shape[0], -1)  # (out, L)
    length = rows.shape[1]
    r = length % m
    if r == 0:
        return rows.reshape(rows.shape[0], length // m, m)
    if fill is None:
        raise ValueError(f"x: row length {length} (= product of the dims after the first of "
                         f"shape {x.shape}) is not a multiple of m={m}; pass fill= to pad the "
                         f"trailing group")
    padded = np.full((rows.shape[0], length + m - r), fill, dtype=rows.dtype)
    padded[:, :length] = rows
    return padded.reshape(rows.shape[0], -1, m)


def _check_scores(w, scores):
    if scores is None:
        return np.abs(w)
    scores = np.asarray(scores)
    if scores.shape != w.shape:
        raise ValueError(f"scores: expected the shape of w {w.shape}, got {scores.shape}")
    if scores.dtype == np.bool_ or not np.issubdtype(scores.dtype, np.number) \
            or np.issubdtype(scores.dtype, np.complexfloating):
        raise TypeError(f"scores: expected a real numeric array, got dtype {scores.dtype}")
    if np.issubdtype(scores.dtype, np.floating) and np.isnan(scores).any():
        raise ValueError("scores: expected no NaN, found NaN")
    return scores


def _check_rows(w, m, allow_partial):
    if w.ndim not in (2, 4):
        raise ValueError(f"w: expected a Linear (out, in) or Conv2d (C_out, C_in, KH, KW) "
                         f"weight, got shape {w.shape}")
    length = int(np.prod(w.shape[1:]))
    if length % m and not allow_partial:
        raise ValueError(f"w: row length {length} (in*KH*KW of shape {w.shape}) is not a "
                         f"multiple of m={m}; pass allow_partial=True to treat each row as "
                         f"zero-padded (the padding counts as pruned)")
    return length


def _prune_lowest_per_group(s3, n) -> np.ndarray:
    """Keep-mask of shape ``s3.shape`` (``(out, groups, size)``): in each group the ``n``
    lowest scores are pruned, lower index first on ties (the order of a stable sort)."""
    if n == 0:
        return np.ones(s3.shape, dtype=bool)
    if s3.shape[-1] <= _RANK_MAX_M:
        return _rank_in_group(s3) >= n
    keep = np.ones(s3.shape, dtype=bool)
    order = np.argsort(s3, axis=-1, kind="stable")[..., :n]  # (out, groups, n)
    np.put_along_axis(keep, order, False, axis=-1)
    return keep


#: Groups up to this size are ranked by pairwise comparisons (``m - 1`` passes over the scores),
#: larger ones by a stable argsort along the group axis (measured: 8x faster for 2:4 on fc1).
_RANK_MAX_M = 8


def _rank_in_group(s3) -> np.ndarray:
    r"""Position of each score in a stable ascending sort of its group, shape ``s3.shape``.

    .. math:: rank_i = \#\{j < i : s_j \le s_i\} + \#\{j > i : s_j < s_i\}

    (a loop over the ``m * (m - 1)`` pairs of positions in a group, each pass vectorised over
    all groups).
    """
    size = s3.shape[-1]
    cols = [np.ascontiguousarray(s3[..., j]) for j in range(size)]  # (out, groups) each
    rank = np.zeros(s3.shape, dtype=np.uint8 if size <= 255 else np.int64)  # (out, groups, size)
    hit = np.empty(s3.shape[:-1], dtype=bool)  # (out, groups)
    for i in range(size):
        r = rank[..., i]
        for j in range(size):
            if j != i:
                (np.less_equal if j < i else np.less)(cols[j], cols[i], out=hit)
                r += hit
    return rank


def nm_mask(w, n_pruned, m, scores=None, *, allow_partial=False) -> np.ndarray:
    r"""N:M mask: in every ``m`` consecutive weights along the input dimension, prune ``n_pruned``.

    For each group :math:`G` of ``m`` weights, :math:`M_i = 0` for the ``n_pruned`` indices
    :math:`i \in G` with the smallest scores (default :math:`|w_i|`), :math:`M_i = 1` otherwise.
    ``n_pruned=2, m=4`` is the 2:4 pattern (50% sparsity, the kept and the pruned count are both
    2); see the module docstring for the grouping, ties and the partial-group rule.

    Parameters
    ----------
    w : ndarray, shape ``(out, in)`` or ``(C_out, C_in, KH, KW)``, float32/float64
    n_pruned : int, ``0 <= n_pruned < m``
        Weights pruned in each group.
    m : int, ``m >= 1``
        Group size.
    scores : ndarray, shape of ``w``, optional
        Importance (higher = keep); ``-inf`` is allowed (pruned first). Default ``|w|``.
    allow_partial : bool
        Accept rows whose length is not a multiple of ``m`` (module docstring).

    Returns
    -------
    ndarray of bool, shape of ``w`` -- True = kept.
    """
    w = check_weight(w)
    n_pruned, m = check_nm(n_pruned, m)
    scores = _check_scores(w, scores)
    length = _check_rows(w, m, allow_partial)
    rows = scores.reshape(w.shape[0], length)  # (out, L)
    full = length - length % m
    keep = np.empty(rows.shape, dtype=bool)  # (out, L)
    s3 = rows[:, :full].reshape(w.shape[0], -1, m)  # (out, L // m, m)
    keep[:, :full] = _prune_lowest_per_group(s3, n_pruned).reshape(w.shape[0], full)
    if full < length:  # trailing partial group of r weights; the m - r pads are pruned first
        r = length - full
        tail = rows[:, full:].reshape(w.shape[0], 1, r)  # (out, 1, r)
        n_tail = max(0, n_pruned - (m - r))
        keep[:, full:] = _prune_lowest_per_group(tail, n_tail).reshape(w.shape[0], r)
    return keep.reshape(w.shape)


def nm_mask_naive(w, n_pruned, m, scores=None, *, allow_partial=False) -> np.ndarray:
    """Loop twin of :func:`nm_mask` (same groups, ties and partial-group rule; for tests)."""
    w = check_weight(w)
    n_pruned, m = check_nm(n_pruned, m)
    scores = _check_scores(w, scores)
    length = _check_rows(w, m, allow_partial)
    rows = scores.reshape(w.shape[0], length)
    keep = np.ones(rows.shape, dtype=bool)
    for o in range(rows.shape[0]):
        for start in range(0, length, m):
            idx = list(range(start, min(start + m, length)))
            n_here = n_pruned - (m - len(idx))  # the padding is pruned first
            by_score = sorted(idx, key=lambda j, o=o: (rows[o, j], j))
            for j in by_score[:max(0, n_here)]:
                keep[o, j] = False
    return keep.reshape(w.shape)


def is_nm_compliant(w, n_pruned, m, *, allow_partial=False) -> bool:
    """True if every N:M group of ``w`` has at least ``n_pruned`` zeros (padding counts as zero)."""
    w = check_weight(w)
    n_pruned, m = check_nm(n_pruned, m)
    _check_rows(w, m, allow_partial)
    zeros = nm_group_view(w == 0, m, fill=True)  # (out, groups, m)
    return bool(np.all(zeros.sum(axis=-1) >= n_pruned))
