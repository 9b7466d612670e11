"""Sensitivity-scan benchmark: the lecture net's 4 layers x 10 ratios on the embedded subset.

The scan (:func:`tinyprune.prune.sensitivity.sensitivity_scan`) evaluates the network 40 times on
the validation images; its fast path runs the layers below the pruned one once per layer and only
the rest of the network per ratio. This script times the fast scan against the plain reference
scan (:func:`~tinyprune.prune.sensitivity.sensitivity_scan_naive`) in alternating blocks, reports
the medians and minima in seconds, and checks that both give the same table.

Usage: ``python benchmarks/bench_sensitivity.py [--json] [--repeats 3] [--val 600] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402 - after the thread setting

from tinyprune.datasets import load_dataset  # noqa: E402
from tinyprune.nn import lecture_net  # noqa: E402
from tinyprune.prune.sensitivity import (  # noqa: E402
    sensitivity_scan,
    sensitivity_scan_naive,
    validation_split,
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeats", type=int, default=3, help="timed scans per path")
    ap.add_argument("--val", type=int, default=600, help="validation images")
    ap.add_argument("--quick", action="store_true", help="1 repeat on 200 images (smoke run)")
    args = ap.parse_args()
    repeats, n_val = (1, 200) if args.quick else (args.repeats, args.val)

    data = load_dataset("fashion-mnist-small", normalize=True)
    _, _, x_val, y_val = validation_split(data.x_train, data.y_train, 0.1, rng=0)
    x_val, y_val = x_val[:n_val], y_val[:n_val]
    model = lecture_net(seed=0)  # untrained: the timing does not depend on the weights' values

    times = {"fast": [], "reference": []}
    results = {}
    for _ in range(repeats):  # alternating blocks: drift of the machine hits both paths alike
        for name, scan in (("fast", sensitivity_scan), ("reference", sensitivity_scan_naive)):
            t0 = time.perf_counter()
            results[name] = scan(model, x_val, y_val)
            times[name].append(time.perf_counter() - t0)
    same = bool(np.array_equal(results["fast"].accuracy, results["reference"].accuracy))
    out = {"layers": len(results["fast"].layers), "ratios": len(results["fast"].ratios),
           "val_images": int(x_val.shape[0]), "repeats": repeats, "same_table": same}
    for name, ts in times.items():
        out[f"{name}_s"] = round(statistics.median(ts), 3)
        out[f"{name}_min_s"] = round(min(ts), 3)
    out["speedup"] = round(out["reference_s"] / out["fast_s"], 2)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>16}: {v}")


if __name__ == "__main__":
    main()
