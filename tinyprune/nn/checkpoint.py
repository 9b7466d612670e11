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

Reading trusts nothing in the file, and allocates only what the file really holds. Before any array
is read, every member's ``.npy`` header is parsed and checked: ``prod(shape) * itemsize`` must equal
the member's stored data size (and a compressed member cannot claim more than deflate's maximum
ratio), so a header declaring a shape of ``2**40`` fails at once. The JSON is parsed with limits
(size, nesting depth; ``NaN``/``Infinity`` and overflowing numbers are refused in the spec), and the
architecture is checked against the stored parameter shapes (and sane limits) *before* the model is
built, so a 4 KB file declaring a Linear layer with 3e9 outputs costs nothing. Every such problem is
a :class:`CheckpointError`.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import layers as _layers
from .fileio import atomic_write
from .model import Sequential
from .transforms import transform_from_spec

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "CheckpointError", "load_checkpoint",
           "save_checkpoint"]

FORMAT = "tinyprune.checkpoint"
FORMAT_VERSION = 1
_PREFIXES = ("param", "mask", "buffer", "extra")
_TRANSFORM = "transform"

# Sane limits for reading untrusted files.
MAX_MEMBERS = 10_000
"""At most this many arrays in one archive."""
MAX_JSON_BYTES = 1 << 24
"""At most 16 MiB of JSON in ``__spec__`` / ``__meta__``."""
MAX_JSON_DEPTH = 32
"""At most this many nested ``[`` / ``{`` in the JSON."""
MAX_TOTAL_BYTES = 1 << 33
"""At most 8 GiB of array data in one archive (sum of the members' declared sizes)."""
MAX_LAYERS = 10_000
"""At most this many layers in a spec."""
MAX_SPEC_INT = 1 << 31
"""Every integer in a layer spec (sizes, strides, paddings...) has absolute value below this."""
MAX_INPUT_ELEMENTS = 1 << 28
"""``prod(input_shape)`` of one sample at most (the largest activation a spec may declare)."""
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand 1 byte into more than ~1032 bytes


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


def _member_error(path, name, what):
    return CheckpointError(f"{path}: archive member {name!r}: {what}")


def _check_member(zf, info, path) -> int:
    """Parse one member's ``.npy`` header; check it against the member's stored size.

    Returns the member's array data size in bytes. Nothing but the header is read.
    """
    name = info.filename
    if not name.endswith(".npy"):
        raise _member_error(path, name, "not a .npy array")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _member_error(path, name, f"unsupported compression method {info.compress_type}")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise _member_error(path, name, f"stored (uncompressed) member declares {info.file_size} "
                                        f"bytes but occupies {info.compress_size}")
    if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise _member_error(path, name, f"declares {info.file_size} bytes from {info.compress_size} "
                                        f"compressed bytes, more than deflate can produce")
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            offset = f.tell()
    except MemoryError:
        raise
    except Exception as exc:  # any malformed header: ValueError, SyntaxError, zlib.error, ...
        raise _member_error(path, name, f"unreadable .npy header ({type(exc).__name__}: "
                                        f"{exc})") from None
    if dtype.hasobject:
        raise CheckpointError(f"{path}: contains object (pickled) arrays, which tinyprune "
                              f"checkpoints never do; refusing to unpickle")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _member_error(path, name, f"bad shape {shape!r} in the .npy header")
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise _member_error(path, name, f"header declares shape {shape} of {dtype} "
                                        f"({nbytes} bytes) but the member holds "
                                        f"{info.file_size - offset} bytes of data")
    return nbytes


def _read_archive(path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:  # FileNotFoundError / IsADirectoryError / PermissionError
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise CheckpointError(f"{path}: not a tinyprune checkpoint: it holds a single .npy array, "
                              f"not an .npz archive")
    if not magic:
        raise CheckpointError(f"{path}: empty or truncated file, not an .npz checkpoint")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: truncated or corrupted .npz archive, or not an .npz "
                              f"checkpoint ({exc})") from None
    except MemoryError:
        raise
    except Exception as exc:  # a damaged central directory: ValueError, OSError, EOFError...
        raise CheckpointError(f"{path}: corrupted .npz archive: {type(exc).__name__}: "
                              f"{exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise CheckpointError(f"{path}: {len(infos)} archive members, more than "
                                  f"{MAX_MEMBERS}")
        total = sum(_check_member(zf, info, path) for info in infos)
        if total > MAX_TOTAL_BYTES:
            raise CheckpointError(f"{path}: the arrays declare {total} bytes in total, more "
                                  f"than the limit of {MAX_TOTAL_BYTES}")
        arrays = {}
        for info in infos:
            try:
                with zf.open(info) as f:
                    arrays[info.filename[:-len(".npy")]] = np.lib.format.read_array(
                        f, allow_pickle=False)
            except MemoryError:
                raise
            except Exception as exc:  # damaged data: BadZipFile (CRC), zlib.error, EOFError...
                raise CheckpointError(f"{path}: corrupted or truncated checkpoint: member "
                                      f"{info.filename!r}: {type(exc).__name__}: {exc}") from None
    return arrays


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')  # a JSON string literal


def _json_depth(raw: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text (brackets inside strings do not count)."""
    b = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)  # (n_bytes,)
    step = np.isin(b, (ord("["), ord("{"))).astype(np.int64) - np.isin(b, (ord("]"), ord("}")))
    return int(np.cumsum(step).max()) if step.size else 0


def _reject_constant(name):
    raise ValueError(f"{name} is not valid in a checkpoint spec")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} overflows a float")
    return value


def _read_json(arrays, key, path, *, strict):
    """Parse ``arrays[key]`` as JSON with size and depth limits; ``strict`` also refuses
    ``NaN``/``Infinity`` and numbers that overflow a float (the spec; metadata may hold NaN)."""
    if key not in arrays:
        raise CheckpointError(f"{path}: missing {key!r} (not a tinyprune checkpoint?)")
    raw = arrays[key]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: {key!r} must be a 1-D uint8 array of UTF-8 JSON, got "
                              f"{raw.dtype} of shape {raw.shape}")
    if raw.size > MAX_JSON_BYTES:
        raise CheckpointError(f"{path}: {key!r} holds {raw.size} bytes of JSON, more than "
                              f"{MAX_JSON_BYTES}")
    data = raw.tobytes()
    depth = _json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(f"{path}: {key!r} is nested {depth} levels deep, more than "
                              f"{MAX_JSON_DEPTH}")
    hooks = {"parse_constant": _reject_constant, "parse_float": _finite_float} if strict else {}
    try:
        return json.loads(data.decode("utf-8"), **hooks)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError, big ints
        raise CheckpointError(f"{path}: {key!r} is not valid JSON: {exc}") from None


# ---------------------------------------------------------------- the spec, before building
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ints(obj):
    """Every int in a JSON value (recursively; the depth is already bounded)."""
    if _is_int(obj):
        yield obj
    elif isinstance(obj, list):
        for v in obj:
            yield from _ints(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _ints(v)


def _pair(v):
    if _is_int(v):
        return (v, v)
    if isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v):
        return tuple(v)
    return None


def _param_shapes(ls) -> dict | None:
    """Parameter shapes a layer spec implies (local names), or None if they cannot be told."""
    kind, bias = ls.get("type"), bool(ls.get("bias", True))
    if kind == "Linear":
        i, o = ls.get("in_features"), ls.get("out_features")
        if not (_is_int(i) and _is_int(o)):
            return None
        shapes = {"weight": (o, i)}
        out = o
    elif kind == "Conv2d":
        i, o, k = ls.get("in_channels"), ls.get("out_channels"), _pair(ls.get("kernel_size"))
        if not (_is_int(i) and _is_int(o) and k):
            return None
        shapes = {"weight": (o, i, *k)}
        out = o
    elif isinstance(kind, str):
        cls = getattr(_layers, "LAYER_TYPES", {}).get(kind)
        fn = getattr(cls, "param_shapes", None)  # a registered layer type may say it itself
        if fn is None:
            return None
        try:
            return {k: tuple(v) for k, v in fn(ls).items()}
        except (ValueError, TypeError, KeyError):
            return None
    else:
        return None
    if bias:
        shapes["bias"] = (out,)
    return shapes


def _check_spec(model_spec, stored, path) -> None:
    """Check a model spec against sane limits and the stored parameter shapes, allocating
    nothing, so that building the model allocates only what the file holds."""
    if not isinstance(model_spec, dict):
        raise CheckpointError(f"{path}: invalid model architecture: expected a JSON object, got "
                              f"{type(model_spec).__name__}")
    if model_spec.get("dtype", "float32") not in ("float32", "float64"):
        raise CheckpointError(f"{path}: invalid model architecture: dtype must be 'float32' or "
                              f"'float64', got {model_spec.get('dtype')!r}")
    shape = model_spec.get("input_shape")
    if shape is not None:
        if not (isinstance(shape, list) and 1 <= len(shape) <= 4
                and all(_is_int(d) and 1 <= d <= MAX_INPUT_ELEMENTS for d in shape)
                and math.prod(shape) <= MAX_INPUT_ELEMENTS):
            raise CheckpointError(f"{path}: invalid model architecture: input_shape must be a "
                                  f"list of 1 to 4 positive ints with product <= "
                                  f"{MAX_INPUT_ELEMENTS}, got {shape!r}")
    layer_specs = model_spec.get("layers")
    if not isinstance(layer_specs, list) or len(layer_specs) > MAX_LAYERS:
        raise CheckpointError(f"{path}: invalid model architecture: 'layers' must be a list of "
                              f"at most {MAX_LAYERS} layer specs")
    for ls in layer_specs:
        if not isinstance(ls, dict) or not isinstance(ls.get("name"), str):
            raise CheckpointError(f"{path}: invalid model architecture: each layer must be an "
                                  f"object with a 'name' string, got {ls!r:.200}")
        big = [v for v in _ints(ls) if abs(v) >= MAX_SPEC_INT]
        if big:
            raise CheckpointError(f"{path}: layer {ls['name']!r}: value {big[0]} is out of range "
                                  f"(limit {MAX_SPEC_INT})")
        shapes = _param_shapes(ls)
        for local, expected in (shapes or {}).items():
            name = f"{ls['name']}.{local}"
            if name not in stored:
                raise CheckpointError(f"{path}: missing parameter {name!r}")
            if stored[name].shape != expected:
                raise CheckpointError(f"{path}: parameter {name!r} has shape "
                                      f"{stored[name].shape}, the architecture expects {expected}")


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
        Corrupted, truncated or non-npz file; a member whose ``.npy`` header does not match its
        stored size; bad or too deeply nested JSON, ``NaN``/``Infinity`` in the spec; wrong format
        version; an architecture beyond the sane limits (:data:`MAX_SPEC_INT`, ...); a parameter
        missing, unexpected, or with the wrong shape or dtype; a mask that is not bool or has the
        wrong shape; an archive member with an unknown prefix.
    """
    path = os.fspath(path)
    arrays = _read_archive(path)
    header = _read_json(arrays, "__spec__", path, strict=True)
    metadata = _read_json(arrays, "__meta__", path, strict=False)
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

    _check_spec(header.get("model"), groups["param"], path)
    try:
        model = Sequential.from_spec(header.get("model"))
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, AttributeError,
            RecursionError) as exc:
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
