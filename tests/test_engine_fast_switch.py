"""Sequential's one switch: ``fast=True`` (speed kernels, ReLU after the pool, conv + pool in one
pass, chunked inference) and ``fast=False`` (the reference kernels, layer by layer in the listed
order) give the same outputs and gradients: to float rounding on random data, bit for bit on
integer-valued data, and bit for bit on networks without convolutions."""

import copy

import numpy as np
import pytest

from tinyprune.nn import Sequential, lecture_net, lenet5, lenet_300_100
from tinyprune.nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def _dropout_states(model):
    return [copy.deepcopy(layer.rng.bit_generator.state) for layer in model.layers.values()
            if isinstance(layer, Dropout)]


def _run(model, x, dout, fast, states=None, need_input_grad=True):
    """Forward (training mode) and backward with ``model.fast = fast``, the dropout generators
    first set to ``states``; returns the output, the input gradient and a copy of the grads."""
    model.fast = fast
    if states is not None:
        gens = [layer.rng for layer in model.layers.values() if isinstance(layer, Dropout)]
        for g, s in zip(gens, states, strict=True):
            g.bit_generator.state = copy.deepcopy(s)
    out = model.forward(x, train=True)
    dx = model.backward(dout, need_input_grad=need_input_grad)
    return out, dx, {k: g.copy() for k, g in model.grads.items()}


def _close(got, want, dtype, what=""):
    rtol = RTOL[dtype]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max(), err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("build", [lecture_net, lenet5, lenet_300_100])
def test_both_paths_agree_with_active_dropout(build, dtype):
    m = build(seed=3, dtype=np.dtype(dtype).name)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 1, 28, 28)).astype(dtype)
    dout = rng.standard_normal((6, 10)).astype(dtype)
    states = _dropout_states(m)
    out_f, dx_f, g_f = _run(m, x, dout, True, states)
    out_r, dx_r, g_r = _run(m, x, dout, False, states)
    assert out_f.dtype == out_r.dtype == dtype
    _close(out_f, out_r, dtype, "logits")
    _close(dx_f, dx_r, dtype, "input")
    assert set(g_f) == set(g_r) == set(m.params)
    for k in g_r:
        _close(g_f[k], g_r[k], dtype, k)
    if states:  # the masks were really drawn, and the same on both paths
        assert any((layer._cache[0] == 0).any() for layer in m.layers.values()
                   if isinstance(layer, Dropout))
    _, none, g_skip = _run(m, x, dout, False, states, need_input_grad=False)
    assert none is None
    for k in g_r:
        np.testing.assert_array_equal(g_skip[k], g_r[k], err_msg=k)
    xb = rng.standard_normal((70, 1, 28, 28)).astype(dtype)  # inference: chunked when fast
    m.fast = True
    chunked = m.forward(xb)
    m.fast = False
    _close(chunked, m.forward(xb), dtype, "inference")


def _integer_valued(model, seed):
    """Weights in {-1, 0, 1} and dropout with p = 0.5 (scale 2): every sum in the network is
    exact in float32 and float64, whatever its order."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.integers(-1, 2, size=p.shape)
    for layer in model.layers.values():
        if isinstance(layer, Dropout):
            layer.p = 0.5
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("build", [lecture_net, lenet5])
def test_both_paths_agree_bit_for_bit_on_integer_valued_data(build, dtype):
    m = _integer_valued(build(seed=1, dtype=np.dtype(dtype).name), seed=2)
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(5, 1, 28, 28)).astype(dtype)  # ties in every pool window
    dout = rng.integers(-3, 4, size=(5, 10)).astype(dtype)
    states = _dropout_states(m)
    out_f, dx_f, g_f = _run(m, x, dout, True, states)
    out_r, dx_r, g_r = _run(m, x, dout, False, states)
    np.testing.assert_array_equal(out_f, out_r)
    np.testing.assert_array_equal(dx_f, dx_r)
    for k in g_r:
        np.testing.assert_array_equal(g_f[k], g_r[k], err_msg=k)
    xb = rng.integers(-2, 3, size=(70, 1, 28, 28)).astype(dtype)
    m.fast = True
    chunked = m.forward(xb)  # 70 > inference_chunk: three chunks, conv + pool fused
    m.fast = False
    np.testing.assert_array_equal(chunked, m.forward(xb))


def test_reference_path_runs_the_listed_layers_one_by_one():
    m = lecture_net(seed=5, dtype="float64")
    m.fast = False
    assert all(layer.fast is False for layer in m.layers.values())
    assert m.execution_order() == list(m.layers.values())
    x = np.random.default_rng(6).standard_normal((3, 1, 28, 28))
    states = _dropout_states(m)
    out = m.forward(x, train=True)
    gens = [layer.rng for layer in m.layers.values() if isinstance(layer, Dropout)]
    for g, s in zip(gens, states, strict=True):
        g.bit_generator.state = copy.deepcopy(s)
    h = x
    for layer in m.layers.values():  # by hand, as a student would
        h = layer.forward(h, train=True)
        if layer.name == "relu2":
            relu2_out = h
    np.testing.assert_array_equal(out, h)
    assert relu2_out.shape == (3, 64, 24, 24)  # the ReLU ran before the pool
    np.testing.assert_array_equal(m["relu2"]._cache, relu2_out)  # its cache: its own output


def test_relu_pool_swap_is_exact_with_ties_and_negative_windows():
    """Windows that are all negative, all zero, or with tied positive maxima."""
    x = np.array([[[[-1.0, -2.0, 0.0, 0.0, 3.0, 3.0],
                    [-3.0, -0.5, 0.0, 0.0, 1.0, 3.0],
                    [2.0, 2.0, -1.0, 5.0, 0.0, -0.0],
                    [2.0, 1.0, 5.0, 5.0, -0.0, 0.0]]]])  # (1, 1, 4, 6)
    dout = np.arange(1.0, 7.0).reshape(1, 6)
    layers = [("relu", ReLU()), ("pool", MaxPool2d(2)), ("pool2", MaxPool2d(1)),
              ("flatten", Flatten())]
    m = Sequential(layers, input_shape=(1, 4, 6))
    assert [type(v).__name__ for v in m.execution_order()] == [
        "MaxPool2d", "MaxPool2d", "ReLU", "Flatten"]  # the ReLU moves past both pools
    out_a, dx_a, _ = _run(m, x, dout, True)
    out_b, dx_b, _ = _run(m, x, dout, False)
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(dx_a, dx_b)
    np.testing.assert_array_equal(out_a, [[0.0, 0.0, 3.0, 2.0, 5.0, 0.0]])
    expected = np.zeros((4, 6))
    expected[0, 4] = 3.0  # first of the tied 3s
    expected[2, 0] = 4.0  # first of the tied 2s
    expected[2, 3] = 5.0  # first of the tied 5s
    np.testing.assert_array_equal(dx_a[0, 0], expected)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 1),
                                                     (3, 3, 0)])
def test_relu_pool_swap_is_exact_for_any_pool_geometry(kernel, stride, padding):
    """Padded (-inf) windows, overlapping windows, and integer-valued inputs full of ties."""
    rng = np.random.default_rng(kernel * 10 + stride + padding)
    x = rng.integers(-2, 3, size=(3, 2, 7, 8)).astype(np.float64)  # zeros and ties everywhere
    layers = [("relu", ReLU()), ("pool", MaxPool2d(kernel, stride, padding)),
              ("flatten", Flatten())]
    m = Sequential(layers, input_shape=(2, 7, 8))
    out_shape = m.layer_shapes()[-1][2]
    dout = rng.standard_normal((3,) + out_shape)
    out_a, dx_a, _ = _run(m, x, dout, True)
    out_b, dx_b, _ = _run(m, x, dout, False)
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(dx_a, dx_b)
    assert (dx_a[x <= 0] == 0).all()  # no gradient reaches a rectified input


def test_execution_order_swaps_only_relu_then_pool():
    m = lecture_net(seed=0)
    names = {id(v): k for k, v in m.layers.items()}
    order = [names[id(v)] for v in m.execution_order()]
    assert order == ["conv1", "relu1", "conv2", "pool", "relu2", "dropout1", "flatten", "fc1",
                     "relu3", "dropout2", "fc2"]
    assert list(m.layers) == ["conv1", "relu1", "conv2", "relu2", "pool", "dropout1", "flatten",
                              "fc1", "relu3", "dropout2", "fc2"]  # the lecture's order is kept
    m.fast = False
    assert [names[id(v)] for v in m.execution_order()] == list(m.layers)


def test_conv_pool_fusion_runs_only_where_it_applies(monkeypatch):
    calls = []
    original = Conv2d.forward_pooled

    def counted(self, x, pool, train=False):
        calls.append((self.name, pool.name))
        return original(self, x, pool, train)

    monkeypatch.setattr(Conv2d, "forward_pooled", counted)
    m = lenet5(seed=0)
    m.forward(np.zeros((2, 1, 28, 28), np.float32))
    assert calls == [("conv1", "pool1"), ("conv2", "pool2")]
    calls.clear()
    m.fast = False
    m.forward(np.zeros((2, 1, 28, 28), np.float32))
    assert calls == []
    odd = Sequential([("conv", Conv2d(1, 2, 2)), ("pool", MaxPool2d(2)), ("flat", Flatten())],
                     input_shape=(1, 6, 6))  # a 5x5 convolution output: not fused
    wide = Sequential([("conv", Conv2d(1, 2, 3)), ("pool", MaxPool2d(3)), ("flat", Flatten())],
                      input_shape=(1, 8, 8))  # a 3x3 pool: not fused
    for model, shape in ((odd, (1, 1, 6, 6)), (wide, (1, 1, 8, 8))):
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ref = model.layers["pool"].forward(model.layers["conv"].forward(x))
        np.testing.assert_array_equal(model.forward(x), ref.reshape(1, -1))
    assert calls == []


def test_inference_in_chunks_of_any_size_equals_one_pass():
    x = np.random.default_rng(1).standard_normal((70, 1, 28, 28)).astype(np.float32)
    m = lecture_net(seed=2)
    chunked = m.forward(x)  # 70 > inference_chunk: three chunks
    m.inference_chunk = 100
    whole = m.forward(x)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
    m.inference_chunk = 7
    np.testing.assert_allclose(m.forward(x), whole, rtol=1e-5, atol=1e-6)
    # training mode is never chunked: the caches cover the whole batch
    m.forward(x, train=True)
    assert m.backward(np.ones((70, 10), np.float32)).shape == x.shape


def test_the_switch_is_a_runtime_setting():
    layers = [("fc", Linear(4, 3, rng=0)), ("relu", ReLU())]
    assert Sequential(layers).fast is True
    m = Sequential([("conv", Conv2d(1, 2, 3, rng=0)), ("relu", ReLU()), ("pool", MaxPool2d(2)),
                    ("flat", Flatten())], input_shape=(1, 6, 6), fast=False)
    assert m.fast is False and all(layer.fast is False for layer in m.layers.values())
    assert "fast" not in str(m.spec())  # not part of the architecture
    c = m.copy()
    assert c.fast is False and all(layer.fast is False for layer in c.layers.values())
    assert Sequential.from_spec(m.spec()).fast is True
    assert Sequential.from_spec(m.spec(), fast=False).fast is False
    m.fast = np.bool_(True)
    assert m.fast is True and all(layer.fast is True for layer in m.layers.values())
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match=r"fast: expected a bool"):
            m.fast = bad
    with pytest.raises(TypeError, match=r"fast: expected a bool"):
        Sequential([("relu", ReLU())], fast=0)
