"""keep_mask is bit-for-bit ``rng.random(shape, dtype) >= p`` and leaves the generator in the
same state (so every later draw is unchanged)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn import functional as F
from tinyprune.nn.bernoulli import keep_mask

GENERATORS = [np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox,
              np.random.SFC64]


def _same_state(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _check(bit_generator, seed, already_drawn, shape, p, dtype):
    ref = np.random.Generator(bit_generator(seed))
    fast = np.random.Generator(bit_generator(seed))
    ref.random(already_drawn, dtype=np.float32)  # an odd count leaves half a word buffered
    fast.random(already_drawn, dtype=np.float32)
    expected = ref.random(shape, dtype=dtype) >= dtype(p)
    got = keep_mask(fast, shape, p, dtype)
    assert got.dtype == np.bool_ and got.shape == tuple(shape)
    np.testing.assert_array_equal(got, expected)
    assert _same_state(fast.bit_generator.state, ref.bit_generator.state)
    np.testing.assert_array_equal(fast.random(5, dtype=np.float32), ref.random(5, dtype=np.float32))
    np.testing.assert_array_equal(fast.random(3), ref.random(3))


@pytest.mark.parametrize("bit_generator", GENERATORS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("already_drawn", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", [(0,), (1,), (5,), (6,), (3, 7), (2, 3, 4, 5)])
def test_keep_mask_is_the_float_draw_compared_with_p(bit_generator, dtype, already_drawn, shape):
    for seed, p in enumerate([0.0, 0.25, 0.5, 1e-9, 0.3, 0.9999999]):
        _check(bit_generator, seed, already_drawn, shape, p, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_mask_at_the_edges_of_p(dtype):
    below_one = float(np.nextafter(dtype(1), dtype(0)))  # the largest p < 1 in this dtype
    # (1 - 1e-12 is below 1 but rounds to 1.0 in float32: nothing is kept)
    tiny = float(np.finfo(dtype).tiny)
    for p in (below_one, 1 - 1e-12, tiny, 0.0, 2.0 ** -24, 2.0 ** -24 * 3, 0.5 + 2.0 ** -30):
        _check(np.random.PCG64, 7, 1, (4, 50), p, dtype)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), already=st.integers(0, 5),
       size=st.integers(0, 300), p=st.floats(0, 1, exclude_max=True),
       double=st.booleans())
def test_keep_mask_property(seed, already, size, p, double):
    _check(np.random.PCG64, seed, already, (size,), p, np.float64 if double else np.float32)


def test_dropout_mask_is_unchanged_by_the_raw_bit_path():
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    out, scale = F.dropout_forward(x, 0.4, np.random.default_rng(11))
    u = np.random.default_rng(11).random(x.shape, dtype=np.float32)
    expected_scale = (u >= np.float32(0.4)) * np.float32(1 / 0.6)
    np.testing.assert_array_equal(scale, expected_scale)
    np.testing.assert_array_equal(out, x * expected_scale)


def test_keep_mask_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        keep_mask(np.random.RandomState(0), (3,), 0.5)
    for p in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="keep_mask: p: expected a probability in"):
            keep_mask(rng, (3,), p)
    with pytest.raises(TypeError, match="float32 or float64, got int32"):
        keep_mask(rng, (3,), 0.5, np.int32)
    with pytest.raises(ValueError, match="shape entry: expected an integer >= 0, got -1"):
        keep_mask(rng, (2, -1), 0.5)
    with pytest.raises(TypeError, match="shape entry: expected an integer"):
        keep_mask(rng, (2.5,), 0.5)
    assert keep_mask(rng, 4, 0.0).tolist() == [True] * 4  # an int shape, as rng.random takes
