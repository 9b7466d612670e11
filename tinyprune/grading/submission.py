"""Submissions as files: a .py module or an .ipynb notebook (its code cells, run in the worker).

:func:`grade` is what ``tinyprune grade submission.(py|ipynb) --assignment NAME --format ...``
calls. A file that cannot be read is graded 0 with the reason, never an exception.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .cases import get_assignment
from .grader import grade_source
from .result import GradeResult, GroupResult

__all__ = ["CHECK_CELL_PATTERN", "FORMATS", "grade", "grade_file", "is_check_cell", "load_source"]

FORMATS = ("text", "json", "gradescope")


CHECK_CELL_PATTERN = re.compile(
    r"^\s*(?:from|import)\s+(?:tinyprune|otter)\b"  # imports tinyprune's checks or Otter
    r"|\bgrader\s*\.\s*check(?:_all)?\s*\(",       # runs Otter's tests
    re.M)
"""A code cell matching this is a test or self-check cell (it imports tinyprune's checks or
Otter, or runs ``grader.check``), not the student's answer: the grader leaves it out. Only
statements count: a comment or a string that merely mentions tinyprune does not."""


def is_check_cell(source: str) -> bool:
    """Whether a notebook cell's ``source`` is a check cell (see :data:`CHECK_CELL_PATTERN`)."""
    return CHECK_CELL_PATTERN.search(source) is not None


def _notebook_source(path: Path) -> str:
    """The notebook's code cells joined, IPython magics and shell lines commented out; check
    cells (:func:`is_check_cell`: they import tinyprune, which the worker forbids) are left out."""
    import nbformat  # lazily: only notebooks need it

    nb = nbformat.read(str(path), as_version=4)
    parts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_check_cell(cell.source):
            parts.append(f"# %% cell {i}: a check cell, not run by the grader")
            continue
        lines = [f"# [not run by the grader] {line}" if line.lstrip().startswith(("%", "!")) else line
                 for line in cell.source.splitlines()]
        parts.append(f"# %% cell {i}\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def load_source(path) -> str:
    """The Python source of a submission: a .py file's text, or an .ipynb's code cells.

    Raises
    ------
    ValueError
        The suffix is neither .py nor .ipynb.
    OSError, nbformat errors
        The file cannot be read (:func:`grade_file` turns these into a 0 grade).
    """
    path = Path(path)
    if path.suffix == ".py":
        return path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        return _notebook_source(path)
    raise ValueError(f"submission_path: expected a .py or .ipynb file, got {str(path)!r}")


def unloadable(assignment, reason: str) -> GradeResult:
    """A 0 grade for a submission that could not even be read, with every group listed."""
    a = get_assignment(assignment)
    groups = [GroupResult(g.name, float(g.points), 0.0, 0, len(g.cases()), g.description)
              for g in a.groups]
    return GradeResult(a.name, a.function, 0.0, a.max_score, groups, load_error=reason)


def grade_file(submission_path, assignment, *, timeout: float = 2.0,
               load_timeout: float = 20.0) -> GradeResult:
    """Grade a .py or .ipynb submission (executed only in the worker process).

    Parameters
    ----------
    submission_path : str or Path
    assignment : str or Assignment
    timeout, load_timeout : float
        Seconds per case, and for running the file's top level (notebook cells included).
    """
    a = get_assignment(assignment)
    path = Path(submission_path)
    if path.suffix not in (".py", ".ipynb"):
        raise ValueError(f"submission_path: expected a .py or .ipynb file, got {str(path)!r}")
    try:
        source = load_source(path)
    except Exception as exc:  # noqa: BLE001 - unreadable file or notebook: a 0 grade, said why
        return unloadable(a, f"cannot read {path.name}: {type(exc).__name__}: {exc}")
    return grade_source(source, a, filename=str(path), timeout=timeout, load_timeout=load_timeout)


def grade(submission_path, assignment, format: str = "text", *, timeout: float = 2.0,  # noqa: A002
          load_timeout: float = 20.0) -> str:
    """Grade a submission file and render the result.

    Parameters
    ----------
    submission_path : str or Path
        A .py file or an .ipynb notebook defining the assignment's function.
    assignment : str
        A name in :data:`~.cases.ASSIGNMENTS`.
    format : {"text", "json", "gradescope"}
        Feedback text, ``GradeResult.to_dict()`` as JSON, or Gradescope's results.json.
    timeout, load_timeout : float
        As in :func:`grade_file`.

    Returns
    -------
    str
    """
    if format not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, got {format!r}")
    result = grade_file(submission_path, assignment, timeout=timeout, load_timeout=load_timeout)
    if format == "text":
        return result.format_text()
    if format == "json":
        return json.dumps(result.to_dict(), indent=2)
    from .gradescope import to_gradescope

    return json.dumps(to_gradescope(result), indent=2)
