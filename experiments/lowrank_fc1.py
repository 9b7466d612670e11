"""Low-rank fc1: the lecture net's fc1 with 80% fewer weights, within 0.5 pt of dense.

Claim (Xue, Li & Gong, Interspeech 2013): replacing each weight matrix by its truncated SVD and
fine-tuning removes 80% of a DNN's parameters at no loss of accuracy. Here: the lecture net is
trained on Fashion-MNIST; ``fc1`` (128 x 9216, 1.18M of its 1.2M weights) is factorized by
``tinyprune.lowrank.factorize_model`` at the largest rank that keeps at most 20% of its weights
(rank 25: 25 x (9216 + 128) = 233,600 weights), then the whole network is fine-tuned.

The dense network is trained on the same extra images as the fine-tuning (the control), and the
gap is measured against the better of the two dense models.

Also measured: test accuracy against the kept energy of fc1's singular values (no fine-tuning),
and the time of fc1's forward pass, dense against factorized, beside the reduction in
multiply-accumulates (``speedup_vs_mac_ratio`` = 1 when the time falls as much as the arithmetic).

Usage: ``python experiments/lowrank_fc1.py [--quick] [--json]``
"""

from __future__ import annotations

import _lowrank_distill_common as common  # sets the BLAS thread count before numpy loads
import numpy as np

from tinyprune.lowrank import energy_curve, factorize_model, factorized_layers, singular_values
from tinyprune.nn.layers import Linear
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import fit

SEED = 0
ENERGIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
REDUCTION = 0.8


def time_fc1(rank: int, batch: int, repeats: int, seed: int = 0) -> dict:
    """Forward time of a dense 9216 -> 128 Linear and of its rank-``rank`` factors on a batch."""
    from tinyprune.lowrank import factorize_linear

    dense = Linear(9216, 128, rng=seed)
    first, second = factorize_linear(dense, rank)
    x = np.random.default_rng(seed).random((batch, 9216), dtype=np.float32)
    t = common.alternating_ms(lambda: dense.forward(x), lambda: second.forward(first.forward(x)),
                              repeats)
    macs_dense = 9216 * 128
    macs_fact = rank * (9216 + 128)
    mac_ratio = macs_dense / macs_fact
    speedup = t["a_min"] / t["b_min"]
    return {"batch": batch, "rank": rank, "dense_ms_min": t["a_min"],
            "dense_ms_median": t["a_median"], "factorized_ms_min": t["b_min"],
            "factorized_ms_median": t["b_median"], "speedup_min": speedup,
            "speedup_median": t["a_median"] / t["b_median"], "mac_reduction_ratio": mac_ratio,
            "speedup_vs_mac_ratio": speedup / mac_ratio}


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    quick = args.quick
    x_tr, y_tr, _, _, x_te, y_te, data_name = common.load_data(quick)
    if quick:  # a smoke run: a slice of the embedded subset, one short epoch each
        x_tr, y_tr, x_te, y_te = x_tr[:1500], y_tr[:1500], x_te[:500], y_te[:500]
        dense_epochs, ft_samples, repeats = 1, 750, 6
    else:
        # epochs cut (1 dense epoch, half an epoch of fine-tuning) to keep a CPU run ~10 minutes
        dense_epochs, ft_samples, repeats = 1, x_tr.shape[0] // 2, 40

    dense = common.train_lecture_net(x_tr, y_tr, epochs=dense_epochs, seed=SEED)
    acc_dense = common.accuracy(dense, x_te, y_te)

    s = singular_values(dense.params["fc1.weight"])
    curve = energy_curve(s)
    sweep = []
    for e in ENERGIES:
        model = factorize_model(dense, {"fc1": {"energy": e}})
        r = factorized_layers(model)["fc1"]
        sweep.append({"energy": e, "rank": r, "kept_energy": float(curve[r - 1]),
                      "fc1_weight_reduction": 1 - r * (9216 + 128) / (9216 * 128),
                      "test_accuracy": common.accuracy(model, x_te, y_te)})

    small = factorize_model(dense, {"fc1": {"reduction": REDUCTION}})
    rank = factorized_layers(small)["fc1"]
    acc_before_ft = common.accuracy(small, x_te, y_te)
    rng = np.random.default_rng(SEED + 1)
    part = np.sort(rng.permutation(x_tr.shape[0])[:ft_samples])
    continued = dense.copy()  # the control: dense trained on the same extra images
    for model in (small, continued):
        fit(model, x_tr[part], y_tr[part], optimizer=SGD(model.params, lr=0.005, momentum=0.9),
            epochs=1, batch_size=64, rng=SEED + 2, progress=False)
    acc_ft = common.accuracy(small, x_te, y_te)
    acc_continued = common.accuracy(continued, x_te, y_te)
    fc1_reduction = 1 - rank * (9216 + 128) / (9216 * 128)
    reference = max(acc_dense, acc_continued)  # the better dense model is the bar
    gap_pt = 100 * (reference - acc_ft)
    speed = time_fc1(rank, batch=256, repeats=repeats)

    measured = {
        "seed": SEED, "dataset": data_name, "dense_epochs": dense_epochs,
        "finetune_samples": int(ft_samples), "dense_test_accuracy": acc_dense,
        "dense_continued_test_accuracy": acc_continued,
        "rank": rank, "fc1_weight_reduction": fc1_reduction,
        "model_params_dense": dense.num_parameters(), "model_params_factorized":
            small.num_parameters(),
        "test_accuracy_before_finetune": acc_before_ft, "test_accuracy_after_finetune": acc_ft,
        "gap_pt": gap_pt, "gap_reference": "max(dense, dense_continued)",
        "energy_of_rank": float(curve[rank - 1]),
        "accuracy_vs_energy": sweep, "fc1_speed": speed,
    }
    result = {
        "claim": (f"lecture net fc1 factorized by SVD with {fc1_reduction:.1%} fewer weights "
                  f"(rank {rank}) is within 0.5 pt of dense after fine-tuning (Xue et al. 2013: "
                  f"80% fewer parameters, no loss); dense {dense_epochs} epoch(s), then factorized and "
                  f"dense (control) both trained on {ft_samples} more images, seed {SEED}"
                  + ("" if quick else "; epochs cut to keep the CPU run near 10 minutes")),
        "target": "fc1 weights -80%, test accuracy >= best dense (with or without the extra "
                  "training) - 0.5 pt",
        "measured": measured,
        "met": bool(fc1_reduction >= REDUCTION - 1e-9 and gap_pt <= 0.5),
    }
    row = (f"dense {acc_dense:.2%} (+extra training {acc_continued:.2%}), rank {rank} "
           f"({fc1_reduction:.1%} of fc1 removed): "
           f"{acc_before_ft:.2%} before / {acc_ft:.2%} after fine-tuning (gap {gap_pt:+.2f} pt); "
           f"fc1 forward x{speed['speedup_min']:.2f} faster for x{speed['mac_reduction_ratio']:.2f} "
           f"fewer MACs; accuracy vs energy: " + ", ".join(
               f"{p['energy']:.2f}->r{p['rank']} {p['test_accuracy']:.1%}" for p in sweep))
    common.report("lowrank_fc1", result, as_json=args.json, quick=quick, row=row)


if __name__ == "__main__":
    main()
