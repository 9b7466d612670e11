"""Checks called inside a Jupyter kernel (what nbgrader and Otter test cells do): the kernel's
executed cells are graded in a worker process; a failing group raises AssertionError with the
feedback, a passing one returns quietly; an infinite loop does not hang the kernel."""

import pytest
from test_grading_checks import SOLUTIONS

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _run(cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)
    client.execute()
    return nb


def _error(cell):
    errors = [o for o in cell.outputs if o.output_type == "error"]
    return errors[0] if errors else None


def _stdout(cell):
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def test_check_in_a_kernel_grades_the_executed_cells():
    wrong = SOLUTIONS["magnitude_mask"].replace("round(amount * w.size)", "int(amount * w.size)")
    nb = _run([
        "%config InlineBackend.figure_format = 'png'\nimport numpy as np",
        wrong,
        "from tinyprune.grading.notebook import check\n"
        "check('magnitude_mask', 'worked examples')",
        "check('magnitude_mask', 'exact count (rounding)')",
        "r = check('magnitude_mask', quiet=True)",
    ])
    assert _error(nb.cells[2]) is None
    assert "worked examples: 4/4 cases passed" in _stdout(nb.cells[2])
    err = _error(nb.cells[3])
    assert err is not None and err.ename == "AssertionError"
    assert "3.7 rounds to 4" in err.evalue and "off-by-one count" in err.evalue
    assert _error(nb.cells[4]).ename == "AssertionError"


def test_check_in_a_kernel_survives_an_infinite_loop():
    nb = _run([
        "def nm_mask(w, n_pruned, m):\n    while True:\n        pass",
        "from tinyprune.grading.notebook import check\n"
        "import tinyprune.grading.grader as g\n"
        "check('nm_mask', 'ties', timeout=0.2)",
        "print('kernel alive')",
    ])
    err = _error(nb.cells[1])
    assert err.ename == "AssertionError" and "longer than 0.2 s" in err.evalue
    assert _stdout(nb.cells[2]) == "kernel alive\n"


def test_check_outside_ipython_grades_the_functions_file(tmp_path, monkeypatch):
    import importlib.util

    from tinyprune.grading.notebook import check

    path = tmp_path / "student_nm.py"
    path.write_text(SOLUTIONS["nm_mask"])
    spec = importlib.util.spec_from_file_location("student_nm", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = check("nm_mask", func=mod.nm_mask, quiet=True)
    assert result.score == 10.0
    with pytest.raises(ValueError, match="group: expected one of"):
        check("nm_mask", "nope", func=mod.nm_mask)
    with pytest.raises(RuntimeError, match="not in an IPython kernel"):
        check("nm_mask")
