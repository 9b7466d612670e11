"""Tests for tinyprune.nn.checkpoint: exact round trips, atomic writes, clear errors."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

from tinyprune.nn.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from tinyprune.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from tinyprune.nn.model import Sequential


def _cnn(dtype=np.float32):
    m = Sequential([("conv1", Conv2d(1, 2, 3, rng=1)), ("relu1", ReLU()), ("pool1", MaxPool2d(2)),
                    ("flat", Flatten()), ("fc1", Linear(2 * 3 * 3, 4, rng=2))],
                   input_shape=(1, 8, 8), name="tiny_cnn")
    return m.set_dtype(dtype)


def _perturbed(dtype=np.float32):
    """A model whose weights differ from a fresh from_spec initialisation."""
    m = _cnn(dtype)
    rng = np.random.default_rng(0)
    for p in m.params.values():
        p += rng.standard_normal(p.shape).astype(dtype)
    return m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact(tmp_path, dtype):
    m = _perturbed(dtype)
    mask = np.random.default_rng(1).random(m.params["fc1.weight"].shape) < 0.3
    m.params["fc1.weight"][~mask] = 0.0
    extra = {"codebook/fc1": np.linspace(-1, 1, 16, dtype=np.float32),
             "idx": np.arange(5, dtype=np.uint8)}
    m.buffers["stats"] = np.array([1.5, 2.5])
    meta = {"accuracy": np.float32(0.875), "dataset": "fashion-mnist", "epochs": 3,
            "val_loss": float("nan")}
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, m, masks={"fc1.weight": mask}, extra=extra, metadata=meta)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]

    ck = load_checkpoint(path)
    assert isinstance(ck, Checkpoint)
    assert ck.model.spec() == m.spec()
    for k, v in m.params.items():
        got = ck.model.params[k]
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, v)
    assert set(ck.masks) == {"fc1.weight"} and ck.masks["fc1.weight"].dtype == np.bool_
    np.testing.assert_array_equal(ck.masks["fc1.weight"], mask)
    assert ck.model.masks is ck.masks
    assert set(ck.extra) == set(extra)
    for k, v in extra.items():
        assert ck.extra[k].dtype == v.dtype
        np.testing.assert_array_equal(ck.extra[k], v)
    np.testing.assert_array_equal(ck.model.buffers["stats"], [1.5, 2.5])
    assert ck.metadata["accuracy"] == pytest.approx(0.875)
    assert ck.metadata["dataset"] == "fashion-mnist" and ck.metadata["epochs"] == 3
    assert np.isnan(ck.metadata["val_loss"])
    x = np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(dtype)
    np.testing.assert_array_equal(ck.model.forward(x), m.forward(x))


def test_default_masks_come_from_the_model_and_loads_without_pickle(tmp_path):
    m = _perturbed()
    m.masks["conv1.weight"] = np.ones(m.params["conv1.weight"].shape, dtype=bool)
    path = tmp_path / "m.npz"
    save_checkpoint(path, m)
    with np.load(path, allow_pickle=False) as data:
        assert "mask/conv1.weight" in data.files and "param/fc1.bias" in data.files
        spec = json.loads(data["__spec__"].tobytes().decode())
    assert spec["version"] == FORMAT_VERSION and spec["model"] == m.spec()
    assert set(load_checkpoint(path).masks) == {"conv1.weight"}
    save_checkpoint(path, m, masks={})
    assert load_checkpoint(path).masks == {}


def test_overwrites_existing_file_atomically(tmp_path):
    path = tmp_path / "m.npz"
    save_checkpoint(path, _cnn(), metadata={"v": 1})
    save_checkpoint(str(path), _perturbed(), metadata={"v": 2})
    assert load_checkpoint(path).metadata == {"v": 2}
    assert os.listdir(tmp_path) == ["m.npz"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600


def test_failed_write_leaves_no_temp_file_and_keeps_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_checkpoint(path, _cnn(), metadata={"v": 1})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _perturbed(), metadata={"v": 2})
    assert os.listdir(tmp_path) == ["m.npz"]
    monkeypatch.undo()
    assert load_checkpoint(path).metadata == {"v": 1}
    with pytest.raises(FileNotFoundError):
        save_checkpoint(tmp_path / "missing_dir" / "m.npz", _cnn())
    assert os.listdir(tmp_path) == ["m.npz"]


def test_save_validation(tmp_path):
    m = _cnn()
    path = tmp_path / "m.npz"
    with pytest.raises(ValueError, match="fc9.weight"):
        save_checkpoint(path, m, masks={"fc9.weight": np.ones(3, dtype=bool)})
    with pytest.raises(TypeError, match="bool"):
        save_checkpoint(path, m, masks={"fc1.bias": np.ones(4)})
    with pytest.raises(ValueError, match="shape"):
        save_checkpoint(path, m, masks={"fc1.bias": np.ones(5, dtype=bool)})
    with pytest.raises(TypeError, match="object"):
        save_checkpoint(path, m, extra={"x": np.array([None, 1])})
    with pytest.raises(TypeError, match="metadata"):
        save_checkpoint(path, m, metadata={"f": object()})
    with pytest.raises(TypeError, match="model"):
        save_checkpoint(path, {"w": np.zeros(3)})
    assert os.listdir(tmp_path) == []


def _write_zip(path, members, compression=zipfile.ZIP_STORED):
    """Write an .npz by hand: members maps archive name -> array."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, arr in members.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            zf.writestr(name + ".npy", buf.getvalue())


def _members(model, **changes):
    spec = {"format": "tinyprune.checkpoint", "version": FORMAT_VERSION, "model": model.spec()}
    members = {
        "__spec__": np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8),
        "__meta__": np.frombuffer(b"{}", dtype=np.uint8),
        **{f"param/{k}": v for k, v in model.params.items()},
    }
    for k, v in changes.items():
        k = k.replace("__", "/") if not k.startswith("__") else k
        if v is None:
            members.pop(k)
        else:
            members[k] = v
    return members


def test_hand_written_archive_loads(tmp_path):
    path = tmp_path / "ok.npz"
    _write_zip(path, _members(_cnn()))
    assert load_checkpoint(path).model.num_parameters() == _cnn().num_parameters()


@pytest.mark.parametrize("change, words", [
    ({"param__fc1.weight": None}, "missing parameter 'fc1.weight'"),
    ({"param__fc1.weight": np.zeros((4, 17), np.float32)}, "'fc1.weight' has shape (4, 17)"),
    ({"param__fc1.bias": np.zeros(4, np.float64)}, "dtype float64"),
    ({"param__fc7.bias": np.zeros(4, np.float32)}, "unexpected parameter 'fc7.bias'"),
    ({"weights__fc1": np.zeros(4, np.float32)}, "unknown archive member 'weights/fc1'"),
    ({"stray": np.zeros(4, np.float32)}, "unknown archive member 'stray'"),
    ({"mask__fc1.bias": np.ones(4)}, "must be bool"),
    ({"mask__fc1.bias": np.ones(3, dtype=bool)}, "mask 'fc1.bias' has shape (3,)"),
    ({"mask__fc3.bias": np.ones(3, dtype=bool)}, "unknown parameter 'fc3.bias'"),
    ({"__spec__": None}, "missing '__spec__'"),
    ({"__meta__": np.frombuffer(b"{not json", dtype=np.uint8)}, "not valid JSON"),
    ({"__meta__": np.frombuffer(b"[1]", dtype=np.uint8)}, "JSON object"),
    ({"__spec__": np.arange(3.0)}, "1-D uint8"),
])
def test_inconsistent_archives_raise_checkpoint_error(tmp_path, change, words):
    path = tmp_path / "bad.npz"
    _write_zip(path, _members(_cnn(), **change))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg and words in msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("spec_change, words", [
    ({"version": FORMAT_VERSION + 1}, "format version"),
    ({"format": "something-else"}, "format must be"),
    ({"model": {"format": "nope"}}, "invalid model architecture"),
])
def test_bad_header_raises_checkpoint_error(tmp_path, spec_change, words):
    spec = {"format": "tinyprune.checkpoint", "version": FORMAT_VERSION, "model": _cnn().spec()}
    spec.update(spec_change)
    members = _members(_cnn(), __spec__=np.frombuffer(json.dumps(spec).encode(), np.uint8))
    path = tmp_path / "bad.npz"
    _write_zip(path, members)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(path)


def test_truncated_garbage_and_non_npz_files(tmp_path):
    good = tmp_path / "good.npz"
    save_checkpoint(good, _perturbed())
    data = good.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "truncated_tail.npz": data[:-30],
        "garbage.npz": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "empty.npz": b"",
        "text.npz": b"hello, I am not a checkpoint\n",
    }
    for name, content in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(p)
        assert name in str(info.value)
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(CheckpointError, match="single .npy array"):
        load_checkpoint(npy)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="pickled.npz.*refusing to unpickle"):
        load_checkpoint(pickled)


def test_corrupted_member_raises_checkpoint_error(tmp_path):
    good = tmp_path / "good.npz"
    save_checkpoint(good, _perturbed())
    data = bytearray(good.read_bytes())
    i = data.index(b"param/fc1.weight.npy")
    j = data.index(b"\x93NUMPY", i)  # header of that member's payload
    data[j + 200:j + 260] = b"\x00" * 60  # payload bytes: the CRC check fails on read
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt.npz"):
        load_checkpoint(bad)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.npz")


def test_compressed_archives_load_and_corruption_is_reported(tmp_path):
    m = _perturbed()
    path = tmp_path / "deflated.npz"
    _write_zip(path, _members(m), compression=zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(load_checkpoint(path).model.params["fc1.weight"],
                                  m.params["fc1.weight"])
    data = bytearray(path.read_bytes())
    i = data.index(b"param/fc1.weight.npy") + len(b"param/fc1.weight.npy")
    data[i + 20:i + 60] = bytes(range(40))  # inside the deflate stream
    bad = tmp_path / "bad_deflate.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="bad_deflate.npz"):
        load_checkpoint(bad)
