"""Reader and writer for the IDX file format used by MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number, one big-endian 32-bit size per dimension, then the
payload in C order, big-endian::

    offset 0   0x00 0x00      two zero bytes
    offset 2   dtype code     0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                              0x0D float32, 0x0E float64
    offset 3   ndim           number of dimensions (>= 1 here)
    offset 4   ndim x uint32  the sizes, most significant byte first
    then       prod(sizes) * itemsize bytes of data

Files may be stored plain or gzip-compressed (recognised by the gzip magic ``1f 8b``, not by
the file name). The reader trusts nothing in the header: the declared payload size is compared
with the bytes that really exist before anything of that size is allocated, so a corrupted
header claiming 10^12 items fails at once instead of exhausting memory. See LeCun et al.,
"The MNIST database of handwritten digits" (the format description on the MNIST page).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from typing import NamedTuple

import numpy as np

from ..nn.fileio import atomic_write

__all__ = ["IDXFormatError", "IDXHeader", "is_gzip", "read_idx", "read_idx_header", "write_idx"]

#: IDX dtype code -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}

GZIP_MAGIC = b"\x1f\x8b"
#: Deflate cannot expand data by more than about 1032:1; a gzip file whose header declares more
#: than this many bytes per compressed byte cannot hold the data and is rejected unread.
MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20  # decompress 1 MiB at a time


class IDXFormatError(ValueError):
    """An IDX file is malformed: bad magic, unknown dtype, truncated, oversized or bad gzip."""


class IDXHeader(NamedTuple):
    """Parsed IDX header.

    Attributes
    ----------
    dtype : numpy.dtype
        Big-endian element type of the payload.
    shape : tuple of int
        Declared dimensions.
    header_size : int
        Size of the header in bytes (``4 + 4 * ndim``).
    payload_size : int
        Declared payload size in bytes (``prod(shape) * dtype.itemsize``).
    """

    dtype: np.dtype
    shape: tuple[int, ...]
    header_size: int
    payload_size: int


def _fspath(path, name: str = "path") -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def is_gzip(path) -> bool:
    """Return True if the file at ``path`` starts with the gzip magic bytes ``1f 8b``."""
    with open(_fspath(path), "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _parse_header(read, where: str) -> tuple[IDXHeader, bytes]:
    """Parse a header with ``read(n) -> bytes``; return it with the raw header bytes."""
    magic = read(4)
    if len(magic) < 4:
        raise IDXFormatError(f"{where}: truncated header, expected 4 magic bytes, got {len(magic)}")
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            f"{where}: bad magic number 0x{magic.hex()}, expected 0x0000TTNN "
            "(two zero bytes, a dtype code, the number of dimensions); not an IDX file?"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXFormatError(f"{where}: unknown dtype code 0x{code:02X}, expected one of {known}")
    if ndim == 0:
        raise IDXFormatError(f"{where}: header declares 0 dimensions, expected at least 1")
    dims_raw = read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise IDXFormatError(
            f"{where}: truncated header, expected {4 * ndim} bytes of sizes for {ndim} "
            f"dimensions, got {len(dims_raw)}"
        )
    shape = struct.unpack(f">{ndim}I", dims_raw)
    dtype = IDX_DTYPES[code]
    payload = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    return IDXHeader(dtype, tuple(shape), 4 + 4 * ndim, payload), magic + dims_raw


def read_idx_header(path) -> IDXHeader:
    """Read only the header of an IDX file (plain or gzipped); cheap, no payload is read.

    Raises
    ------
    IDXFormatError
        If the header is malformed or the gzip stream is broken.
    """
    p = _fspath(path)
    try:
        if is_gzip(p):
            with gzip.open(p, "rb") as f:
                return _parse_header(f.read, p)[0]
        with open(p, "rb") as f:
            return _parse_header(f.read, p)[0]
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise IDXFormatError(f"{p}: corrupted or truncated gzip stream ({e})") from e


def _read_plain(p: str, hasher) -> tuple[IDXHeader, bytearray]:
    with open(p, "rb") as f:
        header, raw = _parse_header(f.read, p)
        actual = os.fstat(f.fileno()).st_size - header.header_size
        if actual < header.payload_size:
            raise IDXFormatError(
                f"{p}: truncated payload, header declares shape {header.shape} "
                f"({header.payload_size} bytes) but only {actual} bytes follow the header"
            )
        if actual > header.payload_size:
            raise IDXFormatError(
                f"{p}: {actual - header.payload_size} extra trailing bytes after the declared "
                f"payload of shape {header.shape} ({header.payload_size} bytes)"
            )
        buf = bytearray(header.payload_size)  # size confirmed by the file size above
        n = f.readinto(buf)
        if n != header.payload_size:  # the file shrank while we read it
            raise IDXFormatError(f"{p}: expected {header.payload_size} payload bytes, read {n}")
    if hasher is not None:
        hasher.update(raw)
        hasher.update(buf)
    return header, buf


def _read_gzip(p: str, hasher) -> tuple[IDXHeader, bytearray]:
    compressed_size = os.path.getsize(p)
    with gzip.open(p, "rb") as f:
        header, raw = _parse_header(f.read, p)
        declared = header.header_size + header.payload_size
        if declared > MAX_DEFLATE_RATIO * compressed_size + 1024:
            raise IDXFormatError(
                f"{p}: header declares shape {header.shape} ({header.payload_size} bytes) but "
                f"a {compressed_size}-byte gzip file cannot decompress to that much; "
                "truncated or corrupted file"
            )
        buf = bytearray()  # grows only as real data arrives, in bounded chunks
        while len(buf) < header.payload_size:
            chunk = f.read(min(_CHUNK, header.payload_size - len(buf)))
            if not chunk:
                raise IDXFormatError(
                    f"{p}: truncated payload, header declares shape {header.shape} "
                    f"({header.payload_size} bytes) but the stream ends after {len(buf)} bytes"
                )
            buf += chunk
        extra = len(f.read(_CHUNK))
        if extra:
            raise IDXFormatError(
                f"{p}: extra trailing bytes after the declared payload of shape "
                f"{header.shape} ({header.payload_size} bytes); at least {extra} more"
            )
    if hasher is not None:
        hasher.update(raw)
        hasher.update(buf)
    return header, buf


def read_idx(path, *, hasher=None) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into a native-endian NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip compression is detected from the content, not the name.
    hasher : hashlib hash object, optional
        If given, ``hasher.update`` is fed every decoded byte (header and payload), so the
        caller gets e.g. the SHA-256 of the decompressed file without a second pass.

    Returns
    -------
    numpy.ndarray
        Array of the declared shape; dtype uint8, int8, int16, int32, float32 or float64 in
        native byte order; writable and shared with nothing else.

    Raises
    ------
    IDXFormatError
        Bad magic, unknown dtype code, zero dimensions, truncated header or payload, extra
        trailing bytes, a header declaring more data than the file can hold, or a broken gzip
        stream. The message names the file and what is wrong.
    FileNotFoundError
        If the file does not exist.
    """
    p = _fspath(path)
    try:
        if is_gzip(p):
            header, buf = _read_gzip(p, hasher)
        else:
            header, buf = _read_plain(p, hasher)
    except IDXFormatError:
        raise
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise IDXFormatError(f"{p}: corrupted or truncated gzip stream ({e})") from e
    arr = np.frombuffer(buf, dtype=header.dtype).reshape(header.shape)
    if header.dtype.itemsize > 1:
        return arr.astype(header.dtype.newbyteorder("="))  # copy to native order
    return arr.view(header.dtype.newbyteorder("="))


def write_idx(path, array, *, compress: bool | None = None, compresslevel: int = 6) -> None:
    """Write ``array`` to ``path`` in IDX format, atomically (temp file + rename).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    array : numpy.ndarray
        At least 1-D; dtype uint8, int8, int16, int32, float32 or float64 (any byte order);
        every dimension below 2**32. Not modified.
    compress : bool, optional
        Gzip the file. Default: True if the name ends with ``.gz``.
    compresslevel : int
        Gzip level 0-9. The gzip header carries no timestamp, so output is reproducible.

    Raises
    ------
    TypeError
        If ``array`` is not an ndarray or its dtype has no IDX code.
    ValueError
        If ``array`` is 0-D, has more than 255 dimensions or a dimension >= 2**32.
    """
    p = _fspath(path)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array: expected a numpy.ndarray, got {type(array).__name__}")
    code = _CODES.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(
            f"array: expected dtype uint8, int8, int16, int32, float32 or float64, "
            f"got {array.dtype}"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array: expected 1 to 255 dimensions, got shape {array.shape}")
    if max(array.shape) >= 2**32:
        raise ValueError(f"array: expected every dimension < 2**32, got shape {array.shape}")
    if compress is None:
        compress = p.endswith(".gz")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    with atomic_write(p) as raw:
        if compress:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel,
                               mtime=0, filename="") as gz:
                gz.write(header)
                gz.write(payload)
        else:
            raw.write(header)
            raw.write(payload)
