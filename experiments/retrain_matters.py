"""retrain_matters: LeNet-300-100 pruned 90% by magnitude, with vs without retraining.

Han et al. 2015 ("Learning both Weights and Connections"): pruning alone costs accuracy at high
sparsity; retraining the survivors recovers it. Fair comparison: the dense baseline gets the same
extra epochs at the same (tenth) learning rate as the retraining.
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
from tinyprune.prune import prune_model, set_masks_

SPARSITY = 0.9


def main():
    args = parse_args(__doc__)
    data = load(args.quick)
    x_te, y_te = data[4], data[5]
    epochs, retrain = (3, 1) if args.quick else (10, 3)
    rows = {"dense": [], "pruned_no_retrain": [], "pruned_retrained": [], "dense_epochs_E": []}
    kept = None
    for seed in args.seeds:
        base = trained(lenet_300_100, seed, epochs, data, args.quick, "lenet300")
        rows["dense_epochs_E"].append(accuracy(base, x_te, y_te))
        pruned = base.copy()
        names = weight_names(pruned)
        set_masks_(pruned, prune_model(pruned, names, SPARSITY, global_ranking=True))
        kept = kept_fraction(pruned, names)
        rows["pruned_no_retrain"].append(accuracy(pruned, x_te, y_te))
        train(pruned, data[0], data[1], epochs=retrain, lr=LR / 10, seed=1000 + seed)
        rows["pruned_retrained"].append(accuracy(pruned, x_te, y_te))
        dense = base.copy()  # the same extra epochs and learning rate, no pruning
        train(dense, data[0], data[1], epochs=retrain, lr=LR / 10, seed=1000 + seed)
        rows["dense"].append(accuracy(dense, x_te, y_te))
    m = {k: stats(v) for k, v in rows.items()}
    m.update({"weights_kept": round(kept, 4), "epochs": epochs, "retrain_epochs": retrain,
              "lr": LR, "retrain_lr": LR / 10})
    gap = m["dense"]["mean"] - m["pruned_retrained"]["mean"]
    met = gap <= 0.005
    claim = (f"LeNet-300-100, {SPARSITY:.0%} of the weights pruned by global magnitude after "
             f"{epochs} epochs: retraining {retrain} epochs at lr/10 recovers the dense accuracy "
             f"(dense trained the same {epochs}+{retrain} epochs)")
    summary = (f"dense {pm(m['dense'])}; pruned, no retraining {pm(m['pruned_no_retrain'])}; "
               f"pruned + retrained {pm(m['pruned_retrained'])}")
    finish(args, "retrain_matters", claim, "retrained within 0.5 pt of dense", m, met, summary)


if __name__ == "__main__":
    main()
