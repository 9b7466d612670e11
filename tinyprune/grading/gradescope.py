"""Gradescope adapter: ``results.json`` in Gradescope's autograder schema, and ``run_autograder``.

Gradescope runs ``/autograder/run_autograder`` with the student's files in
``/autograder/submission`` and reads ``/autograder/results/results.json``: top level ``score``,
``execution_time``, ``output``, ``visibility``, ``stdout_visibility``, ``tests``; each test has
``name``, ``score``, ``max_score``, ``status``, ``output``, ``visibility``, ``tags``, ``number``.
One test per case group (partial credit within a group); the whole feedback is the top-level
output. :data:`RUN_AUTOGRADER_TEMPLATE` is the shell script to upload (:func:`write_run_autograder`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from pathlib import Path

from .cases import get_assignment
from .result import GradeResult, format_case
from .submission import grade_file, unloadable

__all__ = ["RUN_AUTOGRADER_TEMPLATE", "run_autograder", "to_gradescope", "write_run_autograder"]

RUN_AUTOGRADER_TEMPLATE = """#!/usr/bin/env bash
# Gradescope autograder for the tinyprune assignment '{assignment}'.
# Gradescope runs this file as /autograder/run_autograder; the image needs numpy and tinyprune
# (setup.sh: pip install tinyprune). AUTOGRADER_ROOT replaces /autograder (for a local test).
python3 -m tinyprune.grading {assignment} --root "${{AUTOGRADER_ROOT:-/autograder}}"{file_arg}
"""


def _group_output(group) -> str:
    head = group.description or group.name
    lines = [f"{head}: {group.passed}/{group.total} cases passed"]
    first = group.first_failure()
    if first is not None:
        lines += ["", format_case(first)]
    return "\n".join(lines)


def to_gradescope(result: GradeResult, *, visibility: str = "visible") -> dict:
    """``result`` as a Gradescope ``results.json`` dict (one test per case group)."""
    tests = []
    for i, g in enumerate(result.groups, start=1):
        tests.append({
            "name": f"{result.assignment}: {g.name}",
            "score": round(g.score, 6),
            "max_score": g.points,
            "status": "passed" if g.passed == g.total else "failed",
            "output": _group_output(g),
            "visibility": visibility,
            "tags": [result.assignment],
            "number": str(i),
        })
    return {
        "score": round(result.score, 6),
        "execution_time": max(1, round(result.execution_time)),
        "output": result.format_text(),
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _find_submission(submission_dir: Path, filename, function: str) -> Path:
    if filename:
        return submission_dir / filename
    found = sorted(p for p in submission_dir.iterdir() if p.suffix in (".py", ".ipynb"))
    if len(found) > 1:  # prefer a file named after the function
        named = [p for p in found if p.stem == function]
        found = named or found
    if len(found) != 1:
        raise FileNotFoundError(f"expected one .py or .ipynb file in {submission_dir}, found "
                                f"{[p.name for p in found]} (name it {function}.py or .ipynb)")
    return found[0]


def run_autograder(assignment, *, submission_dir="/autograder/submission",
                   results_dir="/autograder/results", filename=None, timeout: float = 2.0,
                   load_timeout: float = 20.0, visibility: str = "visible") -> dict:
    """Grade the submission in ``submission_dir`` and write ``results_dir/results.json``.

    Parameters
    ----------
    assignment : str
        A name in :data:`~.cases.ASSIGNMENTS`.
    submission_dir, results_dir : str or Path
        Gradescope's ``/autograder/submission`` and ``/autograder/results`` by default.
    filename : str, optional
        The file to grade; by default the only .py/.ipynb file (or the one named after the
        assignment's function).
    timeout, load_timeout : float
        Seconds per case, and for loading the file.
    visibility : str
        Gradescope visibility of the tests and the score ("visible", "after_due_date", ...).

    Returns
    -------
    dict -- what was written to results.json. Problems with the submission are reported there
    (score 0), never raised.
    """
    start = time.perf_counter()
    a = get_assignment(assignment)
    try:
        path = _find_submission(Path(submission_dir), filename, a.function)
        result = grade_file(path, a, timeout=timeout, load_timeout=load_timeout)
    except (OSError, ValueError) as exc:
        result = unloadable(a, str(exc))
    result.execution_time = time.perf_counter() - start
    data = to_gradescope(result, visibility=visibility)
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, out / "results.json")
    return data


def write_run_autograder(path, assignment, *, filename=None) -> Path:
    """Write the ``run_autograder`` shell script for ``assignment`` (executable) to ``path``."""
    a = get_assignment(assignment)
    path = Path(path)
    file_arg = f" --filename {shlex.quote(filename)}" if filename else ""
    path.write_text(RUN_AUTOGRADER_TEMPLATE.format(assignment=a.name, file_arg=file_arg),
                    encoding="utf-8")
    path.chmod(0o755)
    return path


def main(argv=None) -> int:
    """``python -m tinyprune.grading ASSIGNMENT [--root DIR] [--filename F]``: grade
    ``DIR/submission`` into ``DIR/results/results.json`` (what run_autograder scripts call)."""
    parser = argparse.ArgumentParser(prog="python -m tinyprune.grading")
    parser.add_argument("assignment")
    parser.add_argument("--root", default="/autograder")
    parser.add_argument("--filename", default=None)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    root = Path(args.root)
    run_autograder(args.assignment, submission_dir=root / "submission",
                   results_dir=root / "results", filename=args.filename, timeout=args.timeout)
    return 0
