"""``tinyprune sensitivity``: prune one layer at a time at each ratio, measure the validation
accuracy, choose per-layer ratios for a target sparsity
(:func:`tinyprune.prune.sensitivity.sensitivity_scan`), optionally apply them."""

from __future__ import annotations

import argparse
import textwrap
import time

from ..prune import CRITERIA, GRANULARITIES
from ..prune.masked import set_masks_
from ..prune.sensitivity import apply_ratios, format_sensitivity, sensitivity_scan
from ..report import sparsity_report
from .common import (
    CHECKPOINT_HELP,
    DEFAULT_DATASET,
    CLIError,
    _number,
    accuracy,
    add_common_options,
    check_out,
    check_plot,
    emit,
    fraction,
    int_at_least,
    load_ckpt,
    load_data,
    norm_order,
    open_unit_fraction,
    save,
    save_figure,
    use_agg,
    validation_data,
)

DEFAULT_RATIOS = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"
SCAN_GRANULARITIES = tuple(g for g in GRANULARITIES if g != "nm")
"""N:M is a fixed pattern, not a ratio: it cannot be scanned."""


def ratio_list(text: str) -> list[float]:
    """argparse type: comma-separated increasing fractions in ``[0, 1]``."""
    parts = text.split(",")
    if not parts or any(not t.strip() for t in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions such as "
                                         f"0,0.5,0.9, got {text!r}")
    values = [_number(t) for t in parts]
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected fractions in [0, 1], got {text}")
    if any(b <= a for a, b in zip(values[:-1], values[1:], strict=True)):
        raise argparse.ArgumentTypeError(f"expected strictly increasing ratios, got {text}")
    return values


def _check_flags(args) -> None:
    if args.criterion == "lp" and args.p is None:
        raise CLIError("--p: --criterion lp needs the norm order --p (> 0, or inf)")
    if args.criterion != "lp" and args.p is not None:
        raise CLIError(f"--p: only used with --criterion lp, got --criterion {args.criterion}")
    if args.apply:
        if args.target_sparsity is None:
            raise CLIError("--apply: needs --target-sparsity (the ratios to apply are the ones "
                           "chosen for it)")
        if args.out is None:
            raise CLIError("--apply: needs --out, where the pruned checkpoint is saved")
    elif args.out is not None:
        raise CLIError("--out: only used with --apply (nothing else is saved)")
    if args.target_sparsity is not None and args.target_sparsity > max(args.ratios):
        raise CLIError(f"--target-sparsity: {args.target_sparsity} cannot be reached with every "
                       f"layer at most at the largest of --ratios ({max(args.ratios)})")


def cmd_sensitivity(args) -> int:
    _check_flags(args)
    check_out(args.out)
    check_plot(args.plot)
    ckpt = load_ckpt(args.checkpoint)
    model = ckpt.model
    name = args.dataset or ckpt.metadata.get("dataset", DEFAULT_DATASET)
    data = load_data(args, name, normalize=bool(ckpt.metadata.get("normalize", True)))
    _, _, x_val, y_val = validation_data(args, data)
    layers = None
    if args.granularity == "channel":  # as tinyprune prune: the classifier keeps its classes
        layers = [k for k, v in model.params.items() if k.endswith(".weight") and v.ndim >= 2][:-1]
    t0 = time.perf_counter()
    try:
        res = sensitivity_scan(model, x_val, y_val, layers=layers, ratios=args.ratios,
                               criterion=args.criterion,
                               granularity=args.granularity, p=args.p, rng=args.seed)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    res.seconds = time.perf_counter() - t0
    if args.target_sparsity is not None:
        try:
            res = res.choose(args.target_sparsity)
        except ValueError as exc:
            raise CLIError(f"--target-sparsity: {exc}") from None
    payload = {"command": "sensitivity", "checkpoint": args.checkpoint, "dataset": data.name,
               "val_fraction": args.val_fraction, "seed": args.seed, **res.to_dict(),
               "plot": args.plot, "out": args.out, "applied": None}
    lines = [f"sensitivity of {args.checkpoint} on {len(y_val)} validation samples carved from "
             f"the {data.name} training set (seed {args.seed}) in {res.seconds:.1f} s",
             format_sensitivity(res)]
    if res.chosen is not None:
        lines.append("chosen ratios: " + ", ".join(f"{k[: -len('.weight')]} {v:g}"
                                                    for k, v in res.chosen.items()))
    if args.plot:
        use_agg()
        from ..viz import plot_sensitivity

        save_figure(plot_sensitivity(res), args.plot)
        lines.append(f"plot written to {args.plot}")
    if args.apply:
        acc_before = accuracy(model, data)
        masks = apply_ratios(model, res.chosen, criterion=args.criterion,
                             granularity=args.granularity, p=args.p, rng=args.seed)
        set_masks_(model, masks)
        acc_after = accuracy(model, data)
        report = sparsity_report(model)
        meta = dict(ckpt.metadata)
        meta.update(dataset=data.name, test_accuracy=acc_after,
                    pruned={"criterion": args.criterion, "granularity": args.granularity,
                            "global": False, "layers": list(res.chosen), "method": "sensitivity",
                            "ratios": res.chosen, "threshold": res.threshold,
                            "target_sparsity": res.target_sparsity, "relative_to": "total"})
        save(args.out, model, masks=model.masks, metadata=meta)
        payload["applied"] = {"test_accuracy_before": acc_before,
                              "test_accuracy_after": acc_after, "report": report}
        lines.append(f"applied: test accuracy {acc_before:.2%} -> {acc_after:.2%} (no "
                     f"fine-tuning; tinyprune prune --finetune-epochs can follow)")
        lines.append(f"saved {args.out}")
    emit(args, payload, "\n".join(lines))
    return 0


def register(add) -> None:
    """Add the ``sensitivity`` parser."""
    s = add("sensitivity", help="per-layer sensitivity scan; ratios for a target sparsity",
            description=textwrap.fill(
                "For each layer and each ratio r, only that layer is pruned to r and "
                "the accuracy is measured on a VALIDATION split carved from the "
                "TRAINING data (--val-fraction, --seed), never on the test set: the "
                "ratios are chosen from these figures, so measuring them on the test "
                "set would make its accuracy a tuned figure, not an estimate. With "
                "--target-sparsity, the smallest accuracy drop T is found such that "
                "giving each layer the largest r whose drop is <= T reaches the "
                "target overall pruning rate (by weight count).", 79, break_on_hyphens=False))
    s.add_argument("checkpoint", help=CHECKPOINT_HELP)
    s.add_argument("--ratios", type=ratio_list, default=DEFAULT_RATIOS,
                   help="comma-separated increasing pruning ratios in [0, 1]")
    s.add_argument("--criterion", choices=sorted(CRITERIA), default="l1",
                   help="importance score of each unit (lp needs --p)")
    s.add_argument("--granularity", choices=SCAN_GRANULARITIES, default="element",
                   help="what one unit is (as tinyprune prune; not nm, a fixed pattern; "
                        "channel leaves the classifier out)")
    s.add_argument("--p", type=norm_order, default=None,
                   help="norm order for --criterion lp (> 0, or inf)")
    s.add_argument("--target-sparsity", type=fraction, default=None,
                   help="overall pruning rate (by weight count) to reach: prints T and the "
                        "per-layer ratios")
    s.add_argument("--val-fraction", type=open_unit_fraction, default=0.1,
                   help="share of the training data held out for validation, in (0, 1)")
    s.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of the validation split and of random criteria")
    s.add_argument("--plot", default=None,
                   help="write the figure (accuracy vs r, one curve per layer, T as a line) "
                        "to this file (.png, .pdf, .svg, ...)")
    s.add_argument("--apply", action="store_true",
                   help="prune each layer to its chosen ratio and save the checkpoint to --out "
                        "(needs --target-sparsity)")
    s.add_argument("--out", default=None, help="where --apply saves the pruned checkpoint (.npz)")
    add_common_options(s)
    s.set_defaults(func=cmd_sensitivity)
