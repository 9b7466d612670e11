"""Pruning schedules (one-shot, iterative/Han, AGP): the formulas, exact per-step counts, masks
that only grow, pruned weights that stay exactly 0.0 under SGD momentum and Adam."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn import lenet_300_100
from tinyprune.nn.optim import SGD, Adam
from tinyprune.nn.train import Callback, fit
from tinyprune.prune.schedules import (
    AGP,
    Iterative,
    OneShot,
    agp_sparsity,
    default_targets,
    han_threshold_mask,
    iterative_sparsities,
)

WEIGHTS = ["fc1.weight", "fc2.weight", "fc3.weight"]


def toy_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = (x.reshape(n, -1)[:, :392].sum(1) > x.reshape(n, -1)[:, 392:].sum(1)).astype(np.int64)
    return x, y


class Probe(Callback):
    """Records, after every step, the pruned counts; checks masks only grow and pruned weights
    (and their optimizer state) are exactly zero."""

    def __init__(self):
        self.counts, self.prev = {}, {}

    def _check(self, state):
        model = state.model
        self.counts[state.step] = {k: int(m.size - np.count_nonzero(m))
                                   for k, m in model.masks.items()}
        for k, m in model.masks.items():
            if k in self.prev:
                assert not np.any(m & ~self.prev[k]), f"{k}: a pruned weight came back"
            assert np.all(model.params[k][~m] == 0.0), k
            self.prev[k] = m.copy()

    on_train_begin = _check

    def on_step_end(self, state):
        for k, m in self.prev.items():  # the masks in force during this step
            for arr in state.optimizer.state[k].values():
                if isinstance(arr, np.ndarray) and arr.shape == m.shape:
                    assert np.all(arr[~m] == 0.0), k
        self._check(state)


# --------------------------------------------------------------------------- AGP formula
def test_agp_values_of_the_formula():
    # s_t = s_f + (s_i - s_f) (1 - (t - t0)/(n dt))^3
    assert agp_sparsity(10, 0.0, 0.8, 10, 4, 5) == 0.0
    assert agp_sparsity(15, 0.0, 0.8, 10, 4, 5) == pytest.approx(0.8 * (1 - 0.75 ** 3))
    assert agp_sparsity(19, 0.0, 0.8, 10, 4, 5) == pytest.approx(0.8 * (1 - 0.75 ** 3))  # held
    assert agp_sparsity(20, 0.1, 0.8, 10, 4, 5) == pytest.approx(0.8 - 0.7 * 0.5 ** 3)
    assert agp_sparsity(30, 0.1, 0.8, 10, 4, 5) == 0.8
    assert agp_sparsity(10 ** 6, 0.1, 0.8, 10, 4, 5) == 0.8
    assert agp_sparsity(9, 0.1, 0.8, 10, 4, 5) == 0.0  # not started


@settings(max_examples=60, deadline=None)
@given(s_i=st.floats(0, 1), s_f=st.floats(0, 1), t0=st.integers(0, 20), n=st.integers(1, 10),
       dt=st.integers(1, 7))
def test_agp_is_monotone_and_reaches_its_ends(s_i, s_f, t0, n, dt):
    s_i, s_f = min(s_i, s_f), max(s_i, s_f)
    values = [agp_sparsity(t, s_i, s_f, t0, n, dt) for t in range(t0 + n * dt + 3)]
    assert all(a <= b + 1e-15 for a, b in zip(values[:-1], values[1:], strict=True))
    assert values[t0] == pytest.approx(s_i) and values[-1] == s_f
    assert all(0.0 <= v <= s_f for v in values)


@pytest.mark.parametrize("kwargs, err", [
    ({"s_i": 0.5, "s_f": 0.4}, ValueError), ({"s_f": 1.5}, ValueError),
    ({"s_f": float("nan")}, ValueError), ({"n": 0}, ValueError), ({"dt": 0}, ValueError),
    ({"t": -1}, ValueError), ({"t": 1.5}, TypeError), ({"s_f": True}, TypeError),
])
def test_agp_bad_input(kwargs, err):
    args = {"t": 3, "s_i": 0.0, "s_f": 0.9, "t0": 0, "n": 4, "dt": 2, **kwargs}
    name = next(iter(kwargs))
    with pytest.raises(err, match=name):
        agp_sparsity(**args)


# --------------------------------------------------------------------------- AGP callback
@pytest.mark.parametrize("make_opt", [lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
                                      lambda p: Adam(p, lr=1e-3)], ids=["sgd-momentum", "adam"])
def test_agp_counts_after_every_step_equal_the_formula(make_opt):
    x, y = toy_data(96)
    model = lenet_300_100(seed=0)
    agp, probe = AGP(0.9, n=4, dt=3, t0=2, initial_sparsity=0.1), Probe()
    opt = make_opt(model.params)
    before = {k: v.copy() for k, v in model.params.items()}
    fit(model, x, y, optimizer=opt, epochs=3, batch_size=16, rng=0, progress=False,
        callbacks=[agp, probe])  # 18 steps
    sizes = {k: model.params[k].size for k in WEIGHTS}
    for t, counts in probe.counts.items():
        s = agp_sparsity(t, 0.1, 0.9, 2, 4, 3)
        for k in WEIGHTS:
            assert counts.get(k, 0) == round(s * sizes[k]), (t, k)
    assert [e["step"] for e in agp.log] == [2, 5, 8, 11, 14]
    for k in WEIGHTS:  # the survivors trained
        m = model.masks[k]
        assert not np.array_equal(model.params[k][m], before[k][m])


def test_agp_global_ranking_reaches_the_total_count():
    x, y = toy_data(32)
    model = lenet_300_100(seed=1)
    fit(model, x, y, optimizer=SGD(model.params, lr=0.01), epochs=1, batch_size=8, rng=0,
        progress=False, callbacks=[AGP(0.5, n=2, dt=1, global_ranking=True)])
    n = sum(model.params[k].size for k in WEIGHTS)
    pruned = sum(int(np.count_nonzero(~model.masks[k])) for k in WEIGHTS)
    assert pruned == round(0.5 * n)


# --------------------------------------------------------------------------- iterative
@settings(max_examples=80, deadline=None)
@given(target=st.floats(0, 1), rounds=st.integers(1, 12))
def test_iterative_sparsities_constant_fraction_of_remaining(target, rounds):
    s = iterative_sparsities(target, rounds)
    assert len(s) == rounds and s[-1] == target
    assert all(a <= b for a, b in zip(s[:-1], s[1:], strict=True)) and all(0.0 <= v <= target for v in s)
    if target < 1.0:  # remaining after round j is (1 - p)^j with 1 - p = (1 - target)^(1/k)
        q = (1.0 - target) ** (1.0 / rounds)
        np.testing.assert_allclose([1.0 - v for v in s], [q ** j for j in range(1, rounds + 1)],
                                   rtol=1e-12, atol=1e-15)


def test_iterative_rounds_prune_exact_counts_at_phase_starts():
    x, y = toy_data(64)
    model = lenet_300_100(seed=2)
    it, probe = Iterative(0.9, rounds=3, epochs_per_round=2), Probe()
    fit(model, x, y, optimizer=SGD(model.params, lr=0.05, momentum=0.9), epochs=6,
        batch_size=16, rng=0, progress=False, callbacks=[it, probe])
    assert [e["epoch"] for e in it.log] == [0, 2, 4]
    for e, s in zip(it.log, iterative_sparsities(0.9, 3), strict=True):
        for k in WEIGHTS:
            n = model.params[k].size
            assert e["sparsity"][k] == round(s * n) / n
    for k in WEIGHTS:
        assert np.count_nonzero(~model.masks[k]) == round(0.9 * model.params[k].size)


def test_han_threshold_mask_known_answer():
    w = np.array([[-3.0, -1.0, 0.5, 1.0], [2.0, 0.1, -0.2, 3.0]])
    sigma = np.std(w)
    keep = han_threshold_mask(w, 0.5)
    np.testing.assert_array_equal(keep, np.abs(w) >= 0.5 * sigma)
    cur = np.abs(w) > 0.3  # sigma of the survivors only
    keep2 = han_threshold_mask(w, 0.9, cur)
    np.testing.assert_array_equal(keep2, cur & (np.abs(w) >= 0.9 * np.std(w[cur])))
    assert not np.any(keep2 & ~cur)
    assert han_threshold_mask(w, 0.0).all()


def test_iterative_with_han_threshold():
    x, y = toy_data(32)
    model = lenet_300_100(seed=3)
    it = Iterative(rounds=2, quality={"fc1.weight": 1.0, "fc2.weight": 0.5}, epochs_per_round=1)
    fit(model, x, y, optimizer=SGD(model.params, lr=0.01), epochs=2, batch_size=16, rng=0,
        progress=False, callbacks=[it])
    assert "fc3.weight" not in model.masks
    assert len(it.log) == 2 and it.log[0]["target"] is None
    s1 = it.log[0]["sparsity"]["fc1.weight"]
    assert abs(s1 - 3 ** -0.5) < 0.02  # uniform init: P(|w| < sigma) = 1/sqrt(3)
    assert it.log[1]["sparsity"]["fc1.weight"] > s1


@pytest.mark.parametrize("kwargs, name", [
    ({}, "target/quality"), ({"target": 0.5, "quality": 1.0}, "target/quality"),
    ({"target": 1.5}, "target"), ({"target": 0.5, "rounds": 0}, "rounds"),
    ({"quality": -1.0}, "quality"), ({"quality": 1.0, "granularity": "channel"}, "granularity"),
])
def test_iterative_bad_input(kwargs, name):
    kwargs = {"rounds": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        Iterative(**kwargs)


def test_han_threshold_bad_input():
    with pytest.raises(TypeError, match="w"):
        han_threshold_mask(np.ones(3, dtype=np.int64), 1.0)
    with pytest.raises(ValueError, match="w"):
        han_threshold_mask(np.array([np.nan, 1.0]), 1.0)
    with pytest.raises(ValueError, match="quality"):
        han_threshold_mask(np.ones(3), float("nan"))
    with pytest.raises(TypeError, match="current_mask"):
        han_threshold_mask(np.ones(3), 1.0, np.ones(4, dtype=bool))


# --------------------------------------------------------------------------- one-shot
def test_oneshot_prunes_at_begin_then_finetunes():
    x, y = toy_data(64)
    model = lenet_300_100(seed=4)
    probe = Probe()
    one = OneShot(0.8, targets=["fc1", "fc2"])
    fit(model, x, y, optimizer=SGD(model.params, lr=0.05, momentum=0.9), epochs=2,
        batch_size=16, rng=0, progress=False, callbacks=[one, probe])
    assert sorted(model.masks) == ["fc1.weight", "fc2.weight"]
    for counts in probe.counts.values():
        assert counts == {k: round(0.8 * model.params[k].size) for k in ["fc1.weight",
                                                                        "fc2.weight"]}
    assert len(one.log) == 1 and one.log[0]["step"] == 0


def test_oneshot_channel_granularity_masks_bias_and_stays_zero():
    x, y = toy_data(32)
    model = lenet_300_100(seed=5)
    fit(model, x, y, optimizer=Adam(model.params, lr=1e-3), epochs=1, batch_size=8, rng=0,
        progress=False, callbacks=[OneShot(0.5, targets=["fc1"], granularity="channel")])
    rows = model.masks["fc1.weight"].any(axis=1)
    assert rows.sum() == 150 and np.array_equal(model.masks["fc1.bias"], rows)
    assert np.all(model.params["fc1.weight"][~rows] == 0.0)
    assert np.all(model.params["fc1.bias"][~rows] == 0.0)


def test_schedule_bad_targets():
    with pytest.raises(TypeError, match="targets"):
        OneShot(0.5, targets=[])
    with pytest.raises(ValueError, match="amount"):
        OneShot(-0.1)
    with pytest.raises(ValueError, match="initial_sparsity"):
        AGP(0.5, n=2, dt=1, initial_sparsity=0.6)
    model = lenet_300_100()
    assert default_targets(model) == WEIGHTS
    x, y = toy_data(8)
    with pytest.raises(ValueError, match="targets"):
        fit(model, x, y, optimizer=SGD(model.params, lr=0.1), rng=0, progress=False,
            callbacks=[OneShot(0.5, targets=["nope"])])


@settings(max_examples=15, deadline=None)
@given(s_f=st.floats(0.05, 0.99), n=st.integers(1, 4), dt=st.integers(1, 3), t0=st.integers(0, 3),
       seed=st.integers(0, 1000))
def test_agp_callback_invariants(s_f, n, dt, t0, seed):
    x, y = toy_data(40, seed)
    model = lenet_300_100(seed=seed)
    probe = Probe()  # checks monotone masks and exact zeros
    fit(model, x, y, optimizer=SGD(model.params, lr=0.01, momentum=0.9), epochs=1,
        batch_size=4, rng=seed, progress=False, callbacks=[AGP(s_f, n=n, dt=dt, t0=t0), probe])
    for t, counts in probe.counts.items():
        s = agp_sparsity(t, 0.0, s_f, t0, n, dt)
        assert counts.get("fc3.weight", 0) == round(s * 1000)
