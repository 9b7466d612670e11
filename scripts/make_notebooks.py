"""Build the teaching notebooks from their jupytext sources.

Every ``notebooks/NN_name.py`` (jupytext *percent* format: ``# %%`` opens a code cell,
``# %% [markdown]`` a markdown cell whose lines are comments) is the reviewable source of
``notebooks/NN_name.ipynb``. Edit the ``.py``, never the ``.ipynb``, then rebuild::

    python scripts/make_notebooks.py --execute            # every notebook, with outputs
    python scripts/make_notebooks.py --execute 03_pruning_ratios   # only the ones named
    python scripts/make_notebooks.py --check              # exit 1 if an .ipynb is stale

``--execute`` runs each notebook top to bottom (nbclient, working directory ``notebooks/``, the
kernel importing tinyprune from this checkout) and stores its outputs and figures, so the
``.ipynb`` reads well on GitHub without running anything; it prints the run time of each
(wall clock and the kernel's CPU time).
``--check`` compares the code and markdown cells of every ``.ipynb`` with its source (outputs
are ignored) and lists the stale ones; CI runs the same comparison in tests/test_notebooks.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def sources(directory: Path | None = None) -> list[Path]:
    """The notebook sources ``NN_name.py`` in ``directory`` (default notebooks/), in lecture
    order."""
    return sorted((directory or NOTEBOOKS).glob("[0-9][0-9]_*.py"))


def read_source(path: Path):
    """The notebook (nbformat v4, no outputs) described by the jupytext source ``path``."""
    import jupytext

    nb = jupytext.read(path, fmt="py:percent")
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)  # the .ipynb is built, not paired
    return nb


def cells(nb) -> list[tuple[str, str]]:
    """What the source defines: the (type, text) of every code and markdown cell."""
    return [(c.cell_type, c.source.strip()) for c in nb.cells
            if c.cell_type in ("code", "markdown")]


def is_current(source: Path) -> bool:
    """True if ``source``'s .ipynb exists and has exactly the cells of ``source``."""
    import nbformat

    built = source.with_suffix(".ipynb")
    if not built.exists():
        return False
    return cells(nbformat.read(built, as_version=4)) == cells(read_source(source))


def kernel_env(root: Path = ROOT) -> dict:
    """The environment of the kernel: this checkout first on PYTHONPATH, one BLAS thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures as outputs
    return env


class Timing(NamedTuple):
    """Run time of a notebook: ``wall`` seconds, and ``cpu`` seconds of the kernel process (user
    + system; what the run costs on one free core, whatever the machine's load)."""

    wall: float
    cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(nb, cwd: Path, *, timeout: int = 600) -> Timing:
    """Run ``nb`` in place (outputs stored in its cells) with working directory ``cwd``.
    Raises nbclient's CellExecutionError on an error. The kernel's CPU time is read from the
    finished child processes of this process, so run one notebook at a time per process."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    cpu0, start = _children_cpu(), time.perf_counter()
    client.execute(env=kernel_env())  # passed on to the kernel process
    return Timing(time.perf_counter() - start, _children_cpu() - cpu0)


def build(source: Path, *, run: bool) -> Timing | None:
    """Write ``source``'s .ipynb (executed if ``run``); return the run time or None."""
    import nbformat

    nb = read_source(source)
    timing = execute(nb, source.parent) if run else None
    nbformat.write(nb, source.with_suffix(".ipynb"))
    return timing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*",
                        help="notebooks to build (stem like 03_pruning_ratios); default all")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--execute", action="store_true",
                      help="run each notebook and store its outputs (figures)")
    mode.add_argument("--check", action="store_true",
                      help="only compare every .ipynb with its source; exit 1 if any is stale")
    args = parser.parse_args(argv)

    chosen = sources()
    if args.names:
        wanted = {Path(n).stem for n in args.names}
        unknown = wanted - {p.stem for p in chosen}
        if unknown:
            print(f"error: no notebook source named {', '.join(sorted(unknown))} in "
                  f"{NOTEBOOKS}", file=sys.stderr)
            return 2
        chosen = [p for p in chosen if p.stem in wanted]

    if args.check:
        stale = [p for p in chosen if not is_current(p)]
        for p in stale:
            print(f"stale: {p.with_suffix('.ipynb').relative_to(ROOT)} differs from "
                  f"{p.relative_to(ROOT)}; run python scripts/make_notebooks.py --execute "
                  f"{p.stem}")
        if not stale:
            print(f"{len(chosen)} notebooks are current")
        return 1 if stale else 0

    for p in chosen:
        timing = build(p, run=args.execute)
        took = "" if timing is None else (f" (executed in {timing.wall:.1f} s wall, "
                                          f"{timing.cpu:.1f} s CPU)")
        print(f"wrote {p.with_suffix('.ipynb').relative_to(ROOT)}{took}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
