"""Physical removal of pruned channels: the thin model computes what the masked one does."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn import Sequential, lecture_net, lenet5, lenet_300_100
from tinyprune.nn.checkpoint import load_checkpoint, save_checkpoint
from tinyprune.prune.masked import set_masks_
from tinyprune.prune.thinning import removable_units, thin_model


def channel_masks(model, layers, fraction, rng):
    """Masks removing a random ``fraction`` of the output units (weight rows and biases)."""
    masks = {}
    for ln in layers:
        w = model.params[f"{ln}.weight"]
        n = w.shape[0]
        dead = rng.choice(n, size=round(fraction * n), replace=False)
        keep = np.ones(n, dtype=bool)
        keep[dead] = False
        masks[f"{ln}.weight"] = np.broadcast_to(keep.reshape((n,) + (1,) * (w.ndim - 1)),
                                                w.shape).copy()
        masks[f"{ln}.bias"] = keep.copy()
    return masks


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lecture_net_half_channels_removed_matches_masked(dtype):
    rng = np.random.default_rng(1)
    model = lecture_net(seed=3, dtype=dtype)
    set_masks_(model, channel_masks(model, ["conv1", "conv2", "fc1"], 0.5, rng))
    thin, kept = thin_model(model)
    assert {k: v.size for k, v in kept.items()} == {"conv1": 16, "conv2": 32, "fc1": 64,
                                                    "fc2": 10}
    assert thin["conv1"].params["weight"].shape == (16, 1, 3, 3)
    assert thin["conv2"].params["weight"].shape == (32, 16, 3, 3)
    assert thin["fc1"].params["weight"].shape == (64, 32 * 12 * 12)
    assert thin["fc2"].params["weight"].shape == (10, 64)
    x = rng.random((5, 1, 28, 28)).astype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(thin.forward(x), model.forward(x), rtol=tol, atol=tol)
    assert thin.num_parameters() < 0.3 * model.num_parameters()


def test_flatten_mapping_keeps_the_right_fc1_columns():
    rng = np.random.default_rng(0)
    model = lecture_net(seed=0)
    set_masks_(model, channel_masks(model, ["conv2"], 0.25, rng))
    thin, kept = thin_model(model)
    c = kept["conv2"]
    cols = (c[:, None] * 144 + np.arange(144)).ravel()
    np.testing.assert_array_equal(thin["fc1"].params["weight"],
                                  model["fc1"].params["weight"][:, cols])


def test_fc_to_fc_and_lenet5():
    rng = np.random.default_rng(2)
    for model, layers in ((lenet_300_100(seed=1), ["fc1", "fc2"]),
                          (lenet5(seed=1), ["conv1", "conv2", "fc1"])):
        set_masks_(model, channel_masks(model, layers, 0.4, rng))
        thin, _ = thin_model(model)
        x = rng.random((4, 1, 28, 28)).astype(np.float32)
        np.testing.assert_allclose(thin.forward(x), model.forward(x), rtol=1e-5, atol=1e-5)


def test_fine_grained_masks_inside_kept_channels_survive():
    rng = np.random.default_rng(3)
    model = lenet_300_100(seed=0)
    masks = channel_masks(model, ["fc1"], 0.5, rng)
    sparse = rng.random(model.params["fc2.weight"].shape) > 0.7
    masks["fc2.weight"] = sparse
    set_masks_(model, masks)
    thin, kept = thin_model(model)
    np.testing.assert_array_equal(thin.masks["fc2.weight"], sparse[:, kept["fc1"]])
    assert thin.masks["fc1.bias"].all()


def test_unmasked_nonzero_bias_keeps_the_unit():
    model = lenet_300_100(seed=0)
    w = model.params["fc1.weight"]
    mask = np.ones(w.shape, dtype=bool)
    mask[:10] = False
    set_masks_(model, {"fc1.weight": mask})  # bias left dense and non-zero
    assert not removable_units(model, model.masks)["fc1"].any()
    thin, kept = thin_model(model)
    assert kept["fc1"].size == 300


def test_classifier_outputs_are_never_removed():
    model = lenet_300_100(seed=0)
    m = np.ones((10, 100), dtype=bool)
    m[3] = False
    set_masks_(model, {"fc3.weight": m, "fc3.bias": np.array([i != 3 for i in range(10)])})
    thin, kept = thin_model(model)
    assert kept["fc3"].size == 10


def test_checkpoint_round_trip_of_thin_model(tmp_path):
    rng = np.random.default_rng(4)
    model = lecture_net(seed=0)
    set_masks_(model, channel_masks(model, ["conv1", "conv2", "fc1"], 0.5, rng))
    thin, _ = thin_model(model)
    path = tmp_path / "thin.npz"
    save_checkpoint(path, thin, masks=thin.masks)
    back = load_checkpoint(path)
    x = rng.random((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(back.model.forward(x), thin.forward(x))
    assert back.model.spec() == thin.spec()
    assert set(back.masks) == set(thin.masks)


def test_model_without_input_shape_is_rejected():
    from tinyprune.nn import Linear
    model = Sequential([("fc", Linear(3, 2))])
    with pytest.raises(ValueError, match="input_shape"):
        thin_model(model, {})


def test_mask_of_wrong_shape_is_rejected():
    model = lenet_300_100()
    with pytest.raises(ValueError, match="fc1.weight"):
        removable_units(model, {"fc1.weight": np.ones((3, 3), dtype=bool)})


def _small_convnet(seed):
    from tinyprune.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU
    rng = np.random.default_rng(seed)
    return Sequential([
        ("conv1", Conv2d(2, 5, 3, padding=1, rng=rng)), ("relu1", ReLU()),
        ("pool", MaxPool2d(2)),
        ("conv2", Conv2d(5, 4, 3, stride=2, rng=rng)), ("relu2", ReLU()),
        ("flatten", Flatten()),
        ("fc1", Linear(4 * 1 * 1, 6, rng=rng)), ("relu3", ReLU()),
        ("fc2", Linear(6, 3, rng=rng)),
    ], input_shape=(2, 6, 6))




@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), fracs=st.tuples(*[st.sampled_from([0.0, 0.2, 0.5, 0.75])] * 3))
def test_random_channel_masks_on_a_strided_padded_convnet(seed, fracs):
    rng = np.random.default_rng(seed)
    model = _small_convnet(seed).set_dtype(np.float64)
    masks = {}
    for ln, frac in zip(("conv1", "conv2", "fc1"), fracs, strict=True):
        masks.update(channel_masks(model, [ln], frac, rng))
    set_masks_(model, masks)
    thin, kept = thin_model(model)
    for ln, frac in zip(("conv1", "conv2", "fc1"), fracs, strict=True):
        n = model[ln].params["weight"].shape[0]
        assert kept[ln].size == n - round(frac * n)
    x = rng.standard_normal((3, 2, 6, 6))
    np.testing.assert_allclose(thin.forward(x), model.forward(x), rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), p_elem=st.sampled_from([0.0, 0.3, 0.7]),
       p_row=st.sampled_from([0.0, 0.3, 0.6]), p_bias=st.sampled_from([0.0, 0.5, 1.0]))
def test_thin_equals_masked_for_any_masks_applied_or_not(seed, p_elem, p_row, p_bias):
    """thin_model(model, masks) computes the masked model, for element-level zeros inside kept
    units, dead rows with or without their bias, and masks that were never applied."""
    rng = np.random.default_rng(seed)
    model = _small_convnet(seed).set_dtype(np.float64)
    masks = {}
    for ln in ("conv1", "conv2", "fc1", "fc2"):
        w = model.params[f"{ln}.weight"]
        keep = rng.random(w.shape) >= p_elem
        dead_rows = rng.random(w.shape[0]) < p_row
        keep[dead_rows] = False
        masks[f"{ln}.weight"] = keep
        masks[f"{ln}.bias"] = ~(dead_rows & (rng.random(w.shape[0]) < p_bias))
    before = {k: v.copy() for k, v in model.params.items()}
    masked = model.copy()
    for name, m in masks.items():
        masked.params[name] *= m
    try:
        thin, _ = thin_model(model, masks)
    except ValueError as exc:  # every unit of a layer removable: refused, by name
        assert "every output unit" in str(exc)
        return
    for k, v in model.params.items():  # the caller's model is untouched
        np.testing.assert_array_equal(v, before[k])
    x = rng.standard_normal((3, 2, 6, 6))
    np.testing.assert_allclose(thin.forward(x), masked.forward(x), rtol=1e-12, atol=1e-12)
    for name, m in thin.masks.items():
        assert np.all(thin.params[name][~m] == 0.0)


def test_bad_masks_are_named_errors():
    model = lenet_300_100()
    with pytest.raises(TypeError, match=r"masks\['fc1.weight'\]: expected a boolean"):
        thin_model(model, {"fc1.weight": np.ones((300, 784))})
    with pytest.raises(ValueError, match="masks: 'fc9.weight' is not a parameter"):
        thin_model(model, {"fc9.weight": np.ones((3, 3), dtype=bool)})
    with pytest.raises(TypeError, match="masks: expected a dict"):
        thin_model(model, [np.ones((300, 784), dtype=bool)])


def test_removing_every_unit_of_a_layer_is_rejected():
    model = lenet_300_100(seed=0)
    set_masks_(model, channel_masks(model, ["fc2"], 1.0, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="fc2"):
        thin_model(model)
