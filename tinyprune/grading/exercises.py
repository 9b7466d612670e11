"""Exercise notebooks generated from one reviewable master per exercise.

A master is a jupytext percent-format ``.py`` file (``notebooks/exercises/masters/NN_name.py``):
markdown cells, code cells, and

* solution cells: code cells with the metadata ``assignment="<name>"`` (``# %% assignment="nm_mask"``)
  defining that assignment's function, the model answer between lines ``# BEGIN SOLUTION`` and
  ``# END SOLUTION`` (indented like the code they replace). The markdown cell just before a
  solution cell is its prompt.
* check cells: code cells tagged ``check`` (``# %% tags=["check"]``): a small demo and the
  self-check ``check("<name>")`` of :mod:`.notebook`. They mention tinyprune, so the graders leave
  them out of the graded source (:func:`.submission.is_check_cell`).

From a master, :func:`build` makes four notebooks:

``student``
    every solution region replaced by ``# YOUR CODE HERE`` / ``raise NotImplementedError()``;
``solved``
    the markers removed (the solved twin, which scores full marks);
``otter``
    Otter-Grader's master for ``otter assign``: a raw ``# ASSIGNMENT CONFIG`` cell, each prompt
    and solution cell in a question block whose solution cell sits between *raw-cell*
    ``# BEGIN SOLUTION`` / ``# END SOLUTION`` markers (in-cell markers alone leak the answer),
    then assert-style tests, one per case group worth its points; the check cells keep their
    demo, not the ``check`` call (Otter adds ``grader.check`` cells);
``nbgrader``
    nbgrader's source notebook: solution cells marked ``### BEGIN SOLUTION``, autograded locked
    test cells ``check(name, group)`` (one per case group, its points), the check cells' demos.

Generated notebooks are deterministic (cell ids numbered, no outputs), so a test can check that
the committed ones are current (:func:`outdated`). ``scripts/make_exercises.py`` writes them.
Needs jupytext and nbformat (the ``dev`` extra).
"""

from __future__ import annotations

import re
from pathlib import Path

from .cases import get_assignment
from .nbgrader_adapter import nbgrader_cell_metadata, nbgrader_test_source
from .otter_adapter import otter_config, otter_test_source

__all__ = ["BEGIN", "END", "KINDS", "assignments_of", "build", "build_all", "outdated",
           "output_path", "read_master", "solution_regions", "write_all"]

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
KINDS = ("student", "solved", "otter", "nbgrader")
"""The generated notebooks of an exercise; :func:`output_path` says where each goes."""

PLACEHOLDER = ("# YOUR CODE HERE", "raise NotImplementedError()")
_CHECK_LINE = re.compile(r"^\s*(from tinyprune\.grading[\w.]* import check\b.*|check\(.*)$")
_DEMO_NOTE = "# A demo: tinyprune's checks leave this cell out of the graded code."


def read_master(path):
    """The master notebook (jupytext percent format) at ``path``."""
    import jupytext  # lazily: only the generator needs it

    path = Path(path)
    if path.suffix != ".py":
        raise ValueError(f"path: expected a jupytext percent-format .py master, got {str(path)!r}")
    return jupytext.read(str(path), fmt="py:percent")


def solution_regions(source: str) -> list[tuple[int, int, str]]:
    """``(begin line, end line, indentation)`` of each marked region of a cell's source.

    Raises
    ------
    ValueError
        Unbalanced or nested markers, or an end marker indented differently from its begin.
    """
    regions, start, indent = [], None, ""
    for i, line in enumerate(source.splitlines()):
        stripped = line.strip()
        if stripped == BEGIN:
            if start is not None:
                raise ValueError(f"source: nested {BEGIN!r} at line {i + 1}")
            start, indent = i, line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if start is None:
                raise ValueError(f"source: {END!r} without {BEGIN!r} at line {i + 1}")
            if not line.startswith(indent) or line[len(indent):] != END:
                raise ValueError(f"source: {END!r} at line {i + 1} is indented unlike its "
                                 f"{BEGIN!r} (line {start + 1})")
            regions.append((start, i, indent))
            start = None
    if start is not None:
        raise ValueError(f"source: {BEGIN!r} at line {start + 1} has no {END!r}")
    return regions


def _rewrite(source: str, mode: str) -> str:
    """``solved``: drop the marker lines; ``student``: each region -> placeholder; ``nbgrader``:
    markers -> nbgrader's ``### BEGIN SOLUTION``; ``otter``: unchanged (Otter's own markers)."""
    if mode == "otter":
        return source
    lines = source.splitlines()
    out, last = [], 0
    for begin, end, indent in solution_regions(source):
        out += lines[last:begin]
        if mode == "solved":
            out += lines[begin + 1:end]
        elif mode == "student":
            out += [indent + p for p in PLACEHOLDER]
        else:
            out += [indent + "##" + BEGIN, *lines[begin + 1:end], indent + "##" + END]
        last = end + 1
    out += lines[last:]
    return "\n".join(out)


def _demo(source: str) -> str:
    """A check cell without its ``check`` import and calls, noted as a demo ('' if nothing left)."""
    lines = [line for line in source.splitlines() if not _CHECK_LINE.match(line)]
    while lines and not lines[-1].strip():
        lines.pop()
    if not any(line.strip() and not line.lstrip().startswith("#") for line in lines):
        return ""
    text = "\n".join(lines)
    return text if "tinyprune" in text else _DEMO_NOTE + "\n" + text


def _roles(master):
    """Per cell: ("solution", assignment), ("check", None), ("prompt", None) or (None, None)."""
    roles = []
    for cell in master.cells:
        name = cell.metadata.get("assignment") if cell.cell_type == "code" else None
        if name is not None:
            get_assignment(name)  # must be registered
            if not solution_regions(cell.source):
                raise ValueError(f"master: the solution cell of {name!r} has no {BEGIN!r} region")
            roles.append(("solution", name))
        elif cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
            roles.append(("check", None))
        else:
            roles.append((None, None))
    if not any(r == "solution" for r, _ in roles):
        raise ValueError("master: no solution cell (a code cell with assignment=\"<name>\")")
    for i, (role, name) in enumerate(roles):
        if role == "solution":
            if i == 0 or master.cells[i - 1].cell_type != "markdown" or roles[i - 1][0]:
                raise ValueError(f"master: the solution cell of {name!r} needs a markdown "
                                 "prompt cell just before it")
            roles[i - 1] = ("prompt", name)
    return roles


def assignments_of(master) -> list[str]:
    """The assignments a master's solution cells answer, in order."""
    return [name for role, name in _roles(master) if role == "solution"]


def build(master, kind: str):
    """The ``kind`` notebook (one of :data:`KINDS`) generated from ``master`` (see the module
    docstring). Returns an ``nbformat.NotebookNode`` (version 4) with numbered cell ids."""
    import nbformat

    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    v4 = nbformat.v4
    roles = _roles(master)
    cells = []
    if kind == "otter":
        name = assignments_of(master)[0]
        cells.append(v4.new_raw_cell(otter_config(name, run_tests=True)))
    for cell, (role, name) in zip(master.cells, roles, strict=True):
        src = cell.source
        if cell.cell_type == "markdown":
            if kind == "otter" and role == "prompt":
                cells.append(v4.new_raw_cell(f"# BEGIN QUESTION\nname: {name}"))
            cells.append(v4.new_markdown_cell(src))
            continue
        if cell.cell_type != "code":
            cells.append(v4.new_raw_cell(src))
            continue
        if role == "check":
            if kind in ("otter", "nbgrader"):
                src = _demo(src)
                if src:
                    cells.append(v4.new_code_cell(src))
            else:
                cells.append(v4.new_code_cell(src))
        elif role == "solution":
            a = get_assignment(name)
            if kind == "otter":
                cells += [v4.new_raw_cell(BEGIN), v4.new_code_cell(src), v4.new_raw_cell(END),
                          v4.new_raw_cell("# BEGIN TESTS")]
                cells += [v4.new_code_cell(otter_test_source(a.name, i, g.name, g.points))
                          for i, g in enumerate(a.groups)]
                cells += [v4.new_raw_cell("# END TESTS"), v4.new_raw_cell("# END QUESTION")]
            elif kind == "nbgrader":
                cells.append(v4.new_code_cell(
                    _rewrite(src, "nbgrader"),
                    metadata=nbgrader_cell_metadata(f"{a.name}_solution", solution=True)))
                cells += [v4.new_code_cell(
                    nbgrader_test_source(a.name, g.name),
                    metadata=nbgrader_cell_metadata(f"{a.name}_test_{i}", grade=True,
                                                    locked=True, points=g.points))
                    for i, g in enumerate(a.groups)]
            else:
                cells.append(v4.new_code_cell(_rewrite(src, kind)))
        else:
            cells.append(v4.new_code_cell(src))
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def output_path(out_dir, stem: str, kind: str) -> Path:
    """Where the ``kind`` notebook of exercise ``stem`` goes under ``out_dir``: ``stem.ipynb``
    (student), ``solutions/``, ``otter/``, ``nbgrader/``."""
    sub = {"student": "", "solved": "solutions", "otter": "otter", "nbgrader": "nbgrader"}[kind]
    return Path(out_dir) / sub / f"{stem}.ipynb"


def build_all(exercises_dir) -> dict[Path, str]:
    """Every generated notebook of ``exercises_dir/masters/*.py``: path -> file text."""
    import nbformat

    exercises_dir = Path(exercises_dir)
    masters = sorted((exercises_dir / "masters").glob("*.py"))
    if not masters:
        raise ValueError(f"exercises_dir: no masters/*.py under {str(exercises_dir)!r}")
    files = {}
    for path in masters:
        master = read_master(path)
        for kind in KINDS:
            text = nbformat.writes(build(master, kind)) + "\n"
            files[output_path(exercises_dir, path.stem, kind)] = text
    return files


def write_all(exercises_dir) -> list[Path]:
    """Write every generated notebook (see :func:`build_all`); returns the paths written."""
    written = []
    for path, text in build_all(exercises_dir).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def outdated(exercises_dir) -> list[Path]:
    """Generated notebooks missing or differing from what the masters give now, and stale
    notebooks (no master) in the generated folders."""
    exercises_dir = Path(exercises_dir)
    files = build_all(exercises_dir)
    stale = [p for p, text in files.items()
             if not p.is_file() or p.read_text(encoding="utf-8") != text]
    for kind in KINDS:
        folder = output_path(exercises_dir, "x", kind).parent
        stale += [p for p in sorted(folder.glob("*.ipynb")) if p not in files]
    return stale
