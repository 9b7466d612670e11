"""Shared input checks for the engine.

Every public function in tinyprune validates its inputs with these helpers so that a mistake
raises a ``ValueError`` / ``TypeError`` whose message names the argument, the expected value and
the actual value, instead of a NumPy traceback from deep inside a kernel.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_array(x, name: str, *, ndim: int | None = None, finite: bool = False,
                      nonempty: bool = False):
    """Return ``x`` unchanged after checking it is a float32/float64 ndarray.

    Parameters
    ----------
    x : object
        The value to check.
    name : str
        Name used in the error message (an argument or a layer name).
    ndim : int, optional
        Required number of dimensions.
    finite : bool
        Also reject NaN and infinity (costs one pass over ``x``); the message gives the first
        offending index.
    nonempty : bool
        Also reject arrays with a zero-length dimension (``(0, n)``, ``(n, 0)``).

    Raises
    ------
    TypeError
        If ``x`` is not a NumPy array or its dtype is not float32/float64.
    ValueError
        If the number of dimensions is wrong, (with ``nonempty``) ``x`` is empty or (with
        ``finite``) a value is NaN/inf.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name}: expected dtype float32 or float64, got {x.dtype} "
            f"(convert with .astype(np.float32))"
        )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {x.shape}")
    if nonempty and x.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {x.shape}")
    if finite and not np.isfinite(x).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(f"{name}: expected finite values (no NaN or infinity), found {x[first]} "
                         f"at index {first}")
    return x


def check_real(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
               exclusive_minimum: bool = False, exclusive_maximum: bool = False) -> float:
    """Return ``value`` as a finite Python float after checking its type and range.

    ``minimum <= value <= maximum`` (strict with ``exclusive_minimum`` / ``exclusive_maximum``);
    NaN and infinity are always rejected.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        op = ">" if exclusive_minimum else ">="
        raise ValueError(f"{name}: expected a number {op} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if exclusive_maximum else value > maximum):
        op = "<" if exclusive_maximum else "<="
        raise ValueError(f"{name}: expected a number {op} {maximum}, got {value}")
    return value


def check_int(value, name: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """Return ``value`` as a Python int after checking its type and bounds (both inclusive)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected an integer <= {maximum}, got {value}")
    return value


def check_pair(value, name: str, *, minimum: int) -> tuple[int, int]:
    """Accept an int or a pair of ints (``kernel_size=3`` or ``(3, 3)``); return a pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
        return (check_int(value[0], name, minimum=minimum), check_int(value[1], name, minimum=minimum))
    v = check_int(value, name, minimum=minimum)
    return (v, v)


def check_probability(value, name: str, *, allow_one: bool = False) -> float:
    """Check ``0 <= value < 1`` (or ``<= 1`` with ``allow_one``) and return it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if not (value >= 0.0 and upper_ok):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name}: expected a probability in {bound}, got {value}")
    return value


def as_generator(rng, name: str = "rng") -> np.random.Generator:
    """Turn ``rng`` (a Generator or an int seed) into a ``np.random.Generator``.

    ``None`` is rejected: tinyprune never draws from hidden global state.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{name}: expected a numpy.random.Generator or an int seed, got {rng!r}"
    )
