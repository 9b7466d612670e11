"""Datasets: IDX files, MNIST / Fashion-MNIST loaders, downloads and the embedded subset.

Quick start::

    from tinyprune.datasets import load_dataset, train_val_split
    ds = load_dataset("fashion-mnist-small")          # shipped with the package, offline
    x_tr, y_tr, x_val, y_val = train_val_split(ds.x_train, ds.y_train, 0.1, seed=0)
    full = load_dataset("fashion-mnist")              # root / $TINYPRUNE_DATA / cache / system

See :mod:`tinyprune.datasets.loaders` for the lookup order and
:func:`dataset_status` for what is available on this machine.
"""

from .download import ChecksumMismatchError, DownloadError, FileRecord, checksum_status
from .embedded import arrays_sha256, load_subset_arrays
from .idx import IDXFormatError, read_idx, read_idx_header, write_idx
from .loaders import (
    DATASET_NAMES,
    DATASETS,
    SYSTEM_DATA_DIRS,
    Dataset,
    DatasetInfo,
    DatasetNotFoundError,
    dataset_status,
    download_dataset,
    find_dataset,
    format_dataset_status,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    train_val_split,
    user_cache_dir,
)

__all__ = [
    "DATASETS", "DATASET_NAMES", "SYSTEM_DATA_DIRS", "ChecksumMismatchError", "Dataset",
    "DatasetInfo", "DatasetNotFoundError", "DownloadError", "FileRecord", "IDXFormatError",
    "arrays_sha256", "checksum_status", "dataset_status", "download_dataset", "find_dataset",
    "format_dataset_status", "load_dataset", "load_fashion_mnist", "load_mnist",
    "load_subset_arrays", "read_idx", "read_idx_header", "train_val_split", "user_cache_dir",
    "write_idx",
]
