"""Shared plumbing of the experiment scripts: arguments, data, training, report and RESULTS.md.

Every script runs ``python experiments/<name>.py [--quick] [--json] [--seeds 0 1 2]``:

* ``--quick``: the embedded Fashion-MNIST subset (6,000 train / 1,000 test), one seed, few
  epochs; under a minute; what CI runs (it checks the keys, not ``met``);
* otherwise the full Fashion-MNIST (``load_dataset("fashion-mnist")``), several seeds; the row of
  the experiment in ``experiments/RESULTS.md`` is written (or replaced).

Choices (thresholds, early stopping) are made on a validation split carved from the training data
(10%, fixed seed); the test set is only reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run against the checkout the script lives in

import numpy as np  # noqa: E402

from tinyprune.datasets import load_dataset, train_val_split  # noqa: E402
from tinyprune.nn.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from tinyprune.nn.optim import SGD  # noqa: E402
from tinyprune.nn.train import evaluate, fit  # noqa: E402

RESULTS = HERE / "RESULTS.md"
CACHE = HERE / ".cache"
VAL_FRACTION, SPLIT_SEED = 0.1, 0
LR, BATCH = 0.05, 128  # SGD with momentum 0.9; retraining uses LR / 10


def parse_args(doc: str, extra=None) -> argparse.Namespace:
    """The common options; ``extra(parser)`` may add a script's own."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="embedded subset, one seed, few epochs (< 1 minute)")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds (default: 0 with --quick, 0 1 2 otherwise)")
    p.add_argument("--no-write", action="store_true",
                   help="do not write the row of experiments/RESULTS.md")
    if extra is not None:
        extra(p)
    args = p.parse_args()
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    args.t_start = time.perf_counter()
    return args


def load(quick: bool):
    """``(x_train, y_train, x_val, y_val, x_test, y_test)``: 10% of the training data (fixed
    seed, stratified) is the validation split."""
    ds = load_dataset("fashion-mnist-small" if quick else "fashion-mnist")
    x_tr, y_tr, x_val, y_val = train_val_split(ds.x_train, ds.y_train, VAL_FRACTION,
                                               seed=SPLIT_SEED)
    return x_tr, y_tr, x_val, y_val, ds.x_test, ds.y_test


def train(model, x, y, *, epochs, lr, seed, callbacks=(), batch_size=BATCH):
    """SGD (momentum 0.9) for ``epochs`` at a constant ``lr``; data order from ``seed``."""
    opt = SGD(model.params, lr=lr, momentum=0.9)
    return fit(model, x, y, optimizer=opt, epochs=epochs, batch_size=batch_size, rng=seed,
               callbacks=list(callbacks), progress=False)


def accuracy(model, x, y) -> float:
    return float(evaluate(model, x, y)["accuracy"])


def trained(build, seed, epochs, data, quick, tag, lr=LR):
    """``build(seed)`` trained ``epochs`` at ``lr`` on ``data``'s training part (data order from
    ``seed``); full runs cache the result in ``experiments/.cache`` (shared by the scripts)."""
    path = CACHE / f"{tag}-seed{seed}-ep{epochs}-lr{lr}.npz"
    if not quick and path.exists():
        return load_checkpoint(path).model
    model = build(seed=seed)
    train(model, data[0], data[1], epochs=epochs, lr=lr, seed=seed)
    if not quick:
        CACHE.mkdir(exist_ok=True)
        save_checkpoint(path, model)
    return model


def stats(values) -> dict:
    """``{"mean", "std", "values"}`` (sample std; 0 for one value), rounded to 4 digits."""
    values = [float(v) for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "std": round(std, 4),
            "values": [round(v, 4) for v in values]}


def pm(s: dict) -> str:
    return f"{s['mean']:.4f} ± {s['std']:.4f}"


def finish(args, name, claim, target, measured, met, summary, sections=None):
    """Print the JSON object (and a readable line); full runs write the RESULTS.md row and the
    ``sections`` (``{title: markdown}``, each its own ``## title`` section, see
    :func:`write_section`); ``--quick`` runs print the sections' markdown on stderr instead."""
    out = {"experiment": name, "claim": claim, "target": target, "measured": measured,
           "met": bool(met), "quick": bool(args.quick), "seeds": list(args.seeds),
           "seconds": round(time.perf_counter() - args.t_start, 1)}
    if not args.json:
        print(f"{name}: {'MET' if met else 'NOT MET'} -- {summary}", file=sys.stderr)
        for title, markdown in (sections or {}).items():
            print(f"\n## {title}\n\n{markdown.strip()}\n", file=sys.stderr)
    print(json.dumps(out, indent=None if args.json else 2, default=float))
    if not args.quick and not args.no_write:
        write_row(name, claim, target, summary, met, args.seeds, out["seconds"])
        for title, markdown in (sections or {}).items():
            write_section(title, markdown)
    return out


HEADER = """# Experiment results

Full runs of `experiments/<name>.py` on the full Fashion-MNIST (60,000 / 10,000; 10% of the
training set held out for validation). Each row is written by the script itself; the figures are
test accuracies, mean ± std over the listed seeds. Re-run one with `python experiments/<name>.py`.

| experiment | claim | target | measured | met | seeds | time | date |
|---|---|---|---|---|---|---|---|
"""


def _split(text):
    """``(head, sections)``: the text before the first ``## `` heading (the title and the table
    of rows) and the rest."""
    m = re.search(r"^## ", text, re.M)
    return (text, "") if m is None else (text[:m.start()], text[m.start():])


def write_row(name, claim, target, summary, met, seeds, seconds, path=None):
    """Create or replace the row of ``name`` in the table of RESULTS.md (``path``); the table
    stays above the sections (:func:`write_section`)."""
    path = RESULTS if path is None else Path(path)
    text = path.read_text() if path.exists() else HEADER
    head, rest = _split(text)
    cells = [f"`{name}`", claim, target, summary, "yes" if met else "**no**",
             " ".join(map(str, seeds)), f"{seconds / 60:.1f} min",
             datetime.date.today().isoformat()]
    row = "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |"
    pattern = re.compile(rf"^\| `{re.escape(name)}` \|.*$", re.M)
    head = (pattern.sub(lambda _: row, head) if pattern.search(head) else
            head.rstrip("\n") + "\n" + row).rstrip("\n") + "\n"
    path.write_text(head + ("\n" + rest if rest else ""))


def write_section(title, markdown, path=None):
    """Create or replace the section ``## title`` of RESULTS.md (``path``): everything from its
    heading to the next ``## `` heading (or the end) becomes ``markdown``; new sections go at the
    end, after the table of rows. Idempotent: writing the same section twice changes nothing."""
    path = RESULTS if path is None else Path(path)
    if "\n" in title or not title.strip():
        raise ValueError(f"title: expected one non-empty line, got {title!r}")
    text = path.read_text() if path.exists() else HEADER
    block = f"## {title}\n\n{markdown.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def weight_names(model):
    return [k for k, v in model.params.items() if k.endswith(".weight") and v.ndim >= 2]


def kept_fraction(model, names) -> float:
    total = sum(model.params[k].size for k in names)
    kept = sum(int(np.count_nonzero(model.masks[k])) if k in model.masks
               else model.params[k].size for k in names)
    return kept / total
