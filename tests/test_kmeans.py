"""The shared k-means (tinyprune.common.kmeans): vectorized == loop twin, 1-D and 2-D data,
determinism, non-empty clusters, and named errors for bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.common.kmeans import assign, kmeans, kmeans_naive, kmeans_plusplus_init, update


def test_kmeans_matches_naive():
    x = np.random.default_rng(1).standard_normal((40, 7))
    c1, l1 = kmeans(x, 5, np.random.default_rng(9))
    c2, l2 = kmeans_naive(x, 5, np.random.default_rng(9))
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_allclose(c1, c2, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), k=st.integers(1, 30), seed=st.integers(0, 2**31),
       one_d=st.booleans(), dup=st.booleans())
def test_kmeans_properties(n, k, seed, one_d, dup):
    k = min(k, n)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) if one_d else rng.standard_normal((n, 3))
    if dup:
        x = np.round(x)  # many equal points
    c, labels = kmeans(x, k, seed)
    assert c.shape == ((k,) if one_d else (k, 3)) and labels.shape == (n,)
    assert np.bincount(labels, minlength=k).min() >= 1  # every cluster non-empty
    c2, labels2 = kmeans(x, k, seed)  # same seed -> bit-identical
    np.testing.assert_array_equal(c, c2)
    np.testing.assert_array_equal(labels, labels2)
    cn, ln = kmeans_naive(x, k, seed)
    np.testing.assert_array_equal(labels, ln)
    np.testing.assert_allclose(c, cn, rtol=1e-10, atol=1e-12)


def test_one_d_data_equals_a_column():
    x = np.random.default_rng(3).standard_normal(200).astype(np.float32)
    c1, l1 = kmeans(x, 8, 4)
    c2, l2 = kmeans(x[:, None], 8, 4)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_array_equal(c1, c2[:, 0])
    # well-separated scalars are found exactly
    x = np.concatenate([np.full(10, -3.0), np.full(5, 0.5), np.full(7, 9.0)])
    c, labels = kmeans(x, 3, 0)
    assert sorted(c.tolist()) == [-3.0, 0.5, 9.0]
    assert sorted(np.bincount(labels).tolist()) == [5, 7, 10]


def test_kmeans_does_not_modify_input_and_plusplus_distinct():
    x = np.random.default_rng(0).standard_normal((20, 2))
    x0 = x.copy()
    kmeans(x, 4, 0)
    np.testing.assert_array_equal(x, x0)
    idx = kmeans_plusplus_init(np.zeros((6, 2)), 6, 0)  # all points equal: still distinct
    assert sorted(idx.tolist()) == list(range(6))


@pytest.mark.parametrize("x, k, kw, exc, match", [
    (np.array([[0.0], [np.nan]]), 1, {}, ValueError, r"x: expected finite values .* index \(1, 0\)"),
    (np.array([0.0, np.inf, 1.0]), 1, {}, ValueError, "x: expected finite values"),
    (np.arange(6).reshape(3, 2), 2, {}, TypeError, "x: expected dtype float32 or float64, got int"),
    ([[0.0, 1.0]], 1, {}, TypeError, "x: expected a numpy.ndarray"),
    (np.ones((0, 2)), 1, {}, ValueError, "x: expected a non-empty array"),
    (np.ones((3, 0)), 1, {}, ValueError, "x: expected a non-empty array"),
    (np.ones((2, 2, 2)), 1, {}, ValueError, r"x: expected shape \(n,\) or \(n, d\)"),
    (np.ones((4, 2)), 0, {}, ValueError, "n_clusters: expected an integer >= 1, got 0"),
    (np.ones((4, 2)), 5, {}, ValueError, "n_clusters: expected an integer <= 4, got 5"),
    (np.ones((4, 2)), 2.0, {}, TypeError, "n_clusters: expected an integer"),
    (np.ones((4, 2)), 2, {"max_iter": 0}, ValueError, "max_iter: expected an integer >= 1"),
    (np.ones((4, 2)), 2, {"max_iter": 1.5}, TypeError, "max_iter: expected an integer"),
])
def test_kmeans_bad_input(x, k, kw, exc, match):
    for fn in (kmeans, kmeans_naive):
        with pytest.raises(exc, match=match):
            fn(x, k, 0, **kw)


def test_kmeans_rng_is_required():
    with pytest.raises(TypeError, match="rng"):
        kmeans(np.ones((4, 2)), 2, None)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), k=st.integers(1, 12), seed=st.integers(0, 2**31),
       scale=st.sampled_from([1.0, 3.0, 1e-3]), given_init=st.booleans())
def test_fast_1d_assignment_equals_the_reference(n, k, seed, scale, given_init):
    # tie-heavy scalar data (rounded values, many equal points and exact midpoints)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(n) * 3) * scale
    init = np.linspace(x.min(), x.max(), k) if given_init else None
    fast = kmeans(x, k, seed, init=init)
    ref = kmeans(x, k, seed, init=init, fast=False)
    np.testing.assert_array_equal(fast[0], ref[0])
    np.testing.assert_array_equal(fast[1], ref[1])
    assert fast[1].dtype == np.int64


def test_init_gives_the_starting_centroids_and_is_not_modified():
    x = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 9.0])
    init = np.array([0.0, 6.0])
    c, labels = kmeans(x, 2, init=init, max_iter=1)  # one assignment and one update
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(c, [0.1, (5.0 + 5.1 + 9.0) / 3])
    np.testing.assert_array_equal(init, [0.0, 6.0])
    with pytest.raises(ValueError, match="init"):
        kmeans(x, 3, init=init)
    with pytest.raises(TypeError, match="rng"):
        kmeans(x, 2)  # neither a seed nor initial centroids


# ----------------------------------------------------------------------------- the update step
@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 25), k=st.integers(1, 8), d=st.sampled_from([0, 1, 3]),
       seed=st.integers(0, 2**31))
def test_update_is_the_mean_of_each_cluster_and_keeps_empty_centres(n, k, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) if d == 0 else (n, d))
    centroids = rng.standard_normal((k,) if d == 0 else (k, d))
    labels = rng.integers(0, k, size=n)
    before = (x.copy(), labels.copy(), centroids.copy())
    new = update(x, labels, centroids)
    assert new.shape == centroids.shape and new.dtype == np.float64
    for c in range(k):  # loop twin of the formula
        members = x[labels == c]
        want = members.mean(axis=0) if len(members) else centroids[c]
        np.testing.assert_allclose(new[c], want, rtol=1e-12, atol=1e-12)
    for a, b in zip((x, labels, centroids), before, strict=True):
        np.testing.assert_array_equal(a, b)  # inputs untouched


def test_update_never_increases_the_within_cluster_sum_and_kmeans_uses_it():
    x = np.random.default_rng(3).standard_normal((60, 2))
    c = x[:4].copy()
    labels = assign(x, c)
    new = update(x, labels, c)
    assert ((x - new[labels]) ** 2).sum() <= ((x - c[labels]) ** 2).sum()
    # one Lloyd iteration of kmeans from init c equals assign then update
    c1, _ = kmeans(x, 4, init=c, max_iter=1, fill_empty=False)
    np.testing.assert_array_equal(c1, new)


@pytest.mark.parametrize("x, labels, centroids, exc, match", [
    (np.zeros(3), np.array([0, 1, 2]), np.zeros(2), ValueError, r"labels: expected shape \(3,\) "
     r"with values in \[0, 2\)"),
    (np.zeros(3), np.array([0, 0]), np.zeros(2), ValueError, "labels: expected shape"),
    (np.zeros(3), np.array([0.0, 0, 0]), np.zeros(2), TypeError, "labels: expected an integer"),
    (np.zeros((3, 2)), np.array([0, 0, 0]), np.zeros((2, 3)), ValueError, "centroids: expected"),
    (np.zeros(3), np.array([0, 0, 0]), np.zeros((2, 1)), ValueError, "centroids: expected"),
    (np.arange(3), np.array([0, 0, 0]), np.zeros(2), TypeError, "x"),
])
def test_update_bad_input(x, labels, centroids, exc, match):
    with pytest.raises(exc, match=match):
        update(x, labels, centroids)
