"""Gradescope adapter: results.json follows Gradescope's autograder schema; run_autograder and its
shell script grade the file in the submission directory (temporary directories stand in for
/autograder)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_grading_checks import SOLUTIONS

from tinyprune.grading import ASSIGNMENTS, grade_source, run_autograder, to_gradescope
from tinyprune.grading.gradescope import write_run_autograder

VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
WORKTREE = Path(__file__).resolve().parents[1]


def check_schema(d):
    """Gradescope's results.json: the top-level and per-test fields with their types."""
    assert set(d) == {"score", "execution_time", "output", "visibility", "stdout_visibility",
                      "tests"}
    assert isinstance(d["score"], float) and isinstance(d["execution_time"], int)
    assert isinstance(d["output"], str)
    assert d["visibility"] in VISIBILITY and d["stdout_visibility"] in VISIBILITY
    numbers = []
    for t in d["tests"]:
        assert set(t) == {"name", "score", "max_score", "status", "output", "visibility", "tags",
                          "number"}
        assert isinstance(t["name"], str) and isinstance(t["output"], str)
        assert isinstance(t["score"], float) and isinstance(t["max_score"], float)
        assert 0.0 <= t["score"] <= t["max_score"]
        assert t["status"] in ("passed", "failed")
        assert (t["status"] == "passed") == (t["score"] == t["max_score"])
        assert t["visibility"] in VISIBILITY
        assert isinstance(t["tags"], list) and all(isinstance(x, str) for x in t["tags"])
        numbers.append(t["number"])
    assert numbers == [str(i) for i in range(1, len(d["tests"]) + 1)]
    assert d["score"] == pytest.approx(sum(t["score"] for t in d["tests"]))
    json.dumps(d)


def test_to_gradescope_one_test_per_group_with_partial_credit():
    src = SOLUTIONS["magnitude_mask"].replace("round(amount * w.size)", "int(amount * w.size)")
    result = grade_source(src, "magnitude_mask")
    d = to_gradescope(result, visibility="after_due_date")
    check_schema(d)
    assert [t["name"] for t in d["tests"]] == [
        f"magnitude_mask: {g.name}" for g in ASSIGNMENTS["magnitude_mask"].groups]
    rounding = d["tests"][1]
    assert rounding["status"] == "failed" and rounding["score"] == pytest.approx(2.0 * 4 / 5)
    assert "3.7 rounds to 4" in rounding["output"] and "problem:" in rounding["output"]
    assert "off-by-one count" in d["output"]
    assert d["visibility"] == "after_due_date"


def _dirs(tmp_path):
    sub, res = tmp_path / "submission", tmp_path / "results"
    sub.mkdir()
    return sub, res


def test_run_autograder_writes_results_json(tmp_path):
    sub, res = _dirs(tmp_path)
    (sub / "hw.py").write_text(SOLUTIONS["conv2d_im2col"])
    returned = run_autograder("conv2d_im2col", submission_dir=sub, results_dir=res)
    written = json.loads((res / "results.json").read_text())
    assert written == returned
    check_schema(written)
    assert written["score"] == 10.0
    assert all(t["status"] == "passed" for t in written["tests"])
    assert sorted(p.name for p in res.iterdir()) == ["results.json"]


def test_run_autograder_picks_the_file_named_after_the_function(tmp_path):
    sub, res = _dirs(tmp_path)
    (sub / "helpers.py").write_text("x = 1\n")
    (sub / "nm_mask.py").write_text(SOLUTIONS["nm_mask"])
    assert run_autograder("nm_mask", submission_dir=sub, results_dir=res)["score"] == 10.0


@pytest.mark.parametrize("files, expected", [
    ({}, "expected one .py or .ipynb file"),
    ({"a.py": "", "b.py": ""}, "found ['a.py', 'b.py']"),
    ({"nm_mask.py": "def nm_mask(:\n"}, "SyntaxError"),
])
def test_run_autograder_reports_a_bad_submission_as_zero(tmp_path, files, expected):
    sub, res = _dirs(tmp_path)
    for name, text in files.items():
        (sub / name).write_text(text)
    d = run_autograder("nm_mask", submission_dir=sub, results_dir=res)
    check_schema(d)
    assert d["score"] == 0.0 and expected in d["output"]
    assert json.loads((res / "results.json").read_text()) == d


def test_run_autograder_script(tmp_path):
    sub, res = _dirs(tmp_path)
    (sub / "solution.py").write_text(SOLUTIONS["linear_backward"].replace("dout.sum(axis=0)",
                                                                            "dout.mean(axis=0)"))
    script = write_run_autograder(tmp_path / "run_autograder", "linear_backward",
                                  filename="solution.py")
    assert os.access(script, os.X_OK)
    env = {**os.environ, "AUTOGRADER_ROOT": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(WORKTREE)}
    subprocess.run(["bash", str(script)], env=env, check=True, timeout=120)
    d = json.loads((res / "results.json").read_text())
    check_schema(d)
    assert d["score"] == pytest.approx(2.2)
    assert "db averages over the batch" in d["output"]
