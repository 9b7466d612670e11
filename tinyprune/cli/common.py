"""Shared pieces of the command line: argument types, the one-line error, checkpoint and
dataset loading, training options, the help formatter.

Every bad argument is a :class:`CLIError` (one line on stderr naming the argument, exit status 2)
raised before any work is done or any file is written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from ..datasets import DATASET_NAMES, load_dataset
from ..datasets.embedded import SUBSET_NAME
from ..nn.checkpoint import load_checkpoint, save_checkpoint
from ..nn.optim import SGD, Adam
from ..nn.train import TrainingDivergedError, evaluate, fit

DEFAULT_DATASET = SUBSET_NAME
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}
TRAIN_DEFAULTS = {"batch_size": 64, "optimizer": "sgd", "weight_decay": 0.0}
PRUNE_DEFAULTS = {"sparsity": 0.5, "relative_to": "remaining", "n_pruned": 2, "m": 4}
"""Defaults of the options whose default is resolved after parsing (so that giving an option
that would have no effect can be detected and refused). ``relative_to`` is the library's default
(:func:`tinyprune.prune.select.prune_weight`)."""



CHECKPOINT_HELP = "a checkpoint (.npz) written by tinyprune train or tinyprune prune"


class CLIError(Exception):
    """A user-facing error: printed on one line without a traceback, exit status 2."""


# ------------------------------------------------------------------------ argument types
def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def int_at_least(minimum: int):
    """argparse type: an int ``>= minimum``."""
    def parse(text):
        value = _integer(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value
    parse.__name__ = f"int>={minimum}"
    return parse


def positive_float(text: str) -> float:
    """argparse type: a finite float ``> 0``."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a finite float ``>= 0``."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a float in ``[0, 1]``."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text}")
    return value


def norm_order(text: str) -> float:
    """argparse type: a norm order ``p > 0`` (``inf`` allowed)."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or inf, got {text}")
    return value


# ------------------------------------------------------------------------------- helpers
def emit(args, payload: dict, text: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def given(args, name: str) -> bool:
    """Whether the option was given on the command line (its parsed default is None)."""
    return getattr(args, name, None) is not None


def resolve(args, defaults: dict) -> None:
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def check_out(path: str | None, flag: str = "--out", example: str = "model.npz") -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if path is None:
        return
    if os.path.isdir(path):
        raise CLIError(f"{flag}: {path!r} is a directory; give a file name such as "
                       f"{os.path.join(path, example)!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{flag}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise CLIError(f"{flag}: the folder {folder!r} is not writable")


PLOT_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "eps")


def check_plot(path: str | None) -> None:
    """Refuse a ``--plot`` path that cannot be written or has no figure format suffix."""
    if path is None:
        return
    check_out(path, "--plot", "plot.png")
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise CLIError(f"--plot: expected a file name ending in one of "
                       f"{', '.join('.' + f for f in PLOT_FORMATS)}, got {path!r}")


def save_figure(fig, path: str) -> None:
    """Write a matplotlib figure (drawn with the Agg backend) and close it."""
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise CLIError(f"--plot: cannot write {path!r}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def use_agg() -> None:
    """Draw without a display (the command line only writes figure files)."""
    import matplotlib

    matplotlib.use("Agg")


def validation_data(args, data):
    """``(X_train, y_train, X_val, y_val)``: ``--val-fraction`` of the TRAINING data held out
    with ``--seed`` (the test set is never used to choose anything)."""
    from ..prune.sensitivity import validation_split

    return validation_split(data.x_train, data.y_train, args.val_fraction, args.seed)


def open_unit_fraction(text: str) -> float:
    """argparse type: a fraction in ``(0, 1)``."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text}")
    return value


def save(path, model, **kwargs) -> None:
    try:
        save_checkpoint(path, model, **kwargs)
    except OSError as exc:
        raise CLIError(f"--out: cannot write {path!r}: {exc.strerror or exc}") from None


def load_data(args, name: str, *, normalize: bool = True):
    if args.root is not None and not os.path.isdir(args.root):
        raise CLIError(f"--root: the folder {args.root!r} does not exist")
    if name == SUBSET_NAME:
        for flag, value in (("--root", args.root), ("--download", args.download)):
            if value:
                raise CLIError(f"{flag}: the dataset {SUBSET_NAME} is embedded in the package "
                               f"(no files to find or download); {flag} applies to "
                               f"mnist / fashion-mnist")
    try:
        return load_dataset(name, root=args.root, download=args.download, normalize=normalize)
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as exc:
        raise CLIError(getattr(exc, "cli_message", str(exc))) from None


def load_ckpt(path: str):
    """A checkpoint (.npz), its masks set on the model; a bad file is a :class:`CLIError`."""
    if is_compressed(path):
        raise CLIError(f"{path}: a compressed model file (.tpz) is for inference (tinyprune eval "
                       f"/ report --storage); give the checkpoint (.npz) it was compressed from")
    try:
        ckpt = load_checkpoint(path)
    except (OSError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    ckpt.model.masks = dict(ckpt.masks)
    return ckpt


def is_compressed(path: str) -> bool:
    """Whether ``path`` starts with the compressed model file's magic number (``.tpz``)."""
    from ..size.file import MAGIC

    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:  # missing, a folder, unreadable: the checkpoint reader names the problem
        return False


def load_any(path: str):
    """``(model, metadata, header)`` of a checkpoint (.npz, ``header`` None) or of a compressed
    model file (.tpz, its validated header)."""
    if not is_compressed(path):
        ckpt = load_ckpt(path)
        return ckpt.model, ckpt.metadata, None
    from ..size import CompressedFileError, load_compressed, read_header

    try:
        header = read_header(path)
        model = load_compressed(path)
    except (OSError, CompressedFileError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    meta = header.get("metadata")
    return model, meta if isinstance(meta, dict) else {}, header


def refuse_training_flags(args, epochs_flag: str, what: str = "fine-tuning") -> None:
    """With no training (``epochs_flag`` is 0) the training options would do nothing."""
    for flag, name in (("--lr", "lr"), ("--optimizer", "optimizer"),
                       ("--weight-decay", "weight_decay"), ("--batch-size", "batch_size")):
        if given(args, name):
            raise CLIError(f"{flag}: only used for {what}, but {epochs_flag} is 0")


def make_optimizer(args, model):
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    if args.optimizer == "adam":
        return Adam(model.params, lr=lr, weight_decay=args.weight_decay)
    return SGD(model.params, lr=lr, momentum=0.9, weight_decay=args.weight_decay)


def fit_model(args, model, data, epochs, *, train=None, **kwargs):
    """Train with the command's options; ``train`` replaces :func:`~tinyprune.nn.train.fit`
    (e.g. :func:`~tinyprune.distill.distill`), ``kwargs`` are passed to it. A diverged run is a
    :class:`CLIError` naming ``--lr`` (nothing is saved)."""
    progress = not args.json and args.progress
    train = fit if train is None else train
    try:
        # overflow on the way to NaN is detected and reported as one line by fit
        with np.errstate(over="ignore", invalid="ignore"):
            return train(model, data.x_train, data.y_train,
                         optimizer=make_optimizer(args, model), epochs=epochs,
                         batch_size=args.batch_size, rng=args.seed, progress=progress, **kwargs)
    except TrainingDivergedError as exc:
        if progress:
            print(file=sys.stderr)  # end the progress bar's line
        raise CLIError(f"--lr: {exc}; nothing was saved") from None


def accuracy(model, data) -> float:
    return float(evaluate(model, data.x_test, data.y_test)["accuracy"])


def refuse_renamed_n(args) -> None:
    if args.old_n is not None:
        raise CLIError("--n: renamed --n-pruned (the weights pruned in each group of --m "
                       "consecutive weights; 2:4 is --n-pruned 2 --m 4)")



# ------------------------------------------------------------------------------- parser
class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (unless None/False or already in the help text) and keeps
    the line breaks of descriptions and epilogs (the report's column legend)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default is None or action.default is argparse.SUPPRESS or action.nargs == 0
                or "default" in text):
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_common_options(sp, data=True, train=False, lr_note=""):
    """``--json``; with ``data`` the dataset options; with ``train`` the training options
    (``lr_note`` is added to ``--lr``'s help)."""
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    if data:
        sp.add_argument("--dataset", default=DEFAULT_DATASET if train else None,
                        choices=DATASET_NAMES,
                        help=("dataset" if train else
                              f"dataset (default: the one recorded in the checkpoint, else "
                              f"{DEFAULT_DATASET})"))
        sp.add_argument("--root", default=None, metavar="FOLDER",
                        help="folder holding the dataset's IDX files (mnist / "
                             "fashion-mnist; searched first)")
        sp.add_argument("--download", action="store_true",
                        help="allow downloading mnist / fashion-mnist if not found locally")
    if train:
        sp.add_argument("--batch-size", type=int_at_least(1), default=None,
                        help=f"mini-batch size (default: {TRAIN_DEFAULTS['batch_size']})")
        sp.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                        help="sgd (momentum 0.9) or adam (default: sgd)")
        sp.add_argument("--lr", type=positive_float, default=None,
                        help=f"learning rate (default: {DEFAULT_LR['sgd']} for sgd, "
                             f"{DEFAULT_LR['adam']} for adam{lr_note})")
        sp.add_argument("--weight-decay", type=nonnegative_float, default=None,
                        help="L2 weight decay (default: 0)")
        sp.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed of the initialisation, the shuffling and random criteria")
        sp.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar")


def conv_fc_ints(minimum: int, maximum: int):
    """argparse type: ``"B"`` (every layer) or ``"CONV,FC"`` (conv layers, the others), ints in
    ``[minimum, maximum]``; returns a tuple of one or two ints."""
    def parse(text):
        parts = text.split(",")
        if len(parts) not in (1, 2):
            raise argparse.ArgumentTypeError(f"expected B or CONV,FC (e.g. 8,5), got {text!r}")
        values = tuple(_integer(t) for t in parts)
        for v in values:
            if not minimum <= v <= maximum:
                raise argparse.ArgumentTypeError(
                    f"expected integers in [{minimum}, {maximum}], got {text}")
        return values
    parse.__name__ = "B or CONV,FC"
    return parse


def conv_fc_value(pair: tuple, is_conv: bool) -> int:
    """The conv or fc entry of a :func:`conv_fc_ints` value."""
    return pair[0] if is_conv or len(pair) == 1 else pair[1]


def show_pair(pair: tuple) -> str:
    return ",".join(map(str, pair))
