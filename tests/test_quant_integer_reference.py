"""Integer-only inference against an independent reference written here, plainly.

The reference shares no code with ``tinyprune.quantize.integer`` beyond the affine quantizer
(tested on its own): it calibrates min-max ranges on the float model's activations, quantizes
the weights (int8, symmetric) and biases (int32, scale ``S_w S_in``), dequantizes them and the
8-bit activations, runs the layers in float64 (a convolution written as a sum over kernel
offsets, no im2col) and requantizes with the documented formula ``q = clamp(Z + round(y / S),
lo, q_max)``.

Which agreement to expect. The integer model multiplies the int32 accumulator by ``M0 2^-31``
and rounds, then divides by ``2^shift`` and rounds again (gemmlowp). Writing ``v = y / S_out``,
its result ``r`` satisfies ``|r - v| <= 1/2 + [shift > 0] 2^-(shift+1) + |v| 2^-31`` (the
second term is the double rounding, the third ``M0``'s 31-bit precision). So ``r`` *equals*
``round(v)`` wherever ``v`` is farther than that slack from a half-integer, and is within one
step elsewhere; the last layer's logits are ``S_w S_in acc``, equal to the float64 reference up
to summation order. A layer-by-layer comparison (each layer fed the integer model's own input)
checks exactly that; end to end, the rare one-step differences propagate, so the logits are only
close. A conv weight flattened in the wrong order (commit 7e8b34d) fails it at once.
"""

import numpy as np
import pytest

from tinyprune.datasets import load_dataset
from tinyprune.nn.functional import maxpool2d_forward
from tinyprune.nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from tinyprune.nn.models import lecture_net, lenet5, lenet_300_100
from tinyprune.quantize import calibrate, convert, prepare_qat, simulate
from tinyprune.quantize import integer as integer_module
from tinyprune.quantize.affine import qparams_from_range, qrange, quantize

BUILDS = {"lecture_net": lecture_net, "lenet5": lenet5, "lenet_300_100": lenet_300_100}


@pytest.fixture(scope="module")
def images():
    data = load_dataset("fashion-mnist-small", normalize=True)
    return data.x_train[:96], data.x_test[:24]


# ----------------------------------------------------------------------- the reference
def ref_conv(x, w, b, stride, padding):
    """out[n, o, h, v] = b[o] + sum_{c, i, j} w[o, c, i, j] x_pad[n, c, h s + i, v s + j]."""
    n, _, hgt, wid = x.shape
    c_out, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out = (hgt + 2 * padding - kh) // stride + 1
    w_out = (wid + 2 * padding - kw) // stride + 1
    out = np.zeros((n, c_out, h_out, w_out))
    for i in range(kh):  # one kernel offset at a time: a different route from im2col
        for j in range(kw):
            patch = xp[:, :, i:i + stride * h_out:stride, j:j + stride * w_out:stride]
            out += np.tensordot(patch, w[:, :, i, j], axes=([1], [1])).transpose(0, 3, 1, 2)
    return out + b[None, :, None, None]


def ref_plan(model, x_cal, signed):
    """Per weight layer: the grids and integer parameters, derived from scratch."""
    layers = list(model.layers.items())
    act = lambda h: tuple(qparams_from_range(h.min(), h.max(), bits=8, signed=signed))  # noqa: E731
    s_in, z_in = act(x_cal)
    plan, h = {}, x_cal
    for i, (name, layer) in enumerate(layers):
        h = layer.forward(h, train=False)
        if not isinstance(layer, (Linear, Conv2d)):
            continue
        relu = i + 1 < len(layers) and isinstance(layers[i + 1][1], ReLU)
        last = not any(isinstance(m, (Linear, Conv2d)) for _, m in layers[i + 1:])
        w = layer.effective_param("weight")
        s_w, _ = qparams_from_range(w.reshape(w.shape[0], -1).min(1),
                                    w.reshape(w.shape[0], -1).max(1), signed=True, symmetric=True)
        q_w = quantize(w, s_w, np.zeros(w.shape[0], np.int64), signed=True)  # int8
        acc_scale = s_w.astype(np.float64) * float(s_in)  # (C_out,)
        q_b = np.rint(layer.params["bias"].astype(np.float64) / acc_scale)  # int32 values
        entry = {"layer": layer, "relu": relu, "s_in": float(s_in), "z_in": int(z_in),
                 "s_w": s_w.astype(np.float64), "q_w": q_w, "q_b": q_b}
        if not last:
            s_in, z_in = act(np.maximum(h, 0) if relu else h)  # the output point of the layer
            entry.update(s_out=float(s_in), z_out=int(z_in))
        plan[name] = entry
    return plan


def ref_layer(e, q, signed):
    """Dequantize, compute in float64, requantize: ``(q_out or logits, v = y / S_out)``."""
    a = e["s_in"] * (q.astype(np.float64) - e["z_in"])  # the real input
    w_hat = e["q_w"].astype(np.float64) * e["s_w"].reshape((-1,) + (1,) * (e["q_w"].ndim - 1))
    b_hat = e["q_b"] * e["s_w"] * e["s_in"]
    layer = e["layer"]
    if isinstance(layer, Conv2d):
        y = ref_conv(a, w_hat, b_hat, layer.stride, layer.padding)
    else:
        y = a @ w_hat.T + b_hat
    if "s_out" not in e:
        return y, None
    if e["relu"]:
        y = np.maximum(y, 0.0)
    v = y / e["s_out"]
    qmin, qmax = qrange(8, signed)
    return np.clip(np.rint(v) + e["z_out"], qmin, qmax), v


def check_layer_by_layer(model, im, x_cal, x, signed):
    """Every weight step of ``im`` against the reference, on the step's own integer input."""
    plan = ref_plan(model, x_cal, signed)
    assert (im.input_scale, im.input_zero_point) == tuple(
        qparams_from_range(x_cal.min(), x_cal.max(), signed=signed))
    q = im.quantize_input(x)
    slack_hits, n_values = 0, 0
    for step in im.steps:
        out = step.run(q)
        name = getattr(step, "name", None)
        if name in plan:
            e = plan[name]
            np.testing.assert_array_equal(step.q_w, e["q_w"])  # same integers, same layout
            np.testing.assert_array_equal(step.q_b, e["q_b"])
            ref, v = ref_layer(e, q, signed)
            if v is None:  # logits: S_w S_in acc, equal up to float64 summation order
                np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
            else:
                assert (step.s_out, step.z_out) == (e["s_out"], e["z_out"])
                shift = step.shift.reshape((1, -1) + (1,) * (v.ndim - 2))
                slack = np.where(shift > 0, 2.0 ** (-shift - 1.0), 0.0) + np.abs(v) * 2.0 ** -29
                near_tie = np.abs(np.abs(v - np.floor(v)) - 0.5) <= slack + 1e-9
                diff = out.astype(np.int64) - ref
                assert np.abs(diff).max(initial=0) <= 1, name
                np.testing.assert_array_equal(diff[~near_tie], 0, err_msg=name)
                slack_hits += int(near_tie.sum())
                n_values += v.size
        q = out
    assert n_values and slack_hits <= 0.01 * n_values  # the exact comparison covers >= 99%
    return q


def ref_forward(model, plan, x, signed):
    """The reference end to end: float64 layers on dequantized 8-bit values."""
    first = next(iter(plan.values()))
    q = quantize(x, np.float32(first["s_in"]), first["z_in"], signed=signed)
    for name, layer in model.layers.items():
        if name in plan:
            q, _ = ref_layer(plan[name], q, signed)
        elif isinstance(layer, MaxPool2d):  # pool the dequantized values, requantize (exact)
            q = maxpool2d_forward(q.astype(np.float64), layer.kernel_size, layer.stride,
                                  layer.padding)[0]
        elif isinstance(layer, Flatten):
            q = q.reshape(q.shape[0], -1)
        elif not isinstance(layer, (ReLU, Dropout)):  # ReLUs are fused in these models
            raise AssertionError(name)
    return q


# ---------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("activation_dtype", ["uint8", "int8"])
@pytest.mark.parametrize("net", sorted(BUILDS))
def test_integer_model_matches_the_independent_reference(net, activation_dtype, images):
    x_cal, x = images
    model = BUILDS[net](seed=3)
    signed = activation_dtype == "int8"
    im = convert(model, x_cal, activation_dtype=activation_dtype)
    logits = check_layer_by_layer(model, im, x_cal, x, signed)
    # end to end the reference rounds on its own; one-step differences at near-ties propagate
    ref = ref_forward(model, ref_plan(model, x_cal, signed), x, signed)
    assert np.linalg.norm(logits - ref) <= 1e-2 * np.linalg.norm(ref)


def test_the_reference_catches_a_conv_weight_in_the_wrong_order(images, monkeypatch):
    # the bug fixed in 7e8b34d: flattening (KH, KW, C_in) while im2col's columns run over
    # (C_in, KH, KW); simulate() shared it, so only an independent reference sees it
    def transposed(self):
        w = self.q_w.transpose(0, 2, 3, 1) if self.conv else self.q_w
        return w.reshape(self.q_w.shape[0], -1)

    x_cal, x = images
    model = lenet5(seed=0)
    monkeypatch.setattr(integer_module._WeightLayer, "_wmat", transposed)
    im = convert(model, x_cal)
    np.testing.assert_array_equal(im(x), simulate(im, x))  # blind to it
    with pytest.raises(AssertionError, match="conv2"):  # conv1 has C_in = 1: same order
        check_layer_by_layer(model, im, x_cal, x, signed=False)


def test_int8_and_uint8_activations_are_the_same_grid_shifted_by_128(images):
    x_cal, x = images
    model = lecture_net(seed=1)
    iu = convert(model, x_cal, activation_dtype="uint8")
    i8 = convert(model, x_cal, activation_dtype="int8")
    assert iu.activation_dtype == np.uint8 and i8.activation_dtype == np.int8
    assert i8.input_scale == iu.input_scale and i8.input_zero_point == iu.input_zero_point - 128
    qu, q8 = iu.quantize_input(x), i8.quantize_input(x)
    assert q8.dtype == np.int8 and -128 <= i8.input_zero_point <= 127
    for su, s8 in zip(iu.steps, i8.steps, strict=True):
        np.testing.assert_array_equal(q8.astype(np.int64), qu.astype(np.int64) - 128)
        qu, q8 = su.run(qu), s8.run(q8)
        if qu.dtype.kind == "u":
            assert q8.dtype == np.int8
    np.testing.assert_array_equal(q8, qu)  # identical logits
    np.testing.assert_array_equal(i8(x), simulate(i8, x))


def test_a_qat_model_converts_to_int8_activations_on_its_own_grids(images):
    x_cal, x = images
    q = calibrate(prepare_qat(lenet_300_100(seed=2), bits=8, quantize_input=True), x_cal)
    iu = convert(q, x_cal)
    i8 = convert(q, x_cal, activation_dtype="int8")
    s, z = q["input_fq"].observer.qparams()
    assert i8.input_scale == s and i8.input_zero_point == int(z) - 128
    fc1 = i8.steps[1]
    assert fc1.z_out == int(q["relu1_fq"].observer.qparams()[1]) - 128
    np.testing.assert_array_equal(i8(x), iu(x))


@pytest.mark.parametrize("bad", ["int16", "uint4", np.uint8, None])
def test_convert_rejects_other_activation_dtypes(bad, images):
    with pytest.raises(ValueError, match="activation_dtype"):
        convert(lenet_300_100(), images[0], activation_dtype=bad)


def test_a_trained_conv_net_runs_on_integers_close_to_float():
    # LeNet-5 trained 200 SGD steps on the embedded subset. Measured: logits 0.4% from float,
    # 99.9% of the predictions agree; with the conv weights in the wrong order (before 7e8b34d)
    # the logits were 95% off and 19% of the predictions agreed.
    from tinyprune.nn.optim import SGD
    from tinyprune.nn.train import fit

    data = load_dataset("fashion-mnist-small", normalize=True)
    model = lenet5(seed=0)
    fit(model, data.x_train, data.y_train, optimizer=SGD(model.params, lr=0.01, momentum=0.9),
        epochs=1, batch_size=30, rng=0, progress=False)  # 200 steps
    z_float = model(data.x_test)
    z_int = convert(model, data.x_train[:500]).predict(data.x_test)
    assert np.mean(z_float.argmax(1) == data.y_test) > 0.7  # it did learn
    assert np.linalg.norm(z_int - z_float) <= 0.02 * np.linalg.norm(z_float)
    assert np.mean(z_int.argmax(1) == z_float.argmax(1)) >= 0.97


def test_predict_batches_equal_one_pass(images):
    x_cal, x = images
    im = convert(lenet5(seed=0), x_cal)
    whole = im(x)
    for bs in (None, 1, 5, 24, 1000):
        np.testing.assert_array_equal(im.predict(x, batch_size=bs), whole)
    # the default batch keeps the largest GEMM input (conv2's im2col: 64 rows x 500 per image)
    # near GEMM_ELEMENTS values
    assert max(getattr(s, "gemm_elements_per_image", 0) for s in im.steps) == 64 * 500
    with pytest.raises(ValueError, match="x"):
        im.predict(x[:0])
    with pytest.raises(TypeError, match="x"):
        im.predict(x.tolist())
    with pytest.raises(ValueError, match="batch_size"):
        im.predict(x, batch_size=0)
