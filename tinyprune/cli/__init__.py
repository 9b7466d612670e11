"""The ``tinyprune`` command line: train, prune, quantize, compress, factorize, distil, grade.

Also: per-layer sensitivity scans, pruning schedules (prune --schedule), lottery tickets;
evaluate (float, integer-only, or from a compressed file), report (sparsity, storage stage
by stage), list the datasets.

Examples
--------
::

    tinyprune train --model lecture-net --epochs 1 --out model.npz
    tinyprune eval model.npz --json
    tinyprune prune model.npz --criterion l1 --granularity channel --sparsity 0.5 \\
        --finetune-epochs 1 --out pruned.npz --physical
    tinyprune prune model.npz --granularity nm --n-pruned 2 --m 4 --out nm.npz
    tinyprune prune model.npz --schedule agp --sparsity 0.9 --finetune-epochs 2 --out agp.npz
    tinyprune report pruned.npz
    tinyprune sensitivity model.npz --target-sparsity 0.8 --plot sens.png --apply --out s.npz
    tinyprune lottery --model lenet-300-100 --rounds 3 --plot lt.png
    tinyprune quantize model.npz --method affine --bits 8 --out q.npz
    tinyprune eval q.npz --integer
    tinyprune quantize pruned.npz --method kmeans --bits 8,5 --qat-epochs 1 --out shared.npz
    tinyprune compress shared.npz --out model.tpz
    tinyprune report model.tpz --storage --plot storage.png
    tinyprune pipeline --model lenet5 --out model.tpz
    tinyprune factorize model.npz --layers fc1 --energy 0.9 --out f.npz
    tinyprune distill --teacher model.npz --student lenet-300-100 --temperature 4 --alpha 0.9 \\
        --epochs 1 --out student.npz
    tinyprune grade submission.ipynb --assignment magnitude_mask --format gradescope
    tinyprune datasets

Every bad argument is a one-line error on stderr naming the argument, with exit status 2, before
any work is done or any file is written; a flag that would have no effect is an error too.

One module per command group: :mod:`.core` (train, eval, prune, report, datasets),
:mod:`.sensitivity`, :mod:`.lottery`,
:mod:`.quantize` (and eval --integer), :mod:`.compress` (and report --storage), :mod:`.pipeline`,
:mod:`.factorize`,
:mod:`.distill`, :mod:`.grade`; shared argument types and helpers in :mod:`.common`.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import (
    compress,
    core,
    distill,
    factorize,
    grade,
    lottery,
    pipeline,
    quantize,
    sensitivity,
)
from .common import (
    DEFAULT_DATASET,
    DEFAULT_LR,
    PRUNE_DEFAULTS,
    TRAIN_DEFAULTS,
    CLIError,
    Formatter,
    Parser,
)

__all__ = ["DEFAULT_DATASET", "DEFAULT_LR", "PRUNE_DEFAULTS", "TRAIN_DEFAULTS", "CLIError",
           "build_parser", "main"]

COMMAND_GROUPS = (core, sensitivity, lottery, quantize, compress, pipeline, factorize, distill,
                  grade)
"""Modules with a ``register(add)`` function, in the order their commands are listed."""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tinyprune", description=__doc__.split("\n")[0], formatter_class=Formatter,
               allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def add(name, **kw):
        return sub.add_parser(name, formatter_class=Formatter, allow_abbrev=False, **kw)

    for group in COMMAND_GROUPS:
        group.register(add)
    return p


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad arguments or input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"tinyprune {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `tinyprune report m.npz | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
