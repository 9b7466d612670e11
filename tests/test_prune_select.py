"""Mask selection semantics of tinyprune.prune.select (amount, rounding, ties, monotonicity)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import weights

from tinyprune.prune.criteria import cluster_redundancy_scores
from tinyprune.prune.granularity import GRANULARITIES, group_reduce, set_shape
from tinyprune.prune.select import (
    global_masks,
    n_to_prune,
    prune_weight,
    select_mask,
    select_mask_naive,
)

SETTINGS = settings(max_examples=150, deadline=None)
STRUCT = [g for g in GRANULARITIES if g != "nm"]
CRITERIA_NO_RNG = ["l1", "l2", "linf", "magnitude"]


@st.composite
def case(draw):
    w = draw(weights())
    g = draw(st.sampled_from([g for g in STRUCT if not (g == "kernel" and w.ndim == 2)]))
    n_units = int(np.prod(set_shape(w.shape, g)))
    amount = draw(st.one_of(st.floats(0.0, 1.0), st.integers(0, n_units)))
    crit = draw(st.sampled_from(CRITERIA_NO_RNG))
    return w, g, n_units, amount, crit


def set_scores(w, crit, g):
    p = {"l1": 1, "magnitude": 1, "l2": 2, "linf": np.inf}[crit]
    a = np.abs(w.astype(np.float64))
    if p == np.inf:
        return group_reduce(a, g, reduce="max")
    return group_reduce(a**p, g) ** (1 / p)


def expected_k(amount, n):
    return amount if isinstance(amount, int) else round(amount * n)


# ------------------------------------------------------------------ properties
@SETTINGS
@given(c=case())
def test_prune_weight_properties(c):
    w, g, n_units, amount, crit = c
    w0 = w.copy()
    keep = prune_weight(w, amount, criterion=crit, granularity=g)
    np.testing.assert_array_equal(w, w0)  # caller's weight untouched
    assert keep.dtype == np.bool_ and keep.shape == w.shape
    # structured masks are constant over each set
    kept_any = group_reduce(keep, g, reduce="any")
    np.testing.assert_array_equal(kept_any, group_reduce(keep, g, reduce="all"))
    # exactly round(amount * n) units pruned
    assert n_units - int(kept_any.sum()) == expected_k(amount, n_units)
    # every pruned unit scores no higher than every kept one
    s = set_scores(w, crit, g)
    if kept_any.any() and (~kept_any).any():
        assert s[~kept_any].max() <= s[kept_any].min() * (1 + 1e-6) + 1e-12
    # survivors keep their values when the mask is applied
    pruned = w * keep
    np.testing.assert_array_equal(pruned[keep], w[keep])
    assert np.all(pruned[~keep] == 0)


@SETTINGS
@given(c=case(), second=st.floats(0.0, 1.0))
def test_total_is_idempotent_and_iteration_is_monotone(c, second):
    w, g, n_units, amount, crit = c
    m1 = prune_weight(w, amount, criterion=crit, granularity=g, relative_to="total")
    m1_copy = m1.copy()
    m2 = prune_weight(w, amount, criterion=crit, granularity=g, relative_to="total",
                      current_mask=m1)
    np.testing.assert_array_equal(m1, m2)  # same target: nothing changes
    np.testing.assert_array_equal(m1, m1_copy)  # current_mask not modified
    m3 = prune_weight(w, second, criterion=crit, granularity=g, current_mask=m1)
    assert not np.any(m3 & ~m1)  # monotone: only loses Trues
    alive1 = int(group_reduce(m1, g, reduce="any").sum())
    alive3 = int(group_reduce(m3, g, reduce="any").sum())
    assert alive1 - alive3 == round(second * alive1)  # relative to the remaining units


@SETTINGS
@given(data=st.data(), shape=st.tuples(st.integers(1, 5), st.integers(1, 9)),
       rel=st.sampled_from(["remaining", "total"]))
def test_select_mask_matches_naive_with_ties(data, shape, rel):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=shape)  # lots of ties
    current = rng.random(shape) < data.draw(st.floats(0.0, 1.0))
    current = current if data.draw(st.booleans()) else None
    n = int(np.prod(shape))
    alive = n if current is None else int(current.sum())
    base = alive if rel == "remaining" else n
    amount = data.draw(st.one_of(st.floats(0.0, 1.0), st.integers(0, base)))
    got = select_mask(scores, amount, relative_to=rel, current_mask=current)
    np.testing.assert_array_equal(
        got, select_mask_naive(scores, amount, relative_to=rel, current_mask=current))


# ------------------------------------------------------------------ documented rules
def test_ties_prune_the_lowest_flat_index_first():
    keep = select_mask(np.zeros((2, 3)), 4)
    np.testing.assert_array_equal(keep, [[False, False, False], [False, True, True]])
    s = np.array([5.0, 1.0, 1.0, 0.0, 1.0, 7.0])
    np.testing.assert_array_equal(select_mask(s, 3), [True, False, False, False, True, True])
    # already-pruned units are excluded, the tie rule holds among the remaining
    cur = np.array([True, False, True, True, True, True])
    np.testing.assert_array_equal(select_mask(s, 2, current_mask=cur),
                                  [True, False, False, False, True, True])


def test_rounding_is_pythons_round_like_torch():
    assert n_to_prune(0.5, 5, 5) == 2  # round(2.5) == 2 (banker's rounding)
    assert n_to_prune(0.5, 7, 7) == 4  # round(3.5) == 4
    assert n_to_prune(0.25, 10, 10) == 2
    assert (~select_mask(np.arange(5.0), 0.5)).sum() == 2


def test_remaining_vs_total():
    w = np.random.default_rng(0).standard_normal((10, 10)).astype(np.float32)
    m = prune_weight(w, 0.5)
    m = prune_weight(w, 0.5, current_mask=m)
    assert m.sum() == 25  # 0.5 of the remaining, twice
    t = prune_weight(w, 0.5, relative_to="total")
    t = prune_weight(w, 0.5, relative_to="total", current_mask=t)
    assert t.sum() == 50
    t = prune_weight(w, 0.7, relative_to="total", current_mask=t)
    assert t.sum() == 30
    t2 = prune_weight(w, 0.2, relative_to="total", current_mask=t)  # below: nothing revived
    np.testing.assert_array_equal(t2, t)
    assert prune_weight(w, 10, current_mask=m).sum() == 15  # int count of remaining
    assert prune_weight(w, 80, relative_to="total", current_mask=m).sum() == 20


def test_partially_pruned_sets_are_remaining_and_scored_on_effective_weight():
    w = np.array([[1.0, 1.0, 1.0],
                  [5.0, 5.0, 5.0],
                  [2.0, 2.0, 2.0],
                  [9.0, 9.0, 9.0]])
    cur = np.ones_like(w, dtype=bool)
    cur[1, :2] = False  # row 1 partially pruned: effective L1 = 5 (< 6 of row 2)
    cur[3] = False  # row 3 fully pruned
    keep = prune_weight(w, 1, granularity="channel", current_mask=cur)
    # remaining rows 0, 1, 2 with L1 3, 5, 6 -> row 0 pruned; row 1 keeps its pruned entries
    expected = cur.copy()
    expected[0] = False
    np.testing.assert_array_equal(keep, expected)
    # "total" counts only fully pruned sets: 1 pruned of 4, target 2 -> one more
    keep_t = prune_weight(w, 0.5, granularity="channel", current_mask=cur, relative_to="total")
    np.testing.assert_array_equal(keep_t, expected)
    keep_t2 = prune_weight(w, 0.75, granularity="channel", current_mask=cur,
                           relative_to="total")
    expected[1] = False
    np.testing.assert_array_equal(keep_t2, expected)


def test_conv_granularities_example():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3, 2, 2))
    keep = prune_weight(w, 0.5, criterion="l2", granularity="kernel")
    norms = np.sqrt((w**2).sum(axis=(2, 3)))
    kept = keep[:, :, 0, 0]
    assert kept.sum() == 6 and norms[~kept].max() < norms[kept].min()
    keep = prune_weight(w, 1, criterion="l1", granularity="input_channel")
    i = np.argmin(np.abs(w).sum(axis=(0, 2, 3)))
    assert not keep[:, i].any() and keep[:, np.arange(3) != i].all()
    keep = prune_weight(w, 2, criterion="linf", granularity="vector")
    assert (~group_reduce(keep, "vector", reduce="any")).sum() == 2


def test_criteria_variants():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((12, 3, 3, 3))
    for crit in ["magnitude", "l1"]:  # magnitude == L1 for structured sets
        np.testing.assert_array_equal(prune_weight(w, 0.5, criterion=crit, granularity="channel"),
                                      prune_weight(w, 0.5, criterion="l1", granularity="channel"))
    np.testing.assert_array_equal(
        prune_weight(w, 0.5, criterion="lp", p=2, granularity="channel"),
        prune_weight(w, 0.5, criterion="l2", granularity="channel"))
    r1 = prune_weight(w, 0.5, criterion="random", granularity="kernel", rng=7)
    r2 = prune_weight(w, 0.5, criterion="random", granularity="kernel",
                      rng=np.random.default_rng(7))
    np.testing.assert_array_equal(r1, r2)
    gm = prune_weight(w, 3, criterion="geometric_median", granularity="channel")
    assert (~gm.reshape(12, -1).any(axis=1)).sum() == 3
    # a callable criterion receives the effective weight and the granularity
    seen = {}

    def neg_l1(weff, granularity):
        seen["g"] = granularity
        return -np.abs(weff).sum(axis=(1, 2, 3))

    keep = prune_weight(w, 1, criterion=neg_l1, granularity="channel")
    assert seen["g"] == "channel"
    assert not keep[np.argmax(np.abs(w).sum(axis=(1, 2, 3)))].any()


def test_cluster_criterion_prunes_exactly_the_non_representatives():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((10, 4, 3, 3)).astype(np.float32)
    keep = prune_weight(w, 0.6, criterion="cluster", granularity="channel", rng=0)
    kept_rows = keep.reshape(10, -1).any(axis=1)
    s = cluster_redundancy_scores(w, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(kept_rows, s > 1)
    # second round, relative to the remaining 4 filters: clusters only among them
    keep2 = prune_weight(w, 0.5, criterion="cluster", granularity="channel", rng=0,
                         current_mask=keep)
    assert keep2.reshape(10, -1).any(axis=1).sum() == 2 and not np.any(keep2 & ~keep)


def test_float64_and_bias_shapes():
    b = np.array([0.3, -0.1, 2.0, 0.0])
    np.testing.assert_array_equal(prune_weight(b, 2), [True, False, True, False])
    w = np.random.default_rng(0).standard_normal((6, 7))
    assert prune_weight(w, 0.5, granularity="vector").shape == (6, 7)


# ------------------------------------------------------------------ global
def test_global_element_l1_equals_ranking_the_concatenation():
    rng = np.random.default_rng(0)
    ws = {"conv2.weight": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
          "fc1.weight": 0.3 * rng.standard_normal((16, 32)).astype(np.float32)}
    masks = global_masks(ws, 0.6)
    flat = np.concatenate([np.abs(w).ravel() for w in ws.values()])
    expected = select_mask(flat, 0.6)
    got = np.concatenate([masks[k].ravel() for k in ws])
    np.testing.assert_array_equal(got, expected)
    sparsities = [1 - m.mean() for m in masks.values()]
    assert abs(sparsities[0] - sparsities[1]) > 0.1  # layers end up different
    # iterate relative to the remaining, and with a partial dict of current masks
    again = global_masks(ws, 0.5, current_masks=masks)
    assert sum(int(m.sum()) for m in again.values()) == round(
        sum(int(m.sum()) for m in masks.values()) * 0.5)
    for k in ws:
        assert not np.any(again[k] & ~masks[k])
    one = global_masks(ws, 10, current_masks={"fc1.weight": masks["fc1.weight"]})
    assert not np.any(one["fc1.weight"] & ~masks["fc1.weight"])
    # total: same target again changes nothing
    t = global_masks(ws, 0.6, relative_to="total")
    t2 = global_masks(ws, 0.6, relative_to="total", current_masks=t)
    for k in ws:
        np.testing.assert_array_equal(t[k], t2[k])


def test_global_structured():
    rng = np.random.default_rng(1)
    ws = {"a": rng.standard_normal((6, 5)), "b": 2 * rng.standard_normal((4, 5))}
    masks = global_masks(ws, 5, criterion="l2", granularity="channel")
    rows = np.concatenate([masks["a"].any(axis=1), masks["b"].any(axis=1)])
    norms = np.concatenate([np.linalg.norm(ws["a"], axis=1), np.linalg.norm(ws["b"], axis=1)])
    assert (~rows).sum() == 5 and norms[~rows].max() < norms[rows].min()


def test_global_errors():
    ws = {"a": np.ones((2, 3))}
    with pytest.raises(ValueError, match="nm"):
        global_masks(ws, 0.5, granularity="nm")
    with pytest.raises(ValueError, match="geometric_median"):
        global_masks(ws, 0.5, criterion="geometric_median", granularity="channel")
    with pytest.raises(ValueError, match=r"current_masks: names \['b'\]"):
        global_masks(ws, 0.5, current_masks={"b": np.ones((2, 3), dtype=bool)})
    with pytest.raises(TypeError, match="weights"):
        global_masks({}, 0.5)
    with pytest.raises(ValueError, match=r"weights\['a'\]: expected finite values"):
        global_masks({"a": np.array([[np.nan]])}, 0.5)
    with pytest.raises(TypeError, match=r"current_masks\['a'\]"):
        global_masks(ws, 0.5, current_masks={"a": np.ones((2, 3))})


# ------------------------------------------------------------------ bad input
W = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)


@pytest.mark.parametrize("amount, exc, match", [
    (-0.1, ValueError, r"amount: expected a float fraction in \[0, 1\], got -0.1"),
    (1.5, ValueError, r"amount: expected a float fraction in \[0, 1\], got 1.5"),
    (float("nan"), ValueError, "amount"),
    (-1, ValueError, "amount: expected a non-negative int count, got -1"),
    (25, ValueError, r"amount: an int count must be <= the number of remaining units \(24\)"),
    (True, TypeError, "amount: .* bool"),
    (np.bool_(True), TypeError, "amount: .* bool"),
    ("0.5", TypeError, "amount: .* got str"),
    (None, TypeError, "amount"),
])
def test_bad_amount(amount, exc, match):
    with pytest.raises(exc, match=match):
        prune_weight(W, amount)


def test_numpy_scalars_are_accepted():
    assert prune_weight(W, np.int64(6)).sum() == 18
    assert prune_weight(W, np.float32(0.25)).sum() == 18


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"current_mask: expected shape \(4, 6\), got \(6, 4\)"):
        prune_weight(W, 0.5, current_mask=np.ones((6, 4), dtype=bool))
    with pytest.raises(TypeError, match="current_mask: expected a boolean .* got float64"):
        prune_weight(W, 0.5, current_mask=np.ones((4, 6)))
    with pytest.raises(ValueError, match=r"w: expected finite values .*, found nan at index \(0, 1\)"):
        prune_weight(np.array([[1.0, np.nan]]), 0.5)
    with pytest.raises(ValueError, match="kernel.*Linear"):
        prune_weight(W, 0.5, granularity="kernel")
    with pytest.raises(ValueError, match="granularity: expected one of"):
        prune_weight(W, 0.5, granularity="row")
    with pytest.raises(ValueError, match="relative_to: expected one of"):
        prune_weight(W, 0.5, relative_to="all")
    with pytest.raises(ValueError, match="criterion: expected one of"):
        prune_weight(W, 0.5, criterion="taylor")
    with pytest.raises(ValueError, match="p: criterion='lp' needs"):
        prune_weight(W, 0.5, criterion="lp")
    with pytest.raises(ValueError, match="p: only used with criterion='lp'"):
        prune_weight(W, 0.5, criterion="l1", p=2)
    with pytest.raises(TypeError, match="rng"):
        prune_weight(W, 0.5, criterion="random")
    with pytest.raises(ValueError, match="'channel'"):
        prune_weight(W, 0.5, criterion="geometric_median", granularity="element")
    with pytest.raises(ValueError, match=r"per-set shape \(4,\)"):
        prune_weight(W, 0.5, criterion=lambda w, g: np.ones(3), granularity="channel")
    with pytest.raises(ValueError, match="n_pruned/m: only used with granularity 'nm'"):
        prune_weight(W, 0.5, m=4)
    with pytest.raises(TypeError, match="scores"):
        select_mask(np.ones(3, dtype=bool), 1)
    with pytest.raises(ValueError, match="scores: expected no NaN"):
        select_mask(np.array([1.0, np.nan]), 1)
    with pytest.raises(ValueError, match="total units"):
        select_mask(np.ones(3), 4, relative_to="total")


@pytest.mark.parametrize("args, exc, match", [
    ((0.5, -10, -10), ValueError, "n_total: expected an integer >= 0, got -10"),
    ((0.5, 10, 20), ValueError, r"n_remaining .*: expected an integer <= 10, got 20"),
    ((0.5, 10, -1), ValueError, r"n_remaining .*: expected an integer >= 0, got -1"),
    ((0.5, 10.0, 5), TypeError, "n_total: expected an integer"),
    ((0.5, 10, True), TypeError, "n_remaining .*: expected an integer"),
])
def test_n_to_prune_rejects_impossible_counts(args, exc, match):
    with pytest.raises(exc, match=match):
        n_to_prune(*args)


@pytest.mark.parametrize("shape", [(0, 6), (6, 0), (0, 2, 3, 3), (4, 0, 3, 3), (4, 2, 0, 3)])
@pytest.mark.parametrize("granularity", ["element", "vector", "kernel", "channel",
                                         "input_channel", "nm"])
def test_empty_weights_are_named_errors(shape, granularity):
    if granularity == "kernel" and len(shape) == 2:
        return
    w = np.ones(shape)
    with pytest.raises(ValueError, match=r"w: expected a non-empty array, got shape"):
        prune_weight(w, 0.5, granularity=granularity)
    with pytest.raises(ValueError, match=r"weights\['a'\]: expected a non-empty array"):
        global_masks({"a": w, "b": np.ones((3, 4))}, 0.5,
                     granularity="element" if granularity == "nm" else granularity)


def test_empty_weight_in_nm_storage_is_a_named_error():
    from tinyprune.prune.nm_storage import NMSparse

    for shape in [(0, 8), (4, 0)]:
        with pytest.raises(ValueError, match="w: expected a non-empty array"):
            NMSparse.compress(np.ones(shape), 2, 4)
