"""The low-rank and distillation experiments run with --quick --json and report the contract's
keys (a smoke run on the embedded subset: no accuracy is asserted, only the report's shape and
the figures that do not depend on training)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / script), "--quick", "--json"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert {"claim", "target", "measured", "met"} <= set(result)
    assert isinstance(result["claim"], str) and isinstance(result["target"], str)
    assert isinstance(result["met"], bool) and result["quick"] is True
    return result


def _fraction(v):
    return isinstance(v, float) and 0.0 <= v <= 1.0


@pytest.mark.slow
def test_lowrank_fc1_quick_reports_rank_accuracies_and_speed():
    m = _run("lowrank_fc1.py")["measured"]
    assert m["rank"] == 25 and m["fc1_weight_reduction"] >= 0.8
    assert m["model_params_factorized"] == m["model_params_dense"] - 9216 * 128 + 25 * (9216 + 128)
    for key in ("dense_test_accuracy", "dense_continued_test_accuracy",
                "test_accuracy_before_finetune", "test_accuracy_after_finetune", "energy_of_rank"):
        assert _fraction(m[key]), key
    assert isinstance(m["seed"], int)
    ranks = [p["rank"] for p in m["accuracy_vs_energy"]]
    assert ranks == sorted(ranks) and all(p["kept_energy"] >= p["energy"]
                                          for p in m["accuracy_vs_energy"])
    speed = m["fc1_speed"]
    assert speed["mac_reduction_ratio"] == pytest.approx(9216 * 128 / (25 * 9344))
    for key in ("dense_ms_min", "factorized_ms_min", "speedup_min", "speedup_vs_mac_ratio"):
        assert math.isfinite(speed[key]) and speed[key] > 0, key


@pytest.mark.slow
def test_distillation_gap_quick_reports_seeds_grid_and_gap():
    m = _run("distillation_gap.py")["measured"]
    assert m["seeds"] == [0, 1, 2]
    for key in ("student_plain_test_accuracy", "student_kd_test_accuracy"):
        stats = m[key]
        assert len(stats["values"]) == 3 and all(_fraction(v) for v in stats["values"])
        assert stats["mean"] == pytest.approx(sum(stats["values"]) / 3)
        assert stats["std"] >= 0
    assert _fraction(m["teacher_test_accuracy"])
    assert m["gap_closed"] is None or isinstance(m["gap_closed"], float)
    best = max(m["validation_grid"], key=lambda g: g["val_accuracy"])
    assert best["val_accuracy"] == max(g["val_accuracy"] for g in m["validation_grid"])
    assert (m["best_temperature"], m["best_alpha"]) in {
        (g["temperature"], g["alpha"]) for g in m["validation_grid"]
        if g["val_accuracy"] == best["val_accuracy"]}
    assert m["student_params"] < m["teacher_params"] / 10
