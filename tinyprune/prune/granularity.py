"""Pruning granularity: which weights form one *structural set* S that is kept or pruned together.

The lecture ("Pruning at different granularities", after Mao et al., "Exploring the Granularity of
Sparsity in Convolutional Neural Networks", CVPR-W 2017) orders them from irregular to regular.
For a Conv2d weight ``W`` of shape ``(C_out, C_in, KH, KW)`` the sets are

============== ================================ ==========================================
granularity    one set S                        per-set array shape
============== ================================ ==========================================
element        one weight ``W[o, i, h, w]``     ``(C_out, C_in, KH, KW)`` (fine-grained)
vector         one kernel row ``W[o, i, h, :]`` ``(C_out, C_in, KH)``
kernel         one kernel ``W[o, i, :, :]``     ``(C_out, C_in)``
channel        one filter ``W[o, :, :, :]``     ``(C_out,)`` (output channel / neuron)
input_channel  ``W[:, i, :, :]``                ``(C_in,)`` (everything reading input ``i``)
nm             one weight (pattern-based)       same as element; the N:M *selection* rule
                                                (:mod:`tinyprune.prune.nm`) makes the pattern
============== ================================ ==========================================

For a Linear weight of shape ``(out, in)`` the sets are the same with ``KH = KW = 1`` except:

* ``vector``: runs of ``vector_size`` consecutive weights along the input dimension,
  ``W[o, j*v:(j+1)*v]`` (default ``v = 4``, :data:`LINEAR_VECTOR_SIZE`); when ``in`` is not a
  multiple of ``v`` the last run of each row is shorter (``in mod v`` weights). The per-set array
  has shape ``(out, ceil(in / v))``.
* ``kernel``: a Linear layer has no kernels; asking for it raises ``ValueError``.

Two functions move between weights and sets: :func:`group_reduce` reduces an elementwise array (for
instance ``|W|``) to one value per set, and :func:`expand_to_weight` broadcasts one value per set
(for instance a set mask) back to every weight of its set. Neither loops over elements.
"""

from __future__ import annotations

import numpy as np

from ..nn.validation import check_int

GRANULARITIES = ("element", "vector", "kernel", "channel", "input_channel", "nm")
"""Valid granularity names, from fine-grained to coarse; ``"nm"`` is the N:M pattern."""

LINEAR_VECTOR_SIZE = 4
"""Default length of a "vector" set of a Linear weight (a run along the input dimension)."""

_REDUCERS = {
    "sum": np.add,
    "max": np.maximum,
    "min": np.minimum,
    "any": np.logical_or,
    "all": np.logical_and,
}


def check_granularity(granularity) -> str:
    """Return ``granularity`` if it is one of :data:`GRANULARITIES`, else raise ValueError."""
    if not isinstance(granularity, str) or granularity not in GRANULARITIES:
        raise ValueError(f"granularity: expected one of {GRANULARITIES}, got {granularity!r}")
    return granularity


def layer_type(shape) -> str:
    """``"Linear"`` for a 2-D weight shape, ``"Conv2d"`` for 4-D, else ValueError."""
    shape = tuple(shape)
    if len(shape) == 2:
        return "Linear"
    if len(shape) == 4:
        return "Conv2d"
    raise ValueError(f"weight: expected a Linear (out, in) or Conv2d (C_out, C_in, KH, KW) "
                     f"weight, got shape {shape} ({len(shape)}-D)")


def _vector_size(shape, vector_size) -> int:
    """The run length of a "vector" set for a weight of ``shape`` (KW for conv)."""
    if vector_size is not None:
        vector_size = check_int(vector_size, "vector_size", minimum=1)
    if layer_type(shape) == "Conv2d":
        if vector_size is not None and vector_size != shape[3]:
            raise ValueError(f"vector_size: a Conv2d vector is one kernel row of length "
                             f"KW={shape[3]}; expected None or {shape[3]}, got {vector_size}")
        return int(shape[3])
    return LINEAR_VECTOR_SIZE if vector_size is None else int(vector_size)


def set_shape(weight_shape, granularity, *, vector_size=None) -> tuple:
    """Shape of the per-set array of a weight of ``weight_shape`` (see the module table).

    Raises
    ------
    ValueError
        Unknown granularity, ``"kernel"`` on a Linear weight, or a structured granularity on a
        weight that is neither 2-D nor 4-D.
    """
    granularity = check_granularity(granularity)
    shape = tuple(int(s) for s in weight_shape)
    if granularity in ("element", "nm"):
        return shape
    kind = layer_type(shape)
    if granularity == "channel":
        return (shape[0],)
    if granularity == "input_channel":
        return (shape[1],)
    if granularity == "kernel":
        if kind == "Linear":
            raise ValueError(f"granularity: 'kernel' needs a Conv2d weight (C_out, C_in, KH, KW); "
                             f"a Linear layer has no kernels (got weight shape {shape})")
        return shape[:2]
    v = _vector_size(shape, vector_size)  # granularity == "vector"
    if kind == "Conv2d":
        return shape[:3]
    return (shape[0], -(-shape[1] // v))


def group_reduce(values, granularity, *, reduce="sum", vector_size=None) -> np.ndarray:
    r"""Reduce an elementwise array to one value per structural set.

    ``out[s] = reduce_{i in S_s} values[i]``; e.g. with ``reduce="sum"`` on ``|W|`` this is the
    L1 importance of the slide, :math:`\sum_{i \in S} |w_i|`.

    Parameters
    ----------
    values : ndarray, shape like the weight, ``(out, in)`` or ``(C_out, C_in, KH, KW)``
        (any shape for ``"element"``/``"nm"``).
    granularity : str
        One of :data:`GRANULARITIES`.
    reduce : {"sum", "max", "min", "any", "all"}
        The reduction over each set (``"any"``/``"all"`` for boolean masks).
    vector_size : int, optional
        Run length of a Linear "vector" set (default :data:`LINEAR_VECTOR_SIZE`); for a Conv2d
        weight it must be None or KW.

    Returns
    -------
    ndarray, shape :func:`set_shape` ``(values.shape, granularity)``
        A new array (never a view of ``values``).
    """
    values = np.asarray(values)
    if reduce not in _REDUCERS:
        raise ValueError(f"reduce: expected one of {tuple(_REDUCERS)}, got {reduce!r}")
    ufunc = _REDUCERS[reduce]
    set_shape(values.shape, granularity, vector_size=vector_size)  # validates the combination
    if granularity in ("element", "nm"):
        return values.copy()
    nd = values.ndim
    if granularity == "channel":
        return ufunc.reduce(values.reshape(values.shape[0], -1), axis=1)  # (out,)
    if granularity == "input_channel":
        axes = (0,) + tuple(range(2, nd))
        return ufunc.reduce(values, axis=axes)  # (in,)
    if granularity == "kernel":
        return ufunc.reduce(values, axis=(2, 3))  # (C_out, C_in)
    if nd == 4:  # vector, Conv2d: one run along KW per (o, i, kh)
        return ufunc.reduce(values, axis=3)  # (C_out, C_in, KH)
    v = _vector_size(values.shape, vector_size)  # vector, Linear: runs of v along `in`
    starts = np.arange(0, values.shape[1], v)
    return ufunc.reduceat(values, starts, axis=1)  # (out, ceil(in / v)) == out_shape


def expand_to_weight(set_values, granularity, weight_shape, *, vector_size=None) -> np.ndarray:
    """Broadcast one value per structural set to every weight of the set.

    ``out[i] = set_values[s(i)]`` where ``s(i)`` is the set holding weight ``i``; the inverse of
    :func:`group_reduce` for values that are constant over each set.

    Parameters
    ----------
    set_values : ndarray, shape :func:`set_shape` ``(weight_shape, granularity)``
        Typically a boolean set mask (True = set kept).
    granularity : str
        One of :data:`GRANULARITIES`.
    weight_shape : tuple of int
        ``(out, in)`` or ``(C_out, C_in, KH, KW)``.
    vector_size : int, optional
        As in :func:`group_reduce`.

    Returns
    -------
    ndarray, shape ``weight_shape``, dtype of ``set_values``
        A new contiguous array, constant over each set.
    """
    set_values = np.asarray(set_values)
    shape = tuple(int(s) for s in weight_shape)
    expected = set_shape(shape, granularity, vector_size=vector_size)
    if set_values.shape != expected:
        raise ValueError(f"set_values: expected shape {expected} for granularity "
                         f"{granularity!r} and weight shape {shape}, got {set_values.shape}")
    if granularity in ("element", "nm"):
        return set_values.copy()
    nd = len(shape)
    if granularity == "channel":
        view = set_values.reshape((shape[0],) + (1,) * (nd - 1))
    elif granularity == "input_channel":
        view = set_values.reshape((1, shape[1]) + (1,) * (nd - 2))
    elif granularity == "kernel":
        view = set_values[:, :, None, None]
    elif nd == 4:  # vector, Conv2d
        view = set_values[..., None]
    else:  # vector, Linear: repeat each run value over its (possibly shorter, last) run
        v = _vector_size(shape, vector_size)
        lengths = np.full(set_values.shape[1], v)
        lengths[-1] = shape[1] - v * (set_values.shape[1] - 1)
        return np.repeat(set_values, lengths, axis=1)  # (out, in)
    return np.broadcast_to(view, shape).copy()  # a new, writable, contiguous array
