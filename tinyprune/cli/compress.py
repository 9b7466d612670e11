"""``tinyprune compress`` (Deep Compression's file: CSR with relative indices, shared weights,
Huffman coding; :mod:`tinyprune.size`) and ``tinyprune report --storage`` (the bytes stage by
stage, the ratio from the file size on disk)."""

from __future__ import annotations

import argparse
import os
import tempfile

from ..nn.transforms import bake_transforms
from ..size import (
    STORAGE_COLUMNS,
    CompressedFileError,
    format_storage_stages,
    model_storage_stages,
    save_compressed,
)
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

def baked(model):
    """:func:`tinyprune.nn.transforms.bake_transforms` of ``model`` (the weights its layers compute
    with, e.g. weight sharing applied): what a compressed file stores. Affine-quantized models are
    refused (the file would lose their activation quantizers)."""
    from .quantize import is_affine_quantized

    if is_affine_quantized(model):
        raise CLIError("checkpoint: affine-quantized (fake-quantization layers); a compressed "
                       "file stores weights only, not activation quantizers: compress the float "
                       "or the k-means weight-shared (tinyprune quantize --method kmeans) "
                       "checkpoint")
    return bake_transforms(model)


def index_bits_of(model, pair) -> dict:
    """Per weight name (2-D or more), the conv (4-D) or fc entry of ``pair``."""
    return {n: conv_fc_value(pair, w.ndim == 4) for n, w in model.params.items() if w.ndim >= 2}


def storage(model, index_bits: dict, file_bytes: int, *, file: str | None) -> dict:
    """:func:`tinyprune.size.model_storage_stages` with the file's size and ratio."""
    try:
        return model_storage_stages(model, index_bits, file_bytes=file_bytes, file_path=file)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


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
            + format_storage_stages(st))
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

