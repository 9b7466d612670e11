"""Low-rank factorization: Eckart-Young, exact outputs of the factor layers, rank rules, model
surgery (a new model; specs, checkpoints, pruning, transforms and fine-tuning on the factors)."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from round_transform import RoundToGrid

from tinyprune.lowrank import (
    choose_rank,
    energy_curve,
    energy_rank,
    energy_rank_naive,
    factorize_conv2d,
    factorize_linear,
    factorize_model,
    factorized_layers,
    low_rank_approximation,
    reduction_rank,
    singular_values,
    svd_factors,
    weight_matrix,
)
from tinyprune.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, lecture_net
from tinyprune.nn.checkpoint import load_checkpoint, save_checkpoint
from tinyprune.nn.gradcheck import check_model_gradients
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import fit


def _matrix(rng, m, n, dtype=np.float64):
    return rng.standard_normal((m, n)).astype(dtype)


def _mlp(dtype=np.float64, seed=0):
    return Sequential([("flatten", Flatten()), ("fc1", Linear(12, 9, rng=seed, dtype=dtype)),
                       ("relu1", ReLU()), ("fc2", Linear(9, 4, rng=seed + 1, dtype=dtype))],
                      input_shape=(3, 2, 2), name="mlp")


def _convnet(dtype=np.float64, seed=0):
    return Sequential([("conv1", Conv2d(3, 8, 3, stride=2, padding=1, rng=seed, dtype=dtype)),
                       ("relu1", ReLU()),
                       ("conv2", Conv2d(8, 6, (3, 2), padding=1, rng=seed + 1, dtype=dtype)),
                       ("pool", MaxPool2d(2)), ("flatten", Flatten()),
                       ("fc", Linear(6 * 2 * 3, 5, rng=seed + 2, dtype=dtype))],
                      input_shape=(3, 7, 9), name="convnet")


# ------------------------------------------------------------------------------ Eckart-Young


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_eckart_young_error_is_the_dropped_energy_and_random_rank_r_does_worse(m, n, seed):
    rng = np.random.default_rng(seed)
    w = _matrix(rng, m, n)
    s = singular_values(w)
    total = float((s ** 2).sum())
    for r in range(1, min(m, n) + 1):
        err = float(((w - low_rank_approximation(w, r)) ** 2).sum())
        assert err == pytest.approx(float((s[r:] ** 2).sum()), rel=1e-9, abs=1e-12 * total)
        for _ in range(5):  # random rank-r matrices, also ones built from W's own top directions
            other = _matrix(rng, m, r) @ _matrix(rng, r, n)
            assert ((w - other) ** 2).sum() >= err - 1e-9 * total
            near = low_rank_approximation(w, r) + 1e-3 * (_matrix(rng, m, 1) @ _matrix(rng, 1, n))
            near = low_rank_approximation(near, r)  # still rank r, slightly off the optimum
            assert ((w - near) ** 2).sum() >= err - 1e-9 * total


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_reconstruction_error_never_increases_with_the_rank(m, n, seed):
    w = _matrix(np.random.default_rng(seed), m, n)
    errs = [float(((w - low_rank_approximation(w, r)) ** 2).sum())
            for r in range(1, min(m, n) + 1)]
    total = float((w ** 2).sum())
    assert all(b <= a + 1e-12 * total for a, b in zip(errs, errs[1:], strict=False))
    assert errs[-1] <= 1e-20 * max(total, 1.0) + 1e-24  # full rank reproduces W


def test_full_rank_and_rank_deficient_matrices_are_reproduced():
    rng = np.random.default_rng(1)
    w = _matrix(rng, 6, 3) @ _matrix(rng, 3, 8)  # rank 3
    np.testing.assert_allclose(low_rank_approximation(w, 3), w, rtol=0, atol=1e-12)
    assert energy_rank(singular_values(w), 1.0) == 3  # the null directions add no energy


def test_balanced_factors_multiply_to_the_approximation_with_sqrt_sigma_on_each_side():
    rng = np.random.default_rng(2)
    w = _matrix(rng, 7, 11)
    a, b = svd_factors(w, 4)
    assert a.shape == (4, 11) and b.shape == (7, 4)
    np.testing.assert_allclose(b @ a, low_rank_approximation(w, 4), rtol=0, atol=1e-12)
    root = np.sqrt(singular_values(w)[:4])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), root, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(b, axis=0), root, rtol=1e-12)


def test_float32_in_float32_out_and_inputs_untouched():
    w = _matrix(np.random.default_rng(3), 5, 6, np.float32)
    before = w.copy()
    a, b = svd_factors(w, 2)
    assert a.dtype == b.dtype == low_rank_approximation(w, 2).dtype == np.float32
    np.testing.assert_array_equal(w, before)


# ------------------------------------------------------------------------------- rank rules


@settings(max_examples=200, deadline=None)
@given(sig=st.lists(st.integers(0, 30), min_size=1, max_size=12), k=st.integers(1, 64))
def test_energy_rank_is_the_smallest_rank_reaching_the_energy_exactly(sig, k):
    # integer singular values and a dyadic energy: every ratio is compared exactly (Fractions)
    s = np.array(sorted(sig, reverse=True), dtype=np.float64)
    e = k / 64
    r = energy_rank(s, e)
    assert r == energy_rank_naive(s, e)
    sq = [Fraction(int(v) ** 2) for v in s]
    total = sum(sq)
    if total == 0:
        assert r == 1
        return
    assert sum(sq[:r]) / total >= Fraction(k, 64)
    if r > 1:
        assert sum(sq[: r - 1]) / total < Fraction(k, 64)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 10), n=st.integers(1, 10), seed=st.integers(0, 2**32 - 1),
       e=st.floats(1e-6, 1.0))
def test_energy_rank_matches_its_loop_twin_and_the_curve(m, n, seed, e):
    s = singular_values(_matrix(np.random.default_rng(seed), m, n))
    r = energy_rank(s, e)
    curve = energy_curve(s)
    assert r == energy_rank_naive(s, e)
    assert curve[-1] == 1.0 and np.all(np.diff(curve) >= 0)
    assert curve[r - 1] >= e and (r == 1 or curve[r - 2] < e)


def test_energy_rank_examples():
    s = np.array([3.0, 2.0, 1.0])  # energies 9, 4, 1 of 14
    assert [energy_rank(s, e) for e in (0.5, 9 / 14, 0.65, 13 / 14, 0.95, 1.0)] == [1, 1, 2, 2, 3, 3]
    assert energy_rank(np.zeros(4), 0.9) == 1


def test_reduction_rank_for_the_lecture_net_fc1_and_its_bound():
    assert reduction_rank((128, 9216), 0.8) == 25  # 25 * 9344 = 233,600 <= 235,929.6
    for (m, n) in [(128, 9216), (64, 288), (10, 128), (7, 5)]:
        for p in (0.1, 0.5, 0.8):
            try:
                r = reduction_rank((m, n), p)
            except ValueError:
                assert (m + n) > (1 - p) * m * n
                continue
            assert r * (m + n) <= (1 - p) * m * n
            assert r == min(m, n) or (r + 1) * (m + n) > (1 - p) * m * n


@pytest.mark.parametrize("kwargs, err, match", [
    ({"rank": 0}, ValueError, "rank"),
    ({"rank": 6}, ValueError, r"rank.*\[1, 5\]"),
    ({"rank": 2.0}, TypeError, "rank"),
    ({"energy": 0.0}, ValueError, r"energy.*\(0, 1\]"),
    ({"energy": 1.5}, ValueError, r"energy.*\(0, 1\]"),
    ({"energy": float("nan")}, ValueError, "energy"),
    ({"energy": True}, TypeError, "energy"),
    ({"reduction": 0.0}, ValueError, "reduction"),
    ({"reduction": 1.0}, ValueError, "reduction"),
    ({"reduction": 0.99}, ValueError, "unreachable"),
    ({}, ValueError, "exactly one"),
    ({"rank": 2, "energy": 0.5}, ValueError, "exactly one"),
])
def test_choose_rank_rejects_bad_rules(kwargs, err, match):
    w = _matrix(np.random.default_rng(0), 5, 8)
    with pytest.raises(err, match=match):
        choose_rank(w, **kwargs)


def test_bad_matrices_and_singular_values_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        singular_values(np.array([[1.0, np.nan]]))
    with pytest.raises(TypeError, match="float32 or float64"):
        singular_values(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        low_rank_approximation(np.ones(3), 1)
    with pytest.raises(ValueError, match="non-increasing"):
        energy_rank(np.array([1.0, 2.0]), 0.5)
    with pytest.raises(ValueError, match="non-negative"):
        energy_curve(np.array([1.0, -1.0]))


# ------------------------------------------------------------------------- layer factorization


@pytest.mark.parametrize("rank", [1, 3, 9])
def test_factorized_linear_computes_x_wr_plus_b(rank):
    rng = np.random.default_rng(4)
    layer = Linear(12, 9, rng=0, dtype=np.float64)
    first, second = factorize_linear(layer, rank)
    assert first.params["weight"].shape == (rank, 12) and "bias" not in first.params
    assert second.params["weight"].shape == (9, rank)
    x = rng.standard_normal((5, 12))
    w_r = low_rank_approximation(layer.params["weight"], rank)
    np.testing.assert_allclose(second(first(x)), x @ w_r.T + layer.params["bias"], rtol=1e-12,
                               atol=1e-13)


def test_factorized_linear_without_bias():
    layer = Linear(6, 4, bias=False, rng=1, dtype=np.float64)
    first, second = factorize_linear(layer, 2)
    assert "bias" not in second.params
    x = np.random.default_rng(0).standard_normal((3, 6))
    np.testing.assert_allclose(second(first(x)), x @ low_rank_approximation(
        layer.params["weight"], 2).T, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("rank", [1, 4, 8])
def test_factorized_conv2d_equals_the_convolution_with_the_rank_r_weight(rank):
    conv = Conv2d(3, 8, (3, 2), stride=2, padding=1, rng=0, dtype=np.float64)
    first, second = factorize_conv2d(conv, rank)
    assert first.params["weight"].shape == (rank, 3, 3, 2)
    assert (first.stride, first.padding) == (2, 1) and "bias" not in first.params
    assert second.params["weight"].shape == (8, rank, 1, 1) and second.kernel_size == (1, 1)
    ref = Conv2d(3, 8, (3, 2), stride=2, padding=1, dtype=np.float64)
    ref.params["weight"][...] = low_rank_approximation(weight_matrix(conv), rank).reshape(8, 3, 3, 2)
    ref.params["bias"][...] = conv.params["bias"]
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    np.testing.assert_allclose(second(first(x)), ref(x), rtol=1e-12, atol=1e-13)


def test_layer_factorization_rejects_bad_layers_and_ranks():
    with pytest.raises(TypeError, match="Linear"):
        factorize_linear(Conv2d(1, 2, 3), 1)
    with pytest.raises(TypeError, match="Conv2d"):
        factorize_conv2d(Linear(3, 2), 1)
    with pytest.raises(ValueError, match=r"rank.*\[1, 4\]"):
        factorize_conv2d(Conv2d(1, 4, 3), 10)  # (4, 9): rank <= 4
    with pytest.raises(ValueError, match="rank"):
        factorize_linear(Linear(3, 2), 0)


# ---------------------------------------------------------------------------- model surgery


def test_factorize_model_outputs_equal_the_dense_model_with_wr_and_leave_the_caller_alone():
    model = _mlp()
    before = {k: v.copy() for k, v in model.params.items()}
    new = factorize_model(model, {"fc1": 3})
    assert list(new.layers) == ["flatten", "fc1_v", "fc1_u", "relu1", "fc2"]
    assert set(new.params) == {"fc1_v.weight", "fc1_u.weight", "fc1_u.bias", "fc2.weight",
                               "fc2.bias"}
    assert list(model.layers) == ["flatten", "fc1", "relu1", "fc2"]
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
        assert not any(v is p for p in new.params.values())
    ref = model.copy()
    ref.set_param("fc1.weight", low_rank_approximation(model.params["fc1.weight"], 3))
    x = np.random.default_rng(6).standard_normal((7, 3, 2, 2))
    np.testing.assert_allclose(new(x), ref(x), rtol=1e-12, atol=1e-13)
    assert factorized_layers(new) == {"fc1": 3}
    assert factorized_layers(model) == {}


def test_factorize_model_convnet_at_full_rank_reproduces_it():
    model = _convnet()
    new = factorize_model(model, {"conv1": 8, "conv2": {"rank": 6}, "fc": {"energy": 1.0}})
    assert factorized_layers(new) == {"conv1": 8, "conv2": 6, "fc": 5}
    x = np.random.default_rng(7).standard_normal((3, 3, 7, 9))
    np.testing.assert_allclose(new(x), model(x), rtol=1e-10, atol=1e-12)
    new.fast = False  # the reference path: the 1x1 factor and the pool run unfused
    np.testing.assert_allclose(new(x), model(x), rtol=1e-10, atol=1e-12)


def test_factorize_model_rules_list_and_whole_model():
    model = lecture_net()
    new = factorize_model(model, ["fc1"], reduction=0.8)
    assert factorized_layers(new) == {"fc1": 25}
    n_fc1 = 25 * (9216 + 128) + 128
    assert new.num_parameters() == model.num_parameters() - (9216 * 128 + 128) + n_fc1
    assert new.macs()["fc1_v"] + new.macs()["fc1_u"] == 25 * (9216 + 128)
    whole = factorize_model(model, energy=0.5)
    ranks = factorized_layers(whole)
    for name, layer in model.layers.items():  # a layer is factorized iff it saves weights
        if type(layer) not in (Linear, Conv2d):
            continue
        m, n = weight_matrix(layer).shape
        r = energy_rank(singular_values(weight_matrix(layer)), 0.5)
        assert (name in ranks) == (r * (m + n) < m * n)
        assert name not in ranks or ranks[name] == r
    assert "fc1" in ranks
    # a rank too large for conv1 (32, 9) leaves it dense in whole-model mode
    assert "conv1" not in factorized_layers(factorize_model(model, rank=16))


@pytest.mark.parametrize("layers, kwargs, err, match", [
    ({"fc9": 2}, {}, ValueError, "no layer named 'fc9'"),
    ({"relu1": 2}, {}, ValueError, "only Linear and Conv2d"),
    ({"fc1": 0}, {}, ValueError, "fc1: rank"),
    ({"fc1": 10}, {}, ValueError, r"fc1: rank.*\[1, 9\]"),
    ({"fc1": {"energy": 0.0}}, {}, ValueError, r"fc1: energy.*\(0, 1\]"),
    ({"fc1": {"energy": 1.2}}, {}, ValueError, "energy"),
    ({"fc1": {"rank": 2, "energy": 0.5}}, {}, ValueError, "exactly one"),
    ({"fc1": {"ranks": 2}}, {}, ValueError, "exactly one"),
    ({"fc1": 2.5}, {}, TypeError, "int rank"),
    ({"fc1": 2}, {"rank": 2}, ValueError, "no shared rule"),
    (["fc1"], {}, ValueError, "exactly one"),
    (["fc1"], {"rank": 2, "energy": 0.9}, ValueError, "exactly one"),
    (None, {"energy": 1.5}, ValueError, r"energy.*\(0, 1\]"),
    (None, {"rank": 0}, ValueError, "rank"),
    (None, {"reduction": 1.0}, ValueError, "reduction"),
    (["fc1"], {"reduction": -0.5}, ValueError, "reduction"),
    ("fc1", {"rank": 2}, TypeError, "layers"),
])
def test_factorize_model_bad_input(layers, kwargs, err, match):
    with pytest.raises(err, match=match):
        factorize_model(_mlp(), layers, **kwargs)


def test_factorize_model_rejects_a_name_clash_and_a_non_model():
    model = Sequential([("fc1", Linear(4, 4)), ("fc1_u", Linear(4, 2))])
    with pytest.raises(ValueError, match="already has a layer named 'fc1_u'"):
        factorize_model(model, {"fc1": 2})
    with pytest.raises(TypeError, match="Sequential"):
        factorize_model(Linear(4, 4), {"fc1": 2})


def test_masks_and_transforms_of_other_layers_are_kept_those_of_the_factorized_layer_dropped():
    model = _mlp()
    model.masks = {"fc1.weight": np.ones((9, 12), bool), "fc2.weight": np.eye(4, 9, dtype=bool)}
    model.set_transform("fc2.weight", RoundToGrid(0.25))
    new = factorize_model(model, {"fc1": 2})
    assert set(new.masks) == {"fc2.weight"}
    np.testing.assert_array_equal(new.masks["fc2.weight"], model.masks["fc2.weight"])
    assert set(new.transforms) == {"fc2.weight"}


# ------------------------------------- round trips; pruning, quantization and training on factors


def test_factorized_model_round_trips_through_spec_and_checkpoint(tmp_path):
    model = factorize_model(_convnet(dtype=np.float32), {"conv2": 3, "fc": {"energy": 0.9}})
    rebuilt = Sequential.from_spec(model.spec())
    assert rebuilt.spec() == model.spec()
    assert {k: v.shape for k, v in rebuilt.params.items()} == {
        k: v.shape for k, v in model.params.items()}
    model.masks = {"conv2_v.weight": np.random.default_rng(0).random((3, 8, 3, 2)) > 0.5}
    path = tmp_path / "f.npz"
    save_checkpoint(path, model)
    loaded = load_checkpoint(path).model
    assert factorized_layers(loaded) == factorized_layers(model)
    for k, v in model.params.items():
        np.testing.assert_array_equal(loaded.params[k], v)
        assert loaded.params[k].dtype == np.float32
    np.testing.assert_array_equal(loaded.masks["conv2_v.weight"], model.masks["conv2_v.weight"])
    x = np.random.default_rng(1).random((2, 3, 7, 9)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_pruning_and_fake_quantization_apply_to_the_factors_during_fine_tuning():
    from tinyprune.prune import prune_model, set_masks_

    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 3, 2, 2))
    y = rng.integers(0, 4, 64)
    model = factorize_model(_mlp(), {"fc1": 4})
    set_masks_(model, prune_model(model, ["fc1_v", "fc1_u"], 0.5, criterion="l1"))
    assert set(model.masks) == {"fc1_v.weight", "fc1_u.weight"}
    model.set_transform("fc1_u.weight", RoundToGrid(1 / 64))
    opt = SGD(model.params, lr=0.05, momentum=0.9)
    fit(model, x, y, optimizer=opt, epochs=3, batch_size=16, rng=0, progress=False)
    for name, m in model.masks.items():
        assert np.all(model.params[name][~m] == 0.0) and np.any(model.params[name][m] != 0.0)
    ref = model.copy()  # the same network computed with the rounded factor stored explicitly
    ref.set_transform("fc1_u.weight", None)
    ref.set_param("fc1_u.weight", np.round(model.params["fc1_u.weight"] * 64) / 64)
    np.testing.assert_array_equal(model(x), ref(x))


def test_fine_tuning_a_factorized_model_with_fit_lowers_the_loss_and_gradients_check():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((96, 3, 2, 2))
    y = (x.reshape(96, -1)[:, :4].argmax(axis=1)).astype(np.int64)
    model = factorize_model(_mlp(seed=3), {"fc1": 3})
    errors = check_model_gradients(model, x[:5], y[:5])
    assert max(errors.values()) < 1e-6, errors
    start = model.params["fc1_v.weight"].copy()
    hist = fit(model, x, y, optimizer=SGD(model.params, lr=0.1, momentum=0.9), epochs=15,
               batch_size=16, rng=0, progress=False)
    assert hist.loss[-1] < 0.7 * hist.loss[0]
    assert not np.array_equal(model.params["fc1_v.weight"], start)  # both factors are trained
