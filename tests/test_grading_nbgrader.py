"""nbgrader with the real tool: generate_assignment strips the solution, autograde scores a solved
submission full marks, a blank one 0 and a wrong one with partial credit and its mistake's
feedback. Needs the `grading` extra (nbgrader, ipykernel): see tests/grading_tools.py."""

import pytest
from grading_tools import require, run
from test_grading_checks import MISTAKES, SOLUTIONS

from tinyprune.grading.nbgrader_adapter import nbgrader_notebook, write_course

# about 40 s: three kernels run the notebook
pytestmark = [pytest.mark.slow, pytest.mark.grading_tools]


def _nbgrader(course, *args):
    return run("nbgrader", *args, cwd=course)  # it runs alembic: the venv's bin is on PATH


def _submit(course, student, release, code):
    import nbformat

    nb = nbformat.read(str(release), as_version=4)
    if code is not None:
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        cell.source = code
    dest = course / "submitted" / student / "ps1" / release.name
    dest.parent.mkdir(parents=True)
    nbformat.write(nb, str(dest))


def test_nbgrader_generate_and_autograde(tmp_path):
    require("nbgrader", "ipykernel")
    from nbgrader.api import Gradebook

    course = write_course(tmp_path / "course", "ps1",
                          {"magnitude": nbgrader_notebook("magnitude_mask",
                                                          SOLUTIONS["magnitude_mask"])})
    _nbgrader(course, "generate_assignment", "ps1", "--force")
    release = course / "release" / "ps1" / "magnitude.ipynb"
    text = release.read_text()
    assert "raise NotImplementedError()" in text
    assert "BEGIN SOLUTION" not in text and "argsort" not in text  # the answer is gone
    _submit(course, "solved", release, SOLUTIONS["magnitude_mask"])
    _submit(course, "blank", release, None)
    _submit(course, "wrong", release, MISTAKES[("magnitude_mask", "floor_count")])
    _nbgrader(course, "autograde", "ps1", "--create")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission("ps1", s).score for s in ("solved", "blank", "wrong")}
        assert gb.find_assignment("ps1").max_score == 10.0
    assert scores["solved"] == 10.0
    assert scores["blank"] == 0.0
    assert scores["wrong"] == 4.0  # worked examples and ties: a test cell is all or nothing
    graded = (course / "autograded" / "wrong" / "ps1" / "magnitude.ipynb").read_text()
    assert "off-by-one count" in graded and "3.7 rounds to 4" in graded
