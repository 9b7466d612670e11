"""im2col / col2im and the reference conv and max-pool kernels against their naive loop twins."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn import functional as F
from tinyprune.nn.im2col import col2im, col2im_naive, conv_output_size, im2col, im2col_naive

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def geometries(draw):
    """Random valid (x_shape, kernel, stride, padding): N 1-3, C 1-3, H/W 1-9, kernel 1-4."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s, p = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    if conv_output_size(h, kh, s, p) < 1 or conv_output_size(w, kw, s, p) < 1:
        kh, kw = min(kh, h + 2 * p), min(kw, w + 2 * p)  # make the kernel fit
    return (n, c, h, w), (kh, kw), s, p, draw(st.integers(0, 2**32 - 1))


def _layouts(x):
    """The same values as C-ordered NCHW and as a channels-last view."""
    return [x, np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)]


@SETTINGS
@given(geometries())
def test_im2col_matches_naive(g):
    shape, k, s, p, seed = g
    x = np.random.default_rng(seed).standard_normal(shape)
    expected = im2col_naive(x, k, s, p)
    for xl in _layouts(x):
        np.testing.assert_array_equal(im2col(xl, k, s, p), expected)


@SETTINGS
@given(geometries())
def test_col2im_matches_naive_and_is_the_adjoint(g):
    shape, k, s, p, seed = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, p)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, shape, k, s, p)
    assert back.shape == shape
    np.testing.assert_allclose(back, col2im_naive(c, shape, k, s, p), rtol=1e-12, atol=1e-12)
    # <im2col(x), c> == <x, col2im(c)>
    lhs, rhs = np.sum(cols * c), np.sum(x * back)
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs))


@SETTINGS
@given(geometries(), st.integers(1, 3), st.booleans())
def test_conv2d_forward_and_backward_match_their_naive_twins(g, c_out, bias):
    shape, k, s, p, seed = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1]) + k)
    b = rng.standard_normal(c_out) if bias else None
    expected = F.conv2d_naive(x, w, b, s, p)
    dout = rng.standard_normal(expected.shape)
    dx_e, dw_e, db_e = F.conv2d_backward_naive(dout, x, w, s, p)
    for xl in _layouts(x):
        out, cache = F.conv2d_forward(xl, w, b, s, p)
        assert out.shape == expected.shape
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
        for dl in _layouts(dout):
            dx, dw, db = F.conv2d_backward(dl, cache)
            np.testing.assert_allclose(dx, dx_e, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(dw, dw_e, rtol=1e-10, atol=1e-10)
            if bias:
                np.testing.assert_allclose(db, db_e, rtol=1e-10, atol=1e-10)
            else:
                assert db is None
        assert F.conv2d_backward(dout, cache, need_dx=False)[0] is None


def test_reference_conv_is_literally_im2col_times_the_weight_matrix():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((5, 3, 3, 2))
    b = rng.standard_normal(5)
    out, _ = F.conv2d_forward(x, w, b, 2, 1)
    rows = im2col(x, (3, 2), 2, 1) @ w.reshape(5, -1).T + b  # (N*H_out*W_out, C_out)
    np.testing.assert_array_equal(out, rows.reshape(2, 4, 4, 5).transpose(0, 3, 1, 2))


def test_conv2d_backward_naive_by_hand():
    """A one-pixel input under a 2x2 kernel of ones: counts that can be checked on paper."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 2.0
    w = np.ones((1, 1, 2, 2))
    dx, dw, db = F.conv2d_backward_naive(np.ones((1, 1, 2, 2)), x, w)
    np.testing.assert_array_equal(dw[0, 0], [[2.0, 2.0], [2.0, 2.0]])  # every output saw it
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])  # overlaps
    np.testing.assert_array_equal(db, [4.0])


@st.composite
def pool_geometries(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    p = draw(st.integers(0, min(kh, kw) // 2))  # PyTorch: padding <= kernel / 2
    s = draw(st.sampled_from([None, 1, 2, 3]))
    h = draw(st.integers(max(1, kh - 2 * p), 9))
    w = draw(st.integers(max(1, kw - 2 * p), 9))
    return (n, c, h, w), (kh, kw), s, p, draw(st.integers(0, 2**32 - 1))


@SETTINGS
@given(pool_geometries(), st.booleans())
def test_maxpool_matches_naive_including_ties(g, ties):
    shape, k, s, p, seed = g
    rng = np.random.default_rng(seed)
    # small integers make ties common: the gradient must go to the first maximum (row-major)
    x = rng.integers(-2, 3, size=shape).astype(float) if ties else rng.standard_normal(shape)
    expected, argmax = F.maxpool2d_naive(x, k, s, p)
    dout = rng.standard_normal(expected.shape)
    dx_expected = F.maxpool2d_backward_naive(dout, shape, argmax)
    for xl in _layouts(x):
        out, cache = F.maxpool2d_forward(xl, k, s, p)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_allclose(F.maxpool2d_backward(dout, cache), dx_expected, atol=1e-12)


def test_maxpool_tie_goes_to_first_maximum_in_row_major_order():
    # windows whose maxima tie in different places; the first in (row, column) order wins
    x = np.array([[[[0, 5, 5, 0],
                    [5, 5, 0, 5]]]], dtype=np.float64)  # (1, 1, 2, 4): two 2x2 windows
    _, cache = F.maxpool2d_forward(x, 2)
    dx = F.maxpool2d_backward(np.ones((1, 1, 1, 2)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0, 1, 1, 0], [0, 0, 0, 0]])


def test_im2col_validation():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(TypeError, match="float32 or float64"):
        im2col(x.astype(int), 3)
    with pytest.raises(ValueError, match="does not fit"):
        im2col(x, 5)
    with pytest.raises(ValueError, match="stride"):
        im2col(x, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        im2col(x, 3, padding=-1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        im2col(np.zeros((2, 4, 4)), 3)
    with pytest.raises(ValueError, match="cols must have shape"):
        col2im(np.zeros((4, 17)), x.shape, 3)
