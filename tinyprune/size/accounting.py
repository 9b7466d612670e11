r"""Stage-by-stage storage of one weight: Deep Compression's pipeline, in exact bytes.

Han, Mao & Dally, "Deep Compression" (ICLR 2016), Fig. 1 and Table 1: a weight goes through

1. **dense** float32: ``4 * n`` bytes (the baseline, 32 bits per weight as in the paper);
2. **pruned, CSR** (:mod:`tinyprune.size.csr`): float32 values of the stored entries (filler zeros
   included) + ``b``-bit relative indices + row pointers;
3. **+ shared weights** (:mod:`tinyprune.size.codebook`): the float values replaced by a codebook
   (``k`` float32 centroids) and a ``ceil(log2 k)``-bit index per stored entry (the filler zero
   takes a codebook entry of its own when the centroids do not contain 0: reserve one centroid
   for it when sharing, ``share_weights(..., reserve_zero=True)``);
4. **+ Huffman** (:mod:`tinyprune.size.huffman`): the codebook-index stream and the
   relative-index stream Huffman-coded, each with its code table;

plus the entropy bound of both streams (:mod:`tinyprune.size.entropy`) beside the Huffman figure.
Every number is the exact size of a stream as :mod:`tinyprune.size` writes it, each stream
rounded up to whole bytes on its own; headers (shapes, counts) are not included.

The stages are honest for a weight that is *not* shared (its stored values take too many distinct
values for a codebook to pay, the rule of the file writer,
:func:`tinyprune.size.file.codebook_pays`): its ``shared`` stage does not apply
(``"applied": False``) and equals the CSR stage, and its ``huffman`` stage Huffman-codes only the
relative indices, the values staying float32 -- exactly what the file stores. So the ``huffman``
stage is always the payload of the ``.tpz`` file of :mod:`tinyprune.size.file`, which adds only
its header. :func:`model_storage_stages` applies it to every weight of a model (biases stay
float32 at every stage) and adds up the totals; :func:`format_storage_stages` prints the table;
:func:`best_index_bits` picks the relative-index width that makes a weight's file payload
smallest.
"""

from __future__ import annotations

import numpy as np

from tinyprune.common.bitpack import packed_nbytes
from tinyprune.nn.validation import check_int

from .codebook import bits_for, codebook_encode
from .csr import check_index_bits, csr_encode
from .entropy import entropy_bits
from .file import codebook_pays, index_bits_for
from .huffman import HuffmanCode

__all__ = ["STAGES", "STORAGE_COLUMNS", "best_index_bits", "format_storage_stages",
           "model_storage_stages", "storage_stages"]

_FLOAT_BITS = 32  # the paper's baseline and the stored value width of the accounting


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
        Bits per codebook index (the shared stage then always applies); default the fewest that
        hold the codebook, and the shared stage applies when the codebook pays
        (:func:`tinyprune.size.file.codebook_pays`).

    Returns
    -------
    dict
        ``n_weights``, ``nonzeros``, ``n_stored`` (nonzeros + fillers), ``fillers``,
        ``index_bits``, ``codebook_size``, ``weight_bits`` (both ``None`` when not shared);
        ``dense_bytes``; ``csr``, ``shared``, ``huffman``: dicts of per-stream bytes with
        ``total_bytes`` and ``applied`` (``shared["applied"]`` is False for a weight that is
        not shared: its bytes are then the CSR stage's); ``entropy``: bits per symbol and the
        bound in bytes (``n * H / 8``) of the index streams; ``entropy_bound_bytes``: the
        Huffman stage with each coded stream replaced by its bound; ``ratio``:
        ``dense_bytes / total_bytes`` per stage.

    Raises
    ------
    ValueError
        ``weight_bits`` too small for the distinct stored values, bad ``index_bits``, or
        non-finite weights.

    Examples
    --------
    >>> w = np.zeros((4, 64), np.float32); w[:, ::8] = 0.5; w[:, 4::8] = -0.5
    >>> r = storage_stages(w, 4)
    >>> r["dense_bytes"], r["csr"]["total_bytes"], r["shared"]["total_bytes"], r["weight_bits"]
    (1024, 293, 53, 1)
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
                     "total_bytes": csr_values + index + row_ptr, "applied": True}
    stored = csr.values + 0.0  # -0.0 -> +0.0: the stored zeros are fillers, one codebook entry
    rel = csr.rel.astype(np.intp)
    rel_h = entropy_bits(rel)
    r_payload, r_table = _huffman_nbytes(rel)
    result["entropy"] = {"index_bits_per_symbol": rel_h,
                         "index_bound_bytes": n_stored * rel_h / 8}
    if weight_bits is None and not codebook_pays(stored, _FLOAT_BITS // 8):
        # not shared: no codebook stage; Huffman codes the relative indices only (as the file)
        result.update(codebook_size=None, weight_bits=None)
        result["shared"] = {**result["csr"], "applied": False}
        result["huffman"] = {"values_bytes": csr_values, "index_bytes": r_payload,
                             "index_table_bytes": r_table, "row_ptr_bytes": row_ptr,
                             "total_bytes": csr_values + r_payload + r_table + row_ptr,
                             "applied": True}
        result["entropy_bound_bytes"] = (csr_values + row_ptr
                                         + result["entropy"]["index_bound_bytes"])
    else:
        k = int(np.unique(stored).size)
        book = codebook_encode(stored, weight_bits if weight_bits is not None else bits_for(max(k, 1)))
        codebook = packed_nbytes(book.codebook.size, _FLOAT_BITS)
        widx = book.index_nbytes
        result.update(codebook_size=int(book.codebook.size), weight_bits=book.bits)
        result["shared"] = {"codebook_bytes": codebook, "weight_index_bytes": widx,
                            "index_bytes": index, "row_ptr_bytes": row_ptr,
                            "total_bytes": codebook + widx + index + row_ptr, "applied": True}
        symbols = book.indices.astype(np.intp)
        w_payload, w_table = _huffman_nbytes(symbols)
        result["huffman"] = {"codebook_bytes": codebook, "weight_index_bytes": w_payload,
                             "weight_table_bytes": w_table, "index_bytes": r_payload,
                             "index_table_bytes": r_table, "row_ptr_bytes": row_ptr,
                             "total_bytes": codebook + w_payload + w_table + r_payload
                             + r_table + row_ptr, "applied": True}
        w_h = entropy_bits(symbols)
        result["entropy"].update(weight_index_bits_per_symbol=w_h,
                                 weight_index_bound_bytes=n_stored * w_h / 8)
        result["entropy_bound_bytes"] = (codebook + row_ptr
                                         + result["entropy"]["index_bound_bytes"]
                                         + result["entropy"]["weight_index_bound_bytes"])
    result["ratio"] = {stage: (result["dense_bytes"] / result[stage]["total_bytes"]
                               if result[stage]["total_bytes"] else None) for stage in STAGES}
    return result


STAGES = ("csr", "shared", "huffman")
"""The stages after dense float32, in order."""


def best_index_bits(w, candidates=range(1, 17), *, huffman=True) -> int:
    r"""The relative-index width that makes ``w``'s stored bytes smallest.

    Few bits make short indices but many filler zeros (a gap of :math:`g` zeros costs
    :math:`\lfloor g / 2^b \rfloor` fillers, each a stored value), many bits make long indices:
    the best ``b`` depends on the layer's sparsity and the spread of its gaps. The bytes compared
    are the ``huffman`` stage of :func:`storage_stages` (the weight's payload in the ``.tpz`` file)
    or, with ``huffman=False``, the ``shared`` stage (its bit-packed payload).

    Parameters
    ----------
    w : ndarray, float32/float64, finite
        A (pruned, possibly weight-shared) weight. Not modified.
    candidates : iterable of int in ``1..16``, non-empty
        The widths tried (default all).
    huffman : bool
        Whether the file Huffman-codes the index streams.

    Returns
    -------
    int
        The candidate with the fewest bytes; ties go to the smallest width.

    Examples
    --------
    >>> w = np.zeros((50, 400), np.float32); w[:, ::40] = 1.0; w[:, 7::40] = -1.0
    >>> best_index_bits(w, [2, 4, 6, 8])  # gaps of 6 and 32 zeros: 6 bits need no fillers
    6
    """
    try:
        cands = [check_index_bits(b, "candidates") for b in candidates]
    except TypeError:
        raise TypeError(f"candidates: expected an iterable of ints in 1..16, got "
                        f"{candidates!r}") from None
    if not cands:
        raise ValueError("candidates: expected at least one index width, got none")
    stage = "huffman" if huffman else "shared"
    sizes = {b: storage_stages(w, b)[stage]["total_bytes"] for b in sorted(set(cands))}
    return min(sizes, key=lambda b: (sizes[b], b))


def model_storage_stages(model, index_bits=None, *, file_bytes=None, file_path=None) -> dict:
    """:func:`storage_stages` for every weight of a model, and the totals.

    Parameters
    ----------
    model : tinyprune.nn.model.Sequential
        Every parameter with 2 or more dimensions is a weight; the others (biases) are counted
        as dense float32 at every stage.
    index_bits : int or dict[str, int], optional
        As in :func:`tinyprune.size.file.save_compressed`: default 8 for conv, 5 for fc weights.
    file_bytes : int, optional
        Size on disk of the model's compressed file, for the ratio that counts everything
        (header, architecture, code tables).
    file_path : str, optional
        Where that file is (shown by :func:`format_storage_stages`).

    Returns
    -------
    dict
        ``layers``: parameter name -> :func:`storage_stages` result; ``other_bytes``: the biases;
        ``total``: ``dense_bytes``, per stage ``{"total_bytes"}``, ``entropy_bound_bytes`` and
        the ``ratio`` to dense per stage; ``file``: ``{"path", "bytes", "ratio"}`` when
        ``file_bytes`` is given (``ratio`` = dense bytes / file bytes).
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
    for stage in STAGES:
        total[stage] = {"total_bytes": other + sum(r[stage]["total_bytes"]
                                                   for r in layers.values())}
    total["entropy_bound_bytes"] = other + sum(r["entropy_bound_bytes"] for r in layers.values())
    total["ratio"] = {s: total["dense_bytes"] / total[s]["total_bytes"] for s in STAGES}
    out = {"layers": layers, "other_bytes": other, "total": total}
    if file_bytes is not None:
        fb = check_int(file_bytes, "file_bytes", minimum=1)
        out["file"] = {"path": None if file_path is None else str(file_path), "bytes": fb,
                       "ratio": total["dense_bytes"] / fb}
    return out


STORAGE_COLUMNS = """\
columns (per weight; 'total' adds the biases, stored as float32 at every stage):
  nonzero    nonzero weights; stored = nonzero + filler zeros (a gap longer than 2^bits - 1)
  idx        bits per relative column index (conv 8, fc 5 by default: Deep Compression)
  k / wbits  codebook size and bits per codebook index ('-': the weight is not shared, its
             +shared column repeats CSR and +Huffman codes only the relative indices)
  dense      float32, every weight
  CSR        pruned: float32 values + relative indices + row pointers
  +shared    the values replaced by a codebook and wbits-bit indices
  +Huffman   the index streams Huffman-coded (code tables included): the file's payload
  entropy    the bound Huffman approaches: each coded stream at n*H/8 bytes
  ratio      dense / +Huffman
The file ratio divides the dense float32 bytes by the compressed file's size on disk (header,
code tables and architecture included)."""
"""The legend of :func:`format_storage_stages`' columns."""


def _kb(x) -> str:
    return f"{x / 1000:.1f}"


def format_storage_stages(st: dict) -> str:
    """The stage-by-stage table of :func:`model_storage_stages` (kB per weight and stage, the
    total, and the file line when the result has one); :data:`STORAGE_COLUMNS` explains it."""
    head = (f"{'weight':<16}{'nonzero':>10}{'stored':>10}{'idx':>4}{'k':>6}{'wbits':>6}"
            f"{'dense kB':>10}{'CSR kB':>9}{'+shared':>9}{'+Huffman':>9}{'entropy':>9}"
            f"{'ratio':>8}")
    lines = [head, "-" * len(head)]
    for name, r in st["layers"].items():
        shared = r["shared"]["applied"]
        lines.append(f"{name:<16}{r['nonzeros']:>10,}{r['n_stored']:>10,}{r['index_bits']:>4}"
                     f"{r['codebook_size'] if shared else '-':>6}"
                     f"{r['weight_bits'] if shared else '-':>6}{_kb(r['dense_bytes']):>10}"
                     f"{_kb(r['csr']['total_bytes']):>9}{_kb(r['shared']['total_bytes']):>9}"
                     f"{_kb(r['huffman']['total_bytes']):>9}{_kb(r['entropy_bound_bytes']):>9}"
                     f"{r['ratio']['huffman']:>7.1f}x")
    t = st["total"]
    lines.append(f"{'total':<16}{'':>10}{'':>10}{'':>4}{'':>6}{'':>6}{_kb(t['dense_bytes']):>10}"
                 f"{_kb(t['csr']['total_bytes']):>9}{_kb(t['shared']['total_bytes']):>9}"
                 f"{_kb(t['huffman']['total_bytes']):>9}{_kb(t['entropy_bound_bytes']):>9}"
                 f"{t['ratio']['huffman']:>7.1f}x")
    f = st.get("file")
    if f is not None:
        where = f["path"] if f["path"] else "a compressed file written to a temporary folder"
        lines.append(f"\nfile: {f['bytes']:,} bytes on disk ({where}): compression "
                     f"{f['ratio']:.1f}x vs dense float32 ({t['dense_bytes']:,} bytes)")
    return "\n".join(lines)
