"""Tests for tinyprune.nn.losses: stability, values, gradient, validation, torch reference."""

import numpy as np
import pytest

from tinyprune.nn.gradcheck import numerical_gradient, relative_error
from tinyprune.nn.losses import (
    cross_entropy,
    log_softmax,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)


def _naive_ce(z, y):
    z = z.astype(np.float64)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(y)), y]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_naive_formula_on_moderate_logits(dtype):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 5)).astype(dtype)
    y = rng.integers(0, 5, size=7)
    loss = cross_entropy(z, y)
    assert isinstance(loss, float)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(_naive_ce(z, y), rel=tol)
    np.testing.assert_allclose(softmax(z).sum(axis=1), 1.0, rtol=tol)
    np.testing.assert_allclose(np.exp(log_softmax(z)), softmax(z), rtol=10 * tol)
    assert log_softmax(z).dtype == dtype and softmax(z).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_stable_for_huge_logits(dtype, scale):
    z = np.array([[scale, 0.0, -scale], [0.0, scale, 1.0], [scale, scale, 0.0]], dtype=dtype)
    y = np.array([0, 2, 1])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        loss, cache = softmax_cross_entropy_forward(z, y)
        dz = softmax_cross_entropy_backward(cache)
        lsm = log_softmax(z)
        sm = softmax(z)
    assert np.isfinite(loss) and np.isfinite(dz).all() and np.isfinite(lsm).all()
    assert np.isfinite(sm).all() and dz.dtype == dtype
    # exact reference in float64: rows are shifted so the max is 0
    zz = z.astype(np.float64)
    ref = zz - zz.max(1, keepdims=True)
    ref = ref - np.log(np.exp(ref).sum(1, keepdims=True))
    np.testing.assert_allclose(lsm, ref, rtol=1e-6)
    assert loss == pytest.approx(-ref[np.arange(3), y].mean(), rel=1e-6)


def test_perfect_and_uniform_predictions():
    z = np.zeros((4, 10))
    y = np.arange(4)
    assert cross_entropy(z, y) == pytest.approx(np.log(10))
    z = np.full((2, 3), -50.0)
    z[[0, 1], [1, 2]] = 50.0
    assert cross_entropy(z, np.array([1, 2])) == pytest.approx(0.0, abs=1e-30)


def test_backward_formula_and_numerical_gradient():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, size=6)
    loss, cache = softmax_cross_entropy_forward(z, y)
    dz = softmax_cross_entropy_backward(cache)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(dz, (softmax(z) - onehot) / 6, rtol=1e-12)
    np.testing.assert_allclose(dz.sum(axis=1), 0.0, atol=1e-15)
    num = numerical_gradient(lambda t: cross_entropy(t, y), z)
    assert relative_error(dz, num) < 1e-7


def test_backward_does_not_modify_cache_or_inputs():
    z = np.array([[1.0, 2.0], [3.0, 0.5]])
    y = np.array([1, 0], dtype=np.uint8)
    z0, y0 = z.copy(), y.copy()
    _, cache = softmax_cross_entropy_forward(z, y)
    probs = cache[0].copy()
    d1 = softmax_cross_entropy_backward(cache)
    d2 = softmax_cross_entropy_backward(cache)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(cache[0], probs)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize(
    "logits, y, exc, words",
    [
        (np.zeros((2, 3), dtype=np.int64), np.array([0, 1]), TypeError, "logits"),
        (np.zeros(3), np.array([0]), ValueError, "2-D"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), ValueError, "non-empty"),
        (np.array([[0.0, np.nan]]), np.array([0]), ValueError, "NaN"),
        (np.array([[0.0, np.inf]]), np.array([0]), ValueError, "finite"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError, "integer"),
        (np.zeros((2, 3)), np.array([[0, 1]]), ValueError, "1-D"),
        (np.zeros((2, 3)), np.array([0, 1, 2]), ValueError, "2 labels"),
        (np.zeros((2, 3)), np.array([0, 3]), ValueError, "[0, 3)"),
        (np.zeros((2, 3)), np.array([-1, 0]), ValueError, "-1"),
        (np.zeros((2, 3)), [0, 1], TypeError, "y"),
    ],
)
def test_validation(logits, y, exc, words):
    with pytest.raises(exc, match=None) as info:
        softmax_cross_entropy_forward(logits, y)
    assert words in str(info.value)


def test_softmax_validation_names_argument():
    with pytest.raises(TypeError, match="logits"):
        softmax([[1.0, 2.0]])
    with pytest.raises(ValueError, match="logits"):
        log_softmax(np.array([[np.nan, 1.0]]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch_cross_entropy_and_gradient(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((16, 10)) * 5).astype(dtype)
    z[0, 3] = 1e4
    z[1, 7] = -1e4
    y = rng.integers(0, 10, size=16)
    loss, cache = softmax_cross_entropy_forward(z, y)
    dz = softmax_cross_entropy_backward(cache)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    lt.backward()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(lt.item(), rel=tol)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=tol, atol=tol * 1e-2)
    np.testing.assert_allclose(log_softmax(z), torch.log_softmax(zt, 1).detach().numpy(),
                               rtol=tol, atol=tol)
