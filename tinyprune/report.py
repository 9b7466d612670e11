"""Sparsity report: how much of a model is pruned, in what structure, and what it saves.

For every Linear / Conv2d layer and in total (the columns of :func:`format_report`, explained in
:data:`COLUMNS`):

* ``params`` (weight + bias) and ``nonzero`` (weight + bias); ``weight_sparsity`` =
  ``1 - nonzero(W) / size(W)`` (the weights alone, what pruning targets) and ``sparsity`` =
  ``1 - nonzero(W, b) / size(W, b)`` (biases included);
* structure of the weight's zeros: fraction of all-zero output ``channels`` (filters / neurons, the
  rows of ``W``), all-zero ``input_channels`` (columns), all-zero ``kernels`` (conv only: KHxKW
  kernels of one (out, in) pair);
* ``nm_compliance``: fraction of the weight's N:M groups (M consecutive weights along the input
  dimension) with at least ``n_pruned`` zeros, for the pattern asked for (the one the model was
  pruned with, when the caller knows it; else 2:4);
* ``dense_bytes`` (every parameter stored) vs ``csr_bytes``: the weight in CSR (compressed sparse
  row) format, with the weight viewed as a ``(out, in*KH*KW)`` matrix, values in the parameter's
  dtype and 32-bit column indices and row pointers (``nnz*(itemsize + 4) + (rows + 1)*4``), plus the
  bias stored densely;
* multiply-accumulates per sample. A weight is used once per output position (``H_out*W_out`` times
  in a conv, once in a Linear layer): ``macs_dense = size(W) * H_out * W_out``;
  ``macs_remaining = nonzero(W) * H_out * W_out`` counts the nonzero weights;
  ``macs_effective`` counts only the nonzero weights that read a *live* input. An input channel
  (or feature) is dead when the unit producing it always outputs exactly zero: all its weights
  that read live inputs are zero and its bias is zero. ReLU, max-pooling and dropout keep a zero
  channel zero, and Flatten spreads a channel over its ``H*W`` features, so a pruned output
  channel of conv1 kills an input channel of conv2, and a pruned conv2 filter kills ``H*W``
  inputs of fc1. ``macs_effective`` is what a thinned model
  (:func:`tinyprune.prune.thinning.thin_model`) with sparse kernels would compute.
"""

from __future__ import annotations

import json

import numpy as np

from .nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from .nn.model import Sequential
from .prune.nm import check_nm, nm_group_view

COLUMNS = """\
columns (per Linear/Conv2d layer; 'total' sums the layers):
  params     parameters of the layer, weight + bias
  nonzero    nonzero parameters, weight + bias
  w-sparse   weight sparsity: 1 - nonzero(W) / size(W) (weights only, what pruning targets)
  sparse     sparsity with biases: 1 - nonzero(W, b) / size(W, b)
  0-chan     fraction of output channels / neurons whose weights are all zero (rows of W)
  0-in       fraction of input channels / features whose weights are all zero (columns of W)
  0-kern     conv only: fraction of KHxKW kernels (one per output/input pair) that are all zero
  N:M ok     fraction of groups of M consecutive weights (along the input) with >= N zeros,
             for the N:M pattern named below the table (N = weights pruned per group)
  dense kB   all parameters stored densely, 1 kB = 1000 bytes
  CSR kB     weight in CSR format (values + 32-bit column indices + 32-bit row pointers)
             plus the dense bias
  MACs       multiply-accumulates per sample of the dense layer (weights x output positions)
  MACs left  effective MACs: nonzero weights that read a live input, x output positions; an
             input is dead when the unit producing it always outputs 0 (a pruned channel of
             conv1 kills an input channel of conv2; through Flatten, H*W features of fc1)"""
"""The report's column legend (printed by ``tinyprune report --help``)."""


def _zero_fraction(nonzero_per_set: np.ndarray) -> float:
    return float(np.mean(nonzero_per_set == 0)) if nonzero_per_set.size else 0.0


def layer_report(layer, in_shape, *, n_pruned=2, m=4, live_in=None) -> dict:
    """Statistics of one Linear/Conv2d layer (see the module docstring for the definitions).

    Parameters
    ----------
    layer : Linear or Conv2d
    in_shape : tuple of int
        Shape of one input sample.
    n_pruned, m : int
        The N:M pattern whose compliance is measured.
    live_in : ndarray of bool, shape ``(in_features,)`` / ``(C_in,)``, optional
        Which inputs can be nonzero (default: all); used for ``macs_effective``.

    Returns
    -------
    dict
        The layer's statistics; ``live_out`` (a list of bools, one per output unit) says which
        outputs can be nonzero.
    """
    w = layer.params["weight"]
    b = layer.params.get("bias")
    nz = w != 0  # (out, in[, KH, KW])
    rows = nz.reshape(w.shape[0], -1)  # (out, in*KH*KW)
    per_in = nz.reshape(w.shape[0], w.shape[1], -1).any(axis=2)  # (out, in)
    live_in = np.ones(w.shape[1], dtype=bool) if live_in is None else live_in
    nnz_w = int(nz.sum())
    nnz_w_live = int(nz.reshape(w.shape[0], w.shape[1], -1)[:, live_in].sum())
    nnz_b = 0 if b is None else int(np.count_nonzero(b))
    live_out = per_in[:, live_in].any(axis=1)  # (out,) a live weight reads a live input
    if b is not None:
        live_out |= b != 0  # a constant nonzero output is not dead
    n_params = w.size + (0 if b is None else b.size)
    itemsize = w.dtype.itemsize
    out_positions = 1
    if isinstance(layer, Conv2d):
        _, h_out, w_out = layer.output_shape(in_shape)
        out_positions = h_out * w_out
    groups = nm_group_view(w == 0, m, fill=True)  # (out, n_groups, m); padding counts as pruned
    return {
        "type": type(layer).__name__,
        "shape": list(w.shape),
        "params": int(n_params),
        "nonzero": nnz_w + nnz_b,
        "weight_params": int(w.size),
        "nonzero_weights": nnz_w,
        "weight_sparsity": 1.0 - nnz_w / w.size,
        "sparsity": 1.0 - (nnz_w + nnz_b) / n_params,
        "zero_channels": _zero_fraction(rows.sum(axis=1)),
        "zero_input_channels": _zero_fraction(per_in.sum(axis=0)),
        "zero_kernels": _zero_fraction(per_in) if w.ndim == 4 else None,
        "nm_pattern": f"{n_pruned}:{m} (n_pruned:m)",
        "nm_compliance": float(np.mean(groups.sum(axis=-1) >= n_pruned)) if groups.size else 1.0,
        "dense_bytes": int(n_params * itemsize),
        "csr_bytes": int(nnz_w * (itemsize + 4) + (w.shape[0] + 1) * 4
                         + (0 if b is None else b.size * itemsize)),
        "macs_dense": int(w.size * out_positions),
        "macs_remaining": int(nnz_w * out_positions),
        "macs_effective": int(nnz_w_live * out_positions),
        "live_out": live_out.tolist(),
    }


def sparsity_report(model: Sequential, *, n_pruned=2, m=4) -> dict:
    """Per-layer and total sparsity statistics of ``model``.

    Parameters
    ----------
    model : Sequential
        Needs ``input_shape`` (for conv output sizes and MACs).
    n_pruned, m : int
        The N:M pattern whose compliance is measured (default 2:4, i.e. 50%): pass the pattern
        the model was pruned with (the CLI reads it from the checkpoint).

    Returns
    -------
    dict
        ``{"model": name, "nm_pattern": {"n_pruned", "m"}, "layers": {name: {...}},
        "total": {...}}``, JSON-serialisable. ``total`` holds the summed counts, the
        ``weight_sparsity`` and ``sparsity`` (with biases) of the weighted layers together,
        ``compression`` (dense / CSR bytes), ``mac_reduction`` (dense / effective MACs, ``None``
        when no MAC is left) and ``mac_reduction_nonzero`` (dense / nonzero-weight MACs).
    """
    n_pruned, m = check_nm(n_pruned, m)
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    layers = {}
    live = None  # which channels / features of the current activation can be nonzero
    for ln, in_shape, _ in model.layer_shapes():
        layer = model.layers[ln]
        if isinstance(layer, (Linear, Conv2d)):
            r = layer_report(layer, in_shape, n_pruned=n_pruned, m=m, live_in=live)
            live = np.array(r.pop("live_out"), dtype=bool)
            layers[ln] = r
        elif isinstance(layer, Flatten):
            if live is not None:  # channel c becomes features c*H*W ... (c+1)*H*W - 1
                live = np.repeat(live, int(np.prod(in_shape[1:], dtype=np.int64)))
        elif not isinstance(layer, (ReLU, MaxPool2d, Dropout)):
            live = None  # an unknown layer may mix channels: assume every output is live
    keys = ("params", "nonzero", "weight_params", "nonzero_weights", "dense_bytes", "csr_bytes",
            "macs_dense", "macs_remaining", "macs_effective")
    total = {k: int(sum(r[k] for r in layers.values())) for k in keys}
    total["weight_sparsity"] = (1.0 - total["nonzero_weights"] / total["weight_params"]
                                if total["weight_params"] else 0.0)
    total["sparsity"] = 1.0 - total["nonzero"] / total["params"] if total["params"] else 0.0
    total["compression"] = total["dense_bytes"] / total["csr_bytes"] if total["csr_bytes"] else 0.0
    total["mac_reduction"] = (total["macs_dense"] / total["macs_effective"]
                              if total["macs_effective"] else None)
    total["mac_reduction_nonzero"] = (total["macs_dense"] / total["macs_remaining"]
                                      if total["macs_remaining"] else None)
    return {"model": model.name, "nm_pattern": {"n_pruned": n_pruned, "m": m},
            "layers": layers, "total": total}


def _reduction(value) -> str:
    return "all MACs removed" if value is None else f"{value:.2f}x"


def format_report(report: dict) -> str:
    """Plain-text table of :func:`sparsity_report` output (columns: :data:`COLUMNS`)."""
    head = (f"{'layer':<8} {'params':>10} {'nonzero':>10} {'w-sparse':>8} {'sparse':>7} "
            f"{'0-chan':>7} {'0-in':>6} {'0-kern':>7} {'N:M ok':>7} {'dense kB':>9} "
            f"{'CSR kB':>8} {'MACs':>11} {'MACs left':>11}")
    lines = [head, "-" * len(head)]
    for ln, r in report["layers"].items():
        kern = "-" if r["zero_kernels"] is None else f"{r['zero_kernels']:.1%}"
        lines.append(
            f"{ln:<8} {r['params']:>10,} {r['nonzero']:>10,} {r['weight_sparsity']:>8.1%} "
            f"{r['sparsity']:>7.1%} {r['zero_channels']:>7.1%} {r['zero_input_channels']:>6.1%} "
            f"{kern:>7} {r['nm_compliance']:>7.1%} {r['dense_bytes'] / 1e3:>9.1f} "
            f"{r['csr_bytes'] / 1e3:>8.1f} {r['macs_dense']:>11,} {r['macs_effective']:>11,}")
    t = report["total"]
    lines.append("-" * len(head))
    lines.append(
        f"{'total':<8} {t['params']:>10,} {t['nonzero']:>10,} {t['weight_sparsity']:>8.1%} "
        f"{t['sparsity']:>7.1%} {'':>7} {'':>6} {'':>7} {'':>7} {t['dense_bytes'] / 1e3:>9.1f} "
        f"{t['csr_bytes'] / 1e3:>8.1f} {t['macs_dense']:>11,} {t['macs_effective']:>11,}")
    nm = report.get("nm_pattern", {"n_pruned": 2, "m": 4})
    lines.append(f"CSR compression {t['compression']:.2f}x; MAC reduction "
                 f"{_reduction(t['mac_reduction'])} (dead inputs counted; nonzero weights alone: "
                 f"{_reduction(t['mac_reduction_nonzero'])}); N:M ok checks the "
                 f"{nm['n_pruned']}:{nm['m']} pattern ({nm['n_pruned']} of every {nm['m']} "
                 f"pruned)")
    return "\n".join(lines)


def report_json(report: dict) -> str:
    """:func:`sparsity_report` output as a JSON string."""
    return json.dumps(report, indent=2, sort_keys=False)


QUANT_COLUMNS = """\
weight formats (per Linear/Conv2d layer; every weight stored densely, pruned ones included;
tinyprune report --storage gives the sparse Deep Compression accounting):
  format     float32 (no transform); affine intB / uintB per-channel or per-tensor, 'asym'
             when asymmetric (fake quantization, Jacob et al. 2018); k-means codebook (weight
             sharing, Han et al. 2016)
  bits/w     bits per stored weight: the value width, the affine integer width, or the codebook
             index width ceil(log2 entries) (a pruned weight's 0 is an entry of its own when no
             centroid is 0)
  codebook   k-means: centroids k (float32 each); '-' otherwise
  weight B   the packed weights / indices, ceil(n * bits / 8)
  extra B    affine: float32 scale per channel (or one), plus the zero points (bits each)
             when asymmetric; k-means: the codebook entries, float32
  bias B     biases, float32 (the int32 biases of integer inference take the same 4 bytes)
  total B    weight + extra + bias; float32 B: the same parameters as float32"""
"""The legend of :func:`format_quantization_report` (printed by ``tinyprune report --help``)."""


def _format_of(layer, name):
    """``(format, bits, codebook_size, weight_bytes, extra_bytes)`` of one layer's weight."""
    from .common.bitpack import packed_nbytes
    from .quantize import FakeQuantize, WeightSharing
    from .size.codebook import bits_for

    w = layer.params["weight"]
    t = layer.transforms.get("weight")
    if isinstance(t, FakeQuantize):
        s, _ = t.qparams_of(w)  # the frozen grid, or the current weight's
        n_scales = int(np.size(s))
        fmt = (f"affine {'int' if t.signed else 'uint'}{t.bits} "
               f"{'per-channel' if t.per_channel else 'per-tensor'}"
               f"{'' if t.symmetric else ' asym'}")
        extra = 4 * n_scales + (0 if t.symmetric else packed_nbytes(n_scales, t.bits))
        return fmt, t.bits, None, packed_nbytes(w.size, t.bits), extra
    if isinstance(t, WeightSharing):
        codebook = t.codebook(w)  # (k,)
        entries = t.n_clusters + int(bool((t.indices < 0).any()) and not (codebook == 0).any())
        bits = bits_for(max(entries, 1))
        return "k-means codebook", bits, t.n_clusters, packed_nbytes(w.size, bits), 4 * entries
    if t is not None:  # another transform: the stored float weight
        fmt = f"{w.dtype.name} ({type(t).__name__})"
    else:
        fmt = w.dtype.name
    return fmt, 8 * w.dtype.itemsize, None, w.size * w.dtype.itemsize, 0


def quantization_report(model: Sequential) -> dict:
    """Weight format, bits per weight, codebook size and storage bytes of every Linear / Conv2d
    layer of a (possibly quantized or weight-shared) model, and the totals.

    Formats: a :class:`~tinyprune.quantize.FakeQuantize` weight (``prepare_qat``) is stored as
    ``bits``-bit integers plus a float32 scale per channel (per tensor) and, when asymmetric,
    a zero point per scale; a :class:`~tinyprune.quantize.WeightSharing` weight
    (``share_weights``) as a ``ceil(log2 entries)``-bit index per weight plus the float32
    codebook (Han et al. 2016, eq. 1); any other weight as its float dtype. Every weight is
    counted, pruned ones included (dense storage; see :mod:`tinyprune.size` for CSR).

    Parameters
    ----------
    model : Sequential

    Returns
    -------
    dict
        ``{"model", "layers": {name: {"format", "bits_per_weight", "codebook_size", "weights",
        "weight_bytes", "extra_bytes", "bias_bytes", "bytes", "float32_bytes"}}, "total":
        {"weights", "bytes", "float32_bytes", "compression", "bits_per_weight"}}``, where the
        total ``bits_per_weight`` is ``8 (weight + extra bytes) / weights``; JSON-serialisable.

    Examples
    --------
    >>> from tinyprune.nn import lenet_300_100
    >>> from tinyprune.quantize import prepare_qat
    >>> r = quantization_report(prepare_qat(lenet_300_100(), bits=8))
    >>> r["layers"]["fc1"]["format"], r["layers"]["fc1"]["bits_per_weight"]
    ('affine int8 per-channel', 8)
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    layers = {}
    for name, layer in model.layers.items():
        if not isinstance(layer, (Linear, Conv2d)):
            continue
        fmt, bits, k, w_bytes, extra = _format_of(layer, name)
        w = layer.params["weight"]
        b = layer.params.get("bias")
        n_bias = 0 if b is None else int(b.size)
        layers[name] = {"format": fmt, "bits_per_weight": int(bits), "codebook_size": k,
                        "weights": int(w.size), "weight_bytes": int(w_bytes),
                        "extra_bytes": int(extra), "bias_bytes": 4 * n_bias,
                        "bytes": int(w_bytes + extra + 4 * n_bias),
                        "float32_bytes": 4 * int(w.size + n_bias)}
    total = {k: int(sum(r[k] for r in layers.values()))
             for k in ("weights", "weight_bytes", "extra_bytes", "bias_bytes", "bytes",
                       "float32_bytes")}
    total["compression"] = total["float32_bytes"] / total["bytes"] if total["bytes"] else 0.0
    total["bits_per_weight"] = (8 * (total["weight_bytes"] + total["extra_bytes"])
                                / total["weights"] if total["weights"] else 0.0)
    return {"model": model.name, "layers": layers, "total": total}


def format_quantization_report(report: dict) -> str:
    """Plain-text table of :func:`quantization_report` output (columns: :data:`QUANT_COLUMNS`)."""
    head = (f"{'layer':<8} {'format':<26} {'bits/w':>6} {'codebook':>8} {'weight B':>10} "
            f"{'extra B':>8} {'bias B':>7} {'total B':>10} {'float32 B':>10}")
    lines = [head, "-" * len(head)]
    for ln, r in report["layers"].items():
        k = "-" if r["codebook_size"] is None else str(r["codebook_size"])
        lines.append(f"{ln:<8} {r['format']:<26} {r['bits_per_weight']:>6} {k:>8} "
                     f"{r['weight_bytes']:>10,} {r['extra_bytes']:>8,} {r['bias_bytes']:>7,} "
                     f"{r['bytes']:>10,} {r['float32_bytes']:>10,}")
    t = report["total"]
    lines.append("-" * len(head))
    lines.append(f"{'total':<8} {'':<26} {t['bits_per_weight']:>6.2f} {'':>8} "
                 f"{t['weight_bytes']:>10,} {t['extra_bytes']:>8,} {t['bias_bytes']:>7,} "
                 f"{t['bytes']:>10,} {t['float32_bytes']:>10,}")
    lines.append(f"weights stored densely: {t['float32_bytes']:,} B as float32 -> {t['bytes']:,} B "
                 f"({t['compression']:.2f}x), {t['bits_per_weight']:.2f} bits per weight with "
                 f"scales / codebooks")
    return "\n".join(lines)
