"""Sparsity report: how much of a model is pruned, in what structure, and what it saves.

For every Linear / Conv2d layer (weight and bias together) and in total:

* ``params``, ``nonzero`` and fine-grained ``sparsity = 1 - nonzero / params``;
* structure of the weight's zeros: fraction of all-zero output ``channels`` (filters / neurons, the
  rows of ``W``), all-zero ``input_channels`` (columns), all-zero ``kernels`` (conv only: KHxKW
  kernels of one (out, in) pair);
* ``nm_compliance``: fraction of the weight's N:M groups (M consecutive weights along the input
  dimension) with at least ``n_pruned`` zeros, for the pattern asked for (default 2:4);
* ``dense_bytes`` (every parameter stored) vs ``csr_bytes``: the weight in CSR (compressed sparse
  row) format, with the weight viewed as a ``(out, in*KH*KW)`` matrix, values in the parameter's
  dtype and 32-bit column indices and row pointers (``nnz*(itemsize + 4) + (rows + 1)*4``), plus the
  bias stored densely;
* ``macs_dense`` vs ``macs_remaining`` per sample: a weight is used once per output position
  (``H_out*W_out`` times in a conv, once in a Linear layer), so the remaining multiply-accumulates
  are ``nonzero(W) * H_out * W_out``.
"""

from __future__ import annotations

import json

import numpy as np

from .nn.layers import Conv2d, Linear
from .nn.model import Sequential
from .prune.nm import check_nm, nm_group_view


def _zero_fraction(nonzero_per_set: np.ndarray) -> float:
    return float(np.mean(nonzero_per_set == 0)) if nonzero_per_set.size else 0.0


def layer_report(layer, in_shape, *, n_pruned=2, m=4) -> dict:
    """Statistics of one Linear/Conv2d layer (see the module docstring for the definitions)."""
    w = layer.params["weight"]
    b = layer.params.get("bias")
    nz = w != 0  # (out, in[, KH, KW])
    rows = nz.reshape(w.shape[0], -1)  # (out, in*KH*KW)
    per_in = nz.reshape(w.shape[0], w.shape[1], -1).any(axis=2)  # (out, in)
    nnz_w = int(nz.sum())
    nnz_b = 0 if b is None else int(np.count_nonzero(b))
    n_params = w.size + (0 if b is None else b.size)
    itemsize = w.dtype.itemsize
    out_positions = 1
    if isinstance(layer, Conv2d):
        _, h_out, w_out = layer.output_shape(in_shape)
        out_positions = h_out * w_out
    groups = nm_group_view(w == 0, m, fill=True)  # (out, n_groups, m); padding counts as pruned
    report = {
        "type": type(layer).__name__,
        "shape": list(w.shape),
        "params": int(n_params),
        "nonzero": nnz_w + nnz_b,
        "sparsity": 1.0 - (nnz_w + nnz_b) / n_params,
        "weight_sparsity": 1.0 - nnz_w / w.size,
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
    }
    return report


def sparsity_report(model: Sequential, *, n_pruned=2, m=4) -> dict:
    """Per-layer and total sparsity statistics of ``model``.

    Parameters
    ----------
    model : Sequential
        Needs ``input_shape`` (for conv output sizes and MACs).
    n_pruned, m : int
        The N:M pattern whose compliance is measured (default 2:4, i.e. 50%).

    Returns
    -------
    dict
        ``{"model": name, "layers": {name: {...}}, "total": {...}}``, JSON-serialisable.
    """
    n_pruned, m = check_nm(n_pruned, m)
    layers = {}
    for ln, in_shape, _ in model.layer_shapes():
        layer = model.layers[ln]
        if isinstance(layer, (Linear, Conv2d)):
            layers[ln] = layer_report(layer, in_shape, n_pruned=n_pruned, m=m)
    keys = ("params", "nonzero", "dense_bytes", "csr_bytes", "macs_dense", "macs_remaining")
    total = {k: int(sum(r[k] for r in layers.values())) for k in keys}
    total["sparsity"] = 1.0 - total["nonzero"] / total["params"] if total["params"] else 0.0
    total["compression"] = total["dense_bytes"] / total["csr_bytes"] if total["csr_bytes"] else 0.0
    total["mac_reduction"] = (total["macs_dense"] / total["macs_remaining"]
                              if total["macs_remaining"] else float("inf"))
    return {"model": model.name, "layers": layers, "total": total}


def format_report(report: dict) -> str:
    """Plain-text table of :func:`sparsity_report` output."""
    head = (f"{'layer':<8} {'params':>10} {'nonzero':>10} {'sparsity':>8} {'0-chan':>7} "
            f"{'0-in':>6} {'0-kern':>7} {'N:M ok':>7} {'dense kB':>9} {'CSR kB':>8} "
            f"{'MACs':>11} {'MACs left':>11}")
    lines = [head, "-" * len(head)]
    for ln, r in report["layers"].items():
        kern = "-" if r["zero_kernels"] is None else f"{r['zero_kernels']:.1%}"
        lines.append(
            f"{ln:<8} {r['params']:>10,} {r['nonzero']:>10,} {r['sparsity']:>8.1%} "
            f"{r['zero_channels']:>7.1%} {r['zero_input_channels']:>6.1%} {kern:>7} "
            f"{r['nm_compliance']:>7.1%} {r['dense_bytes'] / 1e3:>9.1f} {r['csr_bytes'] / 1e3:>8.1f} "
            f"{r['macs_dense']:>11,} {r['macs_remaining']:>11,}")
    t = report["total"]
    lines.append("-" * len(head))
    lines.append(
        f"{'total':<8} {t['params']:>10,} {t['nonzero']:>10,} {t['sparsity']:>8.1%} "
        f"{'':>7} {'':>6} {'':>7} {'':>7} {t['dense_bytes'] / 1e3:>9.1f} "
        f"{t['csr_bytes'] / 1e3:>8.1f} {t['macs_dense']:>11,} {t['macs_remaining']:>11,}")
    pattern = next(iter(report["layers"].values()))["nm_pattern"] if report["layers"] else "2:4"
    lines.append(f"CSR compression {t['compression']:.2f}x, MAC reduction "
                 f"{t['mac_reduction']:.2f}x; N:M column checks the {pattern} pattern")
    return "\n".join(lines)


def report_json(report: dict) -> str:
    """:func:`sparsity_report` output as a JSON string."""
    return json.dumps(report, indent=2, sort_keys=False)
