"""deep_compression: the whole pipeline (prune, share, Huffman) on LeNet-300-100 and LeNet-5.

Han, Mao & Dally 2016 (Deep Compression, Table 1): LeNet-300-100 40x and LeNet-5 39x smaller
without accuracy loss on MNIST. Here on Fashion-MNIST with ``tinyprune.pipeline.deep_compress``:
after dense training, iterative magnitude pruning to the paper's per-layer sparsities (3 rounds,
masked fine-tuning at lr/10), k-means weight sharing (conv 8 bits, fc 5 bits, one code kept for
the filler zero) with centroid fine-tuning, then the compressed file (relative CSR, codebooks,
Huffman coding; relative-index width chosen per layer to minimise the file, the paper's fixed
conv 8 / fc 5 bits reported beside). The ratio is dense float32 bytes / the file's size on disk
(header included),
the accuracy is the one of the model read back from the file. The dense baseline is trained the
same total number of epochs (its extra epochs at lr/10). No choice is made on the data: the
sparsities and bit widths are the paper's.
"""

import os
import statistics
import sys
import tempfile
from types import SimpleNamespace

from _common import BATCH, LR, accuracy, finish, load, parse_args, pm, stats, train, trained

from tinyprune.nn import lenet5, lenet_300_100
from tinyprune.pipeline import deep_compress
from tinyprune.size import format_storage_stages, save_compressed

# model: (build, cache tag, paper's ratio, dense epochs, prune rounds, epochs per round,
#         centroid fine-tuning epochs); --quick uses QUICK_EPOCHS instead of the last four
MODELS = {
    "lenet-300-100": (lenet_300_100, "lenet300", 40, 10, 3, 3, 2),
    "lenet5": (lenet5, "lenet5", 39, 4, 3, 1, 1),
}
QUICK_EPOCHS = (2, 1, 1, 1)
SECTION = "deep_compression: storage stage by stage (LeNet-300-100, LeNet-5)"
SHARE_LR = 1e-3  # centroid fine-tuning (SGD) as in the recorded full run; at 5 bits on these
# pruned layers lr * cluster size stays below 1, far from the divergence centroid_lr avoids


def run_model(args, data, name):
    build, tag, paper, *epochs = MODELS[name]
    dense_epochs, rounds, per_round, share_epochs = QUICK_EPOCHS if args.quick else epochs
    extra = rounds * per_round + share_epochs
    ds = SimpleNamespace(x_train=data[0], y_train=data[1], x_test=data[4], y_test=data[5])
    rows = {"dense": [], "file": [], "pruned": [], "finetuned": [], "ratio": [], "bytes": [],
            "ratio_8_5": []}
    tables = []
    for seed in args.seeds:
        base = trained(build, seed, dense_epochs, data, args.quick, tag)
        dense = base.copy()  # the baseline gets the same total number of epochs
        train(dense, data[0], data[1], epochs=extra, lr=LR / 10, seed=3000 + seed)
        rows["dense"].append(accuracy(dense, data[4], data[5]))
        with tempfile.TemporaryDirectory() as tmp:
            r = deep_compress(base, ds, os.path.join(tmp, "m.tpz"), prune_rounds=rounds,
                              epochs_per_round=per_round, share_epochs=share_epochs, lr=LR,
                              batch_size=BATCH, seed=seed, index_bits="auto",
                              share_lr=SHARE_LR)
            # the same weights with the paper's fixed index widths (conv 8, fc 5 bits)
            fixed = save_compressed(os.path.join(tmp, "fixed.tpz"), r.model)["file_bytes"]
        for k in ("file", "pruned", "finetuned"):
            rows[k].append(r.accuracy[k])
        rows["ratio"].append(r.ratio)
        rows["bytes"].append(r.file_bytes)
        rows["ratio_8_5"].append(r.storage["total"]["dense_bytes"] / fixed)
        r.storage["file"]["path"] = f"{name}, seed {seed}"
        tables.append(format_storage_stages(r.storage))
        print(f"{name} seed {seed}: dense {rows['dense'][-1]:.4f}, from the file "
              f"{r.accuracy['file']:.4f}, {r.file_bytes:,} bytes, {r.ratio:.1f}x "
              f"({r.seconds['total']:.0f} s)", file=sys.stderr)
    m = {k: stats(v) for k, v in rows.items() if k not in ("ratio", "bytes", "ratio_8_5")}
    m["ratio"] = {"mean": round(statistics.fmean(rows["ratio"]), 2),
                  "values": [round(x, 2) for x in rows["ratio"]]}
    m["ratio_index_bits_8_5"] = round(statistics.fmean(rows["ratio_8_5"]), 2)
    m["file_bytes"] = rows["bytes"]
    m["dense_bytes"] = r.storage["total"]["dense_bytes"]
    m["gap_pt"] = round((m["dense"]["mean"] - m["file"]["mean"]) * 100, 2)
    m["paper_ratio"] = paper
    m["sparsity"] = {k: round(v, 4) for k, v in r.sparsity.items()}
    m["epochs"] = {"dense": dense_epochs, "prune_rounds": rounds, "epochs_per_round": per_round,
                   "share": share_epochs, "dense_baseline_extra": extra}
    t = r.storage["total"]
    m["stages_kB_last_seed"] = {"dense": round(t["dense_bytes"] / 1000, 1),
                                **{s: round(t[s]["total_bytes"] / 1000, 1)
                                   for s in ("csr", "shared", "huffman")},
                                "entropy": round(t["entropy_bound_bytes"] / 1000, 1),
                                "file": round(r.file_bytes / 1000, 1)}
    return m, tables


def main():
    args = parse_args(__doc__)
    data = load(args.quick)
    measured, tables = {}, {}
    for name in MODELS:
        measured[name], tables[name] = run_model(args, data, name)
    met = all(m["ratio"]["mean"] >= m["paper_ratio"] and m["gap_pt"] <= 0.5
              for m in measured.values())
    parts = []
    for name, m in measured.items():
        s = m["stages_kB_last_seed"]
        parts.append(f"{name}: dense {pm(m['dense'])}, from the file {pm(m['file'])} "
                     f"(gap {m['gap_pt']:+.2f} pt), {m['ratio']['mean']:.1f}x from the file size "
                     f"(paper {m['paper_ratio']}x; {m['ratio_index_bits_8_5']:.1f}x with the "
                     f"paper's fixed 8/5-bit indices instead of the best per layer); seed "
                     f"{args.seeds[-1]} kB dense "
                     f"{s['dense']} -> CSR {s['csr']} -> "
                     f"shared {s['shared']} -> Huffman {s['huffman']} (entropy {s['entropy']}) "
                     f"-> file {s['file']}")
    summary = "; ".join(parts) + f" (per-layer tables: section '{SECTION}')"
    ep = {n: m["epochs"] for n, m in measured.items()}
    claim = ("Deep Compression (prune to the paper's per-layer sparsities in 3 rounds, k-means "
             "conv 8 / fc 5 bits + centroid fine-tuning, relative CSR with the best index width per "
             "layer + Huffman file): "
             "LeNet-300-100 40x and LeNet-5 39x smaller from the file size, accuracy from the "
             f"file within 0.5 pt of dense (epochs {ep['lenet-300-100']['dense']}+"
             f"{ep['lenet-300-100']['dense_baseline_extra']} and {ep['lenet5']['dense']}+"
             f"{ep['lenet5']['dense_baseline_extra']}; dense trained as many)")
    text = ["Bytes per weight and stage (kB), the last column the ratio dense / +Huffman; "
            "written by `python experiments/deep_compression.py` (full Fashion-MNIST). The "
            "accuracies are in the `deep_compression` row above.", ""]
    for name, tabs in tables.items():
        for seed, tab in zip(args.seeds, tabs, strict=True):
            text += [f"### {name}, seed {seed}", "", "```", tab, "```", ""]
    finish(args, "deep_compression", claim,
           "ratio >= 40x (LeNet-300-100) / 39x (LeNet-5) from the file size, within 0.5 pt of "
           "dense", measured, met, summary, sections={SECTION: "\n".join(text)})


if __name__ == "__main__":
    main()
