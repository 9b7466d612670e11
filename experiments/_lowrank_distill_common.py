"""Shared plumbing of the low-rank and distillation experiments: arguments, data, training the
lecture net, timing in alternating blocks, the JSON report and the RESULTS row.

Contract of every experiment: ``python experiments/<name>.py [--quick] [--json]`` prints one JSON
object (with ``--json``; a short text summary otherwise) holding ``claim``, ``target``,
``measured`` (with the seeds) and ``met``. ``--quick`` runs in under a minute on the embedded
Fashion-MNIST subset (a smoke run: its numbers are not evidence); the full run uses the full
Fashion-MNIST and writes its row to ``experiments/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# One BLAS thread: these scripts measure accuracy, and on a shared machine a second BLAS thread
# per process made training many times slower. Set OMP_NUM_THREADS to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["OMP_NUM_THREADS"])

import numpy as np  # noqa: E402 - after the thread settings

HERE = Path(__file__).resolve().parent
_T0 = time.perf_counter()


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run on the embedded subset (under a minute)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return parser.parse_args()


def load_data(quick: bool, val_fraction: float | None = None, seed: int = 0):
    """``(x_train, y_train, x_val, y_val, x_test, y_test, name)``: the embedded subset when
    ``quick``, else the full Fashion-MNIST; a stratified validation split when asked."""
    from tinyprune.datasets import load_dataset, train_val_split

    name = "fashion-mnist-small" if quick else "fashion-mnist"
    ds = load_dataset(name)
    x, y = ds.x_train, ds.y_train
    x_val = y_val = None
    if val_fraction:
        x, y, x_val, y_val = train_val_split(x, y, val_fraction, seed=seed)
    return x, y, x_val, y_val, ds.x_test, ds.y_test, name


def train_lecture_net(x, y, *, epochs: int, seed: int, lr: float = 0.02,
                      lr_drop_after: int | None = None):
    """The lecture net trained with SGD (momentum 0.9, batch 64) from ``seed``; with
    ``lr_drop_after`` the learning rate is divided by 4 after that many epochs."""
    from tinyprune.nn import lecture_net
    from tinyprune.nn.optim import SGD, StepLR
    from tinyprune.nn.train import fit

    model = lecture_net(seed=seed)
    opt = SGD(model.params, lr=lr, momentum=0.9)
    scheduler = None if lr_drop_after is None else StepLR(opt, lr_drop_after, gamma=0.25)
    fit(model, x, y, optimizer=opt, epochs=epochs, batch_size=64, rng=seed, progress=False,
        scheduler=scheduler)
    return model


def accuracy(model, x, y) -> float:
    from tinyprune.nn.train import evaluate

    return float(evaluate(model, x, y, batch_size=500)["accuracy"])


def alternating_ms(fn_a, fn_b, repeats: int, rounds: int = 4):
    """Per-call times in ms of ``fn_a`` and ``fn_b``, timed in alternating blocks so that drift
    in the machine's speed affects both alike: ``{"a_min", "a_median", "b_min", "b_median"}``."""
    per_round = max(1, -(-repeats // rounds))
    times = {"a": [], "b": []}
    for _ in range(rounds):
        for key, fn in (("a", fn_a), ("b", fn_b)):
            fn()  # warm-up of this block
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t0) * 1e3)
    return {f"{k}_{stat}": float(f(v)) for k, v in times.items()
            for stat, f in (("min", min), ("median", statistics.median))}


def mean_std(values) -> dict:
    v = [float(x) for x in values]
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "values": v}


def report(name: str, result: dict, *, as_json: bool, quick: bool, row: str) -> None:
    """Print the result; after a full run also write its row (``row``: the measured column)."""
    result = {"experiment": name, "quick": quick, **result}
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{name}: {result['claim']}")
        print(f"  target:   {result['target']}")
        print(f"  measured: {row}")
        print(f"  met:      {result['met']}")
    if not quick:
        write_row(name, result, row)


def write_row(name: str, result: dict, measured: str) -> None:
    """Replace (or add) the row of ``name`` in experiments/RESULTS.md (the shared table)."""
    import _common  # experiments/_common.py: one results table for every experiment

    seconds = result.get("seconds", time.perf_counter() - _T0)
    _common.write_row(name, result["claim"], result["target"], measured, result["met"],
                      result.get("seeds", [0]), seconds)


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(2)
