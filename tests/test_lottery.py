"""Lottery tickets: IMP's per-round counts, reset to theta_0 / rewind to theta_k on the survivors,
masks that only grow, controls with the same sparsity, Jaccard overlap."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn import lenet5, lenet_300_100
from tinyprune.nn.optim import Adam
from tinyprune.nn.train import Callback, fit
from tinyprune.prune.lottery import (
    imp_prune_masks,
    imp_rates,
    lottery_ticket,
    mask_jaccard,
    random_masks_like,
    reset_weights_,
)


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = (x.reshape(n, -1)[:, :392].sum(1) > x.reshape(n, -1)[:, 392:].sum(1)).astype(np.int64)
    return x, y


def test_imp_rates_follow_the_paper():
    assert imp_rates(lenet_300_100()) == {"fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1}
    assert imp_rates(lenet5()) == {"conv1.weight": 0.1, "conv2.weight": 0.1, "fc1.weight": 0.2,
                                   "fc2.weight": 0.1}
    assert imp_rates(lenet_300_100(), fc_rate=0.5, output_rate=0.3, targets=["fc1", "fc3"]) == {
        "fc1.weight": 0.5, "fc3.weight": 0.3}
    with pytest.raises(ValueError, match="fc_rate"):
        imp_rates(lenet_300_100(), fc_rate=1.2)
    with pytest.raises(ValueError, match="targets"):
        imp_rates(lenet_300_100(), targets=["fc1.bias"])


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(0, 1), rounds=st.integers(1, 8), seed=st.integers(0, 1000))
def test_imp_per_round_counts_are_exact_and_masks_grow(rate, rounds, seed):
    rng = np.random.default_rng(seed)
    w = {"a": rng.standard_normal((13, 7)), "b": rng.standard_normal((4, 3, 2, 2))}
    masks, pruned = {}, {"a": 0, "b": 0}
    for _ in range(rounds):
        w = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in w.items()}  # "retrained"
        new = imp_prune_masks(w, {"a": rate, "b": rate / 2}, masks)
        for k, r in (("a", rate), ("b", rate / 2)):
            n = w[k].size
            pruned[k] += round(r * (n - pruned[k]))
            assert np.count_nonzero(~new[k]) == pruned[k]
            if k in masks:
                assert not np.any(new[k] & ~masks[k])
            survivors = np.abs(w[k][new[k]])  # the pruned weights among the remaining are
            removed = np.abs(w[k][masks.get(k, np.ones_like(new[k])) & ~new[k]])  # the smallest
            if survivors.size and removed.size:
                assert removed.max() <= survivors.min()
        masks = new


def test_reset_restores_theta_exactly_on_survivors():
    model = lenet_300_100(seed=0)
    theta0 = {k: v.copy() for k, v in model.params.items()}
    x, y = data(64)
    fit(model, x, y, optimizer=Adam(model.params, lr=1e-2), epochs=1, batch_size=16, rng=0,
        progress=False)
    masks = imp_prune_masks(model.params, imp_rates(model))
    reset_weights_(model, theta0, masks)
    for k, p in model.params.items():
        m = masks.get(k, np.ones(p.shape, dtype=bool))
        assert np.array_equal(p[m], theta0[k][m]) and np.all(p[~m] == 0.0), k
    assert set(model.masks) == set(masks)
    with pytest.raises(ValueError, match="theta"):
        reset_weights_(model, {"fc1.weight": theta0["fc1.weight"]})


def test_random_masks_like_keeps_counts_and_jaccard():
    rng = np.random.default_rng(1)
    masks = {"a": rng.random((20, 30)) < 0.3, "b": rng.random((5, 4, 3, 3)) < 0.7}
    r = random_masks_like(masks, 3)
    for k in masks:
        assert r[k].shape == masks[k].shape and r[k].sum() == masks[k].sum()
    assert not np.array_equal(r["a"], masks["a"])
    assert all(np.array_equal(r[k], random_masks_like(masks, 3)[k]) for k in masks)
    a = {"x": np.array([True, True, False, False])}
    b = {"x": np.array([True, False, True, False])}
    assert mask_jaccard(a, b) == 1 / 3
    assert mask_jaccard(a, a) == 1.0
    assert mask_jaccard(a, {}) == 0.5  # missing = dense


class StopAt(Callback):
    def __init__(self, k):
        self.k = k

    def on_step_end(self, state):
        if state.step == self.k:
            state.stop_training = True


@pytest.mark.parametrize("rewind", [0, 5])
def test_lottery_rounds_reset_or_rewind_and_controls(rewind):
    x, y = data(120, seed=1)
    xv, yv = data(40, seed=2)
    xt, yt = data(40, seed=3)
    model = lenet_300_100(seed=4)
    theta0 = {k: v.copy() for k, v in model.params.items()}
    starts, masks_seen = [], []

    def on_start(j, net):
        starts.append(j)
        masks_seen.append({k: v.copy() for k, v in net.masks.items()})
        for k, p in net.params.items():
            m = net.masks.get(k, np.ones(p.shape, dtype=bool))
            assert np.array_equal(p[m], res_theta[k][m]) and np.all(p[~m] == 0.0)

    # theta_k: the dense run's weights after `rewind` iterations (same optimizer and data order)
    ref = model.copy()
    if rewind:
        fit(ref, x, y, optimizer=Adam(ref.params, lr=1.2e-3), epochs=1, batch_size=20, rng=7,
            progress=False, callbacks=[StopAt(rewind)])
    res_theta = {k: v.copy() for k, v in ref.params.items()}

    res = lottery_ticket(model, x, y, xv, yv, xt, yt, rounds=2, epochs=1, batch_size=20, seed=7,
                         rewind_iter=rewind, eval_every=2, on_round_start=on_start)
    for k in theta0:  # the caller's model is untouched
        assert np.array_equal(model.params[k], theta0[k])
    for k, v in res.theta_reset.items():
        assert np.array_equal(v, res_theta[k]), k
    assert starts == [1, 2] and [r["round"] for r in res.rounds] == [0, 1, 2]
    sizes = {"fc1.weight": 235200, "fc2.weight": 30000, "fc3.weight": 1000}
    pruned = dict.fromkeys(sizes, 0)
    for j, rec in enumerate(res.rounds[1:], start=1):
        for k, n in sizes.items():
            pruned[k] += round(res.rates[k] * (n - pruned[k]))
            assert rec["kept"][k] == n - pruned[k]
            assert rec["reinit_kept"][k] == rec["random_kept"][k] == rec["kept"][k]
        assert rec["remaining"] == pytest.approx(sum(rec["kept"].values()) / sum(sizes.values()))
        prev = masks_seen[j - 2] if j > 1 else {}
        assert rec["jaccard"] == mask_jaccard(masks_seen[j - 1], prev)
        for k in prev:
            assert not np.any(masks_seen[j - 1][k] & ~prev[k])
        assert 0 <= rec["early_stop_iteration"] <= 6 and 0 <= rec["test_accuracy"] <= 1
    assert res.rounds[0]["jaccard"] is None
    assert "round" in res.format() and res.to_dict()["rewind_iter"] == rewind


def test_lottery_bad_input():
    x, y = data(20)
    m = lenet_300_100()
    with pytest.raises(ValueError, match="rewind_iter"):
        lottery_ticket(m, x, y, x, y, x, y, rounds=1, epochs=1, batch_size=10, rewind_iter=3)
    with pytest.raises(ValueError, match="controls"):
        lottery_ticket(m, x, y, x, y, x, y, rounds=1, epochs=1, controls=("bogus",))
    with pytest.raises(ValueError, match="rounds"):
        lottery_ticket(m, x, y, x, y, x, y, rounds=-1, epochs=1)
    with pytest.raises(TypeError, match="model"):
        lottery_ticket(None, x, y, x, y, x, y, rounds=1, epochs=1)
