"""What an assignment is: cases in groups with points, a reference, a comparison, known mistakes.

An :class:`Assignment` names the function a student writes (``function``), its arguments
(``arg_names``), the tinyprune reference with the same signature, and :class:`CaseGroup` s of
:class:`Case` s worth ``points`` each (partial credit: a group scores
``points * passed / total``). ``compare(expected, got)`` returns None when ``got`` is right,
otherwise a message. Each :class:`Mistake` is a known-wrong variant of the reference: when a
student's outputs equal a variant's on the failed cases, the feedback names the mistake.

Cases are generated with NumPy generators seeded by fixed integers (:func:`seeded`), so every run
grades the same inputs, and expected values are computed by the reference at grading time.

Adding an assignment is one call to :func:`register` (see :mod:`.checks_prune`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ASSIGNMENTS", "Assignment", "Case", "CaseGroup", "Mistake", "check_array",
           "get_assignment", "register", "seeded", "summarize"]


@dataclass(frozen=True)
class Case:
    """One call of the student's function: ``function(*args)``; ``note`` says what it tests."""

    name: str
    args: tuple
    note: str = ""


@dataclass(frozen=True)
class CaseGroup:
    """Cases graded together; worth ``points`` (partial credit per passed case)."""

    name: str
    points: float
    cases: Callable[[], list[Case]]  # built lazily, deterministic
    description: str = ""


@dataclass(frozen=True)
class Mistake:
    """A known-wrong variant of the reference, with the feedback to give when it matches.

    ``variant`` has the reference's signature (or is a tuple of such functions: the same mistake
    made in several ways); it may raise (e.g. a shape that does not fit), in which case it
    explains nothing for that case.
    """

    key: str
    message: str
    variant: Callable | tuple[Callable, ...]

    @property
    def variants(self) -> tuple[Callable, ...]:
        return self.variant if isinstance(self.variant, tuple) else (self.variant,)


@dataclass(frozen=True)
class Assignment:
    """A graded function: see the module docstring."""

    name: str
    function: str
    arg_names: tuple[str, ...]
    reference: Callable
    groups: tuple[CaseGroup, ...]
    compare: Callable[[object, object], str | None]
    mistakes: tuple[Mistake, ...] = ()
    description: str = ""
    forbidden_modules: tuple[str, ...] = ("tinyprune",)

    @property
    def max_score(self) -> float:
        return float(sum(g.points for g in self.groups))


ASSIGNMENTS: dict[str, Assignment] = {}
"""Registered assignments by name (filled when :mod:`tinyprune.grading` is imported)."""


def register(assignment: Assignment) -> Assignment:
    """Add ``assignment`` to :data:`ASSIGNMENTS` (its name must be new) and return it."""
    if not isinstance(assignment, Assignment):
        raise TypeError(f"assignment: expected an Assignment, got {type(assignment).__name__}")
    if assignment.name in ASSIGNMENTS:
        raise ValueError(f"assignment: the name {assignment.name!r} is already registered")
    ASSIGNMENTS[assignment.name] = assignment
    return assignment


def get_assignment(name) -> Assignment:
    """The registered :class:`Assignment` called ``name`` (or ``name`` itself if it is one)."""
    if isinstance(name, Assignment):
        return name
    if name not in ASSIGNMENTS:
        raise ValueError(f"assignment: expected one of {sorted(ASSIGNMENTS)}, got {name!r}")
    return ASSIGNMENTS[name]


def seeded(seed: int) -> np.random.Generator:
    """The generator of one generated case: ``np.random.default_rng(seed)`` with a fixed seed."""
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------ summaries
def summarize(value, *, limit: int = 24) -> str:
    """A short human-readable description of an argument or a result."""
    if isinstance(value, np.ndarray):
        head = f"{value.dtype} array of shape {value.shape}"
        if value.size <= limit:
            body = np.array2string(value, threshold=limit, precision=4, separator=", ")
            return f"{head}: {' '.join(body.split())}"  # one line
        return head
    if isinstance(value, tuple | list):
        inner = ", ".join(summarize(v, limit=limit) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {summarize(v, limit=limit)}" for k, v in value.items()) + "}"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


# ------------------------------------------------------------------------------ comparison
def _tolerance(dtype) -> tuple[float, float]:
    return (1e-5, 1e-6) if dtype == np.float32 else (1e-10, 1e-12)


def check_array(got, expected: np.ndarray, name: str = "the result", *, exact=False) -> str | None:
    """None if ``got`` is an ndarray equal to ``expected``, else a message saying how it differs.

    The dtype and shape must match exactly. Float arrays must be NaN-free and close to
    ``expected`` (relative 1e-5 for float32, 1e-10 for float64, absolute tolerance scaled by
    ``max|expected|``) unless ``exact``; other dtypes must be equal.
    """
    if not isinstance(got, np.ndarray):
        return f"{name}: expected a numpy.ndarray, got {type(got).__name__}"
    if got.dtype != expected.dtype:
        return f"{name}: expected dtype {expected.dtype}, got {got.dtype}"
    if got.shape != expected.shape:
        return f"{name}: expected shape {expected.shape}, got {got.shape}"
    if got.dtype.kind == "f":
        nan = np.isnan(got)
        if nan.any() and not np.isnan(expected).any():
            first = tuple(int(i) for i in np.argwhere(nan)[0])
            return f"{name}: contains NaN (first at index {first})"
        if exact:
            wrong = ~((got == expected) | (nan & np.isnan(expected)))
        else:
            rtol, atol = _tolerance(got.dtype)
            scale = float(np.max(np.abs(expected[np.isfinite(expected)]), initial=1.0))
            wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol * scale, equal_nan=True)
    else:
        wrong = got != expected
    if wrong.any():
        idx = np.argwhere(wrong)
        first = tuple(int(i) for i in idx[0])
        return (f"{name}: {len(idx)} of {got.size} entries differ; first at index {first}: "
                f"expected {expected[first]!r}, got {got[first]!r}")
    return None


def check_tuple(got, expected: tuple, names: tuple[str, ...]) -> str | None:
    """:func:`check_array` on each member of a tuple result (``names`` name the members)."""
    if not isinstance(got, tuple | list):
        return f"the result: expected a tuple {tuple(names)}, got {type(got).__name__}"
    if len(got) != len(expected):
        return f"the result: expected a tuple of {len(expected)} ({', '.join(names)}), " \
               f"got {len(got)} values"
    for g, e, n in zip(got, expected, names, strict=True):
        msg = check_array(g, e, n)
        if msg:
            return msg
    return None
