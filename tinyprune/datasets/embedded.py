"""The Fashion-MNIST subset shipped inside the package ("fashion-mnist-small").

6,000 training images (600 per class) and 1,000 test images (100 per class), chosen
deterministically from the full Fashion-MNIST IDX files by :func:`select_stratified` with
:data:`SUBSET_SEED`. Stored as ``data/fashion-mnist-small.npz`` (uint8 arrays ``x_train``
(6000, 28, 28), ``y_train`` (6000,), ``x_test`` (1000, 28, 28), ``y_test`` (1000,)); its
provenance and the SHA-256 of the array contents (see :func:`arrays_sha256`) are recorded in
``data/fashion-mnist-small.json``. Regenerate with ``scripts/make_embedded_subset.py``.

Fashion-MNIST is Copyright (c) 2017 Zalando SE, MIT licence (``data/LICENSE-fashion-mnist.txt``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import resources

import numpy as np

__all__ = [
    "SUBSET_NAME", "SUBSET_PER_CLASS_TEST", "SUBSET_PER_CLASS_TRAIN", "SUBSET_SEED",
    "arrays_sha256", "load_subset_arrays", "make_subset", "select_stratified", "subset_record",
]

SUBSET_NAME = "fashion-mnist-small"
SUBSET_SEED = 20170825  # Fashion-MNIST's release date
SUBSET_PER_CLASS_TRAIN = 600
SUBSET_PER_CLASS_TEST = 100
NPZ_NAME = f"{SUBSET_NAME}.npz"
JSON_NAME = f"{SUBSET_NAME}.json"
ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")


def select_stratified(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Pick ``per_class`` indices of every class, deterministically, in ascending order.

    Each sample gets a random 64-bit key from the raw output of ``PCG64(seed)`` (whose
    stream NumPy guarantees across versions, unlike the ``Generator`` methods); within each
    class the ``per_class`` samples with the smallest keys are kept.

    Parameters
    ----------
    labels : numpy.ndarray
        1-D integer class labels, shape (N,).
    per_class : int
        Samples to keep per class present in ``labels``.
    seed : int
        Seed of the PCG64 bit generator.

    Returns
    -------
    numpy.ndarray
        int64 indices into ``labels``, sorted, ``per_class * n_classes`` of them.

    Raises
    ------
    ValueError
        If ``labels`` is not 1-D or a class has fewer than ``per_class`` samples.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels: expected a 1-D array, got shape {labels.shape}")
    keys = np.random.PCG64(seed).random_raw(labels.shape[0])  # (N,) uint64
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size < per_class:
            raise ValueError(
                f"labels: expected at least {per_class} samples of class {c}, got {idx.size}"
            )
        order = np.argsort(keys[idx], kind="stable")
        chosen.append(idx[order[:per_class]])
    if not chosen:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def make_subset(x_train, y_train, x_test, y_test, *, seed: int = SUBSET_SEED,
                per_class_train: int = SUBSET_PER_CLASS_TRAIN,
                per_class_test: int = SUBSET_PER_CLASS_TEST) -> dict[str, np.ndarray]:
    """Select the stratified subset from full uint8 arrays (train uses ``seed``, test ``seed+1``).

    Returns
    -------
    dict
        ``x_train``, ``y_train``, ``x_test``, ``y_test`` as C-contiguous uint8 copies.
    """
    tr = select_stratified(y_train, per_class_train, seed)
    te = select_stratified(y_test, per_class_test, seed + 1)
    out = {"x_train": x_train[tr], "y_train": y_train[tr], "x_test": x_test[te],
           "y_test": y_test[te]}
    return {k: np.ascontiguousarray(v, dtype=np.uint8) for k, v in out.items()}


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of array contents: for each name in sorted order, name, dtype, shape, C bytes.

    Independent of the container (npz timestamps, compression), so it pins the data itself.
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _data_file(name: str):
    return resources.files("tinyprune.datasets").joinpath("data").joinpath(name)


def subset_record() -> dict:
    """The provenance record ``data/fashion-mnist-small.json`` as a dict."""
    return json.loads(_data_file(JSON_NAME).read_text(encoding="utf-8"))


def load_subset_arrays(*, verify: bool = True) -> dict[str, np.ndarray]:
    """Load the shipped subset as uint8 arrays (no network, no system package).

    Parameters
    ----------
    verify : bool
        Compare :func:`arrays_sha256` with the value recorded in the JSON file.

    Returns
    -------
    dict
        ``x_train`` (6000, 28, 28), ``y_train`` (6000,), ``x_test`` (1000, 28, 28),
        ``y_test`` (1000,), all uint8.

    Raises
    ------
    ValueError
        If ``verify`` and the contents do not match the recorded checksum.
    """
    with _data_file(NPZ_NAME).open("rb") as f, np.load(f, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in ARRAY_NAMES}
    if verify:
        expected = subset_record()["arrays_sha256"]
        actual = arrays_sha256(arrays)
        if actual != expected:
            raise ValueError(
                f"{NPZ_NAME}: array checksum mismatch, expected {expected}, got {actual}; "
                "reinstall tinyprune or regenerate with scripts/make_embedded_subset.py"
            )
    return arrays
