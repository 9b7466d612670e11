"""The teaching notebooks: each jupytext source notebooks/NN_name.py has a current .ipynb built
with its outputs, runs top to bottom on the embedded subset (a hang is stopped at 3x the
90 s budget), draws at least one figure, and is listed in README.md and notebooks/README.md."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 90  # per notebook, on the embedded subset, CI's 2 cores

_spec = importlib.util.spec_from_file_location("make_notebooks",
                                               ROOT / "scripts" / "make_notebooks.py")
make_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_notebooks)

SOURCES = make_notebooks.sources()
IDS = [p.stem for p in SOURCES]


def _images(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]


def _errors(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


def test_sources_follow_the_lecture_numbering():
    assert SOURCES, "notebooks/ should hold jupytext sources NN_name.py"
    numbers = [p.name[:2] for p in SOURCES]
    assert len(set(numbers)) == len(numbers), f"two notebooks share a number: {numbers}"
    built = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert built == IDS, "every .ipynb is built from a .py source and every source is built"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebook_is_built_from_its_source(source):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("jupytext")
    built = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert make_notebooks.cells(built) == make_notebooks.cells(make_notebooks.read_source(source)), (
        f"{source.with_suffix('.ipynb').name} is stale: run "
        f"python scripts/make_notebooks.py --execute {source.stem}")
    assert make_notebooks.is_current(source)
    # built with --execute: every code cell ran, in order, and the figures are stored
    code = [c for c in built.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert _images(built) and not _errors(built)


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebook_executes(source, tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("jupytext")
    nb = make_notebooks.read_source(source)
    # its own working directory (parallel-safe); the kernel imports this checkout's tinyprune
    make_notebooks.execute(nb, tmp_path, timeout=3 * BUDGET_SECONDS)
    assert _errors(nb) == []
    assert _images(nb), "the notebook should show at least one figure"
    # The 90 s budget is measured by `make_notebooks.py --execute` and listed in
    # notebooks/README.md, not asserted here (no timed assertions in tests); the timeout above
    # only stops a notebook that hangs.


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebook_is_listed_in_the_readmes(source):
    for readme in (ROOT / "README.md", ROOT / "notebooks" / "README.md"):
        assert source.stem in readme.read_text(), f"{readme.name} should mention {source.stem}"


def test_check_mode_reports_a_stale_notebook(tmp_path, capsys, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("jupytext")
    src = tmp_path / "01_demo.py"
    src.write_text("# %% [markdown]\n# # Demo\n\n# %%\nx = 1\n")
    monkeypatch.setattr(make_notebooks, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(make_notebooks, "ROOT", tmp_path)
    assert make_notebooks.main(["--check"]) == 1  # no .ipynb yet
    assert "stale: 01_demo.ipynb" in capsys.readouterr().out
    assert make_notebooks.main([]) == 0  # build without executing
    nb = nbformat.read(src.with_suffix(".ipynb"), as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    assert make_notebooks.main(["--check"]) == 0
    src.write_text("# %% [markdown]\n# # Demo\n\n# %%\nx = 2\n")  # edited source
    assert make_notebooks.main(["--check"]) == 1
    assert make_notebooks.main(["--check", "99_missing"]) == 2
