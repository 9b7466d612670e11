"""Storage benchmark: compress / decompress speed of Deep Compression's streams (no torch needed).

Weights: a random pruned (90%) and weight-shared (32 centroids) weight the size of the lecture
net's ``fc1`` (128 x 9216 = 1.18M weights), and the three weights of LeNet-300-100 (784-300-100-10,
pruned 92% and shared to 32 centroids). For each: relative-index CSR (5-bit indices) encode and
decode, and Huffman encode and decode of the codebook-index stream; also Huffman on the *dense*
fc1 index stream (1.18M symbols, the issue's "decode fc1 in under 2 s" figure). Speeds are MB/s
of the dense float32 weight (4 bytes per weight), median of repeats after a warm-up; the stage
sizes of :func:`tinyprune.size.storage_stages` are printed beside them.

Usage: ``python benchmarks/bench_storage.py [--json] [--repeats 5] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def _median_s(fn, repeats, warmup=1):
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _shared_pruned(rng, shape, sparsity, k=32):
    centroids = np.linspace(-0.1, 0.1, k).astype(np.float32)
    w = centroids[rng.integers(0, k, size=shape)]
    w[rng.random(shape) < sparsity] = 0
    return w


def bench_weight(w, repeats, index_bits=5):
    from tinyprune.size import (
        codebook_encode,
        csr_decode,
        csr_encode,
        huffman_decode,
        huffman_encode,
        storage_stages,
    )

    mb = w.size * 4 / 1e6
    t_csr_enc, csr = _median_s(lambda: csr_encode(w, index_bits), repeats)
    t_csr_dec, back = _median_s(lambda: csr_decode(csr), repeats)
    assert np.array_equal(back, w)
    symbols = codebook_encode(csr.values + np.float32(0)).indices.astype(np.intp)
    t_h_enc, enc = _median_s(lambda: huffman_encode(symbols), repeats)
    t_h_dec, dec = _median_s(lambda: huffman_decode(enc), repeats)
    assert np.array_equal(dec, symbols)
    stages = storage_stages(w, index_bits)
    return {
        "shape": list(w.shape), "n_weights": int(w.size), "n_stored": csr.n_stored,
        "csr_encode_mb_per_s": mb / t_csr_enc, "csr_decode_mb_per_s": mb / t_csr_dec,
        "huffman_encode_mb_per_s": mb / t_h_enc, "huffman_decode_mb_per_s": mb / t_h_dec,
        "huffman_symbols": int(symbols.size),
        "bytes": {"dense": stages["dense_bytes"],
                  **{s: stages[s]["total_bytes"] for s in ("csr", "shared", "huffman")}},
    }


def bench_dense_fc1_huffman(rng, repeats):
    from tinyprune.size import huffman_decode, huffman_encode

    symbols = (rng.zipf(1.3, size=128 * 9216) - 1) % 32  # a skewed 5-bit stream, 1.18M symbols
    t_enc, enc = _median_s(lambda: huffman_encode(symbols), repeats)
    t_dec, dec = _median_s(lambda: huffman_decode(enc), repeats)
    assert np.array_equal(dec, symbols)
    return {"symbols": int(symbols.size), "bits": enc.n_bits, "encode_s": t_enc,
            "decode_s": t_dec}


def _prune_share_model(model, rng, sparsity, k=32):
    for w in model.params.values():
        if w.ndim >= 2:
            w[rng.random(w.shape) < sparsity] = 0
            book = np.linspace(w.min(), w.max(), k).astype(w.dtype)
            nz = w != 0
            w[nz] = book[np.abs(w[nz][:, None] - book).argmin(axis=1)]
    return model


def bench_models(rng, repeats, folder):
    import os

    from tinyprune.nn import lecture_net, lenet_300_100
    from tinyprune.size import load_compressed, save_compressed

    out = {}
    for name, build, sparsity in (("lecture_net", lecture_net, 0.9),
                                  ("lenet_300_100", lenet_300_100, 0.92)):
        model = _prune_share_model(build(seed=0), rng, sparsity)
        path = os.path.join(folder, f"{name}.tpz")
        mb = sum(p.size for p in model.params.values()) * 4 / 1e6
        t_save, _ = _median_s(lambda m=model, p=path: save_compressed(p, m), repeats)
        t_load, back = _median_s(lambda p=path: load_compressed(p), repeats)
        assert all(np.array_equal(back.params[k], v) for k, v in model.params.items())
        size = os.path.getsize(path)
        out[name] = {"compress_mb_per_s": mb / t_save, "decompress_mb_per_s": mb / t_load,
                     "dense_bytes": int(mb * 1e6), "file_bytes": size,
                     "ratio": mb * 1e6 / size}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="1 repeat (smoke run)")
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    rng = np.random.default_rng(0)
    result = {
        "repeats": repeats,
        "fc1": bench_weight(_shared_pruned(rng, (128, 9216), 0.9), repeats),
        "lenet_300_100": {name: bench_weight(_shared_pruned(rng, shape, 0.92), repeats)
                          for name, shape in (("fc1", (300, 784)), ("fc2", (100, 300)),
                                              ("fc3", (10, 100)))},
        "dense_fc1_huffman": bench_dense_fc1_huffman(rng, repeats),
    }
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        result["models"] = bench_models(rng, repeats, folder)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = [("fc1 (lecture net)", result["fc1"])] + [
        (f"LeNet-300-100 {k}", v) for k, v in result["lenet_300_100"].items()]
    print(f"{'weight':<22}{'CSR enc':>10}{'CSR dec':>10}{'Huff enc':>10}{'Huff dec':>10}  MB/s  "
          f"bytes dense -> CSR -> shared -> Huffman")
    for name, r in rows:
        b = r["bytes"]
        print(f"{name:<22}{r['csr_encode_mb_per_s']:>10.1f}{r['csr_decode_mb_per_s']:>10.1f}"
              f"{r['huffman_encode_mb_per_s']:>10.1f}{r['huffman_decode_mb_per_s']:>10.1f}        "
              f"{b['dense']:,} -> {b['csr']:,} -> {b['shared']:,} -> {b['huffman']:,}")
    d = result["dense_fc1_huffman"]
    print(f"Huffman, dense fc1 index stream ({d['symbols']:,} symbols, {d['bits']:,} bits): "
          f"encode {d['encode_s']:.3f} s, decode {d['decode_s']:.3f} s")
    for name, r in result["models"].items():
        print(f"{name}: .tpz file {r['file_bytes']:,} bytes ({r['ratio']:.1f}x smaller than "
              f"{r['dense_bytes']:,}), compress {r['compress_mb_per_s']:.1f} MB/s, decompress "
              f"{r['decompress_mb_per_s']:.1f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
