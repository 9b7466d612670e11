"""Whole-model gradient checks in float64: back-propagation against centered differences.

The objective is the mean softmax cross-entropy, or ``sum(logits * R)`` for a fixed random ``R``
(no loss module needed). Dropout layers stay active: their generator state is restored before
every forward pass, so every evaluation uses the same masks.

Error measure: per parameter, ``||a - n|| / (||a|| + ||n||)`` over the checked coordinates.
(The elementwise maximum is not used for whole models: a gradient entry of 1e-8 next to entries
of 0.1 carries the centered difference's rounding error, ~1e-16 * |loss| / eps = 1e-10, which is
1% of it; the per-layer checks in test_layers.py are elementwise.)
"""

import copy

import numpy as np
import pytest

from tinyprune.nn import lecture_net, lenet5, lenet_300_100
from tinyprune.nn.gradcheck import numerical_gradient
from tinyprune.nn.losses import (
    cross_entropy,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)

TOL = 1e-6


def _norm_rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def model_gradcheck(m, x, *, y=None, r=None, checks=20, seed=0):
    """Relative errors of every parameter's gradient (and the input's) on sampled coordinates."""
    rng = np.random.default_rng(seed)
    gens = [layer.rng for layer in m.layers.values() if hasattr(layer, "rng")]
    states = [copy.deepcopy(g.bit_generator.state) for g in gens]

    def forward():
        for g, s in zip(gens, states, strict=True):
            g.bit_generator.state = copy.deepcopy(s)
        return m.forward(x, train=True)

    if y is not None:
        _, cache = softmax_cross_entropy_forward(forward(), y)
        dx = m.backward(softmax_cross_entropy_backward(cache))

        def objective(_):
            return cross_entropy(forward(), y)
    else:
        forward()
        dx = m.backward(r)

        def objective(_):
            return float(np.sum(forward() * r))
    analytic = {k: g.copy() for k, g in m.grads.items()}
    errors = {}
    for name, arr, grad in [(k, p, analytic[k]) for k, p in m.params.items()] + [("input", x, dx)]:
        flat = rng.choice(arr.size, size=min(arr.size, checks), replace=False)
        idx = [np.unravel_index(i, arr.shape) for i in flat]
        num = numerical_gradient(objective, arr, indices=idx)
        errors[name] = _norm_rel([grad[i] for i in idx], [num[i] for i in idx])
    return errors


def _x(n, seed):
    return np.random.default_rng(seed).standard_normal((n, 1, 28, 28))


def test_lenet_300_100():
    m = lenet_300_100(seed=1, dtype="float64")
    errors = model_gradcheck(m, _x(3, 2), y=np.array([0, 4, 9]), checks=40)
    assert max(errors.values()) < TOL, errors


def test_lenet5():
    m = lenet5(seed=4, dtype="float64")
    errors = model_gradcheck(m, _x(2, 5), y=np.array([1, 7]), checks=20, seed=6)
    assert set(errors) == set(m.params) | {"input"}
    assert max(errors.values()) < TOL, errors


def test_lecture_net_with_active_dropout():
    m = lecture_net(seed=7, dtype="float64")
    errors = model_gradcheck(m, _x(2, 8), y=np.array([3, 5]), checks=12, seed=9)
    assert set(errors) == set(m.params) | {"input"}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("build", [lecture_net, lenet5, lenet_300_100])
def test_sum_of_weighted_logits(build):
    m = build(seed=10, dtype="float64")
    r = np.random.default_rng(11).standard_normal((3, 10))
    errors = model_gradcheck(m, _x(3, 12), r=r, checks=10, seed=13)
    assert max(errors.values()) < TOL, errors


def test_the_check_catches_a_wrong_gradient():
    m = lenet_300_100(seed=1, dtype="float64")
    layer = m["fc2"]
    backward = layer.backward

    def wrong(dout, need_dx=True):
        dx = backward(dout, need_dx)
        layer.grads["weight"] = layer.grads["weight"] * 1.001
        return dx

    layer.backward = wrong
    errors = model_gradcheck(m, _x(2, 2), y=np.array([0, 4]), checks=10)
    assert errors["fc2.weight"] > 1e-4 and errors["fc3.weight"] < TOL
