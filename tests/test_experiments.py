"""Every experiment script runs with --quick --json and prints the contract's keys (not `met`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["retrain_matters", "han_12x", "agp_vs_oneshot", "lottery", "filter_ordering",
           "sensitivity_first_layer", "int8_ptq", "deep_compression", "low_bits",
           "kmeans_bits"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_quick_run_prints_the_contract(name):
    # small matrices: one BLAS thread is faster, and polite on a shared machine
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--quick",
                           "--json"], capture_output=True, text=True, timeout=600, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert {"claim", "target", "measured", "met"} <= set(out)
    assert out["experiment"] == name and out["quick"] is True and out["seeds"] == [0]
    assert isinstance(out["claim"], str) and isinstance(out["target"], str)
    assert isinstance(out["measured"], dict) and out["measured"]
    assert isinstance(out["met"], bool)


def test_results_rows_and_sections_are_replaced_in_place(tmp_path):
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import _common
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    path = tmp_path / "RESULTS.md"
    _common.write_row("a", "claim a", "t", "s1", True, [0], 60, path=path)
    _common.write_section("a: table", "| x |\n|---|\n| 1 |", path=path)
    _common.write_section("b: notes", "first", path=path)
    once = path.read_text()
    _common.write_section("a: table", "| x |\n|---|\n| 1 |", path=path)
    assert path.read_text() == once  # idempotent
    _common.write_section("a: table", "| x |\n|---|\n| 2 |", path=path)  # replaced in place
    _common.write_row("b", "claim b | pipe", "t", "s", False, [0, 1], 90, path=path)  # new row
    _common.write_row("a", "claim a", "t", "s2", True, [0], 60, path=path)  # replaced row
    text = path.read_text()
    assert text.startswith(_common.HEADER)
    table, sections = text.split("\n## ", 1)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [r.split(" | ")[0] for r in rows] == ["| `a`", "| `b`"]  # rows stay above sections
    assert "s2" in rows[0] and "s1" not in text and "claim b / pipe" in rows[1]
    assert sections == "a: table\n\n| x |\n|---|\n| 2 |\n\n## b: notes\n\nfirst\n"
