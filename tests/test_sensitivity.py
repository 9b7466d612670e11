"""Sensitivity analysis: the fast scan equals the reference scan, the caller's model is untouched,
the threshold search has known answers and is monotone, the plot draws the table."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn import lecture_net, lenet_300_100
from tinyprune.nn.train import evaluate
from tinyprune.prune.masked import set_masks_
from tinyprune.prune.model_pruning import prune_model
from tinyprune.prune.sensitivity import (
    DEFAULT_RATIOS,
    SensitivityResult,
    apply_ratios,
    format_sensitivity,
    ratios_for_threshold,
    select_threshold,
    sensitivity_scan,
    sensitivity_scan_naive,
    validation_split,
)


def data(n, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, n).astype(np.int64)
    return x, y


def snapshot(model):
    return ({k: v.copy() for k, v in model.params.items()},
            {k: v.copy() for k, v in model.masks.items()})


def assert_identical(model, snap):
    params, masks = snap
    assert set(model.masks) == set(masks)
    for k, v in params.items():
        assert model.params[k].dtype == v.dtype and np.array_equal(model.params[k], v), k
    for k, v in masks.items():
        assert np.array_equal(model.masks[k], v), k


# --------------------------------------------------------------------------- scan
@pytest.mark.parametrize("granularity", ["element", "channel"])
def test_fast_scan_equals_reference_on_a_convnet_and_leaves_model_intact(granularity):
    model = lecture_net(seed=1)
    x, y = data(70)
    snap = snapshot(model)
    kw = {"ratios": [0.0, 0.3, 0.9], "granularity": granularity, "batch_size": 32}
    fast = sensitivity_scan(model, x, y, **kw)
    ref = sensitivity_scan_naive(model, x, y, **kw)
    np.testing.assert_array_equal(sensitivity_scan(model, x, y, fast=False, **kw).accuracy,
                                  ref.accuracy)
    assert fast.layers == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]
    np.testing.assert_array_equal(fast.accuracy, ref.accuracy)
    assert fast.baseline == ref.baseline == evaluate(model, x, y)["accuracy"]
    assert np.all(fast.accuracy[:, 0] == fast.baseline)
    assert not np.all(fast.accuracy == fast.baseline)  # pruning did change predictions
    assert_identical(model, snap)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scan_points_equal_pruning_the_layer_by_hand(dtype):
    model = lenet_300_100(seed=2, dtype=np.dtype(dtype).name)
    set_masks_(model, prune_model(model, ["fc2"], 0.2))  # existing masks are kept
    x, y = data(300, seed=3, dtype=dtype)
    snap = snapshot(model)
    res = sensitivity_scan(model, x, y, layers=["fc1", "fc2.weight"], ratios=[0.5, 0.95])
    assert res.layers == ["fc1.weight", "fc2.weight"]
    for i, name in enumerate(res.layers):
        for j, r in enumerate(res.ratios):
            m = model.copy()
            set_masks_(m, prune_model(m, [name], r, relative_to="total"))
            assert res.accuracy[i, j] == evaluate(m, x, y)["accuracy"], (name, r)
    assert_identical(model, snap)


def test_random_criterion_scan_is_seeded_and_equals_reference():
    model = lenet_300_100(seed=5)
    x, y = data(200, seed=4)
    kw = {"ratios": [0.3, 0.9], "criterion": "random", "rng": 7}
    a, b = sensitivity_scan(model, x, y, **kw), sensitivity_scan_naive(model, x, y, **kw)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    np.testing.assert_array_equal(a.accuracy, sensitivity_scan(model, x, y, **kw).accuracy)


def test_default_ratios_and_json_roundtrip():
    assert DEFAULT_RATIOS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    x, y = data(40)
    res = sensitivity_scan(lenet_300_100(), x, y).choose(0.5)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["ratios"] == list(DEFAULT_RATIOS) and len(d["accuracy"]) == 3
    assert d["threshold"] == res.threshold and d["chosen"] == res.chosen
    assert d["pruning_rate"] >= 0.5
    text = format_sensitivity(res)
    assert "fc1.weight" in text and "T = " in text and "*" in text


def test_scan_bad_input():
    model = lenet_300_100()
    x, y = data(10)
    with pytest.raises(ValueError, match="layers"):
        sensitivity_scan(model, x, y, layers=["fc9"])
    with pytest.raises(ValueError, match="layers"):
        sensitivity_scan(model, x, y, layers=["fc1.bias"])
    with pytest.raises(ValueError, match="ratios"):
        sensitivity_scan(model, x, y, ratios=[0.1, 1.5])
    with pytest.raises(ValueError, match="ratios"):
        sensitivity_scan(model, x, y, ratios=[float("nan")])
    with pytest.raises(TypeError, match="ratios"):
        sensitivity_scan(model, x, y, ratios=[])
    with pytest.raises(ValueError, match="y_val"):
        sensitivity_scan(model, x, y[:5])
    with pytest.raises(TypeError, match="model"):
        sensitivity_scan("model", x, y)


# --------------------------------------------------------------------------- split
def test_validation_split_is_seeded_and_disjoint():
    x = np.arange(100, dtype=np.float32).reshape(100, 1)
    y = np.arange(100) % 10
    a = validation_split(x, y, 0.2, 5)
    b = validation_split(x, y, 0.2, np.random.default_rng(5))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    xtr, ytr, xv, yv = a
    assert xv.shape == (20, 1) and xtr.shape == (80, 1)
    assert set(xtr[:, 0]).isdisjoint(xv[:, 0]) and np.all(np.diff(xv[:, 0]) > 0)
    np.testing.assert_array_equal(yv, xv[:, 0].astype(int) % 10)
    assert not np.array_equal(validation_split(x, y, 0.2, 6)[2], xv)
    for bad in (0.0, 1.0, float("nan"), True):
        with pytest.raises(ValueError, match="fraction"):
            validation_split(x, y, bad, 0)
    with pytest.raises(TypeError, match="rng"):
        validation_split(x, y, 0.5, None)


# --------------------------------------------------------------------------- threshold
DELTA = np.array([[0.0, 0.01, 0.05], [0.0, 0.002, 0.003]])
RATIOS = [0.0, 0.5, 0.9]
SIZES = [100, 900]


@pytest.mark.parametrize("target, t, chosen, rate", [
    (0.0, 0.0, [0.0, 0.0], 0.0),
    (0.45, 0.002, [0.0, 0.5], 0.45),
    (0.5, 0.003, [0.0, 0.9], 0.81),
    (0.85, 0.01, [0.5, 0.9], 0.86),
    (0.9, 0.05, [0.9, 0.9], 0.9),
])
def test_threshold_known_answers(target, t, chosen, rate):
    got_t, got_chosen, got_rate = select_threshold(DELTA, RATIOS, SIZES, target)
    assert got_t == t and got_chosen == chosen and got_rate == pytest.approx(rate)


def test_threshold_takes_the_largest_ratio_under_t_even_past_a_bump():
    delta = np.array([[0.0, 0.03, 0.01]])  # non-monotone curve: r=0.9 is under T=0.01
    assert ratios_for_threshold(delta, RATIOS, 0.01).tolist() == [0.9]
    assert select_threshold(delta, RATIOS, [10], 0.6)[0] == 0.01


def test_threshold_unreachable_and_bad_input():
    with pytest.raises(ValueError, match="target_sparsity.*0.9000"):
        select_threshold(DELTA, RATIOS, SIZES, 0.95)
    with pytest.raises(ValueError, match="delta"):
        select_threshold(DELTA[:, :2], RATIOS, SIZES, 0.5)
    with pytest.raises(ValueError, match="delta"):
        select_threshold(np.array([[0.0, np.nan, 0.1]]), RATIOS, [1], 0.5)
    with pytest.raises(ValueError, match="sizes"):
        select_threshold(DELTA, RATIOS, [100], 0.5)
    with pytest.raises(ValueError, match="ratios"):
        select_threshold(DELTA, [0.0, 0.5, 1.2], SIZES, 0.5)
    with pytest.raises(ValueError, match="target_sparsity"):
        select_threshold(DELTA, RATIOS, SIZES, -0.1)
    with pytest.raises(TypeError, match="target_sparsity"):
        select_threshold(DELTA, RATIOS, SIZES, "0.5")


@st.composite
def curves(draw):
    n_layers, n_ratios = draw(st.integers(1, 5)), draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ratios = np.sort(rng.random(n_ratios)).round(3)
    delta = rng.integers(-3, 20, (n_layers, n_ratios)) / 100.0  # ties on purpose
    sizes = rng.integers(1, 1000, n_layers)
    return delta, ratios.tolist(), sizes.tolist()


@settings(max_examples=100, deadline=None)
@given(c=curves(), t1=st.floats(-0.1, 0.3), t2=st.floats(-0.1, 0.3), target=st.floats(0, 1))
def test_threshold_invariants(c, t1, t2, target):
    delta, ratios, sizes = c
    lo, hi = min(t1, t2), max(t1, t2)
    assert np.all(ratios_for_threshold(delta, ratios, lo) <= ratios_for_threshold(delta, ratios, hi))
    n = np.asarray(sizes, dtype=float)
    max_rate = ratios_for_threshold(delta, ratios, delta.max()) @ n / n.sum()
    if target > max_rate + 1e-12:
        with pytest.raises(ValueError, match="target_sparsity"):
            select_threshold(delta, ratios, sizes, target)
        return
    t, chosen, rate = select_threshold(delta, ratios, sizes, target)
    assert t in delta and rate >= target - 1e-12
    assert chosen == ratios_for_threshold(delta, ratios, t).tolist()
    below = delta[delta < t]  # every smaller measured threshold misses the target
    if below.size:
        r = ratios_for_threshold(delta, ratios, below.max()) @ n / n.sum()
        assert r < target - 1e-12


def test_choose_and_apply_ratios_prune_each_layer_to_its_ratio():
    model = lenet_300_100(seed=4)
    res = SensitivityResult(["fc1.weight", "fc2.weight", "fc3.weight"], [0.0, 0.5, 0.8],
                            np.array([[0.9, 0.9, 0.85], [0.9, 0.8, 0.7], [0.9, 0.89, 0.6]]), 0.9,
                            {"fc1.weight": 235200, "fc2.weight": 30000, "fc3.weight": 1000})
    res = res.choose(0.7)
    assert res.threshold == pytest.approx(0.05) and res.chosen == {
        "fc1.weight": 0.8, "fc2.weight": 0.0, "fc3.weight": 0.5}
    snap = snapshot(model)
    masks = apply_ratios(model, res.chosen)
    assert_identical(model, snap)
    for k, r in res.chosen.items():
        assert np.count_nonzero(~masks[k]) == round(r * masks[k].size)
