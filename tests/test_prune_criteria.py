"""Criteria (scores) and granularity (structural sets) of tinyprune.prune."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import weights

from tinyprune.prune.criteria import (
    CRITERIA,
    cluster_redundancy_scores,
    geometric_median_scores,
    geometric_median_scores_naive,
    l1,
    l2,
    lp_norm,
    magnitude,
    random_scores,
)
from tinyprune.prune.granularity import (
    GRANULARITIES,
    LINEAR_VECTOR_SIZE,
    expand_to_weight,
    group_reduce,
    set_shape,
)

SETTINGS = settings(max_examples=150, deadline=None)


def naive_set_index(shape, granularity, vector_size=None):
    """Flat set index of every weight, by loops over the weight's indices (the definition)."""
    out = np.empty(shape, dtype=np.int64)
    sshape = set_shape(shape, granularity, vector_size=vector_size)
    v = vector_size or LINEAR_VECTOR_SIZE
    for idx in np.ndindex(*shape):
        if granularity in ("element", "nm"):
            s = idx
        elif granularity == "channel":
            s = (idx[0],)
        elif granularity == "input_channel":
            s = (idx[1],)
        elif granularity == "kernel":
            s = idx[:2]
        elif len(shape) == 4:  # vector, conv: one kernel row (o, i, kh)
            s = idx[:3]
        else:  # vector, linear: runs of v along `in`
            s = (idx[0], idx[1] // v)
        out[idx] = np.ravel_multi_index(s, sshape)
    return out


def granularities_for(w):
    return [g for g in GRANULARITIES if not (g == "kernel" and w.ndim == 2)]


# ------------------------------------------------------------------ granularity
@SETTINGS
@given(data=st.data(), w=weights())
def test_group_reduce_and_expand_match_the_set_definition(data, w):
    g = data.draw(st.sampled_from(granularities_for(w)))
    vs = data.draw(st.sampled_from([None, 1, 2, 3, 5])) if (g == "vector" and w.ndim == 2) \
        else None
    idx = naive_set_index(w.shape, g, vs)
    n_sets = int(np.prod(set_shape(w.shape, g, vector_size=vs)))
    a = np.abs(w).astype(np.float64)
    expected_sum = np.bincount(idx.ravel(), weights=a.ravel(), minlength=n_sets)
    got = group_reduce(a, g, vector_size=vs)
    assert got.shape == set_shape(w.shape, g, vector_size=vs)
    np.testing.assert_allclose(got.ravel(), expected_sum, rtol=1e-12, atol=1e-12)
    expected_max = np.full(n_sets, -np.inf)
    np.maximum.at(expected_max, idx.ravel(), a.ravel())
    np.testing.assert_array_equal(group_reduce(a, g, reduce="max", vector_size=vs).ravel(),
                                  expected_max)
    set_vals = np.arange(n_sets).reshape(got.shape)
    expanded = expand_to_weight(set_vals, g, w.shape, vector_size=vs)
    np.testing.assert_array_equal(expanded, idx)
    assert expanded.flags.writeable and not np.shares_memory(expanded, set_vals)


def test_linear_vector_partial_last_run():
    w = np.arange(1, 11, dtype=np.float64).reshape(1, 10)  # runs of 4: [1..4], [5..8], [9, 10]
    np.testing.assert_array_equal(group_reduce(w, "vector"), [[10, 26, 19]])
    np.testing.assert_array_equal(expand_to_weight(np.array([[True, False, True]]), "vector",
                                                   (1, 10)),
                                  [[1, 1, 1, 1, 0, 0, 0, 0, 1, 1]])
    assert set_shape((3, 10), "vector", vector_size=5) == (3, 2)


def test_conv_sets_shapes():
    shape = (8, 3, 5, 2)
    assert set_shape(shape, "element") == shape
    assert set_shape(shape, "vector") == (8, 3, 5)
    assert set_shape(shape, "kernel") == (8, 3)
    assert set_shape(shape, "channel") == (8,)
    assert set_shape(shape, "input_channel") == (3,)
    assert set_shape(shape, "nm") == shape


def test_granularity_errors():
    with pytest.raises(ValueError, match="Linear"):
        set_shape((4, 5), "kernel")
    with pytest.raises(ValueError, match="element.*vector.*kernel.*channel.*input_channel.*nm"):
        group_reduce(np.ones((2, 2)), "filter")
    with pytest.raises(ValueError, match="3-D"):
        group_reduce(np.ones((2, 2, 2)), "channel")
    with pytest.raises(ValueError, match="KW=3"):
        set_shape((2, 2, 3, 3), "vector", vector_size=4)
    with pytest.raises(ValueError, match="vector_size"):
        set_shape((2, 8), "vector", vector_size=0)
    with pytest.raises(ValueError, match="reduce"):
        group_reduce(np.ones((2, 2)), "channel", reduce="mean")
    with pytest.raises(ValueError, match=r"set_values: expected shape \(4,\)"):
        expand_to_weight(np.ones(3, dtype=bool), "channel", (4, 2))


# ------------------------------------------------------------------ magnitude / Lp
@SETTINGS
@given(data=st.data(), w=weights())
def test_lp_norm_matches_definition(data, w):
    g = data.draw(st.sampled_from(granularities_for(w)))
    p = data.draw(st.sampled_from([1, 2, np.inf, 0.5, 3]))
    w0 = w.copy()
    got = lp_norm(w, p, g)
    np.testing.assert_array_equal(w, w0)  # caller's array untouched
    assert got.dtype == w.dtype
    idx = naive_set_index(w.shape, g).ravel()
    a = np.abs(w.astype(np.float64)).ravel()
    expected = np.empty(got.size)
    for s in range(got.size):
        members = a[idx == s]
        expected[s] = members.max() if p == np.inf else (members**p).sum() ** (1 / p)
    rtol = 1e-5 if w.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.ravel(), expected, rtol=rtol, atol=1e-6)


def test_magnitude_l1_l2():
    w = np.array([[3.0, -4.0], [0.0, -1.0]], dtype=np.float32)
    np.testing.assert_array_equal(magnitude(w), np.abs(w))
    np.testing.assert_allclose(l1(w, "channel"), [7.0, 1.0])
    np.testing.assert_allclose(l2(w, "channel"), [5.0, 1.0])
    np.testing.assert_allclose(l2(w, "input_channel"), [3.0, np.sqrt(17.0)])
    np.testing.assert_array_equal(l1(w), np.abs(w))  # element: |w|
    np.testing.assert_allclose(lp_norm(w, np.inf, "channel"), [4.0, 1.0])
    assert magnitude(w.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("bad_p", [0, -1, "2", None, True])
def test_lp_norm_rejects_bad_p(bad_p):
    with pytest.raises(ValueError, match="p: expected"):
        lp_norm(np.ones((2, 2)), bad_p, "channel")


def test_weight_input_errors():
    with pytest.raises(ValueError, match=r"found nan at index \(1, 0\)"):
        magnitude(np.array([[1.0, 2.0], [np.nan, 0.0]]))
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        magnitude(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy.ndarray, got list"):
        magnitude([[1.0, 2.0]])


def test_random_scores():
    w = np.ones((6, 3, 2, 2), dtype=np.float32)
    a = random_scores(w, np.random.default_rng(3), "kernel")
    b = random_scores(w, 3, "kernel")
    assert a.shape == (6, 3)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="rng"):
        random_scores(w, None, "channel")


def test_criteria_names():
    assert {"magnitude", "l1", "l2", "lp", "random", "geometric_median", "cluster"} <= \
        set(CRITERIA)


# ------------------------------------------------------------------ FPGM
def test_geometric_median_small_example():
    # 1-D "filters" 0, 1, 10: summed distances 11, 10, 19 -> the filter 1 is the most redundant
    w = np.array([[0.0], [1.0], [10.0]])
    np.testing.assert_allclose(geometric_median_scores(w), [11.0, 10.0, 19.0])


@SETTINGS
@given(w=weights())
def test_geometric_median_matches_naive(w):
    w0 = w.copy()
    got = geometric_median_scores(w)
    np.testing.assert_array_equal(w, w0)
    assert got.shape == (w.shape[0],)
    np.testing.assert_allclose(got, geometric_median_scores_naive(w), rtol=1e-6, atol=1e-5)


def test_geometric_median_prunes_the_central_not_the_smallest():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 4, 3, 3))
    w[2] = w[[0, 1, 3, 4]].mean(axis=0)  # filter 2 sits in the middle of the others
    w[4] *= 0.01  # filter 4 has the smallest norm but is far from the rest
    s = geometric_median_scores(w)
    assert np.argmin(s) == 2
    assert np.argmin(l2(w, "channel")) == 4


# ------------------------------------------------------------------ clustering
def _clustered_filters(rng, n_clusters, per_cluster, shape=(3, 3, 3), noise=0.01):
    centers = rng.standard_normal((n_clusters,) + shape) * 5
    w = np.concatenate([c + noise * rng.standard_normal((per_cluster,) + shape)
                        for c in centers])
    perm = rng.permutation(len(w))
    truth = np.repeat(np.arange(n_clusters), per_cluster)[perm]
    return w[perm].astype(np.float32), truth


def test_cluster_scores_keep_one_representative_per_cluster():
    rng = np.random.default_rng(4)
    w, truth = _clustered_filters(rng, 4, 5)
    s = cluster_redundancy_scores(w, 4, np.random.default_rng(0))
    reps = np.flatnonzero(s > 1)
    assert len(reps) == 4
    assert sorted(truth[reps]) == [0, 1, 2, 3]  # one per true cluster
    assert np.all(s[s <= 1] < 1) and np.all(s >= 0)
    # the representative is the member closest to its cluster's mean
    f = w.reshape(len(w), -1).astype(np.float64)
    for r in reps:
        members = np.flatnonzero(truth == truth[r])
        centroid = f[members].mean(axis=0)
        d = np.linalg.norm(f[members] - centroid, axis=1)
        assert members[np.argmin(d)] == r
    # same seed, same scores
    np.testing.assert_array_equal(s, cluster_redundancy_scores(w, 4, 0))


@pytest.mark.parametrize("n_clusters", [1, 3, 7, 12])
def test_cluster_pruning_removes_exactly_the_non_representatives(n_clusters):
    from tinyprune.prune.select import select_mask

    rng = np.random.default_rng(n_clusters)
    w = rng.standard_normal((12, 2, 3, 3))
    w[5] = w[6]  # duplicates are fine
    s = cluster_redundancy_scores(w, n_clusters, rng)
    keep = select_mask(s, 12 - n_clusters)
    np.testing.assert_array_equal(keep, s > 1)


def test_cluster_errors():
    w = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"n_clusters .*: expected an integer <= 4, got 5"):
        cluster_redundancy_scores(w, 5, 0)
    with pytest.raises(ValueError, match="n_clusters"):
        cluster_redundancy_scores(w, 0, 0)
    with pytest.raises(TypeError, match="rng"):
        cluster_redundancy_scores(w, 2, None)
    with pytest.raises(ValueError, match="Linear"):
        geometric_median_scores(np.ones(4))


# ------------------------------------------------------------------ non-finite and empty weights
_NON_FINITE = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("bad", _NON_FINITE)
@pytest.mark.parametrize("criterion", ["magnitude", "l1", "l2", "linf", "lp", "random",
                                       "geometric_median", "cluster"])
def test_every_criterion_rejects_non_finite_weights(criterion, bad):
    from tinyprune.prune.select import prune_weight

    w = np.random.default_rng(0).standard_normal((6, 3, 2, 2))
    w[2, 1, 0, 1] = bad
    kw = {"p": 3} if criterion == "lp" else {}
    with pytest.raises(ValueError, match=r"w: expected finite values .* at index \(2, 1, 0, 1\)"):
        prune_weight(w, 0.5, criterion=criterion, granularity="channel", rng=0, **kw)


@pytest.mark.parametrize("fn", [magnitude, l1, l2, lambda w: lp_norm(w, 3),
                                lambda w: random_scores(w, 0), geometric_median_scores,
                                lambda w: cluster_redundancy_scores(w, 2, 0)])
@pytest.mark.parametrize("bad", _NON_FINITE)
def test_score_functions_reject_non_finite_weights(fn, bad):
    w = np.ones((4, 3))
    w[1, 2] = bad
    with pytest.raises(ValueError, match="expected finite values"):
        fn(w)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 3, 3, 3), (4, 0, 3, 3)])
@pytest.mark.parametrize("fn", [magnitude, lambda w: l1(w, "channel"), geometric_median_scores,
                                lambda w: cluster_redundancy_scores(w, 1, 0)])
def test_empty_weights_are_named_errors(fn, shape):
    with pytest.raises(ValueError, match=r"w: expected a non-empty array, got shape"):
        fn(np.ones(shape))
