"""MNIST and Fashion-MNIST loaders, the dataset registry and ``train_val_split``.

Where the files are looked for, in order (the first folder holding all four files wins):

1. the ``root`` argument: ``root/<subdir>`` then ``root`` itself;
2. the ``TINYPRUNE_DATA`` environment variable: ``$TINYPRUNE_DATA/<subdir>`` then the folder;
3. the user cache: ``$XDG_CACHE_HOME/tinyprune/<subdir>`` (``~/.cache/tinyprune/<subdir>``
   if ``XDG_CACHE_HOME`` is unset or relative);
4. the system dataset folders ``<d>/<subdir>`` for ``d`` in :data:`SYSTEM_DATA_DIRS`
   (Debian's ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist``);
5. only with ``download=True``: download from the dataset's mirrors into ``root`` if given,
   else ``$TINYPRUNE_DATA/<subdir>`` if set, else the user cache folder.

``<subdir>`` is ``"mnist"`` or ``"fashion-mnist"``. Each file may be gzipped
(``train-images-idx3-ubyte.gz``) or plain (``train-images-idx3-ubyte``). Files are verified
against :attr:`DatasetInfo.files` (see :mod:`tinyprune.datasets.download`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..nn.validation import check_int, check_real
from . import download as dl
from .embedded import SUBSET_NAME, load_subset_arrays
from .idx import is_gzip, read_idx, read_idx_header

__all__ = [
    "DATASETS", "SYSTEM_DATA_DIRS", "Dataset", "DatasetInfo", "DatasetNotFoundError",
    "DATASET_NAMES", "dataset_status", "format_dataset_status",
    "download_dataset", "find_dataset", "load_dataset", "load_fashion_mnist", "load_mnist",
    "train_val_split", "user_cache_dir",
]

ENV_VAR = "TINYPRUNE_DATA"
#: System folders searched (each with the dataset's subfolder appended); tests monkeypatch it.
SYSTEM_DATA_DIRS: tuple[str, ...] = ("/usr/share/datasets", "/usr/local/share/datasets")
ROLES = ("train_images", "train_labels", "test_images", "test_labels")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is in none of the searched folders (and was not, or could not be, downloaded).

    The message lists the folders searched, the expected file names and how to provide them, in
    the words of the Python API (``root=``, ``download=True``); :attr:`cli_message` says the same
    in the words of the ``tinyprune`` command (``--root``, ``--download``).
    """

    def __init__(self, message: str, cli_message: str | None = None):
        super().__init__(message)
        self.cli_message = message if cli_message is None else cli_message


class Dataset(NamedTuple):
    """A loaded dataset.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        float32 images, shape (N, 1, 28, 28), in [0, 1] (or standardised, see ``normalize``).
    y_train, y_test : numpy.ndarray
        int64 class labels in [0, 9], shape (N,).
    name : str
        Registry name, e.g. ``"fashion-mnist"``.
    source : str
        Folder the files were read from, or ``"embedded"``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: files and their digests, mirrors, statistics, how to install it.

    ``mean`` and ``std`` are the pixel statistics of the full training split on the [0, 1]
    scale, used by ``normalize=True``. ``files`` holds the records in :data:`ROLES` order.
    """

    name: str
    title: str
    subdir: str
    files: tuple[dl.FileRecord, ...]
    mirrors: tuple[str, ...]
    mean: float
    std: float
    n_train: int
    n_test: int
    class_names: tuple[str, ...]
    system_package: str | None = None


def _records(md5s, decoded_sha256s=(None,) * 4, n_train=60000, n_test=10000):
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    sizes = (16 + 784 * n_train, 8 + n_train, 16 + 784 * n_test, 8 + n_test)
    return tuple(dl.FileRecord(n, s, gzip_md5=m, decoded_sha256=d)
                 for n, s, m, d in zip(names, sizes, md5s, decoded_sha256s, strict=True))


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist", title="MNIST", subdir="mnist",
        # Upstream gzip MD5s (as listed by torchvision); decoded digests not recorded.
        files=_records(("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                        "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        mean=0.1307, std=0.3081, n_train=60000, n_test=10000,
        class_names=tuple(str(i) for i in range(10)),
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist", title="Fashion-MNIST", subdir="fashion-mnist",
        # Upstream gzip MD5s (Fashion-MNIST README) and SHA-256 of the decompressed files
        # (computed from Debian's dataset-fashion-mnist, whose gzip bytes differ).
        files=_records(
            ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
             "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
            ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
             "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
             "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
             "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        mean=0.2860, std=0.3530, n_train=60000, n_test=10000,
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"),
        system_package="dataset-fashion-mnist",
    ),
}
DATASET_NAMES = ("mnist", "fashion-mnist", SUBSET_NAME)


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinyprune``, or ``~/.cache/tinyprune`` if that is unset or relative."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "tinyprune"


def _info(name) -> DatasetInfo:
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    key = name.lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"name: expected one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[key]


def _path_arg(value, name: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a str or os.PathLike, got {type(value).__name__}")
    return Path(value).expanduser()


def _search_list(info: DatasetInfo, root: Path | None) -> list[tuple[str, list[Path]]]:
    """(label, folders) in lookup order; reads the environment and globals at call time."""
    out = []
    if root is not None:
        out.append(("root argument", [root / info.subdir, root]))
    env = os.environ.get(ENV_VAR, "")
    if env:
        out.append((f"${ENV_VAR}", [Path(env).expanduser() / info.subdir, Path(env).expanduser()]))
    out.append(("user cache", [user_cache_dir() / info.subdir]))
    out.append(("system folders", [Path(d) / info.subdir for d in SYSTEM_DATA_DIRS]))
    return out


def _find_file(folder: Path, record: dl.FileRecord) -> Path | None:
    for fname in (record.filename, record.plain_name):
        if (folder / fname).is_file():
            return folder / fname
    return None


def find_dataset(name: str, root=None) -> Path | None:
    """Return the first folder (in lookup order, no download) holding all files, or None."""
    info, root = _info(name), _path_arg(root, "root")
    for _, folders in _search_list(info, root):
        for folder in folders:
            if all(_find_file(folder, r) for r in info.files):
                return folder
    return None


def _download_target(info: DatasetInfo, root: Path | None) -> Path:
    if root is not None:
        return root
    env = os.environ.get(ENV_VAR, "")
    return Path(env).expanduser() / info.subdir if env else user_cache_dir() / info.subdir


def _mirrors_arg(info: DatasetInfo, mirrors) -> tuple[str, ...]:
    if mirrors is None:
        return info.mirrors
    if isinstance(mirrors, str) or not isinstance(mirrors, Sequence) or not all(
            isinstance(m, str) for m in mirrors):
        raise TypeError(f"mirrors: expected a sequence of URL strings, got {mirrors!r}")
    return tuple(mirrors)


def download_dataset(name: str, root=None, *, mirrors=None, timeout: float = 30.0) -> Path:
    """Download the missing or unverified files of ``name``; return the folder.

    The folder is ``root`` if given, else ``$TINYPRUNE_DATA/<subdir>`` if set, else the user
    cache folder. Files already there and verified are kept. ``mirrors`` overrides the
    registry's base URLs. Raises :class:`~tinyprune.datasets.download.DownloadError`.
    """
    info, root = _info(name), _path_arg(root, "root")
    mirrors = _mirrors_arg(info, mirrors)
    target = _download_target(info, root)
    if not mirrors:
        raise dl.DownloadError(f"{info.name}: no mirror URLs configured",
                               ["no mirror URLs configured (pass mirrors=[...])"])
    for record in info.files:
        existing = _find_file(target, record)
        if existing is not None and dl.checksum_status(existing, record) == dl.VERIFIED:
            continue
        dl.download_file(record, target, mirrors, timeout=timeout)
    return target


def _not_found_error(info: DatasetInfo, root: Path | None, mirrors, attempts=()):
    """The :class:`DatasetNotFoundError`, worded for Python callers and for the command line."""
    return DatasetNotFoundError(_not_found_message(info, root, mirrors, attempts),
                                _not_found_message(info, root, mirrors, attempts, cli=True))


def _not_found_message(info: DatasetInfo, root: Path | None, mirrors, attempts=(), *,
                       cli: bool = False) -> str:
    files = ", ".join(r.filename for r in info.files)
    lines = [f"{info.title} ({info.name!r}) not found. Expected the files {files} "
             "(each gzipped or not) in one folder. Searched:"]
    searched = dict(_search_list(info, root))
    root_arg, download_arg = ("--root /that/folder", "--download") if cli else \
        ("root='/that/folder'", "download=True")
    for label, empty in (("root argument", "not given"), (f"${ENV_VAR}", "not set"),
                         ("user cache", "-"), ("system folders", "none configured")):
        where = ", ".join(str(f) for f in searched.get(label, ()))
        shown = "--root" if cli and label == "root argument" else label
        lines.append(f"  - {shown}: {where or empty}")
    cache = user_cache_dir() / info.subdir
    sources = ", ".join(mirrors) or "(no mirrors configured: pass mirrors=[...])"
    lines += [
        "Provide the data in one of these ways:",
        f"  (a) put the files in a folder and pass {root_arg} (or copy them to {cache});",
        f"  (b) set the environment variable {ENV_VAR}=/that/folder "
        f"(files in /that/folder/{info.subdir} or directly in it);",
    ]
    if info.system_package:
        lines.append(f"  (c) install Debian's package: apt-get install {info.system_package} "
                     f"(it provides /usr/share/datasets/{info.subdir});")
        lines.append(f"  (d) pass {download_arg} to fetch them from {sources} "
                     f"into {_download_target(info, root)} (checksums verified).")
    else:
        lines.append(f"  (c) pass {download_arg} to fetch them from {sources} "
                     f"into {_download_target(info, root)} (checksums verified).")
    if attempts:
        lines.append("The download failed:")
        lines += [f"  {a}" for a in attempts]
    offline = f"--dataset {SUBSET_NAME}" if cli else f"load_dataset({SUBSET_NAME!r})"
    lines.append(f"Offline, {offline} uses the small Fashion-MNIST subset shipped with tinyprune.")
    return "\n".join(lines)


def _read_verified(path: Path, record: dl.FileRecord, verify: bool) -> np.ndarray:
    """Read an IDX file; with ``verify``, raise ChecksumMismatchError on a mismatch."""
    if not verify:
        return read_idx(path)
    gz = is_gzip(path)
    raw = dl.digest_file(path, decode=False)
    if dl.status_from_digests(record, is_gzip=gz, md5=raw["md5"], sha256=raw["sha256"]) \
            == dl.VERIFIED:
        return read_idx(path)
    hasher = hashlib.sha256() if gz and record.decoded_sha256 else None
    arr = read_idx(path, hasher=hasher)
    decoded = hasher.hexdigest() if hasher is not None else raw["decoded_sha256"]
    status = dl.status_from_digests(record, is_gzip=gz, md5=raw["md5"], sha256=raw["sha256"],
                                    decoded_sha256=decoded)
    if status == dl.MISMATCH:
        raise dl.ChecksumMismatchError(
            f"{path}: checksum mismatch, the file is not the expected {record.filename} "
            f"(decoded SHA-256 expected {record.decoded_sha256 or 'unrecorded'}, got "
            f"{decoded or 'not computed'}; gzip MD5 expected {record.gzip_md5}, got "
            f"{raw['md5']}). Delete it and re-download, or pass verify=False to load it anyway."
        )
    return arr


def _to_float(images: np.ndarray, info_mean: float, info_std: float, normalize: bool):
    x = images.reshape(images.shape[0], 1, *images.shape[1:]).astype(np.float32)  # (N,1,28,28)
    x /= np.float32(255.0)
    if normalize:
        x -= np.float32(info_mean)
        x /= np.float32(info_std)
    return x


def _check_pair(images, labels, img_path, lbl_path, n_classes: int):
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, 28, 28), "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lbl_path}: expected 1-D uint8 labels, got {labels.dtype} "
                         f"{labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"label count does not match image count: {lbl_path} holds "
                         f"{labels.shape[0]} labels, {img_path} holds {images.shape[0]} images")
    if labels.size and labels.max() >= n_classes:
        raise ValueError(f"{lbl_path}: expected labels in [0, {n_classes - 1}], "
                         f"got {int(labels.max())}")


def _load_full(name, root, download, normalize, verify, mirrors, timeout) -> Dataset:
    info, root = _info(name), _path_arg(root, "root")
    mirrors = _mirrors_arg(info, mirrors)
    folder = find_dataset(info.name, root)
    if folder is None:
        if not download:
            raise _not_found_error(info, root, mirrors)
        try:
            folder = download_dataset(info.name, root, mirrors=mirrors, timeout=timeout)
        except dl.DownloadError as e:
            raise _not_found_error(info, root, mirrors, e.attempts) from e
    paths = [_find_file(folder, r) for r in info.files]
    arrays = [_read_verified(p, r, verify) for p, r in zip(paths, info.files, strict=True)]
    n_cls = len(info.class_names)
    _check_pair(arrays[0], arrays[1], paths[0], paths[1], n_cls)
    _check_pair(arrays[2], arrays[3], paths[2], paths[3], n_cls)
    return Dataset(
        _to_float(arrays[0], info.mean, info.std, normalize), arrays[1].astype(np.int64),
        _to_float(arrays[2], info.mean, info.std, normalize), arrays[3].astype(np.int64),
        info.name, str(folder),
    )


def load_fashion_mnist(root=None, *, download: bool = False, normalize: bool = False,
                       verify: bool = True, mirrors=None, timeout: float = 30.0) -> Dataset:
    """Load Fashion-MNIST (60,000 train / 10,000 test, 10 clothing classes).

    Parameters
    ----------
    root : str or os.PathLike, optional
        Folder searched first (``root/fashion-mnist``, then ``root``); see the module docstring
        for the whole lookup order: root, ``$TINYPRUNE_DATA``, user cache, system folders
        (Debian's ``/usr/share/datasets/fashion-mnist``), then download.
    download : bool
        If the files are found nowhere, download them (checksum verified) from the mirrors
        into ``root``, ``$TINYPRUNE_DATA/fashion-mnist`` or the user cache, in that preference.
    normalize : bool
        Standardise with the training-set statistics: ``x = (x / 255 - 0.2860) / 0.3530``.
    verify : bool
        Check every file against the recorded digests (upstream gzip MD5 or SHA-256 of the
        decompressed bytes) and raise ``ChecksumMismatchError`` on a mismatch.
    mirrors : sequence of str, optional
        Base URLs overriding ``DATASETS["fashion-mnist"].mirrors``.
    timeout : float
        Network timeout in seconds per connection / read.

    Returns
    -------
    Dataset
        float32 ``x`` of shape (N, 1, 28, 28), int64 ``y``, ``name``, ``source`` folder.

    Raises
    ------
    DatasetNotFoundError
        Found nowhere and not downloadable; the message says how to provide the files.
    IDXFormatError, ValueError
        Malformed files, or label and image counts that disagree.
    """
    return _load_full("fashion-mnist", root, download, normalize, verify, mirrors, timeout)


def load_mnist(root=None, *, download: bool = False, normalize: bool = False,
               verify: bool = True, mirrors=None, timeout: float = 30.0) -> Dataset:
    """Load MNIST (60,000 train / 10,000 test handwritten digits).

    Same parameters, lookup order and errors as :func:`load_fashion_mnist` (subfolder
    ``mnist``; no Debian package, so the last resort is ``download=True``). ``normalize``
    uses ``x = (x / 255 - 0.1307) / 0.3081``. Only the upstream gzip MD5s are recorded, so a
    re-compressed gzip copy fails verification and a plain copy is accepted unverified.
    """
    return _load_full("mnist", root, download, normalize, verify, mirrors, timeout)


def load_dataset(name: str, root=None, *, download: bool = False, normalize: bool = False,
                 verify: bool = True, mirrors=None, timeout: float = 30.0) -> Dataset:
    """Load a dataset by name: ``"mnist"``, ``"fashion-mnist"`` or ``"fashion-mnist-small"``.

    ``"fashion-mnist-small"`` is the subset shipped inside the package (6,000 train / 1,000
    test, 600 / 100 per class): no files, no network; ``root``, ``download``, ``mirrors`` and
    ``timeout`` are ignored and ``normalize`` uses the full Fashion-MNIST statistics. Other
    names take the arguments of :func:`load_fashion_mnist`.
    """
    if isinstance(name, str) and name.lower().replace("_", "-") == SUBSET_NAME:
        arrays = load_subset_arrays(verify=verify)
        info = DATASETS["fashion-mnist"]
        return Dataset(
            _to_float(arrays["x_train"], info.mean, info.std, normalize),
            arrays["y_train"].astype(np.int64),
            _to_float(arrays["x_test"], info.mean, info.std, normalize),
            arrays["y_test"].astype(np.int64),
            SUBSET_NAME, "embedded",
        )
    if isinstance(name, str) and name.lower().replace("_", "-") not in DATASETS:
        raise ValueError(f"name: expected one of {list(DATASET_NAMES)}, got {name!r}")
    return _load_full(name, root, download, normalize, verify, mirrors, timeout)


def train_val_split(x: np.ndarray, y: np.ndarray, val_fraction: float, *, seed: int,
                    stratify: bool = True):
    """Split ``(x, y)`` into training and validation parts, deterministically.

    ``n_val = val_fraction * N`` rounded half up (clamped to [1, N-1]) samples go to
    validation. With ``stratify=True`` (default) each class contributes in proportion to its
    size (largest-remainder rounding, ties to the lower class label), so the class balance is
    kept; with ``stratify=False`` the samples are drawn uniformly. Each sample gets a random
    key from the raw stream of ``numpy.random.PCG64(seed)`` (stable across NumPy versions) and
    the smallest keys are taken, so the split depends only on ``seed``, the labels and N.

    Parameters
    ----------
    x : numpy.ndarray
        Samples, shape (N, ...). Not modified.
    y : numpy.ndarray
        Integer labels, shape (N,). Not modified.
    val_fraction : float
        Fraction in (0, 1) that goes to validation.
    seed : int
        Seed; the same seed gives the same split.
    stratify : bool
        Keep the class proportions in both parts.

    Returns
    -------
    x_train, y_train, x_val, y_val : numpy.ndarray
        Copies, each part in the original order.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x: expected a numpy.ndarray, got {type(x).__name__}")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"y: expected a numpy.ndarray, got {type(y).__name__}")
    if x.ndim < 1 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"y: expected shape ({x.shape[0] if x.ndim else '?'},) matching "
                         f"x's first dimension, got x {x.shape} and y {y.shape}")
    if stratify and y.dtype.kind not in "iub":
        raise TypeError(f"y: expected integer labels for stratify=True, got dtype {y.dtype}")
    val_fraction = check_real(val_fraction, "val_fraction (in (0, 1))", minimum=0.0, maximum=1.0,
                              exclusive_minimum=True, exclusive_maximum=True)
    seed = check_int(seed, "seed", minimum=0)
    n = y.shape[0]
    if n < 2:
        raise ValueError(f"x: expected at least 2 samples to split, got {n}")
    n_val = min(max(math.floor(float(val_fraction) * n + 0.5), 1), n - 1)  # half up
    keys = np.random.PCG64(int(seed)).random_raw(n)  # (N,) uint64
    if stratify:
        classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        quota = counts * (n_val / n)
        take = np.floor(quota).astype(np.int64)
        order = np.argsort(-(quota - take), kind="stable")
        take[order[: n_val - int(take.sum())]] += 1
        val_parts = []
        for k in range(classes.size):
            idx = np.flatnonzero(inverse.reshape(-1) == k)
            val_parts.append(idx[np.argsort(keys[idx], kind="stable")[: take[k]]])
        val_idx = np.concatenate(val_parts)
    else:
        val_idx = np.argsort(keys, kind="stable")[:n_val]
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    return x[~is_val], y[~is_val], x[is_val], y[is_val]


def _status(name, location, n_train, n_test, checksum, files, hint) -> dict:
    return {"name": name, "found": location is not None, "location": location,
            "n_train": n_train, "n_test": n_test, "checksum": checksum, "files": files,
            "hint": hint}


def _full_status(info: DatasetInfo, root: Path | None, verify: bool, cli: bool) -> dict:
    folder = find_dataset(info.name, root)
    if folder is None:
        hint = _not_found_message(info, root, info.mirrors, cli=cli)
        return _status(info.name, None, None, None, dl.MISSING, {}, hint)
    files, counts, problems = {}, [], []
    for record in info.files:
        path = _find_file(folder, record)
        try:
            counts.append(read_idx_header(path).shape[0])
        except (OSError, ValueError) as e:
            files[str(path)] = f"unreadable: {e}"
            problems.append(str(e))
            continue
        files[str(path)] = dl.checksum_status(path, record) if verify else "unchecked"
    states = set(files.values())
    if problems or dl.MISMATCH in states:
        checksum = dl.MISMATCH
    elif not verify:
        checksum = "unchecked"
    elif dl.UNVERIFIABLE in states:
        checksum = dl.UNVERIFIABLE
    else:
        checksum = dl.VERIFIED
    hint = ""
    if checksum == dl.MISMATCH:
        where = f"the error of 'tinyprune train --dataset {info.name}'" if cli else \
            "load_dataset's error message"
        hint = (f"files in {folder} are damaged or not {info.title}: delete them and provide "
                f"the data again (see {where} for the options)")
    n_train = counts[0] if len(counts) == 4 else None
    n_test = counts[2] if len(counts) == 4 else None
    return _status(info.name, str(folder), n_train, n_test, checksum, files, hint)


def _embedded_status(verify: bool) -> dict:
    try:
        arrays = load_subset_arrays(verify=verify)
    except FileNotFoundError as e:
        return _status(SUBSET_NAME, None, None, None, dl.MISSING, {},
                       f"the shipped subset is missing ({e}); reinstall tinyprune")
    except ValueError as e:
        return _status(SUBSET_NAME, "embedded", None, None, dl.MISMATCH, {}, str(e))
    return _status(SUBSET_NAME, "embedded", len(arrays["y_train"]), len(arrays["y_test"]),
                   dl.VERIFIED if verify else "unchecked", {}, "")


def dataset_status(root=None, *, verify: bool = True, cli: bool = False) -> list[dict]:
    """Report, for every registered dataset, where it is found, its sizes and checksums.

    Searches like the loaders (``root``, ``$TINYPRUNE_DATA``, user cache, system folders) but
    never downloads. With ``verify`` every file is hashed (well under a second for
    Fashion-MNIST's re-compressed Debian copy, which must be decompressed). Never raises for
    bad data: problems are reported in ``checksum``, ``files`` and ``hint``. With ``cli`` the
    hints speak the command line's words (``--root``, ``--download``) instead of the Python
    API's (``root=``, ``download=True``).

    Returns
    -------
    list of dict
        One JSON-serialisable dict per dataset, in the order ``"mnist"``, ``"fashion-mnist"``,
        ``"fashion-mnist-small"``, with keys

        * ``name`` (str) and ``found`` (bool);
        * ``location``: the folder, ``"embedded"``, or None if missing;
        * ``n_train``, ``n_test``: sample counts from the file headers (None if unknown);
        * ``checksum``: ``"verified"``, ``"mismatch"``, ``"unverifiable"`` (no recorded
          digest applies, e.g. a plain MNIST copy), ``"unchecked"`` (``verify=False``) or
          ``"missing"``;
        * ``files``: path -> status of each file (or ``"unreadable: <reason>"``);
        * ``hint``: how to get (or repair) the dataset; empty when all is well.
    """
    root = _path_arg(root, "root")
    out = [_full_status(info, root, verify, cli) for info in DATASETS.values()]
    out.append(_embedded_status(verify))
    return out


def format_dataset_status(statuses: Sequence[dict]) -> str:
    """Render :func:`dataset_status` as a plain-text table followed by the hints."""
    rows = [("dataset", "train", "test", "checksum", "location")]
    for st in statuses:
        rows.append((st["name"], "-" if st["n_train"] is None else str(st["n_train"]),
                     "-" if st["n_test"] is None else str(st["n_test"]), st["checksum"],
                     st["location"] or "missing"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
             for r in rows]
    for st in statuses:
        if st["hint"]:
            lines += ["", f"{st['name']}:", st["hint"]]
    return "\n".join(lines)
