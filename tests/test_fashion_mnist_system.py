"""The full Fashion-MNIST from Debian's dataset-fashion-mnist package (system folder)."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from tinyprune.datasets import loaders

SYSTEM = Path("/usr/share/datasets/fashion-mnist")
DECODED_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz":
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz":
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz":
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

pytestmark = pytest.mark.skipif(
    not SYSTEM.is_dir(),
    reason=f"{SYSTEM} is absent: install Debian's package with "
           "'apt-get install dataset-fashion-mnist' to run the full-dataset tests",
)


@pytest.fixture(scope="module")
def fashion():
    mp = pytest.MonkeyPatch()
    mp.delenv("TINYPRUNE_DATA", raising=False)
    mp.setenv("XDG_CACHE_HOME", "/nonexistent/tinyprune-test-cache")
    mp.setattr(loaders, "SYSTEM_DATA_DIRS", (str(SYSTEM.parent),))
    try:
        yield loaders.load_fashion_mnist()  # found through the system-folder lookup
    finally:
        mp.undo()


def test_shapes_dtypes_range(fashion):
    assert fashion.source == str(SYSTEM) and fashion.name == "fashion-mnist"
    assert fashion.x_train.shape == (60000, 1, 28, 28)
    assert fashion.x_test.shape == (10000, 1, 28, 28)
    assert fashion.x_train.dtype == np.float32 and fashion.x_test.dtype == np.float32
    assert fashion.y_train.dtype == np.int64 and fashion.y_test.shape == (10000,)
    assert fashion.x_train.min() == 0.0 and fashion.x_train.max() == 1.0
    assert fashion.x_test.min() == 0.0 and fashion.x_test.max() == 1.0
    info = loaders.DATASETS["fashion-mnist"]
    assert abs(float(fashion.x_train.mean(dtype=np.float64)) - info.mean) < 1e-4
    assert abs(float(fashion.x_train.std(dtype=np.float64)) - info.std) < 1e-4


def test_labels_balanced(fashion):
    np.testing.assert_array_equal(np.bincount(fashion.y_train, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(fashion.y_test, minlength=10), [1000] * 10)


def test_decoded_sha256_of_the_system_files():
    records = {r.filename: r for r in loaders.DATASETS["fashion-mnist"].files}
    for name, expected in DECODED_SHA256.items():
        with gzip.open(SYSTEM / name, "rb") as f:
            data = f.read()
        assert hashlib.sha256(data).hexdigest() == expected
        assert records[name].decoded_sha256 == expected
        assert records[name].decoded_size == len(data)


def test_status_reports_verified(monkeypatch):
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", (str(SYSTEM.parent),))
    monkeypatch.delenv("TINYPRUNE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent/tinyprune-test-cache")
    st = {s["name"]: s for s in loaders.dataset_status()}["fashion-mnist"]
    assert (st["location"], st["n_train"], st["n_test"], st["checksum"]) == (
        str(SYSTEM), 60000, 10000, "verified")
