"""Shared helpers of the figures: lazy matplotlib, new-or-given axes, input checks."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from ..nn.validation import check_real


def pyplot():
    """``matplotlib.pyplot``, imported only when a figure is drawn (matplotlib is optional)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is installed in CI
        raise ImportError("tinyprune.viz needs matplotlib: pip install matplotlib") from exc
    return plt


def check_ax(ax, name: str = "ax"):
    """Return ``ax`` if it is None or a matplotlib Axes, else raise TypeError."""
    if ax is None:
        return None
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"{name}: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def new_or_given(ax, figsize):
    """``(fig, ax)``: a new figure of ``figsize``, or the figure holding the given ``ax``."""
    check_ax(ax)
    if ax is None:
        fig, ax = pyplot().subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def real_array(values, name: str, *, ndim=None, nonempty=True, finite=True,
               allow_nan=False) -> np.ndarray:
    """``values`` (a sequence or an array of real numbers) as a new float64 array, checked.

    ``ndim`` may be an int or a tuple of allowed dimensions; NaN is accepted with ``allow_nan``
    (a missing point), infinity never.
    """
    if isinstance(values, (str, bytes, Mapping)) or values is None:
        raise TypeError(f"{name}: expected an array or a sequence of numbers, got "
                        f"{type(values).__name__}")
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected an array or a sequence of numbers, got "
                        f"{type(values).__name__}") from None
    if isinstance(values, np.ndarray) and values.dtype == np.bool_:
        raise TypeError(f"{name}: expected numbers, got a boolean array")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name}: expected a {want} array, got shape {arr.shape}")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name}: expected at least one value, got shape {arr.shape}")
    if finite:
        bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"{name}: expected finite values, got {arr[bad][0]}")
    return arr


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def check_str(value, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def optional_real(value, name: str, **kw):
    return None if value is None else check_real(value, name, **kw)
