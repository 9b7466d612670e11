"""``tinyprune factorize``: chosen layers replaced by their truncated SVD factors
(:func:`tinyprune.lowrank.factorize_model`), optionally fine-tuned."""

from __future__ import annotations

import argparse

from ..lowrank import factorize_model, factorized_layers
from ..nn.layers import Conv2d, Linear
from .common import (
    CHECKPOINT_HELP,
    DEFAULT_DATASET,
    TRAIN_DEFAULTS,
    CLIError,
    _number,
    accuracy,
    add_common_options,
    check_out,
    emit,
    fit_model,
    int_at_least,
    load_ckpt,
    load_data,
    refuse_training_flags,
    resolve,
    save,
)

RULES = (("--rank", "rank"), ("--energy", "energy"), ("--param-reduction", "reduction"))


def energy_fraction(text: str) -> float:
    """argparse type: a fraction in ``(0, 1]`` (kept spectral energy)."""
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text}")
    return value


def open_fraction(text: str) -> float:
    """argparse type: a fraction in ``(0, 1)``."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text}")
    return value


def _layers(model, text):
    weighted = [n for n, m in model.layers.items() if isinstance(m, (Linear, Conv2d))]
    if text is None:
        return None
    names = [t for t in text.split(",") if t]
    unknown = [n for n in names if n not in weighted]
    if unknown or not names:
        raise CLIError(f"--layers: unknown layer(s) {unknown or [text]}; Linear / Conv2d layers: "
                       f"{weighted}")
    return names


def cmd_factorize(args) -> int:
    if args.finetune_epochs == 0:
        refuse_training_flags(args, "--finetune-epochs")
    resolve(args, TRAIN_DEFAULTS)
    check_out(args.out)
    ckpt = load_ckpt(args.checkpoint)
    model = ckpt.model
    if model.transforms:
        raise CLIError(f"{args.checkpoint}: its weights have transforms (quantized or "
                       f"weight-shared: {sorted(model.transforms)}); factorize the float "
                       f"checkpoint")
    layers = _layers(model, args.layers)
    flag, key = next((f, k) for f, k in RULES if getattr(args, k) is not None)
    rule = {key: getattr(args, key)}
    try:
        small = factorize_model(model, layers, **rule)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"{flag}: {exc}") from None
    ranks = factorized_layers(small)
    if not ranks:
        raise CLIError(f"{flag}: {rule[key]} shrinks no layer (each rank would hold at least as "
                       f"many weights as the dense layer); nothing was saved")
    name = args.dataset or ckpt.metadata.get("dataset", DEFAULT_DATASET)
    data = load_data(args, name, normalize=bool(ckpt.metadata.get("normalize", True)))
    acc_before, acc_factorized = accuracy(model, data), accuracy(small, data)
    acc_finetuned = None
    if args.finetune_epochs > 0:
        fit_model(args, small, data, args.finetune_epochs)
        acc_finetuned = accuracy(small, data)
    info = {"rule": {flag.lstrip("-"): rule[key]}, "ranks": ranks}
    meta = dict(ckpt.metadata)
    meta.update(dataset=data.name, factorized=info,
                test_accuracy=acc_finetuned if acc_finetuned is not None else acc_factorized)
    save(args.out, small, masks=small.masks, metadata=meta)
    before, after = model.num_parameters(), small.num_parameters()
    payload = {"command": "factorize", "checkpoint": args.checkpoint, "out": args.out,
               "rule": info["rule"], "ranks": ranks, "params_before": before,
               "params_after": after, "accuracy_before": acc_before,
               "accuracy_factorized": acc_factorized, "accuracy_finetuned": acc_finetuned}
    lines = [f"factorized {', '.join(f'{n} (rank {r})' for n, r in ranks.items())} by "
             f"{flag} {rule[key]}: {before:,} -> {after:,} parameters "
             f"({1 - after / before:.1%} fewer)",
             f"accuracy before           {acc_before:.2%}",
             f"accuracy factorized       {acc_factorized:.2%}"]
    if acc_finetuned is not None:
        lines.append(f"accuracy after fine-tune  {acc_finetuned:.2%} "
                     f"({args.finetune_epochs} epoch(s))")
    lines.append(f"saved {args.out}")
    emit(args, payload, "\n".join(lines))
    return 0


def register(add) -> None:
    """Add the ``factorize`` parser."""
    f = add("factorize", help="replace layers by their truncated SVD (low-rank factors)",
            description="Each chosen Linear / Conv2d layer becomes two thinner layers "
                        "(<name>_v then <name>_u) holding its best rank-r approximation "
                        "(Eckart-Young); the rank comes from exactly one rule.")
    f.add_argument("checkpoint", help=CHECKPOINT_HELP)
    f.add_argument("--layers", default=None,
                   help="comma-separated Linear / Conv2d layers (default: all; a layer the rule "
                        "cannot shrink stays dense)")
    rule = f.add_mutually_exclusive_group(required=True)
    rule.add_argument("--rank", type=int_at_least(1), default=None,
                      help="keep this many singular values")
    rule.add_argument("--energy", type=energy_fraction, default=None,
                      help="the smallest rank keeping this fraction of the squared singular "
                           "values, in (0, 1]")
    rule.add_argument("--param-reduction", dest="reduction", type=open_fraction, default=None,
                      help="the largest rank removing at least this fraction of the layer's "
                           "weights, in (0, 1)")
    f.add_argument("--finetune-epochs", type=int_at_least(0), default=1,
                   help="epochs of training after factorizing (0: none)")
    f.add_argument("--out", required=True, help="where to save the factorized checkpoint (.npz)")
    add_common_options(f, train=True)
    f.set_defaults(dataset=None, func=cmd_factorize)
