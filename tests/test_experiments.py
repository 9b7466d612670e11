"""Every experiment script runs with --quick --json and prints the contract's keys (not `met`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["retrain_matters", "han_12x", "agp_vs_oneshot", "lottery", "filter_ordering",
           "sensitivity_first_layer", "int8_ptq",
           "deep_compression"]


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
