"""Otter-Grader adapter: a master notebook for ``otter assign`` whose tests call
:func:`.notebook.check`.

:func:`otter_master_notebook` builds it in Otter's notebook format: an ``# ASSIGNMENT CONFIG`` raw
cell (exception-based tests, ``tests: ok_format: false``, since Otter's doctest format compares
outputs with the master's), a question whose solution cell sits between *raw-cell*
``# BEGIN SOLUTION`` / ``# END SOLUTION`` markers and has the same markers inside (Otter 7 replaces
the in-cell block by ``...`` only in a cell of a raw-marked block: either marker alone leaves the
solution in the student notebook), and one test cell per case group worth the group's points,
each a function calling ``check(assignment, group)`` and its call.

Then ``otter assign master.ipynb dist`` writes ``dist/student`` and ``dist/autograder`` (with an
autograder zip whose name has a timestamp), and ``otter run -a <zip> -o <dir> submission.ipynb``
grades offline (no Docker) into ``<dir>/results.json`` (Gradescope's format); it exits 0 whatever
the score. The grading environment needs ipykernel, numpy and tinyprune.
"""

from __future__ import annotations

from .cases import get_assignment

__all__ = ["otter_config", "otter_master_notebook", "otter_test_source"]

_CONFIG = """# ASSIGNMENT CONFIG
name: {name}
init_cell: true
check_all_cell: false
export_cell: false
run_tests: {run_tests}
generate: true
tests:
  ok_format: false"""

_TEST = '''""" # BEGIN TEST CONFIG
points: {points}
""" # END TEST CONFIG
def test_{index}():
    from tinyprune.grading.notebook import check
    check({assignment!r}, {group!r}, quiet=True)

test_{index}()'''


def otter_config(name: str, *, run_tests: bool = True) -> str:
    """The source of Otter's ``# ASSIGNMENT CONFIG`` raw cell (exception-based tests)."""
    return _CONFIG.format(name=name, run_tests=str(bool(run_tests)).lower())


def otter_test_source(assignment: str, index: int, group: str, points: float) -> str:
    """An Otter test cell worth ``points``: ``test_<index>()`` runs ``check(assignment, group)``
    (an AssertionError with the feedback fails it)."""
    return _TEST.format(points=points, index=index, assignment=assignment, group=group)


def otter_master_notebook(assignment, solution: str, *, prompt: str = "", run_tests: bool = True):
    """The Otter master notebook of ``assignment`` with ``solution`` as the model answer.

    Parameters
    ----------
    assignment : str
        A name in :data:`~.cases.ASSIGNMENTS` (also the question's name).
    solution : str
        Python source defining the function (a solution cell between raw-cell markers).
    prompt : str
        Markdown prompt (default: the assignment's description).
    run_tests : bool
        Let ``otter assign`` run the tests on the master's solution.

    Returns
    -------
    nbformat.NotebookNode (version 4)
    """
    import nbformat  # lazily: only the adapters need it

    a = get_assignment(assignment)
    v4 = nbformat.v4
    cells = [
        v4.new_raw_cell(otter_config(a.name, run_tests=run_tests)),
        v4.new_markdown_cell(f"# Exercise: `{a.function}`"),
        v4.new_code_cell("import numpy as np"),
        v4.new_raw_cell(f"# BEGIN QUESTION\nname: {a.name}"),
        v4.new_markdown_cell(prompt or f"Write `{a.description}`"),
        v4.new_raw_cell("# BEGIN SOLUTION"),
        v4.new_code_cell(f"# BEGIN SOLUTION\n{solution.strip()}\n# END SOLUTION"),
        v4.new_raw_cell("# END SOLUTION"),
        v4.new_raw_cell("# BEGIN TESTS"),
    ]
    for i, g in enumerate(a.groups):
        cells.append(v4.new_code_cell(otter_test_source(a.name, i, g.name, g.points)))
    cells += [v4.new_raw_cell("# END TESTS"), v4.new_raw_cell("# END QUESTION")]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb
