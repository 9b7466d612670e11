"""The model zoo and Sequential: the lecture's counts, seeds, specs, initialisation, chunking."""

import json
import math

import numpy as np
import pytest

from tinyprune.nn import Sequential, build_model, lecture_net, lenet5, lenet_300_100
from tinyprune.nn.layers import Conv2d, Flatten, MaxPool2d, ReLU


def _rows(summary):
    rows = {}
    for line in summary.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[0] != "parameters:":
            rows[parts[0]] = (int(parts[-2].replace(",", "")), int(parts[-1].replace(",", "")))
    return rows


def test_lecture_net_summary_has_the_lectures_counts():
    m = lecture_net()
    rows = _rows(m.summary())
    assert rows["conv1"] == (288, 32)
    assert rows["conv2"] == (18_432, 64)
    assert rows["fc1"] == (1_179_648, 128)
    assert rows["fc2"] == (1_280, 10)
    assert rows["total"] == (1_199_648, 234)
    assert m.num_parameters() == 1_199_882
    assert "(64, 12, 12)" in m.summary() and "(9216,)" in m.summary()
    assert {k: v.shape for k, v in m.params.items()} == {
        "conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,),
        "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
        "fc1.weight": (128, 9216), "fc1.bias": (128,),
        "fc2.weight": (10, 128), "fc2.bias": (10,)}


def test_lenet_parameter_counts():
    mlp = lenet_300_100()
    assert mlp.num_parameters() == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10 == 266_610
    assert [p.shape for p in mlp.params.values()] == [
        (300, 784), (300,), (100, 300), (100,), (10, 100), (10,)]
    cnn = lenet5()
    assert cnn.num_parameters() == 20 * 25 + 20 + 50 * 20 * 25 + 50 + 800 * 500 + 500 + 5010 == 431_080
    assert cnn["conv2"].params["weight"].shape == (50, 20, 5, 5)
    assert [s[2] for s in cnn.layer_shapes()][:4] == [(20, 24, 24), (20, 12, 12), (50, 8, 8),
                                                      (50, 4, 4)]


@pytest.mark.parametrize("build", [lecture_net, lenet5, lenet_300_100])
def test_same_seed_same_parameters(build):
    a, b, c = build(seed=3), build(seed=3), build(seed=4)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert any(not np.array_equal(a.params[k], c.params[k]) for k in a.params)


@pytest.mark.parametrize("build", [lecture_net, lenet5, lenet_300_100])
def test_spec_round_trip(build):
    m = build(seed=1)
    spec = m.spec()
    assert json.loads(json.dumps(spec)) == spec
    again = Sequential.from_spec(spec, seed=1)
    assert again.spec() == spec
    assert list(again.layers) == list(m.layers)
    for name, p in m.params.items():
        np.testing.assert_array_equal(again.params[name], p)  # same seed, same init
    assert build_model(m.name.replace("_", "-"), seed=1).spec() == spec


def test_pytorch_like_init_bounds():
    m = lecture_net(seed=0)
    fan_in = {"conv1": 9, "conv2": 32 * 9, "fc1": 9216, "fc2": 128}
    for lname, fi in fan_in.items():
        bound = 1 / math.sqrt(fi)
        for pname, p in m[lname].params.items():
            assert p.dtype == np.float32
            assert np.abs(p).max() <= bound * (1 + 1e-6), (lname, pname)
            if p.size > 100:  # uniform on the whole interval, mean ~ 0
                assert np.abs(p).max() > 0.95 * bound
                assert abs(p.mean()) < 0.1 * bound


@pytest.mark.parametrize("build", [lecture_net, lenet5, lenet_300_100])
def test_forward_shapes_and_dtypes(build):
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    m = build()
    logits = m.forward(x)
    assert logits.shape == (3, 10) and logits.dtype == np.float32
    m64 = build(dtype="float64")
    out64 = m64.forward(x.astype(np.float64))
    assert out64.dtype == np.float64
    np.testing.assert_allclose(out64, logits, rtol=1e-4, atol=1e-5)


def test_inference_in_chunks_equals_one_pass():
    x = np.random.default_rng(1).standard_normal((70, 1, 28, 28)).astype(np.float32)
    m = lecture_net(seed=2)
    chunked = m.forward(x)  # 70 > inference_chunk: three chunks
    m.inference_chunk = None
    whole = m.forward(x)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
    m.inference_chunk = 7
    np.testing.assert_allclose(m.forward(x), whole, rtol=1e-5, atol=1e-6)
    # training mode is never chunked: the caches cover the whole batch
    m.forward(x, train=True)
    assert m.backward(np.ones((70, 10), np.float32)).shape == x.shape


@pytest.mark.parametrize("build", [lecture_net, lenet_300_100])
def test_need_input_grad_false_gives_the_same_parameter_gradients(build):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    d = rng.standard_normal((4, 10)).astype(np.float32)
    m = build()
    for layer in m.layers.values():
        if hasattr(layer, "p"):
            layer.p = 0.0
    m.forward(x, train=True)
    dx = m.backward(d)
    assert dx.shape == x.shape
    full = {k: g.copy() for k, g in m.grads.items()}
    m.forward(x, train=True)
    assert m.backward(d, need_input_grad=False) is None
    for k, g in m.grads.items():
        np.testing.assert_allclose(g, full[k], rtol=1e-6, atol=1e-7)


def test_model_params_are_the_layers_arrays():
    m = lecture_net()
    p = m.params["fc2.bias"]
    p += 1  # in place, as an optimizer does
    assert m["fc2"].params["bias"] is p


def test_copy_is_independent_and_equal():
    from tinyprune.nn import lecture_net
    m = lecture_net(seed=3)
    m.masks["fc1.weight"] = np.ones(m.params["fc1.weight"].shape, dtype=bool)
    c = m.copy()
    assert c.spec() == m.spec()
    for k, v in m.params.items():
        np.testing.assert_array_equal(c.params[k], v)
        assert c.params[k] is not v
    c.params["fc1.weight"][0, 0] = 123.0
    c.masks["fc1.weight"][0, 0] = False
    assert m.params["fc1.weight"][0, 0] != 123.0 and m.masks["fc1.weight"][0, 0]


# --------------------------------------------------------------- ReLU -> MaxPool2d run swapped


def _run(model, x, dout, fuse=None, **flags):
    """Forward (training mode) and backward with ``model.fuse_relu_pool = fuse`` (or the given
    ``fuse_*`` flags); returns the output, the input gradient and a copy of the gradients."""
    if fuse is not None:
        flags["fuse_relu_pool"] = fuse
    for name, value in flags.items():
        setattr(model, name, value)
    out = model.forward(x, train=True)
    dx = model.backward(dout)
    return out, dx, {k: g.copy() for k, g in model.grads.items()}


def _no_dropout(model):
    """Every run must see the same network."""
    for layer in model.layers.values():
        if hasattr(layer, "p"):
            layer.p = 0.0
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_pool_swap_gives_identical_outputs_and_gradients(dtype):
    m = _no_dropout(lecture_net(seed=3).set_dtype(dtype))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 1, 28, 28)).astype(dtype)
    dout = rng.standard_normal((5, 10)).astype(dtype)
    m.fuse_conv_pool = False  # (tested below: it rounds the convolution differently)
    out_a, dx_a, g_a = _run(m, x, dout, True)
    out_b, dx_b, g_b = _run(m, x, dout, False)
    np.testing.assert_array_equal(out_a, out_b)  # bit for bit, not just close
    np.testing.assert_array_equal(dx_a, dx_b)
    for k in g_b:
        np.testing.assert_array_equal(g_a[k], g_b[k], err_msg=k)


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


def test_execution_order_swaps_only_relu_then_pool():
    m = lecture_net(seed=0)
    names = {id(v): k for k, v in m.layers.items()}
    order = [names[id(v)] for v in m.execution_order()]
    assert order == ["conv1", "relu1", "conv2", "pool", "relu2", "dropout1", "flatten", "fc1",
                     "relu3", "dropout2", "fc2"]
    assert list(m.layers) == ["conv1", "relu1", "conv2", "relu2", "pool", "dropout1", "flatten",
                              "fc1", "relu3", "dropout2", "fc2"]  # the lecture's order is kept
    m.fuse_relu_pool = False
    assert [names[id(v)] for v in m.execution_order()] == list(m.layers)


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


# ------------------------------------------------------ Conv2d -> MaxPool2d run as one pass


def _integer_valued(model, seed):
    """Small integer weights: every sum in the network is exact, whatever its order."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.integers(-2, 3, size=p.shape)
    return _no_dropout(model)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lecture_net, lenet5])
def test_conv_pool_fusion_is_exact_on_integer_valued_data(make, dtype):
    m = _integer_valued(make(seed=1).set_dtype(dtype), seed=2)
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(4, 1, 28, 28)).astype(dtype)  # ties in every pool window
    dout = rng.integers(-3, 4, size=(4, 10)).astype(dtype)
    out_a, dx_a, g_a = _run(m, x, dout, fuse_conv_pool=True)
    out_b, dx_b, g_b = _run(m, x, dout, fuse_conv_pool=False)
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(dx_a, dx_b)
    for k in g_b:
        np.testing.assert_array_equal(g_a[k], g_b[k], err_msg=k)
    m.fuse_conv_pool = True
    np.testing.assert_array_equal(m.forward(x), out_b)  # inference mode too


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_conv_pool_fusion_matches_the_two_layers_on_random_data(dtype, rtol):
    m = _no_dropout(lecture_net(seed=4).set_dtype(dtype))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 1, 28, 28)).astype(dtype)
    dout = rng.standard_normal((6, 10)).astype(dtype)
    out_a, dx_a, g_a = _run(m, x, dout, fuse_conv_pool=True)
    out_b, dx_b, g_b = _run(m, x, dout, fuse_conv_pool=False)
    np.testing.assert_allclose(out_a, out_b, rtol=rtol, atol=rtol * np.abs(out_b).max())
    np.testing.assert_allclose(dx_a, dx_b, rtol=rtol, atol=rtol * np.abs(dx_b).max())
    for k in g_b:
        np.testing.assert_allclose(g_a[k], g_b[k], rtol=rtol, atol=rtol * np.abs(g_b[k]).max(),
                                   err_msg=k)


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
    m.fuse_conv_pool = False
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

