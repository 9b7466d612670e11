"""Checkpoints: a model's architecture, weights, masks and extra arrays in one ``.npz`` file.

Layout of the archive (every member a plain array, so it loads with ``allow_pickle=False``):

==================  ==========================================================================
``__spec__``        UTF-8 JSON as a 1-D uint8 array: ``{"format": "tinyprune.checkpoint",
                    "version": 1, "model": model.spec(), "transforms": {name: spec}}``
``__meta__``        UTF-8 JSON as a 1-D uint8 array: the ``metadata`` dict (accuracy, dataset...)
``param/<name>``    each parameter (``param/conv1.weight``), dtype preserved
``mask/<name>``     each pruning mask (bool, the parameter's shape)
``buffer/<name>``   each array of ``model.buffers``
``extra/<key>``     any other arrays (codebooks, optimizer state...)
``transform/<name>/<key>``  the state arrays of the weight transform of parameter ``<name>``
==================  ==========================================================================

Writes are atomic: the archive is written to a temporary file in the target's folder, flushed to
disk (``fsync``) and moved over the target with :func:`os.replace`, so a crash never leaves a
half-written checkpoint under the real name.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fileio import atomic_write
from .model import Sequential
from .transforms import transform_from_spec

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "CheckpointError", "load_checkpoint",
           "save_checkpoint"]

FORMAT = "tinyprune.checkpoint"
FORMAT_VERSION = 1
_PREFIXES = ("param", "mask", "buffer", "extra")
_TRANSFORM = "transform"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupted or inconsistent with its own architecture."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes
    ----------
    model : Sequential
        Rebuilt from the stored spec, with the stored parameters, masks (``model.masks``) and
        buffers (``model.buffers``).
    masks : dict[str, ndarray of bool]
        The stored masks (the same dict as ``model.masks``).
    extra : dict[str, ndarray]
    metadata : dict
    """

    model: Sequential
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- saving


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _json_bytes(obj, name) -> np.ndarray:
    try:
        text = json.dumps(obj, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected JSON-serialisable values: {exc}") from None
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)  # (n_bytes,)


def _array_dict(d, name, *, params=None, require_bool=False):
    """Validate a dict of arrays (str keys; masks: bool and the parameter's shape)."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise TypeError(f"{name}: expected a dict of arrays, got {type(d).__name__}")
    out = {}
    for key, arr in d.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name}: keys must be non-empty strings, got {key!r}")
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name}[{key!r}]: expected an ndarray, got {type(arr).__name__}")
        if arr.dtype.hasobject:
            raise TypeError(f"{name}[{key!r}]: object arrays cannot be stored "
                            f"(checkpoints load with allow_pickle=False)")
        if params is not None:
            if key not in params:
                raise ValueError(f"{name}: {key!r} is not a parameter of the model")
            if arr.shape != params[key].shape:
                raise ValueError(f"{name}[{key!r}]: expected shape {params[key].shape}, "
                                 f"got {arr.shape}")
        if require_bool and arr.dtype != np.bool_:
            raise TypeError(f"{name}[{key!r}]: expected a bool array, got {arr.dtype}")
        out[key] = arr
    return out


def save_checkpoint(path, model, *, masks=None, extra=None, metadata=None) -> None:
    """Write ``model`` (architecture + weights), masks, buffers and extras to one ``.npz``.

    Parameters
    ----------
    path : str or os.PathLike
        Target file, written exactly as named (no suffix added; ``.npz`` is conventional).
    model : Sequential
    masks : dict[str, ndarray of bool], optional
        Pruning masks keyed like ``model.params``; default ``model.masks``. Pass ``{}`` to store
        none.
    extra : dict[str, ndarray], optional
        Other arrays (codebooks, optimizer state...); keys may contain ``/``.
    metadata : dict, optional
        JSON-serialisable values (NumPy scalars are converted).

    Raises
    ------
    TypeError, ValueError
        Invalid masks, extras or metadata (nothing is written).
    OSError
        The file cannot be written (no temporary file is left behind).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    params = model.params
    masks = _array_dict(getattr(model, "masks", {}) if masks is None else masks, "masks",
                        params=params, require_bool=True)
    buffers = _array_dict(getattr(model, "buffers", {}), "model.buffers")
    extra = _array_dict(extra, "extra")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(f"metadata: expected a dict with string keys, got {metadata!r}")

    transforms = model.transforms
    t_specs = {name: t.spec() for name, t in transforms.items()}
    arrays = {
        "__spec__": _json_bytes({"format": FORMAT, "version": FORMAT_VERSION,
                                 "model": model.spec(), "transforms": t_specs}, "model.spec()"),
        "__meta__": _json_bytes(metadata, "metadata"),
    }
    for prefix, d in zip(_PREFIXES, (params, masks, buffers, extra), strict=True):
        arrays.update({f"{prefix}/{k}": v for k, v in d.items()})
    for name, t in transforms.items():
        t_arrays = _array_dict(t.arrays(), f"{name} transform arrays")
        for key in t_arrays:
            if "/" in key:
                raise ValueError(f"{name} transform arrays: key {key!r} must not contain '/'")
        arrays.update({f"{_TRANSFORM}/{name}/{k}": v for k, v in t_arrays.items()})

    with atomic_write(path) as f:
        np.savez(f, **arrays)


# ------------------------------------------------------------------------------------ loading


def _read_archive(path) -> dict[str, np.ndarray]:
    try:
        data = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: truncated or corrupted .npz archive ({exc})") from None
    except EOFError:
        raise CheckpointError(f"{path}: empty or truncated file, not an .npz checkpoint") from None
    except (OSError, ValueError) as exc:
        if "pickle" in str(exc):  # numpy's fallback guess for unknown content; don't suggest it
            raise CheckpointError(f"{path}: not an .npz checkpoint (unrecognised file "
                                  f"content)") from None
        raise CheckpointError(f"{path}: not a readable .npz checkpoint: "
                              f"{type(exc).__name__}: {exc}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: not a tinyprune checkpoint: it holds a single .npy array, "
                              f"not an .npz archive")
    try:
        with data:
            arrays = {k: data[k] for k in data.files}
    except MemoryError:
        raise
    except Exception as exc:  # damaged members: BadZipFile, zlib.error, EOFError, ValueError...
        if "allow_pickle" in str(exc):
            raise CheckpointError(f"{path}: contains object (pickled) arrays, which tinyprune "
                                  f"checkpoints never do; refusing to unpickle") from None
        raise CheckpointError(f"{path}: corrupted or truncated checkpoint: "
                              f"{type(exc).__name__}: {exc}") from None
    for k, v in arrays.items():
        if not isinstance(v, np.ndarray):
            raise CheckpointError(f"{path}: unexpected archive member {k!r} (not a .npy array)")
    return arrays


def _read_json(arrays, key, path):
    if key not in arrays:
        raise CheckpointError(f"{path}: missing {key!r} (not a tinyprune checkpoint?)")
    raw = arrays[key]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: {key!r} must be a 1-D uint8 array of UTF-8 JSON, got "
                              f"{raw.dtype} of shape {raw.shape}")
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: {key!r} is not valid JSON: {exc}") from None


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Checkpoint
        ``(model, masks, extra, metadata)``; parameter dtypes are preserved.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Corrupted, truncated or non-npz file; bad JSON; wrong format version; a parameter
        missing, unexpected, or with the wrong shape or dtype; a mask that is not bool or has the
        wrong shape; an archive member with an unknown prefix.
    """
    path = os.fspath(path)
    arrays = _read_archive(path)
    header = _read_json(arrays, "__spec__", path)
    metadata = _read_json(arrays, "__meta__", path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        got = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise CheckpointError(f"{path}: '__spec__' format must be {FORMAT!r}, got {got!r}")
    if header.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {header.get('version')!r} is not "
                              f"supported (this tinyprune reads version {FORMAT_VERSION})")
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: '__meta__' must be a JSON object, "
                              f"got {type(metadata).__name__}")

    groups: dict[str, dict[str, np.ndarray]] = {p: {} for p in _PREFIXES}
    t_arrays: dict[str, dict[str, np.ndarray]] = {}
    for key, arr in arrays.items():
        if key in ("__spec__", "__meta__"):
            continue
        if key.startswith(_TRANSFORM + "/"):
            name, sep, akey = key[len(_TRANSFORM) + 1:].rpartition("/")
            if not sep or not name or not akey:
                raise CheckpointError(f"{path}: bad archive member {key!r} (expected "
                                      f"{_TRANSFORM}/<parameter>/<key>)")
            t_arrays.setdefault(name, {})[akey] = arr
            continue
        prefix, sep, name = key.partition("/")
        if not sep or prefix not in groups or not name:
            raise CheckpointError(f"{path}: unknown archive member {key!r} (expected "
                                  f"__spec__, __meta__ or {'/, '.join(_PREFIXES)}/<name>)")
        groups[prefix][name] = arr

    try:
        model = Sequential.from_spec(header.get("model"))
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: invalid model architecture: {exc}") from None

    params = model.params
    stored = groups["param"]
    for name in stored:
        if name not in params:
            raise CheckpointError(f"{path}: unexpected parameter {name!r}; the architecture has "
                                  f"{list(params)}")
    for name, p in params.items():
        if name not in stored:
            raise CheckpointError(f"{path}: missing parameter {name!r}")
        arr = stored[name]
        if arr.shape != p.shape:
            raise CheckpointError(f"{path}: parameter {name!r} has shape {arr.shape}, the "
                                  f"architecture expects {p.shape}")
        if arr.dtype != p.dtype:
            raise CheckpointError(f"{path}: parameter {name!r} has dtype {arr.dtype}, the "
                                  f"architecture says {p.dtype}")
        model.set_param(name, arr)

    masks = groups["mask"]
    for name, m in masks.items():
        if name not in params:
            raise CheckpointError(f"{path}: mask for unknown parameter {name!r}")
        if m.dtype != np.bool_:
            raise CheckpointError(f"{path}: mask {name!r} must be bool, got {m.dtype}")
        if m.shape != params[name].shape:
            raise CheckpointError(f"{path}: mask {name!r} has shape {m.shape}, parameter has "
                                  f"{params[name].shape}")
    model.masks = masks
    model.buffers = groups["buffer"]
    _load_transforms(model, header.get("transforms", {}), t_arrays, path)
    return Checkpoint(model=model, masks=masks, extra=groups["extra"], metadata=metadata)


def _load_transforms(model, specs, t_arrays, path):
    """Rebuild the weight transforms recorded in the header, with their state arrays."""
    if not isinstance(specs, dict):
        raise CheckpointError(f"{path}: 'transforms' must be a JSON object, "
                              f"got {type(specs).__name__}")
    params = model.params
    for name in t_arrays:
        if name not in specs:
            raise CheckpointError(f"{path}: arrays for the transform of {name!r}, which the "
                                  f"header does not list")
    for name, spec in specs.items():
        if name not in params:
            raise CheckpointError(f"{path}: transform for unknown parameter {name!r}")
        try:
            model.set_transform(name, transform_from_spec(spec, t_arrays.get(name, {})))
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{path}: invalid transform for {name!r}: {exc}") from None
