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


def _with_fast(layer, fast):
    layer.fast = fast
    return layer


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("c_in, c_out, k, stride, padding, hw", [
    (1, 3, 3, 1, 0, (6, 7)),    # a first layer (fast: thin rows, transposed im2col)
    (3, 2, 3, 1, 1, (5, 5)),
    (6, 4, 3, 1, 0, (6, 5)),    # fast: KW*C_in >= 16, row-major im2col, stride-1 input gradient
    (6, 4, 3, 2, 1, (7, 6)),    # stride 2 (fast: the general fold)
    (8, 2, (2, 3), 3, 2, (7, 8)),
    (2, 3, 1, 1, 0, (3, 4)),
])
def test_conv2d_gradients(c_in, c_out, k, stride, padding, hw, fast):
    rng = np.random.default_rng(1)
    conv = _f64(Conv2d(c_in, c_out, k, stride=stride, padding=padding, rng=2))
    _check_layer(_with_fast(conv, fast), rng.standard_normal((2, c_in) + hw), rng)
    conv = _f64(Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False, rng=2))
    _check_layer(_with_fast(conv, fast), rng.standard_normal((2, c_in) + hw), rng)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("k, stride, padding, hw", [
    (2, None, 0, (6, 6)), (2, None, 0, (5, 7)), (3, 2, 1, (7, 6)), (3, 1, 0, (5, 5)),
    ((2, 3), 2, 1, (6, 7)),
])
def test_maxpool_gradients(k, stride, padding, hw, fast):
    rng = np.random.default_rng(2)
    x = rng.permutation(2 * 3 * hw[0] * hw[1]).reshape((2, 3) + hw) * 0.1  # distinct values
    _check_layer(_with_fast(MaxPool2d(k, stride, padding), fast), x.astype(np.float64), rng)


def test_layers_default_to_fast_and_a_cache_remembers_its_kernels():
    """A cache made by one path is read by the same path's backward, even if ``fast`` changes
    in between."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 6, 6))
    for layer in (_f64(Conv2d(3, 4, 3, rng=1)), MaxPool2d(2), ReLU()):
        assert layer.fast is True
        dout = rng.standard_normal(layer.forward(x, train=True).shape)
        dx_fast = layer.backward(dout)
        layer.fast = False
        dx_ref = layer.backward(dout)  # the cache came from the fast kernels
        np.testing.assert_allclose(dx_ref, dx_fast, rtol=1e-12, atol=1e-12)
        layer.forward(x, train=True)
        layer.fast = True
        np.testing.assert_allclose(layer.backward(dout), dx_fast, rtol=1e-12, atol=1e-12)


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


@pytest.mark.parametrize("fast", [True, False])
def test_layers_keep_float32(fast):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    for layer in (Conv2d(3, 4, 3, rng=1), MaxPool2d(2), MaxPool2d(3, 2, 1), ReLU(),
                  Dropout(0.5, rng=1), Flatten()):
        layer.fast = fast
        out = layer.forward(x, train=True)
        assert out.dtype == np.float32, layer
        dx = layer.backward(np.ones_like(out))
        assert dx.dtype == np.float32, layer
        assert all(g.dtype == np.float32 for g in layer.grads.values())


@pytest.mark.parametrize("fast", [True, False])
def test_layers_do_not_modify_inputs_and_return_fresh_arrays(fast):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    x0 = x.copy()
    for layer in (Conv2d(3, 4, 3, padding=1, rng=1), MaxPool2d(2), ReLU(), Dropout(0.5, rng=1)):
        layer.fast = fast
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
def test_dropout_mask_is_the_float_draw_compared_with_p(dtype):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(dtype)
    out, mask = F.dropout_forward(x, 0.4, np.random.default_rng(11))
    u = np.random.default_rng(11).random(x.shape, dtype=dtype)
    expected_mask = (u >= dtype(0.4)) * dtype(1 / 0.6)
    assert mask.dtype == dtype and out.dtype == dtype
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(out, x * expected_mask)
    np.testing.assert_array_equal(F.dropout_backward(x, mask), x * expected_mask)
