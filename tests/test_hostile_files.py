"""Hostile files: every malformed, mutated or malicious checkpoint fails with CheckpointError
(and every mutated IDX file with IDXFormatError), fast and without allocating what it declares.

Each test runs its cases in a child Python process whose address space is capped with
``resource.setrlimit(RLIMIT_AS)`` (:data:`MEMORY_CAP`), so an allocation of a declared size (a
22 GiB Linear layer, a 4 TiB ``.npy`` header) cannot pass unseen: it would raise MemoryError in the
child, which is not a CheckpointError, and the test fails.
"""

import functools
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyprune.nn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinyprune.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from tinyprune.nn.model import Sequential

resource = pytest.importorskip("resource")  # POSIX only

MEMORY_CAP = 768 * 2**20  # bytes of address space for the child (Python + NumPy need ~130 MiB)
N_FUZZ = 80  # hypothesis examples per fuzzer
HERE = Path(__file__).resolve().parent

# ------------------------------------------------------------------------------ helpers


def _model():
    m = Sequential([("conv1", Conv2d(1, 2, 3, rng=1)), ("relu1", ReLU()), ("pool1", MaxPool2d(2)),
                    ("flat", Flatten()), ("fc1", Linear(2 * 3 * 3, 4, rng=2))],
                   input_shape=(1, 8, 8), name="tiny_cnn")
    m.masks["fc1.weight"] = np.random.default_rng(0).random((4, 18)) < 0.5
    return m


@functools.lru_cache(maxsize=1)
def _valid_bytes() -> bytes:
    path = _tmp() / "valid.npz"
    save_checkpoint(path, _model(), extra={"codebook": np.linspace(-1, 1, 4)},
                    metadata={"dataset": "x", "nm": {"n_pruned": 2, "m": 4}})
    return path.read_bytes()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _npy_with_header(shape, descr="<f4", payload=b"\0" * 64) -> bytes:
    """A .npy member whose header declares ``shape`` whatever the payload holds."""
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def _with_spec(text: str) -> bytes:
    members = _members(_valid_bytes())
    members["__spec__.npy"] = _npy(np.frombuffer(text.encode(), dtype=np.uint8))
    return _zip(members)


def _spec_dict() -> dict:
    return json.loads(np.lib.format.read_array(io.BytesIO(
        _members(_valid_bytes())["__spec__.npy"])).tobytes())


def _load_bytes(data: bytes, tmp: Path, name="c.npz"):
    """Load ``data`` as a checkpoint file; only success or CheckpointError are acceptable."""
    path = tmp / name
    path.write_bytes(data)
    try:
        load_checkpoint(path)
    except CheckpointError as exc:
        assert str(path) in str(exc)  # the message names the file
        return exc
    return None


def _tmp() -> Path:
    import tempfile
    return Path(tempfile.mkdtemp(prefix="tp-hostile-"))


# ------------------------------------------------------------------------------ cases (child)
def hostile_cases():
    """Hand-made hostile files from the issue; each must raise CheckpointError."""
    tmp = _tmp()
    spec = _spec_dict()
    cases = {}

    big = json.loads(json.dumps(spec))
    big["model"]["layers"][-1]["out_features"] = 3_000_000_000  # 22 GiB of float64... or more
    cases["linear_3e9_outputs"] = _with_spec(json.dumps(big))
    big2 = json.loads(json.dumps(spec))
    big2["model"]["layers"][-1]["out_features"] = 200_000_000  # under MAX_SPEC_INT, still 14 GB
    cases["linear_2e8_outputs"] = _with_spec(json.dumps(big2))
    big3 = json.loads(json.dumps(spec))
    big3["model"]["layers"].append({"name": "fc9", "type": "Linear", "in_features": 4,
                                    "out_features": 1_000_000_000, "bias": True})
    cases["extra_big_layer_without_params"] = _with_spec(json.dumps(big3))
    inf = json.loads(json.dumps(spec))
    inf["model"]["input_shape"] = [float("inf")]
    cases["input_shape_infinity"] = _with_spec(json.dumps(inf))  # writes Infinity
    cases["input_shape_1e400"] = _with_spec(json.dumps(spec).replace('"input_shape": [1, 8, 8]',
                                                                     '"input_shape": [1e400]'))
    cases["nan_kernel"] = _with_spec(json.dumps(spec).replace('"kernel_size": [3, 3]',
                                                              '"kernel_size": [NaN, 3]'))
    cases["deep_nesting"] = _with_spec('{"format": ' + "[" * 100_000 + "]" * 100_000 + "}")
    cases["deep_unbalanced"] = _with_spec("[" * 1_000_000)
    cases["huge_int"] = _with_spec(json.dumps(spec).replace('"in_channels": 1',
                                                            '"in_channels": 1' + "0" * 5000))
    huge_input = json.loads(json.dumps(spec))
    huge_input["model"]["input_shape"] = [1, 2**20, 2**20]
    cases["huge_input_shape"] = _with_spec(json.dumps(huge_input))
    cases["bad_dtype"] = _with_spec(json.dumps(spec).replace('"float32"', '{"names": ["a"]}'))
    members = _members(_valid_bytes())
    for shape in ([2**40], [2**20, 2**20, 8], [2**62, 4], [-1, 4], [0, 2**62]):
        m = dict(members)
        m["param/fc1.weight.npy"] = _npy_with_header(shape)
        cases[f"npy_header_shape_{shape}"] = _zip(m)
        cases[f"npy_header_shape_{shape}_deflated"] = _zip(m, zipfile.ZIP_DEFLATED)
    m = dict(members)
    m["param/fc1.weight.npy"] = _npy_with_header([4, 18], descr="|O")
    cases["object_dtype_header"] = _zip(m)
    m = dict(members)
    m["param/fc1.weight.npy"] = _npy_with_header([4, 18], descr="<V1073741824")
    cases["gigantic_void_dtype"] = _zip(m)
    m = dict(members)
    m["param/fc1.weight.npy"] = b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 65535
    cases["huge_header_length"] = _zip(m)
    m = dict(members)
    m["param/fc1.weight.npy"] = _npy(np.zeros(300_000, np.float32))  # real data, wrong shape
    cases["zip_bomb_like_deflated_member"] = _zip(m, zipfile.ZIP_DEFLATED)
    cases["single_npy_with_huge_header"] = _npy_with_header([2**40])
    m = dict(members)
    m["notes.txt"] = b"hello"
    cases["non_npy_member"] = _zip(m)
    failures = []
    for name, data in cases.items():
        try:
            exc = _load_bytes(data, tmp, f"{name[:40]}.npz")
        except BaseException as e:  # noqa: BLE001 (report every non-CheckpointError)
            failures.append(f"{name}: {type(e).__name__}: {str(e)[:200]}")
            continue
        if exc is None and name != "zip_bomb_like_deflated_member":
            failures.append(f"{name}: loaded without error")
    assert not failures, failures
    print(f"OK {len(cases)} hostile cases")


_MUTATION = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1,
                     max_size=8)


@settings(max_examples=N_FUZZ, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(mutations=_MUTATION, cut=st.one_of(st.none(), st.integers(0, 2**31)),
       deflate=st.booleans())
def fuzz_archive_bytes(mutations, cut, deflate):
    """Random byte overwrites and truncations of a valid (stored or deflated) checkpoint."""
    data = _valid_bytes()
    if deflate:
        data = _zip(_members(data), zipfile.ZIP_DEFLATED)
    buf = bytearray(data)
    for pos, value in mutations:
        buf[pos % len(buf)] = value
    if cut is not None:
        buf = buf[: cut % (len(buf) + 1)]
    _load_bytes(bytes(buf), _TMP)


_SHAPE = st.lists(st.one_of(st.integers(-2, 40), st.integers(2**20, 2**63)), max_size=4)


@settings(max_examples=N_FUZZ, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(member=st.integers(0, 100), shape=_SHAPE,
       descr=st.sampled_from(["<f4", "<f8", "|b1", "|u1", "<i8", "|O", "<V1000000", "<U999999",
                              "garbage", "[('a', '<f4')]"]),
       header_flips=st.lists(st.tuples(st.integers(0, 127), st.integers(0, 255)), max_size=3),
       deflate=st.booleans())
def fuzz_npy_headers(member, shape, descr, header_flips, deflate):
    """A valid archive (correct CRCs) in which one member's .npy header is rewritten."""
    members = _members(_valid_bytes())
    name = sorted(members)[member % len(members)]
    raw = members[name]
    payload = raw[raw.index(b"\n", 10) + 1:]
    new = bytearray(_npy_with_header(shape, descr if not descr.startswith("[") else
                                     [("a", "<f4")], payload))
    for pos, value in header_flips:
        new[pos % min(len(new), 128)] = value
    members[name] = bytes(new)
    _load_bytes(_zip(members, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED), _TMP)


_HOSTILE_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
              st.sampled_from([0, -1, 2**31, 3_000_000_000, 2**40, 2**63]),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
              st.sampled_from(["Linear", "Conv2d", "MaxPool2d", "Dropout", "float64", "int8"])),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "name", "in_features", "out_features", "kernel_size", "p"]),
        children, max_size=3),
    max_leaves=6)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=N_FUZZ, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def fuzz_spec_json(data):
    """The spec JSON with values replaced by hostile ones, or its text edited."""
    spec = _spec_dict()
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(spec) if p]
        path = data.draw(st.sampled_from(paths))
        target = spec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = data.draw(_HOSTILE_VALUE)
    if data.draw(st.booleans()):  # aim at the sizes: the fields that decide allocations
        layers = spec["model"].get("layers") if isinstance(spec.get("model"), dict) else None
        if isinstance(layers, list) and layers and isinstance(layers[-1], dict):
            layer = layers[data.draw(st.integers(0, len(layers) - 1))]
            if isinstance(layer, dict):
                field = data.draw(st.sampled_from(["in_features", "out_features", "in_channels",
                                                   "out_channels", "kernel_size", "stride"]))
                layer[field] = data.draw(st.sampled_from(
                    [3_000_000_000, 2**30, 10**6, [10**5, 10**5], 2**31 - 1, 0, -3]))
    text = json.dumps(spec)  # NaN / Infinity appear as such
    if data.draw(st.booleans()):
        pos = data.draw(st.integers(0, len(text)))
        insert = data.draw(st.sampled_from(["[" * 5000, "{", "]", "Infinity", "-Infinity",
                                            "NaN", "1e999", "9" * 5000, '"', "\\", "\x00"]))
        text = text[:pos] + insert + text[pos:]
    _load_bytes(_with_spec(text), _TMP)


@settings(max_examples=N_FUZZ, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(mutations=_MUTATION, cut=st.one_of(st.none(), st.integers(0, 2**31)),
       gz=st.booleans(), header=st.booleans())
def fuzz_idx_bytes(mutations, cut, gz, header):
    """Random byte overwrites (anywhere, or in the header: dims of up to 2**32 - 1) and
    truncations of a valid IDX file, plain or gzipped: read_idx raises only IDXFormatError."""
    from tinyprune.datasets.idx import IDXFormatError, read_idx, write_idx

    path = _TMP / ("x.idx.gz" if gz else "x.idx")
    write_idx(path, np.arange(60, dtype=np.uint8).reshape(3, 4, 5), compress=gz)
    buf = bytearray(path.read_bytes())
    if gz:  # mutate the decompressed content, then recompress (valid CRC)
        import gzip
        raw = bytearray(gzip.decompress(bytes(buf)))
        for pos, value in mutations:
            raw[(pos % 16) if header else (pos % len(raw))] = value
        buf = bytearray(gzip.compress(bytes(raw)))
    else:
        for pos, value in mutations:
            buf[(pos % 16) if header else (pos % len(buf))] = value
    if cut is not None:
        buf = buf[: cut % (len(buf) + 1)]
    path.write_bytes(bytes(buf))
    try:
        read_idx(path)
    except IDXFormatError as exc:
        assert str(path) in str(exc)


_TMP = _tmp() if __name__ == "__main__" else None


# ------------------------------------------------------------------------------ the tests
def _run_capped(call: str):
    """Run ``<call>`` of this module in a child with RLIMIT_AS = MEMORY_CAP."""
    code = ("import resource, sys; "
            f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_CAP}, {MEMORY_CAP})); "
            "sys.argv = ['x']; import runpy; "
            f"mod = runpy.run_path({str(Path(__file__))!r}, run_name='__main__'); "
            f"mod[{call!r}](); print('DONE')")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=600)
    assert res.returncode == 0 and "DONE" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def test_memory_cap_really_catches_an_allocation():
    """The harness itself: an allocation of the kind the hostile files declare fails in the
    child (so a loader that made it could not pass unseen)."""
    code = ("import resource; "
            f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_CAP}, {MEMORY_CAP})); "
            "import numpy as np\ntry:\n    np.ones(2**30)\nexcept MemoryError:\n    print('capped')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, OPENBLAS_NUM_THREADS="1"), timeout=120)
    assert "capped" in res.stdout, res.stderr


def test_hostile_cases_raise_checkpoint_error_without_allocating():
    assert "OK" in _run_capped("hostile_cases")


@pytest.mark.parametrize("fuzzer", ["fuzz_archive_bytes", "fuzz_npy_headers", "fuzz_spec_json",
                                    "fuzz_idx_bytes"])
def test_mutated_files_only_raise_their_format_error(fuzzer):
    _run_capped(fuzzer)


def test_valid_bytes_load(tmp_path):
    assert _load_bytes(_valid_bytes(), tmp_path) is None
