"""iterate_minibatches: coverage, determinism, views, validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn.batching import iterate_minibatches


def _data(n=10):
    X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return X, y


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 40), bs=st.integers(1, 12), shuffle=st.booleans(),
       drop_last=st.booleans(), seed=st.integers(0, 2**32))
def test_each_sample_once(n, bs, shuffle, drop_last, seed):
    X, y = _data(n)
    batches = list(iterate_minibatches(X, y, bs, shuffle=shuffle, rng=seed, drop_last=drop_last))
    sizes = [len(yb) for _, yb in batches]
    expected = [bs] * (n // bs) + ([] if drop_last or n % bs == 0 else [n % bs])
    assert sizes == expected
    seen = np.concatenate([yb for _, yb in batches]) if batches else np.empty(0, np.int64)
    assert len(np.unique(seen)) == len(seen)
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))
    for xb, yb in batches:  # rows stay paired with their labels
        np.testing.assert_array_equal(xb[:, 0], yb * 3)


def test_unshuffled_batches_are_views_and_inputs_untouched():
    X, y = _data(7)
    X0, y0 = X.copy(), y.copy()
    for xb, yb in iterate_minibatches(X, y, 3, shuffle=False):
        assert np.shares_memory(xb, X) and np.shares_memory(yb, y)
    for xb, _ in iterate_minibatches(X, y, 3, rng=0):
        assert not np.shares_memory(xb, X)
        xb[...] = -1  # writing into a shuffled batch must not reach X
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_shuffle_is_deterministic_and_generator_advances():
    X, y = _data(50)
    order = lambda it: np.concatenate([yb for _, yb in it]).tolist()  # noqa: E731
    assert order(iterate_minibatches(X, y, 8, rng=3)) == order(iterate_minibatches(X, y, 8, rng=3))
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    e1 = order(iterate_minibatches(X, y, 8, rng=g1))
    assert e1 == order(iterate_minibatches(X, y, 8, rng=g2))
    e2 = order(iterate_minibatches(X, y, 8, rng=g1))
    assert e1 != e2 and sorted(e1) == sorted(e2) == list(range(50))
    assert e1 != list(range(50))


def test_multidimensional_nchw():
    X = np.zeros((5, 1, 4, 4), np.float32)
    y = np.zeros(5, np.int64)
    shapes = [xb.shape for xb, _ in iterate_minibatches(X, y, 2, rng=0)]
    assert shapes == [(2, 1, 4, 4), (2, 1, 4, 4), (1, 1, 4, 4)]


def test_shuffle_without_rng_asks_for_one():
    X, y = _data()
    with pytest.raises(ValueError, match="rng: expected a numpy.random.Generator or an int seed"):
        iterate_minibatches(X, y, 2)  # raised at call time, no next() needed


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(batch_size=0), ValueError, "batch_size: expected an int >= 1, got 0"),
    (dict(batch_size=2.0), TypeError, "batch_size: expected an int, got 2.0"),
    (dict(batch_size=True), TypeError, "batch_size: expected an int"),
    (dict(batch_size=2, rng="seed"), TypeError, "rng: expected .* got str"),
    (dict(batch_size=2, rng=-1), ValueError, "rng: expected a non-negative int seed"),
    (dict(batch_size=2, rng=0, shuffle=1), TypeError, "shuffle: expected a bool"),
    (dict(batch_size=2, rng=0, drop_last="no"), TypeError, "drop_last: expected a bool"),
])
def test_bad_arguments(kwargs, exc, match):
    X, y = _data()
    with pytest.raises(exc, match=match):
        iterate_minibatches(X, y, **kwargs)


def test_bad_arrays():
    X, y = _data()
    with pytest.raises(ValueError, match="y: expected 10 samples like X, got 9"):
        iterate_minibatches(X, y[:9], 2, rng=0)
    with pytest.raises(TypeError, match="X: expected a numpy.ndarray, got list"):
        iterate_minibatches(X.tolist(), y, 2, rng=0)
    with pytest.raises(TypeError, match="y: expected a numpy.ndarray"):
        iterate_minibatches(X, None, 2, rng=0)
    with pytest.raises(ValueError, match="sample axis"):
        iterate_minibatches(np.array(1.0), y, 2, rng=0)


def test_numpy_integer_batch_size_and_no_rng_needed_without_shuffle():
    X, y = _data(4)
    assert len(list(iterate_minibatches(X, y, np.int64(2), shuffle=False))) == 2
