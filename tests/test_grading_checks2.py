"""The assignments added for sensitivity scans, quantization, k-means weight sharing, low rank
and distillation: a correct student solution scores full marks, and each common mistake, written
the way a student would write it, fails with that mistake's own diagnosis."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_grading_checks import MISTAKES as MISTAKES1
from test_grading_checks import SOLUTIONS as SOLUTIONS1

from tinyprune.grading import ASSIGNMENTS, grade_source
from tinyprune.grading import checks_distill as D
from tinyprune.grading import checks_lowrank as L
from tinyprune.grading import checks_prune as P
from tinyprune.grading import checks_quantize as Q
from tinyprune.grading.grader import MUTATION_KEY

# ------------------------------------------------------------------------ sensitivity_table
SENS = """
import math
import numpy as np

def _accuracy(params, x, y):
    n_layers = len(params) // 2
    h = x
    for i in range(1, n_layers + 1):
        h = h @ params[f"fc{{i}}.weight"].T + params[f"fc{{i}}.bias"]
        if i < n_layers:
            h = np.maximum(h, 0.0)
    return np.mean(h.argmax(axis=1) == y)

def _prune(w, r):
    k = {count}
    order = np.argsort(np.abs(w), axis=None, kind="stable")
    keep = np.ones(w.size, dtype=bool)
    keep[order[:k]] = False
    return w * keep.reshape(w.shape)

def sensitivity_table(params, val, test, ratios):
    x, y = {split}
    names = [f"fc{{i}}.weight" for i in range(1, len(params) // 2 + 1)]
    work = dict(params)
    base = _accuracy(work, x, y)
    table = np.zeros((len(names), len(ratios)))
    for i, name in enumerate(names):
        original = work[name]
        for j, r in enumerate(ratios):
            {prune}
            table[i, j] = {delta}
        {restore}
    return table
"""
_SENS = {"count": "round(r * w.size)", "split": "val", "delta": "base - _accuracy(work, x, y)",
         "restore": "work[name] = original", "prune": "work[name] = _prune(original, r)"}


def _sens(**kw):
    return SENS.format(**{**_SENS, **kw})


# ------------------------------------------------------------------------ affine_qparams
QP = """
import numpy as np

def affine_qparams(min_val, max_val, bits, signed, symmetric):
    qmin, qmax = (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    lo, hi = {lo}, {hi}
    eps = float(np.finfo(np.float32).eps)
    if symmetric:
        scale = max(max(-lo, hi) / {symden}, eps)
        return scale, {symzp}
    scale = max((hi - lo) / {levels}, eps)
    return scale, {zp}
"""
_QP = {"lo": "min(min_val, 0.0)", "hi": "max(max_val, 0.0)", "symden": "((qmax - qmin) / 2)",
       "symzp": "0 if signed else 2 ** (bits - 1)", "levels": "(qmax - qmin)",
       "zp": "int(qmin - round(lo / scale))"}


def _qp(**kw):
    return QP.format(**{**_QP, **kw})


# ------------------------------------------------------------------------ affine_quantize
AQ = """
import numpy as np

def affine_quantize(x, scale, zero_point, bits, signed):
    qmin, qmax = (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    dtype = np.dtype(("int" if signed else "uint") + ("8" if bits <= 8 else "16"))
    q = {rnd}(x / scale) {zsign} zero_point
    q = {clip}.astype(dtype)
    x_hat = (scale * (q.astype(np.int64) {dzsign} zero_point)).astype(x.dtype)
    return q, x_hat
"""
_AQ = {"rnd": "np.rint", "zsign": "+", "clip": "np.clip(q, qmin, qmax)", "dzsign": "-"}


def _aq(**kw):
    return AQ.format(**{**_AQ, **kw})


# ------------------------------------------------------------------------ k-means
KA = """
import numpy as np

def kmeans_assign(w, centroids):
    d = {dist}
    return {ret}
"""
_KA = {"dist": "(w[..., None] - centroids) ** 2", "ret": "np.argmin(d, axis=-1)"}


def _ka(**kw):
    return KA.format(**{**_KA, **kw})


KU = """
import numpy as np

def kmeans_update(w, mask, labels, centroids):
    new = {new}
    for k in range(len(centroids)):
        members = w[{sel}]
        {body}
    return new
"""
_KU = {"new": "centroids.copy()", "sel": "mask & (labels == k)",
       "body": "if members.size > 0:\n            new[k] = members.mean()"}


def _ku(**kw):
    return KU.format(**{**_KU, **kw})


# ------------------------------------------------------------------------ svd_truncate
SVD = """
import numpy as np

def svd_truncate(w, rank, energy):
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    if rank is None:
        kept = np.cumsum({energy_terms}) / np.sum({energy_terms})
        rank = int(np.searchsorted(kept, energy)){plus}
    r = rank
    w_r = {recon}
    return rank, w_r.astype(w.dtype)
"""
_SVD = {"energy_terms": "s ** 2", "plus": " + 1", "recon": "(u[:, :r] * s[:r]) @ vt[:r]"}


def _svd(**kw):
    return SVD.format(**{**_SVD, **kw})


# ------------------------------------------------------------------------ kd_loss
KD = """
import numpy as np

def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

def kd_loss(student_logits, teacher_logits, y, temperature, alpha):
    T, n = temperature, {n}
    logp = _log_softmax({zs})
    logq = _log_softmax({zt})
    p, q = np.exp(logp), np.exp(logq)
    kl = {kl}.sum() / n
    log1 = _log_softmax(student_logits)
    ce = -log1[np.arange(len(y)), y].sum() / n
    loss = {loss}
    onehot = np.eye(student_logits.shape[1])[y]
    grad = {grad}
    return float(loss), grad.astype(student_logits.dtype)
"""
_KD = {"n": "student_logits.shape[0]", "zs": "student_logits / T", "zt": "teacher_logits / T",
       "kl": "(q * (logq - logp))", "loss": "alpha * T ** 2 * kl + (1 - alpha) * ce",
       "grad": "alpha * T * (p - q) / n + (1 - alpha) * (np.exp(log1) - onehot) / n"}


def _kd(**kw):
    return KD.format(**{**_KD, **kw})


SOLUTIONS = {
    "sensitivity_table": _sens(),
    "affine_qparams": _qp(),
    "affine_quantize": _aq(),
    "kmeans_assign": _ka(),
    "kmeans_update": _ku(),
    "svd_truncate": _svd(),
    "kd_loss": _kd(),
}

MISTAKES = {  # (assignment, mistake key) -> a student's wrong source
    ("sensitivity_table", "test_set"): _sens(split="test"),
    ("sensitivity_table", "sign_flipped"): _sens(delta="_accuracy(work, x, y) - base"),
    ("sensitivity_table", "accuracy_not_delta"): _sens(delta="_accuracy(work, x, y)"),
    ("sensitivity_table", "cumulative"): _sens(restore="pass"),
    ("sensitivity_table", "all_layers"): _sens(
        prune="work = {k: _prune(v, r) if k in names else v for k, v in params.items()}",
        restore="work = dict(params)"),
    ("sensitivity_table", "floor_count"): _sens(count="int(r * w.size)"),
    ("affine_qparams", "zero_point_not_integer"): _qp(zp="qmin - lo / scale"),
    ("affine_qparams", "zero_not_in_range"): _qp(lo="min_val", hi="max_val"),
    ("affine_qparams", "levels_2_pow_b"): _qp(levels="2 ** bits", symden="(2 ** bits / 2)"),
    ("affine_qparams", "round_half_away"): _qp(zp="int(qmin - np.floor(lo / scale + 0.5))"),
    ("affine_qparams", "symmetric_q_max"): _qp(symden="qmax"),
    ("affine_qparams", "symmetric_unsigned_zero"): _qp(symzp="0"),
    ("affine_quantize", "no_clamp"): _aq(clip="q"),
    ("affine_quantize", "floor_not_round"): _aq(rnd="np.floor"),
    ("affine_quantize", "zero_point_sign"): _aq(zsign="-", dzsign="+"),
    ("affine_quantize", "round_half_away"): _aq(rnd="(lambda v: np.floor(v + 0.5))"),
    ("kmeans_assign", "farthest"): _ka(ret="np.argmax(d, axis=-1)"),
    ("kmeans_assign", "returns_values"): _ka(ret="centroids[np.argmin(d, axis=-1)]"),
    ("kmeans_assign", "signed_distance"): _ka(dist="w[..., None] - centroids"),
    ("kmeans_assign", "ties_high_index"): _ka(ret="len(centroids) - 1 - np.argmin(d[..., ::-1], "
                                                  "axis=-1)"),
    ("kmeans_assign", "flat_labels"): _ka(ret="np.argmin(d, axis=-1).reshape(-1)"),
    ("kmeans_update", "empty_cluster"): _ku(body="new[k] = members.mean()"),
    ("kmeans_update", "includes_pruned"): _ku(sel="labels == k"),
    ("kmeans_update", "mean_over_all"): _ku(
        body="if members.size > 0:\n            new[k] = members.sum() / mask.sum()"),
    ("kmeans_update", MUTATION_KEY): _ku(new="centroids"),
    ("svd_truncate", "keeps_smallest"): _svd(recon="(u[:, -r:] * s[-r:]) @ vt[-r:]"),
    ("svd_truncate", "energy_sigma"): _svd(energy_terms="s"),
    ("svd_truncate", "off_by_one_rank"): _svd(plus=""),
    ("svd_truncate", "no_truncation"): _svd(recon="(u * s) @ vt"),
    ("kd_loss", "missing_t_squared"): _kd(loss="alpha * kl + (1 - alpha) * ce"),
    ("kd_loss", "temperature_one_side"): _kd(zt="teacher_logits"),
    ("kd_loss", "kl_reversed"): _kd(kl="(p * (logp - logq))"),
    ("kd_loss", "alpha_swapped"): _kd(
        loss="(1 - alpha) * T ** 2 * kl + alpha * ce",
        grad="(1 - alpha) * T * (p - q) / n + alpha * (np.exp(log1) - onehot) / n"),
    ("kd_loss", "sum_not_mean"): _kd(n="1"),
}


def test_every_assignment_and_mistake_has_a_student_version():
    keys = {(a.name, m.key) for a in ASSIGNMENTS.values() for m in a.mistakes}
    ours = {k for k in MISTAKES if k[1] != MUTATION_KEY}
    assert ours | set(MISTAKES1) == keys and not ours & set(MISTAKES1)
    assert set(SOLUTIONS) | set(SOLUTIONS1) == set(ASSIGNMENTS)


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_correct_solution_scores_full_marks(name):
    result = grade_source(SOLUTIONS[name], name)
    assert result.load_error == ""
    assert [c.message for g in result.groups for c in g.cases if not c.passed] == []
    assert result.score == result.max_score == 10.0
    assert result.diagnoses == []


@pytest.mark.parametrize("name, key", sorted(MISTAKES))
def test_mistake_gets_its_own_feedback(name, key):
    result = grade_source(MISTAKES[(name, key)], name)
    assert result.load_error == ""
    assert result.score < result.max_score
    keys = [d.key for d in result.diagnoses]
    assert keys == [key], (keys, result.format_text())
    if key != MUTATION_KEY:
        message = next(m.message for m in ASSIGNMENTS[name].mistakes if m.key == key)
        assert message in result.format_text()


# ------------------------------------------------------------------------ the specifications
# Each assignment's description is a formula; the mistake-free variant of the checks (written
# from that formula in float64, without tinyprune) equals the tinyprune reference on any input
# hypothesis draws, so the specification the student reads is the reference's behaviour.
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n_layers=st.integers(1, 3),
       ratios=st.lists(st.floats(0, 1).map(lambda r: round(r, 2)), min_size=1, max_size=5))
def test_sensitivity_spec_equals_reference(seed, n_layers, ratios):
    rng = np.random.default_rng(seed)
    sizes = tuple(int(v) for v in rng.integers(2, 7, size=n_layers + 1))
    params, val, test = P._mlp_case(rng, sizes, 20, 20)
    ratios = np.array(ratios)
    np.testing.assert_array_equal(P._sensitivity_variant()(params, val, test, ratios),
                                  P.sensitivity_table_reference(params, val, test, ratios))


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(-50, 50), width=st.floats(0, 100), bits=st.sampled_from([2, 4, 8, 16]),
       signed=st.booleans(), symmetric=st.booleans())
def test_affine_qparams_spec_equals_reference(lo, width, bits, signed, symmetric):
    hi = lo + width
    scale, zero_point = Q.affine_qparams_reference(lo, hi, bits, signed, symmetric)
    assume(symmetric or Q._half_distance(min(lo, 0.0) / scale) > 1e-3)  # float32 vs float64
    assert Q._qparams_compare((scale, zero_point),
                              Q._qparams_variant()(lo, hi, bits, signed, symmetric)) is None


@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(max_dims=3),
                    elements=st.floats(-300, 300, width=32)),
       k=st.integers(0, 10), bits=st.sampled_from([2, 4, 8, 16]), signed=st.booleans(),
       data=st.data())
def test_affine_quantize_spec_equals_reference(x, k, bits, signed, data):
    qmin, qmax = Q.qrange(bits, signed)
    zero_point = data.draw(st.integers(qmin, qmax))
    args = (x, 2.0 ** -k, zero_point, bits, signed)
    assert Q._quantize_compare(Q.affine_quantize_reference(*args),
                               Q._quantize_variant()(*args)) is None


@settings(max_examples=60, deadline=None)
@given(w=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3),
                    elements=st.integers(-8, 8).map(lambda v: v / 4)),
       c=hnp.arrays(np.float64, st.integers(1, 6), elements=st.integers(-4, 4).map(float)))
def test_kmeans_assign_spec_equals_reference(w, c):
    labels = Q.kmeans_assign_reference(w, c)
    assert labels.dtype == np.int64 and labels.shape == w.shape
    d = (w[..., None] - c) ** 2  # ties (quarter steps): the lowest index
    np.testing.assert_array_equal(labels, np.argmin(d, axis=-1))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(1, 7), density=st.floats(0, 1),
       shape=hnp.array_shapes(max_dims=3))
def test_kmeans_update_spec_equals_reference(seed, k, density, shape):
    args = Q._update_case(np.random.default_rng(seed), shape, k, density)
    np.testing.assert_allclose(Q._update_variant()(*args), Q.kmeans_update_reference(*args),
                               rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), m=st.integers(1, 7), n=st.integers(1, 7), data=st.data())
def test_svd_truncate_spec_equals_reference(seed, m, n, data):
    rng = np.random.default_rng(seed)
    s = np.sort(rng.uniform(0.1, 4.0, size=min(m, n)))[::-1] + np.arange(min(m, n))[::-1] * 0.1
    w = L._matrix(rng, m, n, s, np.float64)
    curve = np.cumsum(s ** 2) / np.sum(s ** 2)
    energy = data.draw(st.floats(0.05, 1.0))
    assume(np.min(np.abs(curve - energy)) > 1e-9)
    rank = data.draw(st.integers(1, min(m, n)))
    for args in ((w, rank, None), (w, None, energy)):
        assert L._svd_compare(L.svd_truncate_reference(*args), L._svd_variant()(*args)) is None


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 6), c=st.integers(2, 8),
       temperature=st.floats(0.5, 20), alpha=st.floats(0, 1), grad=st.sampled_from(
           ["formula", "exact"]))
def test_kd_loss_spec_equals_reference(seed, n, c, temperature, alpha, grad):
    args = D._kd_case(np.random.default_rng(seed), n, c, np.float64, temperature, alpha)
    assert D._kd_compare(D.kd_loss_reference(*args), D._kd_variant(grad=grad)(*args)) is None


# ------------------------------------------------------------------------ time limit, partial credit
def test_a_slow_case_times_out_and_the_others_still_count():
    src = SOLUTIONS["svd_truncate"].replace(
        "    if rank is None:", "    while rank == 1:\n        pass\n    if rank is None:", 1)
    result = grade_source(src, "svd_truncate", timeout=0.5)
    failed = [c for g in result.groups for c in g.cases if not c.passed]
    assert failed and all("longer than 0.5 s" in c.message for c in failed)
    assert 0 < result.score < result.max_score
    assert result.diagnoses == []


def test_partial_credit_per_group_on_a_new_assignment():
    # energy mode unimplemented: only the rank cases pass
    src = SOLUTIONS["svd_truncate"].replace("    if rank is None:",
                                            "    if rank is None:\n        raise NotImplementedError")
    result = grade_source(src, "svd_truncate")
    for g, group in zip(result.groups, ASSIGNMENTS["svd_truncate"].groups, strict=True):
        cases = group.cases()
        n_rank = sum(c.args[1] is not None for c in cases)
        assert (g.passed, g.total) == (n_rank, len(cases))
        assert g.score == pytest.approx(group.points * n_rank / len(cases))
    assert 0 < result.score < result.max_score
