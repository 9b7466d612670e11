# %% [markdown]
# # Every technique on one network: accuracy against bytes
#
# The lecture presents four ways to make a trained network smaller — **pruning**,
# **quantization** (uniform affine, or k-means weight sharing), **low-rank factorization** and
# **knowledge distillation** — and Deep Compression **combines** pruning, weight sharing and
# Huffman coding. This notebook applies each of them to the same trained LeNet-300-100 and puts
# every result on one figure: test accuracy against the bytes needed to store the network.
# The later notebooks take each technique apart; this one is the map.
#
# How the bytes are counted (weights *and* biases; the architecture itself is not counted):
#
# | technique | stored as | bytes from |
# |---|---|---|
# | dense, low-rank, student | float32 | `model_storage_stages(m)["total"]["dense_bytes"]` |
# | pruning | CSR: float32 values, 5-bit relative indices | `model_storage_stages` (`csr`) |
# | affine quantization | `b`-bit integers + a float32 scale per channel | computed here (see below) |
# | k-means weight sharing | per layer a codebook + a `b`-bit index per weight | `codebook_encode` |
# | Deep Compression | pruned + shared + Huffman | `save_compressed`: the file on disk |
#
# (`tinyprune.size` provides all but the affine row: `model_storage_stages`, `codebook_encode`,
# `save_compressed`.)
#
# Each compressed model gets the same short fine-tuning where its technique calls for one
# (one epoch), so the comparison is between techniques, not training budgets. It all runs on the
# Fashion-MNIST subset that ships with tinyprune, in under a minute.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from tinyprune.datasets import load_dataset
from tinyprune.distill import compute_teacher_logits, distill
from tinyprune.lowrank import factorize_model
from tinyprune.nn import Flatten, Linear, ReLU, Sequential, lenet_300_100
from tinyprune.nn.optim import SGD, Adam
from tinyprune.nn.train import evaluate, fit
from tinyprune.nn.transforms import bake_transforms
from tinyprune.prune import prune_model
from tinyprune.prune.masked import set_masks_
from tinyprune.quantize import FreezeObservers, calibrate, prepare_qat, share_weights
from tinyprune.report import quantization_report
from tinyprune.size import codebook_encode, model_storage_stages, save_compressed
from tinyprune.viz import plot_tradeoff

data = load_dataset("fashion-mnist-small", normalize=True)
X, y = data.x_train, data.y_train


def accuracy(model):
    return evaluate(model, data.x_test, data.y_test)["accuracy"]


def tune(model, epochs=1, lr=0.005):
    """The short fine-tuning every compressed model gets (masks and transforms respected)."""
    fit(model, X, y, optimizer=SGD(model.params, lr=lr, momentum=0.9), epochs=epochs, rng=1,
        progress=False)
    return model


points = []


def add(label, technique, nbytes, model_or_accuracy):
    acc = (model_or_accuracy if isinstance(model_or_accuracy, float)
           else accuracy(model_or_accuracy))
    points.append({"label": label, "technique": technique, "bytes": int(nbytes), "accuracy": acc})
    print(f"{technique:28s} {label:20s} {int(nbytes):>10,} bytes  {acc:.2%}")


net = lenet_300_100(seed=0)
fit(net, X, y, optimizer=SGD(net.params, lr=0.02, momentum=0.9), epochs=8, rng=0,
    progress=False)
dense_bytes = model_storage_stages(net)["total"]["dense_bytes"]
add("dense float32", "none", dense_bytes, net)

# %% [markdown]
# ## Pruning
#
# The smallest weights are set to zero (magnitude criterion, ranked over the three layers
# together, so the big `fc1` loses more than the small classifier `fc3`), the network is
# fine-tuned with the masks enforced, and the surviving weights are stored in CSR form
# (notebook 06). At 50% sparsity CSR saves little: every kept float32 value also needs its index.

# %%
for sparsity in (0.5, 0.8, 0.9, 0.95, 0.98):
    pruned = net.copy()
    set_masks_(pruned, prune_model(pruned, ["fc1", "fc2", "fc3"], amount=sparsity,
                                   criterion="magnitude", global_ranking=True))
    tune(pruned)
    csr_bytes = model_storage_stages(pruned)["total"]["csr"]["total_bytes"]
    add(f"{sparsity:.0%}", "pruning", csr_bytes, pruned)

# %% [markdown]
# ## Uniform affine quantization
#
# Weights on a symmetric `b`-bit grid, one scale per output channel; activations on an 8-bit grid
# (they are not stored). 8 bits need no training (post-training quantization, PTQ); 4 and 2 bits
# get one epoch of quantization-aware training (QAT, notebook 05). The bytes are those of
# `tinyprune.report.quantization_report` (what `tinyprune report` prints for a quantized
# checkpoint): each layer's `b`-bit integers packed (`ceil(n b / 8)` bytes), a float32 scale per
# output channel, float32 biases.

# %%
def affine_bytes(qmodel):
    return quantization_report(qmodel)["total"]["bytes"]


x_cal = X[:512]
ptq8 = calibrate(prepare_qat(net, bits=8), x_cal)
add("PTQ 8b", "affine quantization", affine_bytes(ptq8), ptq8)
for bits in (4, 2):
    qat = calibrate(prepare_qat(net, bits=bits), x_cal, freeze=False)
    fit(qat, X, y, optimizer=SGD(qat.params, lr=0.005, momentum=0.9), epochs=1, rng=1,
        progress=False, callbacks=[FreezeObservers(after_steps=50)])
    add(f"QAT {bits}b", "affine quantization", affine_bytes(qat), qat)

# %% [markdown]
# ## k-means weight sharing
#
# Each layer's weights are clustered into `2^b` centroids and the centroids fine-tuned (Adam, as
# a centroid's gradient is the sum over its cluster). The layer stores its codebook and one
# `b`-bit index per weight.

# %%
def shared_bytes(model):
    total = 0
    for w in model.params.values():
        total += codebook_encode(w).nbytes if w.ndim >= 2 else 4 * w.size
    return total


for bits in (5, 3, 2):
    shared = share_weights(net, bits)
    fit(shared, X, y, optimizer=Adam(shared.params, lr=1e-3), epochs=1, rng=1, progress=False)
    add(f"{bits}b", "weight sharing", shared_bytes(shared), shared)

# %% [markdown]
# ## Low-rank factorization
#
# `fc1` (784 -> 300, 88% of the weights) is replaced by its truncated SVD, two dense layers
# 784 -> r -> 300, and the network is fine-tuned.

# %%
for rank in (64, 32, 16, 8):
    small = tune(factorize_model(net, {"fc1": rank}))
    add(f"rank {rank}", "low-rank", model_storage_stages(small)["total"]["dense_bytes"], small)

# %% [markdown]
# ## Knowledge distillation
#
# A smaller network, 784 -> h -> 10 (label `h=...`), is trained from scratch to match the
# softened outputs of LeNet-300-100 (temperature 4) as well as the labels. It gets more epochs
# than the fine-tunings above: it starts from nothing.

# %%
teacher_logits = compute_teacher_logits(net, X)


def student(hidden, seed=1):
    rng = np.random.default_rng(seed)
    return Sequential([("flatten", Flatten()), ("fc1", Linear(784, hidden, rng=rng)),
                       ("relu1", ReLU()), ("fc2", Linear(hidden, 10, rng=rng))],
                      input_shape=(1, 28, 28), name=f"student_{hidden}")


students = {}
for hidden in (100, 32, 8):
    s = student(hidden)
    distill(s, None, X, y, temperature=4.0, alpha=0.9, teacher_logits=teacher_logits,
            optimizer=SGD(s.params, lr=0.05, momentum=0.9), epochs=5, rng=2, progress=False)
    students[hidden] = s
    add(f"h={hidden}", "distillation",
        model_storage_stages(s)["total"]["dense_bytes"], s)

# %% [markdown]
# ## Combinations
#
# * **Deep Compression** (notebook 06): prune to the paper's per-layer ratios (or further),
#   retrain, share the surviving weights (5 or 3 bits), fine-tune the centroids, and write the
#   `.tpz` file with Huffman-coded index streams; the point's size is the file on disk, header
#   included.
# * **distillation + quantization**: the 32-unit student quantized to 8 bits (PTQ).

# %%
folder = tempfile.mkdtemp()
for keep, bits in (((0.92, 0.91, 0.74), 5), ((0.96, 0.95, 0.8), 3)):
    dc = net.copy()
    for layer, amount in zip(("fc1", "fc2", "fc3"), keep, strict=True):
        set_masks_(dc, prune_model(dc, [layer], amount=amount, criterion="magnitude"))
    tune(dc, epochs=2)
    dc = share_weights(dc, bits)
    fit(dc, X, y, optimizer=Adam(dc.params, lr=1e-3), epochs=1, rng=1, progress=False)
    path = os.path.join(folder, f"deep_compression_{bits}.tpz")
    save_compressed(path, bake_transforms(dc))
    add(f"{keep[0]:.0%}, {bits}b", "Deep Compression",
        os.path.getsize(path), dc)

s32 = calibrate(prepare_qat(students[32], bits=8), x_cal)
add("h=32, 8b", "distillation + quantization", affine_bytes(s32), s32)

# %% [markdown]
# ## The map

# %%
fig, ax = plt.subplots(figsize=(10, 6))
plot_tradeoff(points, title="LeNet-300-100 on Fashion-MNIST (subset): every technique", ax=ax)
ax.axhline(points[0]["accuracy"] - 0.01, color="0.5", linestyle=":", linewidth=1)
plt.show()

print(f"{'technique':30s}{'model':24s}{'bytes':>10}{'ratio':>8}{'accuracy':>10}")
for p in sorted(points, key=lambda p: -p["bytes"]):
    print(f"{p['technique']:30s}{p['label']:24s}{p['bytes']:>10,}"
          f"{dense_bytes / p['bytes']:>7.1f}x{p['accuracy']:>10.2%}")

# %% [markdown]
# ## Reading the map
#
# The dotted line is one point of accuracy below the dense network. On this run:
#
# * **Affine quantization** is the cheapest win: 8 bits cost nothing and need no training (4x);
#   with one epoch of QAT even 4 and 2 bits stay at the dense accuracy (the extra epoch helps as
#   much as the grid hurts on this small network).
# * **Weight sharing** matches it at 5 and 3 bits; at 2 bits its 4 centroids per *layer* lose to
#   affine quantization's 4 levels per *channel*.
# * **Pruning** alone pays only at high sparsity, because CSR stores an index beside every
#   float32 value; up to about 90% sparsity the accuracy holds after one epoch of fine-tuning.
# * **Low-rank** (rank 16 for `fc1`) and a **distilled** 32-unit student give dense float32
#   models 5-10x smaller at a fraction of a point — and, unlike sparse or shared weights, they are
#   also *faster* with ordinary dense kernels. Too small a student (8 units) cannot follow.
# * The techniques **multiply**: Deep Compression (pruning x sharing x Huffman) and a distilled
#   then quantized student are 35-60x smaller than the dense network and within about a point
#   of it.
#
# On this small subset (6,000 training images, 1,000 test images) one point of accuracy is ten
# test images, so differences of a few tenths are noise; the notebooks on each technique have
# the details.
