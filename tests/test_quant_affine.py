"""Uniform affine quantization r = S (q - Z): ranges, torch's observers' (S, Z), quantize /
dequantize / fake-quantize bit-exact against torch, invariants, bad input."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.quantize.affine import (
    EPS,
    SUPPORTED_BITS,
    dequantize,
    fake_quantize,
    fake_quantize_backward,
    fake_quantize_forward,
    int_dtype,
    qparams_from_range,
    qrange,
    quantize,
)


def test_qrange_and_int_dtype():
    assert qrange(8, True) == (-128, 127) and qrange(8, False) == (0, 255)
    assert qrange(2, True) == (-2, 1) and qrange(2, False) == (0, 3)
    assert qrange(16, True) == (-32768, 32767) and qrange(16, False) == (0, 65535)
    assert int_dtype(4, True) == np.int8 and int_dtype(8, False) == np.uint8
    assert int_dtype(16, True) == np.int16 and int_dtype(16, False) == np.uint16


def test_asymmetric_qparams_by_hand():
    # [-1, 3] on uint8: S = 4 / 255, Z = 0 - round(-1 / S) = round(63.75) = 64
    s, z = qparams_from_range(-1.0, 3.0, bits=8, signed=False)
    assert s == np.float32(4.0) / np.float32(255.0) and s.dtype == np.float32
    assert z == 64 and z.dtype == np.int64
    # the range is widened to contain 0: [2, 3] behaves as [0, 3]
    assert qparams_from_range(2.0, 3.0)[1] == -128
    # symmetric signed: Z = 0, S = max|r| / 127.5 (torch's (q_max - q_min) / 2)
    s, z = qparams_from_range(-0.5, 2.0, bits=8, symmetric=True)
    assert s == np.float32(2.0) / np.float32(127.5) and z == 0
    assert qparams_from_range(-0.5, 2.0, bits=4, signed=False, symmetric=True)[1] == 8


def test_zero_is_exact_after_qparams_from_range():
    rng = np.random.default_rng(0)
    for bits in SUPPORTED_BITS:
        for signed in (True, False):
            for symmetric in (True, False):
                lo, hi = sorted(rng.normal(size=2) * 3)
                s, z = qparams_from_range(lo, hi, bits=bits, signed=signed, symmetric=symmetric)
                zero = np.zeros(3, dtype=np.float32)
                q = quantize(zero, s, z, bits=bits, signed=signed)
                assert (q == z).all()
                assert (dequantize(q, s, z, bits=bits, signed=signed) == 0.0).all()


def test_degenerate_range_all_zero_gives_eps_scale_and_exact_zeros():
    # documented choice (as torch): [0, 0] -> S = float32 eps, Z = q_min (asymmetric)
    s, z = qparams_from_range(0.0, 0.0, bits=8, signed=True)
    assert s == EPS and z == -128
    x = np.zeros((2, 3), dtype=np.float32)
    assert (fake_quantize(x, s, z) == 0.0).all()
    # min == max != 0 is not degenerate: the range always contains 0
    s, z = qparams_from_range(3.0, 3.0, bits=8, signed=False)
    assert s == np.float32(3.0) / np.float32(255.0) and z == 0
    y = fake_quantize(np.array([3.0], np.float32), s, z, signed=False)
    assert y[0] == pytest.approx(3.0, abs=float(s) / 2)


def test_quantize_dequantize_by_hand():
    x = np.array([-1.0, -0.05, 0.0, 0.05, 0.15, 0.26, 5.0], dtype=np.float32)
    q = quantize(x, 0.1, 3, bits=4)
    # round half to even: 0.5 -> 0, 1.5 -> 2 (0.05 / 0.1 and 0.15 / 0.1 are not exact halves in
    # float32, so check the integer part the formula gives)
    expected = np.clip(np.rint(x * (np.float32(1) / np.float32(0.1))) + 3, -8, 7)
    np.testing.assert_array_equal(q, expected)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(
        dequantize(q, 0.1, 3, bits=4), ((q.astype(np.float32) - 3) * np.float32(0.1)))


def test_round_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], dtype=np.float32)
    q = quantize(x, 1.0, 0, bits=8)
    np.testing.assert_array_equal(q, [0, 2, 2, 0, -2, -2])


def test_per_channel_quantize_uses_axis_0():
    x = np.array([[0.1, 0.2], [1.0, 2.0]], dtype=np.float32)
    s = np.array([0.1, 1.0], dtype=np.float32)
    z = np.array([0, 1])
    np.testing.assert_array_equal(quantize(x, s, z), [[1, 2], [2, 3]])


def test_fake_quantize_mask_is_taken_after_rounding():
    # q_max = 7 at 4 bits; 7.4 rounds to 7 (inside: gradient 1), 7.6 rounds to 8 (clamped: 0)
    x = np.array([7.4, 7.6, -8.4, -8.6], dtype=np.float64)
    y, mask = fake_quantize_forward(x, 1.0, 0, bits=4)
    np.testing.assert_array_equal(y, [7.0, 7.0, -8.0, -8.0])
    np.testing.assert_array_equal(mask, [True, False, True, False])
    np.testing.assert_array_equal(fake_quantize_backward(np.ones(4), mask), [1.0, 0.0, 1.0, 0.0])


# ------------------------------------------------------------------------------------ bad input
GOOD = np.array([0.5, -0.25], dtype=np.float32)


@pytest.mark.parametrize("call, err, match", [
    (lambda: qrange(1), ValueError, "bits"),
    (lambda: qrange(9), ValueError, "bits"),
    (lambda: qrange(32), ValueError, "bits"),
    (lambda: qrange(8.0), ValueError, "bits"),
    (lambda: qrange(True), ValueError, "bits"),
    (lambda: qrange(8, signed="yes"), TypeError, "signed"),
    (lambda: quantize(GOOD, 0.0, 0), ValueError, "scale"),
    (lambda: quantize(GOOD, -0.1, 0), ValueError, "scale"),
    (lambda: quantize(GOOD, np.nan, 0), ValueError, "scale"),
    (lambda: quantize(GOOD, np.inf, 0), ValueError, "scale"),
    (lambda: quantize(GOOD, 1e-45, 0), ValueError, "overflows"),
    (lambda: quantize(GOOD, 0.1, 128), ValueError, "zero_point"),
    (lambda: quantize(GOOD, 0.1, -1, signed=False), ValueError, "zero_point"),
    (lambda: quantize(GOOD, 0.1, 8, bits=4), ValueError, "zero_point"),
    (lambda: quantize(GOOD, 0.1, 0.5), TypeError, "zero_point"),
    (lambda: quantize(GOOD, 1, 0), TypeError, "scale"),
    (lambda: quantize(np.array([np.nan], np.float32), 0.1, 0), ValueError, "finite"),
    (lambda: quantize(np.array([np.inf], np.float32), 0.1, 0), ValueError, "finite"),
    (lambda: quantize(np.array([1, 2]), 0.1, 0), TypeError, "x"),
    (lambda: quantize([0.5], 0.1, 0), TypeError, "x"),
    (lambda: quantize(GOOD, np.ones(3, np.float32), np.zeros(3, int)), ValueError, "axis 0"),
    (lambda: quantize(GOOD, np.ones(2, np.float32), np.zeros(3, int)), ValueError, "same shape"),
    (lambda: fake_quantize(np.array([np.nan]), 0.1, 0), ValueError, "finite"),
    (lambda: dequantize(np.array([1.0]), 0.1, 0), TypeError, "q"),
    (lambda: dequantize(np.array([200]), 0.1, 0), ValueError, "q"),
    (lambda: dequantize(np.array([1]), 0.1, 0, dtype=np.int32), TypeError, "dtype"),
    (lambda: qparams_from_range(1.0, 0.0), ValueError, "min_val <= max_val"),
    (lambda: qparams_from_range(np.nan, 1.0), ValueError, "min_val"),
    (lambda: qparams_from_range(0.0, np.inf), ValueError, "max_val"),
    (lambda: qparams_from_range(np.zeros(2), np.ones(3)), ValueError, "same shape"),
    (lambda: qparams_from_range(0.0, 1.0, bits=1), ValueError, "bits"),
    (lambda: qparams_from_range(0.0, 1.0, symmetric=1), TypeError, "symmetric"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_inputs_not_modified():
    x = GOOD.copy()
    fake_quantize_forward(x, 0.1, 3)
    quantize(x, 0.1, 3)
    np.testing.assert_array_equal(x, GOOD)


# ------------------------------------------------------------------------------- hypothesis
@st.composite
def grid_case(draw):
    bits = draw(st.sampled_from(SUPPORTED_BITS))
    signed = draw(st.booleans())
    symmetric = draw(st.booleans())
    lo = draw(st.floats(-100, 0, allow_subnormal=False))
    hi = draw(st.floats(0, 100, allow_subnormal=False))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    return bits, signed, symmetric, lo, hi, dtype, seed


@settings(max_examples=200, deadline=None)
@given(grid_case())
def test_round_trip_error_at_most_half_a_step_inside_the_range(case):
    bits, signed, symmetric, lo, hi, dtype, seed = case
    s, z = qparams_from_range(lo, hi, bits=bits, signed=signed, symmetric=symmetric)
    qmin, qmax = qrange(bits, signed)
    lo_rep, hi_rep = float(s) * (qmin - int(z)), float(s) * (qmax - int(z))
    x = np.random.default_rng(seed).uniform(lo_rep, hi_rep, size=64).astype(dtype)
    x = x[(x >= lo_rep) & (x <= hi_rep)]
    err = np.abs(fake_quantize(x, s, z, bits=bits, signed=signed).astype(np.float64) - x)
    # S / 2, plus: 1/S is rounded to float32 as in torch's kernels (relative error <= 2**-24,
    # so x * (1/S) is off by at most |x| / S * 2**-24 steps), plus the rounding of x * (1/S)
    # and of S (q - Z) in x's precision (a few ulps)
    inv_scale_rounding = np.abs(x) * 2.0**-24
    ulp = np.finfo(dtype).eps * (np.abs(x) + float(s))
    assert (err <= float(s) / 2 + inv_scale_rounding + 4 * ulp).all()
    # and dequantize(quantize(x)) is the same value
    q = quantize(x, s, z, bits=bits, signed=signed)
    np.testing.assert_array_equal(dequantize(q, s, z, bits=bits, signed=signed, dtype=dtype),
                                  fake_quantize(x, s, z, bits=bits, signed=signed))


@settings(max_examples=100, deadline=None)
@given(grid_case())
def test_zero_exactly_representable(case):
    bits, signed, symmetric, lo, hi, dtype, _ = case
    s, z = qparams_from_range(lo, hi, bits=bits, signed=signed, symmetric=symmetric)
    zero = np.zeros(4, dtype=dtype)
    assert (quantize(zero, s, z, bits=bits, signed=signed) == z).all()
    assert (fake_quantize(zero, s, z, bits=bits, signed=signed) == 0.0).all()


@settings(max_examples=100, deadline=None)
@given(grid_case(), st.integers(1, 5))
def test_per_channel_equals_per_tensor_on_each_channel(case, channels):
    bits, signed, symmetric, _, _, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((channels, 3, 2)) * rng.uniform(0.1, 10, (channels, 1, 1)))
    x = x.astype(dtype)
    mn, mx = x.reshape(channels, -1).min(1), x.reshape(channels, -1).max(1)
    s, z = qparams_from_range(mn, mx, bits=bits, signed=signed, symmetric=symmetric)
    q = quantize(x, s, z, bits=bits, signed=signed)
    y, mask = fake_quantize_forward(x, s, z, bits=bits, signed=signed)
    for c in range(channels):
        sc, zc = qparams_from_range(mn[c], mx[c], bits=bits, signed=signed, symmetric=symmetric)
        assert sc == s[c] and zc == z[c]
        np.testing.assert_array_equal(q[c], quantize(x[c], sc, zc, bits=bits, signed=signed))
        yc, mc = fake_quantize_forward(x[c], sc, zc, bits=bits, signed=signed)
        np.testing.assert_array_equal(y[c], yc)
        np.testing.assert_array_equal(mask[c], mc)


# ------------------------------------------------------------------------------- torch oracle
torch = pytest.importorskip("torch")
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver  # noqa: E402


def _data(rng, shape, kind):
    x = rng.standard_normal(shape).astype(np.float32) * 2
    if kind == "positive":
        x = np.abs(x) + 0.5
    elif kind == "negative":
        x = -np.abs(x) - 0.5
    elif kind == "zeros":
        x = np.zeros(shape, np.float32)
    return x


def _observer_case(bits, signed, symmetric):
    """torch dtype and kwargs for an observer with our (bits, signed, symmetric)."""
    qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    dtype = torch.qint8 if signed else torch.quint8
    kwargs = {}
    if bits != 8:
        kwargs = dict(zip(("quant_min", "quant_max"), qrange(bits, signed), strict=True))
    return dtype, qscheme, kwargs


@pytest.mark.parametrize("kind", ["normal", "positive", "negative", "zeros"])
@pytest.mark.parametrize("bits", [2, 4, 7, 8])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("symmetric", [False, True])
def test_qparams_equal_torch_minmax_observer(kind, bits, signed, symmetric):
    rng = np.random.default_rng(bits)
    x = _data(rng, (50,), kind)
    dtype, qscheme, kwargs = _observer_case(bits, signed, symmetric)
    obs = MinMaxObserver(dtype=dtype, qscheme=qscheme, **kwargs)
    obs(torch.from_numpy(x))
    ts, tz = obs.calculate_qparams()
    s, z = qparams_from_range(x.min(), x.max(), bits=bits, signed=signed, symmetric=symmetric)
    assert s.tobytes() == ts.numpy().astype(np.float32)[0].tobytes()
    if symmetric and not signed and bits != 8:
        # documented difference: with a custom range torch takes (q_min + q_max) // 2, we keep
        # 2^(bits-1) (torch's own 8-bit default, 128)
        assert int(tz[0]) == (2 ** bits - 1) // 2 and z == 2 ** (bits - 1)
    else:
        assert z == int(tz[0])


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("symmetric", [False, True])
def test_qparams_equal_torch_per_channel_observer(signed, symmetric):
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((6, 4, 3, 3)) * rng.uniform(0.01, 3, (6, 1, 1, 1))).astype(np.float32)
    w[2] = np.abs(w[2])  # an all-positive channel
    w[4] = 0.0  # an all-zero channel (degenerate: eps scale)
    qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8 if signed else torch.quint8,
                                   qscheme=qscheme)
    obs(torch.from_numpy(w))
    ts, tz = obs.calculate_qparams()
    flat = w.reshape(6, -1)
    s, z = qparams_from_range(flat.min(1), flat.max(1), signed=signed, symmetric=symmetric)
    np.testing.assert_array_equal(s, ts.numpy().astype(np.float32))
    np.testing.assert_array_equal(z, tz.numpy())


def _ties(rng, s, n):
    """Values whose x / S is (close to) a half-integer, to exercise rounding."""
    k = rng.integers(-140, 140, size=n).astype(np.float32)
    return ((k + np.float32(0.5)) * np.float32(s)).astype(np.float32)


def _quantize_per_tensor_torch(x, s, z, signed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates quantized tensors
        qt = torch.quantize_per_tensor(torch.from_numpy(x), float(s), int(z),
                                       torch.qint8 if signed else torch.quint8)
        return qt.int_repr().numpy()


def _quantize_per_channel_torch(x, s, z, signed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qt = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(s.astype(np.float64)),
                                        torch.from_numpy(z), 0,
                                        torch.qint8 if signed else torch.quint8)
        return qt.int_repr().numpy()


@pytest.mark.parametrize("signed", [True, False])
def test_quantize_equals_torch_quantize_per_tensor(signed):
    rng = np.random.default_rng(2)
    for trial in range(6):
        x = np.concatenate([rng.standard_normal(5000).astype(np.float32) * 3,
                            _ties(rng, 0.037, 1000)])
        s, z = qparams_from_range(x.min() * rng.uniform(0.3, 1), x.max() * rng.uniform(0.3, 1),
                                  signed=signed, symmetric=(trial % 2 == 0))
        ours = quantize(x, s, z, signed=signed)
        theirs = _quantize_per_tensor_torch(x, s, z, signed)
        t = x * (np.float32(1) / s)
        near_half = np.abs(np.abs(t - np.floor(t)) - 0.5) < 1e-4
        # bit-exact except where torch's kernel adds Z before rounding changes a tie (module doc)
        np.testing.assert_array_equal(ours[~near_half], theirs[~near_half])
        if z % 2 == 0:  # an even Z moves no tie: bit-exact everywhere
            np.testing.assert_array_equal(ours, theirs)


def test_torch_quantize_per_tensor_rounds_after_adding_the_zero_point():
    # the documented tie difference: x / S = 0.5 exactly, Z = 1 (odd)
    x = np.array([0.5, 1.5, 2.5], dtype=np.float32)
    theirs = _quantize_per_tensor_torch(x, np.float32(1.0), 1, signed=True)
    np.testing.assert_array_equal(theirs, np.rint(x + 1))  # [2, 2, 4]: round(x + Z)
    np.testing.assert_array_equal(quantize(x, 1.0, 1), np.rint(x) + 1)  # [1, 3, 3]
    # torch's fake-quantize rounds first, as we do
    fq = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), 1.0, 1, -128, 127)
    np.testing.assert_array_equal(fq.numpy(), fake_quantize(x, 1.0, 1))


@pytest.mark.parametrize("signed", [True, False])
def test_quantize_equals_torch_quantize_per_channel(signed):
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((5, 3, 40)) * rng.uniform(0.05, 3, (5, 1, 1))).astype(np.float32)
    w[:, 0, :] = _ties(rng, 0.02, 40)
    flat = w.reshape(5, -1)
    for symmetric in (False, True):
        s, z = qparams_from_range(flat.min(1), flat.max(1), signed=signed, symmetric=symmetric)
        ours = quantize(w, s, z, signed=signed)
        theirs = _quantize_per_channel_torch(w, s, z, signed)
        t = w * (np.float32(1) / s)[:, None, None]
        near_half = np.abs(np.abs(t - np.floor(t)) - 0.5) < 1e-4
        np.testing.assert_array_equal(ours[~near_half], theirs[~near_half])
        if symmetric and signed:  # Z = 0: bit-exact everywhere
            np.testing.assert_array_equal(ours, theirs)


def test_dequantize_equals_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(300).astype(np.float32)
    s, z = qparams_from_range(x.min(), x.max(), signed=False)
    q = quantize(x, s, z, signed=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qt = torch._make_per_tensor_quantized_tensor(torch.from_numpy(q), float(s), int(z))
        np.testing.assert_array_equal(dequantize(q, s, z, signed=False), qt.dequantize().numpy())


@pytest.mark.parametrize("bits, signed", [(8, True), (8, False), (4, True), (3, False), (2, True)])
def test_fake_quantize_per_tensor_equals_torch_values_and_gradients(bits, signed):
    rng = np.random.default_rng(bits)
    qmin, qmax = qrange(bits, signed)
    for symmetric in (False, True):
        x = np.concatenate([rng.standard_normal(3000).astype(np.float32) * 2,
                            _ties(rng, 0.05, 500)])
        # a range narrower than the data, so that some values are clamped (gradient 0)
        s, z = qparams_from_range(-1.0, 1.5, bits=bits, signed=signed, symmetric=symmetric)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = torch.fake_quantize_per_tensor_affine(xt, float(s), int(z), qmin, qmax)
        dy = rng.standard_normal(x.shape).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        y, mask = fake_quantize_forward(x, s, z, bits=bits, signed=signed)
        np.testing.assert_array_equal(y, yt.detach().numpy())
        np.testing.assert_array_equal(fake_quantize_backward(dy, mask), xt.grad.numpy())
        assert 0 < mask.sum() < mask.size


@pytest.mark.parametrize("bits, signed", [(8, True), (8, False), (4, True), (2, False)])
def test_fake_quantize_per_channel_equals_torch_values_and_gradients(bits, signed):
    rng = np.random.default_rng(10 + bits)
    qmin, qmax = qrange(bits, signed)
    w = (rng.standard_normal((6, 5, 3, 3)) * rng.uniform(0.1, 2, (6, 1, 1, 1))).astype(np.float32)
    w[:, 0, 0, :] = _ties(rng, 0.03, 3)
    flat = w.reshape(6, -1)
    for symmetric in (False, True):
        s, z = qparams_from_range(0.7 * flat.min(1), 0.7 * flat.max(1), bits=bits, signed=signed,
                                  symmetric=symmetric)
        wt = torch.from_numpy(w).requires_grad_(True)
        yt = torch.fake_quantize_per_channel_affine(wt, torch.from_numpy(s),
                                                    torch.from_numpy(z.astype(np.int32)), 0,
                                                    qmin, qmax)
        dy = rng.standard_normal(w.shape).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        y, mask = fake_quantize_forward(w, s, z, bits=bits, signed=signed)
        np.testing.assert_array_equal(y, yt.detach().numpy())
        np.testing.assert_array_equal(fake_quantize_backward(dy, mask), wt.grad.numpy())
