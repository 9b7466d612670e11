"""Tests for tinyprune.nn.train: fit / evaluate / predict and the callback protocol."""

import numpy as np
import pytest

from tinyprune.nn.layers import Dropout, Linear, ReLU
from tinyprune.nn.losses import cross_entropy
from tinyprune.nn.model import Sequential
from tinyprune.nn.optim import SGD, Adam, StepLR
from tinyprune.nn.train import (
    Callback,
    History,
    TrainingDivergedError,
    TrainState,
    evaluate,
    fit,
    predict,
)


def _blobs(n=300, seed=0, dtype=np.float32):
    """Three well-separated Gaussian blobs in 2-D."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = rng.integers(0, 3, size=n)
    X = centers[y] + 0.7 * rng.standard_normal((n, 2))
    return X.astype(dtype), y


def _mlp(seed=0, dropout=None):
    layers = [("fc1", Linear(2, 16, rng=seed)), ("relu1", ReLU())]
    if dropout is not None:
        layers.append(("drop1", Dropout(dropout, rng=seed + 1)))
    layers.append(("fc2", Linear(16, 3, rng=seed + 2)))
    return Sequential(layers, input_shape=(2,))


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def _rec(self, name, state):
        self.events.append((name, state.epoch, state.step))

    def on_train_begin(self, state):
        self._rec("train_begin", state)

    def on_epoch_begin(self, state):
        self._rec("epoch_begin", state)

    def on_before_step(self, state):
        assert state.batch_loss is not None and np.isfinite(state.batch_loss)
        self._rec("before_step", state)

    def on_step_end(self, state):
        self._rec("step_end", state)

    def on_epoch_end(self, state):
        assert len(state.history.loss) == state.epoch + 1
        self._rec("epoch_end", state)

    def on_train_end(self, state):
        self._rec("train_end", state)


def test_fit_learns_separable_blobs():
    X, y = _blobs()
    Xv, yv = _blobs(100, seed=1)
    model = _mlp()
    opt = SGD(model.params, lr=0.1, momentum=0.9)
    chance = 1 / 3
    before = evaluate(model, Xv, yv)
    hist = fit(model, X, y, optimizer=opt, epochs=5, batch_size=32, rng=0,
               validation_data=(Xv, yv), progress=False)
    assert isinstance(hist, History)
    assert hist.accuracy[-1] > 0.9 > chance
    assert hist.val_accuracy[-1] > 0.9
    assert hist.val_loss[-1] < before["loss"]
    assert hist.loss[-1] < hist.loss[0]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert len(getattr(hist, key)) == 5
    assert hist.as_dict()["lr"] == [0.1] * 5


def test_history_without_validation_and_zero_epochs():
    X, y = _blobs(50)
    model = _mlp()
    hist = fit(model, X, y, optimizer=Adam(model.params, lr=1e-2), epochs=3, batch_size=16,
               rng=1, progress=False)
    assert len(hist.loss) == len(hist.accuracy) == 3
    assert hist.val_loss == [] and hist.val_accuracy == []
    assert all(0.0 <= a <= 1.0 for a in hist.accuracy)
    hist = fit(model, X, y, optimizer=Adam(model.params), epochs=0, rng=1, progress=False)
    assert hist.loss == []


def test_callbacks_order_and_counts():
    X, y = _blobs(50)
    model = _mlp()
    rec, rec2 = Recorder(), Recorder()
    fit(model, X, y, optimizer=SGD(model.params, lr=0.05), epochs=2, batch_size=16, rng=0,
        callbacks=[rec, rec2], progress=False)
    steps = 4  # ceil(50 / 16)
    expected = [("train_begin", 0, 0)]
    step = 0
    for e in range(2):
        expected.append(("epoch_begin", e, step))
        for _ in range(steps):
            step += 1
            expected += [("before_step", e, step), ("step_end", e, step)]
        expected.append(("epoch_end", e, step))
    expected.append(("train_end", 1, step))
    assert rec.events == expected
    assert rec2.events == expected


def test_drop_last_changes_steps_per_epoch():
    X, y = _blobs(50)
    model = _mlp()
    rec = Recorder()
    seen = []

    class Size(Callback):
        def on_train_begin(self, state):
            seen.append(state.steps_per_epoch)

    fit(model, X, y, optimizer=SGD(model.params, lr=0.05), epochs=1, batch_size=16, rng=0,
        drop_last=True, callbacks=[rec, Size()], progress=False)
    assert seen == [3]
    assert sum(e[0] == "step_end" for e in rec.events) == 3
    with pytest.raises(ValueError, match="drop_last"):
        fit(model, X, y, optimizer=SGD(model.params, lr=0.05), batch_size=64, rng=0,
            drop_last=True, progress=False)


def test_before_step_sees_gradients_and_can_modify_them():
    X, y = _blobs(40)
    model = _mlp()
    w0 = model.params["fc1.weight"].copy()

    class FreezeFc1(Callback):
        def on_before_step(self, state):
            g = state.model.grads["fc1.weight"]
            assert np.any(g != 0)
            g[...] = 0.0

    fit(model, X, y, optimizer=SGD(model.params, lr=0.1), epochs=2, batch_size=8, rng=0,
        callbacks=[FreezeFc1()], progress=False)
    np.testing.assert_array_equal(model.params["fc1.weight"], w0)


def test_stop_training_flag():
    X, y = _blobs(64)
    model = _mlp()
    rec = Recorder()

    class StopAt(Callback):
        def on_step_end(self, state):
            if state.step == 3:
                state.stop_training = True

    hist = fit(model, X, y, optimizer=SGD(model.params, lr=0.05), epochs=5, batch_size=8, rng=0,
               callbacks=[StopAt(), rec], progress=False)
    assert len(hist.loss) == 1
    assert [e[0] for e in rec.events][-2:] == ["epoch_end", "train_end"]
    assert sum(e[0] == "step_end" for e in rec.events) == 3


def test_divergence_raises_naming_epoch_and_step():
    X, y = _blobs(64)
    model = _mlp()
    rec = Recorder()
    with np.errstate(all="ignore"), pytest.raises(TrainingDivergedError) as info:
        fit(model, X, y, optimizer=SGD(model.params, lr=1e30), epochs=3, batch_size=8, rng=0,
            callbacks=[rec], progress=False)
    last_step = max(e[2] for e in rec.events)
    msg = str(info.value)
    assert f"step {last_step + 1}" in msg and "epoch 1/3" in msg and "learning rate" in msg
    assert isinstance(info.value, FloatingPointError)


def test_same_seed_gives_bit_identical_params():
    X, y = _blobs(100)

    def run(seed):
        model = _mlp(dropout=0.3)
        fit(model, X, y, optimizer=SGD(model.params, lr=0.1, momentum=0.9), epochs=2,
            batch_size=16, rng=seed, progress=False)
        return model.params

    a, b, c = run(7), run(7), run(8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_generator_rng_is_consumed_so_epochs_differ():
    X, y = _blobs(40)
    model = _mlp()
    g = np.random.default_rng(0)
    states = []
    for _ in range(2):
        fit(model, X, y, optimizer=SGD(model.params, lr=0.0), epochs=1, batch_size=40, rng=g,
            progress=False)
        states.append(g.bit_generator.state["state"]["state"])
    assert states[0] != states[1]


def test_progress_false_prints_nothing_and_true_shows_a_bar(capsys):
    X, y = _blobs(50)
    model = _mlp()
    fit(model, X, y, optimizer=SGD(model.params, lr=0.05), epochs=2, batch_size=16, rng=0,
        progress=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    fit(model, X, y, optimizer=SGD(model.params, lr=0.05), epochs=1, batch_size=16, rng=0,
        progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "epoch 1/1" in err


def test_scheduler_is_stepped_per_epoch():
    X, y = _blobs(32)
    model = _mlp()
    opt = SGD(model.params, lr=0.1)
    hist = fit(model, X, y, optimizer=opt, epochs=4, batch_size=16, rng=0, progress=False,
               scheduler=StepLR(opt, step_size=2, gamma=0.5))
    assert hist.lr == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert opt.lr == pytest.approx(0.025)


def test_model_masks_are_enforced_during_fit():
    X, y = _blobs(64)
    model = _mlp()
    mask = np.random.default_rng(0).random(model.params["fc1.weight"].shape) < 0.5
    model.masks["fc1.weight"] = mask
    opt = SGD(model.params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    fit(model, X, y, optimizer=opt, epochs=3, batch_size=8, rng=0, progress=False)
    assert np.all(model.params["fc1.weight"][~mask] == 0.0)
    assert np.all(opt.state["fc1.weight"]["momentum_buffer"][~mask] == 0.0)
    assert not hasattr(opt, "masks")  # masks live in the model only


def test_masks_added_by_a_callback_take_effect():
    X, y = _blobs(64)
    model = _mlp()
    mask = np.zeros(model.params["fc2.weight"].shape, dtype=bool)
    mask[:, :4] = True

    class PruneAfterFirstEpoch(Callback):
        def on_epoch_end(self, state):
            if state.epoch == 0:
                state.model.masks["fc2.weight"] = mask

    fit(model, X, y, optimizer=Adam(model.params, lr=1e-2), epochs=2, batch_size=8, rng=0,
        callbacks=[PruneAfterFirstEpoch()], progress=False)
    assert np.all(model.params["fc2.weight"][~mask] == 0.0)


def test_fit_validation():
    X, y = _blobs(20)
    model = _mlp()
    opt = SGD(model.params, lr=0.1)
    with pytest.raises(ValueError, match="rng"):
        fit(model, X, y, optimizer=opt, progress=False)
    fit(model, X, y, optimizer=opt, shuffle=False, progress=False)  # no rng needed
    with pytest.raises(ValueError, match="model's parameter arrays"):
        fit(model, X, y, optimizer=SGD(_mlp().params, lr=0.1), rng=0, progress=False)
    with pytest.raises(ValueError, match="y"):
        fit(model, X, y[:-1], optimizer=opt, rng=0, progress=False)
    with pytest.raises(TypeError, match="integer"):
        fit(model, X, y.astype(float), optimizer=opt, rng=0, progress=False)
    with pytest.raises(TypeError, match=r"callbacks\[0\]"):
        fit(model, X, y, optimizer=opt, rng=0, callbacks=[object()], progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, X, y, optimizer=opt, rng=0, epochs=-1, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, X, y, optimizer=opt, rng=0, batch_size=0, progress=False)
    with pytest.raises(TypeError, match="validation_data"):
        fit(model, X, y, optimizer=opt, rng=0, validation_data=X, progress=False)
    with pytest.raises(TypeError, match="optimizer"):
        fit(model, X, y, optimizer="sgd", rng=0, progress=False)


def test_evaluate_and_predict_match_manual_computation_and_batching():
    X, y = _blobs(37)
    model = _mlp(dropout=0.5)
    logits = model.forward(X)
    for bs in (1, 5, 37, 1000):
        p = predict(model, X, batch_size=bs)
        np.testing.assert_allclose(p, logits, rtol=1e-6, atol=1e-6)
        m = evaluate(model, X, y, batch_size=bs)
        assert m["loss"] == pytest.approx(cross_entropy(logits, y), rel=1e-5)
        assert m["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))
    assert p.dtype == np.float32 and p.shape == (37, 3)
    with pytest.raises(ValueError, match="X"):
        predict(model, X[:0])
    with pytest.raises(ValueError, match="y"):
        evaluate(model, X, y[:3])


def test_float64_training_works():
    X, y = _blobs(60, dtype=np.float64)
    model = _mlp().set_dtype(np.float64)
    hist = fit(model, X, y, optimizer=SGD(model.params, lr=0.1), epochs=2, batch_size=16,
               rng=0, progress=False)
    assert model.params["fc1.weight"].dtype == np.float64 and np.isfinite(hist.loss).all()


def test_train_state_defaults():
    s = TrainState(model=None, optimizer=None)
    assert s.step == 0 and s.epoch == 0 and not s.stop_training and s.batch_loss is None
    assert Callback().on_epoch_end(s) is None
