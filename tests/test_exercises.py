"""Exercise notebooks (notebooks/exercises): the generated notebooks are current; for every
exercise the solved twin scores full marks through `tinyprune grade`, the blank student notebook
scores 0 without a load error, and one wrong variant per recognised mistake gets that mistake's own
feedback; the student notebooks hold no solution; the Gradescope autograder grades an exercise
notebook; every solved twin runs top to bottom in a Jupyter kernel with its self-checks passing,
and a blank one's self-check fails with the feedback. (The real Otter and nbgrader:
tests/test_exercises_tools.py.)"""

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jupytext")

from test_grading_gradescope import check_schema  # noqa: E402

from tinyprune.cli import main  # noqa: E402
from tinyprune.grading import get_assignment, run_autograder  # noqa: E402
from tinyprune.grading.exercises import (  # noqa: E402
    assignments_of,
    build,
    outdated,
    output_path,
    read_master,
    solution_regions,
)

EXERCISES = Path(__file__).resolve().parents[1] / "notebooks" / "exercises"
MASTERS = sorted((EXERCISES / "masters").glob("*.py"))
PAIRS = [(m.stem, a) for m in MASTERS for a in assignments_of(read_master(m))]
PAIR_IDS = [f"{s}:{a}" for s, a in PAIRS]

# (exercise, assignment, mistake key) -> substitutions (old, new) in the solution cell: each turns
# the model answer into the mistake as a student would write it.
WRONG = {
    ("01_magnitude_mask", "magnitude_mask", "floor_count"): [
        ("round(amount * w.size)", "int(amount * w.size)")],
    ("01_magnitude_mask", "magnitude_mask", "ceil_count"): [
        ("round(amount * w.size)", "int(np.ceil(amount * w.size))")],
    ("01_magnitude_mask", "magnitude_mask", "half_up"): [
        ("round(amount * w.size)", "int(amount * w.size + 0.5)")],
    ("01_magnitude_mask", "magnitude_mask", "prunes_largest"): [
        ("np.argsort(np.abs(w),", "np.argsort(-np.abs(w),")],
    ("01_magnitude_mask", "magnitude_mask", "signed_values"): [
        ("np.argsort(np.abs(w),", "np.argsort(w,")],
    ("01_magnitude_mask", "magnitude_mask", "ties_high_index"): [
        ('np.argsort(np.abs(w), axis=None, kind="stable")',
         'w.size - 1 - np.argsort(np.abs(w).ravel()[::-1], kind="stable")')],
    ("01_magnitude_mask", "magnitude_mask", "inverted_mask"): [
        ("return keep.reshape(w.shape)", "return ~keep.reshape(w.shape)")],
    ("01_magnitude_mask", "magnitude_mask", "ties_all_pruned"): [
        ("keep = np.ones(w.size, dtype=bool)\n    keep[order[:k]] = False\n"
         "    return keep.reshape(w.shape)",
         "if k == 0:\n        return np.ones(w.shape, dtype=bool)\n"
         "    threshold = np.abs(w).ravel()[order[k - 1]]\n    return np.abs(w) > threshold")],
    ("02_nm_mask", "nm_mask", "wrong_axis"): [
        ("rows = w.reshape(w.shape[0], -1)", "rows = w.reshape(w.shape[0], -1).T"),
        ("return keep.reshape(w.shape)", "return keep.reshape(rows.shape).T.reshape(w.shape)")],
    ("02_nm_mask", "nm_mask", "kept_reading"): [
        ("order[..., :n_pruned]", "order[..., :m - n_pruned]")],
    ("02_nm_mask", "nm_mask", "prunes_largest"): [("np.abs(rows)", "-np.abs(rows)")],
    ("02_nm_mask", "nm_mask", "signed_values"): [("np.abs(rows)", "rows")],
    ("02_nm_mask", "nm_mask", "channels_last_order"): [
        ("rows = w.reshape(w.shape[0], -1)",
         "v = w.transpose(0, 2, 3, 1) if w.ndim == 4 else w\n    rows = v.reshape(w.shape[0], -1)"),
        ("return keep.reshape(w.shape)",
         "keep = keep.reshape(v.shape)\n"
         "    return keep.transpose(0, 3, 1, 2) if w.ndim == 4 else keep")],
    ("02_nm_mask", "nm_mask", "ties_high_index"): [
        ('np.argsort(groups, axis=-1, kind="stable")',
         'm - 1 - np.argsort(groups[..., ::-1], axis=-1, kind="stable")')],
    ("02_nm_mask", "nm_mask", "inverted_mask"): [
        ("return keep.reshape(w.shape)", "return ~keep.reshape(w.shape)")],
    ("03_sensitivity", "sensitivity_table", "test_set"): [
        ("x_val, y_val = val", "x_val, y_val = test")],
    ("03_sensitivity", "sensitivity_table", "sign_flipped"): [
        ("base - mlp_accuracy(trial, x_val, y_val)", "mlp_accuracy(trial, x_val, y_val) - base")],
    ("03_sensitivity", "sensitivity_table", "accuracy_not_delta"): [
        ("base - mlp_accuracy(trial, x_val, y_val)", "mlp_accuracy(trial, x_val, y_val)")],
    ("03_sensitivity", "sensitivity_table", "floor_count"): [
        ("round(float(r) * w.size)", "int(float(r) * w.size)")],
    ("03_sensitivity", "sensitivity_table", "all_layers"): [
        ("trial[name] = w * keep.reshape(w.shape)",
         "for other in [f\"fc{l + 1}.weight\" for l in range(n_layers)]:\n"
         "                v = params[other]\n"
         "                o = np.argsort(np.abs(v), axis=None, kind=\"stable\")\n"
         "                kv = np.ones(v.size, dtype=bool)\n"
         "                kv[o[:round(float(r) * v.size)]] = False\n"
         "                trial[other] = v * kv.reshape(v.shape)")],
    ("03_sensitivity", "sensitivity_table", "cumulative"): [
        ("table = np.zeros((n_layers, len(ratios)))",
         "table = np.zeros((n_layers, len(ratios)))\n    work = dict(params)"),
        ("trial = dict(params)", "trial = dict(work)"),
        ("table[i, j] = base - mlp_accuracy(trial, x_val, y_val)",
         "table[i, j] = base - mlp_accuracy(trial, x_val, y_val)\n        work = trial")],
    ("04_affine_quantization", "affine_qparams", "zero_not_in_range"): [
        ("np.minimum(np.float32(min_val), np.float32(0.0))", "np.float32(min_val)"),
        ("np.maximum(np.float32(max_val), np.float32(0.0))", "np.float32(max_val)")],
    ("04_affine_quantization", "affine_qparams", "levels_2_pow_b"): [
        ("(hi - lo) / np.float32(q_max - q_min)", "(hi - lo) / np.float32(2 ** bits)"),
        ("np.float32((q_max - q_min) / 2)", "np.float32(2 ** bits / 2)")],
    ("04_affine_quantization", "affine_qparams", "round_half_away"): [
        ("np.rint(lo / scale)", "np.floor(lo / scale + 0.5)")],
    ("04_affine_quantization", "affine_qparams", "zero_point_not_integer"): [
        ("int(np.clip(q_min - np.rint(lo / scale), q_min, q_max))",
         "float(np.clip(q_min - lo / scale, q_min, q_max))"),
        ("return float(scale), int(zero_point)", "return float(scale), zero_point")],
    ("04_affine_quantization", "affine_qparams", "symmetric_q_max"): [
        ("np.float32((q_max - q_min) / 2)", "np.float32(q_max)")],
    ("04_affine_quantization", "affine_qparams", "symmetric_unsigned_zero"): [
        ("0 if signed else 2 ** (bits - 1)", "0")],
    ("04_affine_quantization", "affine_quantize", "no_clamp"): [
        ("np.clip(np.rint(x / np.float32(scale)) + zero_point, q_min, q_max)",
         "np.rint(x / np.float32(scale)) + zero_point")],
    ("04_affine_quantization", "affine_quantize", "floor_not_round"): [
        ("np.rint(x / np.float32(scale))", "np.floor(x / np.float32(scale))")],
    ("04_affine_quantization", "affine_quantize", "zero_point_sign"): [
        ("+ zero_point, q_min", "- zero_point, q_min")],
    ("04_affine_quantization", "affine_quantize", "round_half_away"): [
        ("np.rint(x / np.float32(scale))", "np.floor(x / np.float32(scale) + 0.5)")],
    ("05_kmeans", "kmeans_assign", "farthest"): [("np.argmin(distances", "np.argmax(distances")],
    ("05_kmeans", "kmeans_assign", "returns_values"): [
        ("return np.argmin(distances, axis=-1).astype(np.int64)",
         "return centroids[np.argmin(distances, axis=-1)]")],
    ("05_kmeans", "kmeans_assign", "signed_distance"): [
        ("(w[..., None].astype(np.float64) - centroids) ** 2",
         "(w[..., None].astype(np.float64) - centroids)")],
    ("05_kmeans", "kmeans_assign", "flat_labels"): [
        (".astype(np.int64)", ".astype(np.int64).reshape(-1)")],
    ("05_kmeans", "kmeans_assign", "ties_high_index"): [
        ("np.argmin(distances, axis=-1)",
         "len(centroids) - 1 - np.argmin(distances[..., ::-1], axis=-1)")],
    ("05_kmeans", "kmeans_update", "includes_pruned"): [
        ("w[mask].astype(np.float64), labels[mask]", "w.ravel().astype(np.float64), labels.ravel()")],
    ("05_kmeans", "kmeans_update", "empty_cluster"): [
        ("new[filled] = sums[filled] / counts[filled]", "new = sums / np.maximum(counts, 1)")],
    ("05_kmeans", "kmeans_update", "mean_over_all"): [
        ("sums[filled] / counts[filled]", "sums[filled] / max(values.size, 1)")],
    ("06_svd", "svd_truncate", "keeps_smallest"): [
        ("w_r = (u[:, :r] * s[:r]) @ vt[:r]", "w_r = (u[:, -r:] * s[-r:]) @ vt[-r:]")],
    ("06_svd", "svd_truncate", "energy_sigma"): [("np.cumsum(s ** 2) / np.sum(s ** 2)",
                                                  "np.cumsum(s) / np.sum(s)")],
    ("06_svd", "svd_truncate", "off_by_one_rank"): [
        ("r = int(np.searchsorted(kept, energy, side=\"left\")) + 1",
         "r = int(np.searchsorted(kept, energy, side=\"left\"))")],
    ("06_svd", "svd_truncate", "no_truncation"): [
        ("w_r = (u[:, :r] * s[:r]) @ vt[:r]", "w_r = (u * s) @ vt")],
    ("07_distillation", "kd_loss", "missing_t_squared"): [
        ("alpha * t * t * kl.mean()", "alpha * kl.mean()"),
        ("alpha * t * (p - q) / n", "alpha * (p - q) / (t * n)")],
    ("07_distillation", "kd_loss", "temperature_one_side"): [
        ("softmax(zt / t)", "softmax(zt)")],
    ("07_distillation", "kd_loss", "kl_reversed"): [
        ("np.where(q > 0, q * (np.log(q) - np.log(p)), 0.0)", "(p * (np.log(p) - np.log(q)))")],
    ("07_distillation", "kd_loss", "alpha_swapped"): [
        ("loss = alpha * t * t * kl.mean() + (1 - alpha) * ce.mean()",
         "loss = (1 - alpha) * t * t * kl.mean() + alpha * ce.mean()"),
        ("dlogits = alpha * t * (p - q) / n + (1 - alpha) * (p1 - onehot) / n",
         "dlogits = (1 - alpha) * t * (p - q) / n + alpha * (p1 - onehot) / n")],
    ("07_distillation", "kd_loss", "sum_not_mean"): [
        ("kl.mean()", "kl.sum()"), ("ce.mean()", "ce.sum()"), ("/ n", "")],
}


def answer_lines(master_nb) -> list[str]:
    """The model answers' code lines (stripped) that appear nowhere else in the master."""
    answers, given = [], []
    for cell in master_nb.cells:
        lines = cell.source.splitlines()
        inside = set()
        for begin, end, _ in solution_regions(cell.source):
            inside |= set(range(begin, end + 1))
            answers += [ln.strip() for ln in lines[begin + 1:end]
                        if ln.strip() and not ln.strip().startswith("#")]
        given += [ln.strip() for i, ln in enumerate(lines) if i not in inside]
    return [a for a in answers if a not in given]  # e.g. a line the given helper code has too


def _grade(path, assignment, capsys) -> dict:
    """``tinyprune grade PATH --assignment A --format json`` (in process), parsed."""
    assert main(["grade", str(path), "--assignment", assignment, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _solution_cell(nb, assignment):
    function = get_assignment(assignment).function
    (cell,) = [c for c in nb.cells if c.cell_type == "code"
               and c.source.lstrip().startswith(f"def {function}(")]
    return cell


def test_there_are_exercises():
    assert len(MASTERS) >= 2 and len(PAIRS) >= len(MASTERS)


def test_generated_notebooks_are_current():
    stale = outdated(EXERCISES)
    assert stale == [], f"run python scripts/make_exercises.py: {[str(p) for p in stale]}"


@pytest.mark.parametrize("master", MASTERS, ids=[m.stem for m in MASTERS])
def test_student_notebooks_hold_no_solution(master):
    nb = read_master(master)
    answers = answer_lines(nb)
    assert answers
    student = "\n".join(c.source for c in build(nb, "student").cells)
    assert "BEGIN SOLUTION" not in student and "raise NotImplementedError()" in student
    leaked = [a for a in answers if a in student]
    assert leaked == [], f"{master.stem}: the student notebook shows {leaked}"
    nbgrader = "\n".join(c.source for c in build(nb, "nbgrader").cells)
    assert nbgrader.count("### BEGIN SOLUTION") == len(assignments_of(nb))  # nbgrader strips it
    otter = build(nb, "otter")
    raw = [c.source for c in otter.cells if c.cell_type == "raw"]
    # raw-cell markers around each solution cell: Otter leaves the answer in without them
    assert raw.count("# BEGIN SOLUTION") == raw.count("# END SOLUTION") == len(assignments_of(nb))


@pytest.mark.parametrize("stem, assignment", PAIRS, ids=PAIR_IDS)
def test_solved_twin_scores_full_marks(stem, assignment, capsys):
    d = _grade(output_path(EXERCISES, stem, "solved"), assignment, capsys)
    assert d["load_error"] == ""
    assert d["score"] == d["max_score"] == get_assignment(assignment).max_score


@pytest.mark.parametrize("stem, assignment", PAIRS, ids=PAIR_IDS)
def test_blank_student_notebook_scores_zero(stem, assignment, capsys):
    d = _grade(output_path(EXERCISES, stem, "student"), assignment, capsys)
    assert d["load_error"] == ""  # the notebook loads; every case fails on the placeholder
    assert d["score"] == 0.0
    messages = [c["message"] for g in d["groups"] for c in g["cases"]]
    assert messages and all("NotImplementedError" in m for m in messages)
    assert "    raise NotImplementedError()" in messages[0]  # quotes the notebook's code, not JSON
    assert d["diagnoses"] == []


@pytest.mark.parametrize("stem, assignment, key", list(WRONG), ids=[":".join(k) for k in WRONG])
def test_wrong_variant_gets_its_feedback(stem, assignment, key, tmp_path, capsys):
    nb = nbformat.read(str(output_path(EXERCISES, stem, "solved")), as_version=4)
    cell = _solution_cell(nb, assignment)
    for old, new in WRONG[(stem, assignment, key)]:
        assert old in cell.source, f"{stem}: the model answer no longer contains {old!r}"
        cell.source = cell.source.replace(old, new)
    path = tmp_path / f"{stem}_{key}.ipynb"
    nbformat.write(nb, str(path))
    d = _grade(path, assignment, capsys)
    assert d["load_error"] == "" and d["score"] < d["max_score"]
    keys = [x["key"] for x in d["diagnoses"]]
    assert key in keys, f"expected the diagnosis {key!r}, got {keys}"
    (mistake,) = [m for m in get_assignment(assignment).mistakes if m.key == key]
    assert mistake.message in json.dumps(d)


def test_every_recognised_mistake_has_a_wrong_variant():
    covered = {(s, a, k) for s, a, k in WRONG}
    expected = {(s, a, m.key) for s, a in PAIRS for m in get_assignment(a).mistakes}
    assert covered == expected, f"no wrong variant for {sorted(expected - covered)}"


def test_gradescope_autograder_grades_an_exercise_notebook(tmp_path):
    sub, res = tmp_path / "submission", tmp_path / "results"
    sub.mkdir()
    nb = nbformat.read(str(output_path(EXERCISES, "02_nm_mask", "solved")), as_version=4)
    nbformat.write(nb, str(sub / "02_nm_mask.ipynb"))
    check_schema(run_autograder("nm_mask", submission_dir=sub, results_dir=res))
    full = json.loads((res / "results.json").read_text())
    assert full["score"] == 10.0 and all(t["status"] == "passed" for t in full["tests"])
    student = output_path(EXERCISES, "02_nm_mask", "student")
    (sub / "02_nm_mask.ipynb").write_text(student.read_text())
    blank = run_autograder("nm_mask", submission_dir=sub, results_dir=res)
    check_schema(blank)
    assert blank["score"] == 0.0 and "NotImplementedError" in blank["output"]


# ----------------------------------------------------------------- the generator itself
MASTER = """# %% [markdown]
# Prompt

# %% assignment="nm_mask"
def nm_mask(w, n_pruned, m):
    x = 1
    # BEGIN SOLUTION
    return w != 0
    # END SOLUTION

# %% tags=["check"]
print(nm_mask(np.ones((1, 4)), 2, 4))
from tinyprune.grading.notebook import check
check("nm_mask")
"""


def _master(tmp_path, text=MASTER):
    path = tmp_path / "m.py"
    path.write_text(text)
    return read_master(path)


def test_build_each_kind(tmp_path):
    m = _master(tmp_path)
    student, solved = build(m, "student"), build(m, "solved")
    assert student.cells[1].source == ("def nm_mask(w, n_pruned, m):\n    x = 1\n"
                                       "    # YOUR CODE HERE\n    raise NotImplementedError()")
    assert solved.cells[1].source == "def nm_mask(w, n_pruned, m):\n    x = 1\n    return w != 0"
    assert student.cells[2].source == solved.cells[2].source == m.cells[2].source
    assert [c.id for c in solved.cells] == ["cell-00", "cell-01", "cell-02"]
    nbg = build(m, "nbgrader")
    assert "    ### BEGIN SOLUTION\n    return w != 0\n    ### END SOLUTION" in nbg.cells[1].source
    assert nbg.cells[1].metadata["nbgrader"]["solution"] is True
    tests = [c for c in nbg.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.metadata["nbgrader"]["points"] for c in tests] == [
        g.points for g in get_assignment("nm_mask").groups]
    otter = build(m, "otter")
    kinds = [(c.cell_type, c.source.splitlines()[0]) for c in otter.cells]
    assert kinds[:4] == [("raw", "# ASSIGNMENT CONFIG"), ("raw", "# BEGIN QUESTION"),
                         ("markdown", "Prompt"), ("raw", "# BEGIN SOLUTION")]
    demo = otter.cells[-1].source  # the check cell keeps its demo, not the check call
    assert "check(" not in demo and "print(nm_mask" in demo and "tinyprune" in demo


@pytest.mark.parametrize("text, match", [
    (MASTER.replace("    # END SOLUTION\n", ""), "has no '# END SOLUTION'"),
    (MASTER.replace("    # END SOLUTION", "  # END SOLUTION"), "indented unlike"),
    (MASTER.replace("    return w != 0\n", "    # BEGIN SOLUTION\n"), "nested"),
    (MASTER.replace("    # BEGIN SOLUTION\n", ""), "without '# BEGIN SOLUTION'"),
    (MASTER.replace('assignment="nm_mask"', 'assignment="nope"'), "assignment: expected one of"),
    (MASTER.replace('assignment="nm_mask"', ""), "no solution cell"),
    (MASTER.replace("# %% [markdown]\n# Prompt\n", "# %%\nimport numpy as np\n"),
     "needs a markdown prompt cell"),
])
def test_bad_masters_are_refused(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        build(_master(tmp_path, text), "student")


def test_build_refuses_unknown_kinds_and_files(tmp_path):
    with pytest.raises(ValueError, match="kind: expected one of"):
        build(_master(tmp_path), "teacher")
    with pytest.raises(ValueError, match="percent-format .py master"):
        read_master(tmp_path / "m.ipynb")


def test_outdated_names_stale_and_orphaned_notebooks(tmp_path):
    from tinyprune.grading.exercises import write_all

    (tmp_path / "masters").mkdir()
    (tmp_path / "masters" / "01_x.py").write_text(MASTER)
    assert len(write_all(tmp_path)) == 4 and outdated(tmp_path) == [] and write_all(tmp_path) == []
    (tmp_path / "solutions" / "01_x.ipynb").write_text("{}")
    (tmp_path / "otter" / "99_gone.ipynb").write_text("{}")
    assert outdated(tmp_path) == [tmp_path / "solutions" / "01_x.ipynb",
                                  tmp_path / "otter" / "99_gone.ipynb"]


def test_check_cells_are_left_out_of_a_graded_notebook(tmp_path):
    from test_grading_checks import SOLUTIONS

    from tinyprune.grading import grade_file, load_source

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        "import otter\ngrader = otter.Notebook('hw.ipynb')", SOLUTIONS["nm_mask"],
        "from tinyprune.grading.notebook import check\ncheck('nm_mask')",
        'grader.check("nm_mask")')]
    nbformat.write(nb, str(tmp_path / "hw.ipynb"))
    source = load_source(tmp_path / "hw.ipynb")
    assert "otter" not in source and "tinyprune" not in source and "def nm_mask" in source
    assert "# %% cell 2: a check cell, not run by the grader" in source
    assert grade_file(tmp_path / "hw.ipynb", "nm_mask").score == 10.0


def test_ci_runs_the_grading_tools_job_after_the_main_one():
    root = EXERCISES.parents[1]
    ci = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines()]
    main_job = ci.index('pip install -q -e ".[dev,torch]" && python -m pytest -q -n 2')
    venv = ci.index("python3 -m venv .venv-grading")
    job = ci.index("TINYPRUNE_REQUIRE_GRADING_TOOLS=1 python -m pytest -q -n 2 -m grading_tools")
    assert main_job < venv < ci.index('pip install -q -e ".[dev,grading]"') < job
    pyproject = (root / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    assert 'grading = ["otter-grader==7.0.0", "nbgrader==0.9.6", "ipykernel>=6.0"]' in pyproject
    assert '    "grading_tools: ' in pyproject  # the marker


def test_grading_tools_require_skips_or_fails(monkeypatch):
    import grading_tools

    monkeypatch.setitem(grading_tools.TOOLS, "nothing", ("no_such_module_tinyprune", None))
    monkeypatch.delenv(grading_tools.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        grading_tools.require("nothing")
    monkeypatch.setenv(grading_tools.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="TINYPRUNE_REQUIRE_GRADING_TOOLS=1 requires"):
        grading_tools.require("nothing")
    grading_tools.require()  # nothing asked: nothing missing


# ----------------------------------------------------------------- in a Jupyter kernel
def _execute(path):
    import nbformat

    return _execute_nb(nbformat.read(str(path), as_version=4))


def _execute_nb(nb):
    """Run ``nb`` in a fresh python3 kernel (errors recorded as outputs)."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
    return nb


def _errors(nb):
    return [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("master", MASTERS, ids=[m.stem for m in MASTERS])
def test_solved_twin_runs_with_its_self_checks_passing(master):
    nb = _execute(output_path(EXERCISES, master.stem, "solved"))
    assert _errors(nb) == []
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    for name in assignments_of(read_master(master)):
        a = get_assignment(name)
        assert f"Assignment '{name}' ({a.function}): {a.max_score:g} / {a.max_score:g} points" \
            in printed


def test_blank_student_notebook_self_check_fails_with_feedback():
    nb = _execute(output_path(EXERCISES, "01_magnitude_mask", "student"))
    errors = _errors(nb)
    assert [o["ename"] for _, o in errors] == ["NotImplementedError"]  # the demo line stops it
    check_cell = next(i for i, c in enumerate(nb.cells) if "check(" in c.source)
    nb.cells[check_cell].source = nb.cells[check_cell].source.replace(
        "print(magnitude_mask(w, 0.5))", "")
    nb = _execute_nb(nb)
    ((_, err),) = _errors(nb)
    assert err["ename"] == "AssertionError" and "0 / 10 points" in err["evalue"]



@pytest.mark.parametrize("source, is_check", [
    ("from tinyprune.grading.notebook import check\ncheck('nm_mask')", True),
    ("import otter\ngrader = otter.Notebook('hw.ipynb')", True),
    ('grader.check("nm_mask")', True),
    ("grader.check_all()", True),
    ("  import tinyprune.prune as tp", True),
    ("# unlike tinyprune's reference, this keeps ties in order\ndef nm_mask(w, n, m): ...", False),
    ('def f():\n    """Mirrors tinyprune.prune.nm."""\n    return 1', False),
    ("print('otter is an animal')", False),
])
def test_only_statements_make_a_check_cell(source, is_check):
    from tinyprune.grading.submission import is_check_cell

    assert is_check_cell(source) is is_check


def test_a_comment_mentioning_tinyprune_keeps_the_answer_graded(tmp_path):
    from test_grading_checks import SOLUTIONS

    from tinyprune.grading import grade_file

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("# my answer, written like tinyprune's\n"
                                          + SOLUTIONS["nm_mask"])]
    nbformat.write(nb, str(tmp_path / "hw.ipynb"))
    assert grade_file(tmp_path / "hw.ipynb", "nm_mask").score == 10.0
