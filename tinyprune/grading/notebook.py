"""Checks called from inside a notebook: nbgrader test cells, Otter tests, students' self-checks.

``check("nm_mask")`` in a Jupyter kernel grades the code the kernel has run so far: the inputs of
the executed cells (``In``), except the test cells (those calling :func:`check` or mentioning
tinyprune, otter or Otter's ``grader.check``; the student's code may not import tinyprune's
answers anyway), are executed again in a worker process and graded like a file
(:func:`~.grader.grade_source`), so an infinite loop or a crash in the student's function cannot
hang or kill the kernel. Outside IPython the file defining ``func`` is graded.

A check raises ``AssertionError`` with the feedback unless the (group's) cases all pass: that is
how nbgrader and Otter's assert-style tests see a failure. One test cell per case group gives
partial credit (``check("nm_mask", group="generated")``); the grading run is cached per source,
so several group cells cost one run.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path

from .cases import get_assignment
from .grader import grade_source
from .result import GradeResult, format_case
from .submission import is_check_cell, load_source

__all__ = ["check", "kernel_source"]

_CACHE: dict[tuple[str, str], GradeResult] = {}


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def kernel_source() -> str | None:
    """The source of the cells this IPython kernel has run, in order, or None outside IPython.

    Left out: check cells (:func:`~tinyprune.grading.submission.is_check_cell`) and cells
    calling :func:`check` under any name the kernel has for it (the test cells). Lines calling
    IPython (magics, ``!`` commands, which IPython has turned into ``get_ipython()...`` calls)
    are commented out.
    """
    ip = _ipython()
    if ip is None or "In" not in ip.user_ns:
        return None
    names = [k for k, v in ip.user_ns.items() if v is check and k.isidentifier()]
    calls = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\s*\(") if names else None
    cells = [c for c in ip.user_ns["In"][1:]
             if not is_check_cell(c) and not (calls and calls.search(c))]
    lines = [f"# [not run by the grader] {line}" if "get_ipython()" in line else line
             for c in cells for line in c.splitlines()]
    return "\n".join(lines) + "\n"


def _source_of(func) -> tuple[str, str]:
    if func is not None:
        path = Path(inspect.getsourcefile(func) or "")
        if path.is_file() and path.suffix in (".py", ".ipynb"):
            return load_source(path), str(path)
    source = kernel_source()
    if source is None:
        raise RuntimeError("check: not in an IPython kernel; pass func= a function defined in "
                           "a .py file, or use tinyprune.grading.grade on the file")
    return source, "notebook"


def _group_feedback(result: GradeResult, group) -> str:
    lines = [f"{result.assignment} / {group.name}: {group.passed}/{group.total} cases passed, "
             f"{group.score:.4g}/{group.points:.4g} points"]
    if result.load_error:
        lines.append("your code could not be loaded:\n" + result.load_error)
    first = group.first_failure()
    if first is not None and not result.load_error:
        lines += ["", format_case(first)]
    if first is not None and result.diagnoses:
        lines += ["", "Probable mistake: " + "; ".join(d.message for d in result.diagnoses)]
    return "\n".join(lines)


def check(assignment, group: str | None = None, *, func=None, timeout: float = 2.0,
          quiet: bool = False) -> GradeResult:
    """Grade the notebook's (or ``func``'s file's) implementation of ``assignment``.

    Parameters
    ----------
    assignment : str
        A name in :data:`~.cases.ASSIGNMENTS`.
    group : str, optional
        Only this case group must pass (one test cell per group = partial credit).
    func : callable, optional
        Outside IPython: a function whose source file is graded.
    timeout : float
        Seconds per case.
    quiet : bool
        Do not print the feedback.

    Returns
    -------
    GradeResult

    Raises
    ------
    AssertionError
        With the feedback, when a case (of ``group``) fails.
    """
    a = get_assignment(assignment)
    groups = [g.name for g in a.groups]
    if group is not None and group not in groups:
        raise ValueError(f"group: expected one of {groups} for {a.name!r}, got {group!r}")
    source, filename = _source_of(func)
    key = (a.name, hashlib.sha256(source.encode()).hexdigest())
    if key not in _CACHE:
        _CACHE[key] = grade_source(source, a, filename=filename, timeout=timeout)
    result = _CACHE[key]
    if group is None:
        text, ok = result.format_text(), result.score == result.max_score
    else:
        g = result.groups[groups.index(group)]
        text, ok = _group_feedback(result, g), g.passed == g.total
    if not quiet:
        print(text)
    if not ok:
        raise AssertionError(text)
    return result
