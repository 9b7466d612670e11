"""prune_model: layer-wise / global / N:M pruning of a whole model, combined with its masks."""

import numpy as np
import pytest

from tinyprune.nn import lecture_net, lenet_300_100
from tinyprune.prune import nm_group_view, prune_model, prune_weight, set_masks_


def test_layer_wise_matches_prune_weight_per_layer():
    model = lenet_300_100(seed=0)
    masks = prune_model(model, ["fc1", "fc2.weight"], amount=0.3, criterion="l2",
                        granularity="element")
    assert set(masks) == {"fc1.weight", "fc2.weight"}
    for k, m in masks.items():
        np.testing.assert_array_equal(m, prune_weight(model.params[k], 0.3, criterion="l2"))


def test_channel_pruning_masks_biases_too():
    model = lecture_net(seed=0)
    masks = prune_model(model, ["conv1", "conv2", "fc1"], amount=0.25, granularity="channel")
    for ln, n in (("conv1", 32), ("conv2", 64), ("fc1", 128)):
        b = masks[f"{ln}.bias"]
        assert b.shape == (n,) and b.sum() == n - round(0.25 * n)
        w = masks[f"{ln}.weight"].reshape(n, -1)
        np.testing.assert_array_equal(w.all(axis=1), b)
    no_bias = prune_model(model, ["conv1"], amount=0.25, granularity="channel", prune_bias=False)
    assert set(no_bias) == {"conv1.weight"}


def test_global_ranking_leaves_excluded_layers_dense():
    model = lecture_net(seed=0)
    masks = prune_model(model, ["conv2", "fc1"], amount=0.8, global_ranking=True)
    assert set(masks) == {"conv2.weight", "fc1.weight"}
    total = sum(m.size for m in masks.values())
    pruned = sum((~m).sum() for m in masks.values())
    assert pruned == round(0.8 * total)
    w = np.concatenate([np.abs(model.params[k]).ravel() for k in masks])
    keep = np.concatenate([masks[k].ravel() for k in masks])
    assert w[~keep].max() <= w[keep].min()


def test_nm_on_every_layer_of_the_lecture_net_including_conv1_rows_of_9():
    model = lecture_net(seed=0)
    masks = prune_model(model, ["conv1", "conv2", "fc1", "fc2"], granularity="nm", n_pruned=2,
                        m=4)
    for k, m in masks.items():
        groups = nm_group_view(~m, 4, fill=True)  # pruned flags, padding counts as pruned
        assert np.all(groups.sum(axis=-1) >= 2), k
    # conv1 rows have 9 weights: groups 4 + 4 + (1 padded with 3): the last weight is kept
    assert masks["conv1.weight"].reshape(32, 9)[:, 8].all()
    assert masks["conv1.weight"].reshape(32, 9)[:, :8].sum() == 32 * 4


def test_iterative_pruning_respects_the_models_masks():
    model = lenet_300_100(seed=0)
    set_masks_(model, prune_model(model, ["fc1"], amount=0.5))
    second = prune_model(model, ["fc1"], amount=0.5)  # of the remaining (torch's default)
    assert second["fc1.weight"].mean() == pytest.approx(0.25, abs=1e-5)
    assert not np.any(second["fc1.weight"] & ~model.masks["fc1.weight"])
    same = prune_model(model, ["fc1"], amount=0.5, relative_to="total")
    np.testing.assert_array_equal(same["fc1.weight"], model.masks["fc1.weight"])


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(targets=["conv9"], amount=0.5), ValueError, "conv9"),
    (dict(targets=["fc1.bias"], amount=0.5), ValueError, "fc1.bias"),
    (dict(targets=[], amount=0.5), ValueError, "at least one"),
    (dict(targets=["fc1"], amount=-0.1), ValueError, "amount"),
    (dict(targets=["fc1"], amount=2.0), ValueError, "amount"),
    (dict(targets=["fc1"], amount=10**9), ValueError, "amount"),
    (dict(targets=["fc1"], amount=0.5, granularity="kernel"), ValueError, "Linear"),
    (dict(targets=["fc1"], amount=0.5, granularity="diagonal"), ValueError, "granularity"),
    (dict(targets=["fc1"], amount=None, granularity="nm", n_pruned=4, m=4), ValueError,
     "n_pruned"),
    (dict(targets=["fc1"], amount=None, granularity="nm", n_pruned=1, m=0), ValueError, "m"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        prune_model(lenet_300_100(), **kwargs)


def test_model_is_not_modified():
    model = lenet_300_100(seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    prune_model(model, ["fc1", "fc2"], amount=0.7, granularity="channel")
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
    assert model.masks == {}
