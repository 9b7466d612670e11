"""``tinyprune distill``: train a student (a zoo model or a checkpoint) from a teacher
checkpoint's softened outputs (Hinton et al. 2015; :func:`tinyprune.distill.distill`)."""

from __future__ import annotations

import os

from ..distill import distill
from ..nn.models import MODELS, build_model
from .common import (
    DEFAULT_DATASET,
    TRAIN_DEFAULTS,
    CLIError,
    accuracy,
    add_common_options,
    check_out,
    emit,
    fit_model,
    fraction,
    given,
    int_at_least,
    load_ckpt,
    load_data,
    positive_float,
    resolve,
    save,
)

DISTILL_DEFAULTS = {"temperature": 4.0}
"""Resolved after parsing (with ``--alpha 0`` a temperature would have no effect)."""


def _student(args):
    """``(model, metadata or None)``: a fresh zoo model, or a checkpoint's model."""
    key = args.student.replace("_", "-").lower()
    if key in MODELS:
        return build_model(key, seed=args.seed), None
    if not os.path.exists(args.student):
        raise CLIError(f"--student: expected a zoo model {sorted(MODELS)} or a checkpoint file, "
                       f"got {args.student!r} (no such file)")
    ckpt = load_ckpt(args.student)
    return ckpt.model, ckpt.metadata


def cmd_distill(args) -> int:
    if args.alpha == 0 and given(args, "temperature"):
        raise CLIError("--temperature: --alpha 0 trains on the labels alone (no soft targets), "
                       "so the temperature would have no effect")
    resolve(args, {**TRAIN_DEFAULTS, **DISTILL_DEFAULTS})
    check_out(args.out)
    teacher_ckpt = load_ckpt(args.teacher)
    student, s_meta = _student(args)
    t_meta = teacher_ckpt.metadata
    normalize = bool(t_meta.get("normalize", True))
    if s_meta is not None and bool(s_meta.get("normalize", True)) != normalize:
        raise CLIError(f"--student: {args.student} was trained on "
                       f"{'standardised' if not normalize else 'raw [0, 1]'} pixels, the teacher "
                       f"on {'standardised' if normalize else 'raw [0, 1]'} ones")
    name = args.dataset or t_meta.get("dataset", DEFAULT_DATASET)
    data = load_data(args, name, normalize=normalize)
    teacher = teacher_ckpt.model
    acc_teacher = accuracy(teacher, data)
    acc_before = accuracy(student, data) if s_meta is not None else None
    try:
        hist = fit_model(args, student, data, args.epochs,
                         train=lambda model, x, y, **kw: distill(model, teacher, x, y, **kw),
                         temperature=args.temperature, alpha=args.alpha)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--teacher/--student: {exc}") from None
    acc_after = accuracy(student, data)
    info = {"teacher": os.path.basename(args.teacher), "temperature": args.temperature,
            "alpha": args.alpha, "epochs": args.epochs}
    meta = dict(s_meta) if s_meta is not None else {"model": args.student.replace("_", "-")
                                                    .lower(), "seed": args.seed}
    meta.update(dataset=data.name, normalize=normalize, distilled=info, test_accuracy=acc_after)
    save(args.out, student, masks=student.masks, metadata=meta)
    payload = {"command": "distill", "teacher": args.teacher, "student": args.student,
               "out": args.out, "temperature": args.temperature, "alpha": args.alpha,
               "epochs": args.epochs, "train_loss": list(map(float, hist.loss)),
               "teacher_accuracy": acc_teacher, "student_accuracy_before": acc_before,
               "student_accuracy": acc_after, "teacher_params": teacher.num_parameters(),
               "student_params": student.num_parameters()}
    lines = [f"distilled {args.teacher} ({teacher.num_parameters():,} parameters) into "
             f"{args.student} ({student.num_parameters():,}): T = {args.temperature}, "
             f"alpha = {args.alpha}, {args.epochs} epoch(s)",
             f"teacher accuracy          {acc_teacher:.2%}"]
    if acc_before is not None:
        lines.append(f"student before            {acc_before:.2%}")
    lines += [f"student after             {acc_after:.2%}", f"saved {args.out}"]
    emit(args, payload, "\n".join(lines))
    return 0


def register(add) -> None:
    """Add the ``distill`` parser."""
    d = add("distill", help="train a student from a teacher's soft targets",
            description="Knowledge distillation (Hinton et al. 2015): the student minimises "
                        "alpha T^2 KL(teacher^T || student^T) + (1 - alpha) CE(labels), the "
                        "softmaxes taken at temperature T.")
    d.add_argument("--teacher", required=True, help="the teacher checkpoint (.npz)")
    d.add_argument("--student", required=True,
                   help=f"a zoo model to train from scratch ({', '.join(sorted(MODELS))}) or a "
                        f"checkpoint to keep training (pruned, factorized, weight-shared...)")
    d.add_argument("--temperature", type=positive_float, default=None,
                   help=f"softmax temperature T of the soft targets (default: "
                        f"{DISTILL_DEFAULTS['temperature']:g})")
    d.add_argument("--alpha", type=fraction, default=0.9,
                   help="weight of the soft-target term, in [0, 1] (0: labels only)")
    d.add_argument("--epochs", type=int_at_least(1), default=1, help="passes over the data")
    d.add_argument("--out", required=True, help="where to save the student checkpoint (.npz)")
    add_common_options(d, train=True)
    d.set_defaults(dataset=None, func=cmd_distill)
