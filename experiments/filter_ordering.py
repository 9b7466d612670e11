"""filter_ordering: which conv2 filters to prune -- smallest L1, random, or largest L1 (Li et al. 2017).

Li et al., "Pruning Filters for Efficient ConvNets" (ICLR 2017), Fig. 2(b): removing the filters
with the smallest sum of absolute weights hurts least, random filters more, the largest ones most.
LeNet-5 (Caffe variant) is trained, then 50% and 75% of its conv2 filters (and their biases) are
pruned without retraining; random pruning is averaged over 5 draws per seed.
"""

import numpy as np
from _common import accuracy, finish, load, parse_args, pm, stats, trained

from tinyprune.nn import lenet5
from tinyprune.prune import l1, prune_model, set_masks_

RATIOS = (0.5, 0.75)


def largest_l1(w, granularity):
    """Scores that rank the filters with the largest L1 norm lowest (pruned first)."""
    return -l1(w, granularity)


def pruned_accuracy(model, ratio, criterion, rng, x, y):
    m = model.copy()
    set_masks_(m, prune_model(m, ["conv2"], ratio, granularity="channel", criterion=criterion,
                              rng=rng))
    return accuracy(m, x, y)


def main():
    args = parse_args(__doc__)
    data = load(args.quick)
    x_te, y_te = data[4], data[5]
    epochs = 1 if args.quick else 2
    rows = {f"{k}@{r}": [] for r in RATIOS for k in ("smallest_l1", "random", "largest_l1")}
    dense = []
    for seed in args.seeds:
        model = trained(lenet5, seed, epochs, data, args.quick, "lenet5", lr=0.02)
        dense.append(accuracy(model, x_te, y_te))
        rng = np.random.default_rng(seed)
        for r in RATIOS:
            rows[f"smallest_l1@{r}"].append(pruned_accuracy(model, r, "l1", None, x_te, y_te))
            rows[f"largest_l1@{r}"].append(pruned_accuracy(model, r, largest_l1, None, x_te,
                                                           y_te))
            rows[f"random@{r}"].append(float(np.mean(
                [pruned_accuracy(model, r, "random", rng, x_te, y_te) for _ in range(5)])))
    m = {k: stats(v) for k, v in rows.items()}
    m["dense"] = stats(dense)
    m["epochs"] = epochs
    met = all(m[f"smallest_l1@{r}"]["mean"] > m[f"random@{r}"]["mean"] > m[f"largest_l1@{r}"]["mean"]
              for r in RATIOS)
    claim = (f"LeNet-5 trained {epochs} epoch(s); conv2 filters pruned without retraining: "
             f"smallest-L1 first beats random, which beats largest-L1 first")
    summary = f"dense {pm(m['dense'])}; " + "; ".join(
        f"{r:.0%}: smallest {m[f'smallest_l1@{r}']['mean']:.4f} / random "
        f"{m[f'random@{r}']['mean']:.4f} / largest {m[f'largest_l1@{r}']['mean']:.4f}"
        for r in RATIOS)
    finish(args, "filter_ordering", claim,
           "smallest-L1 > random > largest-L1 at 50% and 75% (mean over seeds)", m, met, summary)


if __name__ == "__main__":
    main()
