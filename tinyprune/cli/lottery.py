"""``tinyprune lottery``: iterative magnitude pruning with reset / rewind and its controls
(Frankle & Carbin 2018; :func:`tinyprune.prune.lottery.lottery_ticket`)."""

from __future__ import annotations

import textwrap

import numpy as np

from ..datasets import DATASET_NAMES
from ..nn.models import MODELS, build_model
from ..nn.optim import Adam
from ..nn.train import TrainingDivergedError
from ..prune.lottery import lottery_ticket
from .common import (
    DEFAULT_DATASET,
    CLIError,
    add_common_options,
    check_plot,
    emit,
    int_at_least,
    load_data,
    open_unit_fraction,
    positive_float,
    save_figure,
    use_agg,
    validation_data,
)

LOTTERY_LR = 1.2e-3
"""Adam's learning rate in the paper's LeNet-300-100 experiments."""


def cmd_lottery(args) -> int:
    check_plot(args.plot)
    data = load_data(args, args.dataset)
    x_tr, y_tr, x_val, y_val = validation_data(args, data)
    steps = args.epochs * -(-x_tr.shape[0] // args.batch_size)
    if args.rewind_iter > steps:
        raise CLIError(f"--rewind-iter: expected at most the {steps} iterations of one training "
                       f"run (--epochs {args.epochs}, --batch-size {args.batch_size}), "
                       f"got {args.rewind_iter}")
    model = build_model(args.model, seed=args.seed)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            res = lottery_ticket(model, x_tr, y_tr, x_val, y_val, data.x_test, data.y_test,
                                 rounds=args.rounds, epochs=args.epochs,
                                 batch_size=args.batch_size, seed=args.seed,
                                 make_optimizer=lambda params: Adam(params, lr=args.lr),
                                 rewind_iter=args.rewind_iter, eval_every=args.eval_every,
                                 progress=args.progress and not args.json)
    except TrainingDivergedError as exc:
        raise CLIError(f"--lr: {exc}") from None
    lines = [f"lottery tickets of {args.model} on {data.name}: {args.rounds} round(s) of "
             f"{args.epochs} epoch(s), rates {res.rates}, reset to iteration "
             f"{args.rewind_iter} (0: the initial values); "
             f"early stopping on {len(y_val)} validation samples from the training set",
             res.format()]
    if args.plot:
        use_agg()
        from ..viz import plot_lottery

        save_figure(plot_lottery(res), args.plot)
        lines.append(f"plot written to {args.plot}")
    payload = {"command": "lottery", "model": args.model, "dataset": data.name,
               "val_fraction": args.val_fraction, "lr": args.lr, **res.to_dict(),
               "plot": args.plot}
    emit(args, payload, "\n".join(lines))
    return 0


def register(add) -> None:
    """Add the ``lottery`` parser."""
    lt = add("lottery", help="lottery tickets: iterative magnitude pruning with reset",
             description=textwrap.fill(
                "Train a fresh zoo model, then each round prune the smallest-magnitude "
                "remaining weights layer by layer (20% of fc, 10% of conv, half the "
                "rate for the output layer), reset the survivors to their initial "
                "values (or to iteration --rewind-iter) and retrain; controls: the "
                "same masks with a fresh initialisation, random masks of the same "
                "sparsity. Early stopping uses a validation split of the TRAINING "
                "data; the test accuracy is only reported.", 79, break_on_hyphens=False))
    lt.add_argument("--model", choices=sorted(MODELS), default="lenet-300-100",
                    help="architecture from the model zoo")
    lt.add_argument("--rounds", type=int_at_least(1), required=True,
                    help="pruning rounds after the dense training")
    lt.add_argument("--rewind-iter", type=int_at_least(0), default=0,
                    help="reset the survivors to their values after this many iterations of "
                         "the dense training (0: the initial values)")
    lt.add_argument("--epochs", type=int_at_least(1), default=1,
                    help="epochs of every training run")
    lt.add_argument("--batch-size", type=int_at_least(1), default=60,
                    help="mini-batch size (the paper's)")
    lt.add_argument("--lr", type=positive_float, default=LOTTERY_LR,
                    help="Adam's learning rate (the paper's)")
    lt.add_argument("--val-fraction", type=open_unit_fraction, default=0.1,
                    help="share of the training data held out for early stopping, in (0, 1)")
    lt.add_argument("--eval-every", type=int_at_least(1), default=100,
                    help="iterations between validation measurements")
    lt.add_argument("--seed", type=int_at_least(0), default=0,
                    help="seed of the initialisation, the split, the data order and the controls")
    lt.add_argument("--plot", default=None,
                    help="write test accuracy vs fraction of weights remaining (ticket vs "
                         "controls) to this file (.png, .pdf, .svg, ...)")
    lt.add_argument("--no-progress", dest="progress", action="store_false",
                    help="no progress bar")
    add_common_options(lt, data=False)
    lt.add_argument("--dataset", default=DEFAULT_DATASET, choices=DATASET_NAMES, help="dataset")
    lt.add_argument("--root", default=None, metavar="FOLDER",
                    help="folder holding the dataset's IDX files (mnist / fashion-mnist; "
                         "searched first)")
    lt.add_argument("--download", action="store_true",
                    help="allow downloading mnist / fashion-mnist if not found locally")
    lt.set_defaults(func=cmd_lottery)
