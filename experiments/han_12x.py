"""han_12x: iterative prune-retrain of LeNet-300-100 to 12x fewer weights.

Han et al. 2015 reached 12x fewer weights on LeNet-300-100 (MNIST) without accuracy loss by
iterating prune and retrain. Here: after dense training, ``rounds`` rounds of global magnitude
pruning (the same fraction of the remaining weights each round, ending at 1 - 1/12 = 91.7%
sparsity), each followed by retraining at lr/10; the dense baseline gets the same
extra epochs at lr/10.
"""

from _common import (
    LR,
    accuracy,
    finish,
    kept_fraction,
    load,
    parse_args,
    pm,
    stats,
    train,
    trained,
    weight_names,
)

from tinyprune.nn import lenet_300_100
from tinyprune.prune.schedules import Iterative

TARGET = 1 - 1 / 12


def main():
    args = parse_args(__doc__)
    data = load(args.quick)
    x_te, y_te = data[4], data[5]
    epochs, rounds, per_round = (3, 3, 1) if args.quick else (10, 3, 2)
    rows = {"dense": [], "iterative": []}
    for seed in args.seeds:
        base = trained(lenet_300_100, seed, epochs, data, args.quick, "lenet300")
        pruned = base.copy()
        names = weight_names(pruned)
        sched = Iterative(TARGET, rounds=rounds, epochs_per_round=per_round, targets=names,
                          global_ranking=True)
        train(pruned, data[0], data[1], epochs=rounds * per_round, lr=LR / 10, seed=2000 + seed,
              callbacks=[sched])
        kept = kept_fraction(pruned, names)
        rows["iterative"].append(accuracy(pruned, x_te, y_te))
        dense = base.copy()
        train(dense, data[0], data[1], epochs=rounds * per_round, lr=LR / 10, seed=2000 + seed)
        rows["dense"].append(accuracy(dense, x_te, y_te))
    m = {k: stats(v) for k, v in rows.items()}
    m.update({"weights_kept": round(kept, 5), "compression": round(1 / kept, 2),
              "rounds": rounds, "epochs_per_round": per_round, "dense_epochs": epochs,
              "layer_sparsity": {k: round(v, 4) for k, v in sched.log[-1]["sparsity"].items()}})
    gap = m["dense"]["mean"] - m["iterative"]["mean"]
    met = gap <= 0.005
    claim = (f"LeNet-300-100: {rounds} rounds of global magnitude pruning, {per_round} epoch(s) of "
             f"retraining at lr/10 each, after {epochs} dense epochs, reach {1 / kept:.1f}x fewer "
             f"weights without loss (dense gets the same extra epochs)")
    summary = (f"dense {pm(m['dense'])}; {1 / kept:.1f}x pruned {pm(m['iterative'])} "
               f"(gap {gap * 100:+.2f} pt)")
    finish(args, "han_12x", claim, "within 0.5 pt of dense at 12x fewer weights", m, met, summary)


if __name__ == "__main__":
    main()
