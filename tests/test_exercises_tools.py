"""The exercise notebooks with the real tools (the `grading` extra; CI's grading job):
`otter assign` on an exercise's Otter master gives a student notebook without the answer and an
autograder zip, and `otter run` scores the solved answer full marks and the blank one 0;
`nbgrader generate_assignment` + `autograde` in a temporary course do the same (scores read from
the gradebook). (The notebooks in a plain Jupyter kernel: tests/test_exercises.py.)"""

import json

import pytest
from grading_tools import require, run

from tinyprune.grading import get_assignment
from tinyprune.grading.exercises import assignments_of, output_path, read_master
from tinyprune.grading.nbgrader_adapter import write_course

pytestmark = pytest.mark.grading_tools

from test_exercises import EXERCISES, answer_lines  # noqa: E402

OTTER_EXERCISE = "04_affine_quantization"  # two questions
NBGRADER_EXERCISES = ("01_magnitude_mask", "02_nm_mask")


def _answers(stem):
    """assignment -> the solved twin's answer cell source (the function definition)."""
    import nbformat

    nb = nbformat.read(str(output_path(EXERCISES, stem, "solved")), as_version=4)
    out = {}
    for name in assignments_of(read_master(EXERCISES / "masters" / f"{stem}.py")):
        fn = get_assignment(name).function
        (cell,) = [c for c in nb.cells if c.cell_type == "code"
                   and c.source.lstrip().startswith(f"def {fn}(")]
        out[name] = cell.source
    return out


def _answer_cells(nb, function):
    return [c for c in nb.cells if c.cell_type == "code"
            and c.source.lstrip().startswith(f"def {function}(")]


def test_otter_assign_and_run_an_exercise(tmp_path):
    require("otter", "ipykernel")
    import nbformat

    stem = OTTER_EXERCISE
    (tmp_path / f"{stem}.ipynb").write_text(output_path(EXERCISES, stem, "otter").read_text())
    run("otter", "assign", f"{stem}.ipynb", "dist", cwd=tmp_path)
    student = nbformat.read(str(tmp_path / "dist" / "student" / f"{stem}.ipynb"), as_version=4)
    answers = _answers(stem)
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text
    leaked = [a for a in answer_lines(read_master(EXERCISES / "masters" / f"{stem}.py"))
              if a in text]
    assert leaked == []  # the answers are gone
    (zip_path,) = (tmp_path / "dist" / "autograder").glob(f"{stem}-autograder_*.zip")
    blank = {name: _answer_cells(student, get_assignment(name).function)[0].source
             for name in answers}
    assert all(src.rstrip().endswith("...") for src in blank.values())
    max_score = sum(get_assignment(a).max_score for a in answers)
    for kind in ("solved", "blank"):
        for name, src in (answers if kind == "solved" else blank).items():
            _answer_cells(student, get_assignment(name).function)[0].source = src
        nbformat.write(student, str(tmp_path / f"{kind}.ipynb"))
        (tmp_path / kind).mkdir()
        run("otter", "run", "-a", zip_path, "-o", kind, f"{kind}.ipynb", cwd=tmp_path)
        tests = json.loads((tmp_path / kind / "results.json").read_text())["tests"]
        graded = {t["name"]: t for t in tests if "score" in t}  # one per question
        assert sorted(graded) == sorted(answers)
        score = sum(t["score"] for t in graded.values())
        assert sum(t["max_score"] for t in graded.values()) == max_score
        assert score == (max_score if kind == "solved" else 0.0), (kind, graded)
    feedback = " ".join(t.get("output", "") for t in graded.values())
    assert "worked examples: 0/" in feedback  # the blank answer's feedback names the cases


def _submit(course, student, release, sources):
    import nbformat

    nb = nbformat.read(str(release), as_version=4)
    for name, src in sources.items():
        (cell,) = _answer_cells(nb, get_assignment(name).function)
        cell.source = src
    dest = course / "submitted" / student / "ex" / release.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))


def test_nbgrader_generate_and_autograde_exercises(tmp_path):
    require("nbgrader", "ipykernel")
    import nbformat
    from nbgrader.api import Gradebook

    sources = {stem: nbformat.read(str(output_path(EXERCISES, stem, "nbgrader")), as_version=4)
               for stem in NBGRADER_EXERCISES}
    course = write_course(tmp_path / "course", "ex", sources)
    run("nbgrader", "generate_assignment", "ex", "--force", cwd=course)
    max_score = 0.0
    for stem in NBGRADER_EXERCISES:
        release = course / "release" / "ex" / f"{stem}.ipynb"
        text = release.read_text()
        assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
        answers = _answers(stem)
        release_code = "\n".join(c.source for c in nbformat.read(str(release), as_version=4).cells)
        leaked = [a for a in answer_lines(read_master(EXERCISES / "masters" / f"{stem}.py"))
                  if a in release_code]
        assert leaked == []  # the answers are gone
        _submit(course, "solved", release, answers)
        _submit(course, "blank", release, {})
        max_score += sum(get_assignment(a).max_score for a in answers)
    run("nbgrader", "autograde", "ex", "--create", cwd=course)  # exits 0 whatever the scores
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_assignment("ex").max_score == max_score
        assert gb.find_submission("ex", "solved").score == max_score
        assert gb.find_submission("ex", "blank").score == 0.0
    graded = (course / "autograded" / "blank" / "ex" / "02_nm_mask.ipynb").read_text()
    assert "NotImplementedError" in graded and "0/5 cases passed" in graded
