"""The shipped Fashion-MNIST subset: checksum, balance, licence, reproducibility."""

import importlib.util
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from tinyprune.datasets import embedded, loaders

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tinyprune" / "datasets" / "data"
SYSTEM = Path("/usr/share/datasets/fashion-mnist")


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_embedded_subset", REPO / "scripts" / "make_embedded_subset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_file_matches_recorded_checksum():
    npz = DATA / "fashion-mnist-small.npz"
    assert npz.stat().st_size <= 4 * 2**20
    with np.load(npz, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    assert sorted(arrays) == ["x_test", "x_train", "y_test", "y_train"]
    record = json.loads((DATA / "fashion-mnist-small.json").read_text())
    assert embedded.arrays_sha256(arrays) == record["arrays_sha256"]
    for name, meta in record["arrays"].items():
        assert arrays[name].dtype == np.uint8 and list(arrays[name].shape) == meta["shape"]
    assert arrays["x_train"].shape == (6000, 28, 28) and arrays["x_test"].shape == (1000, 28, 28)
    assert record["counts"]["train"] == 6000 and record["counts"]["test"] == 1000
    assert record["seed"] == embedded.SUBSET_SEED
    fm = {r.filename: r.decoded_sha256 for r in loaders.DATASETS["fashion-mnist"].files}
    assert {k: v["decoded_sha256"] for k, v in record["source"]["files"].items()} == fm


def test_classes_are_balanced_and_images_are_real():
    arrays = embedded.load_subset_arrays()
    np.testing.assert_array_equal(np.bincount(arrays["y_train"], minlength=10), [600] * 10)
    np.testing.assert_array_equal(np.bincount(arrays["y_test"], minlength=10), [100] * 10)
    x = arrays["x_train"]
    assert x.min() == 0 and x.max() == 255
    assert 0.25 < x.mean() / 255 < 0.33  # Fashion-MNIST's mean is 0.286
    assert len(np.unique(x.reshape(len(x), -1), axis=0)) > 5990  # real, varied images


def test_load_dataset_small_needs_no_files_and_no_network(tmp_path, monkeypatch):
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TINYPRUNE_DATA", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("no network allowed")

    monkeypatch.setattr(socket, "create_connection", no_network)
    ds = loaders.load_dataset("fashion-mnist-small")
    assert (ds.name, ds.source) == ("fashion-mnist-small", "embedded")
    assert ds.x_train.shape == (6000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    norm = loaders.load_dataset("fashion_mnist_small", normalize=True)
    assert abs(float(norm.x_train.mean())) < 0.05 and abs(float(norm.x_train.std()) - 1) < 0.05


def test_licence_notice():
    text = (DATA / "LICENSE-fashion-mnist.txt").read_text()
    for needle in ("Copyright (c) 2017 Zalando SE", "MIT License", "Permission is hereby granted",
                   "github.com/zalandoresearch/fashion-mnist", "WITHOUT WARRANTY OF ANY KIND"):
        assert needle in text


def test_tampered_subset_is_detected(monkeypatch, tmp_path):
    arrays = embedded.load_subset_arrays()
    arrays["x_test"] = arrays["x_test"].copy()
    arrays["x_test"][0, 0, 0] ^= 1
    np.savez_compressed(tmp_path / embedded.NPZ_NAME, **arrays)
    (tmp_path / embedded.JSON_NAME).write_bytes((DATA / embedded.JSON_NAME).read_bytes())
    monkeypatch.setattr(embedded, "_data_file", lambda name: tmp_path / name)
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TINYPRUNE_DATA", raising=False)
    with pytest.raises(ValueError, match="array checksum mismatch"):
        embedded.load_subset_arrays()
    assert embedded.load_subset_arrays(verify=False)["x_test"][0, 0, 0] == arrays["x_test"][0, 0, 0]
    assert loaders.dataset_status(verify=True)[2]["checksum"] == "mismatch"


def test_select_stratified_is_deterministic_and_balanced():
    labels = np.random.default_rng(1).integers(0, 5, 500)
    a = embedded.select_stratified(labels, 20, seed=3)
    assert np.array_equal(a, embedded.select_stratified(labels, 20, seed=3))
    assert not np.array_equal(a, embedded.select_stratified(labels, 20, seed=4))
    assert np.all(np.diff(a) > 0) and a.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels[a]), [20] * 5)
    with pytest.raises(ValueError, match="expected at least 1000 samples of class 0"):
        embedded.select_stratified(labels, 1000, seed=3)


@pytest.mark.skipif(not SYSTEM.is_dir(),
                    reason="needs the full Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_script_reproduces_the_shipped_arrays(tmp_path):
    script = _script()
    rebuilt, _ = script.build_subset(SYSTEM)
    shipped = embedded.load_subset_arrays()
    for name in embedded.ARRAY_NAMES:
        np.testing.assert_array_equal(rebuilt[name], shipped[name])
    assert script.main([str(SYSTEM), "--out-dir", str(tmp_path)]) == 0
    assert (json.loads((tmp_path / embedded.JSON_NAME).read_text())
            == json.loads((DATA / embedded.JSON_NAME).read_text()))
    assert sorted(os.listdir(tmp_path)) == [embedded.JSON_NAME, embedded.NPZ_NAME]
