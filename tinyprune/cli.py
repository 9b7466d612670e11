"""The ``tinyprune`` command line: train, evaluate, prune, report, list datasets.

Examples
--------
::

    tinyprune train --model lecture-net --epochs 1 --out model.npz
    tinyprune eval model.npz --json
    tinyprune prune model.npz --criterion l1 --granularity channel --sparsity 0.5 \\
        --finetune-epochs 1 --out pruned.npz --physical
    tinyprune prune model.npz --granularity nm --n 2 --m 4 --out nm.npz
    tinyprune report pruned.npz
    tinyprune datasets
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from .datasets import DATASET_NAMES, dataset_status, format_dataset_status, load_dataset
from .nn.checkpoint import load_checkpoint, save_checkpoint
from .nn.models import MODELS, build_model
from .nn.optim import SGD, Adam
from .nn.train import evaluate, fit
from .prune import CRITERIA, GRANULARITIES, prune_model
from .prune.masked import set_masks_
from .prune.thinning import thin_model
from .report import format_report, sparsity_report

DEFAULT_DATASET = "fashion-mnist-small"


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def _emit(args, payload: dict, text: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def _load_data(name: str, *, download: bool = False, normalize: bool = True):
    try:
        return load_dataset(name, download=download, normalize=normalize)
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def _load_ckpt(path: str):
    try:
        ckpt = load_checkpoint(path)
    except (OSError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    ckpt.model.masks = dict(ckpt.masks)
    return ckpt


def _make_optimizer(args, model):
    if args.optimizer == "adam":
        return Adam(model.params, lr=args.lr if args.lr is not None else 1e-3,
                    weight_decay=args.weight_decay)
    return SGD(model.params, lr=args.lr if args.lr is not None else 0.05, momentum=0.9,
               weight_decay=args.weight_decay)


def _accuracy(model, data) -> float:
    return float(evaluate(model, data.x_test, data.y_test)["accuracy"])


# ------------------------------------------------------------------------------------ commands


def cmd_train(args) -> int:
    data = _load_data(args.dataset, download=args.download, normalize=args.normalize)
    model = build_model(args.model, seed=args.seed)
    opt = _make_optimizer(args, model)
    t0 = time.perf_counter()
    hist = fit(model, data.x_train, data.y_train, optimizer=opt, epochs=args.epochs,
               batch_size=args.batch_size, rng=args.seed, progress=not args.json and args.progress)
    seconds = time.perf_counter() - t0
    test = evaluate(model, data.x_test, data.y_test)
    meta = {"dataset": data.name, "model": args.model, "epochs": args.epochs,
            "test_accuracy": float(test["accuracy"]), "seed": args.seed,
            "normalize": args.normalize}
    save_checkpoint(args.out, model, metadata=meta)
    payload = {"command": "train", "out": args.out, "train_loss": list(map(float, hist.loss)),
               "train_accuracy": list(map(float, hist.accuracy)),
               "test_loss": float(test["loss"]), "test_accuracy": float(test["accuracy"]),
               "seconds": seconds, "dataset": data.name, "model": args.model}
    text = (f"trained {args.model} on {data.name} for {args.epochs} epoch(s) in {seconds:.1f} s\n"
            f"train loss {hist.loss[-1]:.4f}  train acc {hist.accuracy[-1]:.2%}\n"
            f"test  loss {test['loss']:.4f}  test  acc {test['accuracy']:.2%}\n"
            f"saved {args.out}")
    _emit(args, payload, text)
    return 0


def cmd_eval(args) -> int:
    ckpt = _load_ckpt(args.checkpoint)
    name = args.dataset or ckpt.metadata.get("dataset", DEFAULT_DATASET)
    data = _load_data(name, download=args.download,
                      normalize=bool(ckpt.metadata.get("normalize", True)))
    res = evaluate(ckpt.model, data.x_test, data.y_test)
    payload = {"command": "eval", "checkpoint": args.checkpoint, "dataset": data.name,
               "test_loss": float(res["loss"]), "test_accuracy": float(res["accuracy"])}
    _emit(args, payload, f"{args.checkpoint} on {data.name}: test loss {res['loss']:.4f}, "
                         f"test accuracy {res['accuracy']:.2%}")
    return 0


def _prune_targets(model, args) -> list[str]:
    weights = [f"{ln}.weight" for ln, layer in model.layers.items() if "weight" in layer.params]
    if args.layers:
        targets = [t if t.endswith(".weight") else f"{t}.weight" for t in args.layers.split(",")]
        unknown = [t for t in targets if t not in weights]
        if unknown:
            raise CLIError(f"--layers: unknown layer(s) {unknown}; weighted layers: {weights}")
    else:
        targets = list(weights)
        if args.granularity in ("channel",) and targets:
            targets = targets[:-1]  # never remove the classifier's output classes
    if args.exclude:
        excluded = {t if t.endswith(".weight") else f"{t}.weight" for t in args.exclude.split(",")}
        targets = [t for t in targets if t not in excluded]
    if args.granularity == "kernel":
        targets = [t for t in targets if model.params[t].ndim == 4]
    if not targets:
        raise CLIError("no layer left to prune (check --layers / --exclude / --granularity)")
    return targets


def cmd_prune(args) -> int:
    ckpt = _load_ckpt(args.checkpoint)
    model = ckpt.model
    name = args.dataset or ckpt.metadata.get("dataset", DEFAULT_DATASET)
    data = _load_data(name, download=args.download,
                      normalize=bool(ckpt.metadata.get("normalize", True)))
    targets = _prune_targets(model, args)
    acc_before = _accuracy(model, data)
    try:
        nm = args.granularity == "nm"
        masks = prune_model(model, targets, amount=None if nm else args.sparsity,
                            criterion=args.criterion, granularity=args.granularity,
                            n_pruned=args.n if nm else None, m=args.m if nm else None,
                            global_ranking=args.global_, relative_to=args.relative_to,
                            p=args.p, rng=np.random.default_rng(args.seed))
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    set_masks_(model, masks)
    acc_pruned = _accuracy(model, data)
    acc_finetuned = None
    if args.finetune_epochs > 0:
        opt = _make_optimizer(args, model)
        fit(model, data.x_train, data.y_train, optimizer=opt, epochs=args.finetune_epochs,
            batch_size=args.batch_size, rng=args.seed, progress=not args.json and args.progress)
        acc_finetuned = _accuracy(model, data)
    report = sparsity_report(model)
    meta = dict(ckpt.metadata)
    meta.update(dataset=data.name, pruned={"criterion": args.criterion,
                                           "granularity": args.granularity,
                                           "sparsity": args.sparsity, "global": args.global_,
                                           "layers": targets},
                test_accuracy=acc_finetuned if acc_finetuned is not None else acc_pruned)
    out_model = model
    physical = None
    if args.physical:
        thin, kept = thin_model(model)
        acc_thin = _accuracy(thin, data)
        physical = {"params_before": model.num_parameters(), "params_after": thin.num_parameters(),
                    "kept_units": {k: int(v.size) for k, v in kept.items()},
                    "test_accuracy": acc_thin}
        out_model = thin
        meta["physical"] = physical
    if args.out:
        save_checkpoint(args.out, out_model, masks=out_model.masks, metadata=meta)
    payload = {"command": "prune", "targets": targets, "accuracy_before": acc_before,
               "accuracy_pruned": acc_pruned, "accuracy_finetuned": acc_finetuned,
               "report": report, "physical": physical, "out": args.out}
    what = (f"{args.n}:{args.m} (n_pruned:m)" if args.granularity == "nm"
            else f"amount {args.sparsity} ({args.relative_to})")
    lines = [f"pruned {', '.join(targets)}: {args.criterion} / {args.granularity}"
             f"{' (global)' if args.global_ else ''}, {what}",
             f"accuracy before pruning  {acc_before:.2%}",
             f"accuracy after pruning   {acc_pruned:.2%}"]
    if acc_finetuned is not None:
        lines.append(f"accuracy after fine-tune {acc_finetuned:.2%} "
                     f"({args.finetune_epochs} epoch(s))")
    lines += ["", format_report(report)]
    if physical:
        lines.append(f"\nphysical removal: {physical['params_before']:,} -> "
                     f"{physical['params_after']:,} parameters, kept units "
                     f"{physical['kept_units']}, accuracy {physical['test_accuracy']:.2%}")
    if args.out:
        lines.append(f"saved {args.out}")
    _emit(args, payload, "\n".join(lines))
    return 0


def cmd_report(args) -> int:
    ckpt = _load_ckpt(args.checkpoint)
    report = sparsity_report(ckpt.model, n_pruned=args.n, m=args.m)
    _emit(args, report, format_report(report))
    return 0


def cmd_datasets(args) -> int:
    rows = dataset_status()
    _emit(args, rows, format_dataset_status(rows))
    return 0


# ------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyprune", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, data=True, train=False):
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        if data:
            sp.add_argument("--dataset", default=None if not train else DEFAULT_DATASET,
                            choices=DATASET_NAMES, help="dataset (default: the embedded "
                            "fashion-mnist-small, or the one recorded in the checkpoint)")
            sp.add_argument("--download", action="store_true",
                            help="allow downloading the dataset if not found locally")
        if train:
            sp.add_argument("--batch-size", type=int, default=64)
            sp.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
            sp.add_argument("--lr", type=float, default=None,
                            help="learning rate (default 0.05 for SGD, 1e-3 for Adam)")
            sp.add_argument("--weight-decay", type=float, default=0.0)
            sp.add_argument("--seed", type=int, default=0)
            sp.add_argument("--no-progress", dest="progress", action="store_false")

    t = sub.add_parser("train", help="train a zoo model and save a checkpoint")
    t.add_argument("--model", choices=sorted(MODELS), default="lecture-net")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--out", required=True, help="checkpoint path (.npz)")
    t.add_argument("--no-normalize", dest="normalize", action="store_false",
                   help="feed raw [0, 1] pixels instead of standardised ones")
    common(t, train=True)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint on a dataset's test split")
    e.add_argument("checkpoint")
    common(e)
    e.set_defaults(func=cmd_eval)

    pr = sub.add_parser("prune", help="prune a checkpoint, fine-tune, report, save")
    pr.add_argument("checkpoint")
    pr.add_argument("--criterion", choices=sorted(CRITERIA), default="l1")
    pr.add_argument("--granularity", choices=GRANULARITIES, default="element")
    pr.add_argument("--sparsity", type=float, default=0.5,
                    help="fraction of units (elements/channels/...) to prune (ignored for nm)")
    pr.add_argument("--relative-to", choices=("remaining", "total"), default="total",
                    help="'total': the model ends with this sparsity; 'remaining': prune this "
                         "fraction of what is still unpruned (torch.nn.utils.prune)")
    pr.add_argument("--p", type=float, default=None, help="norm order for --criterion lp")
    pr.add_argument("--n", type=int, default=2, help="N:M: weights pruned in each group")
    pr.add_argument("--m", type=int, default=4, help="N:M: group size")
    pr.add_argument("--global", dest="global_", action="store_true",
                    help="rank all target layers together instead of layer by layer")
    pr.add_argument("--layers", default=None, help="comma-separated layers to prune "
                    "(default: all weighted layers; the classifier is left out for channel)")
    pr.add_argument("--exclude", default=None, help="comma-separated layers to leave dense")
    pr.add_argument("--finetune-epochs", type=int, default=1)
    pr.add_argument("--physical", action="store_true",
                    help="remove pruned channels/neurons and save the smaller dense model")
    pr.add_argument("--out", default=None)
    common(pr, train=True)
    pr.set_defaults(dataset=None, func=cmd_prune)

    r = sub.add_parser("report", help="sparsity report of a checkpoint")
    r.add_argument("checkpoint")
    r.add_argument("--n", type=int, default=2, help="N:M pattern to check: pruned per group")
    r.add_argument("--m", type=int, default=4, help="N:M pattern to check: group size")
    common(r, data=False)
    r.set_defaults(func=cmd_report)

    d = sub.add_parser("datasets", help="where each dataset is, sizes and checksums")
    common(d, data=False)
    d.set_defaults(func=cmd_datasets)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"tinyprune {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `tinyprune report m.npz | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
