r"""A compressed model file: Deep Compression's three stages written to disk, read back exactly.

Layout of a ``.tpz`` file (all integers little-endian):

==========  ============================================================================
bytes 0-7   magic ``\x89TPZ\r\n\x1a\n`` (catches text-mode mangling, like PNG's)
8-11        format version, uint32 (this module writes and reads version 1)
12-15       header length ``h``, uint32, at most :data:`MAX_HEADER_BYTES`
16-19       CRC-32 (``zlib.crc32``) of everything after byte 19
20-(20+h)   header: UTF-8 JSON ``{"format", "version", "model": spec, "metadata",
            "tensors": [...]}``
then        the payload: every tensor's sections, in header order, back to back
==========  ============================================================================

Each entry of ``tensors`` names a parameter (``"fc1.weight"``), its ``shape`` and ``dtype`` and its
``encoding``:

* ``"raw"`` -- one section ``data``: the array's little-endian bytes (biases, 1-D parameters);
* ``"csr"`` -- :mod:`tinyprune.size.csr` with ``index_bits`` relative indices (default 8 for conv,
  5 for fc weights, the paper's choice), ``n_stored`` entries, and sections

  - ``row_ptr``: the ``rows + 1`` pointers, bit-packed at ``max(1, bit_length(n_stored))`` bits;
  - ``values`` (``"values": "raw"``): the stored values' bytes, *or* (``"values": "codebook"``,
    chosen when it is smaller: weight sharing was applied) ``codebook`` (``codebook_size`` values)
    and ``weight_idx``: the ``weight_bits``-bit index of every stored entry;
  - ``rel``: the relative indices;
  - with ``"huffman": true`` the index streams (``weight_idx``, ``rel``) are Huffman-coded
    (:mod:`tinyprune.size.huffman`): sections ``weight_table`` / ``rel_table`` hold the code
    tables and the header gives the bit counts ``weight_n_bits`` / ``rel_n_bits``; otherwise they
    are bit-packed.

Every section's byte count is listed in the header (``"sections": [[name, nbytes], ...]``) and
must equal what the counts imply; the file size must equal header + sections exactly. A damaged,
truncated or hostile file raises :class:`CompressedFileError` before anything large is allocated:
the CRC, every declared size against the file size, and the number of weights against
:data:`MAX_ELEMENTS` are checked first.

Exactness: the loaded weights equal the saved ones bit for bit, except that a ``-0.0`` in a CSR
tensor comes back as ``+0.0`` (a pruned weight is stored as "not stored"). Masks and buffers are not
stored (a compressed file is for inference); load them from the checkpoint when fine-tuning.
"""

from __future__ import annotations

import json
import numbers
import os
import struct
import zlib

import numpy as np

from tinyprune.common.bitpack import pack_bits, packed_nbytes, unpack_bits
from tinyprune.nn.fileio import atomic_write
from tinyprune.nn.model import Sequential

from .codebook import bits_for, codebook_encode
from .csr import RelativeCSR, check_index_bits, csr_decode, csr_encode
from .huffman import MAX_CODE_LENGTH, HuffmanCode, HuffmanEncoded, huffman_decode, huffman_encode

__all__ = ["FORMAT", "FORMAT_VERSION", "MAGIC", "MAX_ELEMENTS", "MAX_HEADER_BYTES", "SUFFIX",
           "CompressedFileError", "codebook_pays", "index_bits_for", "load_compressed",
           "read_header", "save_compressed"]

MAGIC = b"\x89TPZ\r\n\x1a\n"
FORMAT = "tinyprune.compressed"
FORMAT_VERSION = 1
SUFFIX = ".tpz"
MAX_HEADER_BYTES = 1 << 24  # 16 MiB of JSON
MAX_ELEMENTS = 1 << 25  # weights per file (128 MiB of float32): bounds every allocation
_PREFIX = struct.Struct("<8sIII")  # magic, version, header length, crc32
_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
_DEFAULT_INDEX_BITS = {2: 5, 4: 8}  # fc / conv, Han et al. 2016, Sec. 2


class CompressedFileError(ValueError):
    """A compressed model file is unreadable, damaged, truncated or inconsistent."""


# ------------------------------------------------------------------------------------- saving
def index_bits_for(name, w, index_bits) -> int:
    """Relative-index bits of parameter ``name``: ``index_bits`` (an int, or a dict by name),
    else the paper's default, 8 for a conv weight (4-D) and 5 for the others."""
    if index_bits is None:
        return _DEFAULT_INDEX_BITS.get(w.ndim, 5)
    if isinstance(index_bits, dict):
        if name in index_bits:
            return check_index_bits(index_bits[name], f"index_bits[{name!r}]")
        return _DEFAULT_INDEX_BITS.get(w.ndim, 5)
    return check_index_bits(index_bits)


def codebook_pays(stored, itemsize) -> bool:
    """Whether the stored values of a CSR weight are written as a codebook + indices: when they
    take at most ``2**16`` distinct values and ``k`` values of ``itemsize`` bytes plus
    ``bits_for(k)``-bit indices are smaller than the raw values (weight sharing was applied).
    The file writer and the stage accounting (:mod:`tinyprune.size.accounting`) both decide
    with this rule."""
    k = int(np.unique(stored).size)
    return bool(k and k <= 1 << 16 and (k * itemsize + packed_nbytes(stored.size, bits_for(k))
                                        < stored.size * itemsize))


def _stream(symbols, bits, huffman):
    """Sections (and bit count) of an index stream: Huffman (table, payload) or packed."""
    if huffman:
        enc = huffman_encode(symbols)
        return [enc.code.to_bytes(), enc.data.tobytes()], enc.n_bits
    return [pack_bits(symbols, bits).tobytes()], None


def _encode_tensor(name, w, index_bits, huffman):
    entry = {"name": name, "shape": list(w.shape), "dtype": str(w.dtype)}
    dtype = _DTYPES[str(w.dtype)]
    if w.ndim < 2:
        entry["encoding"] = "raw"
        data = [w.astype(dtype).tobytes()]
        entry["sections"] = [["data", len(data[0])]]
        return entry, data
    b = index_bits_for(name, w, index_bits)
    csr = csr_encode(w, b)
    entry.update(encoding="csr", index_bits=b, n_stored=csr.n_stored, huffman=bool(huffman))
    names = ["row_ptr"]
    data = [pack_bits(csr.row_ptr, csr.pointer_bits).tobytes()]
    stored = csr.values + csr.values.dtype.type(0)  # -0.0 -> +0.0
    raw_bytes = stored.astype(dtype).tobytes()
    if codebook_pays(stored, dtype.itemsize):
        book = codebook_encode(stored)
        entry.update(values="codebook", codebook_size=int(book.codebook.size),
                     weight_bits=book.bits)
        names.append("codebook")
        data.append(book.codebook.astype(dtype).tobytes())
        parts, n_bits = _stream(book.indices, book.bits, huffman)
        names += ["weight_table", "weight_idx"] if huffman else ["weight_idx"]
        data += parts
        if huffman:
            entry["weight_n_bits"] = n_bits
    else:
        entry["values"] = "raw"
        names.append("values")
        data.append(raw_bytes)
    parts, n_bits = _stream(csr.rel, b, huffman)
    names += ["rel_table", "rel"] if huffman else ["rel"]
    data += parts
    if huffman:
        entry["rel_n_bits"] = n_bits
    entry["sections"] = [[n, len(d)] for n, d in zip(names, data, strict=True)]
    return entry, data


def save_compressed(path, model, *, index_bits=None, huffman=True, metadata=None) -> dict:
    """Write ``model`` as a compressed file (see the module docstring for the format).

    Parameters
    ----------
    path : str or os.PathLike
        Target file, written atomically (``.tpz`` is conventional; no suffix is added).
    model : Sequential
        Typically pruned (zeros are not stored) and weight-shared (few distinct values), with
        no weight transforms: bake them first (:func:`tinyprune.nn.transforms.bake_transforms`).
    index_bits : int or dict[str, int], optional
        Bits per relative index (``1..16``) for every weight, or per parameter name; default 8
        for conv weights and 5 for the others (Deep Compression, Sec. 2).
    huffman : bool
        Huffman-code the index streams (Deep Compression's third stage).
    metadata : dict, optional
        JSON-serialisable values stored in the header.

    Raises
    ------
    ValueError
        The model has weight transforms (refused: the stored weights would not be the ones its
        layers compute with), non-finite parameters, or bad ``index_bits``.

    Returns
    -------
    dict
        ``file_bytes`` (size on disk), ``header_bytes`` and ``tensors``: per parameter, its
        encoding and section sizes (what the stage-by-stage report reads).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    if model.transforms:
        raise ValueError(f"model: weight transforms on {sorted(model.transforms)} (fake "
                         f"quantization or weight sharing): the file stores plain weights, which "
                         f"here differ from the ones the layers compute with; save "
                         f"tinyprune.nn.transforms.bake_transforms(model) instead")
    if index_bits is not None and not isinstance(index_bits, (dict, numbers.Integral)):
        raise TypeError(f"index_bits: expected an int, a dict or None, got {index_bits!r}")
    if isinstance(index_bits, dict):
        unknown = set(index_bits) - set(model.params)
        if unknown:
            raise ValueError(f"index_bits: {sorted(unknown)} are not parameters of the model")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(f"metadata: expected a dict with string keys, got {metadata!r}")
    tensors, blobs = [], []
    for name, w in model.params.items():
        if not np.isfinite(w).all():
            raise ValueError(f"model: parameter {name!r} has NaN or infinite values")
        entry, data = _encode_tensor(name, w, index_bits, huffman)
        tensors.append(entry)
        blobs += data
    header = {"format": FORMAT, "version": FORMAT_VERSION, "model": model.spec(),
              "metadata": metadata, "tensors": tensors}
    try:
        head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata: expected JSON-serialisable values: {exc}") from None
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError(f"header: {len(head)} bytes exceed the format's {MAX_HEADER_BYTES}")
    body = head + b"".join(blobs)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head), zlib.crc32(body))
    with atomic_write(path) as f:
        f.write(prefix)
        f.write(body)
    return {"file_bytes": _PREFIX.size + len(body), "header_bytes": _PREFIX.size + len(head),
            "tensors": {t["name"]: {k: v for k, v in t.items() if k != "name"} for t in tensors}}


# ------------------------------------------------------------------------------------ loading
def _fail(path, msg):
    raise CompressedFileError(f"{path}: {msg}")


def _read(path):
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < _PREFIX.size:
        _fail(path, f"{len(raw)} bytes: too short for a compressed model file (truncated?)")
    magic, version, head_len, crc = _PREFIX.unpack_from(raw)
    if magic != MAGIC:
        _fail(path, "not a tinyprune compressed model file (bad magic number)")
    if version != FORMAT_VERSION:
        _fail(path, f"format version {version} is not supported (this tinyprune reads version "
                    f"{FORMAT_VERSION})")
    if head_len > MAX_HEADER_BYTES or _PREFIX.size + head_len > len(raw):
        _fail(path, f"header of {head_len} bytes does not fit the {len(raw)}-byte file "
                    f"(truncated?)")
    if zlib.crc32(memoryview(raw)[_PREFIX.size:]) != crc:
        _fail(path, "checksum mismatch: the file is damaged or truncated")
    try:
        header = json.loads(raw[_PREFIX.size:_PREFIX.size + head_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(path, f"header is not valid JSON: {exc}")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        _fail(path, f"header format must be {FORMAT!r}")
    return path, raw, header, _PREFIX.size + head_len


def read_header(path) -> dict:
    """The validated JSON header of a compressed file (model spec, metadata, tensor entries)."""
    return _read(path)[2]


def _is_int(v, minimum=0):
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _spec_bound(spec):
    """Upper bound of a layer's parameter count: the product of its positive integer fields."""
    total = 0
    for layer in spec.get("layers", []) if isinstance(spec, dict) else []:
        prod = 1
        for v in (layer.values() if isinstance(layer, dict) else []):
            for x in (v if isinstance(v, list) else [v]):
                if _is_int(x, 1):
                    prod *= x
        total += prod
    return total


def _check_entry(path, t, seen):
    if not isinstance(t, dict) or not isinstance(t.get("name"), str) or t["name"] in seen:
        _fail(path, f"bad or duplicate tensor entry {t!r:.200}")
    name = t["name"]
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(_is_int(s) for s in shape) or not shape:
        _fail(path, f"tensor {name!r}: shape must be a non-empty list of ints >= 0")
    if t.get("dtype") not in _DTYPES:
        _fail(path, f"tensor {name!r}: dtype must be float32 or float64, got {t.get('dtype')!r}")
    secs = t.get("sections")
    if (not isinstance(secs, list) or not all(isinstance(s, list) and len(s) == 2
                                              and isinstance(s[0], str) and _is_int(s[1])
                                              for s in secs)):
        _fail(path, f"tensor {name!r}: sections must be [name, nbytes] pairs")
    return name, tuple(shape), _DTYPES[t["dtype"]], dict(secs), [s[0] for s in secs]


def _expect(path, name, sections, order, expected):
    if order != [n for n, _ in expected]:
        _fail(path, f"tensor {name!r}: sections {order}, expected {[n for n, _ in expected]}")
    for sec, size in expected:
        if size is not None and sections[sec] != size:
            _fail(path, f"tensor {name!r}: section {sec!r} has {sections[sec]} bytes, the "
                        f"counts imply {size}")


def _huffman_stream(path, name, table, payload, n_symbols, n_bits, alphabet):
    try:
        code = HuffmanCode.from_bytes(table)
    except ValueError as exc:
        _fail(path, f"tensor {name!r}: bad Huffman table: {exc}")
    if code.alphabet_size > alphabet:
        _fail(path, f"tensor {name!r}: Huffman alphabet of {code.alphabet_size} symbols, at "
                    f"most {alphabet} allowed")
    enc = HuffmanEncoded(code, np.frombuffer(payload, dtype=np.uint8), n_symbols, n_bits)
    try:
        return huffman_decode(enc)
    except ValueError as exc:
        _fail(path, f"tensor {name!r}: bad Huffman stream: {exc}")


def _decode_csr(path, t, name, shape, dtype, sections, order, data):
    b, n = t.get("index_bits"), t.get("n_stored")
    huff = t.get("huffman")
    if not (_is_int(b, 1) and b <= 16 and _is_int(n) and isinstance(huff, bool)):
        _fail(path, f"tensor {name!r}: bad index_bits / n_stored / huffman fields")
    rows, cols = shape[0], int(np.prod(shape[1:]))
    if n > rows * cols:
        _fail(path, f"tensor {name!r}: {n} stored entries for {rows * cols} weights")
    ptr_bits = max(1, n.bit_length())
    expected = [("row_ptr", packed_nbytes(rows + 1, ptr_bits))]
    book = t.get("values") == "codebook"
    if book:
        k, wb = t.get("codebook_size"), t.get("weight_bits")
        if not (_is_int(k, 1) and _is_int(wb, 1) and wb <= 16 and k <= 1 << wb):
            _fail(path, f"tensor {name!r}: bad codebook_size / weight_bits")
        expected.append(("codebook", k * dtype.itemsize))
        expected += ([("weight_table", None), ("weight_idx", None)] if huff
                     else [("weight_idx", packed_nbytes(n, wb))])
    elif t.get("values") == "raw":
        expected.append(("values", n * dtype.itemsize))
    else:
        _fail(path, f"tensor {name!r}: values must be 'raw' or 'codebook'")
    expected += [("rel_table", None), ("rel", None)] if huff else [("rel", packed_nbytes(n, b))]
    _expect(path, name, sections, order, expected)
    for key in (["weight_n_bits"] if huff and book else []) + (["rel_n_bits"] if huff else []):
        nb = t.get(key)
        stream = "weight_idx" if key == "weight_n_bits" else "rel"
        if not (_is_int(nb) and nb <= n * MAX_CODE_LENGTH
                and sections[stream] == packed_nbytes(nb, 1)):
            _fail(path, f"tensor {name!r}: {key} does not match section {stream!r}")
    row_ptr = unpack_bits(data["row_ptr"], ptr_bits, rows + 1).astype(np.int64)
    if book:
        codebook = np.frombuffer(data["codebook"], dtype=dtype).astype(dtype.newbyteorder("="))
        if huff:
            idx = _huffman_stream(path, name, data["weight_table"], data["weight_idx"], n,
                                  t["weight_n_bits"], k)
        else:
            idx = unpack_bits(data["weight_idx"], wb, n).astype(np.intp)
        if idx.size and int(idx.max()) >= k:
            _fail(path, f"tensor {name!r}: codebook index beyond its {k} entries")
        values = codebook[idx]
    else:
        values = np.frombuffer(data["values"], dtype=dtype).astype(dtype.newbyteorder("="))
    if huff:
        rel = _huffman_stream(path, name, data["rel_table"], data["rel"], n, t["rel_n_bits"],
                              1 << b)
    else:
        rel = unpack_bits(data["rel"], b, n)
    if not np.isfinite(values).all():
        _fail(path, f"tensor {name!r}: non-finite stored values")
    try:
        return csr_decode(RelativeCSR(values, rel.astype(np.uint16), row_ptr, shape, b))
    except ValueError as exc:
        _fail(path, f"tensor {name!r}: inconsistent sparse storage: {exc}")


def load_compressed(path) -> Sequential:
    """Read a file written by :func:`save_compressed`: the model with its weights, exactly.

    Raises
    ------
    FileNotFoundError
        No such file.
    CompressedFileError
        Bad magic number, unsupported version, checksum mismatch (damaged or truncated), bad
        JSON, a declared size that does not match the file or the counts, more than
        :data:`MAX_ELEMENTS` weights, an architecture that does not match the tensors, or
        inconsistent sparse / Huffman streams.
    """
    path, raw, header, offset = _read(path)
    if header.get("version") != FORMAT_VERSION:
        _fail(path, f"header version {header.get('version')!r} is not {FORMAT_VERSION}")
    tensors = header.get("tensors")
    if not isinstance(tensors, list):
        _fail(path, "header 'tensors' must be a list")
    entries, seen, total, elements = [], set(), 0, 0
    for t in tensors:
        name, shape, dtype, sections, order = _check_entry(path, t, seen)
        seen.add(name)
        elements += int(np.prod(shape, dtype=object))
        total += sum(sections.values())
        entries.append((t, name, shape, dtype, sections, order))
    if elements > MAX_ELEMENTS:
        _fail(path, f"{elements} weights exceed the format's limit of {MAX_ELEMENTS}")
    if offset + total != len(raw):
        _fail(path, f"the sections add up to {total} bytes, the file holds {len(raw) - offset} "
                    f"after the header (truncated or padded?)")
    if _spec_bound(header.get("model")) > MAX_ELEMENTS:
        _fail(path, f"the architecture declares more than {MAX_ELEMENTS} parameters")
    try:
        model = Sequential.from_spec(header.get("model"))
    except (ValueError, TypeError, KeyError) as exc:
        _fail(path, f"invalid model architecture: {exc}")
    params = model.params
    if set(params) != seen:
        _fail(path, f"tensors {sorted(seen)} do not match the architecture's parameters "
                    f"{sorted(params)}")
    for t, name, shape, dtype, sections, order in entries:
        data = {}
        for sec in order:
            data[sec] = raw[offset:offset + sections[sec]]
            offset += sections[sec]
        if params[name].shape != shape or params[name].dtype != dtype.newbyteorder("="):
            _fail(path, f"tensor {name!r}: shape {shape} / dtype {dtype} do not match the "
                        f"architecture's {params[name].shape} / {params[name].dtype}")
        if t.get("encoding") == "raw":
            _expect(path, name, sections, order, [("data", int(np.prod(shape)) * dtype.itemsize)])
            value = np.frombuffer(data["data"], dtype=dtype).reshape(shape)
            if not np.isfinite(value).all():
                _fail(path, f"tensor {name!r}: non-finite values")
        elif t.get("encoding") == "csr" and len(shape) >= 2:
            value = _decode_csr(path, t, name, shape, dtype, sections, order, data)
        else:
            _fail(path, f"tensor {name!r}: unknown encoding {t.get('encoding')!r}")
        model.set_param(name, value.astype(params[name].dtype))
    return model
