"""Low-rank assignment: truncating the SVD of a weight at a given rank or kept energy.

References: :func:`tinyprune.lowrank.svd.energy_rank`,
:func:`tinyprune.lowrank.svd.low_rank_approximation`.
"""

from __future__ import annotations

import numpy as np

from ..lowrank.svd import energy_rank, low_rank_approximation, singular_values
from .cases import Assignment, Case, CaseGroup, Mistake, check_array, register, seeded
from .checks_quantize import _is_int, _scalar


def svd_truncate_reference(w, rank, energy):
    """``(r, W_r)``: ``r = rank``, or (``rank`` None) the smallest r with
    ``sum_{i<=r} s_i^2 / sum_i s_i^2 >= energy``; ``W_r = U_r S_r V_r^T`` (the r LARGEST singular
    values), computed in float64, returned in ``w``'s dtype."""
    r = int(rank) if rank is not None else energy_rank(singular_values(w), energy)
    return r, low_rank_approximation(w, r)


def _svd(w):
    return np.linalg.svd(w.astype(np.float64), full_matrices=False)  # (m, k), (k,), (k, n)


def _svd_variant(order="largest", power=2, shift=0, shift_mode="energy", shift_reported=True,
                 truncate=True):
    """The truncation with one step done wrong (each keyword names the step); ``shift`` changes
    the rank by one in ``shift_mode`` only ("energy": the rank found, "rank": the slice of a
    given rank, reported as given unless ``shift_reported``); the other mode raises."""
    def variant(w, rank, energy):
        u, s, vt = _svd(w)
        if rank is None:
            curve = np.cumsum(s ** power) / np.sum(s ** power)
            r = int(np.searchsorted(curve, energy, side="left")) + 1
        else:
            r = int(rank)
        mode = "energy" if rank is None else "rank"
        if shift and mode != shift_mode:
            raise ValueError("this variant changes the other mode only")
        used = r + shift
        if not 1 <= used <= s.size:
            raise ValueError("no such rank")
        keep = slice(0, used) if order == "largest" else slice(s.size - used, s.size)
        if not truncate:
            keep = slice(0, s.size)
        w_r = ((u[:, keep] * s[keep]) @ vt[keep]).astype(w.dtype)
        return (used if shift_reported else r), w_r
    return variant


def _svd_compare(expected, got):
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"the result: expected a tuple (rank, w_r), got {type(got).__name__}" + \
            (f" of {len(got)} values" if isinstance(got, tuple | list) else "")
    r, w_r = _scalar(got[0]), got[1]
    if not _is_int(r):
        return f"rank: expected an int, got {type(r).__name__} {r!r}"
    if int(r) != expected[0]:
        return f"rank: expected {expected[0]}, got {int(r)}"
    return check_array(w_r, expected[1], "w_r")


def _matrix(rng, m, n, s, dtype):
    """``U diag(s) V^T`` with random orthonormal U (m, k), V (n, k)."""
    k = len(s)
    u, _ = np.linalg.qr(rng.standard_normal((m, k)))
    v, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return ((u * np.asarray(s, dtype=np.float64)) @ v.T).astype(dtype)


def _svd_cases_fixed():
    rng = seeded(120)
    w = _matrix(rng, 4, 6, [4.0, 2.0, 1.0, 0.5], np.float64)
    w32 = _matrix(rng, 5, 3, [3.0, 1.5, 0.25], np.float32)
    return [Case("rank 2 of a 4x6 matrix", (w, 2, None), "singular values 4, 2, 1, 0.5"),
            Case("rank 1", (w32, 1, None)),
            Case("full rank", (w32, 3, None), "W_r = W"),
            Case("energy 0.9", (w, None, 0.9),
                 "energies 16/21.25 = 0.753, 20/21.25 = 0.941: r = 2 (with s: 6/7.5 = 0.8, r = 3)"),
            Case("energy 0.99", (w, None, 0.99), "21/21.25 = 0.988, so r = 4"),
            Case("energy 0.7", (w32, None, 0.7), "9 / 11.3125 = 0.796: r = 1")]


def _svd_cases_generated():
    cases = []
    for i in range(10):
        rng = seeded(12000 + i)
        m, n = (int(v) for v in rng.integers(2, 9, size=2))
        k = min(m, n)
        while True:  # well separated singular values: W_r is well defined
            s = np.sort(rng.uniform(0.1, 4.0, size=k))[::-1]
            if k == 1 or np.min(-np.diff(s)) > 0.05:
                break
        dtype = np.float32 if i % 2 == 0 else np.float64
        w = _matrix(rng, m, n, s, dtype)
        if i % 2 == 0:
            cases.append(Case(f"generated #{i}", (w, int(rng.integers(1, k + 1)), None)))
            continue
        curve = np.cumsum(s ** 2) / np.sum(s ** 2)
        while True:  # an energy not within rounding of a point of the curve
            e = float(np.round(rng.uniform(0.5, 0.99), 3))
            if np.min(np.abs(curve - e)) > 1e-6:
                break
        cases.append(Case(f"generated #{i}", (w, None, e)))
    return cases


register(Assignment(
    name="svd_truncate",
    function="svd_truncate",
    arg_names=("w", "rank", "energy"),
    reference=svd_truncate_reference,
    description="svd_truncate(w, rank, energy) -> (r, w_r): exactly one of rank/energy is None; "
                "r = rank, or the smallest r with sum_{i<=r} s_i^2 / sum s_i^2 >= energy; "
                "w_r = U_r diag(s_r) V_r^T with the r largest singular values, computed in "
                "float64 (np.linalg.svd), returned in w's dtype.",
    groups=(CaseGroup("worked examples", 5.0, _svd_cases_fixed),
            CaseGroup("generated", 5.0, _svd_cases_generated)),
    compare=_svd_compare,
    mistakes=(
        Mistake("keeps_smallest", "keeps the r SMALLEST singular values; numpy.linalg.svd "
                "returns them largest first, keep s[:r]", _svd_variant(order="smallest")),
        Mistake("energy_sigma", "measures the energy with s_i instead of s_i^2 (the squared "
                "Frobenius norm is sum s_i^2)", _svd_variant(power=1)),
        Mistake("off_by_one_rank", "off-by-one rank (r + 1 or r - 1 singular values): the "
                "smallest r with energy >= e keeps s[:r]",
                tuple(_svd_variant(shift=d, shift_mode=mode, shift_reported=rep) for d in (1, -1)
                      for mode, rep in (("energy", True), ("rank", True), ("rank", False)))),
        Mistake("no_truncation", "returns U S V^T with all singular values: truncate to the "
                "first r columns of U, entries of s and rows of V^T",
                _svd_variant(truncate=False)),
    ),
))
