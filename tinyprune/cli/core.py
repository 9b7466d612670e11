"""``tinyprune train | eval | prune | report | datasets``: training, evaluation, pruning, the
sparsity report and the datasets' status."""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..datasets import dataset_status, format_dataset_status
from ..nn.models import MODELS, build_model
from ..nn.train import evaluate
from ..prune import CRITERIA, GRANULARITIES, prune_model
from ..prune.masked import set_masks_
from ..prune.nm import check_nm
from ..prune.schedules import AGP, Iterative
from ..prune.select import RELATIVE_TO
from ..prune.thinning import removable_units, thin_model
from ..quantize import FakeQuantize, WeightSharing
from ..quantize.integer import ACTIVATION_DTYPES
from ..report import (
    COLUMNS,
    QUANT_COLUMNS,
    format_quantization_report,
    format_report,
    quantization_report,
    sparsity_report,
)
from .common import (
    CHECKPOINT_HELP,
    DEFAULT_DATASET,
    PRUNE_DEFAULTS,
    TRAIN_DEFAULTS,
    CLIError,
    accuracy,
    add_common_options,
    check_out,
    check_plot,
    conv_fc_ints,
    emit,
    fit_model,
    fraction,
    given,
    int_at_least,
    load_any,
    load_ckpt,
    load_data,
    norm_order,
    refuse_renamed_n,
    refuse_training_flags,
    resolve,
    save,
    save_figure,
    show_pair,
    use_agg,
)


def cmd_train(args) -> int:
    check_out(args.out)
    resolve(args, TRAIN_DEFAULTS)
    data = load_data(args, args.dataset, normalize=args.normalize)
    model = build_model(args.model, seed=args.seed)
    t0 = time.perf_counter()
    hist = fit_model(args, model, data, args.epochs)
    seconds = time.perf_counter() - t0
    test = evaluate(model, data.x_test, data.y_test)
    meta = {"dataset": data.name, "model": args.model, "epochs": args.epochs,
            "test_accuracy": float(test["accuracy"]), "seed": args.seed,
            "normalize": args.normalize}
    save(args.out, model, metadata=meta)
    payload = {"command": "train", "out": args.out, "train_loss": list(map(float, hist.loss)),
               "train_accuracy": list(map(float, hist.accuracy)),
               "test_loss": float(test["loss"]), "test_accuracy": float(test["accuracy"]),
               "seconds": seconds, "dataset": data.name, "model": args.model}
    text = (f"trained {args.model} on {data.name} for {args.epochs} epoch(s) in {seconds:.1f} s\n"
            f"train loss {hist.loss[-1]:.4f}  train acc {hist.accuracy[-1]:.2%}\n"
            f"test  loss {test['loss']:.4f}  test  acc {test['accuracy']:.2%}\n"
            f"saved {args.out}")
    emit(args, payload, text)
    return 0


def cmd_eval(args) -> int:
    model, metadata, header = load_any(args.checkpoint)
    if args.activation_dtype is not None and not args.integer:
        raise CLIError("--activation-dtype: only used with --integer (integer-only inference)")
    if args.integer and header is not None:
        raise CLIError(f"--integer: {args.checkpoint} is a compressed file, which stores no "
                       f"quantizers; give the affine-quantized checkpoint (.npz)")
    name = args.dataset or metadata.get("dataset", DEFAULT_DATASET)
    data = load_data(args, name, normalize=bool(metadata.get("normalize", True)))
    if args.integer:
        from .quantize import integer_accuracy

        res = integer_accuracy(model, metadata, data, args.checkpoint,
                               activation_dtype=args.activation_dtype or "uint8")
    else:
        ev = evaluate(model, data.x_test, data.y_test)
        res = {"test_loss": float(ev["loss"]), "test_accuracy": float(ev["accuracy"])}
    payload = {"command": "eval", "checkpoint": args.checkpoint, "dataset": data.name,
               "compressed": header is not None, "integer": args.integer, **res}
    how = (f" (integer-only inference, {res['activation_dtype']} activations)" if args.integer
           else "")
    text = (f"{args.checkpoint} on {data.name}{how}: test loss {res['test_loss']:.4f}, "
            f"test accuracy {res['test_accuracy']:.2%}")
    if args.integer:
        text += f" (fake-quantized float model: {res['fake_quant_test_accuracy']:.2%})"
    emit(args, payload, text)
    return 0


def _names(text: str) -> list[str]:
    return [t if t.endswith(".weight") else f"{t}.weight" for t in text.split(",") if t]


def _prune_targets(model, args) -> list[str]:
    weights = [f"{ln}.weight" for ln, layer in model.layers.items() if "weight" in layer.params]
    shown = [w[: -len(".weight")] for w in weights]
    for flag, text in (("--layers", args.layers), ("--exclude", args.exclude)):
        if text is not None:
            unknown = [t for t in _names(text) if t not in weights]
            if unknown or not _names(text):
                bad = [u[: -len(".weight")] for u in unknown] or [text]
                raise CLIError(f"{flag}: unknown layer(s) {bad}; weighted layers: {shown}")
    if args.layers:
        targets = _names(args.layers)
    else:
        targets = list(weights)
        if args.granularity == "channel" and targets:
            targets = targets[:-1]  # never remove the classifier's output classes
    if args.exclude:
        excluded = _names(args.exclude)
        if args.layers:
            idle = [e for e in excluded if e not in targets]
            if idle:
                raise CLIError(f"--exclude: {[e[: -len('.weight')] for e in idle]} not among "
                               f"--layers, so excluding them does nothing")
        targets = [t for t in targets if t not in excluded]
    if args.granularity == "kernel":
        targets = [t for t in targets if model.params[t].ndim == 4]
    if not targets:
        raise CLIError("--layers/--exclude/--granularity: no layer left to prune "
                       f"(weighted layers: {shown})")
    return targets


def _check_prune_flags(args) -> None:
    """Refuse combinations in which a flag would do nothing or something else than it says."""
    refuse_renamed_n(args)
    nm = args.granularity == "nm"
    if nm:
        for flag, name in (("--sparsity", "sparsity"), ("--relative-to", "relative_to")):
            if given(args, name):
                raise CLIError(f"{flag}: not used with --granularity nm (the pattern is "
                               f"--n-pruned of every --m weights)")
        if args.global_:
            raise CLIError("--global: --granularity nm is a per-group pattern with nothing to "
                           "rank globally; drop --global")
    else:
        for flag, name in (("--n-pruned", "n_pruned"), ("--m", "m")):
            if given(args, name):
                raise CLIError(f"{flag}: only used with --granularity nm, got --granularity "
                               f"{args.granularity}")
    if args.criterion == "lp" and args.p is None:
        raise CLIError("--p: --criterion lp needs the norm order --p (> 0, or inf)")
    if args.criterion != "lp" and args.p is not None:
        raise CLIError(f"--p: only used with --criterion lp, got --criterion {args.criterion}")
    if args.physical and args.granularity != "channel":
        raise CLIError(f"--physical: removes whole output channels / neurons, which only "
                       f"--granularity channel prunes; got --granularity {args.granularity}")
    _check_schedule_flags(args)
    if args.finetune_epochs == 0:
        refuse_training_flags(args, "--finetune-epochs")
    resolve(args, {**TRAIN_DEFAULTS, **PRUNE_DEFAULTS})
    if nm:
        try:
            check_nm(args.n_pruned, args.m)
        except (TypeError, ValueError) as exc:
            raise CLIError(f"--n-pruned/--m: {exc}") from None


def _check_schedule_flags(args) -> None:
    """--schedule iterative / agp prune during fine-tuning to the target --sparsity."""
    schedule = args.schedule or "oneshot"
    if schedule == "oneshot":
        if args.rounds is not None:
            raise CLIError("--rounds: only used with --schedule iterative or agp")
        return
    if args.finetune_epochs == 0:
        raise CLIError(f"--finetune-epochs: --schedule {schedule} prunes during fine-tuning, "
                       f"which needs --finetune-epochs >= 1, got 0")
    if args.granularity == "nm":
        raise CLIError(f"--granularity: --schedule {schedule} grows the masks to a target "
                       f"sparsity, which the N:M pattern has not; use --schedule oneshot")
    if given(args, "relative_to"):
        raise CLIError(f"--relative-to: --schedule {schedule} always reads --sparsity as the "
                       f"final sparsity ('total'); drop --relative-to")
    if schedule == "iterative" and args.rounds is not None \
            and args.rounds > args.finetune_epochs:
        raise CLIError(f"--rounds: {args.rounds} rounds of prune-then-retrain need at least as "
                       f"many fine-tuning epochs, got --finetune-epochs {args.finetune_epochs}")


def _schedule_callback(args, targets, n_steps):
    """The :mod:`tinyprune.prune.schedules` callback of --schedule iterative / agp.

    iterative: ``rounds`` (default: one per fine-tuning epoch) rounds, one every
    ``finetune_epochs // rounds`` epochs (the epochs left over retrain at the end). agp: ``n =
    rounds`` (default 10) pruning events every ``dt = (3/4 n_steps) // n`` steps from step 0, so
    that the last quarter (at least) of the fine-tuning only recovers from the pruning.
    """
    kw = {"targets": targets, "criterion": args.criterion, "granularity": args.granularity,
          "global_ranking": args.global_, "p": args.p, "rng": args.seed}
    if args.schedule == "iterative":
        rounds = args.rounds or args.finetune_epochs
        return Iterative(args.sparsity, rounds=rounds,
                         epochs_per_round=args.finetune_epochs // rounds, **kw), rounds
    rounds = args.rounds or AGP_ROUNDS
    dt = (3 * n_steps // 4) // rounds
    if dt < 1:
        raise CLIError(f"--rounds: {rounds} AGP pruning events need at least {rounds} steps in "
                       f"the first 3/4 of fine-tuning, which has {n_steps} steps; give fewer "
                       f"--rounds or more --finetune-epochs")
    return AGP(args.sparsity, n=rounds, dt=dt, **kw), rounds


def _check_thinnable(model, masks, args) -> None:
    """With --physical, refuse (before fine-tuning) a pruning that leaves a layer no unit."""
    for ln, dead in removable_units(model, masks).items():
        if dead.size and dead.all():
            raise CLIError(f"--sparsity: {args.sparsity} prunes every output unit of layer "
                           f"{ln!r}, so --physical would leave a network whose output no "
                           f"longer depends on its input; use a smaller --sparsity")


AGP_ROUNDS = 10
"""Default number of AGP pruning events of ``prune --schedule agp``."""


def cmd_prune(args) -> int:
    _check_prune_flags(args)
    check_out(args.out)
    ckpt = load_ckpt(args.checkpoint)
    model = ckpt.model
    targets = _prune_targets(model, args)
    name = args.dataset or ckpt.metadata.get("dataset", DEFAULT_DATASET)
    data = load_data(args, name, normalize=bool(ckpt.metadata.get("normalize", True)))
    acc_before = accuracy(model, data)
    nm = args.granularity == "nm"
    if args.schedule in ("iterative", "agp"):
        return _prune_scheduled(args, ckpt, model, targets, data, acc_before)
    try:
        masks = prune_model(model, targets, amount=None if nm else args.sparsity,
                            criterion=args.criterion, granularity=args.granularity,
                            n_pruned=args.n_pruned if nm else None, m=args.m if nm else None,
                            global_ranking=args.global_,
                            relative_to="remaining" if nm else args.relative_to,
                            p=args.p, rng=np.random.default_rng(args.seed))
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    set_masks_(model, masks)
    if args.physical:
        _check_thinnable(model, model.masks, args)
    acc_pruned = accuracy(model, data)
    acc_finetuned = None
    if args.finetune_epochs > 0:
        fit_model(args, model, data, args.finetune_epochs)
        acc_finetuned = accuracy(model, data)
    pattern = {"n_pruned": args.n_pruned, "m": args.m} if nm else {}
    report = sparsity_report(model, **pattern)
    meta = dict(ckpt.metadata)
    pruned = {"criterion": args.criterion, "granularity": args.granularity,
              "global": args.global_, "layers": targets}
    pruned.update(pattern if nm else {"sparsity": args.sparsity,
                                      "relative_to": args.relative_to})
    meta.update(dataset=data.name, pruned=pruned,
                test_accuracy=acc_finetuned if acc_finetuned is not None else acc_pruned)
    out_model = model
    physical = None
    if args.physical:
        out_model, physical = _thin(model, data)
        meta["physical"] = physical
    if args.out:
        save(args.out, out_model, masks=out_model.masks, metadata=meta)
    payload = {"command": "prune", "targets": targets, "accuracy_before": acc_before,
               "accuracy_pruned": acc_pruned, "accuracy_finetuned": acc_finetuned,
               "report": report, "physical": physical, "out": args.out}
    what = (f"{args.n_pruned}:{args.m} (n_pruned:m)" if nm
            else f"amount {args.sparsity} (relative to {args.relative_to})")
    lines = [f"pruned {', '.join(targets)}: {args.criterion} / {args.granularity}"
             f"{' (global)' if args.global_ else ''}, {what}",
             f"accuracy before pruning  {acc_before:.2%}",
             f"accuracy after pruning   {acc_pruned:.2%}"]
    if acc_finetuned is not None:
        lines.append(f"accuracy after fine-tune {acc_finetuned:.2%} "
                     f"({args.finetune_epochs} epoch(s))")
    lines += ["", format_report(report)]
    if physical:
        lines.append(_physical_line(physical))
    if args.out:
        lines.append(f"saved {args.out}")
    emit(args, payload, "\n".join(lines))
    return 0


def _prune_scheduled(args, ckpt, model, targets, data, acc_before) -> int:
    """``prune --schedule iterative|agp``: the masks grow during fine-tuning."""
    n_steps = args.finetune_epochs * -(-data.x_train.shape[0] // args.batch_size)
    callback, rounds = _schedule_callback(args, targets, n_steps)
    if args.physical:  # the final masks are the one-shot masks of the same target sparsity
        try:
            final = prune_model(model, targets, args.sparsity, criterion=args.criterion,
                                granularity=args.granularity, global_ranking=args.global_,
                                relative_to="total", p=args.p,
                                rng=np.random.default_rng(args.seed))
        except (ValueError, TypeError) as exc:
            raise CLIError(str(exc)) from None
        _check_thinnable(model, final, args)
    fit_model(args, model, data, args.finetune_epochs, callbacks=[callback])
    acc_finetuned = accuracy(model, data)
    report = sparsity_report(model)
    events = [{"step": e["step"], "epoch": e["epoch"], "target": e["target"],
               "sparsity": {k: float(v) for k, v in e["sparsity"].items()}}
              for e in callback.log]
    meta = dict(ckpt.metadata)
    meta.update(dataset=data.name, test_accuracy=acc_finetuned,
                pruned={"criterion": args.criterion, "granularity": args.granularity,
                        "global": args.global_, "layers": targets, "sparsity": args.sparsity,
                        "relative_to": "total", "schedule": args.schedule, "rounds": rounds})
    out_model, physical = model, None
    if args.physical:
        out_model, physical = _thin(model, data)
        meta["physical"] = physical
    if args.out:
        save(args.out, out_model, masks=out_model.masks, metadata=meta)
    payload = {"command": "prune", "targets": targets, "schedule": args.schedule,
               "rounds": rounds, "events": events, "accuracy_before": acc_before,
               "accuracy_pruned": None, "accuracy_finetuned": acc_finetuned, "report": report,
               "physical": physical, "out": args.out}
    how = (f"{rounds} round(s) over {args.finetune_epochs} epoch(s)" if args.schedule ==
           "iterative" else f"{rounds} events every {callback.dt} of {n_steps} steps")
    lines = [f"pruned {', '.join(targets)}: {args.criterion} / {args.granularity}"
             f"{' (global)' if args.global_ else ''} to sparsity {args.sparsity} during "
             f"fine-tuning, schedule {args.schedule} ({how})",
             f"accuracy before pruning  {acc_before:.2%}",
             f"accuracy after fine-tune {acc_finetuned:.2%} ({args.finetune_epochs} epoch(s))",
             "", format_report(report)]
    if physical:
        lines.append(_physical_line(physical))
    if args.out:
        lines.append(f"saved {args.out}")
    emit(args, payload, "\n".join(lines))
    return 0


def _thin(model, data):
    try:
        thin, kept = thin_model(model)
    except ValueError as exc:
        raise CLIError(f"--physical: {exc}") from None
    return thin, {"params_before": model.num_parameters(), "params_after": thin.num_parameters(),
                  "kept_units": {k: int(v.size) for k, v in kept.items()},
                  "test_accuracy": accuracy(thin, data)}


def _physical_line(physical) -> str:
    return (f"\nphysical removal: {physical['params_before']:,} -> "
            f"{physical['params_after']:,} parameters, kept units "
            f"{physical['kept_units']}, accuracy {physical['test_accuracy']:.2%}")


def _report_pattern(args, metadata) -> tuple[int, int]:
    """The N:M pattern to check: the flags, else the one the checkpoint was pruned with, else 2:4."""
    pruned = metadata.get("pruned")
    stored = {}
    if isinstance(pruned, dict) and pruned.get("granularity") == "nm":
        stored = {k: pruned.get(k) for k in ("n_pruned", "m")}
        try:
            check_nm(stored["n_pruned"], stored["m"])
        except (TypeError, ValueError) as exc:
            raise CLIError(f"{args.checkpoint}: invalid N:M pattern in the checkpoint's "
                           f"metadata: {exc}") from None
    n_pruned = args.n_pruned if args.n_pruned is not None else stored.get("n_pruned", 2)
    m = args.m if args.m is not None else stored.get("m", 4)
    try:
        return check_nm(n_pruned, m)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--n-pruned/--m: {exc}") from None


def cmd_report(args) -> int:
    refuse_renamed_n(args)
    if args.storage:
        for flag, name in (("--n-pruned", "n_pruned"), ("--m", "m")):
            if given(args, name):
                raise CLIError(f"{flag}: the N:M check is part of the sparsity report, not of "
                               f"--storage")
    elif args.index_bits is not None:
        raise CLIError("--index-bits: only used with --storage")
    if args.plot is not None and not args.storage:
        raise CLIError("--plot: only used with --storage (the figure is the storage stage by "
                       "stage)")
    check_plot(args.plot)
    model, metadata, header = load_any(args.checkpoint)
    if args.storage:
        from ..size import format_storage_stages
        from .compress import INDEX_BITS, storage_of_checkpoint, storage_of_file

        if header is not None:
            if args.index_bits is not None:
                raise CLIError(f"--index-bits: {args.checkpoint} is a compressed file, whose "
                               f"index bits are fixed; give them to tinyprune compress")
            st = storage_of_file(model, header, args.checkpoint)
        else:
            st = storage_of_checkpoint(model, args.index_bits or INDEX_BITS)
        text = format_storage_stages(st)
        if args.plot:
            use_agg()
            from ..viz import plot_storage_stages

            save_figure(plot_storage_stages(st), args.plot)
            st["plot"] = args.plot
            text += f"\nplot written to {args.plot}"
        emit(args, st, text)
        return 0
    n_pruned, m = _report_pattern(args, metadata)
    try:
        report = sparsity_report(model, n_pruned=n_pruned, m=m)
    except ValueError as exc:
        raise CLIError(f"{args.checkpoint}: {exc}") from None
    text = format_report(report)
    if any(isinstance(t, (FakeQuantize, WeightSharing)) for t in model.transforms.values()):
        report["quantization"] = quantization_report(model)  # formats, bits, codebooks, bytes
        text += "\n\n" + format_quantization_report(report["quantization"])
    emit(args, report, text)
    return 0


def cmd_datasets(args) -> int:
    rows = dataset_status(cli=True)
    emit(args, rows, format_dataset_status(rows))
    return 0


SCHEDULES = ("oneshot", "iterative", "agp")


def register(add) -> None:
    """Add the commands' parsers (``add(name, **kw)`` makes a sub-parser)."""
    t = add("train", help="train a zoo model and save a checkpoint")
    t.add_argument("--model", choices=sorted(MODELS), default="lecture-net",
                   help="architecture from the model zoo")
    t.add_argument("--epochs", type=int_at_least(1), default=1, help="passes over the data")
    t.add_argument("--out", required=True, help="checkpoint path (.npz)")
    t.add_argument("--no-normalize", dest="normalize", action="store_false",
                   help="feed raw [0, 1] pixels instead of standardised ones")
    add_common_options(t, train=True)
    t.set_defaults(func=cmd_train)

    e = add("eval", help="evaluate a checkpoint on a dataset's test split")
    e.add_argument("checkpoint", help=CHECKPOINT_HELP + ", or a compressed model (.tpz) written "
                   "by tinyprune compress")
    e.add_argument("--integer", action="store_true",
                   help="run an affine-quantized checkpoint (tinyprune quantize --method affine) "
                        "with integer arithmetic only (Jacob et al. 2018)")
    e.add_argument("--activation-dtype", choices=ACTIVATION_DTYPES, default=None,
                   help="--integer: the integers activations are held in; uint8 (Jacob et al.) "
                        "or int8 (the same grid shifted by 128, same results) (default: uint8)")
    add_common_options(e)
    e.set_defaults(func=cmd_eval)

    pr = add("prune", help="prune a checkpoint, fine-tune, report, save",
             epilog="The report printed at the end is explained by: tinyprune report --help")
    pr.add_argument("checkpoint", help=CHECKPOINT_HELP)
    pr.add_argument("--criterion", choices=sorted(CRITERIA), default="l1",
                    help="importance score of each unit (lp needs --p)")
    pr.add_argument("--granularity", choices=GRANULARITIES, default="element",
                    help="what one unit is: a weight, a kernel row, a kernel, an output "
                         "channel/neuron, an input channel, or the N:M pattern")
    pr.add_argument("--sparsity", type=fraction, default=None,
                    help=f"fraction of units to prune, read as --relative-to says (default: "
                         f"{PRUNE_DEFAULTS['sparsity']}; not with nm)")
    pr.add_argument("--relative-to", choices=RELATIVE_TO, default=None,
                    help="'remaining': prune this fraction of the units still unpruned "
                         "(torch.nn.utils.prune; pruning 0.5 twice leaves 25%%); 'total': prune "
                         "until this fraction of all units is pruned (a target sparsity) "
                         "(default: remaining, as the library's relative_to)")
    pr.add_argument("--p", type=norm_order, default=None,
                    help="norm order for --criterion lp (> 0, or inf)")
    pr.add_argument("--n-pruned", type=int_at_least(0), default=None,
                    help=f"--granularity nm: weights pruned in each group of --m (default: "
                         f"{PRUNE_DEFAULTS['n_pruned']}; 2:4 = 2 of every 4 pruned, 50%%)")
    pr.add_argument("--m", type=int_at_least(1), default=None,
                    help=f"--granularity nm: group size, consecutive weights along the input "
                         f"(default: {PRUNE_DEFAULTS['m']})")
    pr.add_argument("--n", dest="old_n", default=None, help=argparse.SUPPRESS)
    pr.add_argument("--global", dest="global_", action="store_true",
                    help="rank all target layers together instead of layer by layer")
    pr.add_argument("--layers", default=None, help="comma-separated layers to prune "
                    "(default: all weighted layers; the classifier is left out for channel)")
    pr.add_argument("--exclude", default=None, help="comma-separated layers to leave dense")
    pr.add_argument("--finetune-epochs", type=int_at_least(0), default=1,
                    help="epochs of training with the masks enforced (0: none)")
    pr.add_argument("--schedule", choices=SCHEDULES, default=None,
                    help="when to prune: oneshot prunes, then fine-tunes with the masks "
                         "enforced; iterative (Han et al. 2015) prunes in --rounds rounds "
                         "spread over the fine-tuning epochs, each the same fraction of the "
                         "remaining weights, to --sparsity; agp (Zhu & Gupta 2017) grows the "
                         "sparsity as s_f (1 - (1 - t/(n dt))^3) over the first 3/4 of the "
                         "fine-tuning steps (iterative/agp: --sparsity is the final sparsity "
                         "'total', --finetune-epochs >= 1, not nm) (default: oneshot)")
    pr.add_argument("--rounds", type=int_at_least(1), default=None,
                    help=f"--schedule iterative: pruning rounds (default: one per fine-tuning "
                         f"epoch); agp: pruning events n, dt = (3/4 of the steps) // n "
                         f"(default: {AGP_ROUNDS})")
    pr.add_argument("--physical", action="store_true",
                    help="remove pruned channels/neurons and save the smaller dense model "
                         "(--granularity channel only)")
    pr.add_argument("--out", default=None, help="where to save the pruned checkpoint (.npz)")
    add_common_options(pr, train=True)
    pr.set_defaults(dataset=None, func=cmd_prune)

    from .compress import INDEX_BITS, STORAGE_COLUMNS

    r = add("report", help="sparsity report of a checkpoint, or its storage stage by stage",
            description="Per-layer sparsity, structure, N:M compliance, storage and MACs of a "
                        "checkpoint.\n\n" + COLUMNS + "\n\nOf a quantized or weight-shared "
                        "checkpoint, also:\n" + QUANT_COLUMNS + "\n\nWith --storage: the bytes of Deep "
                        "Compression's stages (Han et al. 2016).\n\n" + STORAGE_COLUMNS)
    r.add_argument("checkpoint", help=CHECKPOINT_HELP + ", or a compressed model (.tpz)")
    r.add_argument("--storage", action="store_true",
                   help="bytes per weight and in total: dense float32 -> pruned CSR -> + shared "
                        "weights -> + Huffman, the entropy bound, the ratio from the compressed "
                        "file's size (a .tpz given, or one written to a temporary folder)")
    r.add_argument("--index-bits", type=conv_fc_ints(1, 16), default=None, metavar="B|CONV,FC",
                   help=f"--storage of a checkpoint: bits per relative index, B or CONV,FC "
                        f"(default: {show_pair(INDEX_BITS)}, as tinyprune compress)")
    r.add_argument("--plot", default=None,
                   help="with --storage: write the bytes per stage (per weight and in total, "
                        "entropy bound marked) to this file (.png, .pdf, .svg, ...)")
    r.add_argument("--n-pruned", type=int_at_least(0), default=None,
                   help="N:M pattern to check: weights pruned per group (default: the pattern "
                        "the checkpoint was pruned with, else 2)")
    r.add_argument("--m", type=int_at_least(1), default=None,
                   help="N:M pattern to check: group size (default: the checkpoint's, else 4)")
    r.add_argument("--n", dest="old_n", default=None, help=argparse.SUPPRESS)
    add_common_options(r, data=False)
    r.set_defaults(func=cmd_report)

    d = add("datasets", help="where each dataset is, sizes and checksums")
    add_common_options(d, data=False)
    d.set_defaults(func=cmd_datasets)
