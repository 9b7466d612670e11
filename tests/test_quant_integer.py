"""Integer-only inference: gemmlowp's fixed-point primitives bit-exact (edge cases, loop
twins), quantize_multiplier, the integer model equal to its float64 simulation bit for bit,
close to the fake-quantized float computation, and within 0.3 pt of float accuracy at 8 bits."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU
from tinyprune.nn.model import Sequential
from tinyprune.nn.models import lecture_net, lenet5, lenet_300_100
from tinyprune.quantize.affine import qparams_from_range, quantize
from tinyprune.quantize.fixed_point import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_naive,
    quantize_multiplier,
    rounding_divide_by_pot,
    rounding_divide_by_pot_naive,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_doubling_high_mul_naive,
)
from tinyprune.quantize.integer import IntegerModel, convert, int_gemm, int_gemm_naive, simulate
from tinyprune.quantize.qat import calibrate, prepare_qat

int32s = st.integers(INT32_MIN, INT32_MAX)


# ------------------------------------------------------------------------ fixed point
@pytest.mark.parametrize("a, b, expected", [
    (INT32_MIN, INT32_MIN, INT32_MAX),  # the one overflow: saturates
    (INT32_MIN, INT32_MAX, -INT32_MAX),  # -(2^31 - 1) - 0.5 + 2^-31 rounds up
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),
    (1, 1 << 30, 1),  # 0.5 rounds up
    (-1, 1 << 30, 0),  # -0.5 rounds up to 0
    (-3, 1 << 30, -1),  # -1.5 rounds up to -1
    (3, 1 << 30, 2),  # 1.5 -> 2
    (-5, 1 << 30, -2),  # -2.5 -> -2
    (1 << 30, 1 << 30, 1 << 29),  # 0.5 * 0.5 = 0.25 in Q31
    (0, INT32_MIN, 0),
    (-(1 << 30) - 1, 1 << 30, -(1 << 29)),  # -2^29 - 0.5 rounds up
])
def test_saturating_rounding_doubling_high_mul_edge_cases(a, b, expected):
    assert saturating_rounding_doubling_high_mul_naive(a, b) == expected
    assert int(saturating_rounding_doubling_high_mul(np.array(a), np.array(b))) == expected


@pytest.mark.parametrize("x, e, expected", [
    (5, 1, 3), (-5, 1, -3), (4, 1, 2), (-4, 1, -2),  # ties away from zero
    (7, 2, 2), (-7, 2, -2), (6, 2, 2), (-6, 2, -2), (5, 2, 1), (-5, 2, -1),
    (123, 0, 123), (-123, 0, -123),
    (INT32_MIN, 31, -1), (INT32_MAX, 31, 1), (INT32_MIN, 1, -(1 << 30)),
    (-1, 1, -1), (1, 1, 1), (-1, 2, 0), (1, 2, 0),
])
def test_rounding_divide_by_pot_edge_cases(x, e, expected):
    assert rounding_divide_by_pot_naive(x, e) == expected
    assert int(rounding_divide_by_pot(np.array(x), e)) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(int32s, int32s, st.integers(0, 31)), min_size=1, max_size=20))
def test_vectorized_fixed_point_equals_the_loop_twins(triples):
    a = np.array([t[0] for t in triples])
    b = np.array([t[1] for t in triples])
    e = np.array([t[2] for t in triples])
    np.testing.assert_array_equal(saturating_rounding_doubling_high_mul(a, b),
                                  [saturating_rounding_doubling_high_mul_naive(*t[:2])
                                   for t in triples])
    np.testing.assert_array_equal(rounding_divide_by_pot(a, e),
                                  [rounding_divide_by_pot_naive(t[0], t[2]) for t in triples])


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-9, 0.999999), st.integers(-(2 ** 24), 2 ** 24))
def test_quantize_multiplier_and_requantization(m, acc):
    m0, shift = quantize_multiplier(m)
    assert 2 ** 30 <= m0 < 2 ** 31 and 0 <= shift <= 31
    assert abs(m0 * 2.0 ** (-31 - shift) - m) <= m * 2.0 ** -31  # 31-bit relative precision
    got = int(multiply_by_quantized_multiplier(np.array([acc]), m0, shift)[0])
    assert got == multiply_by_quantized_multiplier_naive(acc, m0, shift)
    # two roundings (Q31 high half, then the shift): within 1/2 + 1/2^(shift+1) of M acc
    assert abs(got - m * acc) <= 0.5 + 0.5 * 2.0 ** -shift + abs(acc) * m * 2.0 ** -30 + 2e-9


def test_requantization_double_rounding_as_gemmlowp():
    # M = 1/4, acc = 1: the high half rounds 0.5 up to 1, then 1 / 2 = 0.5 rounds away from 0
    m0, shift = quantize_multiplier(0.25)
    assert (m0, shift) == (2 ** 30, 1)
    assert int(multiply_by_quantized_multiplier(np.array([1]), m0, shift)[0]) == 1
    assert int(multiply_by_quantized_multiplier(np.array([-1]), m0, shift)[0]) == 0


@pytest.mark.parametrize("m", [0.0, 1.0, 1.5, -0.25, float("nan"), float("inf"), True, 1 - 1e-12,
                               1e-300])
def test_quantize_multiplier_bad_input(m):
    with pytest.raises(ValueError, match="m"):
        quantize_multiplier(m)


@pytest.mark.parametrize("call, err, match", [
    (lambda: rounding_divide_by_pot(np.array([1]), 32), ValueError, "exponent"),
    (lambda: rounding_divide_by_pot(np.array([1]), -1), ValueError, "exponent"),
    (lambda: rounding_divide_by_pot(np.array([2 ** 31]), 1), ValueError, "int32"),
    (lambda: saturating_rounding_doubling_high_mul(np.array([1.0]), 1), TypeError, "a"),
])
def test_fixed_point_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_int_gemm_equals_the_int64_reference():
    rng = np.random.default_rng(0)
    a = rng.integers(-255, 256, (50, 300))
    b = rng.integers(-128, 128, (300, 20)).astype(np.int8)
    np.testing.assert_array_equal(int_gemm(a, b), int_gemm_naive(a, b))
    big = np.full((2, 2), 2 ** 30, dtype=np.int64)  # beyond float64's exact range: int64 path
    np.testing.assert_array_equal(int_gemm(big, big), int_gemm_naive(big, big))
    low = np.full((1, 2), -128, dtype=np.int8)  # |int8 min| is not an int8
    np.testing.assert_array_equal(int_gemm(low, low.T), [[32768]])


# --------------------------------------------------------------------------- the model
class _Odd(Module):
    """A layer integer inference does not know."""

    def forward(self, x, train=False):
        return x


def _small_cnn(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential([
        ("conv1", Conv2d(1, 4, 3, padding=1, rng=rng)), ("relu1", ReLU()),
        ("pool1", MaxPool2d(2)), ("conv2", Conv2d(4, 6, 3, rng=rng)),
        ("pool2", MaxPool2d(2)), ("relu2", ReLU()), ("drop", Dropout(0.5, rng=rng)),
        ("flatten", Flatten()), ("fc1", Linear(6 * 2 * 2, 8, rng=rng)), ("relu3", ReLU()),
        ("fc2", Linear(8, 3, rng=rng)),
    ], input_shape=(1, 12, 12), name="small")


def _images(n, shape=(1, 12, 12), seed=1):
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32)


@pytest.mark.parametrize("per_channel", [True, False])
def test_integer_model_equals_its_float64_simulation_bit_for_bit(per_channel):
    model = _small_cnn()
    x_cal, x = _images(64), _images(32, seed=2)
    im = convert(model, x_cal, per_channel=per_channel)
    q = im.quantize_input(x)
    assert q.dtype == np.uint8
    for step in im.steps:  # every intermediate integer tensor agrees exactly
        q_int, q_sim = step.run(q), step.simulate(q)
        np.testing.assert_array_equal(q_int, q_sim)
        q = q_int
    np.testing.assert_array_equal(im(x), simulate(im, x))
    weight_steps = [s for s in im.steps if hasattr(s, "q_w")]
    assert all(s.q_w.dtype == np.int8 and s.q_b.dtype == np.int32 for s in weight_steps)
    assert [s.relu for s in weight_steps] == [True, False, True, False]


def test_integer_layers_agree_with_the_fake_quantized_float_computation():
    # requantization by M0 and shifts equals round(y / S_out) of the real computation
    # y = W_hat a_hat + b, except (rarely, by one step) where y / S_out is within the
    # fixed-point rounding of a half
    model = lenet_300_100(seed=0)
    x = _images(200, shape=(1, 28, 28))
    im = convert(model, x)
    q = im.quantize_input(x)
    q = im.steps[0].run(q)  # flatten
    fc1 = im.steps[1]
    out = fc1.run(q)  # (N, 300) uint8
    a_hat = (q.astype(np.float64) - fc1.z_in) * (fc1.acc_scale[0] / fc1.s_w[0])  # S_in (q - Z)
    w_hat = fc1.q_w.astype(np.float64) * fc1.s_w[:, None]
    y = a_hat @ w_hat.T + fc1.q_b * fc1.acc_scale  # (N, 300)
    s_out = fc1.acc_scale / (fc1.m0 * 2.0 ** (-31 - fc1.shift))  # S_out implied by M
    q_float = np.clip(np.rint(y / s_out) + fc1.z_out, fc1.z_out, 255)
    diff = np.abs(out.astype(np.int64) - q_float)
    assert diff.max() <= 1 and diff.mean() < 1e-3


def test_zoo_models_run_end_to_end_on_integers():
    x_cal = _images(16, shape=(1, 28, 28))
    for build in (lecture_net, lenet5, lenet_300_100):
        model = build(seed=0)
        im = convert(model, x_cal)
        logits = im(x_cal[:4])
        assert logits.shape == (4, 10) and np.isfinite(logits).all()
        np.testing.assert_array_equal(logits, simulate(im, x_cal[:4]))
    # close to the float model for the MLP (1% of the logits' norm at 8 bits). The untrained conv
    # nets' logits barely vary between images (std ~0.03), so their closeness is judged on
    # trained models (the accuracy tests), not here.
    model = lenet_300_100(seed=0)
    logits, ref = convert(model, x_cal)(x_cal[:4]), model(x_cal[:4])
    assert np.linalg.norm(logits - ref) < 0.02 * np.linalg.norm(ref)


def test_convert_reads_weights_through_transforms():
    from tinyprune.quantize.weight_sharing import share_weights

    model = share_weights(lenet_300_100(seed=1), 3)
    im = convert(model, _images(8, shape=(1, 28, 28)))
    for step in im.steps:
        if hasattr(step, "q_w"):  # 8 shared values per layer -> at most 8 int8 values per row
            assert max(len(np.unique(row)) for row in step.q_w) <= 8


@pytest.mark.parametrize("bits", [4, 2])
def test_convert_a_low_bit_qat_model_keeps_its_weight_grid(bits):
    x = _images(64, shape=(1, 28, 28))
    q = calibrate(prepare_qat(lenet_300_100(seed=2), bits=bits), x)
    im = convert(q, x)
    for step in (s for s in im.steps if hasattr(s, "q_w")):
        t = q.transforms[f"{step.name}.weight"]
        np.testing.assert_array_equal(step.s_w, t.scale)  # the b-bit scales, per channel
        assert -(2 ** (bits - 1)) <= step.q_w.min() and step.q_w.max() <= 2 ** (bits - 1) - 1
        w_eff = q[step.name].effective_param("weight")
        np.testing.assert_array_equal(step.q_w.astype(np.float32) * t.scale[:, None], w_eff)


def test_convert_a_calibrated_qat_model_uses_its_grids():
    x = _images(64, shape=(1, 28, 28))
    q = calibrate(prepare_qat(lenet_300_100(seed=2), bits=8, quantize_input=True), x)
    im = convert(q, x)
    s_in, z_in = q["input_fq"].observer.qparams()
    assert im.input_scale == s_in and im.input_zero_point == z_in
    fc1 = im.steps[1]
    t = q.transforms["fc1.weight"]
    np.testing.assert_array_equal(fc1.s_w, t.scale)  # the QAT weight grid, per channel
    w_eff = q["fc1"].effective_param("weight")
    np.testing.assert_array_equal(fc1.q_w.astype(np.float32) * t.scale[:, None], w_eff)
    s_out, z_out = q["relu1_fq"].observer.qparams()
    np.testing.assert_allclose(fc1.acc_scale / s_out, fc1.m0 * 2.0 ** (-31 - fc1.shift),
                               rtol=2.0 ** -30)
    assert fc1.z_out == z_out
    # the integer network computes what the fake-quantized one does, up to rare +-1 steps
    np.testing.assert_allclose(im(x), q(x), atol=0.05 * np.abs(q(x)).max())
    np.testing.assert_array_equal(im(x), simulate(im, x))
    with pytest.raises(ValueError, match="uint8"):
        convert(calibrate(prepare_qat(lenet_300_100(), act_bits=4), x), x)


@pytest.mark.parametrize("call, err, match", [
    (lambda: convert("model", _images(2)), TypeError, "Sequential"),
    (lambda: convert(_small_cnn(), _images(0)), ValueError, "X_cal"),
    (lambda: convert(_small_cnn(), np.zeros((2, 1, 12, 12), int)), TypeError, "X_cal"),
    (lambda: convert(Sequential([("fc", Linear(144, 2)), ("s", _Odd())], input_shape=(144,)),
                     np.ones((2, 144), np.float32)), TypeError, "not supported"),
    (lambda: convert(Sequential([("fc", Linear(2, 2)), ("r", ReLU())]),
                     np.ones((2, 2), np.float32)), ValueError, "last"),
    (lambda: convert(_small_cnn(), _images(4))(_images(2, shape=(1, 8, 8))), ValueError, "shape"),
    (lambda: simulate("im", _images(2)), TypeError, "IntegerModel"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.slow
def test_int8_accuracy_within_0_3_points_of_float_on_lenet_300_100():
    from tinyprune.datasets import load_dataset
    from tinyprune.nn.optim import SGD
    from tinyprune.nn.train import evaluate, fit

    data = load_dataset("fashion-mnist-small", normalize=True)
    model = lenet_300_100(seed=0)
    fit(model, data.x_train, data.y_train, optimizer=SGD(model.params, lr=0.05, momentum=0.9),
        epochs=1, batch_size=64, rng=0, progress=False)
    float_acc = evaluate(model, data.x_test, data.y_test)["accuracy"]
    im = convert(model, data.x_train[:1000])
    assert isinstance(im, IntegerModel)
    int_acc = float(np.mean(im.predict(data.x_test).argmax(1) == data.y_test))
    assert float_acc > 0.7
    assert abs(int_acc - float_acc) <= 0.003


def test_input_quantization_is_the_affine_quantizer():
    x = _images(4)
    im = convert(_small_cnn(), x)
    s, z = qparams_from_range(x.min(), x.max(), signed=False)
    assert im.input_scale == s and im.input_zero_point == z
    np.testing.assert_array_equal(im.quantize_input(x), quantize(x, s, z, signed=False))


def test_evaluate_runs_an_integer_model_and_training_mode_is_refused():
    from tinyprune.nn.train import evaluate

    rng = np.random.default_rng(0)
    model = lenet_300_100(seed=0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    im = convert(model, x[:32])
    logits = im.predict(x)
    res = evaluate(im, x, y, batch_size=16)
    assert res["accuracy"] == np.mean(logits.argmax(1) == y)
    with pytest.raises(ValueError, match="train"):
        im.forward(x[:2], train=True)
