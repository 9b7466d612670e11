"""The engine's hooks for the techniques: a loss argument for fit, weight transforms on
Linear/Conv2d, and registered layer types (each shown on a small but real use)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from round_transform import RoundToGrid

from tinyprune.nn import Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential, lenet5
from tinyprune.nn.batching import iterate_minibatches
from tinyprune.nn.checkpoint import load_checkpoint, save_checkpoint
from tinyprune.nn.gradcheck import check_model_gradients
from tinyprune.nn.layers import layer_from_spec, register_layer
from tinyprune.nn.losses import (
    Batch,
    CrossEntropyLoss,
    Loss,
    log_softmax,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import fit
from tinyprune.nn.transforms import (
    Identity,
    WeightTransform,
    register_transform,
    transform_from_spec,
)


def _data(n=96, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8)).astype(dtype)
    y = (x[:, 0, :4].sum(axis=(1, 2)) > x[:, 0, 4:].sum(axis=(1, 2))).astype(np.int64)
    return x, y


def _convnet(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return Sequential([
        ("conv1", Conv2d(1, 4, 3, padding=1, rng=rng, dtype=dtype)), ("relu1", ReLU()),
        ("pool", MaxPool2d(2)), ("flatten", Flatten()),
        ("fc1", Linear(64, 10, rng=rng, dtype=dtype)), ("relu2", ReLU()),
        ("fc2", Linear(10, 2, rng=rng, dtype=dtype)),
    ], input_shape=(1, 8, 8))


# ----------------------------------------------------------------------------- loss hook


class SoftTargetLoss(Loss):
    """Cross-entropy against per-sample soft targets looked up by ``batch.index`` (the shape of
    a distillation loss: ``-sum_c t_ic log p_ic`` averaged over the batch)."""

    def __init__(self, targets):
        self.targets = targets  # (N_train, C)

    def forward(self, logits, batch):
        t = self.targets[batch.index]  # (B, C)
        logp = log_softmax(logits)
        return float(-(t * logp).sum(axis=1).mean()), (softmax(logits), t)

    def backward(self, cache):
        p, t = cache
        return ((p - t) / p.shape[0]).astype(p.dtype)


def test_default_loss_is_cross_entropy_bit_for_bit():
    x, y = _data()
    a, b = _convnet(), _convnet()
    ha = fit(a, x, y, optimizer=SGD(a.params, lr=0.1, momentum=0.9), epochs=2, batch_size=16,
             rng=3, progress=False)
    hb = fit(b, x, y, optimizer=SGD(b.params, lr=0.1, momentum=0.9), epochs=2, batch_size=16,
             rng=3, progress=False, loss=CrossEntropyLoss())
    assert ha.loss == hb.loss
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_a_custom_loss_sees_the_batch_and_its_indices():
    x, y = _data()
    seen = []

    class Recorder(CrossEntropyLoss):
        def forward(self, logits, batch):
            seen.append(batch)
            return super().forward(logits, batch)

    model = _convnet()
    fit(model, x, y, optimizer=SGD(model.params, lr=0.05), epochs=1, batch_size=32, rng=0,
        progress=False, loss=Recorder())
    assert len(seen) == 3
    order = np.concatenate([b.index for b in seen])
    np.testing.assert_array_equal(np.sort(order), np.arange(96))  # each sample once
    for b in seen:
        np.testing.assert_array_equal(b.x, x[b.index])
        np.testing.assert_array_equal(b.y, y[b.index])


def test_soft_target_loss_trains_towards_its_targets_and_is_gradient_checked():
    x, y = _data(n=64, dtype=np.float64)
    targets = np.full((64, 2), 0.1)
    targets[np.arange(64), 1 - y] = 0.9  # the *opposite* class: the loss must drive this
    loss = SoftTargetLoss(targets)
    model = _convnet(dtype=np.float64)
    errors = check_model_gradients(model, x[:8], y[:8], loss=SoftTargetLoss(targets[:8]),
                                   check_input=False)  # the hook concerns the parameters
    assert max(errors.values()) < 1e-6, errors
    hist = fit(model, x, y, optimizer=SGD(model.params, lr=0.2, momentum=0.9), epochs=15,
               batch_size=16, rng=0, progress=False, loss=loss)
    assert hist.loss[-1] < hist.loss[0]
    pred = model.forward(x).argmax(axis=1)
    assert (pred == 1 - y).mean() > 0.8  # it learned the soft targets, not the labels


def test_fit_rejects_a_loss_that_is_not_a_loss():
    x, y = _data(n=8)
    model = _convnet()
    with pytest.raises(TypeError, match="loss"):
        fit(model, x, y, optimizer=SGD(model.params, lr=0.1), rng=0, progress=False,
            loss=lambda logits, batch: 0.0)


def test_iterate_minibatches_returns_the_indices_on_request():
    x, y = _data(n=10)
    for shuffle in (False, True):
        for xb, yb, idx in iterate_minibatches(x, y, 4, shuffle=shuffle, rng=1,
                                               return_index=True):
            assert idx.dtype == np.int64
            np.testing.assert_array_equal(xb, x[idx])
            np.testing.assert_array_equal(yb, y[idx])
    plain = [b[0] for b in iterate_minibatches(x, y, 4, shuffle=True, rng=1)]
    with_idx = [b[0] for b in iterate_minibatches(x, y, 4, shuffle=True, rng=1, return_index=True)]
    for a, b in zip(plain, with_idx, strict=True):
        np.testing.assert_array_equal(a, b)  # the same order either way


def test_batch_holds_x_y_and_index():
    b = Batch(np.zeros((2, 3)), np.array([0, 1]), np.array([5, 7]))
    assert b.index.tolist() == [5, 7]
    with pytest.raises(AttributeError):
        b.x = None  # frozen


# ------------------------------------------------------------------------ weight transforms


@register_transform
class SignFlip(WeightTransform):
    """``W_eff = s * W`` with a stored sign array ``s`` (a transform with state arrays)."""

    def __init__(self, signs):
        self.signs = signs

    def forward(self, w):
        return (w * self.signs).astype(w.dtype), None

    def backward(self, dw_eff, cache):
        return dw_eff * self.signs  # chain rule: dW_eff/dW = s

    def arrays(self):
        return {"signs": self.signs}

    @classmethod
    def from_spec(cls, spec, arrays):
        return cls(arrays["signs"])


def _all_weights(model):
    return [k for k in model.params if k.endswith("weight")]


def test_identity_transform_changes_nothing_bit_for_bit():
    x, y = _data()
    a, b = _convnet(), _convnet()
    for name in _all_weights(b):
        b.set_transform(name, Identity())
    for m in (a, b):
        fit(m, x, y, optimizer=SGD(m.params, lr=0.1, momentum=0.9), epochs=2, batch_size=16,
            rng=0, progress=False)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_identity_transform_is_gradient_checked():
    x, y = _data(n=6, seed=3, dtype=np.float64)  # no sample sits at a ReLU kink
    model = _convnet(dtype=np.float64)
    for name in _all_weights(model):
        model.set_transform(name, Identity())
    errors = check_model_gradients(model, x, y, check_input=False)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("fast", [True, False])
def test_rounding_transform_with_ste_computes_with_rounded_weights(fast):
    x, y = _data(n=12, dtype=np.float64)
    model = _convnet(dtype=np.float64)
    if hasattr(model, "fast"):
        model.fast = fast
    rounded = model.copy()
    for name in _all_weights(model):
        model.set_transform(name, RoundToGrid(0.25))
        rounded.set_param(name, np.round(model.params[name] * 4.0) / 4.0)
    # forward: the network computes with the rounded weights
    np.testing.assert_array_equal(model.forward(x), rounded.forward(x))
    # backward: the STE gradient w.r.t. the stored W is the true gradient at W_eff = round(W) ...
    for m in (model, rounded):
        _, cache = softmax_cross_entropy_forward(m.forward(x, train=True), y)
        m.backward(softmax_cross_entropy_backward(cache))
    for k in model.grads:
        np.testing.assert_array_equal(model.grads[k], rounded.grads[k])
    # ... which is correct: checked numerically on the rounded network
    errors = check_model_gradients(rounded, x, y, check_input=False)
    assert max(errors.values()) < 1e-6, errors
    # the stored weights are not rounded: the optimizer updates them, not W_eff
    assert not np.array_equal(model.params["fc1.weight"], rounded.params["fc1.weight"])


def test_transform_with_a_chain_rule_backward_is_gradient_checked():
    x, y = _data(n=6, seed=3, dtype=np.float64)  # no sample sits at a ReLU kink
    model = _convnet(dtype=np.float64)
    rng = np.random.default_rng(1)
    for name in _all_weights(model):
        signs = np.where(rng.random(model.params[name].shape) < 0.5, -1.0, 1.0)
        model.set_transform(name, SignFlip(signs))
    errors = check_model_gradients(model, x, y, check_input=False)
    assert max(errors.values()) < 1e-6, errors


def test_transforms_survive_copy_and_checkpoints(tmp_path):
    x, _ = _data(n=5)
    model = _convnet()
    model.set_transform("fc1.weight", RoundToGrid(0.5))
    signs = np.where(np.random.default_rng(0).random((4, 1, 3, 3)) < 0.5, -1.0, 1.0)
    model.set_transform("conv1.weight", SignFlip(signs.astype(np.float32)))
    ref = model.forward(x)
    twin = model.copy()
    assert set(twin.transforms) == {"fc1.weight", "conv1.weight"}
    np.testing.assert_array_equal(twin.forward(x), ref)
    twin.transforms["conv1.weight"].signs[...] = 1  # a copy: the original keeps its own state
    np.testing.assert_array_equal(model.forward(x), ref)
    path = tmp_path / "t.npz"
    save_checkpoint(path, model)
    loaded = load_checkpoint(path).model
    assert isinstance(loaded.transforms["fc1.weight"], RoundToGrid)
    assert loaded.transforms["fc1.weight"].step == 0.5
    np.testing.assert_array_equal(loaded.transforms["conv1.weight"].signs, signs)
    np.testing.assert_array_equal(loaded.forward(x), ref)


def test_transform_errors():
    model = _convnet()
    with pytest.raises(TypeError, match="WeightTransform"):
        model.set_transform("fc1.weight", lambda w: w)
    with pytest.raises(ValueError, match="no parameter 'weight'"):
        model["relu1"].set_transform("weight", Identity())
    with pytest.raises(TypeError, match="does not support"):
        Scale(3).set_transform("weight", Identity())  # its kernel reads params directly
    with pytest.raises(KeyError, match="fc9.weight"):
        model.set_transform("fc9.weight", Identity())

    class WrongShape(WeightTransform):
        def forward(self, w):
            return w[:1], None

    model.set_transform("fc2.weight", WrongShape())
    with pytest.raises(ValueError, match="shape"):
        model.forward(np.zeros((1, 1, 8, 8), dtype=np.float32))
    model.set_transform("fc2.weight", None)
    assert "fc2.weight" not in model.transforms
    with pytest.raises(ValueError, match="unknown weight transform type"):
        transform_from_spec({"type": "Nope"})
    with pytest.raises(ValueError, match="tinyprune module"):
        transform_from_spec({"type": "Nope", "module": "os"})


# --------------------------------------------------------------------- registered layers


@register_layer
class Scale(Module):
    """``y = x * s`` with a learnable per-feature scale ``s`` (a registered layer type)."""

    def __init__(self, features, *, rng=None, dtype=np.float32):
        super().__init__()
        self.features = features
        self.params["weight"] = np.ones(features, dtype=dtype)
        self.grads["weight"] = np.zeros(features, dtype=dtype)

    def forward(self, x, train=False):
        self._cache = x if train else None
        return x * self.params["weight"]

    def backward(self, dout, need_dx=True):
        x = self._cached()
        self.grads["weight"] = (dout * x).sum(axis=0)
        return dout * self.params["weight"]

    def output_shape(self, in_shape):
        return tuple(in_shape)

    def spec(self):
        return {"type": "Scale", "features": self.features}


def _scaled_mlp(dtype=np.float32):
    rng = np.random.default_rng(0)
    return Sequential([("flatten", Flatten()), ("scale", Scale(64, dtype=dtype)),
                       ("fc1", Linear(64, 2, rng=rng, dtype=dtype))], input_shape=(1, 8, 8))


def test_a_registered_layer_trains_and_round_trips_through_spec_and_checkpoint(tmp_path):
    x, y = _data()
    model = _scaled_mlp()
    fit(model, x, y, optimizer=SGD(model.params, lr=0.1), epochs=2, batch_size=16, rng=0,
        progress=False)
    assert not np.all(model.params["scale.weight"] == 1.0)  # it trained
    spec = json.loads(json.dumps(model.spec()))
    entry = spec["layers"][1]
    assert entry["type"] == "Scale" and entry["module"] == __name__
    rebuilt = Sequential.from_spec(spec)
    assert isinstance(rebuilt["scale"], Scale) and rebuilt["scale"].features == 64
    path = tmp_path / "scaled.npz"
    save_checkpoint(path, model)
    loaded = load_checkpoint(path).model
    np.testing.assert_array_equal(loaded.params["scale.weight"], model.params["scale.weight"])
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def test_engine_layers_record_no_module_and_unknown_types_are_named():
    spec = lenet5().spec()
    assert all("module" not in entry for entry in spec["layers"])
    with pytest.raises(ValueError, match="unknown layer type 'Nope'"):
        layer_from_spec({"type": "Nope"})
    with pytest.raises(ValueError, match="tinyprune module"):
        layer_from_spec({"type": "Nope", "module": "subprocess"})
    with pytest.raises(ValueError, match="cannot import"):
        layer_from_spec({"type": "Nope", "module": "tinyprune.no_such_module"})
    with pytest.raises(ValueError, match="bad arguments"):
        layer_from_spec({"type": "Linear", "in_features": 3})
    with pytest.raises(TypeError, match="Module subclass"):
        register_layer(int)


def test_a_spec_imports_the_module_that_defines_its_layer_type():
    code = ("from tinyprune.nn.layers import layer_from_spec, LAYERS\n"
            "assert 'Identity' not in LAYERS\n"
            "layer = layer_from_spec({'type': 'Scale', 'features': 3, 'module': 'tinyprune._demo'})\n")
    # tinyprune has no such module: the loader tries the import and names it in the error
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "cannot import 'tinyprune._demo'" in out.stderr


def test_the_engine_and_pruning_import_without_tqdm():
    code = ("import sys; sys.modules['tqdm'] = None\n"
            "import numpy as np\n"
            "import tinyprune.prune, tinyprune.nn.train as t\n"
            "from tinyprune.nn import lenet_300_100\n"
            "from tinyprune.nn.optim import SGD\n"
            "m = lenet_300_100()\n"
            "x = np.zeros((4, 1, 28, 28), np.float32); y = np.zeros(4, np.int64)\n"
            "t.fit(m, x, y, optimizer=SGD(m.params, lr=0.1), rng=0, progress=False)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
