"""Rank selection by sensitivity: the scan's points are the factorized models' accuracies, the
threshold rule picks the smallest rank within T, and bad input gets named errors."""

import numpy as np
import pytest

from tinyprune.lowrank import factorize_model, rank_sensitivity_scan
from tinyprune.nn import lenet_300_100
from tinyprune.nn.train import evaluate


@pytest.fixture(scope="module")
def setup():
    model = lenet_300_100(seed=3)
    x = np.random.default_rng(0).standard_normal((200, 1, 28, 28)).astype(np.float32)
    y = model(x).argmax(axis=1)  # the dense model scores 1.0 on these labels
    return model, x, y


def test_scan_points_are_the_factorized_models_accuracies(setup):
    model, x, y = setup
    before = {k: v.copy() for k, v in model.params.items()}
    res = rank_sensitivity_scan(model, x, y, ["fc1", "fc2"], [2, 16, 60, 90])
    assert res.baseline == 1.0
    for i, name in enumerate(["fc1", "fc2"]):
        for j, r in enumerate([2, 16, 60, 90]):
            m, n = model[name].params["weight"].shape
            if r * (m + n) >= m * n:  # fc2 (100 x 300) at rank 90 saves nothing
                assert np.isnan(res.accuracy[i, j]) and res.weights_saved[i, j] == 0
                continue
            acc = evaluate(factorize_model(model, {name: r}), x, y)["accuracy"]
            assert res.accuracy[i, j] == acc
            assert res.weights_saved[i, j] == m * n - r * (m + n)
    for k, v in model.params.items():  # the caller's model is untouched
        np.testing.assert_array_equal(v, before[k])


def test_threshold_picks_the_smallest_rank_within_it_and_is_monotone(setup):
    model, x, y = setup
    ranks = [1, 4, 16, 64]
    res = rank_sensitivity_scan(model, x, y, ["fc1", "fc2"], ranks)
    drops = res.drop
    for t in [0.0, 0.05, 0.2, 0.5, 1.0]:
        chosen = res.ranks_for_threshold(t)
        for i, name in enumerate(res.layers):
            ok = [r for j, r in enumerate(ranks) if np.isfinite(drops[i, j]) and drops[i, j] <= t]
            assert chosen.get(name) == (min(ok) if ok else None)
    previous = None
    for t in np.linspace(0, 1, 11):  # a larger T never asks for a larger rank
        chosen = res.ranks_for_threshold(float(t))
        if previous is not None:
            for name, r in previous.items():
                assert chosen[name] <= r
        previous = chosen
    assert res.ranks_for_threshold(1.0) == {"fc1": 1, "fc2": 1}
    d = res.to_dict()
    assert d["layers"] == ["fc1", "fc2"] and len(d["accuracy"][0]) == 4


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"layers": ["fc9"], "ranks": [2]}, ValueError, "fc9"),
    ({"layers": ["relu1"], "ranks": [2]}, TypeError, "Linear"),
    ({"layers": [], "ranks": [2]}, ValueError, "layers"),
    ({"layers": ["fc1"], "ranks": []}, ValueError, "ranks"),
    ({"layers": ["fc1"], "ranks": [0]}, ValueError, "ranks"),
    ({"layers": ["fc1"], "ranks": [2.5]}, TypeError, "ranks"),
])
def test_bad_input(setup, kwargs, exc, match):
    model, x, y = setup
    with pytest.raises(exc, match=match):
        rank_sensitivity_scan(model, x, y, **kwargs)


def test_bad_threshold(setup):
    model, x, y = setup
    res = rank_sensitivity_scan(model, x[:20], y[:20], ["fc3"], [2])
    with pytest.raises(ValueError, match="threshold"):
        res.ranks_for_threshold(float("nan"))
