"""CSR with relative indices and filler zeros (tinyprune.size.csr): the paper's Fig. 2, the loop
twin, exact round trips (empty rows, all-zero layers, long gaps, b = 1..16), bit counts, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.size.csr import RelativeCSR, csr_decode, csr_encode, csr_encode_naive

SETTINGS = settings(max_examples=200, deadline=None)


def _same(a: RelativeCSR, b: RelativeCSR):
    assert a.shape == b.shape and a.index_bits == b.index_bits
    assert a.values.dtype == b.values.dtype and a.rel.dtype == b.rel.dtype
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.rel, b.rel)
    np.testing.assert_array_equal(a.row_ptr, b.row_ptr)


def test_paper_figure_2_three_bit_indices():
    """Han et al. 2016, Fig. 2: nonzeros 3.4, 0.9, 1.7 at 1, 4, 15; the span 4 -> 15 exceeds
    8 = 2^3, so a filler zero is stored at 12; the figure's diff row is 1, 3, 8, 3."""
    w = np.zeros(16, dtype=np.float32)
    w[[1, 4, 15]] = [3.4, 0.9, 1.7]
    c = csr_encode(w, 3)
    np.testing.assert_array_equal(c.values, np.float32([3.4, 0.9, 0.0, 1.7]))
    assert c.rel.tolist() == [1, 2, 7, 2]  # zeros skipped before each stored entry
    columns = np.cumsum(c.rel.astype(int) + 1) - 1
    assert columns.tolist() == [1, 4, 12, 15]  # the filler sits at 12
    assert np.diff(columns, prepend=0).tolist() == [1, 3, 8, 3]  # the figure's "diff" row
    assert c.n_fillers == 1 and c.row_ptr.tolist() == [0, 4]
    np.testing.assert_array_equal(csr_decode(c), w)
    # 4 bits reach a span of 16: no filler needed
    assert csr_encode(w, 4).rel.tolist() == [1, 2, 10]


def test_relative_index_restarts_at_every_row():
    w = np.zeros((2, 6), dtype=np.float64)
    w[0, 5], w[1, 0], w[1, 3] = 1.0, 2.0, 3.0
    c = csr_encode(w, 2)  # span 4
    assert c.rel.tolist() == [3, 1, 0, 2]  # row 0: filler at 3 (after 3 zeros), then 1 zero
    assert c.values.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert c.row_ptr.tolist() == [0, 2, 4]


def test_exact_gap_of_span_needs_one_filler_and_one_less_does_not():
    for b in (1, 2, 3, 5):
        span = 1 << b
        for zeros, fillers in ((span - 1, 0), (span, 1), (2 * span - 1, 1), (2 * span, 2)):
            w = np.zeros(zeros + 1, dtype=np.float32)
            w[-1] = 7.0
            c = csr_encode(w, b)
            assert c.n_fillers == fillers, (b, zeros)
            np.testing.assert_array_equal(csr_decode(c), w)


@st.composite
def sparse_weight(draw):
    shape = draw(st.sampled_from(["fc", "conv", "vec"]))
    if shape == "fc":
        shape = (draw(st.integers(1, 7)), draw(st.integers(1, 70)))
    elif shape == "conv":
        shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3)),
                 draw(st.integers(1, 3)))
    else:
        shape = (draw(st.integers(0, 80)),)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    density = draw(st.sampled_from([0.0, 0.02, 0.1, 0.5, 1.0]))
    w = rng.standard_normal(shape).astype(dtype)
    w[rng.random(shape) >= density] = 0
    if w.ndim > 1 and draw(st.booleans()):
        w[rng.integers(0, w.shape[0])] = 0  # an empty row
    return w, draw(st.integers(1, 16))


@SETTINGS
@given(c=sparse_weight())
def test_round_trip_and_loop_twin(c):
    w, b = c
    enc = csr_encode(w, b)
    _same(enc, csr_encode_naive(w, b))
    back = csr_decode(enc)
    assert back.dtype == w.dtype and back.shape == w.shape
    np.testing.assert_array_equal(back, w)
    assert enc.n_stored - enc.n_fillers == np.count_nonzero(w)
    assert enc.rel.size == 0 or int(enc.rel.max()) < 1 << b
    rows = w.shape[0] if w.ndim > 1 else 1
    assert enc.row_ptr.shape == (rows + 1,)
    # exact byte counts: float values, b-bit indices, pointers of bit_length(n_stored) bits
    assert enc.values_nbytes == enc.n_stored * w.itemsize
    assert enc.index_nbytes == -(-enc.n_stored * b // 8)
    assert enc.row_ptr_nbytes == -(-(rows + 1) * max(1, enc.n_stored.bit_length()) // 8)


def test_all_zero_layer_and_negative_zero():
    w = np.zeros((3, 5), dtype=np.float32)
    c = csr_encode(w, 1)
    assert c.n_stored == 0 and c.row_ptr.tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(csr_decode(c), w)
    w = np.array([[-0.0, 1.0, -0.0]], dtype=np.float32)
    back = csr_decode(csr_encode(w, 2))
    assert back.tobytes() == (w + 0.0).tobytes()  # -0.0 is a zero: it comes back as +0.0


def test_bad_inputs():
    w = np.ones((2, 3), dtype=np.float32)
    for b in (0, 17):
        with pytest.raises(ValueError, match="index_bits"):
            csr_encode(w, b)
    with pytest.raises(TypeError, match="index_bits"):
        csr_encode(w, 2.5)
    with pytest.raises(TypeError, match="w: expected dtype float32 or float64"):
        csr_encode(w.astype(np.int32), 4)
    bad = w.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="w: expected finite"):
        csr_encode(bad, 4)
    with pytest.raises(ValueError, match="w: .*scalar"):
        csr_encode(np.ones((), np.float32), 4)


def test_decode_rejects_inconsistent_storage():
    c = csr_encode(np.eye(3, dtype=np.float32), 2)
    with pytest.raises(ValueError, match="beyond the row length"):
        csr_decode(RelativeCSR(c.values, np.array([0, 3, 3], np.uint16), c.row_ptr, c.shape, 2))
    with pytest.raises(ValueError, match="row_ptr"):
        csr_decode(RelativeCSR(c.values, c.rel, np.array([0, 1, 1, 2]), c.shape, 2))
    with pytest.raises(ValueError, match="rel"):
        csr_decode(RelativeCSR(c.values, np.array([0, 4, 1], np.uint16), c.row_ptr, c.shape, 2))
    with pytest.raises(TypeError, match="csr"):
        csr_decode("not a csr")
