# %% [markdown]
# # 01 · Pruning criteria: *which* weights go?
#
# *Lecture: Model Compression and Pruning Techniques — "Pruning in more details" → **Pruning
# criteria**.*
#
# Pruning removes the parameters that contribute least to the network's output. The lecture
# writes it as a constrained problem:
#
# $$\arg\min_{\mathbf W_p} L(\mathbf x;\mathbf W_p)\quad\text{subject to}\quad
# \|\mathbf W_p\|_0 < N,$$
#
# where $L$ is the training objective, $\mathbf W_p$ the pruned weights,
# $\|\mathbf W_p\|_0$ their number of non-zeros and $N$ the target number of non-zeros. Solving
# it exactly is hopeless (there are $\binom{|\mathbf W|}{N}$ masks), so we rank weights with a
# cheap **criterion** — an importance score — and drop the lowest-scoring ones. This notebook
# covers the lecture's criteria:
#
# 1. magnitude, $\text{Importance} = |W|$, for single weights;
# 2. the $L_p$ norm of a **structural set** $S$ (a row, a filter, ...):
#    $\|\mathbf W^{(S)}\|_p = \big(\sum_{i\in S}|w_i|^p\big)^{1/p}$, with $L_1$ and $L_2$ as the
#    lecture's examples;
# 3. similarity and clustering: remove the **redundancy** across filters;
#
# and compares them by the accuracy they leave at the same sparsity. Everything runs on the
# Fashion-MNIST subset that ships with tinyprune (6,000 training and 1,000 test images).

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.nn import lecture_net, lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import (cluster_redundancy_scores, geometric_median_scores, l1, l2,
                             lp_norm, magnitude, prune_model, prune_weight, set_masks_,
                             validation_split)
from tinyprune.viz import plot_accuracy_vs, plot_weight_histogram

data = load_dataset("fashion-mnist-small", normalize=True)
# choices are compared on a validation split carved from the training images, never on the test set
x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, 0.2, rng=0)
print("train", x_tr.shape, "validation", x_val.shape)

# %% [markdown]
# ## 1. Magnitude: $\text{Importance} = |W|$
#
# The heuristic of Han et al. (2015): weights with larger absolute values matter more. On the
# lecture's kind of toy example, a 4×4 matrix, pruning half of the weights keeps the 8 largest
# $|w|$. `prune_weight` returns a boolean **mask** (True = kept); the pruned weight is
# `w * mask`.

# %%
w = np.array([[ 3, -2,  1,  0.5],
              [-1,  4, -0.2, 2],
              [ 0.1, -3,  2, -1],
              [ 1,  0.3, -4,  2]], dtype=np.float32)
mask = prune_weight(w, 0.5, criterion="magnitude")
print("importance |W|:\n", magnitude(w))
print("kept (True) after pruning 50%:\n", mask)
print("pruned weights:\n", np.where(mask, w, 0))

# %% [markdown]
# Over a trained layer the same rule is a **threshold** on $|w|$: everything inside
# $[-t, t]$ goes. The histogram of LeNet-300-100's `fc1` after two epochs shows how many weights
# sit near zero — which is why magnitude pruning can remove most of them.

# %%
dense = lenet_300_100(seed=0)
fit(dense, x_tr, y_tr, optimizer=SGD(dense.params, lr=0.05, momentum=0.9), epochs=2, rng=0,
    progress=False)
base = evaluate(dense, x_val, y_val)["accuracy"]
print(f"LeNet-300-100 validation accuracy: {base:.2%}")

w_fc1 = dense.params["fc1.weight"]
t80 = np.quantile(np.abs(w_fc1), 0.8)  # the threshold that prunes 80% of fc1
fig = plot_weight_histogram(w_fc1, threshold=t80)
plt.show()
print(f"|w| <= {t80:.4f} holds 80% of fc1's {w_fc1.size:,} weights")

# %% [markdown]
# ## 2. $L_p$ norms over structural sets
#
# To remove whole rows (the neurons of a fully connected layer) or whole filters of a
# convolution, the score must belong to the set, not to a weight. The lecture's row-wise
# criteria:
#
# $$\text{Importance}_{L_1} = \sum_{i\in S}|w_i|,\qquad
# \text{Importance}_{L_2} = \sqrt{\sum_{i\in S}|w_i|^2},\qquad
# \|\mathbf W^{(S)}\|_p = \Big(\sum_{i\in S}|w_i|^p\Big)^{1/p}.$$
#
# In tinyprune a structural set is named by its **granularity** (`"channel"` = one row of a
# linear layer, one filter of a convolution; see notebook 02). For $p\to\infty$ the norm is the
# largest $|w_i|$ of the set.

# %%
print("L1 of each row:  ", l1(w, "channel"))
print("L2 of each row:  ", np.round(l2(w, "channel"), 3))
print("L-inf of each row:", lp_norm(w, np.inf, "channel"))
print("by hand, L1:      ", np.abs(w).sum(axis=1))
print("rows kept when half of them go (L2):", prune_weight(w, 0.5, criterion="l2",
                                                           granularity="channel")[:, 0])

# %% [markdown]
# The norms can disagree: a row with one large weight and many tiny ones wins under $L_\infty$
# and loses under $L_1$. How much does the choice matter on a trained network? Below, half of
# the neurons of `fc1` and `fc2` are ranked by each norm and the rankings compared.

# %%
for name in ("fc1.weight", "fc2.weight"):
    wl = dense.params[name]
    order = {p: np.argsort(lp_norm(wl, p, "channel")) for p in (1, 2, np.inf)}
    half = wl.shape[0] // 2
    same = {f"L1 vs L{p}": len(np.intersect1d(order[1][:half], order[p][:half])) / half
            for p in (2, np.inf)}
    print(name, {k: f"{v:.0%} of the pruned half in common" for k, v in same.items()})

# %% [markdown]
# ## 3. Similarity and clustering: pruning *redundant* filters
#
# A filter with a small norm contributes little — but a large filter can also be useless if
# another filter already computes almost the same thing. The lecture's second family removes
# the redundancy across filters:
#
# * **similarity (FPGM, He et al. 2019)**: the score of filter $F_i$ is its summed distance to
#   the others, $\sum_j \|F_i - F_j\|_2$; the filter nearest the *geometric median* of the
#   layer is the one the others replace best, so it is pruned first, whatever its norm;
# * **clustering (Wu et al. 2023)**: cluster the filters with k-means, keep one representative
#   per cluster (the member nearest the centroid), prune the rest — the members closest to their
#   representative first.
#
# We train the lecture's convolutional network (`conv1` 32 filters, `conv2` 64, `fc1` 128 neurons)
# for one epoch and look at `conv2`'s 64 filters.

# %%
net = lecture_net(seed=0)
fit(net, x_tr, y_tr, optimizer=SGD(net.params, lr=0.02, momentum=0.9), epochs=1,
    batch_size=32, rng=0, progress=False)
net_base = evaluate(net, x_val, y_val)["accuracy"]
print(f"lecture net validation accuracy: {net_base:.2%}")

w2 = net.params["conv2.weight"]  # (64, 32, 3, 3)
scores = {"L1 norm": l1(w2, "channel"),
          "FPGM distance sum": geometric_median_scores(w2),
          "cluster (k=16)": cluster_redundancy_scores(w2, 16, rng=0)}
fig, ax = plt.subplots(1, 3, figsize=(11, 3))
for a, (label, s) in zip(ax, scores.items()):
    a.bar(np.arange(s.size), s, color=np.where(s <= np.quantile(s, 0.5), "tab:red", "tab:blue"))
    a.set_title(label)
    a.set_xlabel("conv2 filter")
ax[0].set_ylabel("score (red: lowest half, pruned first)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Accuracy against sparsity, per criterion
#
# Now the comparison that matters: prune a growing fraction of `conv2`'s filters by each
# criterion and measure the validation accuracy **without fine-tuning** (the raw damage of the
# choice). Random scores are the baseline every criterion should beat.

# %%
criteria = ["l1", "l2", "linf", "geometric_median", "cluster", "random"]
ratios = [0.25, 0.5, 0.75, 0.9]
accs = {}
for crit in criteria:
    accs[crit] = []
    for r in ratios:
        m = net.copy()
        set_masks_(m, prune_model(m, ["conv2"], amount=r, criterion=crit, granularity="channel",
                                  rng=0))
        accs[crit].append(evaluate(m, x_val, y_val)["accuracy"])

fig = plot_accuracy_vs(ratios, [accs[c] for c in criteria], labels=criteria,
                       xlabel="fraction of conv2 filters pruned",
                       baseline=net_base, ylabel="validation accuracy (no fine-tuning)")
plt.show()

# %% [markdown]
# How large is the noise? Each point is measured on the same 1,200 validation images; an
# accuracy $p$ measured on $n$ images has a binomial standard error $\sqrt{p(1-p)/n}$, about
# 1.2 points at $p=0.8$. Curves closer than 2–3 points are within noise for a single training
# run; a conclusion needs larger gaps or several seeds.

# %%
n = len(y_val)
for p in (net_base, 0.5):
    print(f"accuracy {p:.1%} on {n} images: standard error {np.sqrt(p * (1 - p) / n):.2%}")

# %% [markdown]
# The same comparison for **single weights** (fine-grained pruning of all three layers of
# LeNet-300-100): magnitude against random. Without any fine-tuning, magnitude keeps the
# accuracy up to about 80% sparsity; random pruning loses it from the first weights removed.

# %%
sparsities = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98]
layers = ["fc1", "fc2", "fc3"]
fine = {"magnitude": [], "random": []}
for crit in fine:
    for s in sparsities:
        m = dense.copy()
        if s > 0:
            set_masks_(m, prune_model(m, layers, amount=s, criterion=crit, rng=0))
        fine[crit].append(evaluate(m, x_val, y_val)["accuracy"])
fig = plot_accuracy_vs(sparsities, [fine["magnitude"], fine["random"]],
                       labels=["magnitude |W|", "random"], xlabel="sparsity of every layer",
                       baseline=base, ylabel="validation accuracy (no fine-tuning)")
plt.show()

# %% [markdown]
# ## Exercises
#
# 1. Write the $L_2$ row score yourself with NumPy (`np.sqrt((w ** 2).sum(axis=1))`) and check it
#    against `l2(w, "channel")`. What is the structural set of a `"channel"` of `conv2`
#    (its shape)?
# 2. Try `criterion="lp", p=0.5`: with $p<1$, which rows win — those with a few large weights or
#    those with many medium ones?
# 3. In section 4, FPGM and the norms may rank the filters differently but give similar
#    accuracies. Train the network for a second epoch (or another seed) and see whether the
#    order of the curves survives. What does that tell you about one-seed comparisons?
# 4. The cluster criterion keeps one filter per cluster. With `k = 16` clusters for 64 filters,
#    what fraction of filters does it remove "for free" (non-representatives only)? Change `k`.
