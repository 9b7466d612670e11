"""Codebook storage (tinyprune.size.codebook): exact round trips, bit counts, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.size.codebook import (
    bits_for,
    codebook_decode,
    codebook_encode,
    codebook_from_indices,
)

SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def shared_weight(draw):
    bits = draw(st.integers(1, 8))
    k = draw(st.integers(1, 1 << bits))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    centroids = rng.standard_normal(k).astype(dtype)
    shape = draw(st.sampled_from([(0,), (7,), (3, 5), (2, 2, 3, 3)]))
    w = centroids[rng.integers(0, k, size=shape)]
    if w.size and draw(st.booleans()):
        w.reshape(-1)[rng.random(w.size) < 0.5] = 0  # pruned: 0 is one more value
        bits = max(bits, bits_for(np.unique(w).size))
    return w, bits


@SETTINGS
@given(c=shared_weight())
def test_round_trip_is_bit_exact_and_counts_bytes(c):
    w, bits = c
    s = codebook_encode(w, bits)
    back = codebook_decode(s)
    assert back.dtype == w.dtype and back.shape == w.shape
    assert back.tobytes() == w.tobytes()
    assert s.bits == bits and s.codebook.size <= 1 << bits
    assert np.all(np.diff(s.codebook) >= 0)  # sorted by value
    assert s.nbytes == s.codebook.size * w.itemsize + -(-w.size * bits // 8)
    assert s.packed.size == -(-w.size * bits // 8)


def test_default_bits_are_the_fewest_that_fit():
    w = np.array([0.5, -1.0, 0.5, 2.0, 3.0], dtype=np.float32)  # 4 values -> 2 bits
    s = codebook_encode(w)
    assert s.bits == 2 and s.codebook.tolist() == [-1.0, 0.5, 2.0, 3.0]
    assert s.indices.tolist() == [1, 0, 1, 2, 3]
    assert codebook_encode(np.ones(4, np.float32)).bits == 1  # one value still takes 1 bit
    assert [bits_for(k) for k in (1, 2, 3, 4, 5, 32, 33)] == [1, 1, 2, 2, 3, 5, 6]


def test_negative_zero_is_kept_apart():
    w = np.array([0.0, -0.0, 1.0], dtype=np.float64)
    s = codebook_encode(w)
    assert s.codebook.size == 3
    assert codebook_decode(s).tobytes() == w.tobytes()


def test_from_indices_round_trip_with_a_full_codebook():
    rng = np.random.default_rng(0)
    book = np.sort(rng.standard_normal(32)).astype(np.float32)  # 2^5 centroids
    idx = rng.integers(0, 32, size=(10, 20))
    s = codebook_from_indices(book, idx)
    assert s.bits == 5 and s.nbytes == 32 * 4 + 10 * 20 * 5 // 8
    np.testing.assert_array_equal(s.indices, idx)
    np.testing.assert_array_equal(codebook_decode(s), book[idx])


def test_bad_inputs():
    w = np.arange(5, dtype=np.float32)
    with pytest.raises(ValueError, match=r"x: expected at most 2\*\*bits = 4 distinct values"):
        codebook_encode(w, 2)
    with pytest.raises(ValueError, match="bits"):
        codebook_encode(w, 17)
    with pytest.raises(ValueError, match="x: expected finite"):
        codebook_encode(np.array([np.inf], np.float32))
    with pytest.raises(TypeError, match="x"):
        codebook_encode(np.arange(3))
    book = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"indices: expected entries in \[0, 3\]"):
        codebook_from_indices(book, np.array([0, 4]))
    with pytest.raises(ValueError, match="codebook: expected at most"):
        codebook_from_indices(book, np.array([0]), bits=1)
    with pytest.raises(TypeError, match="indices"):
        codebook_from_indices(book, np.array([0.0]))
    with pytest.raises(ValueError, match="codebook"):
        codebook_from_indices(np.zeros(0, np.float32), np.array([], np.int64))
    with pytest.raises(TypeError, match="storage"):
        codebook_decode(w)
