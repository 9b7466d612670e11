"""Quantization assignments: affine (scale, zero point), quantize/dequantize, and the two steps of
k-means weight sharing.

References: :func:`tinyprune.quantize.affine.qparams_from_range`,
:func:`tinyprune.quantize.affine.quantize` and :func:`~tinyprune.quantize.affine.dequantize`,
:func:`tinyprune.common.kmeans.assign` and :func:`tinyprune.common.kmeans.update`.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..common.kmeans import assign, update
from ..quantize.affine import dequantize, int_dtype, qparams_from_range, qrange, quantize
from .cases import Assignment, Case, CaseGroup, Mistake, check_array, check_tuple, register, seeded


def _scalar(v):
    """A 0-d array as its scalar (students may return either)."""
    return v[()] if isinstance(v, np.ndarray) and v.ndim == 0 else v


def _is_int(v) -> bool:
    v = _scalar(v)
    return isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_)


def _is_real(v) -> bool:
    v = _scalar(v)
    return isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)


# ------------------------------------------------------------------------------ affine qparams
def affine_qparams_reference(min_val, max_val, bits, signed, symmetric):
    """``(scale, zero_point)`` (float, int) for the range ``[min_val, max_val]`` widened to
    contain 0, as :func:`~tinyprune.quantize.affine.qparams_from_range` (torch's observers)."""
    s, z = qparams_from_range(min_val, max_val, bits=bits, signed=signed, symmetric=symmetric)
    return float(s), int(z)


def _round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _round_half_up(x):
    return np.floor(x + 0.5)


def _qparams_variant(rnd=np.rint, widen=True, levels=None, integer=True, clamp=True,
                     sym_denominator=None, unsigned_zero=None):
    """The observer's formula with one step done wrong (float64; each keyword names the step)."""
    def variant(min_val, max_val, bits, signed, symmetric):
        qmin, qmax = qrange(bits, signed)
        mn = min(float(min_val), 0.0) if widen else float(min_val)
        mx = max(float(max_val), 0.0) if widen else float(max_val)
        n_levels = (qmax - qmin) if levels is None else levels(bits)
        eps = float(np.finfo(np.float32).eps)
        if symmetric:
            den = n_levels / 2 if sym_denominator is None else sym_denominator(bits)
            scale = max(max(-mn, mx) / den, eps)
            z = 0 if signed else (2 ** (bits - 1) if unsigned_zero is None else unsigned_zero)
            return scale, z
        scale = max((mx - mn) / n_levels, eps)
        if not integer:
            return scale, qmin - mn / scale
        z = int(qmin - rnd(mn / scale))
        return scale, (min(max(z, qmin), qmax) if clamp else z)
    return variant


def _qparams_compare(expected, got):
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"the result: expected a tuple (scale, zero_point), got {type(got).__name__}" + \
            (f" of {len(got)} values" if isinstance(got, tuple | list) else "")
    (se, ze), (sg, zg) = expected, (_scalar(got[0]), _scalar(got[1]))
    if not _is_real(sg) or not np.isfinite(float(sg)):
        return f"scale: expected a finite float, got {type(sg).__name__} {sg!r}"
    if not np.isclose(float(sg), float(se), rtol=1e-6, atol=0.0):
        return f"scale: expected {float(se)!r}, got {float(sg)!r}"
    if _is_int(ze) and not _is_int(zg):
        return (f"zero_point: expected an integer (the real 0.0 must be exactly the integer Z), "
                f"got {type(zg).__name__} {zg!r}")
    if _is_int(zg) and not _is_int(ze):  # only a wrong variant expects a float (diagnosis)
        return f"zero_point: expected a float, got {type(zg).__name__} {zg!r}"
    if not _is_real(zg) or not np.isclose(float(zg), float(ze), rtol=1e-9, atol=0.0):
        return f"zero_point: expected {ze!r}, got {zg!r}"
    return None


def _qparams_cases_fixed():
    return [Case("8-bit unsigned, [-1, 3]", (-1.0, 3.0, 8, False, False),
                 "S = 4/255, Z = round(255/4) = 64"),
            Case("8-bit signed, [-2, 3]", (-2.0, 3.0, 8, True, False), "S = 5/255, Z = -26"),
            Case("symmetric signed", (-0.5, 2.0, 8, True, True), "S = 2 / 127.5, Z = 0"),
            Case("symmetric unsigned", (-1.0, 0.25, 8, False, True), "Z = 128"),
            Case("4-bit signed", (-0.3, 1.2, 4, True, False)),
            Case("all zero", (0.0, 0.0, 8, False, False), "S = float32 eps, Z = q_min")]


def _qparams_cases_zero():
    return [Case("ReLU output [0.5, 6]", (0.5, 6.0, 8, False, False),
                 "the range is widened to [0, 6] so that 0.0 is exact"),
            Case("all negative [-4, -1]", (-4.0, -1.0, 8, True, False), "widened to [-4, 0]"),
            Case("positive, 4-bit signed", (1.0, 3.0, 4, True, False))]


def _qparams_cases_rounding():
    return [Case("Z from -2.5", (-2.5, 252.5, 8, False, False),
                 "S = 1, min / S = -2.5 rounds to -2 (half to even): Z = 2"),
            Case("Z from -1.5", (-1.5, 253.5, 8, False, False), "-1.5 rounds to -2: Z = 2"),
            Case("Z from -0.5, 4 bits", (-0.5, 14.5, 4, True, False),
                 "-0.5 rounds to 0 (half to even): Z = -8"),
            Case("Z from -3.5, S = 0.5", (-1.75, 125.75, 8, False, False),
                 "-3.5 rounds to -4: Z = 4")]


def _half_distance(v):
    return abs(abs(v - np.floor(v)) - 0.5)


def _qparams_cases_generated():
    bit_choices = (8, 8, 4, 2, 16, 6)
    cases = []
    for i in range(12):
        rng = seeded(8000 + i)
        bits, signed, symmetric = bit_choices[i % 6], bool(i % 2), i % 4 == 3
        while True:  # a range whose min / S is not within rounding of a half (float32 vs 64)
            lo, hi = np.sort(np.round(rng.normal(0.0, 2.0, size=2), 3))
            if i % 5 == 4:
                lo, hi = abs(lo) + 0.1, abs(lo) + abs(hi) + 0.2  # all positive
            s, _ = affine_qparams_reference(float(lo), float(hi), bits, signed, False)
            if _half_distance(min(lo, 0.0) / s) > 1e-3:
                break
        cases.append(Case(f"generated #{i}", (float(lo), float(hi), bits, signed, symmetric)))
    return cases


register(Assignment(
    name="affine_qparams",
    function="affine_qparams",
    arg_names=("min_val", "max_val", "bits", "signed", "symmetric"),
    reference=affine_qparams_reference,
    description="affine_qparams(min_val, max_val, bits, signed, symmetric) -> (scale, zero_point): "
                "widen [min, max] to contain 0; asymmetric S = (max - min) / (q_max - q_min), "
                "Z = q_min - round(min / S) (an int, half to even); symmetric S = max(|min|, |max|)"
                " / ((q_max - q_min) / 2), Z = 0 (signed) or 2^(bits-1) (unsigned); S >= float32 "
                "eps; q range [-2^(b-1), 2^(b-1) - 1] signed, [0, 2^b - 1] unsigned.",
    groups=(CaseGroup("worked examples", 3.0, _qparams_cases_fixed),
            CaseGroup("0.0 in the range", 1.5, _qparams_cases_zero),
            CaseGroup("rounding the zero point", 1.5, _qparams_cases_rounding),
            CaseGroup("generated", 4.0, _qparams_cases_generated)),
    compare=_qparams_compare,
    mistakes=(
        Mistake("zero_point_not_integer", "the zero point is not rounded to an integer: "
                "Z = q_min - round(min / S), so that the real 0.0 is exactly representable",
                _qparams_variant(integer=False)),
        Mistake("zero_not_in_range", "the range is not widened to contain 0 (min(min, 0), "
                "max(max, 0)): 0.0 is then not representable (ReLU zeros, zero padding)",
                (_qparams_variant(widen=False), _qparams_variant(widen=False, clamp=False))),
        Mistake("levels_2_pow_b", "divides by 2^bits; a b-bit integer has 2^bits - 1 steps "
                "between q_min and q_max (q_max - q_min)",
                _qparams_variant(levels=lambda b: 2 ** b)),
        Mistake("round_half_away", "rounds halves away from zero or up (floor(x + 0.5)); use "
                "round half to even (np.rint / np.round / Python's round)",
                (_qparams_variant(rnd=_round_half_away), _qparams_variant(rnd=_round_half_up))),
        Mistake("symmetric_q_max", "symmetric scale divided by q_max (127) instead of "
                "(q_max - q_min) / 2 (127.5)",
                _qparams_variant(sym_denominator=lambda b: 2 ** (b - 1) - 1)),
        Mistake("symmetric_unsigned_zero", "symmetric unsigned zero point must be 2^(bits-1) "
                "(128 for 8 bits), not 0", _qparams_variant(unsigned_zero=0)),
    ),
))


# ------------------------------------------------------------------------------ affine quantize
def affine_quantize_reference(x, scale, zero_point, bits, signed):
    """``q = clamp(round(x / S) + Z, q_min, q_max)`` (half to even) in the smallest integer type
    (int8/uint8, int16/uint16 at 16 bits) and ``x_hat = S (q - Z)`` in ``x``'s dtype."""
    q = quantize(x, scale, zero_point, bits=bits, signed=signed)
    return q, dequantize(q, scale, zero_point, bits=bits, signed=signed, dtype=x.dtype)


def _quantize_variant(rnd=np.rint, clamp=True, wrap=True, z_sign=1, z_sign_dequant=None):
    def variant(x, scale, zero_point, bits, signed):
        qmin, qmax = qrange(bits, signed)
        q = rnd(x.astype(np.float64) / scale) + z_sign * zero_point
        if clamp:
            q = np.clip(q, qmin, qmax)
        q = q.astype(np.int64)
        if clamp or wrap:
            q = q.astype(int_dtype(bits, signed))  # out of range values wrap around
        zs = z_sign if z_sign_dequant is None else z_sign_dequant
        x_hat = (scale * (q.astype(np.int64) - zs * zero_point)).astype(x.dtype)
        return q, x_hat
    return variant


def _quantize_compare(expected, got):
    return check_tuple(got, expected, ("q", "x_hat"))


def _quantize_cases_fixed():
    x = np.array([-1.0, -0.3, 0.0, 0.26, 0.5, 1.7], dtype=np.float32)
    xm = np.linspace(-1.0, 1.0, 12, dtype=np.float64).reshape(3, 4)
    return [Case("8-bit signed, Z = 0", (x, 0.0078125, 0, 8, True), "S = 1/128"),
            Case("8-bit unsigned, Z = 128", (x, 0.0078125, 128, 8, False)),
            Case("4-bit signed, Z = 3", (x, 0.125, 3, 4, True)),
            Case("a float64 matrix", (xm, 0.015625, -5, 8, True)),
            Case("zero is exact", (np.zeros(4, np.float32), 0.25, 7, 8, False),
                 "0.0 -> q = Z -> 0.0")]


def _quantize_cases_clamp():
    x = np.array([-3.0, -1.0, 0.0, 0.9, 2.0, 5.0], dtype=np.float32)
    return [Case("beyond both ends, 4 bits", (x, 0.125, 0, 4, True), "q_min = -8, q_max = 7"),
            Case("beyond q_max, 8-bit unsigned", (x * 40, 0.5, 20, 8, False),
                 "200 / 0.5 + 20 = 420 clamps to 255"),
            Case("beyond q_min, 8-bit signed", (-x * 40, 0.25, 10, 8, True))]


def _quantize_cases_rounding():
    s = 0.25
    x = np.array([0.125, 0.375, -0.125, -0.375, 0.625, -0.625], dtype=np.float32)  # k.5 * S
    return [Case("halves to even, Z = 0", (x, s, 0, 8, True),
                 "x / S = 0.5, 1.5, -0.5, -1.5, 2.5, -2.5 -> 0, 2, 0, -2, 2, -2"),
            Case("halves with Z = 3", (x, s, 3, 8, True), "round first, then add Z"),
            Case("no halves, negative", (np.array([-0.3, -0.7, -1.1], np.float64), s, 1, 8, True),
                 "-1.2 -> -1, -2.8 -> -3, -4.4 -> -4")]


def _quantize_cases_generated():
    cases = []
    for i in range(10):
        rng = seeded(9000 + i)
        bits, signed = (8, 4, 8, 16, 2)[i % 5], bool(i % 2)
        qmin, qmax = qrange(bits, signed)
        scale = float(2.0 ** -int(rng.integers(1, 9)))  # a power of 2: x / S is exact
        zero_point = int(rng.integers(qmin, qmax + 1))
        shape = tuple(int(v) for v in rng.integers(1, 6, size=1 + i % 3))
        dtype = np.float32 if i % 2 == 0 else np.float64
        span = scale * (qmax - qmin) * 0.7
        x = (rng.uniform(-span, span, size=shape)).astype(dtype)
        x.flat[:2] = (np.array([0.5, -1.5]) * scale)[: x.size][:2]  # a half or two
        cases.append(Case(f"generated #{i}", (x, scale, zero_point, bits, signed)))
    return cases


register(Assignment(
    name="affine_quantize",
    function="affine_quantize",
    arg_names=("x", "scale", "zero_point", "bits", "signed"),
    reference=affine_quantize_reference,
    description="affine_quantize(x, scale, zero_point, bits, signed) -> (q, x_hat): q = "
                "clamp(round(x / S) + Z, q_min, q_max), round half to even, in int8/uint8 "
                "(int16/uint16 for 16 bits); x_hat = S (q - Z) in x's dtype.",
    groups=(CaseGroup("worked examples", 3.0, _quantize_cases_fixed),
            CaseGroup("clamping", 2.0, _quantize_cases_clamp),
            CaseGroup("rounding", 1.0, _quantize_cases_rounding),
            CaseGroup("generated", 4.0, _quantize_cases_generated)),
    compare=_quantize_compare,
    mistakes=(
        Mistake("no_clamp", "does not clamp q to [q_min, q_max]: values outside the range wrap "
                "around (or overflow) instead of saturating",
                (_quantize_variant(clamp=False), _quantize_variant(clamp=False, wrap=False))),
        Mistake("floor_not_round", "floor (or int() truncation) instead of rounding to the "
                "nearest integer: q = round(x / S) + Z",
                (_quantize_variant(rnd=np.floor), _quantize_variant(rnd=np.trunc))),
        Mistake("zero_point_sign", "wrong sign of the zero point: q = round(x / S) + Z and "
                "x_hat = S (q - Z)",
                (_quantize_variant(z_sign=-1), _quantize_variant(z_sign=-1, z_sign_dequant=1),
                 _quantize_variant(z_sign_dequant=-1))),
        Mistake("round_half_away", "rounds halves away from zero or up (floor(x + 0.5)); use "
                "round half to even (np.rint / np.round)",
                (_quantize_variant(rnd=_round_half_away), _quantize_variant(rnd=_round_half_up))),
    ),
))


# ------------------------------------------------------------------------------ k-means assign
def kmeans_assign_reference(w, centroids):
    """Labels (int64, shape of ``w``): the index of the nearest centroid to each weight,
    ``argmin_k (w - c_k)^2``, the lowest index on ties."""
    labels = assign(w.reshape(-1, 1).astype(np.float64), centroids.reshape(-1, 1))
    return labels.reshape(w.shape)


def _assign_farthest(w, c):
    return np.argmax((w[..., None] - c) ** 2, axis=-1)


def _assign_values(w, c):
    return c[kmeans_assign_reference(w, c)]


def _assign_signed(w, c):
    return np.argmin(w[..., None] - c, axis=-1)


def _assign_high_index(w, c):
    return (len(c) - 1 - np.argmin(((w[..., None] - c) ** 2)[..., ::-1], axis=-1))


def _assign_cases_fixed():
    w = np.array([[0.1, -0.4, 0.9], [0.0, 0.45, -1.2]], dtype=np.float32)
    c = np.array([-0.5, 0.0, 0.5, 1.0])
    return [Case("2x3 weight, 4 centroids", (w, c)),
            Case("unsorted centroids", (w, np.array([1.0, -0.5, 0.5, 0.0])),
                 "labels index the given order"),
            Case("one centroid", (w, np.array([0.2])), "every label 0"),
            Case("conv weight", (np.linspace(-1, 1, 24).reshape(2, 3, 2, 2), c))]


def _assign_cases_ties():
    c = np.array([0.0, 1.0, -1.0, 0.5])
    w = np.array([0.25, 0.75, -0.5, 2.0], dtype=np.float64)
    return [Case("midpoints", (w, c), "0.25 is as near 0.0 as 0.5: the lower index 0 wins"),
            Case("equal centroids", (w, np.array([0.5, 0.5, 0.0])), "0.5 twice: index 0")]


def _assign_cases_generated():
    cases = []
    for i in range(10):
        rng = seeded(10000 + i)
        shape = tuple(int(v) for v in rng.integers(1, 7, size=1 + i % 3))
        dtype = np.float32 if i % 2 == 0 else np.float64
        w = rng.standard_normal(shape).astype(dtype)
        k = int(rng.integers(2, 9))
        c = rng.standard_normal(k) if i % 3 else np.round(rng.standard_normal(k), 1)
        if i % 4 == 1:
            w = (np.round(w * 4) / 4).astype(dtype)  # quarter steps: exact ties
            c = np.round(rng.standard_normal(k) * 2) / 2
        cases.append(Case(f"generated #{i}", (w, c)))
    return cases


register(Assignment(
    name="kmeans_assign",
    function="kmeans_assign",
    arg_names=("w", "centroids"),
    reference=kmeans_assign_reference,
    description="kmeans_assign(w, centroids) -> int64 labels of w's shape: the index k of the "
                "nearest centroid, argmin_k (w - centroids[k])^2, the lowest k on ties "
                "(the assignment step of k-means weight sharing).",
    groups=(CaseGroup("worked examples", 4.0, _assign_cases_fixed),
            CaseGroup("ties", 1.0, _assign_cases_ties),
            CaseGroup("generated", 5.0, _assign_cases_generated)),
    compare=lambda expected, got: check_array(got, expected, "the labels", exact=True),
    mistakes=(
        Mistake("farthest", "assigns each weight to the FARTHEST centroid (argmax): use argmin "
                "of the distances", _assign_farthest),
        Mistake("returns_values", "returns the centroid values; the labels are the centroid "
                "indices (int64)", _assign_values),
        Mistake("signed_distance", "ranks signed differences w - c; the distance is (w - c)^2 "
                "(or |w - c|)", _assign_signed),
        Mistake("ties_high_index", "breaks ties towards the higher centroid index; np.argmin "
                "picks the lowest", _assign_high_index),
        Mistake("flat_labels", "returns flat labels of shape (w.size,); keep w's shape",
                lambda w, c: kmeans_assign_reference(w, c).reshape(-1)),
    ),
))


# ------------------------------------------------------------------------------ k-means update
def kmeans_update_reference(w, mask, labels, centroids):
    """New centroids (k,) float64: ``c_k = mean of w[mask & (labels == k)]`` (the kept weights
    of cluster k); a cluster without kept weights keeps ``centroids[k]``. Inputs unchanged."""
    return update(w[mask].astype(np.float64), labels[mask], centroids)


def _update_variant(use_mask=True, empty="keep", denominator="count"):
    def variant(w, mask, labels, centroids):
        keep = mask if use_mask else np.ones(w.shape, dtype=bool)
        v, lab = w[keep].astype(np.float64), labels[keep]
        k = centroids.shape[0]
        counts = np.bincount(lab, minlength=k)
        sums = np.bincount(lab, weights=v, minlength=k)
        if denominator == "all":
            new = sums / max(v.size, 1)
        elif denominator == "global":
            new = np.full(k, v.mean() if v.size else 0.0)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                new = sums / counts
        fill = {"keep": centroids, "nan": np.full(k, np.nan), "zero": np.zeros(k)}[empty]
        return np.where(counts > 0, new, fill)
    return variant


def _update_case(rng, shape, k, density, empty=0):
    w = rng.standard_normal(shape)  # float64: the means are float64
    mask = rng.random(shape) < density
    w[~mask] = 0.0  # pruned weights are exactly 0
    centroids = np.sort(rng.standard_normal(k))
    labels = kmeans_assign_reference(w, centroids)  # pruned zeros get a label too
    for _ in range(empty):  # empty a cluster: its kept weights move to the neighbour
        e = int(rng.integers(k))
        labels[labels == e] = (e + 1) % k
    return (w, mask, labels, centroids)


def _update_cases_fixed():
    w = np.array([[0.2, 0.0, -0.6], [0.4, 0.0, -0.8]])
    mask = np.array([[True, False, True], [True, False, True]])
    labels = np.array([[1, 1, 0], [1, 1, 0]])
    c = np.array([-0.5, 0.5, 2.0])
    return [Case("2x3 pruned weight, 3 clusters", (w, mask, labels, c),
                 "cluster 1 = mean(0.2, 0.4); the pruned zeros do not count; cluster 2 is empty"),
            Case("nothing pruned", (w + 1, np.ones((2, 3), bool), labels, c)),
            Case("conv weight", _update_case(seeded(90), (3, 2, 2, 2), 4, 0.6))]


def _update_cases_empty():
    return [Case("one empty cluster", _update_case(seeded(91), (4, 6), 5, 0.7, 1),
                 "it keeps its old centroid"),
            Case("two empty clusters", _update_case(seeded(92), (8,), 4, 0.8, 2))]


def _update_cases_generated():
    cases = []
    for i in range(10):
        rng = seeded(11000 + i)
        shape = tuple(int(v) for v in rng.integers(2, 7, size=1 + i % 3))
        cases.append(Case(f"generated #{i}", _update_case(
            rng, shape, int(rng.integers(2, 7)), (0.5, 0.8, 1.0)[i % 3], empty=i % 4 == 3)))
    return cases


register(Assignment(
    name="kmeans_update",
    function="kmeans_update",
    arg_names=("w", "mask", "labels", "centroids"),
    reference=kmeans_update_reference,
    description="kmeans_update(w, mask, labels, centroids) -> (k,) float64 new centroids (w is "
                "float64): "
                "centroid k = mean of the KEPT weights w[mask & (labels == k)]; a cluster with no "
                "kept weight keeps centroids[k]; labels (w's shape) label pruned weights too.",
    groups=(CaseGroup("worked examples", 4.0, _update_cases_fixed),
            CaseGroup("empty clusters", 2.0, _update_cases_empty),
            CaseGroup("generated", 4.0, _update_cases_generated)),
    compare=lambda expected, got: check_array(got, expected, "the centroids"),
    mistakes=(
        Mistake("empty_cluster", "an empty cluster must keep its previous centroid (the mean of "
                "no weights is NaN, and 0.0 is wrong too)",
                (_update_variant(empty="nan"), _update_variant(empty="zero"))),
        Mistake("includes_pruned", "includes the pruned zeros in the means; only the kept "
                "weights (mask True) are clustered", _update_variant(use_mask=False)),
        Mistake("mean_over_all", "averages over all weights instead of each cluster's members: "
                "c_k = (sum of cluster k) / (number of weights in cluster k)",
                (_update_variant(denominator="all"), _update_variant(denominator="global"))),
    ),
))
