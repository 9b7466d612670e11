"""Grade a submission's source against an assignment: run the cases, score, diagnose mistakes.

For each case (in group order) the student's function runs in the :class:`~.runner.Sandbox`;
the reference runs here on the same inputs. A case fails when the function raises, times out,
kills its process, returns a value ``compare`` rejects (type, shape, dtype, NaN, values), or
modifies an input array. Nothing the student does raises in the grader.

Diagnosis: every :class:`~.cases.Mistake` variant is run on the failed cases where the student
returned a value; a mistake is reported when the student's result equals the variant's (and the
variant's differs from the reference) on at least half of them, most-explaining first, with the
cases listed, unless the variant fails a case the student passed (then the student did not make
that mistake). A single coincidental match is not a diagnosis. Modified inputs are diagnosed
directly.
"""

from __future__ import annotations

import time

import numpy as np

from .cases import Assignment, Case, get_assignment, summarize
from .result import CaseResult, Diagnosis, GradeResult, GroupResult
from .runner import Sandbox

__all__ = ["grade_source"]

MUTATION_KEY = "modifies_input"


def _same(a, b) -> bool:
    """Structural equality for arguments (arrays compared by dtype, shape and values)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f")))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b) if type(a) is type(b) else False


def _mutated(args: tuple, after: tuple, names: tuple[str, ...]) -> list[str]:
    return [names[i] if i < len(names) else f"argument {i + 1}"
            for i, (a, b) in enumerate(zip(args, after, strict=True)) if not _same(a, b)]


def _contradicts(assignment: Assignment, variant, case: Case) -> bool:
    """True if ``variant`` gives a wrong answer on ``case``, which the student got right."""
    try:
        return assignment.compare(assignment.reference(*case.args), variant(*case.args)) is not None
    except Exception:  # noqa: BLE001 - a variant that cannot run here says nothing
        return False


def _explains(assignment: Assignment, variant, case: Case, got) -> bool:
    try:
        wrong = variant(*case.args)
    except Exception:  # noqa: BLE001 - a variant that cannot run on this case explains nothing
        return False
    try:
        return assignment.compare(wrong, got) is None and assignment.compare(
            wrong, assignment.reference(*case.args)) is not None
    except Exception:  # noqa: BLE001
        return False


def _diagnose(assignment: Assignment, failed: list[tuple[Case, object]], passed: list[Case],
              mutated_cases: list[str]) -> list[Diagnosis]:
    found = []
    if mutated_cases:
        found.append(Diagnosis(MUTATION_KEY, "modifies its input in place: work on a copy "
                               "(np.array(w, copy=True)) or build a new array", mutated_cases,
                               len(failed)))
    for mistake in assignment.mistakes:
        variants = [v for v in mistake.variants
                    if not any(_contradicts(assignment, v, c) for c in passed)]
        hits = [c.name for c, got in failed
                if any(_explains(assignment, v, c, got) for v in variants)]
        if hits and 2 * len(hits) >= len(failed):
            found.append(Diagnosis(mistake.key, mistake.message, hits, len(failed)))
    return sorted(found, key=lambda d: -len(d.cases))


def _grade_case(assignment: Assignment, sandbox: Sandbox, case: Case, group: str):
    """(CaseResult, the student's value or None, output text, mutated?)."""
    expected = assignment.reference(*case.args)
    res = CaseResult(case.name, group, False, inputs=summarize(case.args), note=case.note,
                     expected=summarize(expected))
    out = sandbox.call(case.args)
    if out.kind != "ok":
        res.message = {"error": "your function raised an exception:\n",
                       "load": "the submission could not be loaded:\n"}.get(out.kind, "") + \
            out.message
        return res, None, out.output, False
    res.got = summarize(out.value)
    changed = _mutated(case.args, out.args_after, assignment.arg_names)
    problem = assignment.compare(expected, out.value)
    if changed:
        problem = (f"modified its input{'s' if len(changed) > 1 else ''} "
                   f"{', '.join(changed)} in place" + (f"; also {problem}" if problem else ""))
    res.passed = problem is None
    res.message = problem or ""
    return res, out.value, out.output, bool(changed)


def grade_source(source: str, assignment, *, filename: str = "submission.py", timeout: float = 2.0,
                 load_timeout: float = 20.0) -> GradeResult:
    """Grade the function ``assignment.function`` defined by ``source``.

    Parameters
    ----------
    source : str
        Python source of the submission (executed only in the worker process).
    assignment : str or Assignment
        A name from :data:`~.cases.ASSIGNMENTS`.
    filename : str
        Shown in tracebacks.
    timeout, load_timeout : float
        Seconds per case, and for executing the source.

    Returns
    -------
    GradeResult
    """
    assignment = get_assignment(assignment)
    if not isinstance(source, str):
        raise TypeError(f"source: expected a str, got {type(source).__name__}")
    start = time.perf_counter()
    groups, failed, passed, mutated, outputs = [], [], [], [], []
    load_error = ""
    with Sandbox(source, assignment.function, filename=filename, timeout=timeout,
                 load_timeout=load_timeout,
                 forbidden_modules=assignment.forbidden_modules) as box:
        for group in assignment.groups:
            cases = group.cases()
            results = []
            for case in cases:
                res, got, output, changed = _grade_case(assignment, box, case, group.name)
                results.append(res)
                if output:
                    outputs.append(f"[{group.name} / {case.name}] {output.strip()}")
                if not res.passed and got is not None:
                    failed.append((case, got))
                elif res.passed:
                    passed.append(case)
                if changed:
                    mutated.append(case.name)
            if box.load_error is not None:
                load_error = box.load_error.message
            n_ok = sum(r.passed for r in results)
            score = float(group.points) * n_ok / len(results) if results else 0.0
            groups.append(GroupResult(group.name, float(group.points), score, n_ok,
                                      len(results), group.description, results))
        output = "\n".join(([box.load_output.strip()] if box.load_output.strip() else []) + outputs)
    diagnoses = [] if load_error else _diagnose(assignment, failed, passed, mutated)
    return GradeResult(assignment.name, assignment.function, sum(g.score for g in groups),
                       assignment.max_score, groups, diagnoses, load_error, output[:4000],
                       time.perf_counter() - start)
