"""``tinyprune quantize``: affine quantization (post-training calibration, optional
quantization-aware training) or k-means weight sharing (optional centroid fine-tuning) of a
checkpoint; ``tinyprune eval --integer`` runs an affine-quantized checkpoint with integer
arithmetic only (:func:`integer_accuracy`)."""

from __future__ import annotations

import argparse
import math

import numpy as np

from ..nn.layers import Conv2d, Linear
from ..nn.train import evaluate
from ..quantize import (
    INITS,
    SUPPORTED_BITS,
    ActFakeQuant,
    FakeQuantize,
    FreezeObservers,
    calibrate,
    centroid_lr,
    convert,
    prepare_qat,
    share_weights,
)
from .common import (
    CHECKPOINT_HELP,
    DEFAULT_DATASET,
    TRAIN_DEFAULTS,
    CLIError,
    accuracy,
    add_common_options,
    check_out,
    conv_fc_ints,
    conv_fc_value,
    emit,
    fit_model,
    given,
    int_at_least,
    load_ckpt,
    load_data,
    refuse_training_flags,
    resolve,
    save,
    show_pair,
)

CALIBRATION_BATCH = 256
"""Images per calibration batch (:func:`tinyprune.quantize.calibrate`'s default)."""
QUANTIZE_DEFAULTS = {"bits": (8,), "per_channel": True, "symmetric": True,
                     "calibration_batches": 2, "init": "linear", "reserve_zero": False}
"""Defaults resolved after parsing; ``per_channel`` / ``symmetric`` / ``init`` are the library's
(:func:`~tinyprune.quantize.prepare_qat`, :func:`~tinyprune.quantize.share_weights`)."""
AFFINE_ONLY = (("--per-channel/--no-per-channel", "per_channel"),
               ("--symmetric/--no-symmetric", "symmetric"),
               ("--calibration-batches", "calibration_batches"))
KMEANS_ONLY = (("--init", "init"), ("--reserve-zero/--no-reserve-zero", "reserve_zero"))
KMEANS_LR_SCALE = 1.0
"""Default SGD learning rate of centroid fine-tuning: ``KMEANS_LR_SCALE / n``, ``n`` the largest
mean cluster size (kept weights per centroid) of the shared layers
(:func:`~tinyprune.quantize.centroid_lr`). A centroid's gradient is the sum of its cluster's
(Han et al. 2016, sec. 3.3), so a fixed rate diverges once the clusters are big: 1e-3 did at 2-3
bits on LeNet-300-100 (fc1: 29,400 weights per centroid at 3 bits), and the training default
0.05 destroys the codebook at any bit width."""
KMEANS_ADAM_LR = 1e-3
"""Default Adam learning rate of centroid fine-tuning (Adam's step does not grow with the
gradient, so the cluster size does not matter)."""


def is_affine_quantized(model) -> bool:
    """Whether ``model`` holds fake-quantization layers or weight transforms (prepare_qat)."""
    return (any(isinstance(m, ActFakeQuant) for m in model.layers.values())
            or any(isinstance(t, FakeQuantize) for t in model.transforms.values()))


def _check_flags(args) -> None:
    affine = args.method == "affine"
    for flag, name in (KMEANS_ONLY if affine else AFFINE_ONLY):
        if given(args, name):
            raise CLIError(f"{flag}: only used with --method "
                           f"{'kmeans' if affine else 'affine'}, got --method {args.method}")
    if args.qat_epochs == 0:
        refuse_training_flags(args, "--qat-epochs", "quantization-aware training")
    resolve(args, {**TRAIN_DEFAULTS, **QUANTIZE_DEFAULTS})
    if affine:
        if len(args.bits) != 1:
            raise CLIError(f"--bits: --method affine takes one bit width, got "
                           f"{show_pair(args.bits)}")
        if args.bits[0] not in SUPPORTED_BITS:
            raise CLIError(f"--bits: --method affine supports {list(SUPPORTED_BITS)} bits, got "
                           f"{args.bits[0]}")


def _affine(args, model, data):
    bits = args.bits[0]
    q = prepare_qat(model, bits=bits, per_channel=args.per_channel, symmetric=args.symmetric)
    n_cal = min(args.calibration_batches * CALIBRATION_BATCH, data.x_train.shape[0])
    x_cal = data.x_train[:n_cal]  # (n_cal, ...)
    ptq = calibrate(q, x_cal, batch_size=CALIBRATION_BATCH)
    result = {"accuracy_ptq": accuracy(ptq, data), "accuracy_qat": None}
    info = {"method": "affine", "bits": bits, "per_channel": args.per_channel,
            "symmetric": args.symmetric, "calibration_samples": n_cal,
            "qat_epochs": args.qat_epochs}
    if args.qat_epochs == 0:
        return ptq, result, info
    # QAT: the ranges keep adapting (EMA) for the first half of the steps, then freeze
    qat = calibrate(q, x_cal, batch_size=CALIBRATION_BATCH, freeze=False)
    steps = args.qat_epochs * math.ceil(data.x_train.shape[0] / args.batch_size)
    fit_model(args, qat, data, args.qat_epochs, callbacks=[FreezeObservers(steps // 2)])
    result["accuracy_qat"] = accuracy(qat, data)
    return qat, result, info


def _kmeans(args, model, data):
    weighted = [n for n, m in model.layers.items() if isinstance(m, (Linear, Conv2d))]
    bits = {n: conv_fc_value(args.bits, isinstance(model.layers[n], Conv2d)) for n in weighted}
    shared = share_weights(model, bits, init=args.init, rng=np.random.default_rng(args.seed),
                           reserve_zero=args.reserve_zero)
    result = {"accuracy_shared": accuracy(shared, data), "accuracy_finetuned": None,
              "codebook_sizes": {n: int(t.n_clusters) for n, t in shared.transforms.items()}}
    if args.qat_epochs > 0:
        if args.lr is None:
            args.lr = (KMEANS_ADAM_LR if args.optimizer == "adam"
                       else centroid_lr(shared, KMEANS_LR_SCALE))
        fit_model(args, shared, data, args.qat_epochs)
        result["accuracy_finetuned"] = accuracy(shared, data)
    info = {"method": "kmeans", "bits": bits, "init": args.init, "reserve_zero": args.reserve_zero,
            "finetune_epochs": args.qat_epochs,
            "finetune_lr": args.lr if args.qat_epochs > 0 else None}
    return shared, result, info


def cmd_quantize(args) -> int:
    _check_flags(args)
    check_out(args.out)
    ckpt = load_ckpt(args.checkpoint)
    model = ckpt.model
    if is_affine_quantized(model) or model.transforms:
        raise CLIError(f"{args.checkpoint}: already quantized or weight-shared (weight transforms "
                       f"{sorted(model.transforms)}); quantize the float checkpoint")
    name = args.dataset or ckpt.metadata.get("dataset", DEFAULT_DATASET)
    data = load_data(args, name, normalize=bool(ckpt.metadata.get("normalize", True)))
    acc_before = accuracy(model, data)
    try:
        qmodel, result, info = (_affine if args.method == "affine" else _kmeans)(args, model, data)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--bits/--method: {exc}") from None
    final = [v for k, v in result.items() if k.startswith("accuracy") and v is not None][-1]
    meta = dict(ckpt.metadata)
    meta.update(dataset=data.name, quantized=info, test_accuracy=final)
    save(args.out, qmodel, masks=qmodel.masks, metadata=meta)
    payload = {"command": "quantize", "checkpoint": args.checkpoint, "out": args.out,
               "quantized": info, "accuracy_before": acc_before, **result}
    if args.method == "affine":
        scheme = (f"{info['bits']}-bit affine, {'per-channel' if args.per_channel else 'per-tensor'}"
                  f", {'symmetric' if args.symmetric else 'asymmetric'} weights, 8-bit "
                  f"activations calibrated on {info['calibration_samples']} images")
        lines = [scheme, f"accuracy float            {acc_before:.2%}",
                 f"accuracy calibrated (PTQ) {result['accuracy_ptq']:.2%}"]
        if result["accuracy_qat"] is not None:
            lines.append(f"accuracy after QAT        {result['accuracy_qat']:.2%} "
                         f"({args.qat_epochs} epoch(s))")
    else:
        books = ", ".join(f"{n} {k}" for n, k in result["codebook_sizes"].items())
        lines = [f"k-means weight sharing ({args.init} init), bits "
                 f"{', '.join(f'{n} {b}' for n, b in info['bits'].items())}",
                 f"codebook sizes: {books}",
                 f"accuracy float            {acc_before:.2%}",
                 f"accuracy shared           {result['accuracy_shared']:.2%}"]
        if result["accuracy_finetuned"] is not None:
            lines.append(f"accuracy after fine-tune  {result['accuracy_finetuned']:.2%} "
                         f"({args.qat_epochs} epoch(s) of centroid updates, {args.optimizer} "
                         f"lr {args.lr:.3g})")
    lines.append(f"saved {args.out}")
    emit(args, payload, "\n".join(lines))
    return 0


def integer_accuracy(model, metadata, data, path, activation_dtype="uint8") -> dict:
    """Test loss/accuracy of ``model`` run by :func:`tinyprune.quantize.convert`'s integer-only
    network (calibrated on the checkpoint's calibration images), beside the fake-quantized float
    model's."""
    if not is_affine_quantized(model):
        raise CLIError(f"--integer: {path} is not affine-quantized (no fake-quantization layers "
                       f"or weights); run tinyprune quantize --method affine first")
    info = metadata.get("quantized") if isinstance(metadata.get("quantized"), dict) else {}
    n_cal = info.get("calibration_samples")
    if not (isinstance(n_cal, int) and n_cal >= 1):
        n_cal = QUANTIZE_DEFAULTS["calibration_batches"] * CALIBRATION_BATCH
    try:
        int_model = convert(model, data.x_train[:n_cal], activation_dtype=activation_dtype)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--integer: {path}: {exc}") from None
    logits = int_model.predict(data.x_test)  # (N, classes) float64, from integer arithmetic
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    idx = np.arange(data.y_test.shape[0])
    return {"test_loss": float(-log_p[idx, data.y_test].mean()),
            "test_accuracy": float((logits.argmax(axis=1) == data.y_test).mean()),
            "fake_quant_test_accuracy": float(evaluate(model, data.x_test,
                                                       data.y_test)["accuracy"]),
            "activation_dtype": activation_dtype}


def register(add) -> None:
    """Add the ``quantize`` parser."""
    q = add("quantize", help="affine quantization (PTQ, QAT) or k-means weight sharing",
            description="Quantize a checkpoint's weights. affine: fake-quantized weights and "
                        "8-bit activations (Jacob et al. 2018), calibrated on training images, "
                        "optionally trained with the quantizers in the loop (--qat-epochs; the "
                        "ranges freeze after half the steps); run it with integers only by "
                        "tinyprune eval --integer. kmeans: each layer's weights shared among "
                        "2^bits centroids (Han et al. 2016), pruned weights stay 0, optionally "
                        "fine-tuned centroids (--qat-epochs).")
    q.add_argument("checkpoint", help=CHECKPOINT_HELP)
    q.add_argument("--method", choices=("affine", "kmeans"), default="affine",
                   help="uniform affine quantization or k-means weight sharing")
    q.add_argument("--bits", type=conv_fc_ints(1, 16), default=None, metavar="B|CONV,FC",
                   help="bits per weight: affine 2..8 or 16; kmeans 1..16 per index, or "
                        "CONV,FC such as 8,5 (Han et al.: conv 8, fc 5) (default: 8)")
    q.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="affine: one scale / zero point per output channel (--no-per-channel: "
                        "per tensor) (default: per channel, as prepare_qat)")
    q.add_argument("--symmetric", action=argparse.BooleanOptionalAction, default=None,
                   help="affine: zero point 0 (--no-symmetric: asymmetric weights) (default: "
                        "symmetric, as prepare_qat)")
    q.add_argument("--calibration-batches", type=int_at_least(1), default=None,
                   help=f"affine: batches of {CALIBRATION_BATCH} training images the activation "
                        f"ranges are calibrated on (default: "
                        f"{QUANTIZE_DEFAULTS['calibration_batches']})")
    q.add_argument("--init", choices=INITS, default=None,
                   help="kmeans: centroid initialisation (default: linear, as share_weights; "
                        "Han et al. found it best)")
    q.add_argument("--reserve-zero", action=argparse.BooleanOptionalAction, default=None,
                   help="kmeans: keep one of the 2^bits codes for 0 (2^bits - 1 centroids), so "
                        "that the filler zeros of a compressed file (tinyprune compress) need no "
                        "extra index bit (default: no, as share_weights)")
    q.add_argument("--qat-epochs", type=int_at_least(0), default=0,
                   help="epochs of training with the quantizer in the loop (affine: QAT; "
                        "kmeans: centroid fine-tuning); 0: none")
    q.add_argument("--out", required=True, help="where to save the quantized checkpoint (.npz)")
    add_common_options(q, train=True, lr_note=f"; kmeans: sgd {KMEANS_LR_SCALE:g} / (largest mean "
                                              f"cluster size), as a centroid's gradient sums its "
                                              f"cluster's; adam {KMEANS_ADAM_LR:g}")
    q.set_defaults(dataset=None, func=cmd_quantize)

