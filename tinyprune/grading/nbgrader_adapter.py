"""nbgrader adapter: a source notebook whose autograded test cells call :func:`.notebook.check`.

:func:`nbgrader_notebook` builds the instructor's version of an exercise: a prompt, the solution
cell between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers (``nbgrader
generate_assignment`` replaces it by ``raise NotImplementedError()`` in the student version), and
one autograded, locked test cell per case group worth that group's points (partial credit), each
``check(assignment, group)``. :func:`write_course` lays out a course directory
(``nbgrader_config.py``, ``source/<assignment_id>/<name>.ipynb``).

Facts the pipeline depends on: the grading kernel must have numpy and tinyprune installed (else
every student scores 0 with exit status 0); nbgrader runs ``alembic`` as a subprocess (its bin
directory must be on PATH); ``gradebook.db`` must survive between ``generate_assignment`` and
``autograde``; ``autograde`` exits 0 whatever the scores (read them from the gradebook).
"""

from __future__ import annotations

from pathlib import Path

from .cases import get_assignment

__all__ = ["nbgrader_cell_metadata", "nbgrader_notebook", "nbgrader_test_source", "write_course"]


def nbgrader_cell_metadata(grade_id, *, grade=False, solution=False, locked=False,
                           points=None) -> dict:
    """A cell's ``metadata`` for nbgrader (schema 3): a solution, autograded test or locked cell."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def nbgrader_test_source(assignment: str, group: str) -> str:
    """An autograded test cell's source: ``check(assignment, group)`` (fails by AssertionError)."""
    return f"from tinyprune.grading.notebook import check\ncheck({assignment!r}, {group!r})"


def nbgrader_notebook(assignment, solution: str, *, prompt: str = ""):
    """The nbgrader source notebook of ``assignment`` with ``solution`` as the model answer.

    Parameters
    ----------
    assignment : str
        A name in :data:`~.cases.ASSIGNMENTS`.
    solution : str
        Python source defining the function (it goes between the solution markers).
    prompt : str
        Markdown shown above the solution cell (default: the assignment's description).

    Returns
    -------
    nbformat.NotebookNode (version 4)
    """
    import nbformat  # lazily: only the adapters need it

    a = get_assignment(assignment)
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell(prompt or f"Write `{a.description}`",
                             metadata=nbgrader_cell_metadata("prompt", locked=True)),
        v4.new_code_cell(f"### BEGIN SOLUTION\n{solution.strip()}\n### END SOLUTION",
                         metadata=nbgrader_cell_metadata(f"{a.name}_solution", solution=True)),
    ]
    for i, g in enumerate(a.groups):
        src = nbgrader_test_source(a.name, g.name)
        meta = nbgrader_cell_metadata(f"{a.name}_test_{i}", grade=True, locked=True,
                                      points=g.points)
        cells.append(v4.new_code_cell(src, metadata=meta))
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def write_course(root, assignment_id: str, notebooks: dict, *, timeout: int = 120) -> Path:
    """Write an nbgrader course directory: ``nbgrader_config.py`` and the source notebooks.

    Parameters
    ----------
    root : str or Path
        The course directory (created).
    assignment_id : str
        nbgrader's assignment name (``source/<assignment_id>/``).
    notebooks : dict[str, NotebookNode]
        File stem -> source notebook (from :func:`nbgrader_notebook`).
    timeout : int
        Seconds nbgrader allows each cell.

    Returns
    -------
    Path -- ``root``.
    """
    import nbformat

    root = Path(root)
    src = root / "source" / assignment_id
    src.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821 - provided by nbgrader\n"
        "c.CourseDirectory.root = __file__.rsplit('/', 1)[0]\n"
        f"c.CourseDirectory.db_assignments = [dict(name={assignment_id!r})]\n"
        f"c.ExecutePreprocessor.timeout = {int(timeout)}\n", encoding="utf-8")
    for stem, nb in notebooks.items():
        nbformat.write(nb, str(src / f"{stem}.ipynb"))
    return root
