# %% [markdown]
# # 02 · Pruning granularity: *which shape* of weights goes together?
#
# *Lecture: "Pruning in more details" → **Pruning granularity** (after Mao et al. 2017,
# "Exploring the granularity of sparsity in CNNs").*
#
# A criterion (notebook 01) scores **structural sets** of weights; the granularity says what a
# set is. The lecture orders them from irregular to regular:
#
# | granularity | one set of a conv weight $[c_o, c_i, k_h, k_w]$ | regular? |
# |---|---|---|
# | fine-grained (element) | one weight $W[o,i,h,w]$ | irregular |
# | pattern-based ($N{:}M$) | one weight, but $N$ of every $M$ consecutive pruned | semi-regular |
# | vector-level | one kernel row $W[o,i,h,:]$ | |
# | kernel-level | one kernel $W[o,i,:,:]$ | |
# | channel-level | one filter $W[o,:,:,:]$ (a neuron for a linear layer) | regular |
#
# **Fine-grained** pruning is the most flexible choice of indices — it keeps the most accuracy
# at a given sparsity — but it is hard to accelerate: the zeros sit at irregular places.
# **Coarse-grained** (structured) pruning is a subset of the fine-grained masks, less flexible,
# but easy to accelerate: what is left is *just a smaller matrix*. This notebook shows the
# shapes, measures the accuracy each granularity keeps, and then removes pruned channels for
# real to measure the speed-up.

# %%
import time

import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.nn import lecture_net, lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import (NMSparse, is_nm_compliant, prune_model, prune_weight, set_masks_,
                             set_shape, thin_model, validation_split)
from tinyprune.viz import plot_accuracy_vs, plot_granularity

data = load_dataset("fashion-mnist-small", normalize=True)
x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, 0.2, rng=0)

# %% [markdown]
# ## 1. The lecture's pictures
#
# A random $8\times 16$ weight matrix pruned to 50% at each granularity (white = kept). The
# $N{:}M$ panel prunes $N=2$ of every $M=4$ consecutive weights of a row — the lecture's
# wording, "in each contiguous $M$ elements, $N$ of them are pruned"; NVIDIA writes the same
# pattern 2:4 for *2 kept of 4*, which is also 50%.

# %%
w_demo = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
fig = plot_granularity(w_demo, sparsity=0.5, n_pruned=2, m=4,
                       granularities=["element", "nm", "vector", "channel"])
plt.show()

# %% [markdown]
# The weights of a convolution have four dimensions $[c_o, c_i, k_h, k_w]$, which gives more
# choices, among them **kernel-level** pruning (a whole $k_h\times k_w$ kernel). Below, a random
# conv weight with 6 filters of 4 input channels and 3×3 kernels, drawn as a grid of kernels
# (rows: filters $c_o$, columns: input channels $c_i$; dark = preserved, white = pruned):

# %%
w_conv = np.random.default_rng(1).standard_normal((6, 4, 3, 3)).astype(np.float32)
fig = plot_granularity(w_conv, sparsity=0.5, magnitude=False,  # the slide's squares
                       granularities=["element", "vector", "kernel", "channel"])
plt.show()

# %% [markdown]
# For the lecture network's `conv2` (64 filters of 32 input channels, 3×3 kernels), the number
# of sets at each granularity — the fewer the sets, the coarser the choice:

# %%
shape = (64, 32, 3, 3)
for g in ("element", "vector", "kernel", "channel", "input_channel"):
    s = set_shape(shape, g)
    print(f"{g:14s} set array {str(s):16s} {int(np.prod(s)):6,d} sets of "
          f"{int(np.prod(shape)) // int(np.prod(s)):3d} weights")

# %% [markdown]
# ## 2. Accuracy against sparsity, by granularity
#
# LeNet-300-100 (784-300-100-10) trained for two epochs, then `fc1` and `fc2` pruned at
# growing ratios with magnitude (element), the $L_1$ norm of runs of 4 inputs (vector) and the
# $L_2$ norm of each neuron (channel), plus the 2:4 pattern — **no fine-tuning**, so this is
# the raw damage of each choice. Finer sets keep more accuracy.

# %%
dense = lenet_300_100(seed=0)
fit(dense, x_tr, y_tr, optimizer=SGD(dense.params, lr=0.05, momentum=0.9), epochs=2, rng=0,
    progress=False)
base = evaluate(dense, x_val, y_val)["accuracy"]
print(f"dense validation accuracy: {base:.2%}")

layers = ["fc1", "fc2"]
ratios = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9]
settings = [("element", "magnitude"), ("vector", "l1"), ("channel", "l2")]
curves = []
for gran, crit in settings:
    accs = []
    for r in ratios:
        m = dense.copy()
        if r > 0:
            set_masks_(m, prune_model(m, layers, amount=r, criterion=crit, granularity=gran))
        accs.append(evaluate(m, x_val, y_val)["accuracy"])
    curves.append(accs)

nm = dense.copy()
set_masks_(nm, prune_model(nm, layers, granularity="nm", n_pruned=2, m=4))
nm_acc = evaluate(nm, x_val, y_val)["accuracy"]
print(f"2:4 pattern (50%): {nm_acc:.2%}")

fig = plot_accuracy_vs(ratios, curves, labels=[f"{g} ({c})" for g, c in settings],
                       xlabel="pruning ratio of fc1 and fc2", baseline=base,
                       ylabel="validation accuracy (no fine-tuning)")
fig.axes[0].scatter([0.5], [nm_acc], marker="*", s=150, color="k", zorder=5,
                    label="2:4 pattern")
fig.axes[0].legend()
plt.show()

# %% [markdown]
# ## 3. Pattern-based pruning: $N{:}M$ sparsity
#
# In every run of $M$ consecutive weights along the input dimension, $N$ are pruned. The
# pattern is regular enough for hardware: NVIDIA's Ampere tensor cores run 2:4 sparse matrices
# up to 2× faster. It is also cheap to store: each kept value needs only its position inside
# its group, $\lceil\log_2 M\rceil = 2$ bits for $M=4$, instead of a full column index.

# %%
w_fc1 = dense.params["fc1.weight"]
mask24 = prune_weight(w_fc1, None, granularity="nm", n_pruned=2, m=4)
print("mask is 2:4 compliant:", is_nm_compliant(w_fc1 * mask24, n_pruned=2, m=4))
packed = NMSparse.compress(w_fc1 * mask24, n_pruned=2, m=4)
print(f"fc1 dense {w_fc1.nbytes:,} B -> 2:4 values {packed.values_nbytes:,} B "
      f"+ positions {packed.index_nbytes:,} B ({packed.index_bits} bits each)")
x = x_val[:64].reshape(64, -1)
print("matmul from the compressed form == dense:",
      np.allclose(packed.matmul(x), x @ (w_fc1 * mask24).T, atol=1e-4))

fig, ax = plt.subplots(figsize=(7, 2.6))
ax.imshow(mask24[:12, :32], cmap="gray", interpolation="nearest")
ax.set_xticks(np.arange(-0.5, 32, 4), labels=[])
ax.set_yticks([])
ax.grid(axis="x", color="red", lw=1)
ax.set_title("fc1 mask, first 12 neurons x 32 inputs (red lines: groups of M = 4)")
plt.show()

# %% [markdown]
# ## 4. Structured pruning makes a smaller network — and a faster one
#
# Fine-grained zeros do not make a dense matrix product any faster: the multiplications by zero
# still happen. Channel pruning is different: a pruned filter of `conv2` can be **removed**,
# together with the matching input channel of the next layer. Here half of the filters of
# `conv1` and `conv2` and half of the neurons of `fc1` of the lecture network are pruned
# ($L_1$ norm, biases masked too), the network is fine-tuned for one epoch with the masks
# enforced, then `thin_model` slices the pruned units away — including the
# `conv2 → flatten → fc1` mapping ($64\cdot 12\cdot 12 = 9216$ inputs become
# $32\cdot 12\cdot 12 = 4608$).

# %%
net = lecture_net(seed=0)
fit(net, x_tr, y_tr, optimizer=SGD(net.params, lr=0.02, momentum=0.9), epochs=1,
    batch_size=32, rng=0, progress=False)
pruned = net.copy()
set_masks_(pruned, prune_model(pruned, ["conv1", "conv2", "fc1"], amount=0.5,
                               granularity="channel"))
before = evaluate(pruned, x_val, y_val)["accuracy"]
fit(pruned, x_tr, y_tr, optimizer=SGD(pruned.params, lr=0.02, momentum=0.9), epochs=1,
    batch_size=32, rng=1, progress=False)
thin, kept = thin_model(pruned)
xb = x_val[:256]
print("thin network computes the same logits:",
      np.allclose(thin.forward(xb), pruned.forward(xb), atol=1e-4))
print(f"validation accuracy: dense {evaluate(net, x_val, y_val)['accuracy']:.2%}, "
      f"50% of channels pruned {before:.2%}, fine-tuned {evaluate(thin, x_val, y_val)['accuracy']:.2%}")
print(thin.summary())

# %%
def median_ms(model, reps=5):
    model.forward(xb)  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        model.forward(xb)
        times.append(time.perf_counter() - t0)
    return 1e3 * np.median(times)

t_dense, t_masked, t_thin = median_ms(net), median_ms(pruned), median_ms(thin)
macs_dense, macs_thin = sum(net.macs().values()), sum(thin.macs().values())
print(f"256 images: dense {t_dense:.0f} ms, masked (zeros kept) {t_masked:.0f} ms, "
      f"thin {t_thin:.0f} ms -> {t_dense / t_thin:.1f}x faster for "
      f"{macs_dense / macs_thin:.1f}x fewer multiply-accumulates")

fig, ax = plt.subplots(1, 2, figsize=(8, 3))
ax[0].bar(["dense", "masked", "thin"], [net.num_parameters(), pruned.num_parameters(),
                                        thin.num_parameters()])
ax[0].set_title("parameters stored")
ax[1].bar(["dense", "masked", "thin"], [t_dense, t_masked, t_thin])
ax[1].set_title("ms per 256 images (measured)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The masked network stores and computes as much as the dense one: its zeros are still
# there. Only the thinned network is smaller and faster — the reason structured pruning is
# "easy to accelerate". The speed-up is below the MAC ratio because some costs (im2col copies,
# pooling, Python overhead) do not shrink with the channel count.
#
# ## Exercises
#
# 1. Add `("kernel", "l1")` to the settings of section 2 for a convolution instead: prune
#    `conv2` of the lecture network at each granularity and plot accuracy against sparsity.
#    Where does kernel-level sit between element and channel?
# 2. What sparsity is $N{:}M$ with `n_pruned=1, m=4`? With `n_pruned=3, m=4`? Compute the index
#    bits per kept value from `NMSparse.index_bits` and compare with a CSR index (notebook 06).
# 3. Thin a network pruned by `granularity="element"` at 50%: what does `thin_model` remove, and
#    why?
# 4. Prune only `conv1`'s filters by 50% and time the thinned network. Which layer's cost
#    shrinks — only `conv1`, or `conv2` as well?
