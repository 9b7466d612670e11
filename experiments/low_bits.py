"""low_bits: accuracy vs bits of uniform affine quantization, per-tensor vs per-channel, PTQ vs QAT.

Krishnamoorthi 2018 (whitepaper, sec. 3-4, tables 2-4) and Jacob et al. 2018: at 8 bits
post-training quantization (PTQ) is nearly free; at 4 bits per-tensor weights lose much more
than per-channel ones (one scale per output channel follows each row's own range), and
quantization-aware training (QAT: fine-tuning with fake quantization, straight-through
estimator) recovers most of what PTQ loses.

Setting: the float model is trained (LeNet-300-100: 10 epochs at lr 0.05, SGD momentum 0.9;
``--model lenet5``: LeNet-5, 4 epochs at lr 0.02, bits 8, 4, 2 only and one QAT epoch, as its
convolutions are slow in NumPy; it has no ReLU after its convolutions, so only fc1's output is
an 8-bit activation). Weights: ``bits`` in 8, 6, 5, 4, 3, 2, signed symmetric (``Z = 0``),
min-max range, per tensor or per output channel. Activations: 8 bits after every ReLU
(unsigned, asymmetric, per tensor; the input and the logits stay float), ranges calibrated
(EMA of min/max) on 2,048 training images. PTQ = calibrate and freeze. QAT = the same start,
then ``qat_epochs`` of SGD with fake quantization; activation ranges keep adapting (EMA) and
every range freezes after half the steps (``FreezeObservers``). The QAT learning rate is chosen
per (bits, scheme, seed) on the validation split from a small grid; the float reference gets
the same extra epochs at its own validation-chosen rate ("float + ft"), so QAT is not credited
with mere extra training.

``met`` (4-bit weights, means over the seeds of test accuracy):

* per-channel PTQ beats per-tensor PTQ by more than the larger of their two seed stds;
* QAT recovers at least half of PTQ's loss, per tensor (where PTQ loses the most):
  ``(QAT - PTQ) / (float_ft - PTQ) >= 0.5`` (when PTQ loses nothing, QAT >= PTQ suffices).
"""

import numpy as np
from _common import (
    LR,
    accuracy,
    finish,
    load,
    parse_args,
    stats,
    train,
    trained,
)

from tinyprune.nn import lenet5, lenet_300_100
from tinyprune.quantize import FreezeObservers, calibrate, prepare_qat

BITS = (8, 6, 5, 4, 3, 2)
SCHEMES = {"per-tensor": False, "per-channel": True}
N_CAL = 2048
# 0.01, 0.001 (a first full run also tried 0.0001: never chosen on validation, so dropping it
# changes no figure and saves a third of the time)
QAT_LRS = (LR / 5, LR / 50)
# model -> (builder, cache tag, dense epochs, dense lr, QAT epochs, bit widths); LeNet-5's convs
# cost ~15x LeNet-300-100's epoch in NumPy, so it gets fewer bit widths and one QAT epoch
MODELS = {"lenet300": (lenet_300_100, "lenet300", 10, LR, 2, BITS),
          "lenet5": (lenet5, "lenet5", 4, 0.02, 1, (8, 4, 2))}


def _extra(p):
    p.add_argument("--model", choices=tuple(MODELS), default="lenet300",
                   help="LeNet-300-100 (default) or LeNet-5")


def qat_run(base, bits, per_channel, x_cal, data, *, epochs, lr, seed):
    """The QAT model: calibrated start (ranges not frozen), ``epochs`` of fake-quantized SGD,
    ranges frozen after half the steps."""
    q = calibrate(prepare_qat(base, bits=bits, per_channel=per_channel), x_cal, freeze=False)
    steps = epochs * -(-data[0].shape[0] // 128)
    train(q, data[0], data[1], epochs=epochs, lr=lr, seed=seed,
          callbacks=[FreezeObservers(steps // 2)])
    return q


def best_on_val(make, lrs, data):
    """``(model, lr)`` with the best validation accuracy among ``make(lr)`` for ``lr`` in
    ``lrs`` (first on ties)."""
    best = None
    for lr in lrs:
        with np.errstate(over="ignore", invalid="ignore"):
            m = make(lr)
        val = accuracy(m, data[2], data[3])
        if best is None or val > best[0]:
            best = (val, m, lr)
    return best[1], best[2]


def pct(s):
    return f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}"


def main():
    args = parse_args(__doc__, _extra)
    data = load(args.quick)
    x_te, y_te = data[4], data[5]
    build, tag, epochs, dense_lr, qat_epochs, bits_list = MODELS[args.model]
    lrs = QAT_LRS
    if args.quick:
        bits_list, lrs = (8, 4, 2), (LR / 50,)
    if args.quick:
        epochs, qat_epochs = min(epochs, 3), 1
    x_cal = data[0][:N_CAL]
    acc = {"float": [], "float_ft": []}
    chosen = {}
    for seed in args.seeds:
        base = trained(build, seed, epochs, data, args.quick, tag, lr=dense_lr)
        acc["float"].append(accuracy(base, x_te, y_te))

        def float_ft(lr, base=base, seed=seed):
            m = base.copy()
            train(m, data[0], data[1], epochs=qat_epochs, lr=lr, seed=1000 + seed)
            return m

        m, lr = best_on_val(float_ft, lrs, data)
        acc["float_ft"].append(accuracy(m, x_te, y_te))
        chosen.setdefault("float_ft", []).append(lr)
        for bits in bits_list:
            for scheme, per_channel in SCHEMES.items():
                ptq = calibrate(prepare_qat(base, bits=bits, per_channel=per_channel), x_cal)
                acc.setdefault(f"ptq {scheme} {bits}", []).append(accuracy(ptq, x_te, y_te))

                def qat(lr, base=base, bits=bits, per_channel=per_channel, seed=seed):
                    return qat_run(base, bits, per_channel, x_cal, data, epochs=qat_epochs,
                                   lr=lr, seed=1000 + seed)

                q, lr = best_on_val(qat, lrs, data)
                acc.setdefault(f"qat {scheme} {bits}", []).append(accuracy(q, x_te, y_te))
                chosen.setdefault(f"qat {scheme} {bits}", []).append(lr)
    m = {k: stats(v) for k, v in acc.items()}
    m["lr_chosen_on_val"] = chosen
    m.update({"dense_epochs": epochs, "qat_epochs": qat_epochs, "calibration_images": N_CAL,
              "weights": "b-bit signed symmetric min-max", "activations": "8-bit after ReLU"})

    b = 4
    pt, pc = m[f"ptq per-tensor {b}"], m[f"ptq per-channel {b}"]
    margin = pc["mean"] - pt["mean"]
    channel_ok = margin > max(pc["std"], pt["std"])
    qt = m[f"qat per-tensor {b}"]
    lost = m["float_ft"]["mean"] - pt["mean"]
    recovered = (qt["mean"] - pt["mean"]) / lost if lost > 0 else None
    qat_ok = recovered >= 0.5 if recovered is not None else qt["mean"] >= pt["mean"]
    qc = m[f"qat per-channel {b}"]
    lost_c = m["float_ft"]["mean"] - pc["mean"]
    recovered_c = (qc["mean"] - pc["mean"]) / lost_c if lost_c > 0 else None
    m.update({"per_channel_margin_4bit": round(margin, 4),
              "qat_recovered_4bit_per_tensor": None if recovered is None else round(recovered, 3),
              "qat_recovered_4bit_per_channel":
                  None if recovered_c is None else round(recovered_c, 3)})

    def rec(r):
        return "n/a (no PTQ loss)" if r is None else f"{100 * r:.0f}%"

    name = "low_bits" if args.model == "lenet300" else f"low_bits_{args.model}"
    title = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}[args.model]
    claim = (f"{title}, W{b}A8: per-channel beats per-tensor PTQ, and {qat_epochs} epoch(s) of "
             f"QAT recover most of PTQ's loss (Krishnamoorthi 2018; Jacob et al. 2018); weights "
             f"b-bit symmetric, activations 8-bit; float gets the same extra epochs")
    target = ("4 bits: per-channel PTQ - per-tensor PTQ > max seed std; per-tensor QAT recovers "
              ">= 50% of (float+ft - PTQ)")
    summary = (f"float {pct(m['float'])}%, float+ft {pct(m['float_ft'])}%; 4-bit PTQ per-tensor "
               f"{pct(pt)}% / per-channel {pct(pc)}% (margin {100 * margin:+.2f} pt); QAT "
               f"per-tensor {pct(qt)}% (recovers {rec(recovered)}), per-channel {pct(qc)}% "
               f"(recovers {rec(recovered_c)})")
    rows = [f"| float (32-bit) | {pct(m['float'])} | | | |",
            f"| float + {qat_epochs} epoch(s) | {pct(m['float_ft'])} | | | |"]
    for bits in bits_list:
        cells = [pct(m[f"{k} {s} {bits}"]) for s in SCHEMES for k in ("ptq", "qat")]
        rows.append(f"| W{bits}A8 | " + " | ".join(cells) + " |")
    cmd = "experiments/low_bits.py" + ("" if args.model == "lenet300" else f" --model {args.model}")
    table = "\n".join(
        [f"{title} on Fashion-MNIST, test accuracy (%) mean ± std over seeds "
         f"{' '.join(map(str, args.seeds))} (`{cmd}`). "
         f"Weights: b-bit signed symmetric (Z = 0), min-max range, per tensor or per output "
         f"channel. Activations: 8-bit after every ReLU (asymmetric, per tensor; input and logits "
         f"float), calibrated on {N_CAL} training images. QAT: {qat_epochs} epoch(s) of SGD "
         f"(momentum 0.9) with fake quantization from the calibrated start, ranges frozen after "
         f"half the steps; learning rate per cell and seed chosen on the validation split from "
         f"{', '.join(f'{x:g}' for x in lrs)}. The float + ft row is the float model trained the "
         f"same extra epochs (learning rate chosen the same way).", "",
         "| weights / activations | per-tensor PTQ | per-tensor QAT | per-channel PTQ | "
         "per-channel QAT |",
         "|---|---|---|---|---|", *rows, "",
         f"Float row: the first column is the accuracy of the float model. {summary}. "
         f"Met: {'yes' if channel_ok and qat_ok else 'no'} (per-channel margin "
         f"{'met' if channel_ok else 'not met'}, QAT recovery {'met' if qat_ok else 'not met'})."])
    finish(args, name, claim, target, m, channel_ok and qat_ok, summary,
           sections={f"{name}: accuracy vs bits ({title})": table})


if __name__ == "__main__":
    main()
