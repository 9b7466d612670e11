"""Quantization benchmark: calibration, k-means weight sharing, integer against float inference.

1. Time to prepare and calibrate 8-bit affine fake quantization (``prepare_qat`` + ``calibrate``)
   of the lecture net and LeNet-300-100 on 512 calibration images.
2. k-means weight sharing of the lecture net's ``fc1`` (1.18M weights) into 32 clusters, linear
   initialisation (``cluster_weights``, the shared :mod:`tinyprune.common.kmeans`).
3. Inference of 1,000 images: the float model against the integer-only model (``convert``:
   int8 weights, uint8 activations, int32 accumulation). NumPy has no int8 matrix product, so the
   integer GEMMs run as exact float64 products of the integers (see
   :func:`tinyprune.quantize.integer.int_gemm`); the figure says what that costs here, not what
   int8 hardware would do. Both run in batches (the float model's ``inference_chunk`` of 32,
   ``IntegerModel.predict``'s default: 25 lecture-net images, 256 LeNet-300-100 images).

Medians and minima of repeats, float and integer timed in alternating blocks.
Usage: ``python benchmarks/bench_quant.py [--json] [--repeats 5] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402 - after the thread setting

from tinyprune.nn import lecture_net, lenet_300_100  # noqa: E402
from tinyprune.quantize import calibrate, cluster_weights, convert, prepare_qat  # noqa: E402


def _times(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def _summary(ts):
    return {"median_ms": round(1e3 * statistics.median(ts), 2), "min_ms": round(1e3 * min(ts), 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    ap.add_argument("--quick", action="store_true", help="1 repeat, smaller batches (smoke run)")
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    n_cal, n_inf = (64, 100) if args.quick else (512, 1000)
    rng = np.random.default_rng(0)
    x_cal = rng.standard_normal((n_cal, 1, 28, 28)).astype(np.float32)
    x_inf = rng.standard_normal((n_inf, 1, 28, 28)).astype(np.float32)
    out = {"calibration_images": n_cal, "inference_images": n_inf, "repeats": repeats}

    for name, build in (("lecture_net", lecture_net), ("lenet_300_100", lenet_300_100)):
        model = build(seed=0)
        ts = _times(lambda m=model: calibrate(prepare_qat(m, bits=8), x_cal), repeats)
        out[f"calibrate_{name}"] = _summary(ts)

    w = lecture_net(seed=0)["fc1"].params["weight"]  # (128, 9216)
    ts = _times(lambda: cluster_weights(w, 5, init="linear"), repeats)  # 2**5 = 32 clusters
    out["kmeans_fc1_32"] = {**_summary(ts), "weights": int(w.size)}

    for name, build in (("lecture_net", lecture_net), ("lenet_300_100", lenet_300_100)):
        model = build(seed=0)
        integer = convert(model, x_cal)
        float_ts, int_ts = [], []
        for _ in range(repeats):  # alternating blocks
            float_ts += _times(lambda m=model: m(x_inf), 1)
            int_ts += _times(lambda m=integer: m.predict(x_inf), 1)  # batched, as the float
        f, i = _summary(float_ts), _summary(int_ts)
        out[f"inference_{name}"] = {"float": f, "integer": i,
                                    "integer_over_float": round(i["median_ms"] / f["median_ms"], 2)}
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
