# %% [markdown]
# # Deep Compression, byte by byte
#
# Han, Mao & Dally (ICLR 2016) shrink a network in three stages that multiply:
#
# 1. **pruning** — most weights become 0, and the rest are stored sparsely (CSR with short
#    *relative* indices);
# 2. **quantization by weight sharing** — the surviving weights are clustered, and each stores a
#    few-bit index into a per-layer codebook instead of a 32-bit float;
# 3. **Huffman coding** — both index streams are far from uniform, so a variable-length code
#    shortens them further.
#
# The paper reports LeNet-300-100 shrinking 40x (from 1070 KB to 27 KB). This notebook walks the
# same pipeline on the same architecture, trained on the Fashion-MNIST subset that ships with
# tinyprune, and counts every byte with `tinyprune.size` — ending with the real file on disk.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from tinyprune.datasets import load_dataset
from tinyprune.nn import lenet_300_100
from tinyprune.nn.optim import SGD, Adam
from tinyprune.nn.train import evaluate, fit
from tinyprune.nn.transforms import bake_transforms
from tinyprune.prune import prune_model
from tinyprune.prune.masked import set_masks_
from tinyprune.quantize import share_weights
from tinyprune.size import (
    codebook_encode,
    csr_decode,
    csr_encode,
    entropy_bits,
    huffman_code_lengths,
    load_compressed,
    model_storage_stages,
    save_compressed,
)
from tinyprune.viz import plot_storage_stages

data = load_dataset("fashion-mnist-small", normalize=True)


def accuracy(model):
    return evaluate(model, data.x_test, data.y_test)["accuracy"]


net = lenet_300_100(seed=0)
fit(net, data.x_train, data.y_train, optimizer=SGD(net.params, lr=0.02, momentum=0.9),
    epochs=8, rng=0, progress=False)
base = accuracy(net)
dense_bytes = 4 * net.num_parameters()
print(f"dense LeNet-300-100: {net.num_parameters():,} float32 parameters = {dense_bytes:,} bytes, "
      f"test accuracy {base:.2%}")

# %% [markdown]
# ## Stage 1: pruning
#
# The paper keeps 8% of `fc1`, 9% of `fc2` and 26% of `fc3` (Han et al. 2015, Table 4). We prune
# the smallest weights of each layer to those ratios and retrain with the masks enforced.

# %%
pruned = net.copy()
for layer, amount in {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}.items():
    set_masks_(pruned, prune_model(pruned, [layer], amount=amount, criterion="magnitude"))
print(f"pruned: {accuracy(pruned):.2%} before retraining", end=", ")
fit(pruned, data.x_train, data.y_train, optimizer=SGD(pruned.params, lr=0.01, momentum=0.9),
    epochs=3, rng=1, progress=False)
print(f"{accuracy(pruned):.2%} after 3 epochs")
for name, w in pruned.params.items():
    if w.ndim == 2:
        print(f"  {name}: {np.count_nonzero(w):,} of {w.size:,} weights kept "
              f"({np.count_nonzero(w) / w.size:.1%})")

# %% [markdown]
# ### Relative indices and filler zeros (the paper's Fig. 2)
#
# CSR stores, row by row, the nonzero values and where they are. Instead of a column number
# (10 bits for 784 columns), Deep Compression stores the **distance to the previous entry** in
# `b` bits (5 for fc layers, 8 for conv). A gap too long for `b` bits gets a **filler zero**: a
# stored entry with value 0, placed as far as `b` bits reach. tinyprune stores the number of
# zeros skipped (the column difference minus one), so `b` bits reach a difference of `2^b`.
#
# The paper's example: 3-bit indices, nonzeros 3.4, 0.9 and 1.7 at columns 1, 4 and 15. The gap
# from 4 to 15 is longer than 8, so a filler zero goes to column 12.

# %%
row = np.zeros(16, dtype=np.float32)
row[[1, 4, 15]] = [3.4, 0.9, 1.7]
example = csr_encode(row, 3)
print("stored values   ", example.values.tolist())
print("relative codes  ", example.rel.tolist(), "(zeros skipped before each entry)")
print("column of each  ", (np.cumsum(example.rel.astype(int) + 1) - 1).tolist())
print("decodes exactly:", np.array_equal(csr_decode(example), row))

# %% [markdown]
# How many index bits? Few bits make each index cheap but need many fillers (each costs a
# 32-bit value *and* an index); many bits need no fillers but make every index expensive. For
# `fc1` (92% pruned) the sweet spot is around 5-6 bits, the paper's choice for fc layers.

# %%
w1 = pruned.params["fc1.weight"]
print(f"{'bits':>4} {'stored':>8} {'fillers':>8} {'values B':>9} {'indices B':>10} {'row ptr B':>10}"
      f" {'total B':>9}")
for b in range(2, 10):
    c = csr_encode(w1, b)
    print(f"{b:>4} {c.n_stored:>8,} {c.n_fillers:>8,} {c.values_nbytes:>9,} {c.index_nbytes:>10,}"
          f" {c.row_ptr_nbytes:>10,} {c.nbytes:>9,}")
print(f"dense fc1: {w1.nbytes:,} bytes")

# %% [markdown]
# ## Stage 2: weight sharing
#
# The kept weights of each layer are clustered into `2^5 = 32` centroids (k-means, linear
# initialisation; notebook 05), and the centroids are fine-tuned for one epoch (Adam, as the
# centroid gradient is a sum over its cluster). The stored values are replaced by a codebook of
# `k` float32 centroids and a `ceil(log2 k)`-bit index per stored entry — the filler zeros need a
# codebook entry of their own. A layer may end with fewer than 32 centroids: after pruning, the
# kept weights avoid a band around 0, and the linearly spaced initial centroids that fall into
# that empty band get no weights (k-means drops them). For `n` stored entries the values shrink by
#
# $$r = \frac{32\,n}{n \lceil\log_2 k\rceil + 32\,k}.$$

# %%
shared = share_weights(pruned, 5, init="linear")
print(f"shared (32 centroids per layer): {accuracy(shared):.2%}", end=", ")
fit(shared, data.x_train, data.y_train, optimizer=Adam(shared.params, lr=1e-3), epochs=1,
    rng=1, progress=False)
print(f"{accuracy(shared):.2%} after centroid fine-tuning")

c1 = csr_encode(shared.params["fc1.weight"], 5)
book = codebook_encode(c1.values + 0.0)  # + 0.0: -0.0 -> 0.0, the fillers share one entry
n, k = c1.n_stored, book.codebook.size
n_centroids = shared.transforms["fc1.weight"].n_clusters
print(f"fc1: {n:,} stored entries take {k} distinct values ({n_centroids} centroids + the filler "
      f"zero) -> {book.bits}-bit indices")
print(f"  values as float32: {c1.values_nbytes:,} B; codebook {book.codebook_nbytes} B + indices "
      f"{book.index_nbytes:,} B = {book.nbytes:,} B")
print(f"  r = 32 n / (n ceil(log2 k) + 32 k) = {32 * n / (n * book.bits + 32 * k):.2f}, "
      f"measured {c1.values_nbytes / book.nbytes:.2f}")

# %% [markdown]
# ## Stage 3: Huffman coding
#
# The two index streams — which centroid, and how far to the next entry — are far from uniform
# (the paper's Fig. 5): most weights sit in the few centroids near 0, and short gaps are more
# frequent than long ones. Huffman's code gives frequent symbols short code words; its average
# length lies within one bit of the stream's entropy `H = -sum p log2 p`, the bound of any
# symbol-by-symbol code.
#
# In the plots below the codebook is sorted by value, so the two humps of the pruned weights
# appear on both sides of the entry of the filler zero (the lone tall bar in the middle); the
# tall bar at the right end of the relative indices is code 31, the longest step a 5-bit index
# can take, which every filler zero uses.

# %%
streams = {"weight index (codebook entry)": book.indices.astype(np.intp),
           "relative index (zeros skipped)": c1.rel.astype(np.intp)}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for ax, (label, symbols) in zip(axes, streams.items(), strict=True):
    freqs = np.bincount(symbols)
    lengths = huffman_code_lengths(freqs)
    mean_len = (freqs * lengths).sum() / freqs.sum()
    fixed = int(np.ceil(np.log2(freqs.size)))
    print(f"{label:31s} fixed {fixed} bits, Huffman {mean_len:.2f} bits/symbol on average, "
          f"entropy {entropy_bits(symbols):.2f}")
    ax.bar(np.arange(freqs.size), freqs / freqs.sum(), color="tab:blue")
    ax.set_xlabel(label)
    ax.set_ylabel("frequency")
    ax2 = ax.twinx()
    ax2.step(np.arange(freqs.size), lengths, where="mid", color="tab:red")
    ax2.set_ylabel("Huffman code length (bits)", color="tab:red")
    ax.set_title(f"fc1: {mean_len:.2f} bits/symbol vs {fixed} fixed")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The whole model, stage by stage, and the real file
#
# `model_storage_stages` adds up every weight's streams (each rounded up to whole bytes; biases
# stay float32), and `save_compressed` writes the `.tpz` file: a header (architecture and stream
# sizes as JSON) followed by exactly those streams. Loading it back gives the same weights bit
# for bit, so the same accuracy.
#
# The shared model still carries its fine-tuning machinery: a weight transform per layer that
# maps the stored weight to `codebook[indices]`. A file stores plain weights, so we first replace
# every weight by what its layer computes with and drop the transforms.

# %%
final = bake_transforms(shared)
stages = model_storage_stages(final)
total = stages["total"]
for name, r in stages["layers"].items():
    print(f"{name}: {r['nonzeros']:,} nonzeros + {r['fillers']:,} fillers, k = "
          f"{r['codebook_size']}, {r['weight_bits']}-bit codebook indices, "
          f"{r['index_bits']}-bit relative indices")
print(f"\n{'stage':<28}{'bytes':>10}{'ratio':>8}")
print(f"{'dense float32':<28}{total['dense_bytes']:>10,}{1:>7.1f}x")
for stage, label in [("csr", "pruned (CSR)"), ("shared", "+ weight sharing"),
                     ("huffman", "+ Huffman coding")]:
    print(f"{label:<28}{total[stage]['total_bytes']:>10,}{total['ratio'][stage]:>7.1f}x")

path = os.path.join(tempfile.mkdtemp(), "lenet_300_100.tpz")
info = save_compressed(path, final)
size = os.path.getsize(path)
print(f"{'.tpz file on disk':<28}{size:>10,}{total['dense_bytes'] / size:>7.1f}x   "
      f"(header {info['header_bytes']:,} B + payload {size - info['header_bytes']:,} B)")
loaded = load_compressed(path)
same = all(np.array_equal(loaded.params[k], final.params[k]) for k in final.params)
print(f"\nloaded back: weights identical {same}, accuracy {accuracy(loaded):.2%} "
      f"(dense {base:.2%})")

# %% [markdown]
# The paper's figure of the pipeline, redrawn from these numbers:

# %%
fig = plot_storage_stages(stages)
plt.show()

# %% [markdown]
# ## What we saw
#
# * Pruning to the paper's ratios and retraining keeps the accuracy; CSR with 5-bit relative
#   indices needs only a few percent filler zeros for `fc1`.
# * Weight sharing replaces 32-bit values by 5-bit indices into a codebook of at most 32 entries
#   and multiplies the saving by about 3.5.
# * Huffman coding takes a further 10-15% off, close to the entropy of the two index streams.
# * The file on disk is within its header of the stage-3 figure; together the stages come close
#   to the paper's 40x for LeNet-300-100.
