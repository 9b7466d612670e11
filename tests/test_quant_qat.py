"""Quantization-aware training: the FakeQuantize weight transform, the ActFakeQuant layer, the
straight-through estimator against torch's autograd, prepare_qat / calibrate / freeze_, spec
round trips, and a short QAT run on LeNet-300-100."""

import numpy as np
import pytest

from tinyprune.nn.gradcheck import check_model_gradients
from tinyprune.nn.layers import Flatten, Linear, ReLU, layer_from_spec
from tinyprune.nn.model import Sequential
from tinyprune.nn.models import lenet5, lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.nn.transforms import transform_from_spec
from tinyprune.quantize.affine import fake_quantize, fake_quantize_forward, qparams_from_range
from tinyprune.quantize.fake_quant import ActFakeQuant, FakeQuantize
from tinyprune.quantize.observers import MinMaxObserver, PercentileObserver
from tinyprune.quantize.qat import FreezeObservers, calibrate, freeze_, prepare_qat


def _mlp(dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential([("flatten", Flatten()), ("fc1", Linear(12, 7, rng=rng)),
                        ("relu1", ReLU()), ("fc2", Linear(7, 3, rng=rng))],
                       input_shape=(3, 2, 2), name="mlp")
    return model.set_dtype(dtype)


def _data(n=16, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 2, 2)).astype(dtype), rng.integers(0, 3, n)


# ------------------------------------------------------------------------ the weight transform
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("symmetric", [True, False])
def test_fake_quantize_transform_forward_and_ste_backward(per_channel, symmetric):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 8)).astype(np.float32)
    t = FakeQuantize(4, symmetric=symmetric, per_channel=per_channel)
    w_eff, cache = t.forward(w)
    lo, hi = (w.min(1), w.max(1)) if per_channel else (w.min(), w.max())
    s, z = qparams_from_range(lo, hi, bits=4, signed=True, symmetric=symmetric)
    y, mask = fake_quantize_forward(w, s, z, bits=4)
    np.testing.assert_array_equal(w_eff, y)
    assert w_eff.dtype == w.dtype and not np.shares_memory(w_eff, w)
    dw = rng.standard_normal(w.shape).astype(np.float32)
    np.testing.assert_array_equal(t.backward(dw, cache), np.where(mask, dw, 0))
    # at most 2^bits distinct values per channel (per tensor)
    rows = w_eff if per_channel else w_eff.reshape(1, -1)
    assert max(len(np.unique(r)) for r in rows) <= 16


def test_symmetric_scheme_clamps_the_extreme_weight_as_torch_does():
    # S = max|w| / 7.5 = 1 at 4 bits: 7.5 / S rounds (half to even) to 8 > 7, so the largest
    # weight is clamped and gets no gradient, while -7.5 rounds to -8 (inside), as torch does
    w = np.array([[-7.5, 1.0, 2.0, 7.5]])
    w_eff, mask = FakeQuantize(4, per_channel=False).forward(w)
    np.testing.assert_array_equal(mask, [[True, True, True, False]])
    np.testing.assert_array_equal(w_eff, [[-8.0, 1.0, 2.0, 7.0]])


def test_frozen_transform_keeps_its_grid_and_round_trips_through_spec():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 6))
    t = FakeQuantize(3, per_channel=True)
    with pytest.raises(RuntimeError, match="no quantization parameters"):
        t.freeze()
    t.freeze(w)
    s = t.scale.copy()
    w_eff, _ = t.forward(w * 10)  # a frozen grid ignores the new range: most values clamp
    np.testing.assert_array_equal(t.scale, s)
    np.testing.assert_array_equal(w_eff, fake_quantize(w * 10, t.scale, t.zero_point, bits=3))
    clone = transform_from_spec(t.spec(), t.arrays())
    assert type(clone) is FakeQuantize and clone.spec() == t.spec()
    np.testing.assert_array_equal(clone.forward(w)[0], t.forward(w)[0])
    assert t.spec()["module"] == "tinyprune.quantize.fake_quant"


@pytest.mark.parametrize("kwargs, err, match", [
    ({"bits": 1}, ValueError, "bits"),
    ({"observer": "ema"}, ValueError, "observer"),
    ({"frozen": True}, ValueError, "scale"),
    ({"frozen": 1}, TypeError, "frozen"),
    ({"symmetric": "yes"}, TypeError, "symmetric"),
])
def test_fake_quantize_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        FakeQuantize(**kwargs)


def test_fake_quantize_rejects_nan_weights():
    w = np.array([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="finite"):
        FakeQuantize(8, per_channel=False, symmetric=False).forward(w)


# ------------------------------------------------------------------------- the activation layer
def test_act_fake_quant_observes_only_in_training_or_calibration():
    layer = ActFakeQuant(MinMaxObserver(bits=4, signed=False))
    x = np.array([[0.0, 0.3, 1.5]], np.float32)
    np.testing.assert_array_equal(layer.forward(x), x)  # no range yet: identity
    assert not layer.observer.calibrated
    y = layer.forward(x, train=True)
    s, z = qparams_from_range(0.0, 1.5, bits=4, signed=False)
    np.testing.assert_array_equal(y, fake_quantize(x, s, z, bits=4, signed=False))
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [[1.0, 1.0, 1.0]])
    layer.forward(x * 100)  # inference: the range does not move
    assert layer.observer.max_val == np.float32(1.5)
    layer.forward(np.array([[-1.0, 2.0, 0.5]], np.float32), train=True)
    # the range grew to [-1, 2]; STE: ones inside the clamping range
    assert layer.observer.min_val == -1.0 and layer.observer.max_val == 2.0
    layer.freeze()
    layer.forward(x * 100, train=True)
    assert layer.observer.max_val == 2.0
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [[1.0, 0.0, 0.0]])


def test_act_fake_quant_spec_round_trip_keeps_the_range():
    layer = ActFakeQuant(PercentileObserver(percentile=99.0, bits=6))
    layer.forward(np.linspace(0, 1, 101, dtype=np.float32)[None], train=True)
    clone = layer_from_spec(layer.spec())
    assert type(clone) is ActFakeQuant and clone.spec() == layer.spec()
    x = np.random.default_rng(0).uniform(0, 1, (3, 5)).astype(np.float32)
    np.testing.assert_array_equal(clone.forward(x), layer.forward(x))


def test_act_fake_quant_bad_arguments():
    with pytest.raises(TypeError, match="observer"):
        ActFakeQuant("ema")
    with pytest.raises(ValueError, match="per tensor"):
        ActFakeQuant(MinMaxObserver(per_channel=True))
    with pytest.raises(ValueError, match="finite"):
        ActFakeQuant().forward(np.array([np.inf], np.float32))


# ------------------------------------------------------------------------------- prepare_qat
def test_prepare_qat_builds_a_new_model_and_leaves_the_original_alone():
    model = lenet_300_100()
    before = {k: v.copy() for k, v in model.params.items()}
    q = prepare_qat(model, bits=4)
    assert list(q.layers) == ["flatten", "fc1", "relu1", "relu1_fq", "fc2", "relu2", "relu2_fq",
                              "fc3"]
    assert list(model.layers) == ["flatten", "fc1", "relu1", "fc2", "relu2", "fc3"]
    assert model.transforms == {} and set(q.transforms) == {"fc1.weight", "fc2.weight",
                                                             "fc3.weight"}
    for k, v in q.params.items():
        np.testing.assert_array_equal(v, before[k])
        assert not np.shares_memory(v, model.params[k])
    # the spec round-trips (the registered layer names its module)
    spec = q.spec()
    assert spec["layers"][3]["module"] == "tinyprune.quantize.fake_quant"
    assert list(Sequential.from_spec(spec).layers) == list(q.layers)
    q_in = prepare_qat(lenet5(), quantize_input=True, layers=["fc1"])
    assert list(q_in.layers)[0] == "input_fq" and set(q_in.transforms) == {"fc1.weight"}


def test_prepare_qat_bad_input():
    with pytest.raises(TypeError, match="Sequential"):
        prepare_qat([("fc", Linear(2, 2))])
    with pytest.raises(ValueError, match="not a Linear or Conv2d"):
        prepare_qat(lenet_300_100(), layers=["relu1"])
    with pytest.raises(ValueError, match="bits"):
        prepare_qat(lenet_300_100(), bits=9)
    with pytest.raises(ValueError, match="observer"):
        prepare_qat(lenet5(), act_observer="histogram")
    with pytest.raises(ValueError, match="averaging_constant"):
        prepare_qat(lenet5(), averaging_constant=2.0)
    with pytest.raises(ValueError, match="already has a transform"):
        prepare_qat(prepare_qat(lenet_300_100()))
    model = Sequential([("a", Linear(2, 2)), ("r", ReLU()), ("r_fq", ReLU())])
    with pytest.raises(ValueError, match="clash"):
        prepare_qat(model)


def test_calibrate_returns_a_frozen_copy_and_ptq_is_close_to_float():
    model = _mlp(seed=3)
    x, y = _data(64)
    q = prepare_qat(model, bits=8, act_observer="minmax")  # EMA would clip later batches
    with pytest.raises(ValueError, match="X_cal"):
        calibrate(q, np.zeros((0, 3, 2, 2)))
    with pytest.raises(ValueError, match="prepare_qat"):
        calibrate(model, x)
    ptq = calibrate(q, x, batch_size=16)
    assert not q["relu1_fq"].observer.calibrated  # the input model is untouched
    obs = ptq["relu1_fq"].observer
    assert obs.calibrated and obs.frozen and ptq.transforms["fc1.weight"].frozen
    np.testing.assert_allclose(ptq(x), model(x), atol=0.05)
    # inference never moves a frozen range
    lo = obs.min_val.copy()
    ptq(x * 5)
    assert obs.min_val == lo


def test_freeze_observers_callback():
    model = prepare_qat(_mlp(dtype="float32"))
    x, y = _data(64, dtype=np.float32)
    cb = FreezeObservers(after_steps=2)
    fit(model, x, y, optimizer=SGD(model.params, lr=0.01), epochs=1, batch_size=16, rng=0,
        progress=False, callbacks=[cb])
    assert cb.done and model["relu1_fq"].observer.frozen
    assert all(t.frozen for t in model.transforms.values())
    with pytest.raises(ValueError, match="after_steps"):
        FreezeObservers(-1)


def test_freeze_bad_input():
    with pytest.raises(TypeError, match="Sequential"):
        freeze_("model")


# ------------------------------------------------------------------------- gradients
def test_gradient_check_of_the_differentiable_parameters_with_frozen_fake_quant():
    # rounding is piecewise constant; with frozen weight grids (and no activation rounding)
    # the loss is differentiable in the biases, and the backward pass must
    # use the same fake-quantized weights as the forward pass
    model = _mlp()
    x, y = _data(8)
    for name in ("fc1.weight", "fc2.weight"):
        t = FakeQuantize(3, per_channel=True)
        t.freeze(model.params[name])
        model.set_transform(name, t)
    errors = check_model_gradients(model, x, y, params=["fc1.bias", "fc2.bias"], check_input=False)
    assert max(errors.values()) < 1e-6
    # and the STE weight gradient is the mask times the gradient w.r.t. the effective weight
    plain = _mlp()
    for name in ("fc1.weight", "fc2.weight"):
        plain.set_param(name, model.layers[name[:3]].effective_param("weight"))
    for m in (model, plain):
        m.backward(m.forward(x, train=True) - 0.5)
    for name in ("fc1.weight", "fc2.weight"):
        _, mask = model.transforms[name].forward(model.params[name])
        np.testing.assert_array_equal(model.grads[name], np.where(mask, plain.grads[name], 0))


def test_qat_forward_and_backward_equal_torch_autograd():
    torch = pytest.importorskip("torch")
    model = _mlp(seed=5)
    x, y = _data(32, seed=6)
    q = calibrate(prepare_qat(model, bits=4, per_channel=True, act_bits=5), x)
    # a power-of-two activation step (S = 3.875 / 31 = 1/8, Z = 0): torch's float64 per-tensor
    # kernel rounds S (q - Z) to float32, which is then exact, so both sides are bit-comparable
    q["relu1_fq"].observer = MinMaxObserver(bits=5, signed=False, min_val=0.0, max_val=3.875,
                                            frozen=True)
    logits = q.forward(x, train=True)
    n = x.shape[0]
    dlogits = np.random.default_rng(7).standard_normal(logits.shape) / n
    q.backward(dlogits)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    p = {k: t(v).requires_grad_(True) for k, v in q.params.items()}
    tw = q.transforms

    def wfq(name):
        s, z = tw[name].scale, tw[name].zero_point
        return torch.fake_quantize_per_channel_affine(p[name], t(s), t(z.astype(np.int32)), 0,
                                                      -8, 7)
    obs = q["relu1_fq"].observer
    s_a, z_a = obs.qparams()
    h = torch.relu(t(x).reshape(n, -1) @ wfq("fc1.weight").T + p["fc1.bias"])
    h = torch.fake_quantize_per_tensor_affine(h, float(s_a), int(z_a), 0, 31)
    out = h @ wfq("fc2.weight").T + p["fc2.bias"]
    out.backward(t(dlogits))
    np.testing.assert_allclose(logits, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    for k in p:
        np.testing.assert_allclose(q.grads[k], p[k].grad.numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=k)
    # the straight-through estimator really zeroed some clamped weights' gradients
    assert (q.grads["fc1.weight"] == 0).any()


# ------------------------------------------------------------------------------- QAT with fit
def test_qat_fine_tuning_on_lenet_300_100_decreases_the_loss_and_stays_on_the_grid():
    from tinyprune.datasets import load_dataset

    data = load_dataset("fashion-mnist-small", normalize=True)
    x, y = data.x_train[:640], data.y_train[:640]
    q = prepare_qat(lenet_300_100(seed=0), bits=4, per_channel=True)
    hist = fit(q, x, y, optimizer=SGD(q.params, lr=0.05, momentum=0.9), epochs=2,
               batch_size=64, rng=0, progress=False)  # 20 steps
    assert hist.loss[-1] < 0.8 * hist.loss[0]
    assert evaluate(q, data.x_test, data.y_test)["accuracy"] > 0.5
    for name in ("fc1", "fc2", "fc3"):
        layer = q[name]
        w_eff = layer.effective_param("weight")
        t = layer.transforms["weight"]
        # on the 4-bit grid of each output channel: k * S_c with k in [-8, 7]
        k = w_eff / t.scale[:, None]
        np.testing.assert_allclose(k, np.rint(k), atol=1e-4)
        assert np.rint(k).min() >= -8 and np.rint(k).max() <= 7
        np.testing.assert_array_equal(fake_quantize(w_eff, t.scale, t.zero_point, bits=4), w_eff)


def test_checkpoint_round_trip_keeps_the_activation_ranges(tmp_path):
    from tinyprune.nn.checkpoint import load_checkpoint, save_checkpoint

    x, _ = _data(32, dtype=np.float32)
    q = calibrate(prepare_qat(_mlp(dtype="float32")), x)
    save_checkpoint(tmp_path / "q.npz", q)
    loaded = load_checkpoint(tmp_path / "q.npz").model
    assert type(loaded["relu1_fq"]) is ActFakeQuant
    assert loaded["relu1_fq"].spec() == q["relu1_fq"].spec()
    # weight transforms are not in checkpoints yet (engine): set them again from the spec
    for name, t in q.transforms.items():
        loaded.set_transform(name, transform_from_spec(t.spec(), t.arrays()))
    np.testing.assert_array_equal(loaded(x), q(x))
