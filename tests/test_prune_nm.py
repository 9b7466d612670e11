"""N:M pattern pruning (tinyprune.prune.nm) and its compressed storage (nm_storage)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.prune.nm import is_nm_compliant, nm_group_view, nm_mask, nm_mask_naive
from tinyprune.prune.nm_storage import NMSparse
from tinyprune.prune.select import prune_weight

SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def nm_case(draw, partial=True):
    m = draw(st.integers(1, 8))
    n_pruned = draw(st.integers(0, m - 1))
    if draw(st.booleans()):  # conv: groups along C_in*KH*KW
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        c_in = draw(st.integers(1, 4))
        shape = (draw(st.integers(1, 5)), c_in, kh, kw)
    else:
        shape = (draw(st.integers(1, 6)), draw(st.integers(1, 24)))
    length = int(np.prod(shape[1:]))
    if not partial and length % m:
        shape = (shape[0], length + m - length % m)  # make the row a whole number of groups
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    if draw(st.booleans()):
        w = rng.integers(-2, 3, size=shape).astype(dtype)  # ties
    else:
        w = rng.standard_normal(shape).astype(dtype)
    return w, n_pruned, m


@SETTINGS
@given(c=nm_case())
def test_nm_mask_properties_and_naive_twin(c):
    w, n_pruned, m = c
    w0 = w.copy()
    keep = nm_mask(w, n_pruned, m, allow_partial=True)
    np.testing.assert_array_equal(w, w0)
    assert keep.dtype == np.bool_ and keep.shape == w.shape
    np.testing.assert_array_equal(keep, nm_mask_naive(w, n_pruned, m, allow_partial=True))
    rows_keep = keep.reshape(w.shape[0], -1)
    rows_s = np.abs(w).reshape(w.shape[0], -1)
    length = rows_keep.shape[1]
    full = length - length % m
    groups_keep = rows_keep[:, :full].reshape(w.shape[0], -1, m)
    groups_s = rows_s[:, :full].reshape(w.shape[0], -1, m)
    # every full group has exactly n_pruned pruned
    assert np.all((~groups_keep).sum(axis=-1) == n_pruned)
    # within a group, pruned never score above kept
    pruned_max = np.where(~groups_keep, groups_s, -np.inf).max(axis=-1, initial=-np.inf)
    kept_min = np.where(groups_keep, groups_s, np.inf).min(axis=-1, initial=np.inf)
    assert np.all(pruned_max <= kept_min)
    # trailing partial group: the m - r pads are pruned first
    r = length - full
    if r:
        assert np.all((~rows_keep[:, full:]).sum(axis=1) == max(0, n_pruned - (m - r)))
    assert is_nm_compliant(w * keep, n_pruned, m, allow_partial=True)
    if r == 0:
        np.testing.assert_array_equal(keep, nm_mask(w, n_pruned, m))


def test_two_four_example_and_ties():
    w = np.array([[0.1, -0.9, 0.5, 0.2, 3.0, 3.0, 3.0, 3.0]], dtype=np.float32)
    keep = nm_mask(w, n_pruned=2, m=4)
    np.testing.assert_array_equal(keep, [[False, True, True, False, False, False, True, True]])
    assert keep.mean() == 0.5  # 2:4 is 50% sparsity either way


def test_conv_groups_run_along_flattened_input():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2, 2, 2))  # rows of 8 = C_in*KH*KW, groups of 4
    keep = nm_mask(w, 1, 4)
    np.testing.assert_array_equal(keep.reshape(3, 8), nm_mask(w.reshape(3, 8), 1, 4))
    assert np.all((~keep.reshape(3, 2, 4)).sum(axis=-1) == 1)


def test_partial_group_rule():
    w = np.arange(1, 10, dtype=np.float64).reshape(1, 9)  # 2:4 on 9 -> groups 4, 4, 1
    with pytest.raises(ValueError, match="row length 9 .* not a multiple of m=4"):
        nm_mask(w, 2, 4)
    keep = nm_mask(w, 2, 4, allow_partial=True)
    np.testing.assert_array_equal(keep, [[0, 0, 1, 1, 0, 0, 1, 1, 1]])  # last weight kept
    keep = nm_mask(np.arange(1.0, 8.0).reshape(1, 7), 3, 4, allow_partial=True)
    # tail of r = 3: 3 - (4 - 3) = 2 pruned
    np.testing.assert_array_equal(keep, [[0, 0, 0, 1, 0, 0, 1]])


def test_custom_scores_and_inf():
    w = np.ones((1, 4))
    keep = nm_mask(w, 2, 4, scores=np.array([[3.0, -np.inf, 1.0, 2.0]]))
    np.testing.assert_array_equal(keep, [[True, False, False, True]])
    with pytest.raises(ValueError, match="scores: expected the shape of w"):
        nm_mask(w, 2, 4, scores=np.ones(4))


@pytest.mark.parametrize("n_pruned, m, exc, match", [
    (4, 4, ValueError, "n_pruned: expected n_pruned < m"),
    (5, 4, ValueError, "n_pruned < m"),
    (0, 0, ValueError, r"m: expected an integer >= 1, got 0"),
    (1, -4, ValueError, r"m: expected an integer >= 1"),
    (-1, 4, ValueError, "n_pruned: expected an integer >= 0, got -1"),
    (True, 4, TypeError, "n_pruned: expected an integer"),
    (2.0, 4, TypeError, "n_pruned: expected an integer"),
    (2, 4.0, TypeError, r"m: expected an integer"),
])
def test_bad_pattern(n_pruned, m, exc, match):
    with pytest.raises(exc, match=match):
        nm_mask(np.ones((2, 8)), n_pruned, m)


def test_bad_weight():
    with pytest.raises(ValueError, match="NaN"):
        nm_mask(np.array([[np.nan, 1.0, 2.0, 3.0]]), 2, 4)
    with pytest.raises(ValueError, match="Linear"):
        nm_mask(np.ones(8), 2, 4)


def test_nm_group_view():
    x = np.arange(16.0).reshape(2, 8)
    v = nm_group_view(x, 4)
    assert v.shape == (2, 2, 4) and np.shares_memory(v, x)
    with pytest.raises(ValueError, match="fill="):
        nm_group_view(np.ones((2, 9)), 4)
    p = nm_group_view(np.ones((2, 9), dtype=bool), 4, fill=False)
    assert p.shape == (2, 3, 4) and p[:, 2].sum() == 2


# ------------------------------------------------------------------ via prune_weight
def test_prune_weight_nm():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 16)).astype(np.float32)
    ref = nm_mask(w, 2, 4)
    np.testing.assert_array_equal(prune_weight(w, 0.5, granularity="nm"), ref)  # m = 4
    np.testing.assert_array_equal(prune_weight(w, None, granularity="nm", n_pruned=2, m=4), ref)
    np.testing.assert_array_equal(prune_weight(w, 2, granularity="nm", m=4), ref)
    np.testing.assert_array_equal(prune_weight(w, 0.5, granularity="nm", n_pruned=2), ref)
    with pytest.raises(ValueError, match="contradicts n_pruned=2"):
        prune_weight(w, 0.75, granularity="nm", n_pruned=2, m=4)
    with pytest.raises(ValueError, match="n_pruned"):
        prune_weight(w, None, granularity="nm")
    with pytest.raises(ValueError, match="n_pruned < m"):
        prune_weight(w, 1.0, granularity="nm")
    with pytest.raises(ValueError, match="N:M"):
        prune_weight(w, 0.5, granularity="nm", criterion="geometric_median")
    r = prune_weight(w, 0.5, granularity="nm", criterion="random", rng=0)
    assert np.all((~r.reshape(8, 4, 4)).sum(axis=-1) == 2)


@SETTINGS
@given(c=nm_case(), element_amount=st.floats(0.0, 1.0))
def test_prune_weight_nm_with_current_mask(c, element_amount):
    w, n_pruned, m = c
    cur = prune_weight(w, element_amount)  # some unstructured pruning first
    keep = prune_weight(w, None, granularity="nm", n_pruned=n_pruned, m=m,
                        current_mask=cur, allow_partial=True)
    assert not np.any(keep & ~cur)  # monotone
    assert is_nm_compliant(w * keep, n_pruned, m, allow_partial=True)
    # groups with >= n_pruned already pruned are left alone; others get exactly n_pruned
    g_cur = nm_group_view(~cur, m, fill=True).sum(-1)
    g_new = nm_group_view(~keep, m, fill=True).sum(-1)
    np.testing.assert_array_equal(g_new, np.maximum(g_cur, n_pruned))
    again = prune_weight(w, None, granularity="nm", n_pruned=n_pruned, m=m,
                         current_mask=keep, allow_partial=True, relative_to="total")
    np.testing.assert_array_equal(again, keep)  # idempotent


# ------------------------------------------------------------------ compressed storage
@SETTINGS
@given(c=nm_case(), batch=st.integers(1, 5))
def test_nmsparse_round_trip_and_matmul(c, batch):
    w, n_pruned, m = c
    ws = w * nm_mask(w, n_pruned, m, allow_partial=True)
    packed = NMSparse.compress(ws, n_pruned, m, allow_partial=True)
    k = m - n_pruned
    length = int(np.prod(w.shape[1:]))
    assert packed.values.shape == packed.indices.shape == (w.shape[0], -(-length // m), k)
    assert packed.indices.dtype == np.uint8 and packed.values.dtype == w.dtype
    out = packed.decompress()
    assert out.shape == w.shape and out.dtype == w.dtype
    np.testing.assert_array_equal(out, ws)
    x = np.random.default_rng(0).standard_normal((batch, length)).astype(w.dtype)
    dense = x @ ws.reshape(w.shape[0], -1).T
    y = packed.matmul(x)
    assert y.shape == (batch, w.shape[0])
    tol = dict(rtol=1e-5, atol=1e-5) if w.dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, dense, **tol)
    np.testing.assert_allclose(packed.matmul_naive(x), dense, **tol)


def test_nmsparse_fc1_sized_and_nbytes():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((128, 9216)).astype(np.float32)
    w *= nm_mask(w, 2, 4)
    packed = NMSparse.compress(w, 2, 4)
    np.testing.assert_array_equal(packed.decompress(), w)
    x = rng.standard_normal((16, 9216)).astype(np.float32)
    np.testing.assert_allclose(packed.matmul(x), x @ w.T, rtol=1e-5, atol=1e-4)
    kept = 128 * 2304 * 2
    assert packed.index_bits == 2
    assert packed.nbytes == kept * 4 + kept * 2 // 8
    assert packed.dense_nbytes == w.nbytes
    w64 = w.astype(np.float64)
    p64 = NMSparse.compress(w64, 2, 4)
    np.testing.assert_allclose(p64.matmul(x.astype(np.float64)), x.astype(np.float64) @ w64.T,
                               rtol=1e-12, atol=1e-10)


def test_nmsparse_index_bits_and_extra_zeros():
    w = np.zeros((2, 8), dtype=np.float32)
    w[0, 5] = 1.5
    p = NMSparse.compress(w, 1, 4)  # groups with more zeros than required are fine
    np.testing.assert_array_equal(p.decompress(), w)
    np.testing.assert_array_equal(p.indices[0, 1], [0, 1, 2])  # nonzero 1 kept, zeros fill
    assert NMSparse.compress(np.zeros((1, 8)), 0, 1).index_bits == 0
    assert NMSparse.compress(np.zeros((1, 8)), 4, 8).index_bits == 3
    assert NMSparse.compress(np.zeros((1, 10)), 2, 5).index_bits == 3
    assert "n_pruned=1, m=4" in repr(p)


def test_nmsparse_errors():
    w = np.ones((3, 8), dtype=np.float32)
    w[:, ::2] = 0.0
    w[2, 5] = 0.0
    w[1, 6] = 3.0  # row 1, group 1 now has 3 nonzeros
    with pytest.raises(ValueError, match=r"not 2:4 compliant .* row 1, group 1 \(positions "
                                         r"4..7 .* 3 nonzeros"):
        NMSparse.compress(w, 2, 4)
    with pytest.raises(ValueError, match="not a multiple of m=4"):
        NMSparse.compress(np.zeros((2, 6)), 2, 4)
    with pytest.raises(ValueError, match="m <= 256"):
        NMSparse.compress(np.zeros((2, 512)), 2, 512)
    with pytest.raises(ValueError, match="n_pruned < m"):
        NMSparse.compress(np.zeros((2, 8)), 4, 4)
    p = NMSparse.compress(np.zeros((2, 8)), 2, 4)
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 8\)"):
        p.matmul(np.zeros((3, 7)))
    with pytest.raises(TypeError, match="x: expected dtype"):
        p.matmul(np.zeros((3, 8), dtype=np.int32))
    with pytest.raises(TypeError, match="indices: expected a uint8"):
        NMSparse(p.values, p.indices.astype(np.int64), (2, 8), 2, 4)
    with pytest.raises(ValueError, match="indices: expected strictly increasing"):
        NMSparse(p.values, p.indices[..., ::-1].copy(), (2, 8), 2, 4)
    with pytest.raises(ValueError, match=r"values: expected shape \(2, 2, 2\)"):
        NMSparse(p.values[:, :1], p.indices, (2, 8), 2, 4)


@pytest.mark.parametrize("m", [2, 3, 4, 8, 9, 12])
def test_rank_and_argsort_paths_agree_with_the_naive_twin(m):
    """Groups of up to 8 are ranked by pairwise comparisons, larger ones by a stable argsort."""
    rng = np.random.default_rng(m)
    w = rng.integers(-3, 4, size=(7, 5 * m)).astype(np.float64)  # many ties
    for n_pruned in range(m):
        np.testing.assert_array_equal(nm_mask(w, n_pruned, m), nm_mask_naive(w, n_pruned, m))
