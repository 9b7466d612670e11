"""sensitivity_first_layer: is the lecture net's first layer the most sensitive to pruning?

The lecture ("Finding pruning ratios"): layers differ in sensitivity, "some layers are more
sensitive (e.g., first layer)". The lecture net is trained, then each layer alone is pruned at
r = 0, 0.1, ..., 0.9 (L1 magnitude, element-wise) and evaluated on the validation split
(sensitivity_scan); the layer with the largest mean accuracy drop over the ratios is the most
sensitive. The scan's wall time (prefix-cached fast path and reference) is reported, and the
threshold T for an overall 80% pruning rate.
"""

import time

from _common import finish, load, parse_args, trained

from tinyprune.nn import lecture_net
from tinyprune.prune.sensitivity import format_sensitivity, sensitivity_scan, sensitivity_scan_naive


def main():
    args = parse_args(__doc__, lambda p: p.add_argument(
        "--reference", action="store_true",
        help="also time the reference scan (sensitivity_scan_naive) and check it is equal"))
    data = load(args.quick)
    x_val, y_val = data[2], data[3]
    epochs = 1
    per_seed, times, ranks = [], [], []
    for seed in args.seeds:
        model = trained(lecture_net, seed, epochs, data, args.quick, "lecture_net", lr=0.02)
        t = time.perf_counter()
        res = sensitivity_scan(model, x_val, y_val)
        t_fast = time.perf_counter() - t
        t_ref = None
        if args.reference:  # the reference scan, for the speed comparison
            t = time.perf_counter()
            ref = sensitivity_scan_naive(model, x_val, y_val)
            t_ref = time.perf_counter() - t
            if not (ref.accuracy == res.accuracy).all():
                raise RuntimeError("the fast scan differs from the reference scan")
        res = res.choose(0.8)
        mean_drop = res.delta.mean(axis=1)  # (layers,)
        order = [res.layers[i] for i in mean_drop.argsort()[::-1]]
        ranks.append(order)
        times.append({"fast_s": round(t_fast, 2), "reference_s": None if t_ref is None
                      else round(t_ref, 2)})
        per_seed.append({"seed": seed, "table": res.to_dict(),
                         "mean_drop": dict(zip(res.layers, mean_drop.round(4).tolist(),
                                               strict=True)),
                         "most_sensitive_first": order})
        if not args.json:
            print(format_sensitivity(res))
    met = all(o[0] == "conv1.weight" for o in ranks)
    m = {"per_seed": per_seed, "scan_seconds": times, "n_val": int(x_val.shape[0]),
         "epochs": epochs}
    md = per_seed[0]["mean_drop"]
    claim = (f"lecture net trained {epochs} epoch; one layer pruned at a time at r = 0..0.9 on "
             f"{x_val.shape[0]} validation images: conv1 is the most sensitive layer")
    summary = (f"mean accuracy drop over r (seed {args.seeds[0]}): "
               + ", ".join(f"{k.split('.')[0]} {v:.3f}" for k, v in md.items())
               + f"; most sensitive: {', '.join(o[0].split('.')[0] for o in ranks)}"
               + f"; T for 80%: {per_seed[0]['table']['threshold']:.4f}; scan "
               + f"{times[0]['fast_s']} s")
    finish(args, "sensitivity_first_layer", claim, "conv1 has the largest mean drop (every seed)",
           m, met, summary)


if __name__ == "__main__":
    main()
