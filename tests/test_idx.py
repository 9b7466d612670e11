"""IDX reader/writer: round trips and every kind of corrupted file."""

import gzip
import os
import struct
import tempfile
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyprune.datasets.idx import IDXFormatError, read_idx, read_idx_header, write_idx

DTYPES = ["uint8", "int8", ">i2", "<i2", ">i4", "<i4", ">f4", "<f4", ">f8", "<f8"]


def _header(code: int, shape) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def _put(path, data: bytes, *, gz: bool = False):
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


@settings(max_examples=60, deadline=None)
@given(
    arr=st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=1, max_dims=4,
                                                             min_side=0, max_side=5))),
    compress=st.booleans(),
)
def test_round_trip(arr, compress):
    before = arr.copy()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "a.idx" + (".gz" if compress else ""))
        write_idx(path, arr)
        with open(path, "rb") as f:
            assert (f.read(2) == b"\x1f\x8b") == compress
        back = read_idx(path)
        header = read_idx_header(path)
    assert back.shape == arr.shape
    assert back.dtype == arr.dtype.newbyteorder("=")
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, arr)  # NaN == NaN here
    np.testing.assert_array_equal(arr, before)  # input untouched
    assert header.shape == arr.shape
    assert header.payload_size == arr.size * arr.dtype.itemsize


def test_compress_flag_overrides_suffix_and_output_is_reproducible(tmp_path):
    a = np.arange(100, dtype=np.uint8).reshape(10, 10)
    write_idx(tmp_path / "x.gz", a, compress=False)
    assert (tmp_path / "x.gz").read_bytes()[:4] == b"\x00\x00\x08\x02"
    write_idx(tmp_path / "y", a, compress=True)
    write_idx(tmp_path / "z", a, compress=True)
    assert (tmp_path / "y").read_bytes() == (tmp_path / "z").read_bytes()
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), a)
    assert read_idx(tmp_path / "y").flags.writeable
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_known_layout(tmp_path):
    a = np.array([[1, -2, 3], [4, 5, -6]], dtype=np.int16)
    write_idx(tmp_path / "a.idx", a)
    raw = (tmp_path / "a.idx").read_bytes()
    assert raw == _header(0x0B, (2, 3)) + a.astype(">i2").tobytes()


@pytest.mark.parametrize("bad, exc, match", [
    (np.zeros((), np.uint8), ValueError, "array: expected 1 to 255 dimensions"),
    (np.zeros(3, np.int64), TypeError, "array: expected dtype .* got int64"),
    (np.zeros(3, bool), TypeError, "got bool"),
    ([1, 2, 3], TypeError, "array: expected a numpy.ndarray, got list"),
])
def test_write_rejects(tmp_path, bad, exc, match):
    with pytest.raises(exc, match=match):
        write_idx(tmp_path / "a.idx", bad)
    assert list(tmp_path.iterdir()) == []


def test_path_type_is_checked():
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike, got int"):
        read_idx(3)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_idx("/nonexistent/tinyprune/file.idx")


@pytest.mark.parametrize("gz", [False, True])
def test_wrong_magic(tmp_path, gz):
    p = _put(tmp_path / "f", b"\x01\x02\x08\x01" + b"\x00" * 20, gz=gz)
    with pytest.raises(IDXFormatError, match=r"bad magic number 0x01020801") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_unknown_dtype_and_zero_dims(tmp_path):
    p = _put(tmp_path / "f", _header(0x0A, (3,)) + b"abc")
    with pytest.raises(IDXFormatError, match="unknown dtype code 0x0A"):
        read_idx(p)
    p = _put(tmp_path / "g", b"\x00\x00\x08\x00")
    with pytest.raises(IDXFormatError, match="0 dimensions"):
        read_idx(p)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_header(tmp_path, gz):
    p = _put(tmp_path / "f", b"\x00\x00", gz=gz)
    with pytest.raises(IDXFormatError, match="truncated header"):
        read_idx(p)
    p = _put(tmp_path / "g", b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05", gz=gz)
    with pytest.raises(IDXFormatError, match="truncated header, expected 12 bytes"):
        read_idx_header(p)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload(tmp_path, gz):
    p = _put(tmp_path / "f", _header(0x08, (10, 4)) + bytes(39), gz=gz)
    with pytest.raises(IDXFormatError, match="truncated payload.*40 bytes") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_header_larger_than_file(tmp_path):
    p = _put(tmp_path / "f", _header(0x0C, (1000, 1000)) + bytes(16))
    with pytest.raises(IDXFormatError, match=r"declares shape \(1000, 1000\) \(4000000 bytes\)"
                                             r" but only 16 bytes"):
        read_idx(p)


@pytest.mark.parametrize("gz", [False, True])
def test_extra_trailing_bytes(tmp_path, gz):
    p = _put(tmp_path / "f", _header(0x08, (4,)) + bytes(5), gz=gz)
    with pytest.raises(IDXFormatError, match="extra trailing bytes"):
        read_idx(p)


@pytest.mark.parametrize("gz", [False, True])
def test_header_claiming_1e12_items_fails_fast_without_allocating(tmp_path, gz):
    p = _put(tmp_path / "f", _header(0x08, (10**6, 10**6)) + bytes(1000), gz=gz)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(IDXFormatError, match=r"\(1000000000000 bytes\)"):
            read_idx(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # far below the 1 TB the header asks for
    assert time.perf_counter() - t0 < 5.0  # generous: it should take milliseconds


def test_gzip_claiming_more_than_it_holds_is_read_in_bounded_chunks(tmp_path):
    # 1 MB of random bytes may plausibly inflate to the declared 500 MB (deflate ratio bound),
    # so the reader must decompress, and stop when the stream ends: nothing of 500 MB is made.
    noise = np.random.default_rng(0).integers(0, 256, 1_000_000, dtype=np.uint8).tobytes()
    p = _put(tmp_path / "f", _header(0x08, (500_000_000,)) + noise, gz=True)
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match="stream ends after 1000000 bytes"):
            read_idx(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_bad_gzip_streams(tmp_path):
    good = gzip.compress(_header(0x08, (1000,)) + bytes(range(256)) * 4, mtime=0)
    bad = _put(tmp_path / "bad", b"\x1f\x8b" + b"garbage that is not deflate")
    with pytest.raises(IDXFormatError, match="corrupted or truncated gzip stream") as e:
        read_idx(bad)
    assert str(bad) in str(e.value)
    cut = _put(tmp_path / "cut", good[: len(good) // 2])
    with pytest.raises(IDXFormatError, match="gzip|truncated"):
        read_idx(cut)
    crc = bytearray(good)
    crc[-6] ^= 0xFF  # corrupt the CRC32 trailer
    crc_p = _put(tmp_path / "crc", bytes(crc))
    with pytest.raises(IDXFormatError, match="corrupted or truncated gzip stream"):
        read_idx(crc_p)
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx_header(bad)


def test_float_and_signed_values_survive(tmp_path):
    a = np.array([-np.inf, -1.5, 0.0, np.nan, 3.25e38], dtype=np.float32)
    write_idx(tmp_path / "f.gz", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.gz"), a)
    b = np.array([-128, -1, 0, 127], dtype=np.int8)
    write_idx(tmp_path / "b", b)
    assert read_idx(tmp_path / "b").dtype == np.int8
    np.testing.assert_array_equal(read_idx(tmp_path / "b"), b)
