"""The grading core: whatever a submission does it is graded, never crashes the grader; partial
credit, deterministic cases, results as JSON and text, the registry, .py and .ipynb files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_grading_checks import SOLUTIONS

from tinyprune.grading import (
    ASSIGNMENTS,
    Assignment,
    Case,
    CaseGroup,
    Mistake,
    get_assignment,
    grade,
    grade_file,
    grade_source,
    load_source,
    register,
)
from tinyprune.grading.cases import check_array, summarize
from tinyprune.grading.grader import _same
from tinyprune.grading.runner import Sandbox

HEADER = "import numpy as np\n\n"


def _failures(result):
    return [c for g in result.groups for c in g.cases if not c.passed]


# ----------------------------------------------------------------------------- never crashes
def test_exception_is_a_failed_case_with_the_traceback():
    result = grade_source(HEADER + "def nm_mask(w, n_pruned, m):\n    raise KeyError('oops')\n",
                          "nm_mask")
    assert result.score == 0.0
    first = result.first_failure()
    assert "raised an exception" in first.message and "KeyError: 'oops'" in first.message
    assert "line 4, in nm_mask" in first.message
    assert result.diagnoses == []


def test_infinite_loop_times_out_and_later_cases_still_run():
    src = HEADER + ("def linear_backward(dout, x, w):\n"
                    "    while dout.shape[0] == 1:\n        pass\n"
                    "    return dout @ w, dout.T @ x, dout.sum(axis=0)\n")
    result = grade_source(src, "linear_backward", timeout=0.5)
    failed = _failures(result)
    assert [c.name for c in failed] == ["one sample"] + \
        [c.name for c in ASSIGNMENTS["linear_backward"].groups[1].cases() if c.args[0].shape[0] == 1]
    assert "longer than 0.5 s" in failed[0].message
    assert 0 < result.score < result.max_score


def test_top_level_infinite_loop_is_a_load_error():
    result = grade_source("while True:\n    pass\n", "nm_mask", load_timeout=0.5)
    assert result.score == 0.0
    assert "loading the submission took longer than 0.5 s" in result.load_error
    assert all(g.total > 0 and g.passed == 0 for g in result.groups)
    assert "could not be loaded" in result.format_text()


@pytest.mark.parametrize("source, expected", [
    ("def nm_mask(w, n_pruned, m:\n    pass\n", "SyntaxError"),
    ("x = 1\n", "no function named 'nm_mask'"),
    ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ("import tinyprune.prune\n", "importing 'tinyprune' is not allowed"),
    ("from tinyprune.prune.nm import nm_mask\n", "is not allowed"),
])
def test_a_submission_that_cannot_load_scores_zero(source, expected):
    result = grade_source(source, "nm_mask")
    assert result.score == 0.0
    assert expected in result.load_error
    assert result.to_dict()["load_error"] == result.load_error


def test_a_crashing_worker_fails_the_case_and_is_restarted():
    src = HEADER + ("import os\n\ndef lp_channel_scores(w, p):\n"
                    "    if p == 2:\n        os._exit(7)\n"
                    "    a = np.abs(w).reshape(len(w), -1)\n"
                    "    return a.max(1) if p == np.inf else (a ** p).sum(1) ** (1 / p)\n")
    result = grade_source(src, "lp_channel_scores")
    crashed = _failures(result)
    assert crashed and all("died" in c.message and "exit code 7" in c.message for c in crashed)
    assert all(c.args[1] == 2 for g in ASSIGNMENTS["lp_channel_scores"].groups for c in g.cases()
               if c.name in {f.name for f in crashed})
    assert result.groups[0].passed == 3  # the cases after the crash ran in a new worker


@pytest.mark.parametrize("ret, expected", [
    ("keep.astype(np.int64)", "expected dtype bool, got int64"),
    ("keep.reshape(-1)", "expected shape"),
    ("keep.tolist()", "expected a numpy.ndarray, got list"),
    ("None", "got NoneType"),
    ("(lambda: keep)", "could not be sent back"),
])
def test_wrong_return_type_shape_dtype_is_a_failed_case(ret, expected):
    src = SOLUTIONS["magnitude_mask"].replace("return keep.reshape(w.shape)",
                                              f"keep = keep.reshape(w.shape)\n    return {ret}")
    result = grade_source(src, "magnitude_mask")
    assert result.score == 0.0
    assert expected in result.first_failure().message


def test_nan_output_is_reported():
    src = SOLUTIONS["lp_channel_scores"].replace("return (a ** p)", "return np.nan * (a ** p)")
    result = grade_source(src, "lp_channel_scores")
    assert "contains NaN (first at index (0,))" in result.first_failure().message


def test_input_modified_in_place_fails_even_with_the_right_answer():
    src = SOLUTIONS["masked_sgd_step"].replace("    w_new = w - lr * v\n    return w_new * mask, v",
                                               "    w -= lr * v\n    w *= mask\n    return w.copy(), v")
    result = grade_source(src, "masked_sgd_step")
    assert result.score == 0.0
    assert result.first_failure().message == "modified its input w in place"
    assert [d.key for d in result.diagnoses] == ["modifies_input"]
    assert "modifies its input in place" in result.format_text()


def test_printed_output_is_captured_not_shown_by_the_grader(capfd):
    src = "print('loading')\n" + SOLUTIONS["nm_mask"].replace(
        "    rows =", "    print('called with', w.shape)\n    rows =")
    result = grade_source(src, "nm_mask")
    assert result.score == result.max_score
    assert result.output.startswith("loading\n[worked examples / 2:4 on a Linear weight] called")
    assert "loading" not in capfd.readouterr().out


# ----------------------------------------------------------------------------- scores, results
def test_partial_credit_per_group():
    # only the Linear (2-D) cases are right: the conv cases raise
    src = SOLUTIONS["lp_channel_scores"].replace(
        "    a = np.abs", "    if w.ndim == 4:\n        raise ValueError('conv')\n    a = np.abs")
    result = grade_source(src, "lp_channel_scores")
    a = ASSIGNMENTS["lp_channel_scores"]
    for g, group in zip(result.groups, a.groups, strict=True):
        n2 = sum(c.args[0].ndim == 2 for c in group.cases())
        assert (g.passed, g.total) == (n2, len(group.cases()))
        assert g.score == pytest.approx(group.points * n2 / len(group.cases()))
    assert result.score == pytest.approx(sum(g.score for g in result.groups))
    assert isinstance(result.score, float)


def test_cases_are_the_same_every_run():
    for a in ASSIGNMENTS.values():
        for group in a.groups:
            first, second = group.cases(), group.cases()
            assert [c.name for c in first] == [c.name for c in second]
            for c1, c2 in zip(first, second, strict=True):
                assert _same(c1.args, c2.args)  # arrays (also in dicts, tuples): dtype and values


def test_result_to_dict_is_json_and_names_the_first_failure():
    result = grade_source(SOLUTIONS["nm_mask"].replace("np.abs(rows)", "-np.abs(rows)"), "nm_mask")
    d = json.loads(json.dumps(result.to_dict()))
    assert d["assignment"] == "nm_mask" and d["max_score"] == 10.0
    assert d["score"] == pytest.approx(result.score)
    assert d["first_failure"]["name"] == "2:4 on a Linear weight"
    assert d["first_failure"]["expected"].startswith("bool array of shape (2, 8)")
    assert d["diagnoses"][0]["key"] == "prunes_largest"
    assert [g["name"] for g in d["groups"]] == ["worked examples", "ties", "generated"]
    text = result.format_text()
    assert "First failing case:" in text and "inputs:   (float32 array of shape (2, 8)" in text
    assert "expected: bool array" in text and "got:      bool array" in text


def test_check_array_messages():
    e = np.array([1.0, 2.0], dtype=np.float32)
    assert check_array(e.copy(), e) is None
    assert check_array(e + 1e-7, e) is None  # within float32 tolerance
    assert "expected dtype float32, got float64" in check_array(e.astype(np.float64), e)
    assert "1 of 2 entries differ; first at index (1,)" in check_array(np.array([1, 3], np.float32), e)
    assert check_array(e + 1e-7, e, exact=True) is not None


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(max_dims=3),
                  elements=st.floats(-1e3, 1e3, width=32)), st.data())
def test_check_array_finds_any_changed_entry(x, data):
    assert check_array(x.copy(), x) is None
    i = data.draw(st.integers(0, x.size - 1))
    y = x.copy()
    y.flat[i] += x.dtype.type(1.0) + abs(y.flat[i])  # far outside the tolerance
    index = tuple(int(v) for v in np.unravel_index(i, x.shape))
    assert f"1 of {x.size} entries differ; first at index {index}" in check_array(y, x)


def test_summarize_is_one_line_and_bounded():
    assert summarize(np.zeros((2, 2), np.float32)) == \
        "float32 array of shape (2, 2): [[0., 0.], [0., 0.]]"
    assert summarize(np.zeros((10, 10))) == "float64 array of shape (10, 10)"
    assert summarize((np.ones(1, bool), 0.5)) == "(bool array of shape (1,): [ True], 0.5)"


# ----------------------------------------------------------------------------- registry
def test_a_new_assignment_is_a_few_lines():
    def double(x):
        return 2 * x

    a = Assignment(
        name="test_double", function="double", arg_names=("x",), reference=double,
        groups=(CaseGroup("all", 3.0, lambda: [Case(f"x={i}", (np.arange(i, dtype=float),))
                                               for i in range(1, 4)]),),
        compare=lambda e, g: check_array(g, e),
        mistakes=(Mistake("squares", "squares instead of doubling", lambda x: x * x),))
    register(a)
    try:
        assert get_assignment("test_double") is a
        with pytest.raises(ValueError, match="already registered"):
            register(a)
        result = grade_source("def double(x):\n    return x * x\n", "test_double")
        assert result.score == pytest.approx(1.0)  # x = [0, 1] passes by chance: 1 of 3
        assert [d.key for d in result.diagnoses] == ["squares"]
    finally:
        del ASSIGNMENTS["test_double"]


def test_bad_arguments_raise_named_errors(tmp_path):
    with pytest.raises(ValueError, match="assignment: expected one of .*got 'nope'"):
        grade_source("", "nope")
    with pytest.raises(TypeError, match="source: expected a str"):
        grade_source(b"x", "nm_mask")
    with pytest.raises(TypeError, match="assignment: expected an Assignment"):
        register("nm_mask")
    (tmp_path / "s.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a .py or .ipynb file"):
        grade(tmp_path / "s.txt", "nm_mask")
    (tmp_path / "s.py").write_text(SOLUTIONS["nm_mask"])
    with pytest.raises(ValueError, match="format: expected one of"):
        grade(tmp_path / "s.py", "nm_mask", format="html")


def test_sandbox_runs_calls_in_another_process():
    with Sandbox("import os\ndef f(x):\n    return os.getpid(), x\n", "f") as box:
        out = box.call((np.arange(3),))
        assert out.kind == "ok" and out.value[0] != os.getpid()
        assert np.array_equal(out.args_after[0], np.arange(3))


# ----------------------------------------------------------------------------- files, formats
def _notebook(path, cells):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# N:M pruning")] + [
        nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))
    return path


def test_notebook_code_cells_are_graded_in_the_worker(tmp_path):
    sol = SOLUTIONS["nm_mask"]
    path = _notebook(tmp_path / "hw.ipynb", ["%matplotlib inline\nimport numpy as np",
                                             "!pip install nothing", sol,
                                             "print(nm_mask(np.ones((1, 4)), 2, 4))"])
    source = load_source(path)
    assert "# [not run by the grader] %matplotlib inline" in source
    assert "# N:M pruning" not in source
    result = grade_file(path, "nm_mask")
    assert result.score == result.max_score
    assert "[[False False  True  True]]" in result.output


def test_broken_files_score_zero_with_the_reason(tmp_path):
    (tmp_path / "hw.ipynb").write_text("{not json")
    result = grade_file(tmp_path / "hw.ipynb", "nm_mask")
    assert result.score == 0.0 and "cannot read hw.ipynb" in result.load_error
    result = grade_file(tmp_path / "missing.py", "nm_mask")
    assert result.score == 0.0 and "FileNotFoundError" in result.load_error
    assert [g.total for g in result.groups] == [5, 2, 12]


@pytest.mark.parametrize("fmt", ["text", "json", "gradescope"])
def test_grade_formats(tmp_path, fmt):
    path = tmp_path / "sub.py"
    path.write_text(SOLUTIONS["linear_backward"].replace("dout.sum(axis=0)", "dout.mean(axis=0)"))
    out = grade(path, "linear_backward", format=fmt)
    if fmt == "text":
        assert out.startswith("Assignment 'linear_backward' (linear_backward): 2.2 / 10 points")
        assert "db averages over the batch" in out
    else:
        d = json.loads(out)
        assert d["score"] == pytest.approx(2.2)
        assert ("tests" in d) == (fmt == "gradescope")


def test_grading_from_a_script_read_on_stdin(tmp_path):
    """``python -`` has no main file to re-import: the workers are forked instead."""
    (tmp_path / "sub.py").write_text(SOLUTIONS["nm_mask"])
    script = ("from tinyprune.grading import grade_file\n"
              f"print(grade_file({str(tmp_path / 'sub.py')!r}, 'nm_mask').score)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    assert out.stdout.strip() == "10.0"
