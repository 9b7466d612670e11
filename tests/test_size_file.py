"""The compressed model file (tinyprune.size.file): exact round trips, sizes that agree with the
stage accounting, and damaged / truncated / hostile files failing fast with CompressedFileError."""

import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.nn import Linear, ReLU, Sequential, lecture_net, lenet5
from tinyprune.size import model_storage_stages, storage_stages
from tinyprune.size.file import (
    MAGIC,
    MAX_ELEMENTS,
    CompressedFileError,
    load_compressed,
    read_header,
    save_compressed,
)


def _prune_and_share(model, rng, sparsity=0.9, k=32):
    """Prune every weight at random and snap its nonzeros to k shared values (in place)."""
    for w in model.params.values():
        if w.ndim >= 2:
            w[rng.random(w.shape) < sparsity] = 0
            book = np.linspace(w.min(), w.max(), k).astype(w.dtype)
            nz = w != 0
            w[nz] = book[np.abs(w[nz][:, None] - book).argmin(axis=1)]
    return model


def _assert_same_weights(a, b):
    assert list(a.params) == list(b.params)
    for name, p in a.params.items():
        q = b.params[name]
        assert q.dtype == p.dtype and q.shape == p.shape
        assert (p + p.dtype.type(0)).tobytes() == q.tobytes(), name  # -0.0 comes back as +0.0


@pytest.mark.parametrize("huffman", [True, False])
def test_lecture_net_round_trip_is_exact_and_small(tmp_path, huffman):
    model = _prune_and_share(lecture_net(seed=0), np.random.default_rng(0))
    path = tmp_path / "net.tpz"
    info = save_compressed(path, model, huffman=huffman, metadata={"accuracy": 0.9})
    assert info["file_bytes"] == path.stat().st_size
    dense = sum(p.nbytes for p in model.params.values())
    assert path.stat().st_size * 20 < dense
    back = load_compressed(path)
    _assert_same_weights(model, back)
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
    header = read_header(path)
    assert header["metadata"] == {"accuracy": 0.9}
    fc1 = info["tensors"]["fc1.weight"]
    assert fc1["encoding"] == "csr" and fc1["index_bits"] == 5 and fc1["values"] == "codebook"
    assert info["tensors"]["conv2.weight"]["index_bits"] == 8
    assert info["tensors"]["fc1.bias"]["encoding"] == "raw"


def test_file_sections_equal_the_stage_accounting(tmp_path):
    model = _prune_and_share(lecture_net(seed=0), np.random.default_rng(2))
    info = save_compressed(tmp_path / "m.tpz", model)
    for name in ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"):
        t = info["tensors"][name]
        stages = storage_stages(model.params[name], t["index_bits"])
        assert sum(n for _, n in t["sections"]) == stages["huffman"]["total_bytes"], name


def test_model_accounting_equals_the_file_payload(tmp_path):
    model = _prune_and_share(lecture_net(seed=0), np.random.default_rng(3))
    info = save_compressed(tmp_path / "m.tpz", model)
    r = model_storage_stages(model)
    assert set(r["layers"]) == {"conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"}
    assert r["total"]["huffman"]["total_bytes"] == info["file_bytes"] - info["header_bytes"]
    assert r["total"]["dense_bytes"] == sum(p.nbytes for p in model.params.values())
    assert r["total"]["ratio"]["huffman"] > r["total"]["ratio"]["shared"] > r["total"]["ratio"]["csr"]
    dense = lecture_net(seed=0)
    unshared = model_storage_stages(dense, index_bits=4)
    info = save_compressed(tmp_path / "d.tpz", dense, index_bits=4)
    assert unshared["total"]["huffman"]["total_bytes"] == info["file_bytes"] - info["header_bytes"]
    assert unshared["total"]["shared"] == unshared["total"]["csr"]  # not shared: no such stage
    assert unshared["layers"]["conv1.weight"]["index_bits"] == 4
    with pytest.raises(TypeError, match="model"):
        model_storage_stages({"w": np.zeros((2, 2))})


def test_dense_float64_model_and_index_bits_per_layer(tmp_path):
    model = lenet5(seed=0, dtype="float64")
    path = tmp_path / "d.tpz"
    info = save_compressed(path, model, index_bits={"conv1.weight": 2}, huffman=True)
    assert info["tensors"]["conv1.weight"]["index_bits"] == 2
    assert info["tensors"]["fc1.weight"]["values"] == "raw"  # not shared: raw values are smaller
    _assert_same_weights(model, load_compressed(path))
    save_compressed(path, model, index_bits=3, huffman=False)
    _assert_same_weights(model, load_compressed(path))


def _tiny(tmp_path, huffman=True):
    model = Sequential([("fc", Linear(12, 5)), ("relu", ReLU()), ("out", Linear(5, 3))])
    _prune_and_share(model, np.random.default_rng(0), sparsity=0.6, k=4)
    path = tmp_path / "tiny.tpz"
    save_compressed(path, model, huffman=huffman)
    return model, path


def test_every_truncation_fails_cleanly(tmp_path):
    for huffman in (True, False):
        model, path = _tiny(tmp_path, huffman)
        raw = path.read_bytes()
        _assert_same_weights(model, load_compressed(path))
        bad = tmp_path / "cut.tpz"
        for n in range(len(raw)):
            bad.write_bytes(raw[:n])
            with pytest.raises(CompressedFileError):
                load_compressed(bad)


@settings(max_examples=60, deadline=None)
@given(pos=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_any_flipped_byte_is_detected(tmp_path_factory, pos, flip):
    tmp = tmp_path_factory.mktemp("flip")
    _, path = _tiny(tmp)
    raw = bytearray(path.read_bytes())
    raw[pos % len(raw)] ^= flip
    path.write_bytes(bytes(raw))
    with pytest.raises(CompressedFileError):
        load_compressed(path)


def _rewrite(path, edit_header=None, payload=None, head_len=None, version=1):
    """Re-emit a file with an edited header/payload and a *valid* checksum (hostile, not damaged)."""
    raw = path.read_bytes()
    n = struct.unpack_from("<I", raw, 12)[0]
    header = json.loads(raw[20:20 + n])
    body_payload = raw[20 + n:] if payload is None else payload
    if edit_header:
        edit_header(header)
    head = json.dumps(header).encode()
    body = head + body_payload
    path.write_bytes(struct.pack("<8sIII", MAGIC, version, len(head) if head_len is None
                                 else head_len, zlib.crc32(body)) + body)


def _edit_tensor(i, **changes):
    def edit(h):
        h["tensors"][i].update(changes)
    return edit


@pytest.mark.parametrize("case, match", [
    (dict(edit_header=_edit_tensor(0, shape=[10**9, 10**9])), "shape|exceed"),
    (dict(edit_header=_edit_tensor(0, shape=[MAX_ELEMENTS + 1, 1])), "exceed"),
    (dict(edit_header=_edit_tensor(0, n_stored=10**6)), "stored|bytes"),
    (dict(edit_header=_edit_tensor(0, index_bits=40)), "index_bits"),
    (dict(edit_header=_edit_tensor(0, encoding="zip")), "encoding"),
    (dict(edit_header=_edit_tensor(0, name="zz.weight")), "architecture's parameters"),
    (dict(edit_header=_edit_tensor(0, shape=[6, 10])), "do not match the architecture"),
    (dict(edit_header=_edit_tensor(0, dtype="int8")), "dtype"),
    (dict(edit_header=_edit_tensor(0, rel_n_bits=10**9)), "rel_n_bits"),
    (dict(edit_header=_edit_tensor(0, sections=[["row_ptr", 1]])), "sections|bytes"),
    (dict(edit_header=lambda h: h["tensors"].pop()), "bytes|match"),
    (dict(edit_header=lambda h: h["model"]["layers"][0].update(in_features=10**6,
                                                               out_features=10**6)),
     "architecture"),
    (dict(edit_header=lambda h: h.update(format="other")), "format"),
    (dict(edit_header=lambda h: h.update(tensors="x")), "tensors"),
    (dict(payload=b""), "bytes"),
    (dict(head_len=2**31), "header"),
    (dict(version=2), "version"),
])
def test_hostile_files_with_valid_checksums_fail_fast(tmp_path, case, match):
    _, path = _tiny(tmp_path)
    _rewrite(path, **case)
    with pytest.raises(CompressedFileError, match=match):
        load_compressed(path)


def test_hostile_huffman_table_and_not_a_file(tmp_path):
    _, path = _tiny(tmp_path)
    raw = path.read_bytes()
    n = struct.unpack_from("<I", raw, 12)[0]
    header = json.loads(raw[20:20 + n])
    t = header["tensors"][0]
    offset = 20 + n + sum(size for name, size in t["sections"][:t["sections"].index(
        next(s for s in t["sections"] if s[0] == "rel_table"))])
    payload = bytearray(raw[20 + n:])
    payload[offset - 20 - n + 4] ^= 0xFF  # the first code lengths of the rel table
    _rewrite(path, payload=bytes(payload))
    with pytest.raises(CompressedFileError, match="Huffman|storage|sparse"):
        load_compressed(path)
    model, path = _tiny(tmp_path)
    raw = path.read_bytes()
    n = struct.unpack_from("<I", raw, 12)[0]
    header = json.loads(raw[20:20 + n])
    before = sum(size for t in header["tensors"][:1] for _, size in t["sections"])
    payload = bytearray(raw[20 + n:])
    payload[before:before + 4] = np.float32(np.nan).tobytes()  # the first bias value
    _rewrite(path, payload=bytes(payload))
    with pytest.raises(CompressedFileError, match="non-finite"):
        load_compressed(path)
    path.write_bytes(b"PK\x03\x04 not ours" * 3)
    with pytest.raises(CompressedFileError, match="magic"):
        load_compressed(path)
    with pytest.raises(FileNotFoundError):
        load_compressed(tmp_path / "missing.tpz")


def test_save_bad_inputs(tmp_path):
    model, path = _tiny(tmp_path)
    with pytest.raises(TypeError, match="model"):
        save_compressed(path, {"w": np.zeros(3)})
    with pytest.raises(ValueError, match="index_bits"):
        save_compressed(path, model, index_bits=0)
    with pytest.raises(ValueError, match="index_bits"):
        save_compressed(path, model, index_bits={"nope.weight": 4})
    with pytest.raises(TypeError, match="metadata"):
        save_compressed(path, model, metadata={"a": object()})
    model.params["fc.weight"][0, 0] = np.nan
    with pytest.raises(ValueError, match="fc.weight"):
        save_compressed(path, model)


@pytest.mark.parametrize("huffman", [True, False])
def test_all_zero_constant_and_empty_row_layers(tmp_path, huffman):
    model = Sequential([("a", Linear(40, 6)), ("r", ReLU()), ("b", Linear(6, 5)),
                        ("c", Linear(5, 3))])
    model.params["a.weight"][...] = 0  # all-zero layer: no stored entry
    model.params["b.weight"][...] = 0.25  # constant: one-symbol codebook and index streams
    model.params["c.weight"][1] = 0  # an empty row
    model.params["c.weight"][0, :4] = -0.0
    path = tmp_path / "edge.tpz"
    info = save_compressed(path, model, index_bits=1, huffman=huffman)
    assert info["tensors"]["a.weight"]["n_stored"] == 0
    _assert_same_weights(model, load_compressed(path))
