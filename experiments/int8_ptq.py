"""int8_ptq: integer-only int8 inference loses at most 0.3 pt of float accuracy (Jacob et al. 2018).

Jacob et al. 2018 run networks with 8-bit integer arithmetic only (int8 weights, uint8
activations, int32 accumulators and biases, fixed-point requantization) at a small accuracy cost.
Here, post-training (no quantization-aware training): the lecture net and LeNet-5 are trained in
float (SGD, as the other scripts), converted by ``tinyprune.quantize.convert`` (per-channel
symmetric int8 weights, min-max activation ranges on ``N_CAL`` *training* images drawn with the
seed) and evaluated on the test set with integers only, against the float model. No choice is
tuned, so the validation split is only reported.

Timing: the float model and the integer model on the same test images, best of a few alternating
runs. NumPy has no int8 matrix product: the integer GEMMs run as exact float64 BLAS products of
the integers (float64 is half the speed of the float model's float32), and the int64
requantization adds passes over every output, so the integer model is *slower* here. On int8
hardware (gemmlowp, Jacob et al.'s ARM figures) the same arithmetic is faster than float; this
measures NumPy, not the method.
"""

import time

import numpy as np
from _common import accuracy, finish, load, parse_args, stats, trained

from tinyprune.nn import lecture_net, lenet5
from tinyprune.quantize import convert

N_CAL = 1000
TIME_IMAGES, TIME_REPEATS = 1000, 3


def best_time(fn, repeats):
    """Smallest wall time of ``repeats`` calls of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def float_logits(model, x, batch=500):
    return np.concatenate([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)])


def one_run(build, tag, epochs, seed, data, quick):
    x_tr, x_val, y_val, x_te, y_te = data[0], data[2], data[3], data[4], data[5]
    model = trained(build, seed, epochs, data, quick, tag)
    rng = np.random.default_rng(1000 + seed)
    cal = x_tr[rng.choice(x_tr.shape[0], size=min(N_CAL, x_tr.shape[0]), replace=False)]
    im = convert(model, cal, per_channel=True)
    z_float = float_logits(model, x_te)  # (N, 10)
    z_int = im.predict(x_te)  # (N, 10), integer arithmetic
    x_t = x_te[:TIME_IMAGES]
    t_float, t_int = [], []
    for _ in range(TIME_REPEATS):  # alternating, so load changes hit both
        t_float.append(best_time(lambda: model(x_t), 1))
        t_int.append(best_time(lambda: im.predict(x_t), 1))
    return {
        "float": accuracy(model, x_te, y_te),
        "integer": float(np.mean(z_int.argmax(1) == y_te)),
        "float_val": accuracy(model, x_val, y_val),
        "integer_val": float(np.mean(im.predict(x_val).argmax(1) == y_val)),
        "agreement": float(np.mean(z_int.argmax(1) == z_float.argmax(1))),
        "logit_rel_err": float(np.linalg.norm(z_int - z_float) / np.linalg.norm(z_float)),
        "ms_float": 1e3 * min(t_float), "ms_integer": 1e3 * min(t_int),
    }


def main():
    args = parse_args(__doc__)
    data = load(args.quick)
    nets = {"lecture_net": (lecture_net, "lecture", 1 if args.quick else 2),
            "lenet5": (lenet5, "lenet5", 2 if args.quick else 4)}
    measured, parts, met = {}, [], True
    for name, (build, tag, epochs) in nets.items():
        runs = [one_run(build, tag, epochs, seed, data, args.quick) for seed in args.seeds]
        m = {k: stats([r[k] for r in runs]) for k in runs[0]}
        gap = stats([100 * (r["float"] - r["integer"]) for r in runs])  # points
        ratio = stats([r["ms_integer"] / r["ms_float"] for r in runs])
        m.update(epochs=epochs, gap_pt=gap, integer_over_float_time=ratio)
        measured[name] = m
        met &= gap["mean"] <= 0.3
        parts.append(f"{name} ({epochs} ep): float {100 * m['float']['mean']:.2f}% ± "
                     f"{100 * m['float']['std']:.2f}, integer {100 * m['integer']['mean']:.2f}% ± "
                     f"{100 * m['integer']['std']:.2f} (drop {gap['mean']:+.2f} ± {gap['std']:.2f}"
                     f" pt; logits rel. error {100 * m['logit_rel_err']['mean']:.1f}%; "
                     f"predictions agree {100 * m['agreement']['mean']:.1f}%); integer inference "
                     f"x{ratio['mean']:.1f} the float time")
    measured.update(calibration_images=N_CAL, timed_images=TIME_IMAGES,
                    timing_note="NumPy has no int8 GEMM: integer products run as exact float64 "
                                "BLAS, plus int64 requantization; slower than float32 here, not "
                                "on int8 hardware")
    claim = (f"integer-only inference (int8 per-channel weights, uint8 activations, int32 "
             f"accumulators, fixed-point requantization; post-training, {N_CAL} training images "
             f"calibrate the ranges) is within 0.3 pt of float accuracy (Jacob et al. 2018)")
    summary = "; ".join(parts) + " (NumPy has no int8 GEMM: float64 BLAS stands in)"
    finish(args, "int8_ptq", claim, "float - integer test accuracy <= 0.3 pt (mean over seeds), "
           "lecture net and LeNet-5", measured, met, summary)


if __name__ == "__main__":
    main()
