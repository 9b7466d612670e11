r"""Deep Compression end to end: train, prune, share weights, Huffman-code, read back, evaluate.

Han, Mao & Dally, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained
Quantization and Huffman Coding" (ICLR 2016), Fig. 1 -- the three stages, each retrained:

====================================  ===========================================================
paper                                 here (:func:`deep_compress`)
====================================  ===========================================================
train the dense network               :func:`tinyprune.nn.train.fit`, ``train_epochs``
pruning, retrain (Han et al. 2015)    :class:`tinyprune.prune.Iterative`, one per weight with
                                      its own sparsity (:func:`han_sparsities`, Table 2),
                                      magnitude criterion, masked fine-tuning
trained quantization (sec. 3)         :func:`tinyprune.quantize.share_weights` (k-means, linear
                                      init, conv 8 bits, fc 5 bits, one code kept for the filler
                                      zero) + centroid fine-tuning (``share_epochs``)
Huffman coding (sec. 4), the file     :func:`tinyprune.size.save_compressed` (relative CSR,
                                      codebooks, Huffman), :func:`tinyprune.size.load_compressed`
the storage table (Table 1)           :func:`tinyprune.size.model_storage_stages`
====================================  ===========================================================

The accuracy that counts is the one of the model *read back from the file* (it must equal the
fine-tuned shared model's: the file is exact). This module sits on top of the technique packages
(it is the only place that imports prune, quantize and size together).
"""

from __future__ import annotations

import numbers
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .nn.layers import Conv2d, Linear
from .nn.model import Sequential
from .nn.optim import SGD
from .nn.train import evaluate, fit
from .nn.transforms import bake_transforms
from .nn.validation import check_int
from .prune import Iterative
from .quantize import centroid_lr, share_weights
from .size import (
    best_index_bits,
    format_storage_stages,
    load_compressed,
    model_storage_stages,
    save_compressed,
)

__all__ = ["HAN_SPARSITY", "DeepCompressionResult", "deep_compress", "format_result",
           "han_sparsities"]

HAN_SPARSITY = {"first_conv": 0.34, "conv": 0.88, "fc": 0.92, "last_fc": 0.75}
"""Fraction of weights pruned per kind of layer, after Deep Compression's Table 2 (LeNet-300-100
kept 8% / 9% / 26% of fc1 / fc2 / fc3; LeNet-5 kept 66% / 12% / 8% / 19% of conv1 / conv2 /
fc1 / fc2): the first conv layer is the most sensitive and smallest, the big hidden fc layers
are the most redundant, the classifier sits in between."""

SHARE_BITS = (8, 5)
"""Bits per codebook index, conv then fc (Deep Compression, sec. 3 and Table 2)."""


def han_sparsities(model) -> dict[str, float]:
    """Per weight name, the sparsity of :data:`HAN_SPARSITY` for its kind of layer.

    The first Conv2d gets ``first_conv``, the other Conv2d ``conv``, the last Linear (the
    classifier) ``last_fc`` and the other Linear layers ``fc``.

    Examples
    --------
    >>> from tinyprune.nn import lenet5
    >>> han_sparsities(lenet5())
    {'conv1.weight': 0.34, 'conv2.weight': 0.88, 'fc1.weight': 0.92, 'fc2.weight': 0.75}
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    convs = [n for n, m in model.layers.items() if isinstance(m, Conv2d)]
    fcs = [n for n, m in model.layers.items() if isinstance(m, Linear)]
    out = {}
    for n, m in model.layers.items():
        if isinstance(m, Conv2d):
            kind = "first_conv" if n == convs[0] else "conv"
        elif isinstance(m, Linear):
            kind = "last_fc" if n == fcs[-1] else "fc"
        else:
            continue
        out[f"{n}.weight"] = HAN_SPARSITY[kind]
    return out


@dataclass
class DeepCompressionResult:
    """What :func:`deep_compress` measured.

    Attributes
    ----------
    model : Sequential
        The model read back from the compressed file.
    stored : Sequential
        The model that was written: the fine-tuned weight-shared model with its transforms baked
        (:func:`tinyprune.nn.transforms.bake_transforms`); ``model`` equals it bit for bit.
    path : str
        The compressed file.
    accuracy : dict
        Test accuracy after each stage: ``dense``, ``pruned`` (after masked fine-tuning),
        ``shared`` (k-means, before centroid fine-tuning), ``finetuned`` (after it; None without
        it) and ``file`` (the model read back from the file).
    storage : dict
        :func:`tinyprune.size.model_storage_stages` of the stored model, with the file's size.
    sparsity : dict
        Fraction of pruned weights per weight name (measured).
    index_bits, share_bits : dict
        Relative-index bits and codebook-index bits per weight name.
    codebook_sizes : dict
        Centroids per weight name.
    seconds : dict
        Wall-clock time of each stage (``train``, ``prune``, ``share``, ``compress``, ``total``).
    """

    model: Sequential
    stored: Sequential
    path: str
    accuracy: dict
    storage: dict
    sparsity: dict
    index_bits: dict
    share_bits: dict
    codebook_sizes: dict
    seconds: dict = field(default_factory=dict)

    @property
    def file_bytes(self) -> int:
        return self.storage["file"]["bytes"]

    @property
    def ratio(self) -> float:
        """Dense float32 bytes / the file's size on disk."""
        return self.storage["file"]["ratio"]

    def to_dict(self) -> dict:
        """JSON-serialisable summary (everything but the models)."""
        return {"path": self.path, "accuracy": self.accuracy, "file_bytes": self.file_bytes,
                "dense_bytes": self.storage["total"]["dense_bytes"], "ratio": self.ratio,
                "sparsity": self.sparsity, "index_bits": self.index_bits,
                "share_bits": self.share_bits, "codebook_sizes": self.codebook_sizes,
                "seconds": self.seconds, "storage": self.storage}


def format_result(result: DeepCompressionResult) -> str:
    """The accuracies stage by stage, then the storage table
    (:func:`tinyprune.size.format_storage_stages`)."""
    a = result.accuracy
    rows = [("dense", a["dense"]), ("pruned + fine-tuned", a["pruned"]),
            ("weight-shared (k-means)", a["shared"])]
    if a["finetuned"] is not None:
        rows.append(("centroids fine-tuned", a["finetuned"]))
    rows.append(("read back from the file", a["file"]))
    lines = ["test accuracy"] + [f"  {name:<26}{acc:.2%}" for name, acc in rows]
    sp = ", ".join(f"{n.removesuffix('.weight')} {s:.0%}" for n, s in result.sparsity.items())
    lines += [f"pruned: {sp}", ""]
    return "\n".join(lines) + format_storage_stages(result.storage)


def _check_data(data):
    for attr in ("x_train", "y_train", "x_test", "y_test"):
        if not isinstance(getattr(data, attr, None), np.ndarray):
            raise TypeError(f"data: expected a dataset with arrays x_train, y_train, x_test, "
                            f"y_test (tinyprune.datasets.load_dataset), got "
                            f"{type(data).__name__} without {attr!r}")


def _check_rate(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 \
            or not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def _per_layer_bits(model, bits, name) -> dict:
    """``bits`` (an int, a (conv, fc) pair or a dict by layer name) per weighted layer."""
    layers = {n: m for n, m in model.layers.items() if isinstance(m, (Linear, Conv2d))}
    if isinstance(bits, dict):
        return {n: bits[n] for n in layers if n in bits}
    if isinstance(bits, numbers.Integral) and not isinstance(bits, bool):
        return {n: int(bits) for n in layers}
    if isinstance(bits, tuple) and len(bits) == 2:
        return {n: int(bits[0] if isinstance(m, Conv2d) else bits[1]) for n, m in layers.items()}
    raise TypeError(f"{name}: expected an int, a (conv, fc) pair or a dict by layer name, got "
                    f"{bits!r}")


def _fit(model, data, epochs, lr, batch_size, seed, progress, callbacks=()):
    opt = SGD(model.params, lr=lr, momentum=0.9)
    fit(model, data.x_train, data.y_train, optimizer=opt, epochs=epochs, batch_size=batch_size,
        rng=seed, progress=progress, callbacks=list(callbacks))


def _acc(model, data) -> float:
    return float(evaluate(model, data.x_test, data.y_test)["accuracy"])


def deep_compress(model, data, path, *, train_epochs=0, sparsity=None, prune_rounds=3,
                  epochs_per_round=1, share_bits=SHARE_BITS, share_epochs=1, index_bits=None,
                  lr=0.05, prune_lr=None, share_lr=None, batch_size=64, seed=0, huffman=True,
                  metadata=None, progress=False) -> DeepCompressionResult:
    r"""Deep Compression's pipeline (see the module docstring), the file written to ``path``.

    1. (``train_epochs > 0``) train ``model`` dense: SGD with momentum 0.9 at ``lr``;
    2. prune every weight to its sparsity in ``prune_rounds`` rounds of magnitude pruning, each
       followed by ``epochs_per_round`` epochs of masked fine-tuning at ``prune_lr``
       (:class:`~tinyprune.prune.Iterative`: the same fraction of the remaining weights per round);
    3. share the weights by k-means (``share_bits``: conv 8, fc 5; pruned weights stay 0; one code
       kept for the filler zero, ``reserve_zero``), then ``share_epochs`` epochs of centroid
       fine-tuning at ``share_lr`` (a centroid's gradient sums its cluster's, so the default
       rate is :func:`tinyprune.quantize.centroid_lr`: 1 / the largest mean cluster size);
    4. write the compressed file (relative CSR with ``index_bits``, codebooks, Huffman coding),
       read it back and evaluate the model from the file.

    Parameters
    ----------
    model : Sequential
        The network (trained already, or with ``train_epochs``). Not modified.
    data : tinyprune.datasets.Dataset
        Any object with ``x_train``, ``y_train`` (training and fine-tuning) and ``x_test``,
        ``y_test`` (the accuracies reported) arrays.
    path : str or os.PathLike
        The compressed file to write (``.tpz``).
    train_epochs : int >= 0
    sparsity : dict[str, float], optional
        Fraction of each weight pruned (keys: weight names); default :func:`han_sparsities`.
        Weights not listed are not pruned.
    prune_rounds, epochs_per_round : int >= 1
    share_bits : int, (conv, fc) pair or dict[layer name, int]
        Bits per codebook index (``2^bits - 1`` centroids and the zero).
    share_epochs : int >= 0
    index_bits : None, "auto", int or dict[str, int]
        Bits per relative index: None for the paper's (conv 8, fc 5); ``"auto"`` for the width
        that makes each weight's part of the file smallest (:func:`tinyprune.size.best_index_bits`).
    lr, prune_lr, share_lr : float > 0
        Learning rates (``prune_lr`` default ``lr / 10``; ``share_lr`` default
        ``centroid_lr(shared)``).
    batch_size : int >= 1
    seed : int
        Seeds the data order of each stage and the k-means.
    huffman : bool
        Huffman-code the index streams (the third stage).
    metadata : dict, optional
        Stored in the file's header (with the accuracies).
    progress : bool
        Progress bars while training.

    Returns
    -------
    DeepCompressionResult

    Examples
    --------
    >>> from tinyprune.datasets import load_dataset
    >>> from tinyprune.nn import lenet_300_100
    >>> data = load_dataset("fashion-mnist-small")
    >>> r = deep_compress(lenet_300_100(seed=0), data, "/tmp/m.tpz", train_epochs=1,
    ...                   prune_rounds=1)  # doctest: +SKIP
    >>> print(format_result(r))  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    _check_data(data)
    if model.transforms:
        raise ValueError(f"model: already has weight transforms {sorted(model.transforms)}; "
                         f"give the float model")
    train_epochs = check_int(train_epochs, "train_epochs", minimum=0)
    prune_rounds = check_int(prune_rounds, "prune_rounds", minimum=1)
    epochs_per_round = check_int(epochs_per_round, "epochs_per_round", minimum=1)
    share_epochs = check_int(share_epochs, "share_epochs", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    lr = _check_rate(lr, "lr")
    prune_lr = lr / 10 if prune_lr is None else _check_rate(prune_lr, "prune_lr")
    share_lr = None if share_lr is None else _check_rate(share_lr, "share_lr")
    if sparsity is None:
        sparsity = han_sparsities(model)
    if not isinstance(sparsity, dict):
        raise TypeError(f"sparsity: expected a dict of weight name -> fraction, got "
                        f"{sparsity!r}")
    unknown = [n for n in sparsity if n not in model.params or model.params[n].ndim < 2]
    if unknown:
        raise ValueError(f"sparsity: {unknown} are not weights of the model; weights: "
                         f"{[n for n, w in model.params.items() if w.ndim >= 2]}")
    if not (index_bits is None or index_bits == "auto"
            or isinstance(index_bits, (dict, numbers.Integral))):
        raise TypeError(f"index_bits: expected None, 'auto', an int or a dict, got "
                        f"{index_bits!r}")
    bits = _per_layer_bits(model, share_bits, "share_bits")
    if os.path.isdir(os.fspath(path)):
        raise ValueError(f"path: {os.fspath(path)!r} is a directory")
    seconds = {}

    # 1. dense training
    t = time.perf_counter()
    m = model.copy()
    if train_epochs:
        _fit(m, data, train_epochs, lr, batch_size, seed, progress)
    acc = {"dense": _acc(m, data)}
    seconds["train"] = time.perf_counter() - t

    # 2. iterative pruning with masked fine-tuning, each weight to its own sparsity
    t = time.perf_counter()
    schedules = [Iterative(s, rounds=prune_rounds, epochs_per_round=epochs_per_round,
                           targets=[name], criterion="magnitude")
                 for name, s in sparsity.items() if s > 0]
    if schedules:
        _fit(m, data, prune_rounds * epochs_per_round, prune_lr, batch_size, seed + 1, progress,
             schedules)
    acc["pruned"] = _acc(m, data)
    measured = {n: float(1.0 - np.count_nonzero(m.params[n]) / m.params[n].size)
                for n in sparsity}
    seconds["prune"] = time.perf_counter() - t

    # 3. k-means weight sharing (a code kept for the filler zero), centroid fine-tuning
    t = time.perf_counter()
    shared = share_weights(m, bits, init="linear", rng=seed, reserve_zero=True)
    acc["shared"] = _acc(shared, data)
    acc["finetuned"] = None
    if share_lr is None:
        share_lr = centroid_lr(shared)
    if share_epochs:
        _fit(shared, data, share_epochs, share_lr, batch_size, seed + 2, progress)
        acc["finetuned"] = _acc(shared, data)
    books = {n: int(tr.n_clusters) for n, tr in shared.transforms.items()}
    seconds["share"] = time.perf_counter() - t

    # 4. the compressed file, read back and evaluated
    t = time.perf_counter()
    plain = bake_transforms(shared)
    weights = {n: w for n, w in plain.params.items() if w.ndim >= 2}
    if index_bits == "auto":
        chosen = {n: best_index_bits(w, huffman=huffman) for n, w in weights.items()}
    else:
        from .size.file import index_bits_for

        chosen = {n: index_bits_for(n, w, index_bits) for n, w in weights.items()}
    meta = dict(metadata or {})
    meta["deep_compression"] = {
        "train_epochs": train_epochs, "sparsity": {n: float(s) for n, s in sparsity.items()},
        "prune_rounds": prune_rounds, "epochs_per_round": epochs_per_round,
        "share_bits": bits, "share_epochs": share_epochs, "index_bits": chosen,
        "lr": lr, "prune_lr": prune_lr, "share_lr": share_lr, "batch_size": batch_size,
        "seed": seed, "accuracy": {k: v for k, v in acc.items() if v is not None}}
    info = save_compressed(path, plain, index_bits=chosen, huffman=huffman, metadata=meta)
    back = load_compressed(path)
    acc["file"] = _acc(back, data)
    storage = model_storage_stages(plain, chosen, file_bytes=info["file_bytes"],
                                   file_path=os.fspath(path))
    seconds["compress"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    return DeepCompressionResult(model=back, stored=plain, path=os.fspath(path), accuracy=acc,
                                 storage=storage, sparsity=measured, index_bits=chosen,
                                 share_bits={f"{n}.weight": b for n, b in bits.items()},
                                 codebook_sizes=books,
                                 seconds={k: round(v, 2) for k, v in seconds.items()})
