"""Masked training: pruned weights stay exactly 0.0 under SGD (momentum, Nesterov, weight decay)
and Adam, with gradients and optimizer state masked; masks combine monotonically."""

import numpy as np
import pytest

from tinyprune.nn import lenet_300_100
from tinyprune.nn.masks import zero_pruned_
from tinyprune.nn.optim import SGD, Adam
from tinyprune.nn.train import fit
from tinyprune.prune.masked import (
    apply_masks_,
    check_masks,
    remove_masks_,
    set_masks_,
)


def toy_data(rng, n=256):
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = (x.reshape(n, -1)[:, :392].sum(1) > x.reshape(n, -1)[:, 392:].sum(1)).astype(np.int64)
    return x, y


def random_masks(model, rng, keep=0.3):
    return {k: rng.random(v.shape) < keep for k, v in model.params.items() if k.endswith("weight")}


@pytest.mark.parametrize("make_opt", [
    lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda p: Adam(p, lr=1e-3, weight_decay=1e-3),
], ids=["sgd-momentum-wd", "sgd-nesterov-wd", "adam-wd"])
def test_pruned_weights_stay_exactly_zero_for_100_steps(make_opt):
    rng = np.random.default_rng(0)
    x, y = toy_data(rng, n=100 * 8)
    model = lenet_300_100(seed=0)
    set_masks_(model, random_masks(model, rng))
    before = {k: v.copy() for k, v in model.params.items()}
    opt = make_opt(model.params)
    fit(model, x, y, optimizer=opt, epochs=1, batch_size=8, rng=1, progress=False)
    for name, mask in model.masks.items():
        w = model.params[name]
        assert np.all(w[~mask] == 0.0), name
        assert not np.array_equal(w[mask], before[name][mask]), f"{name} did not train"
        for key, state in opt.state[name].items():
            if isinstance(state, np.ndarray) and state.shape == w.shape:
                assert np.all(state[~mask] == 0.0), f"{name} {key}"


def test_adam_with_eps_zero_is_refused_with_masks():
    rng = np.random.default_rng(1)
    x, y = toy_data(rng, n=64)
    model = lenet_300_100(seed=1)
    set_masks_(model, random_masks(model, rng, keep=0.5))
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match="eps"):
        fit(model, x, y, optimizer=Adam(model.params, lr=1e-3, eps=0.0), epochs=1,
            batch_size=16, rng=0, progress=False)
    for k, v in model.params.items():  # refused before any step
        np.testing.assert_array_equal(v, before[k])


def test_pruned_entries_are_positive_zero_even_from_negative_or_nan_values():
    a = np.array([-3.0, np.nan, 2.0, -np.inf, -0.0], dtype=np.float32)
    keep = np.array([False, False, True, False, True])
    zero_pruned_(a, keep)
    assert a[2] == 2.0 and np.signbit(a[4])  # kept entries untouched (-0.0 stays)
    for i in (0, 1, 3):
        assert a[i] == 0.0 and not np.signbit(a[i])


def test_a_mask_set_before_fit_is_applied_once_per_step_by_the_optimizer():
    # The one mechanism: fit passes model.masks to optimizer.step; nothing else masks gradients.
    rng = np.random.default_rng(4)
    x, y = toy_data(rng, n=32)
    model = lenet_300_100(seed=2)
    set_masks_(model, random_masks(model, rng, keep=0.5))
    calls = []

    class Spy(SGD):
        def step(self, grads, masks=None):
            calls.append(masks)
            super().step(grads, masks=masks)

    fit(model, x, y, optimizer=Spy(model.params, lr=0.1), epochs=1, batch_size=8, rng=0,
        progress=False)
    assert len(calls) == 4 and all(m is model.masks for m in calls)


def test_set_masks_is_monotone_unless_reset():
    rng = np.random.default_rng(2)
    model = lenet_300_100(seed=0)
    a = random_masks(model, rng, keep=0.6)
    b = random_masks(model, rng, keep=0.6)
    set_masks_(model, a)
    set_masks_(model, b)
    for k in a:
        np.testing.assert_array_equal(model.masks[k], a[k] & b[k])
        assert np.all(model.params[k][~(a[k] & b[k])] == 0)
    set_masks_(model, b, reset=True)
    for k in b:
        np.testing.assert_array_equal(model.masks[k], b[k])
    remove_masks_(model)
    assert model.masks == {}


def test_set_masks_does_not_keep_a_reference_to_the_callers_mask():
    model = lenet_300_100(seed=0)
    m = np.ones(model.params["fc1.weight"].shape, dtype=bool)
    set_masks_(model, {"fc1.weight": m})
    m[:] = False
    assert model.masks["fc1.weight"].all()


def test_survivors_keep_their_values():
    rng = np.random.default_rng(3)
    model = lenet_300_100(seed=0)
    before = model.params["fc2.weight"].copy()
    mask = rng.random(before.shape) < 0.5
    apply_masks_(model, {"fc2.weight": mask})
    np.testing.assert_array_equal(model.params["fc2.weight"][mask], before[mask])
    assert np.all(model.params["fc2.weight"][~mask] == 0)


@pytest.mark.parametrize("masks, exc, match", [
    ({"fc9.weight": np.ones((2, 2), bool)}, ValueError, "fc9.weight"),
    ({"fc1.weight": np.ones((3, 3), bool)}, ValueError, r"\(300, 784\)"),
    ({"fc1.weight": np.ones((300, 784))}, TypeError, "boolean"),
    ({"fc1.weight": [[True]]}, TypeError, "boolean"),
])
def test_bad_masks_are_rejected(masks, exc, match):
    model = lenet_300_100()
    with pytest.raises(exc, match=match):
        check_masks(model, masks)
