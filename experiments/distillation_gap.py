"""Distillation gap: a narrow MLP student trained with and without distillation from the lecture net.

Claim (Hinton, Vinyals & Dean 2015, section 3): on MNIST a small net made 146 test errors
trained on the labels and 74 when distilled from a large net that made 67, i.e. distillation
closed (146 - 74) / (146 - 67) = 91% of the student-teacher gap. Here: the teacher is the lecture
net trained on Fashion-MNIST; the student is an MLP 784-32-10 (25k weights, 48x fewer than the
teacher), far too small to match it. Temperature ``T`` and weight ``alpha`` are chosen on a
stratified 10% validation split (seed 0), then the student is trained with plain cross-entropy
and with distillation from 3 seeds each (same initialisations and batch orders for both), and
evaluated on the test set.

Gap closed = (student_kd - student_plain) / (teacher - student_plain), test accuracies (mean
over seeds). Target: >= 50%.

Usage: ``python experiments/distillation_gap.py [--quick] [--json]``
"""

from __future__ import annotations

import _lowrank_distill_common as common  # sets the BLAS thread count before numpy loads

from tinyprune.distill import compute_teacher_logits, distill
from tinyprune.nn import Flatten, Linear, ReLU, Sequential
from tinyprune.nn.optim import Adam
from tinyprune.nn.train import fit

SEEDS = (0, 1, 2)
HIDDEN = 32
GRID_T = (2.0, 4.0, 8.0)
GRID_ALPHA = (0.5, 0.9)


def student(seed: int) -> Sequential:
    """The narrow MLP 784-32-10."""
    return Sequential([("flatten", Flatten()), ("fc1", Linear(784, HIDDEN, rng=2 * seed)),
                       ("relu1", ReLU()), ("fc2", Linear(HIDDEN, 10, rng=2 * seed + 1))],
                      input_shape=(1, 28, 28), name=f"mlp_784_{HIDDEN}_10")


def train_student(x, y, seed, epochs, zt=None, temperature=None, alpha=None):
    model = student(seed)
    opt = Adam(model.params, lr=2e-3)
    if zt is None:
        fit(model, x, y, optimizer=opt, epochs=epochs, batch_size=64, rng=100 + seed,
            progress=False)
    else:
        distill(model, None, x, y, teacher_logits=zt, temperature=temperature, alpha=alpha,
                optimizer=opt, epochs=epochs, batch_size=64, rng=100 + seed, progress=False)
    return model


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    quick = args.quick
    x_tr, y_tr, x_val, y_val, x_te, y_te, data_name = common.load_data(quick, val_fraction=0.1)
    if quick:  # a smoke run: a small teacher, a 2-point grid, few epochs
        teacher_n, teacher_epochs, epochs, grid_t, grid_a = 3000, 1, 3, (4.0,), GRID_ALPHA
    else:  # 3 teacher epochs (the learning rate / 4 for the last): clearly ahead of the student
        teacher_n, teacher_epochs, epochs, grid_t, grid_a = x_tr.shape[0], 3, 10, GRID_T, GRID_ALPHA

    teacher = common.train_lecture_net(x_tr[:teacher_n], y_tr[:teacher_n], epochs=teacher_epochs,
                                       seed=0, lr_drop_after=max(1, teacher_epochs - 1))
    acc_teacher = common.accuracy(teacher, x_te, y_te)
    zt = compute_teacher_logits(teacher, x_tr)  # (N_train, 10), once for every student

    grid = []
    for t in grid_t:
        for a in grid_a:
            model = train_student(x_tr, y_tr, SEEDS[0], epochs, zt, t, a)
            grid.append({"temperature": t, "alpha": a,
                         "val_accuracy": common.accuracy(model, x_val, y_val)})
    best = max(grid, key=lambda g: (g["val_accuracy"], -g["temperature"], -g["alpha"]))
    t_best, a_best = best["temperature"], best["alpha"]

    plain, kd = [], []
    for seed in SEEDS:
        plain.append(common.accuracy(train_student(x_tr, y_tr, seed, epochs), x_te, y_te))
        kd.append(common.accuracy(train_student(x_tr, y_tr, seed, epochs, zt, t_best, a_best),
                                  x_te, y_te))
    p, k = common.mean_std(plain), common.mean_std(kd)
    gap = acc_teacher - p["mean"]
    closed = (k["mean"] - p["mean"]) / gap if gap > 0 else None  # undefined: no gap to close
    n_test = y_te.shape[0]
    measured = {
        "seeds": list(SEEDS), "dataset": data_name, "teacher": "lecture_net",
        "teacher_train_samples": int(teacher_n), "teacher_epochs": teacher_epochs,
        "student": f"MLP 784-{HIDDEN}-10", "student_epochs": epochs,
        "student_params": student(0).num_parameters(), "teacher_params": teacher.num_parameters(),
        "teacher_test_accuracy": acc_teacher,
        "student_plain_test_accuracy": p, "student_kd_test_accuracy": k,
        "test_errors": {"teacher": round((1 - acc_teacher) * n_test),
                        "student_plain": round((1 - p["mean"]) * n_test),
                        "student_kd": round((1 - k["mean"]) * n_test), "of": n_test},
        "gap_closed": closed, "best_temperature": t_best, "best_alpha": a_best,
        "validation_grid": grid,
    }
    result = {
        "claim": (f"distillation from the lecture net closes >= 50% of the test-accuracy gap "
                  f"between a narrow MLP 784-{HIDDEN}-10 trained on labels and the teacher "
                  f"(Hinton et al. 2015: 146 -> 74 MNIST errors vs the teacher's 67, 91%); T and "
                  f"alpha chosen on a validation split, {len(SEEDS)} seeds"
                  + f"; teacher trained {teacher_epochs} epoch(s)"),
        "target": "gap closed >= 50% (mean over 3 seeds)",
        "measured": measured,
        "met": bool(closed is not None and closed >= 0.5),
    }
    row = (f"teacher {acc_teacher:.2%}; student plain {p['mean']:.2%} ± {p['std']:.2%}, "
           f"distilled {k['mean']:.2%} ± {k['std']:.2%} (T={t_best:g}, alpha={a_best:g}, seeds "
           f"{list(SEEDS)}): gap closed "
           + ("n/a (the teacher is not better)" if closed is None else f"{closed:.0%}"))
    common.report("distillation_gap", result, as_json=args.json, quick=quick, row=row)


if __name__ == "__main__":
    main()
