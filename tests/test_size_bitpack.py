"""Bit packing (tinyprune.common.bitpack): round trips, the loop twin, byte counts, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.common.bitpack import (
    pack_bits,
    pack_bits_naive,
    packed_nbytes,
    uint_dtype,
    unpack_bits,
)

SETTINGS = settings(max_examples=200, deadline=None)


@st.composite
def packed_case(draw):
    bits = draw(st.integers(1, 32))
    n = draw(st.integers(0, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.integers(0, 1 << bits, size=n, dtype=np.uint64)
    if n and draw(st.booleans()):  # the extremes of the range
        values[0], values[-1] = 0, (1 << bits) - 1
    return values, bits


@SETTINGS
@given(c=packed_case())
def test_round_trip_matches_the_loop_twin_and_byte_count(c):
    values, bits = c
    data = pack_bits(values, bits)
    assert data.dtype == np.uint8 and data.size == packed_nbytes(values.size, bits)
    np.testing.assert_array_equal(data, pack_bits_naive(values, bits))
    back = unpack_bits(data, bits, values.size)
    assert back.dtype == uint_dtype(bits)
    np.testing.assert_array_equal(back.astype(np.uint64), values)
    assert unpack_bits(data.tobytes(), bits, values.size).tolist() == back.tolist()


def test_bit_order_is_msb_first_value_after_value():
    assert pack_bits(np.array([1, 2, 3]), 2).tolist() == [0b01101100]
    assert pack_bits(np.array([5]), 3).tolist() == [0b10100000]
    assert pack_bits(np.array([0xABC]), 12).tolist() == [0xAB, 0xC0]
    assert pack_bits(np.array([2**32 - 1]), 32).tolist() == [255] * 4


def test_multidimensional_values_are_flattened_in_c_order():
    v = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(unpack_bits(pack_bits(v, 4), 4, 12), v.reshape(-1))


@pytest.mark.parametrize("bits", [0, 33, -1])
def test_bits_out_of_range(bits):
    with pytest.raises(ValueError, match="bits"):
        pack_bits(np.array([0]), bits)


def test_bad_values():
    with pytest.raises(ValueError, match=r"values: .*\[0, 2\*\*3 - 1 = 7\].*max 8"):
        pack_bits(np.array([1, 8]), 3)
    with pytest.raises(ValueError, match="values"):
        pack_bits(np.array([-1]), 3)
    with pytest.raises(TypeError, match="values"):
        pack_bits(np.array([1.0]), 3)
    with pytest.raises(TypeError, match="values"):
        pack_bits([1, 2], 3)
    with pytest.raises(TypeError, match="bits"):
        pack_bits(np.array([1]), 2.0)


def test_unpack_rejects_short_data_and_bad_types():
    data = pack_bits(np.arange(8), 3)  # 3 bytes
    with pytest.raises(ValueError, match="data: expected at least 4 bytes"):
        unpack_bits(data, 4, 8)
    with pytest.raises(TypeError, match="data"):
        unpack_bits(data.astype(np.int16), 3, 8)
    with pytest.raises(ValueError, match="count"):
        unpack_bits(data, 3, -1)
