"""``tinyprune pipeline``: Deep Compression in one command (:mod:`tinyprune.pipeline`): train a
zoo model, prune it iteratively to the paper's per-layer sparsities, share its weights by k-means
with centroid fine-tuning, write the compressed file, read it back and evaluate it; print the
accuracies and the storage table stage by stage."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..datasets import DATASET_NAMES
from ..nn.models import MODELS, build_model
from ..nn.train import TrainingDivergedError
from ..pipeline import HAN_SPARSITY, SHARE_BITS, deep_compress, format_result
from ..size import STORAGE_COLUMNS, CompressedFileError
from .common import (
    DEFAULT_DATASET,
    CLIError,
    check_out,
    conv_fc_ints,
    emit,
    int_at_least,
    load_data,
    positive_float,
    show_pair,
)

PIPELINE_DEFAULTS = {"model": "lenet5", "epochs": 8, "prune_rounds": 3, "epochs_per_round": 4,
                     "share_epochs": 3, "batch_size": 64, "lr": 0.02}
"""Defaults of ``tinyprune pipeline``: LeNet-5, the network of Deep Compression's Table 1; the
epochs make the whole run take about a minute on the embedded subset (2 cores)."""


def index_bits_arg(text: str):
    """argparse type: ``auto`` or ``B`` / ``CONV,FC`` in ``[1, 16]``."""
    if text == "auto":
        return "auto"
    try:
        return conv_fc_ints(1, 16)(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected auto, B or CONV,FC ({exc})") from None


index_bits_arg.__name__ = "auto, B or CONV,FC"


def _index_bits(value, model):
    if value == "auto":
        return "auto"
    from ..nn.layers import Conv2d

    return {f"{n}.weight": value[0] if isinstance(m, Conv2d) or len(value) == 1 else value[1]
            for n, m in model.layers.items() if "weight" in m.params
            and m.params["weight"].ndim >= 2}


def cmd_pipeline(args) -> int:
    check_out(args.out, example="model.tpz")
    data = load_data(args, args.dataset)
    model = build_model(args.model, seed=args.seed)
    bits = args.bits or SHARE_BITS
    share_bits = bits if len(bits) == 2 else bits[0]
    meta = {"dataset": data.name, "normalize": True, "model": args.model}
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by fit
            r = deep_compress(model, data, args.out, train_epochs=args.epochs,
                              prune_rounds=args.prune_rounds,
                              epochs_per_round=args.epochs_per_round, share_bits=share_bits,
                              share_epochs=args.share_epochs,
                              index_bits=_index_bits(args.index_bits, model), lr=args.lr,
                              batch_size=args.batch_size, seed=args.seed,
                              huffman=args.huffman, metadata=meta,
                              progress=args.progress and not args.json)
    except TrainingDivergedError as exc:
        if args.progress and not args.json:
            print(file=sys.stderr)  # end the progress bar's line
        raise CLIError(f"--lr: {exc}; nothing was saved") from None
    except OSError as exc:
        raise CLIError(f"--out: cannot write {args.out!r}: {exc.strerror or exc}") from None
    except (ValueError, CompressedFileError) as exc:
        raise CLIError(str(exc)) from None
    payload = {"command": "pipeline", "model": args.model, "dataset": data.name,
               "out": args.out, **r.to_dict()}
    s = r.seconds
    text = (f"Deep Compression of {args.model} on {data.name} ({args.epochs} dense epoch(s), "
            f"{args.prune_rounds} pruning round(s) x {args.epochs_per_round} epoch(s), "
            f"{args.share_epochs} centroid epoch(s)): {s['total']:.0f} s (train {s['train']:.0f}, "
            f"prune {s['prune']:.0f}, share {s['share']:.0f}, compress {s['compress']:.1f})\n\n"
            + format_result(r)
            + f"\n\nsaved {args.out}; tinyprune eval {args.out} reads it back")
    emit(args, payload, text)
    return 0


def register(add) -> None:
    """Add the ``pipeline`` parser."""
    sp = ", ".join(f"{k} {v:.0%}" for k, v in HAN_SPARSITY.items())
    p = add("pipeline", help="Deep Compression in one command: train, prune, share, Huffman, "
                             "evaluate from the file",
            description="Deep Compression (Han et al. 2016) end to end: train a zoo model, prune "
                        f"it in rounds to the paper's per-layer sparsities ({sp}; masked "
                        "fine-tuning at lr/10), share its weights by k-means (one code kept for "
                        "the filler zero) and fine-tune the centroids, write the compressed file "
                        "(relative CSR, codebooks, Huffman), read it back and evaluate it. Prints "
                        "the accuracy after every stage and the bytes stage by stage.\n\n"
                        + STORAGE_COLUMNS)
    p.add_argument("--model", choices=sorted(MODELS), default=PIPELINE_DEFAULTS["model"],
                   help="zoo model")
    p.add_argument("--dataset", choices=DATASET_NAMES, default=DEFAULT_DATASET, help="dataset")
    p.add_argument("--root", default=None, metavar="FOLDER",
                   help="folder holding the dataset's IDX files (mnist / fashion-mnist; "
                        "searched first)")
    p.add_argument("--download", action="store_true",
                   help="allow downloading mnist / fashion-mnist if not found locally")
    p.add_argument("--epochs", type=int_at_least(0), default=PIPELINE_DEFAULTS["epochs"],
                   help="dense training epochs (0: prune the untrained model)")
    p.add_argument("--prune-rounds", type=int_at_least(1),
                   default=PIPELINE_DEFAULTS["prune_rounds"],
                   help="pruning rounds (the same fraction of the remaining weights each)")
    p.add_argument("--epochs-per-round", type=int_at_least(1),
                   default=PIPELINE_DEFAULTS["epochs_per_round"],
                   help="masked fine-tuning epochs after each pruning round")
    p.add_argument("--share-epochs", type=int_at_least(0),
                   default=PIPELINE_DEFAULTS["share_epochs"],
                   help="centroid fine-tuning epochs after weight sharing")
    p.add_argument("--bits", type=conv_fc_ints(1, 16), default=None, metavar="B|CONV,FC",
                   help=f"bits per codebook index (default: {show_pair(SHARE_BITS)}, conv,fc: "
                        f"Deep Compression's)")
    p.add_argument("--index-bits", type=index_bits_arg, default="auto",
                   metavar="auto|B|CONV,FC",
                   help="bits per relative index: auto (per weight, the width that makes the "
                        "file smallest), B for every weight, or CONV,FC such as 8,5 (the paper's)")
    p.add_argument("--huffman", action=argparse.BooleanOptionalAction, default=True,
                   help="Huffman-code the index streams (--no-huffman: bit-packed)")
    p.add_argument("--lr", type=positive_float, default=PIPELINE_DEFAULTS["lr"],
                   help="learning rate of dense training (SGD, momentum 0.9); pruning "
                        "fine-tunes at lr/10, centroids at 1 / (largest mean cluster size), "
                        "tinyprune.quantize.centroid_lr")
    p.add_argument("--batch-size", type=int_at_least(1),
                   default=PIPELINE_DEFAULTS["batch_size"], help="mini-batch size")
    p.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of the initialisation, the data order and k-means")
    p.add_argument("--out", required=True, help="the compressed file to write (.tpz)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_pipeline)
