#!/usr/bin/env python3
"""Regenerate the embedded Fashion-MNIST subset shipped in ``tinyprune/datasets/data/``.

Reads the full Fashion-MNIST IDX files (gzipped or plain) from FOLDER (default: Debian's
``/usr/share/datasets/fashion-mnist``), checks them against the recorded digests, selects 600
training and 100 test images per class with ``tinyprune.datasets.embedded.make_subset`` (fixed
seed, deterministic) and writes

* ``fashion-mnist-small.npz``  uint8 ``x_train``, ``y_train``, ``x_test``, ``y_test``
  (``np.savez_compressed``, loads with ``allow_pickle=False``);
* ``fashion-mnist-small.json`` counts, seed, the SHA-256 of the array contents (the npz bytes
  vary with zip timestamps, the arrays do not) and the digests of the source files.

Usage::

    python scripts/make_embedded_subset.py [FOLDER] [--out-dir DIR] [--seed N] [--no-verify]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tinyprune.datasets import embedded  # noqa: E402
from tinyprune.datasets.download import checksum_status  # noqa: E402
from tinyprune.datasets.idx import read_idx  # noqa: E402
from tinyprune.datasets.loaders import DATASETS  # noqa: E402
from tinyprune.nn.fileio import atomic_write  # noqa: E402

DEFAULT_FOLDER = "/usr/share/datasets/fashion-mnist"
DEFAULT_OUT = REPO_ROOT / "tinyprune" / "datasets" / "data"


def _locate(folder: Path, record) -> Path:
    for name in (record.filename, record.plain_name):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{folder}: expected {record.filename} or {record.plain_name}; install Debian's "
        "dataset-fashion-mnist or pass the folder holding the Fashion-MNIST IDX files"
    )


def build_subset(folder, *, seed: int = embedded.SUBSET_SEED, verify: bool = True):
    """Read the full files in ``folder`` and return ``(arrays, source_files)``.

    ``source_files`` maps each file name to the SHA-256 of its decoded bytes (as read), the
    upstream gzip MD5 on record and its sample count.
    """
    folder = Path(folder)
    records = DATASETS["fashion-mnist"].files
    full, sources = [], {}
    for record in records:
        path = _locate(folder, record)
        if verify and (status := checksum_status(path, record)) != "verified":
            raise ValueError(f"{path}: checksum {status}; not the Fashion-MNIST file "
                             f"{record.filename} (use --no-verify to override)")
        hasher = hashlib.sha256()
        arr = read_idx(path, hasher=hasher)
        full.append(arr)
        sources[record.filename] = {"decoded_sha256": hasher.hexdigest(),
                                    "upstream_gzip_md5": record.gzip_md5, "n": int(arr.shape[0])}
    arrays = embedded.make_subset(*full, seed=seed)
    return arrays, sources


def _write_npz(path: Path, arrays) -> None:
    with atomic_write(path) as f:
        np.savez_compressed(f, **{k: arrays[k] for k in embedded.ARRAY_NAMES})


def make_record(arrays, sources, seed: int) -> dict:
    """The provenance record written to ``fashion-mnist-small.json``."""
    return {
        "name": embedded.SUBSET_NAME,
        "description": "Stratified subset of Fashion-MNIST: 600 train / 100 test images per "
                       "class, selected by tinyprune.datasets.embedded.make_subset",
        "seed": seed,
        "per_class": {"train": embedded.SUBSET_PER_CLASS_TRAIN,
                      "test": embedded.SUBSET_PER_CLASS_TEST},
        "counts": {
            "train": int(arrays["y_train"].size),
            "test": int(arrays["y_test"].size),
            "train_per_class": np.bincount(arrays["y_train"], minlength=10).tolist(),
            "test_per_class": np.bincount(arrays["y_test"], minlength=10).tolist(),
        },
        "arrays": {k: {"dtype": str(arrays[k].dtype), "shape": list(arrays[k].shape)}
                   for k in embedded.ARRAY_NAMES},
        "arrays_sha256": embedded.arrays_sha256(arrays),
        "arrays_sha256_definition": "tinyprune.datasets.embedded.arrays_sha256",
        "source": {
            "dataset": "Fashion-MNIST",
            "homepage": "https://github.com/zalandoresearch/fashion-mnist",
            "license": "MIT, Copyright (c) 2017 Zalando SE (see LICENSE-fashion-mnist.txt)",
            "files": sources,
        },
        "generator": "scripts/make_embedded_subset.py",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=DEFAULT_FOLDER,
                        help=f"folder with the full Fashion-MNIST IDX files "
                             f"(default: {DEFAULT_FOLDER})")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT),
                        help="where to write the .npz and .json (default: the package data)")
    parser.add_argument("--seed", type=int, default=embedded.SUBSET_SEED)
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the checksum check of the source files")
    args = parser.parse_args(argv)
    arrays, sources = build_subset(args.folder, seed=args.seed, verify=not args.no_verify)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_npz(out / embedded.NPZ_NAME, arrays)
    record = make_record(arrays, sources, args.seed)
    (out / embedded.JSON_NAME).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n",
                                          encoding="utf-8")
    size = (out / embedded.NPZ_NAME).stat().st_size
    print(f"wrote {out / embedded.NPZ_NAME} ({size} bytes) and {embedded.JSON_NAME}; "
          f"arrays_sha256 {record['arrays_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
