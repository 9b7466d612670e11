"""Tests for tinyprune.nn.gradcheck: it passes right gradients and catches wrong ones."""

import numpy as np
import pytest

from tinyprune.nn import functional as F
from tinyprune.nn.gradcheck import (
    check_function_gradient,
    check_model_gradients,
    numerical_gradient,
    relative_error,
)
from tinyprune.nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from tinyprune.nn.model import Sequential


def test_numerical_gradient_of_simple_functions_and_restores_x():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    g = numerical_gradient(lambda t: np.sum(t**3), x)
    assert relative_error(g, 3 * x0**2) < 1e-8
    np.testing.assert_array_equal(x, x0)  # restored bit for bit
    g = numerical_gradient(lambda t: np.sin(t).sum(), x)
    assert relative_error(g, np.cos(x0)) < 1e-8
    dout = rng.standard_normal((3, 4))
    g = numerical_gradient(np.tanh, x, dout=dout)
    assert relative_error(g, dout * (1 - np.tanh(x0) ** 2)) < 1e-8


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.arange(4.0)
    x0 = x.copy()

    def f(t):
        if t[1] != 1.0:
            raise RuntimeError("boom")
        return float(t.sum())

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, x0)


def test_numerical_gradient_subset_and_errors():
    x = np.arange(6.0).reshape(2, 3)
    g = numerical_gradient(lambda t: np.sum(t**2), x, indices=[(0, 1), (1, 2)])
    expected = np.zeros((2, 3))
    expected[0, 1], expected[1, 2] = 2.0, 10.0
    np.testing.assert_allclose(g, expected, rtol=1e-8)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(np.sum, x.astype(np.float32))
    with pytest.raises(ValueError, match="scalar"):
        numerical_gradient(lambda t: t * 2, x)
    with pytest.raises(ValueError, match="eps"):
        numerical_gradient(np.sum, x, eps=0.0)


def test_relative_error_formula():
    a = np.array([1.0, 0.0, 2.0])
    b = np.array([1.1, 0.0, 2.0])
    assert relative_error(a, b) == pytest.approx(0.1 / 2.1)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error([1e-12], [0.0]) == pytest.approx(1e-4)  # floor 1e-8
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        relative_error(np.zeros(2), np.zeros(3))


def _square_forward(x, w):
    return (x * w) ** 2, (x, w)


def _square_backward_right(dout, cache):
    x, w = cache
    return dout * 2 * x * w**2, dout * 2 * w * x**2


def _square_backward_wrong(dout, cache):
    x, w = cache
    return dout * 2 * x * w**2, dout * w * x**2  # factor 2 forgotten in dw


def test_check_function_gradient_passes_right_and_catches_wrong():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x0 = x.copy()
    err = check_function_gradient(_square_forward, _square_backward_right, [x, w])
    assert set(err) == {0, 1} and max(err.values()) < 1e-6
    err = check_function_gradient(_square_forward, _square_backward_wrong, [x, w])
    assert err[0] < 1e-6 and err[1] > 0.1
    np.testing.assert_array_equal(x, x0)
    err = check_function_gradient(_square_forward, _square_backward_right, {"x": x, "w": w})
    assert set(err) == {"x", "w"}


def test_check_function_gradient_on_engine_kernels():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    err = check_function_gradient(
        lambda x, w, b: F.conv2d_forward(x, w, b, 1, 1), F.conv2d_backward, [x, w, b])
    assert max(err.values()) < 1e-6
    err = check_function_gradient(lambda x: F.maxpool2d_forward(x, 2), F.maxpool2d_backward,
                                  [x])
    assert err[0] < 1e-6
    y = rng.integers(0, 4, size=2)
    from tinyprune.nn.losses import softmax_cross_entropy_backward, softmax_cross_entropy_forward
    err = check_function_gradient(
        softmax_cross_entropy_forward, lambda d, c: softmax_cross_entropy_backward(c) * d,
        [rng.standard_normal((2, 4)), y], wrt=[0])
    assert err[0] < 1e-7


def test_check_function_gradient_validation():
    x = np.ones((2, 2))
    with pytest.raises(TypeError, match="float64"):
        check_function_gradient(_square_forward, _square_backward_right,
                                [x.astype(np.float32), x])
    with pytest.raises(ValueError, match="wrt"):
        check_function_gradient(_square_forward, _square_backward_right, [x, x], wrt=[2])
    with pytest.raises(ValueError, match="2 gradients, expected 1"):
        check_function_gradient(_square_forward, _square_backward_right, [x, x], wrt=[0])


def _mlp(dtype=np.float64):
    m = Sequential([("fc1", Linear(5, 8, rng=1)), ("relu1", ReLU()), ("fc2", Linear(8, 3, rng=2))])
    return m.set_dtype(dtype)


def test_check_model_gradients_mlp_and_cnn():
    rng = np.random.default_rng(3)
    m = _mlp()
    x, y = rng.standard_normal((4, 5)), rng.integers(0, 3, size=4)
    before = {k: v.copy() for k, v in m.params.items()}
    err = check_model_gradients(m, x, y)
    assert set(err) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "input"}
    assert max(err.values()) < 1e-6
    for k, v in m.params.items():
        np.testing.assert_array_equal(v, before[k])
    cnn = Sequential([("conv1", Conv2d(1, 2, 3, padding=1, rng=4)), ("relu1", ReLU()),
                      ("pool1", MaxPool2d(2)), ("flat", Flatten()), ("drop", Dropout(0.0)),
                      ("fc1", Linear(2 * 3 * 3, 3, rng=5))]).set_dtype(np.float64)
    x = rng.standard_normal((2, 1, 6, 6))
    err = check_model_gradients(cnn, x, rng.integers(0, 3, size=2), max_checks_per_param=10,
                                rng=0)
    assert max(err.values()) < 1e-6


def test_check_model_gradients_catches_a_wrong_backward():
    class BadLinear(Linear):
        def backward(self, dout, need_dx=True):
            dx = super().backward(dout, need_dx)
            self.grads["weight"] = self.grads["weight"] * 1.01
            return dx

    m = Sequential([("fc1", BadLinear(5, 4, rng=1)), ("relu1", ReLU()),
                    ("fc2", Linear(4, 3, rng=2))]).set_dtype(np.float64)
    rng = np.random.default_rng(4)
    err = check_model_gradients(m, rng.standard_normal((3, 5)), rng.integers(0, 3, size=3))
    assert err["fc1.weight"] > 1e-3
    assert err["fc2.weight"] < 1e-6


def test_check_model_gradients_requires_float64():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 5)), np.array([0, 1])
    with pytest.raises(TypeError, match="float64.*7 significant digits"):
        check_model_gradients(_mlp(np.float32), x, y)
    with pytest.raises(TypeError, match="float64"):
        check_model_gradients(_mlp(), x.astype(np.float32), y)
    with pytest.raises(ValueError, match="fc9.weight"):
        check_model_gradients(_mlp(), x, y, params=["fc9.weight"])


def test_check_model_gradients_subset_is_deterministic():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((3, 5)), rng.integers(0, 3, size=3)
    e1 = check_model_gradients(_mlp(), x, y, params=["fc1.weight"], max_checks_per_param=5,
                               rng=7)
    e2 = check_model_gradients(_mlp(), x, y, params=["fc1.weight"], max_checks_per_param=5,
                               rng=7)
    assert e1 == e2 and set(e1) == {"fc1.weight", "input"}


def test_check_model_gradients_freezes_dropout_masks():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((4, 6)), rng.integers(0, 3, size=4)
    m = Sequential([("fc1", Linear(6, 8, rng=1)), ("relu", ReLU()), ("drop", Dropout(0.5, rng=2)),
                    ("fc2", Linear(8, 3, rng=3))]).set_dtype(np.float64)
    errors = check_model_gradients(m, x, y)
    assert max(errors.values()) < 1e-6
    # the masks really drop units: the same forward with dropout off gives other logits
    m.layers["drop"].rng = np.random.default_rng(2)
    assert not np.allclose(m.forward(x, train=True), m.forward(x, train=False))
