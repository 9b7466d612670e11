"""The storage benchmark runs and reports its keys (a smoke run; no timing is asserted)."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEEDS = ("csr_encode_mb_per_s", "csr_decode_mb_per_s", "huffman_encode_mb_per_s",
          "huffman_decode_mb_per_s")


def _positive(v):
    return isinstance(v, float | int) and math.isfinite(v) and v > 0


def test_bench_storage_reports_speeds_and_stage_bytes():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_storage.py"),
                           "--quick", "--json"], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    weights = [result["fc1"], *result["lenet_300_100"].values()]
    assert set(result["lenet_300_100"]) == {"fc1", "fc2", "fc3"}
    assert result["fc1"]["n_weights"] == 128 * 9216
    for r in weights:
        assert all(_positive(r[k]) for k in SPEEDS)
        b = r["bytes"]
        assert b["dense"] > b["csr"] > b["shared"] and b["huffman"] > 0
    for r in weights[:2]:  # large layers: Huffman gains more than its tables cost (not fc3's 1000)
        assert r["bytes"]["huffman"] < r["bytes"]["shared"]
    d = result["dense_fc1_huffman"]
    assert d["symbols"] == 128 * 9216 and _positive(d["decode_s"]) and _positive(d["encode_s"])
    assert set(result["models"]) == {"lecture_net", "lenet_300_100"}
    for r in result["models"].values():
        assert _positive(r["compress_mb_per_s"]) and _positive(r["decompress_mb_per_s"])
        assert r["file_bytes"] * 10 < r["dense_bytes"] and r["ratio"] > 10
