"""Layer classes: float64 gradient checks, input validation, buffers and caches."""

import numpy as np
import pytest

from tinyprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, lecture_net
from tinyprune.nn import functional as F
from tinyprune.nn.gradcheck import numerical_gradient, relative_error
from tinyprune.nn.layers import layer_from_spec


def _check_layer(layer, x, rng, tol=1e-6):
    """Check d(sum(out * R))/d(input) and /d(every parameter) of a float64 layer."""
    out = layer.forward(x, train=True)
    r = rng.standard_normal(out.shape)
    dx = layer.backward(r)

    def objective(_):
        return float(np.sum(layer.forward(x, train=True) * r))

    errors = {"input": relative_error(dx, numerical_gradient(objective, x))}
    for name, p in layer.params.items():
        errors[name] = relative_error(layer.grads[name], numerical_gradient(objective, p))
    assert max(errors.values()) < tol, errors
    return errors


def _f64(layer):
    layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
    layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    return layer


def test_linear_gradients():
    rng = np.random.default_rng(0)
    _check_layer(_f64(Linear(5, 4, rng=1)), rng.standard_normal((3, 5)), rng)
    _check_layer(_f64(Linear(5, 4, bias=False, rng=1)), rng.standard_normal((3, 5)), rng)


@pytest.mark.parametrize("c_in, c_out, k, stride, padding, hw", [
    (1, 3, 3, 1, 0, (6, 7)),    # a first layer (thin rows: transposed im2col)
    (3, 2, 3, 1, 1, (5, 5)),
    (6, 4, 3, 1, 0, (6, 5)),    # KW*C_in >= 16: row-major im2col, stride-1 input gradient
    (6, 4, 3, 2, 1, (7, 6)),    # stride 2: the general fold
    (8, 2, (2, 3), 3, 2, (7, 8)),
    (2, 3, 1, 1, 0, (3, 4)),
])
def test_conv2d_gradients(c_in, c_out, k, stride, padding, hw):
    rng = np.random.default_rng(1)
    conv = _f64(Conv2d(c_in, c_out, k, stride=stride, padding=padding, rng=2))
    _check_layer(conv, rng.standard_normal((2, c_in) + hw), rng)
    conv = _f64(Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False, rng=2))
    _check_layer(conv, rng.standard_normal((2, c_in) + hw), rng)


@pytest.mark.parametrize("k, stride, padding, hw", [
    (2, None, 0, (6, 6)), (2, None, 0, (5, 7)), (3, 2, 1, (7, 6)), (3, 1, 0, (5, 5)),
    ((2, 3), 2, 1, (6, 7)),
])
def test_maxpool_gradients(k, stride, padding, hw):
    rng = np.random.default_rng(2)
    x = rng.permutation(2 * 3 * hw[0] * hw[1]).reshape((2, 3) + hw) * 0.1  # distinct values
    _check_layer(MaxPool2d(k, stride, padding), x.astype(np.float64), rng)


def test_relu_gradients_away_from_zero():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # the kink is not differentiable
    _check_layer(ReLU(), x, rng)


def test_dropout_gradients_with_a_fixed_mask():
    rng = np.random.default_rng(4)
    layer = Dropout(0.4, rng=5)
    x = rng.standard_normal((4, 6))
    state = layer.rng.bit_generator.state
    out = layer.forward(x, train=True)
    r = rng.standard_normal(out.shape)
    dx = layer.backward(r)

    def objective(_):
        layer.rng.bit_generator.state = state  # the same mask on every evaluation
        return float(np.sum(layer.forward(x, train=True) * r))

    assert relative_error(dx, numerical_gradient(objective, x)) < 1e-8
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.6)
    assert 0 < kept.sum() < x.size
    np.testing.assert_array_equal(layer.forward(x, train=False), x)  # identity at inference


def test_dropout_is_reproducible_and_drops_about_p():
    x = np.ones((200, 500), np.float32)
    a = Dropout(0.25, rng=7).forward(x, train=True)
    b = Dropout(0.25, rng=7).forward(x, train=True)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert abs((a == 0).mean() - 0.25) < 0.01
    np.testing.assert_allclose(np.unique(a), [0.0, 1 / 0.75], rtol=1e-6)


def test_flatten_gradients_and_order():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 2, 2))
    _check_layer(Flatten(), x, rng)
    np.testing.assert_array_equal(Flatten().forward(x), x.reshape(2, -1))


def test_layers_keep_float32():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    for layer in (Conv2d(3, 4, 3, rng=1), MaxPool2d(2), MaxPool2d(3, 2, 1), ReLU(),
                  Dropout(0.5, rng=1), Flatten()):
        out = layer.forward(x, train=True)
        assert out.dtype == np.float32, layer
        dx = layer.backward(np.ones_like(out))
        assert dx.dtype == np.float32, layer
        assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_layers_do_not_modify_inputs_and_return_fresh_arrays():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    x0 = x.copy()
    for layer in (Conv2d(3, 4, 3, padding=1, rng=1), MaxPool2d(2), ReLU(), Dropout(0.5, rng=1)):
        out = layer.forward(x, train=True)
        out0 = out.copy()
        dout = np.ones_like(out)
        dx = layer.backward(dout)
        dx0 = dx.copy()
        layer.forward(x * 2, train=True)  # a second call must not overwrite earlier results
        layer.backward(dout * 3)
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(out, out0)
        np.testing.assert_array_equal(dx, dx0)
        np.testing.assert_array_equal(dout, 1)


def test_backward_needs_a_training_forward():
    conv = Conv2d(1, 2, 3, rng=0)
    x = np.zeros((1, 1, 5, 5), np.float32)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        conv.backward(np.zeros((1, 2, 3, 3), np.float32))
    conv.forward(x, train=True)
    conv.forward(x, train=False)  # an inference pass drops the cache
    with pytest.raises(RuntimeError, match="conv|Conv2d"):
        conv.backward(np.zeros((1, 2, 3, 3), np.float32))


def test_conv_skips_input_gradient_on_request():
    conv = Conv2d(2, 3, 3, rng=0)
    conv.forward(np.ones((2, 2, 5, 5), np.float32), train=True)
    assert conv.backward(np.ones((2, 3, 3, 3), np.float32), need_dx=False) is None
    assert conv.grads["weight"].shape == (3, 2, 3, 3) and conv.grads["bias"].shape == (3,)


# ----------------------------------------------------------------------------- bad input


def test_wrong_feature_count_names_layer_and_shapes():
    net = lecture_net()
    with pytest.raises(ValueError, match=r"fc1.*\(N, 9216\).*\(2, 784\)"):
        net["fc1"].forward(np.zeros((2, 784), np.float32))


def test_integer_and_non_array_input():
    with pytest.raises(TypeError, match=r"lecture_net input.*float32 or float64.*int64"):
        lecture_net().forward(np.zeros((1, 1, 28, 28), np.int64))
    with pytest.raises(TypeError, match="Linear.*int"):
        Linear(3, 2).forward(np.zeros((1, 3), int))
    with pytest.raises(TypeError, match="numpy.ndarray.*list"):
        ReLU().forward([1.0, -1.0])


def test_nan_input_is_rejected_by_the_model():
    x = np.zeros((1, 1, 28, 28), np.float32)
    x[0, 0, 3, 4] = np.nan
    with pytest.raises(ValueError, match="lecture_net input.*NaN"):
        lecture_net().forward(x)


def test_wrong_channel_count_names_layer():
    with pytest.raises(ValueError, match=r"conv2.*32 input channels.*\(2, 3, 26, 26\)"):
        lecture_net()["conv2"].forward(np.zeros((2, 3, 26, 26), np.float32))
    with pytest.raises(ValueError, match="Conv2d.*4-D"):
        Conv2d(1, 2, 3).forward(np.zeros((1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2d(1, 2, 5).forward(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2d(4).forward(np.zeros((1, 1, 3, 3), np.float32))


def test_float64_input_into_float32_model():
    with pytest.raises(TypeError, match=r"conv1.*float64.*float32.*set_dtype"):
        lecture_net().forward(np.zeros((1, 1, 28, 28), np.float64))


@pytest.mark.parametrize("make, match", [
    (lambda: Conv2d(1, 2, 3, stride=-1), "stride.*>= 1.*-1"),
    (lambda: Conv2d(1, 2, 0), "kernel_size.*>= 1.*0"),
    (lambda: Conv2d(1, 2, (3, 0)), "kernel_size"),
    (lambda: Conv2d(1, 2, 3, padding=-1), "padding"),
    (lambda: Conv2d(0, 2, 3), "in_channels"),
    (lambda: Linear(0, 3), "in_features"),
    (lambda: Linear(3, -2), "out_features"),
    (lambda: MaxPool2d(0), "kernel_size"),
    (lambda: MaxPool2d(2, stride=0), "stride"),
    (lambda: MaxPool2d(2, padding=2), "padding.*half"),
    (lambda: Dropout(1.0), r"probability in \[0, 1\)"),
    (lambda: Dropout(-0.1), "probability"),
])
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_constructor_types():
    with pytest.raises(TypeError, match="stride.*integer.*1.5"):
        Conv2d(1, 2, 3, stride=1.5)
    with pytest.raises(TypeError, match="Dropout: rng"):
        Dropout(0.5, rng="seed")


def test_layer_spec_round_trip():
    for layer in (Linear(3, 2, bias=False), Conv2d(2, 4, (3, 2), stride=2, padding=1),
                  MaxPool2d(3, 2, 1), ReLU(), Dropout(0.3), Flatten()):
        again = layer_from_spec(layer.spec())
        assert again.spec() == layer.spec()
        assert {k: v.shape for k, v in again.params.items()} == \
            {k: v.shape for k, v in layer.params.items()}
    with pytest.raises(ValueError, match="unknown layer type"):
        layer_from_spec({"type": "Conv3d"})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, perm", [
    ((4, 26, 26, 32), (0, 3, 1, 2)),  # channels-last memory behind an NCHW view
    ((4, 5, 6, 70), (0, 1, 2, 3)),  # C-contiguous
    ((1, 1, 9, 80), (0, 1, 2, 3)),  # leading axes of size 1
    ((3, 1, 100), (1, 0, 2)),  # size-1 axis moved first
    ((0, 5, 70), (0, 1, 2)),  # empty batch
    ((2, 200), (1, 0)),  # transposed matrix
])
def test_relu_forward_matches_maximum_in_any_layout(shape, perm, dtype):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape).astype(dtype).transpose(perm)
    if x.size:
        x.flat[0] = np.nan  # propagates, as np.maximum does
        x.flat[-1] = 0.0
    out, cache = F.relu_forward(x)
    assert out.dtype == dtype and out.shape == x.shape and cache is out
    assert out.strides == np.maximum(x, dtype(0)).strides  # the input's memory layout is kept
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    strided = rng.standard_normal((4, 8, 10, 10)).astype(dtype)[:, ::2]  # not one block
    np.testing.assert_array_equal(F.relu_forward(strided)[0], np.maximum(strided, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dout_perm, out_perm", [
    ((0, 1, 2, 3), (0, 3, 1, 2)),  # C-ordered gradient, channels-last activation (pool -> relu)
    ((0, 3, 1, 2), (0, 1, 2, 3)),  # the other way round
    ((0, 3, 1, 2), (0, 3, 1, 2)),  # same layout
])
def test_relu_backward_is_exact_across_memory_layouts(dout_perm, out_perm, dtype):
    rng = np.random.default_rng(9)
    nchw = (3, 4, 5, 6)
    def in_layout(a, perm):  # an NCHW-shaped view whose memory order is `perm` of NCHW
        inv = np.argsort(perm)
        return np.ascontiguousarray(a.transpose(perm)).transpose(inv)
    dout = in_layout(rng.standard_normal(nchw).astype(dtype), dout_perm)
    out = in_layout(np.maximum(rng.standard_normal(nchw), 0).astype(dtype), out_perm)
    out[0, 0, 0, :2] = (0.0, -0.0)
    dout[0, 0, 0, :3] = (np.nan, -1.0, np.inf)  # NaN * 0 stays NaN, as in dout * [out > 0]
    dx = F.relu_backward(dout, out)
    expected = dout * (out > 0)
    assert dx.dtype == dtype and dx.shape == nchw
    np.testing.assert_array_equal(dx, expected)
    assert np.array_equal(np.signbit(dx), np.signbit(expected))  # -0.0 where dout < 0 is killed
    assert not np.shares_memory(dx, dout)


def test_dropout_forward_is_the_same_for_any_input_layout():
    x = np.random.default_rng(10).standard_normal((4, 6, 5, 7)).astype(np.float32)
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last
    out_c, mask_c = F.dropout_forward(x, 0.25, np.random.default_rng(3))
    out_cl, mask_cl = F.dropout_forward(x_cl, 0.25, np.random.default_rng(3))
    np.testing.assert_array_equal(out_cl, out_c)
    np.testing.assert_array_equal(mask_cl, mask_c)
    assert out_cl.flags.c_contiguous
    np.testing.assert_array_equal(x_cl, x)  # the input is not modified


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c_in, hw, c_out, k, stride, padding", [
    (5, 32, 26, 64, 3, 1, 0),  # the lecture's conv2
    (3, 1, 28, 20, 5, 1, 0),  # LeNet-5's conv1 (a short patch row: the transposed unfold)
    (4, 2, 12, 5, 2, 2, 0),  # strided
    (7, 8, 10, 6, 3, 1, 2),  # padded
    (1, 3, 4, 2, 3, 1, 0),  # one image, a single pooling window per channel
])
def test_conv_maxpool_fused_forward_equals_the_two_steps(n, c_in, hw, c_out, k, stride, padding,
                                                        dtype):
    """Integer-valued data: every GEMM sum is exact, so the results must agree bit for bit,
    including which of several tied maxima gets the gradient."""
    rng = np.random.default_rng(n * 100 + c_in)
    x = rng.integers(-3, 4, size=(n, c_in, hw, hw)).astype(dtype)
    w = rng.integers(-2, 3, size=(c_out, c_in, k, k)).astype(dtype)
    b = rng.integers(-2, 3, size=c_out).astype(dtype)
    y, conv_cache = F.conv2d_forward(x, w, b, stride, padding)
    expected, pool_cache = F.maxpool2d_forward(y, 2)
    out, conv_cache2, pool_cache2 = F.conv2d_maxpool2x2_forward(x, w, b, stride, padding,
                                                                 workspace={})
    assert out.shape == expected.shape and out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    assert pool_cache2[:2] == pool_cache[:2] and pool_cache2[3] == pool_cache[3]
    for got, want in zip(pool_cache2[2], pool_cache[2], strict=True):
        np.testing.assert_array_equal(got, want)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dy = F.maxpool2d_backward(dout, pool_cache2)
    np.testing.assert_array_equal(dy, F.maxpool2d_backward(dout, pool_cache))
    for got, want in zip(F.conv2d_backward(dy, conv_cache2), F.conv2d_backward(dy, conv_cache),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    out_inf, c1, c2 = F.conv2d_maxpool2x2_forward(x, w, None, stride, padding, train=False)
    assert c1 is None and c2 is None
    np.testing.assert_array_equal(out_inf, F.maxpool2d_forward(
        F.conv2d_forward(x, w, None, stride, padding)[0], 2)[0])


def test_conv_maxpool_fused_forward_needs_an_even_output():
    x = np.zeros((1, 1, 6, 6), np.float32)
    with pytest.raises(ValueError, match="even height and width, got 5x5"):
        F.conv2d_maxpool2x2_forward(x, np.zeros((2, 1, 2, 2), np.float32), None)
