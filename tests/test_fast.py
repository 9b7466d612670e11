"""The speed kernels of tinyprune.nn.fast against the reference kernels of tinyprune.nn.functional.

Bit for bit where only the memory traffic differs (max-pool, ReLU backward, the fused pool), to
float rounding where a GEMM adds in another order (the convolution: rtol 1e-12 in float64, 1e-5
in float32), and bit for bit for the convolution too on integer-valued data (every sum exact).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn import fast
from tinyprune.nn import functional as F
from tinyprune.nn.im2col import conv_output_size

SETTINGS = settings(max_examples=40, deadline=None)
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def _close(got, want, dtype, what=""):
    rtol = RTOL[dtype]
    scale = max(float(np.abs(want).max()), 1.0) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _layouts(x):
    """The same values as C-ordered NCHW and as a channels-last view."""
    return [x, np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)]


@st.composite
def conv_cases(draw):
    """Random valid convolutions: N 1-3, C_in 1-7 (both unfold layouts), kernel 1-4, stride 1-3."""
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s, p = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    kh, kw = min(kh, h + 2 * p), min(kw, w + 2 * p)  # make the kernel fit
    return (n, c_in, h, w), (c_out, c_in, kh, kw), s, p, draw(st.booleans()), draw(
        st.integers(0, 2**32 - 1))


def _conv_data(case, dtype, integers=False):
    x_shape, w_shape, s, p, bias, seed = case
    rng = np.random.default_rng(seed)
    draw = (lambda shape: rng.integers(-3, 4, size=shape)) if integers else rng.standard_normal
    x, w = draw(x_shape).astype(dtype), draw(w_shape).astype(dtype)
    b = draw(w_shape[0]).astype(dtype) if bias else None
    h_out = conv_output_size(x_shape[2], w_shape[2], s, p)
    w_out = conv_output_size(x_shape[3], w_shape[3], s, p)
    dout = draw((x_shape[0], w_shape[0], h_out, w_out)).astype(dtype)
    return x, w, b, s, p, dout


def _check_conv(case, dtype, integers):
    x, w, b, s, p, dout = _conv_data(case, dtype, integers)
    y_ref, cache_ref = F.conv2d_forward(x, w, b, s, p)
    grads_ref = F.conv2d_backward(dout, cache_ref)
    for xl in _layouts(x):
        for dl in _layouts(dout):
            y, cache = fast.conv2d_forward(xl, w, b, s, p, workspace={})
            grads = fast.conv2d_backward(dl, cache, workspace={})
            for what, got, want in zip(("out", "dx", "dw", "db"), (y, *grads), (y_ref, *grads_ref),
                                       strict=True):
                assert (got is None) == (want is None), what
                if got is None:
                    continue
                assert got.shape == want.shape and got.dtype == dtype, what
                if integers:
                    np.testing.assert_array_equal(got, want, err_msg=what)
                else:
                    _close(got, want, dtype, what)


@SETTINGS
@given(conv_cases(), st.sampled_from([np.float32, np.float64]))
def test_conv2d_equals_the_reference_to_rounding(case, dtype):
    _check_conv(case, dtype, integers=False)


@SETTINGS
@given(conv_cases(), st.sampled_from([np.float32, np.float64]))
def test_conv2d_equals_the_reference_exactly_on_integer_data(case, dtype):
    _check_conv(case, dtype, integers=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c_in, hw, c_out, k, stride, padding", [
    (8, 32, 26, 64, 3, 1, 0),  # the lecture's conv2: 1-3 images per batch chunk
    (40, 1, 28, 20, 5, 1, 0),  # LeNet-5's conv1 (a short patch row: the transposed unfold)
    (9, 6, 11, 5, 3, 2, 1),  # strided: the general fold
])
def test_conv2d_in_several_batch_chunks(n, c_in, hw, c_out, k, stride, padding, dtype):
    rng = np.random.default_rng(n)
    x = rng.integers(-2, 3, size=(n, c_in, hw, hw)).astype(dtype)
    w = rng.integers(-2, 3, size=(c_out, c_in, k, k)).astype(dtype)
    b = rng.integers(-2, 3, size=c_out).astype(dtype)
    y_ref, cache_ref = F.conv2d_forward(x, w, b, stride, padding)
    dout = rng.integers(-2, 3, size=y_ref.shape).astype(dtype)
    y, cache = fast.conv2d_forward(x, w, b, stride, padding, workspace={})
    np.testing.assert_array_equal(y, y_ref)
    for got, want in zip(fast.conv2d_backward(dout, cache), F.conv2d_backward(dout, cache_ref),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    y_inf, none = fast.conv2d_forward(x, w, b, stride, padding, train=False)
    assert none is None
    np.testing.assert_array_equal(y_inf, y_ref)
    dx, dw, db = fast.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, F.conv2d_backward(dout, cache_ref)[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c_in, hw, c_out, k, stride, padding", [
    (5, 32, 26, 64, 3, 1, 0),  # the lecture's conv2
    (3, 1, 28, 20, 5, 1, 0),  # LeNet-5's conv1 (the transposed unfold)
    (4, 2, 12, 5, 2, 2, 0),  # strided
    (7, 8, 10, 6, 3, 1, 2),  # padded
    (1, 3, 4, 2, 3, 1, 0),  # one image, a single pooling window per channel
    (80, 2, 6, 3, 3, 1, 0),  # several batch chunks
])
def test_conv_maxpool_fused_equals_reference_conv_then_pool(n, c_in, hw, c_out, k, stride,
                                                            padding, dtype):
    """Integer-valued data: every sum is exact, so the results agree bit for bit, including
    which of several tied maxima gets the gradient; random data: to float rounding."""
    rng = np.random.default_rng(n * 100 + c_in)
    for integers in (True, False):
        draw = ((lambda shape: rng.integers(-3, 4, size=shape)) if integers
                else rng.standard_normal)
        x = draw((n, c_in, hw, hw)).astype(dtype)
        w = draw((c_out, c_in, k, k)).astype(dtype)
        b = draw(c_out).astype(dtype)
        y, conv_ref = F.conv2d_forward(x, w, b, stride, padding)
        expected, pool_ref = F.maxpool2d_forward(y, 2)
        out, conv_cache, pool_cache = fast.conv2d_maxpool2x2_forward(x, w, b, stride, padding,
                                                                     workspace={})
        assert out.shape == expected.shape and out.dtype == dtype
        dout = draw(out.shape).astype(dtype)
        dy = fast.maxpool2d_backward(dout, pool_cache)
        got = (out, dy, *fast.conv2d_backward(dy, conv_cache))
        dy_ref = F.maxpool2d_backward(dout, pool_ref)
        want = (expected, dy_ref, *F.conv2d_backward(dy_ref, conv_ref))
        for what, g, e in zip(("out", "dy", "dx", "dw", "db"), got, want, strict=True):
            if integers:
                np.testing.assert_array_equal(g, e, err_msg=what)
            else:
                _close(g, e, dtype, what)
        out_inf, c1, c2 = fast.conv2d_maxpool2x2_forward(x, w, None, stride, padding, train=False)
        assert c1 is None and c2 is None
        ref_inf = F.maxpool2d_forward(F.conv2d_forward(x, w, None, stride, padding)[0], 2)[0]
        if integers:
            np.testing.assert_array_equal(out_inf, ref_inf)


def test_conv_maxpool_fused_forward_needs_an_even_output():
    x = np.zeros((1, 1, 6, 6), np.float32)
    with pytest.raises(ValueError, match="even height and width, got 5x5"):
        fast.conv2d_maxpool2x2_forward(x, np.zeros((2, 1, 2, 2), np.float32), None)


# ------------------------------------------------------------------------------------ max pool


@st.composite
def pool_cases(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    p = draw(st.integers(0, min(kh, kw) // 2))  # PyTorch: padding <= kernel / 2
    s = draw(st.sampled_from([None, 1, 2, 3]))
    h = draw(st.integers(max(1, kh - 2 * p), 9))
    w = draw(st.integers(max(1, kw - 2 * p), 9))
    if draw(st.booleans()):  # the 2x2 kernel half of the time
        kh, kw, s, p = 2, 2, 2, 0
        h, w = max(h, 2), max(w, 2)
    return (n, c, h, w), (kh, kw), s, p, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


@SETTINGS
@given(pool_cases(), st.sampled_from([np.float32, np.float64]))
def test_maxpool_equals_the_reference_bit_for_bit(case, dtype):
    shape, k, s, p, ties, seed = case
    rng = np.random.default_rng(seed)
    # small integers make ties common: the gradient must go to the same (first) maximum
    x = (rng.integers(-2, 3, size=shape) if ties else rng.standard_normal(shape)).astype(dtype)
    out_ref, cache_ref = F.maxpool2d_forward(x, k, s, p)
    dout = rng.standard_normal(out_ref.shape).astype(dtype)
    dx_ref = F.maxpool2d_backward(dout, cache_ref)
    for xl in _layouts(x):
        out, cache = fast.maxpool2d_forward(xl, k, s, p)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, out_ref)
        for dl in _layouts(dout):
            np.testing.assert_array_equal(fast.maxpool2d_backward(dl, cache), dx_ref)
        out2, none = fast.maxpool2d_forward(xl, k, s, p, train=False)
        assert none is None
        np.testing.assert_array_equal(out2, out_ref)


def test_maxpool_2x2_with_odd_sizes_several_chunks_and_ties():
    """The tiling kernel drops the last row/column of odd-sized inputs, as the reference does."""
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 5, 7), (1, 2, 4, 4), (3, 1, 2, 3), (300, 8, 12, 13)]:
        x = rng.integers(0, 2, size=shape).astype(np.float32)
        out, cache = fast.maxpool2d_forward(x, 2)
        expected, cache_ref = F.maxpool2d_forward(x, 2)
        np.testing.assert_array_equal(out, expected)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        np.testing.assert_array_equal(fast.maxpool2d_backward(dout, cache),
                                      F.maxpool2d_backward(dout, cache_ref))


# ------------------------------------------------------------------------------------------ relu


def _in_layout(a, perm):
    """An NCHW-shaped array with the values of ``a`` whose memory order is ``perm`` of NCHW."""
    return np.ascontiguousarray(a.transpose(perm)).transpose(np.argsort(perm))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dout_perm, out_perm", [
    ((0, 1, 2, 3), (0, 2, 3, 1)),  # C-ordered gradient, channels-last activation (pool -> relu)
    ((0, 2, 3, 1), (0, 1, 2, 3)),  # the other way round
    ((0, 2, 3, 1), (0, 2, 3, 1)),  # same layout
    ((0, 1, 2, 3), (0, 1, 2, 3)),
])
def test_relu_backward_equals_the_reference_in_any_layouts(dout_perm, out_perm, dtype):
    rng = np.random.default_rng(9)
    nchw = (3, 4, 5, 6)
    dout = _in_layout(rng.standard_normal(nchw).astype(dtype), dout_perm)
    out = _in_layout(F.relu_forward(rng.standard_normal(nchw).astype(dtype))[0], out_perm)
    out[0, 0, 0, :2] = (0.0, -0.0)
    dout[0, 0, 0, :3] = (np.nan, -1.0, np.inf)  # NaN * 0 stays NaN, as in dout * [out > 0]
    dx = fast.relu_backward(dout, out)
    expected = F.relu_backward(dout, out)
    assert dx.dtype == dtype and dx.shape == nchw
    np.testing.assert_array_equal(dx, expected)
    assert np.array_equal(np.signbit(dx), np.signbit(expected))  # -0.0 where dout < 0 is killed
    assert not np.shares_memory(dx, dout)
    strided = rng.standard_normal((3, 8, 5, 6)).astype(dtype)[:, ::2]  # not one block
    np.testing.assert_array_equal(fast.relu_backward(strided, out), F.relu_backward(strided, out))


# ------------------------------------------------------------------------- buffers and layouts


def test_kernels_do_not_modify_inputs_and_results_do_not_alias_the_workspace():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    copies = [a.copy() for a in (x, w, b)]
    ws = {}
    out1, cache = fast.conv2d_forward(x, w, b, 1, 1, workspace=ws)
    first = out1.copy()
    dout = rng.standard_normal(out1.shape).astype(np.float32)
    dout0 = dout.copy()
    dx, dw, db = fast.conv2d_backward(dout, cache, workspace=ws)
    fast.conv2d_forward(x + 1, w, b, 1, 1, workspace=ws)  # reuses the workspace
    np.testing.assert_array_equal(out1, first)
    for a, a0 in zip((x, w, b, dout), copies + [dout0], strict=True):
        np.testing.assert_array_equal(a, a0)
    for arr in (out1, dx):
        assert not any(np.may_share_memory(arr, buf) for buf in ws.values())


def test_outputs_are_channels_last_views_with_nchw_shape():
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 5)).astype(np.float32)
    out, _ = fast.conv2d_forward(x, np.ones((4, 3, 3, 3), np.float32), None)
    assert out.shape == (2, 4, 4, 3) and out.transpose(0, 2, 3, 1).flags.c_contiguous
    pooled, _ = fast.maxpool2d_forward(out, 2)
    assert pooled.shape == (2, 4, 2, 1) and pooled.transpose(0, 2, 3, 1).flags.c_contiguous
    flat, _ = F.flatten_forward(out)  # C order of the NCHW shape, like torch.flatten(x, 1)
    np.testing.assert_array_equal(flat, np.ascontiguousarray(out).reshape(2, -1))


def test_patch_view_and_to_nhwc():
    x = np.arange(2 * 2 * 4 * 5, dtype=float).reshape(2, 2, 4, 5)
    xp = fast.to_nhwc(x, 1)
    assert xp.shape == (2, 6, 7, 2) and xp.flags.c_contiguous
    np.testing.assert_array_equal(xp[:, 1:5, 1:6], x.transpose(0, 2, 3, 1))
    assert xp[:, 0].sum() == 0 and xp[:, :, -1].sum() == 0
    v = fast.patch_view(xp, (3, 2), 2, (2, 3))
    assert v.shape == (2, 2, 3, 3, 2, 2) and not v.flags.writeable
    np.testing.assert_array_equal(v[1, 1, 2, 2, 1], xp[1, 2 * 1 + 2, 2 * 2 + 1])
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert np.shares_memory(fast.to_nhwc(nhwc), nhwc)  # already channels-last: a view
    with pytest.raises(ValueError, match="without copying"):
        fast.reshape_view(np.zeros((4, 6)).T, (24,))
