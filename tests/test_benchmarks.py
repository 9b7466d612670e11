"""The benchmark scripts run and report the keys the issues ask for (a smoke run; no timing is
asserted: speed is measured by the scripts themselves, never by tests)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--json"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _positive(v):
    return isinstance(v, float | int) and math.isfinite(v) and v > 0


def test_bench_prune_reports_mask_times_and_thinning_ratio():
    result = _run("bench_prune.py")
    assert set(result["mask_ms"]) == {"element", "vector", "kernel", "channel", "input_channel",
                                      "nm_2_4"}
    assert all(_positive(v) for v in result["mask_ms"].values())
    t = result["thinning"]
    assert _positive(result["thinning_speedup_vs_mac_ratio"])
    assert result["thinning_speedup_vs_mac_ratio"] == t["thinning_speedup_vs_mac_ratio"]
    assert t["macs_dense"] == 11_992_448  # the lecture net
    assert t["macs_thin"] * 3 < t["macs_dense"]  # 50% of conv1/conv2/fc1 channels gone
    assert t["params_thin"] < t["params_dense"] / 3
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:  # the peer figure: the same two networks in torch
        assert _positive(result["torch_thinning_speedup_vs_mac_ratio"])
    assert _positive(result["nm_matmul"]["nm_ms"])
    assert result["nm_matmul"]["nm_bytes"] < result["nm_matmul"]["dense_bytes"]


def test_bench_engine_reports_the_four_ratios():
    pytest.importorskip("torch")
    result = _run("bench_engine.py")
    for key in ("train_b64_ratio", "train_b128_ratio", "infer_b1000_ratio",
                "mlp_train_b128_ratio"):
        assert _positive(result[key]), key
    for case in result["cases"].values():
        assert _positive(case["tinyprune_images_per_s"]) and _positive(case["torch_images_per_s"])


def test_bench_sensitivity_times_both_scans_and_they_agree():
    result = _run("bench_sensitivity.py")
    assert (result["layers"], result["ratios"]) == (4, 10)  # the lecture net, r = 0 .. 0.9
    assert result["same_table"] is True
    for key in ("fast_s", "reference_s", "fast_min_s", "reference_min_s", "speedup"):
        assert _positive(result[key]), key


def test_bench_quant_reports_calibration_kmeans_and_inference_times():
    result = _run("bench_quant.py")
    for key in ("calibrate_lecture_net", "calibrate_lenet_300_100", "kmeans_fc1_32"):
        assert _positive(result[key]["median_ms"]) and _positive(result[key]["min_ms"]), key
    assert result["kmeans_fc1_32"]["weights"] == 128 * 9216
    for name in ("lecture_net", "lenet_300_100"):
        case = result[f"inference_{name}"]
        assert _positive(case["float"]["median_ms"]) and _positive(case["integer"]["median_ms"])
        assert _positive(case["integer_over_float"])
