"""Canonical Huffman coding (tinyprune.size.huffman): optimal lengths (brute force), the entropy
bracket, canonical codes, vectorized encode/decode equal to their loop twins, one-symbol and empty
streams, long codes, the stored table, corrupted input."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.size.entropy import entropy_bits, entropy_bound_bits
from tinyprune.size.huffman import (
    HuffmanCode,
    HuffmanEncoded,
    canonical_codes,
    huffman_code_lengths,
    huffman_decode,
    huffman_decode_naive,
    huffman_encode,
    huffman_encode_naive,
)

SETTINGS = settings(max_examples=150, deadline=None)


def _brute_force_cost(freqs):
    """Least sum f*l over all length vectors obeying Kraft's inequality (= all prefix codes)."""
    k = len(freqs)
    best = math.inf
    for lengths in itertools.product(range(1, k), repeat=k):
        if sum(2.0 ** -n for n in lengths) <= 1.0:
            best = min(best, sum(f * n for f, n in zip(freqs, lengths, strict=True)))
    return best


@settings(max_examples=60, deadline=None)
@given(freqs=st.lists(st.integers(1, 50), min_size=2, max_size=5))
def test_lengths_are_optimal_against_brute_force(freqs):
    lengths = huffman_code_lengths(np.array(freqs))
    assert sum(f * int(n) for f, n in zip(freqs, lengths, strict=True)) == _brute_force_cost(freqs)
    assert sum(2.0 ** -int(n) for n in lengths) == 1.0  # complete


def test_known_optimal_cost():
    # classic example: counts 45, 13, 12, 16, 9, 5 -> 224 bits (CLRS Fig. 16.5)
    lengths = huffman_code_lengths(np.array([45, 13, 12, 16, 9, 5]))
    assert int(np.dot(lengths, [45, 13, 12, 16, 9, 5])) == 224
    assert lengths.tolist() == [1, 3, 3, 3, 4, 4]


@st.composite
def stream(draw, min_symbols=0):
    k = draw(st.integers(1, 40))
    n = draw(st.integers(min_symbols, 3000))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["uniform", "zipf", "sparse"]))
    if kind == "uniform":
        s = rng.integers(0, k, size=n)
    elif kind == "zipf":
        s = (rng.zipf(1.4, size=n) - 1) % k
    else:  # mostly one symbol, like the index stream of a pruned layer
        s = np.where(rng.random(n) < 0.9, 0, rng.integers(0, k, size=n))
    return s.astype(draw(st.sampled_from([np.int64, np.uint8, np.uint16])) if k <= 255 else s)


@SETTINGS
@given(s=stream())
def test_round_trip_and_loop_twins(s):
    enc = huffman_encode(s)
    naive = huffman_encode_naive(s)
    assert enc.n_bits == naive.n_bits and enc.n_symbols == s.size
    np.testing.assert_array_equal(enc.data, naive.data)
    assert enc.data.size == -(-enc.n_bits // 8)
    np.testing.assert_array_equal(huffman_decode(enc), s)
    np.testing.assert_array_equal(huffman_decode_naive(enc), s)
    assert enc.n_bits == enc.code.encoded_bits(s)


@SETTINGS
@given(s=stream(min_symbols=1))
def test_average_length_lies_in_entropy_bracket(s):
    enc = huffman_encode(s)
    h = entropy_bits(s)
    avg = enc.n_bits / s.size
    assert h - 1e-9 <= avg < h + 1
    assert math.isclose(entropy_bound_bits(s), s.size * h)


def test_canonical_codes_are_prefix_free_and_ordered():
    lengths = huffman_code_lengths(np.array([10, 1, 1, 5, 5, 2, 0, 30]))
    codes = canonical_codes(lengths)
    words = {s: format(int(codes[s]), f"0{int(lengths[s])}b") for s in range(8) if lengths[s]}
    for a, b in itertools.permutations(words.values(), 2):
        assert not b.startswith(a)
    ranked = sorted(words, key=lambda s: (lengths[s], s))  # by (length, symbol) ...
    as_int = [int(words[s], 2) << (int(lengths.max()) - int(lengths[s])) for s in ranked]
    assert as_int == sorted(as_int) and len(set(as_int)) == len(as_int)  # ... increasing codes
    assert lengths[6] == 0 and codes[6] == 0
    assert canonical_codes(np.array([2, 1, 3, 3])).tolist() == [2, 0, 6, 7]


def test_one_symbol_stream_costs_zero_bits():
    s = np.full(1000, 5, dtype=np.int64)
    enc = huffman_encode(s)
    assert enc.n_bits == 0 and enc.data.size == 0
    assert enc.code.single_symbol == 5 and enc.code.lengths.tolist() == [0] * 6
    np.testing.assert_array_equal(huffman_decode(enc), s)
    np.testing.assert_array_equal(huffman_decode_naive(enc), s)
    assert entropy_bits(s) == 0.0
    code = HuffmanCode.from_bytes(enc.code.to_bytes())
    assert code.single_symbol == 5
    assert huffman_code_lengths(np.array([0, 7, 0])).tolist() == [0, 0, 0]


def test_empty_stream():
    enc = huffman_encode(np.zeros(0, dtype=np.int64))
    assert enc.n_bits == 0 and enc.code.alphabet_size == 0
    assert huffman_decode(enc).size == 0 and huffman_decode_naive(enc).size == 0
    assert entropy_bits(np.zeros(0, np.int64)) == 0.0


@pytest.mark.parametrize("n_symbols", [26, 41, 58])
def test_long_codes_use_the_searchsorted_path(n_symbols):
    """Fibonacci counts give the longest codes: L = 25 (32-bit windows), 40 and 57 (64-bit)."""
    fib = [1, 1]
    while len(fib) < n_symbols:
        fib.append(fib[-1] + fib[-2])
    code = HuffmanCode.from_frequencies(np.array(fib, dtype=np.int64))
    assert int(code.lengths.max()) == n_symbols - 1  # beyond the 2**16-entry lookup table
    rng = np.random.default_rng(3)
    s = rng.integers(0, n_symbols, size=2000)
    enc = huffman_encode(s, code)
    np.testing.assert_array_equal(enc.data, huffman_encode_naive(s, code).data)
    np.testing.assert_array_equal(huffman_decode(enc), s)
    np.testing.assert_array_equal(huffman_decode_naive(enc), s)


def test_code_longer_than_the_limit_is_refused():
    fib = [1, 1]
    while len(fib) < 59:
        fib.append(fib[-1] + fib[-2])
    with pytest.raises(ValueError, match="freqs: the Huffman code needs 58 bits"):
        huffman_code_lengths(np.array(fib, dtype=np.int64))


@settings(max_examples=100, deadline=None)
@given(s=stream(min_symbols=1), block=st.sampled_from([64, 128]))
def test_small_blocks_many_lanes_and_merges(s, block):
    """The block-wise chain walk with tiny blocks: many blocks, walks that merge or not."""
    import tinyprune.size.huffman as hm

    enc = huffman_encode(s)
    old = hm._BLOCK_BITS
    hm._BLOCK_BITS = block
    try:
        np.testing.assert_array_equal(huffman_decode(enc), s)
    finally:
        hm._BLOCK_BITS = old


def test_fixed_length_code_is_read_directly():
    s = np.random.default_rng(4).integers(0, 16, size=5000)
    s[:16] = np.arange(16)  # all 16 symbols used
    code = HuffmanCode(np.full(16, 4, dtype=np.uint8))
    enc = huffman_encode(s, code)
    assert enc.n_bits == 4 * s.size
    np.testing.assert_array_equal(huffman_decode(enc), s)
    np.testing.assert_array_equal(huffman_decode_naive(enc), s)
    with pytest.raises(ValueError, match="enc"):
        huffman_decode(HuffmanEncoded(code, enc.data, s.size - 1, enc.n_bits))


def test_many_blocks_large_stream():
    rng = np.random.default_rng(1)
    s = np.where(rng.random(300_000) < 0.7, 3, rng.integers(0, 32, size=300_000))
    enc = huffman_encode(s)
    np.testing.assert_array_equal(huffman_decode(enc), s)


def test_table_round_trip_and_size():
    code = HuffmanCode.from_frequencies(np.array([5, 0, 3, 9, 1, 0, 0]))
    assert code.alphabet_size == 5  # truncated after the last used symbol
    data = code.to_bytes()
    assert len(data) == code.table_nbytes == 4 + -(-5 * 6 // 8)
    np.testing.assert_array_equal(HuffmanCode.from_bytes(data).lengths, code.lengths)


def test_bad_tables_are_rejected():
    with pytest.raises(ValueError, match="complete prefix code"):
        HuffmanCode(np.array([1, 2], np.uint8))  # Kraft sum 3/4
    with pytest.raises(ValueError, match="complete prefix code"):
        HuffmanCode(np.array([1, 1, 1], np.uint8))  # over-full
    with pytest.raises(ValueError, match="complete prefix code"):
        HuffmanCode(np.array([1], np.uint8))
    with pytest.raises(ValueError, match="lengths"):
        HuffmanCode(np.array([58, 1], np.uint8))
    with pytest.raises(ValueError, match="data"):
        HuffmanCode.from_bytes(b"\x05\x00")
    with pytest.raises(ValueError, match="data"):
        HuffmanCode.from_bytes(np.uint32(1000).tobytes() + b"\x00")


def test_corrupted_streams_fail_with_a_clear_error():
    s = np.array([0, 1, 2, 0, 0, 1, 3, 0] * 50)
    enc = huffman_encode(s)
    for dec in (huffman_decode, huffman_decode_naive):
        with pytest.raises(ValueError, match="enc"):
            dec(HuffmanEncoded(enc.code, enc.data, enc.n_symbols + 1, enc.n_bits))
        with pytest.raises(ValueError, match="enc"):
            dec(HuffmanEncoded(enc.code, enc.data, enc.n_symbols, enc.n_bits - 1))
        with pytest.raises(ValueError, match="enc.data"):
            dec(HuffmanEncoded(enc.code, enc.data[:-2], enc.n_symbols, enc.n_bits))


def test_bad_inputs():
    with pytest.raises(TypeError, match="symbols"):
        huffman_encode(np.array([0.5]))
    with pytest.raises(ValueError, match="symbols"):
        huffman_encode(np.array([-1, 2]))
    with pytest.raises(ValueError, match="no code word"):
        huffman_encode(np.array([0, 7]), HuffmanCode.from_frequencies(np.array([1, 1])))
    with pytest.raises(ValueError, match="freqs"):
        huffman_code_lengths(np.array([1, -1]))
    with pytest.raises(TypeError, match="freqs"):
        huffman_code_lengths(np.array([[1, 2]]))
    with pytest.raises(TypeError, match="enc"):
        huffman_decode(b"abc")


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_bytes=st.integers(1, 200), n=st.integers(1, 900))
def test_random_bit_strings_decode_like_the_loop_twin_or_fail_cleanly(seed, n_bytes, n):
    rng = np.random.default_rng(seed)
    code = HuffmanCode.from_frequencies(rng.integers(1, 20, size=rng.integers(2, 12)))
    data = rng.integers(0, 256, size=n_bytes).astype(np.uint8)
    enc = HuffmanEncoded(code, data, n, int(rng.integers(n, 8 * n_bytes + 1)) if n <= 8 * n_bytes
                         else 8 * n_bytes)
    results = []
    for dec in (huffman_decode, huffman_decode_naive):
        try:
            results.append(dec(enc))
        except ValueError:
            results.append(None)
    if results[0] is None or results[1] is None:
        assert results[0] is None and results[1] is None
    else:
        np.testing.assert_array_equal(results[0], results[1])
