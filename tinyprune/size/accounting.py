r"""Stage-by-stage storage of one weight: Deep Compression's pipeline, in exact bytes.

Han, Mao & Dally, "Deep Compression" (ICLR 2016), Fig. 1 and Table 1: a weight goes through

1. **dense** float32: ``4 * n`` bytes (the baseline, 32 bits per weight as in the paper);
2. **pruned, CSR** (:mod:`tinyprune.size.csr`): float32 values of the stored entries (filler zeros
   included) + ``b``-bit relative indices + row pointers;
3. **+ shared weights** (:mod:`tinyprune.size.codebook`): the float values replaced by a codebook
   (``k`` float32 centroids) and a ``ceil(log2 k)``-bit index per stored entry (the filler zero
   takes a codebook entry of its own when the centroids do not contain 0);
4. **+ Huffman** (:mod:`tinyprune.size.huffman`): the codebook-index stream and the
   relative-index stream Huffman-coded, each with its code table;

plus the entropy bound of both streams (:mod:`tinyprune.size.entropy`) beside the Huffman figure.
Every number is the exact size of a stream as :mod:`tinyprune.size` writes it, each stream
rounded up to whole bytes on its own; headers (shapes, counts) are not included.
:func:`model_storage_stages` applies it to every weight of a model (biases stay float32 at every
stage) and adds up the totals; with weight sharing, its ``huffman`` total is the payload of the
``.tpz`` file of :mod:`tinyprune.size.file`, which adds only its header.
"""

from __future__ import annotations

import numpy as np

from tinyprune.common.bitpack import packed_nbytes

from .codebook import bits_for, codebook_encode
from .csr import check_index_bits, csr_encode
from .entropy import entropy_bits
from .file import index_bits_for
from .huffman import HuffmanCode

__all__ = ["model_storage_stages", "storage_stages"]

_FLOAT_BITS = 32  # the paper's baseline and the stored value width of the accounting
_MAX_SHARED_BITS = 16  # beyond 2**16 distinct values the weight is not considered shared


def _huffman_nbytes(symbols):
    code = HuffmanCode.from_frequencies(np.bincount(symbols) if symbols.size
                                        else np.zeros(0, np.int64))
    payload = packed_nbytes(code.encoded_bits(symbols), 1)
    return payload, code.table_nbytes


def storage_stages(w, index_bits, *, weight_bits=None) -> dict:
    """Exact bytes of ``w`` at every stage of Deep Compression (see the module docstring).

    Parameters
    ----------
    w : ndarray, float32/float64, ``(out, in)``, ``(C_out, C_in, KH, KW)`` or ``(n,)``, finite
        A weight, possibly pruned (zeros are not stored) and possibly weight-shared (its
        nonzeros take few distinct values). Not modified.
    index_bits : int
        Bits per relative index, ``1..16`` (paper: 8 for conv, 5 for fc).
    weight_bits : int, optional
        Bits per codebook index; default the fewest that hold the codebook.

    Returns
    -------
    dict
        ``n_weights``, ``nonzeros``, ``n_stored`` (nonzeros + fillers), ``fillers``,
        ``index_bits``, ``codebook_size``, ``weight_bits``; ``dense_bytes``;
        ``csr``, ``shared``, ``huffman``: dicts of per-stream bytes with ``total_bytes``
        (``shared`` and ``huffman`` are ``None`` when the stored values take more than ``2**16``
        distinct values, i.e. the weight is not shared); ``entropy``: bits per symbol and the
        bound in bytes (``n * H / 8``) for both streams; ``ratio``: ``dense_bytes / total_bytes``
        per stage.

    Raises
    ------
    ValueError
        ``weight_bits`` too small for the distinct stored values, bad ``index_bits``, or
        non-finite weights.
    """
    csr = csr_encode(w, index_bits)
    b = check_index_bits(index_bits)
    n = int(w.size)
    n_stored = csr.n_stored
    row_ptr = csr.row_ptr_nbytes
    index = csr.index_nbytes
    result = {
        "shape": tuple(int(s) for s in w.shape),
        "n_weights": n,
        "nonzeros": int(np.count_nonzero(w)),
        "n_stored": n_stored,
        "fillers": csr.n_fillers,
        "index_bits": b,
        "dense_bytes": n * _FLOAT_BITS // 8,
    }
    csr_values = packed_nbytes(n_stored, _FLOAT_BITS)
    result["csr"] = {"values_bytes": csr_values, "index_bytes": index, "row_ptr_bytes": row_ptr,
                     "total_bytes": csr_values + index + row_ptr}
    stored = csr.values + 0.0  # -0.0 -> +0.0: the stored zeros are fillers, one codebook entry
    k = int(np.unique(stored).size)
    rel = csr.rel.astype(np.intp)
    rel_h = entropy_bits(rel)
    result["entropy"] = {"index_bits_per_symbol": rel_h,
                         "index_bound_bytes": n_stored * rel_h / 8}
    if weight_bits is None and k > 1 << _MAX_SHARED_BITS:
        result.update(codebook_size=None, weight_bits=None, shared=None, huffman=None)
    else:
        book = codebook_encode(stored, weight_bits if weight_bits is not None else bits_for(max(k, 1)))
        codebook = packed_nbytes(book.codebook.size, _FLOAT_BITS)
        widx = book.index_nbytes
        result.update(codebook_size=int(book.codebook.size), weight_bits=book.bits)
        result["shared"] = {"codebook_bytes": codebook, "weight_index_bytes": widx,
                            "index_bytes": index, "row_ptr_bytes": row_ptr,
                            "total_bytes": codebook + widx + index + row_ptr}
        symbols = book.indices.astype(np.intp)
        w_payload, w_table = _huffman_nbytes(symbols)
        r_payload, r_table = _huffman_nbytes(rel)
        result["huffman"] = {"codebook_bytes": codebook, "weight_index_bytes": w_payload,
                             "weight_table_bytes": w_table, "index_bytes": r_payload,
                             "index_table_bytes": r_table, "row_ptr_bytes": row_ptr,
                             "total_bytes": codebook + w_payload + w_table + r_payload
                             + r_table + row_ptr}
        w_h = entropy_bits(symbols)
        result["entropy"].update(weight_index_bits_per_symbol=w_h,
                                 weight_index_bound_bytes=n_stored * w_h / 8)
    result["ratio"] = {stage: (result["dense_bytes"] / result[stage]["total_bytes"]
                               if result[stage] and result[stage]["total_bytes"] else None)
                       for stage in ("csr", "shared", "huffman")}
    return result


_STAGES = ("csr", "shared", "huffman")


def model_storage_stages(model, index_bits=None) -> dict:
    """:func:`storage_stages` for every weight of a model, and the totals.

    Parameters
    ----------
    model : tinyprune.nn.model.Sequential
        Every parameter with 2 or more dimensions is a weight; the others (biases) are counted
        as dense float32 at every stage.
    index_bits : int or dict[str, int], optional
        As in :func:`tinyprune.size.file.save_compressed`: default 8 for conv, 5 for fc weights.

    Returns
    -------
    dict
        ``layers``: parameter name -> :func:`storage_stages` result; ``other_bytes``: the biases;
        ``total``: ``dense_bytes`` and, per stage, ``total_bytes`` (``None`` when a weight is not
        shared) and the ``ratio`` to dense.
    """
    from tinyprune.nn.model import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    layers, other = {}, 0
    for name, w in model.params.items():
        if w.ndim >= 2:
            layers[name] = storage_stages(w, index_bits_for(name, w, index_bits))
        else:
            other += w.size * _FLOAT_BITS // 8
    total = {"dense_bytes": other + sum(r["dense_bytes"] for r in layers.values())}
    for stage in _STAGES:
        parts = [r[stage] for r in layers.values()]
        size = None if any(p is None for p in parts) else other + sum(p["total_bytes"]
                                                                       for p in parts)
        total[stage] = {"total_bytes": size}
    total["ratio"] = {s: (total["dense_bytes"] / total[s]["total_bytes"]
                          if total[s]["total_bytes"] else None) for s in _STAGES}
    return {"layers": layers, "other_bytes": other, "total": total}
