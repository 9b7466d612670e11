"""Otter-Grader with the real tool: `otter assign` strips the solution from the student notebook
and builds the autograder zip; `otter run` (offline, no Docker) scores a solved submission full
marks, a blank one 0 and a wrong one with partial credit and its mistake's feedback. Needs the
`grading` extra (otter-grader, ipykernel): see tests/grading_tools.py."""

import json

import pytest
from grading_tools import require, run
from test_grading_checks import MISTAKES, SOLUTIONS

from tinyprune.grading.otter_adapter import otter_master_notebook

# about 60 s: otter assign and three otter runs start kernels
pytestmark = [pytest.mark.slow, pytest.mark.grading_tools]


def _otter(cwd, *args):
    return run("otter", *args, cwd=cwd)  # (otter run exits 0 whatever the score)


def _score(results):
    tests = json.loads(results.read_text())["tests"]
    graded = [t for t in tests if "score" in t]
    return sum(t["score"] for t in graded), sum(t["max_score"] for t in graded), graded


def test_otter_assign_and_run(tmp_path):
    require("otter", "ipykernel")
    import nbformat

    nbformat.write(otter_master_notebook("magnitude_mask", SOLUTIONS["magnitude_mask"]),
                   str(tmp_path / "hw.ipynb"))
    _otter(tmp_path, "assign", "hw.ipynb", "dist")
    student = nbformat.read(str(tmp_path / "dist" / "student" / "hw.ipynb"), as_version=4)
    text = json.dumps(student)
    assert "argsort" not in text and "BEGIN SOLUTION" not in text  # the answer is gone
    (answer,) = [c for c in student.cells if c.cell_type == "code" and c.source == "..."]
    (zip_path,) = (tmp_path / "dist" / "autograder").glob("hw-autograder_*.zip")  # timestamped
    scores = {}
    for name, code in (("solved", SOLUTIONS["magnitude_mask"]), ("blank", None),
                       ("wrong", MISTAKES[("magnitude_mask", "floor_count")])):
        if code is not None:
            answer.source = code
        nbformat.write(student, str(tmp_path / f"{name}.ipynb"))
        (tmp_path / name).mkdir()
        _otter(tmp_path, "run", "-a", str(zip_path), "-o", name, f"{name}.ipynb")
        scores[name] = _score(tmp_path / name / "results.json")
        answer.source = "..."
    assert scores["solved"][:2] == (10.0, 10.0)
    assert scores["blank"][:2] == (0.0, 10.0)
    assert scores["wrong"][:2] == (4.0, 10.0)  # worked examples and ties: 2 of 4 tests
    feedback = scores["wrong"][2][0]["output"]
    assert "off-by-one count" in feedback and "3.7 rounds to 4" in feedback
