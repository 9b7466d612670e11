"""The real grading tools (otter-grader, nbgrader: the ``grading`` extra) for tests marked
``grading_tools``: :func:`require` skips a test when a tool is missing, but fails it when the
environment variable ``TINYPRUNE_REQUIRE_GRADING_TOOLS=1`` is set (CI's grading job), so a broken
install cannot pass as a run of skipped tests. :func:`run` runs a tool's command with this
Python's bin directory first on PATH (nbgrader starts ``alembic``, the kernels start ``python``:
they must be the ones beside the tools, with numpy and tinyprune installed)."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REQUIRE_ENV = "TINYPRUNE_REQUIRE_GRADING_TOOLS"
TOOLS = {"otter": ("otter", "otter"), "nbgrader": ("nbgrader", "nbgrader"),
         "ipykernel": ("ipykernel", None)}
"""tool -> (module to import, command beside sys.executable or None)."""


def missing(tool: str) -> str | None:
    """Why ``tool`` cannot be used here, or None when it can."""
    if tool not in TOOLS:
        raise ValueError(f"tool: expected one of {sorted(TOOLS)}, got {tool!r}")
    module, command = TOOLS[tool]
    if importlib.util.find_spec(module) is None:
        return f"the {module!r} module is not installed (pip install -e '.[grading]')"
    if command is not None and shutil.which(command, path=str(BIN)) is None:
        return f"the {command!r} command is not installed beside {sys.executable}"
    return None


def require(*tools: str) -> None:
    """Skip the calling test unless every tool is installed; fail instead when
    ``TINYPRUNE_REQUIRE_GRADING_TOOLS=1``."""
    for tool in tools:
        reason = missing(tool)
        if reason is None:
            continue
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{tool}: {reason}, but {REQUIRE_ENV}=1 requires it", pytrace=False)
        pytest.skip(f"{tool}: {reason}")


def run(command: str, *args, cwd, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``command`` (from :data:`BIN`) with ``args`` in ``cwd``; assert exit status 0."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run([str(BIN / command), *map(str, args)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{command} {' '.join(map(str, args))}:\n{out.stdout}\n{out.stderr}"
    return out
