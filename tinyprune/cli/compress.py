"""``tinyprune compress`` (Deep Compression's file: CSR with relative indices, shared weights,
Huffman coding; :mod:`tinyprune.size`) and ``tinyprune report --storage`` (the bytes stage by
stage, the ratio from the file size on disk)."""

from __future__ import annotations

import argparse
import os
import tempfile

from ..size import CompressedFileError, model_storage_stages, save_compressed
from .common import (
    CHECKPOINT_HELP,
    CLIError,
    add_common_options,
    check_out,
    conv_fc_ints,
    conv_fc_value,
    emit,
    load_ckpt,
    show_pair,
)

INDEX_BITS = (8, 5)
"""Bits per relative index, conv then fc: Deep Compression's (Han et al. 2016, sec. 2), the
default of :func:`tinyprune.size.save_compressed`."""

STORAGE_COLUMNS = """\
columns (per weight; 'total' adds the biases, stored as float32 at every stage):
  nonzero    nonzero weights; stored = nonzero + filler zeros (a gap longer than 2^bits - 1)
  idx        bits per relative column index (conv 8, fc 5 by default: Deep Compression)
  k / wbits  codebook size and bits per codebook index ('-': the weight is not shared)
  dense      float32, every weight
  CSR        pruned: float32 values + relative indices + row pointers
  +shared    the values replaced by a codebook and wbits-bit indices
  +Huffman   both index streams Huffman-coded (code tables included)
  entropy    the bound Huffman approaches: codebook + row pointers + n*H/8 for each stream
  ratio      dense / +Huffman (or the last stage reached)
The file ratio divides the dense float32 bytes by the compressed file's size on disk (header,
code tables and architecture included)."""


def baked(model):
    """A copy of ``model`` whose weights are the effective ones (weight sharing applied), with no
    transforms: what a compressed file stores. Affine-quantized models are refused."""
    from .quantize import is_affine_quantized

    if is_affine_quantized(model):
        raise CLIError("checkpoint: affine-quantized (fake-quantization layers); a compressed "
                       "file stores weights only, not activation quantizers: compress the float "
                       "or the k-means weight-shared (tinyprune quantize --method kmeans) "
                       "checkpoint")
    new = model.copy()
    for layer in new.layers.values():
        for pname in list(layer.transforms):
            layer.params[pname] = layer.effective_param(pname)
            layer.set_transform(pname, None)
    return new


def index_bits_of(model, pair) -> dict:
    """Per weight name (2-D or more), the conv (4-D) or fc entry of ``pair``."""
    return {n: conv_fc_value(pair, w.ndim == 4) for n, w in model.params.items() if w.ndim >= 2}


def storage(model, index_bits: dict, file_bytes: int, *, file: str | None) -> dict:
    """:func:`tinyprune.size.model_storage_stages` plus the file's size and ratio, and the
    entropy bound beside the Huffman stage (``entropy_bound_bytes``, per weight and in total)."""
    try:
        stages = model_storage_stages(model, index_bits)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    total = stages["total"]
    bounds = [_bound(r) for r in stages["layers"].values()]
    for r, b in zip(stages["layers"].values(), bounds, strict=True):
        r["entropy_bound_bytes"] = b
    total["entropy_bound_bytes"] = (None if None in bounds
                                    else stages["other_bytes"] + sum(bounds))
    stages["file"] = {"path": file, "bytes": int(file_bytes),
                      "ratio": total["dense_bytes"] / file_bytes if file_bytes else None}
    return stages


def _bound(r):
    """The entropy bound of a Huffman-coded weight in bytes: codebook + row pointers +
    ``n H / 8`` for both index streams (None when the weight is not shared)."""
    if r["huffman"] is None:
        return None
    e = r["entropy"]
    return (r["shared"]["codebook_bytes"] + r["csr"]["row_ptr_bytes"] + e["index_bound_bytes"]
            + e["weight_index_bound_bytes"])


def _kb(x) -> str:
    return "-" if x is None else f"{x / 1000:.1f}"


def format_storage(st: dict) -> str:
    """The stage-by-stage table of :func:`storage`."""
    head = (f"{'weight':<16}{'nonzero':>10}{'stored':>10}{'idx':>4}{'k':>6}{'wbits':>6}"
            f"{'dense kB':>10}{'CSR kB':>9}{'+shared':>9}{'+Huffman':>9}{'entropy':>9}"
            f"{'ratio':>8}")
    lines = [head, "-" * len(head)]
    for name, r in st["layers"].items():
        shared = r["shared"] is not None
        last = next(s for s in ("huffman", "shared", "csr") if r[s] is not None)
        bound = r["entropy_bound_bytes"]
        lines.append(f"{name:<16}{r['nonzeros']:>10,}{r['n_stored']:>10,}{r['index_bits']:>4}"
                     f"{r['codebook_size'] if shared else '-':>6}"
                     f"{r['weight_bits'] if shared else '-':>6}{_kb(r['dense_bytes']):>10}"
                     f"{_kb(r['csr']['total_bytes']):>9}"
                     f"{_kb(r['shared'] and r['shared']['total_bytes']):>9}"
                     f"{_kb(r['huffman'] and r['huffman']['total_bytes']):>9}{_kb(bound):>9}"
                     f"{r['ratio'][last]:>7.1f}x")
    t = st["total"]
    last = next(s for s in ("huffman", "shared", "csr") if t[s]["total_bytes"] is not None)
    lines.append(f"{'total':<16}{'':>10}{'':>10}{'':>4}{'':>6}{'':>6}{_kb(t['dense_bytes']):>10}"
                 f"{_kb(t['csr']['total_bytes']):>9}{_kb(t['shared']['total_bytes']):>9}"
                 f"{_kb(t['huffman']['total_bytes']):>9}{_kb(t['entropy_bound_bytes']):>9}"
                 f"{t['ratio'][last]:>7.1f}x")
    f = st["file"]
    where = f["path"] if f["path"] else "a compressed file written to a temporary folder"
    lines.append(f"\nfile: {f['bytes']:,} bytes on disk ({where}): compression {f['ratio']:.1f}x "
                 f"vs dense float32 ({t['dense_bytes']:,} bytes)")
    return "\n".join(lines)


def storage_of_checkpoint(model, pair) -> dict:
    """:func:`storage` of a checkpoint's model: its compressed file is written to a temporary
    folder (removed afterwards) to measure the size on disk."""
    model = baked(model)
    bits = index_bits_of(model, pair)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            info = save_compressed(os.path.join(tmp, "model.tpz"), model, index_bits=bits)
        except (ValueError, CompressedFileError) as exc:
            raise CLIError(str(exc)) from None
    return storage(model, bits, info["file_bytes"], file=None)


def storage_of_file(model, header, path) -> dict:
    """:func:`storage` of a compressed file's model, with the index bits it was written with."""
    bits = {t["name"]: t["index_bits"] for t in header["tensors"] if t.get("encoding") == "csr"}
    bits.update({n: INDEX_BITS[0] if w.ndim == 4 else INDEX_BITS[1]
                 for n, w in model.params.items() if w.ndim >= 2 and n not in bits})
    return storage(model, bits, os.path.getsize(path), file=path)


def cmd_compress(args) -> int:
    check_out(args.out)
    pair = args.index_bits or INDEX_BITS
    ckpt = load_ckpt(args.checkpoint)
    model = baked(ckpt.model)
    bits = index_bits_of(model, pair)
    meta = dict(ckpt.metadata)
    meta["compressed_from"] = os.path.basename(args.checkpoint)
    try:
        info = save_compressed(args.out, model, index_bits=bits, huffman=args.huffman,
                               metadata=meta)
    except OSError as exc:
        raise CLIError(f"--out: cannot write {args.out!r}: {exc.strerror or exc}") from None
    except (ValueError, CompressedFileError) as exc:
        raise CLIError(str(exc)) from None
    st = storage(model, bits, info["file_bytes"], file=args.out)
    payload = {"command": "compress", "checkpoint": args.checkpoint, "out": args.out,
               "index_bits": bits, "huffman": args.huffman, "file_bytes": info["file_bytes"],
               "dense_bytes": st["total"]["dense_bytes"], "ratio": st["file"]["ratio"],
               "storage": st}
    text = (f"compressed {args.checkpoint} -> {args.out}: {info['file_bytes']:,} bytes "
            f"(compression {st['file']['ratio']:.1f}x vs dense float32; index bits "
            f"{show_pair(pair)} conv,fc; Huffman {'on' if args.huffman else 'off'})\n\n"
            + format_storage(st))
    emit(args, payload, text)
    return 0


def register(add) -> None:
    """Add the ``compress`` parser."""
    c = add("compress", help="write a compressed model file (.tpz): CSR, shared weights, "
                             "Huffman",
            description="Deep Compression's storage (Han et al. 2016) written to disk: each "
                        "weight in CSR with relative column indices (zeros not stored), its "
                        "values as a codebook + indices when it is weight-shared (tinyprune "
                        "quantize --method kmeans), the index streams Huffman-coded. tinyprune "
                        "eval model.tpz reads it back exactly.\n\n" + STORAGE_COLUMNS)
    c.add_argument("checkpoint", help=CHECKPOINT_HELP + " (pruned and/or weight-shared)")
    c.add_argument("--out", required=True, help="the compressed file (.tpz)")
    c.add_argument("--index-bits", type=conv_fc_ints(1, 16), default=None, metavar="B|CONV,FC",
                   help="bits per relative index, B for every weight or CONV,FC (default: "
                        f"{show_pair(INDEX_BITS)}, Deep Compression's)")
    c.add_argument("--huffman", action=argparse.BooleanOptionalAction, default=True,
                   help="Huffman-code the index streams (--no-huffman: bit-packed)")
    add_common_options(c, data=False)
    c.set_defaults(func=cmd_compress)

