"""agp_vs_oneshot: automated gradual pruning vs one-shot pruning at the same total epochs.

Zhu & Gupta 2017 ("To prune, or not to prune"): raising the sparsity gradually,
s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3, lets the network recover between steps. From the
same dense LeNet-300-100, every layer goes to 90% sparsity either at once (then fine-tuning) or
by AGP over the first two thirds of the same fine-tuning steps; the dense baseline gets the same
epochs.
"""

from _common import LR, accuracy, finish, load, parse_args, pm, stats, train, trained, weight_names

from tinyprune.nn import lenet_300_100
from tinyprune.prune.schedules import AGP, OneShot

SPARSITY = 0.9


def main():
    args = parse_args(__doc__)
    data = load(args.quick)
    x_te, y_te = data[4], data[5]
    epochs, finetune = (3, 2) if args.quick else (10, 5)
    steps = finetune * -(-data[0].shape[0] // 128)
    n_prune = 10
    dt = max(1, (2 * steps // 3) // n_prune)
    rows = {"dense": [], "agp": [], "oneshot": []}
    for seed in args.seeds:
        base = trained(lenet_300_100, seed, epochs, data, args.quick, "lenet300")
        names = weight_names(base)
        for key, cbs in (("dense", []), ("oneshot", [OneShot(SPARSITY, targets=names)]),
                         ("agp", [AGP(SPARSITY, n=n_prune, dt=dt, targets=names)])):
            model = base.copy()
            train(model, data[0], data[1], epochs=finetune, lr=LR / 10, seed=3000 + seed,
                  callbacks=cbs)
            rows[key].append(accuracy(model, x_te, y_te))
    m = {k: stats(v) for k, v in rows.items()}
    m.update({"dense_epochs": epochs, "finetune_epochs": finetune, "agp_n": n_prune,
              "agp_dt": dt, "finetune_steps": steps})
    met = (m["agp"]["mean"] >= m["dense"]["mean"] - 0.005
           and m["agp"]["mean"] > m["oneshot"]["mean"])
    claim = (f"LeNet-300-100 after {epochs} dense epochs, every layer to {SPARSITY:.0%} during "
             f"{finetune} epochs at lr/10: AGP (n={n_prune}, dt={dt} steps) vs one-shot then "
             f"fine-tune; dense gets the same epochs")
    summary = f"dense {pm(m['dense'])}; AGP {pm(m['agp'])}; one-shot {pm(m['oneshot'])}"
    finish(args, "agp_vs_oneshot", claim, "AGP within 0.5 pt of dense and ahead of one-shot", m,
           met, summary)


if __name__ == "__main__":
    main()
