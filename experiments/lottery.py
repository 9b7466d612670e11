"""lottery: winning tickets of LeNet-300-100 vs random re-initialisation (Frankle & Carbin 2018).

Iterative magnitude pruning, 20% of the remaining fc weights per round (10% for the output layer),
survivors reset to their initial values and retrained (Adam, lr 1.2e-3, batch 60, the paper's
LeNet setting). Controls per round: the same masks with a fresh random initialisation, and random
masks of the same per-layer sparsity. Test accuracy at the early-stopping iteration (best
validation accuracy on the held-out part of the training set).
"""

from _common import finish, load, parse_args, stats

from tinyprune.nn import lenet_300_100
from tinyprune.prune.lottery import imp_rates, lottery_ticket


def main():
    args = parse_args(__doc__)
    data = load(args.quick)
    # quick: a larger rate per round to reach the <= 21% regime in 3 rounds
    rounds, epochs, fc_rate, every = (3, 1, 0.45, 30) if args.quick else (12, 2, 0.2, 150)
    runs = []
    for seed in args.seeds:
        model = lenet_300_100(seed=seed)
        res = lottery_ticket(model, *data, rounds=rounds, epochs=epochs, batch_size=60,
                             seed=seed, rates=imp_rates(model, fc_rate=fc_rate),
                             eval_every=every)
        runs.append(res.rounds)
    table = []
    for j in range(rounds + 1):
        recs = [r[j] for r in runs]
        row = {"round": j, "remaining": round(recs[0]["remaining"], 4),
               "ticket": stats(r["test_accuracy"] for r in recs),
               "early_stop_iteration": [r["early_stop_iteration"] for r in recs],
               "jaccard": None if j == 0 else round(sum(r["jaccard"] for r in recs) / len(recs),
                                                    4)}
        if j:
            row["reinit"] = stats(r["reinit_test_accuracy"] for r in recs)
            row["random_masks"] = stats(r["random_test_accuracy"] for r in recs)
        table.append(row)
    dense = table[0]["ticket"]["mean"]
    sparse = [r for r in table[1:] if r["remaining"] <= 0.21]
    beats = all(r["ticket"]["mean"] > r["reinit"]["mean"] for r in sparse) and bool(sparse)
    matching = [r["remaining"] for r in table if r["ticket"]["mean"] >= dense - 0.005]
    m = {"rounds": table, "dense": table[0]["ticket"], "epochs_per_run": epochs,
         "fc_rate": fc_rate, "ticket_beats_reinit_at_or_below_21pct": beats,
         "ticket_within_0.5pt_of_dense_down_to_remaining": min(matching)}
    last = table[-1]
    claim = (f"LeNet-300-100, IMP at {fc_rate:.0%}/round (output layer half), reset to theta_0, "
             f"{rounds} rounds, {epochs} epoch(s) per training run: winning tickets beat random "
             f"re-initialisation at <= 21% weights remaining")
    summary = (f"dense {dense:.4f}; at {last['remaining']:.1%} remaining: ticket "
               f"{last['ticket']['mean']:.4f}, reinit {last['reinit']['mean']:.4f}, random masks "
               f"{last['random_masks']['mean']:.4f}; ticket within 0.5 pt of dense down to "
               f"{min(matching):.1%}")
    finish(args, "lottery", claim,
           "tickets beat reinit at <= 21% remaining; match dense down to a few percent", m, beats,
           summary)


if __name__ == "__main__":
    main()
