"""The model zoo and Sequential: the lecture's counts, seeds, specs, initialisation, copies."""

import json
import math

import numpy as np
import pytest

from tinyprune.nn import Sequential, build_model, lecture_net, lenet5, lenet_300_100


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
