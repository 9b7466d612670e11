"""Masks equal torch.nn.utils.prune's on the same random weights (no ties: continuous values).

Mapping: ``l1_unstructured`` = granularity "element" + L1; ``ln_structured(dim=0, n)`` =
"channel" + L_n; ``ln_structured(dim=1, n)`` = "input_channel" + L_n (torch sums over dims
(0, 2, 3) of a conv weight); ``global_unstructured(L1Unstructured)`` = :func:`global_masks`
"element" + L1. Torch's repeated pruning of a parameter is relative to the remaining units, our
default ``relative_to="remaining"``.
"""

import numpy as np
import pytest

from tinyprune.prune.select import global_masks, prune_weight

torch = pytest.importorskip("torch")
prune = pytest.importorskip("torch.nn.utils.prune")

SHAPES = [(12, 20), (8, 6, 3, 3)]
AMOUNTS = [0.0, 0.3, 0.5, 0.77, 1.0, 0, 1, 5]


def holder(w):
    m = torch.nn.Module()
    m.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
    return m


def torch_mask(m):
    return m.weight_mask.detach().numpy().astype(bool)


def weight(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("amount", AMOUNTS)
def test_l1_unstructured(shape, amount):
    w = weight(shape, 0, np.float32)
    m = holder(w)
    prune.l1_unstructured(m, "weight", amount=amount)
    np.testing.assert_array_equal(prune_weight(w, amount, criterion="l1"), torch_mask(m))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("amounts", [(0.3, 0.3), (0.5, 0.5, 0.5), (7, 0.4), (0.6, 11)])
def test_l1_unstructured_iterated(shape, amounts):
    w = weight(shape, 1, np.float32)
    m = holder(w)
    ours = None
    for a in amounts:
        prune.l1_unstructured(m, "weight", amount=a)
        ours = prune_weight(w, a, criterion="l1", current_mask=ours)
        np.testing.assert_array_equal(ours, torch_mask(m))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dim, granularity", [(0, "channel"), (1, "input_channel")])
@pytest.mark.parametrize("n, criterion", [(1, "l1"), (2, "l2")])
@pytest.mark.parametrize("amount", [0.0, 0.25, 0.5, 1.0, 2, 3])
def test_ln_structured(shape, dim, granularity, n, criterion, amount):
    w = weight(shape, 2, np.float64)
    m = holder(w)
    prune.ln_structured(m, "weight", amount=amount, n=n, dim=dim)
    np.testing.assert_array_equal(
        prune_weight(w, amount, criterion=criterion, granularity=granularity), torch_mask(m))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dim, granularity", [(0, "channel"), (1, "input_channel")])
@pytest.mark.parametrize("n, criterion", [(1, "l1"), (2, "l2")])
@pytest.mark.parametrize("amounts", [(0.3, 0.3), (2, 0.5), (0.4, 1)])
def test_ln_structured_iterated(shape, dim, granularity, n, criterion, amounts):
    w = weight(shape, 3, np.float64)
    m = holder(w)
    ours = None
    for a in amounts:
        prune.ln_structured(m, "weight", amount=a, n=n, dim=dim)
        ours = prune_weight(w, a, criterion=criterion, granularity=granularity,
                            current_mask=ours)
        np.testing.assert_array_equal(ours, torch_mask(m))


def test_ln_structured_after_unstructured_partial_sets():
    # partially pruned channels stay candidates, scored on the masked weight (torch's container)
    w = weight((10, 16), 4, np.float64)
    m = holder(w)
    prune.l1_unstructured(m, "weight", amount=0.4)
    prune.ln_structured(m, "weight", amount=0.3, n=2, dim=0)
    ours = prune_weight(w, 0.4, criterion="l1")
    ours = prune_weight(w, 0.3, criterion="l2", granularity="channel", current_mask=ours)
    np.testing.assert_array_equal(ours, torch_mask(m))


@pytest.mark.parametrize("amounts", [(0.5,), (0.3, 0.3), (100, 0.2), (0.0,), (1.0,)])
def test_global_unstructured(amounts):
    shapes = {"conv1": (6, 1, 3, 3), "conv2": (8, 6, 3, 3), "fc1": (10, 32)}
    ws = {k: weight(s, i + 10, np.float32) * (i + 1) for i, (k, s) in enumerate(shapes.items())}
    mods = {k: holder(w) for k, w in ws.items()}
    ours = None
    for a in amounts:
        prune.global_unstructured([(mods[k], "weight") for k in ws],
                                  pruning_method=prune.L1Unstructured, amount=a)
        ours = global_masks(ws, a, criterion="l1", current_masks=ours)
        for k in ws:
            np.testing.assert_array_equal(ours[k], torch_mask(mods[k]), err_msg=k)


def test_rounding_matches_torch():
    # 10 * 0.25 = 2.5 and 10 * 0.35 = 3.5: Python's round gives 2 and 4 in both libraries
    for amount in (0.25, 0.35, 0.45):
        w = weight((2, 5), 5, np.float32)
        m = holder(w)
        prune.l1_unstructured(m, "weight", amount=amount)
        ours = prune_weight(w, amount)
        assert (~ours).sum() == (~torch_mask(m)).sum() == round(amount * 10)
        np.testing.assert_array_equal(ours, torch_mask(m))


def test_count_above_size_rejected_by_both():
    w = weight((3, 4), 6, np.float32)
    with pytest.raises(ValueError):
        prune.l1_unstructured(holder(w), "weight", amount=13)
    with pytest.raises(ValueError, match="amount"):
        prune_weight(w, 13)
