"""Loaders on small synthetic IDX files: lookup order, conversion, checks, split, status."""

import gzip
import hashlib
import json
import socket
from dataclasses import replace

import numpy as np
import pytest

from tinyprune.datasets import download as dl
from tinyprune.datasets import loaders
from tinyprune.datasets.idx import IDXFormatError, write_idx


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYPRUNE_DATA", raising=False)
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))
    for name, info in list(loaders.DATASETS.items()):
        monkeypatch.setitem(loaders.DATASETS, name, replace(info, mirrors=()))

    def no_network(*args, **kwargs):
        raise AssertionError("loader tests must not open connections")

    monkeypatch.setattr(socket, "create_connection", no_network)


def _write(folder, *, n_train=20, n_test=10, seed=0, gz=True, label_offset=0, name="mnist"):
    """Write a tiny MNIST-shaped dataset; return its FileRecords (decoded digests)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              ((np.arange(n_train) + label_offset) % 10).astype(np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              ((np.arange(n_test) + label_offset) % 10).astype(np.uint8)]
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for rec, arr in zip(loaders.DATASETS[name].files, arrays, strict=True):
        fname = rec.filename if gz else rec.plain_name
        write_idx(folder / fname, arr, compress=gz)
        raw = (folder / fname).read_bytes()
        decoded = gzip.decompress(raw) if gz else raw
        records.append(dl.FileRecord(rec.filename, len(decoded),
                                     decoded_sha256=hashlib.sha256(decoded).hexdigest()))
    return tuple(records)


def _register(monkeypatch, records, name="mnist"):
    monkeypatch.setitem(loaders.DATASETS, name, replace(loaders.DATASETS[name], files=records))


def test_conversion_shapes_dtypes_range(tmp_path, monkeypatch):
    _register(monkeypatch, _write(tmp_path / "d"))
    ds = loaders.load_mnist(tmp_path / "d")
    assert isinstance(ds, loaders.Dataset) and ds.name == "mnist"
    assert ds.source == str(tmp_path / "d")
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    np.testing.assert_array_equal(ds.y_train, np.arange(20) % 10)
    norm = loaders.load_mnist(tmp_path / "d", normalize=True)
    np.testing.assert_allclose(norm.x_train, (ds.x_train - 0.1307) / 0.3081, rtol=1e-5,
                               atol=1e-6)
    assert norm.x_train.dtype == np.float32


def test_plain_files_and_root_subfolder(tmp_path, monkeypatch):
    _register(monkeypatch, _write(tmp_path / "r" / "mnist", gz=False))
    ds = loaders.load_dataset("mnist", root=tmp_path / "r")
    assert ds.source == str(tmp_path / "r" / "mnist")


def test_lookup_order(tmp_path, monkeypatch):
    folders = {"root": tmp_path / "root", "env": tmp_path / "env" / "mnist",
               "cache": tmp_path / "cache" / "tinyprune" / "mnist",
               "system": tmp_path / "system" / "mnist"}
    for i, folder in enumerate(folders.values()):
        _write(folder, label_offset=i)
    monkeypatch.setenv("TINYPRUNE_DATA", str(tmp_path / "env"))
    kw = dict(verify=False)
    assert loaders.load_mnist(folders["root"], **kw).source == str(folders["root"])
    assert loaders.load_mnist(tmp_path / "nothing", **kw).source == str(folders["env"])
    assert loaders.load_mnist(**kw).y_train[0] == 1
    monkeypatch.delenv("TINYPRUNE_DATA")
    assert loaders.load_mnist(**kw).source == str(folders["cache"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    assert loaders.load_mnist(**kw).source == str(folders["system"])
    assert loaders.find_dataset("mnist") == folders["system"]
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", ())
    assert loaders.find_dataset("mnist") is None


def test_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert loaders.user_cache_dir() == tmp_path / "tinyprune"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored per the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert loaders.user_cache_dir() == tmp_path / "home" / ".cache" / "tinyprune"


def test_label_count_must_match_image_count(tmp_path):
    d = tmp_path / "d"
    _write(d)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with pytest.raises(ValueError, match=r"label count does not match image count: .*"
                                         r"train-labels.* holds 19 labels, .*train-images.* "
                                         r"holds 20 images"):
        loaders.load_mnist(d, verify=False)


def test_wrong_shapes_dtypes_and_label_values(tmp_path):
    d = tmp_path / "d"
    _write(d)
    write_idx(d / "t10k-images-idx3-ubyte.gz", np.zeros((10, 28, 27), np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images.*expected uint8 images of shape"):
        loaders.load_mnist(d, verify=False)
    _write(d)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.full(10, 10, np.uint8))
    with pytest.raises(ValueError, match=r"expected labels in \[0, 9\], got 10"):
        loaders.load_mnist(d, verify=False)


def test_truncated_file_in_a_dataset(tmp_path):
    d = tmp_path / "d"
    _write(d, gz=False)
    p = d / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(IDXFormatError, match="truncated payload"):
        loaders.load_mnist(d, verify=False)


def test_checksum_mismatch_raises_unless_verify_false(tmp_path, monkeypatch):
    records = _write(tmp_path / "d")
    _register(monkeypatch, records)
    _write(tmp_path / "d", seed=1)  # different content, same names
    with pytest.raises(dl.ChecksumMismatchError, match="checksum mismatch.*verify=False"):
        loaders.load_mnist(tmp_path / "d")
    assert loaders.load_mnist(tmp_path / "d", verify=False).x_train.shape == (20, 1, 28, 28)


def test_name_and_argument_checks():
    with pytest.raises(ValueError, match="name: expected one of .*'cifar10'"):
        loaders.load_dataset("cifar10")
    with pytest.raises(TypeError, match="name: expected a str, got int"):
        loaders.load_dataset(3)
    with pytest.raises(TypeError, match="root: expected a str or os.PathLike, got int"):
        loaders.load_mnist(5)


def test_dataset_status_reports_everything(tmp_path, monkeypatch):
    _register(monkeypatch, _write(tmp_path / "cache" / "tinyprune" / "mnist"))
    rows = loaders.dataset_status()
    json.dumps(rows)  # JSON-serialisable for the CLI
    statuses = {s["name"]: s for s in rows}
    assert list(statuses) == list(loaders.DATASET_NAMES)
    assert list(statuses) == ["mnist", "fashion-mnist", "fashion-mnist-small"]
    mn = statuses["mnist"]
    assert (mn["location"], mn["n_train"], mn["n_test"], mn["checksum"]) == (
        str(tmp_path / "cache" / "tinyprune" / "mnist"), 20, 10, "verified")
    assert set(mn["files"].values()) == {"verified"} and mn["found"] and mn["hint"] == ""
    fm = statuses["fashion-mnist"]
    assert not fm["found"] and fm["checksum"] == "missing" and fm["location"] is None
    assert "dataset-fashion-mnist" in fm["hint"] and "TINYPRUNE_DATA" in fm["hint"]
    small = statuses["fashion-mnist-small"]
    assert (small["location"], small["n_train"], small["n_test"], small["checksum"]) == (
        "embedded", 6000, 1000, "verified")
    text = loaders.format_dataset_status(rows)
    assert "fashion-mnist-small" in text and "missing" in text and "verified" in text
    assert loaders.dataset_status(verify=False)[0]["checksum"] == "unchecked"


def test_dataset_status_mismatch_and_unreadable(tmp_path, monkeypatch):
    folder = tmp_path / "system" / "mnist"
    _register(monkeypatch, _write(folder))
    _write(folder, seed=3)
    st = loaders.dataset_status()[0]
    assert st["checksum"] == "mismatch" and "delete them" in st["hint"]
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bbroken")
    st = loaders.dataset_status()[0]
    assert st["checksum"] == "mismatch" and st["n_train"] is None
    assert any(v.startswith("unreadable") for v in st["files"].values())


@pytest.mark.parametrize("stratify", [True, False])
def test_train_val_split(stratify):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), [40, 30, 20, 10])
    x = rng.normal(size=(100, 1, 2, 2)).astype(np.float32)
    x[:, 0, 0, 0] = np.arange(100)  # row ids
    x0, y0 = x.copy(), y.copy()
    xtr, ytr, xva, yva = loaders.train_val_split(x, y, 0.2, seed=7, stratify=stratify)
    assert len(yva) == 20 and len(ytr) == 80
    ids_tr, ids_va = xtr[:, 0, 0, 0].astype(int), xva[:, 0, 0, 0].astype(int)
    assert set(ids_tr).isdisjoint(ids_va) and len(set(ids_tr) | set(ids_va)) == 100
    assert np.all(np.diff(ids_tr) > 0) and np.all(np.diff(ids_va) > 0)  # original order
    np.testing.assert_array_equal(y[ids_va], yva)
    if stratify:
        np.testing.assert_array_equal(np.bincount(yva, minlength=4), [8, 6, 4, 2])
    again = loaders.train_val_split(x, y, 0.2, seed=7, stratify=stratify)
    np.testing.assert_array_equal(again[2], xva)
    other = loaders.train_val_split(x, y, 0.2, seed=8, stratify=stratify)
    assert not np.array_equal(other[3], yva) or not np.array_equal(other[2], xva)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_train_val_split_rounding_and_errors():
    y = np.array([0, 0, 0, 1, 1, 2, 2])
    x = np.arange(7.0)
    _, _, _, yva = loaders.train_val_split(x, y, 0.5, seed=0)
    assert len(yva) == 4  # round(3.5) -> 4 with largest-remainder per class
    np.testing.assert_array_equal(np.bincount(yva, minlength=3), [2, 1, 1])
    assert len(loaders.train_val_split(x, y, 0.01, seed=0)[3]) == 1  # at least one
    with pytest.raises(ValueError, match=r"val_fraction .*: expected a number < 1.0, got 1.0"):
        loaders.train_val_split(x, y, 1.0, seed=0)
    with pytest.raises(TypeError, match="seed: expected an integer"):
        loaders.train_val_split(x, y, 0.5, seed=None)
    with pytest.raises(ValueError, match="y: expected shape \\(7,\\)"):
        loaders.train_val_split(x, y[:6], 0.5, seed=0)
    with pytest.raises(TypeError, match="y: expected integer labels"):
        loaders.train_val_split(x, y.astype(float), 0.5, seed=0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        loaders.train_val_split(x[:1], y[:1], 0.5, seed=0)


def test_not_found_message_is_worded_for_python_and_for_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYPRUNE_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", ())
    with pytest.raises(loaders.DatasetNotFoundError) as info:
        loaders.load_dataset("mnist", root=tmp_path / "r")
    py, cli = str(info.value), info.value.cli_message
    assert "root='/that/folder'" in py and "download=True" in py and "--root" not in py
    assert "--root /that/folder" in cli and "--download" in cli
    assert "root=" not in cli and "download=True" not in cli
    assert "--dataset fashion-mnist-small" in cli


def test_dataset_status_hints_speak_the_callers_words(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYPRUNE_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", ())
    py = {r["name"]: r["hint"] for r in loaders.dataset_status(verify=False)}
    cli = {r["name"]: r["hint"] for r in loaders.dataset_status(verify=False, cli=True)}
    assert "download=True" in py["mnist"] and "--download" not in py["mnist"]
    assert "--download" in cli["mnist"] and "download=True" not in cli["mnist"]
