# %% [markdown]
# # 07 · Low-rank factorization
#
# *Lecture: "Model compression: a brief introduction" → **What is low-rank factorization?** —
# decomposing large, dense weight matrices into smaller, lower-rank matrices.*
#
# A dense layer computes $y = Wx$ with $W\in\mathbb R^{m\times n}$ ($m$ outputs, $n$ inputs).
# Its singular value decomposition $W = U\Sigma V^\top$ sorts the directions of $W$ by their
# singular values $\sigma_1\ge\sigma_2\ge\dots\ge 0$. Keeping only the $r$ largest gives
#
# $$W \approx W_r = U_r\Sigma_r V_r^\top = \underbrace{(U_r\Sigma_r^{1/2})}_{m\times r}\,
# \underbrace{(\Sigma_r^{1/2}V_r^\top)}_{r\times n},$$
#
# the **best** rank-$r$ approximation (Eckart–Young): no rank-$r$ matrix is closer in the
# Frobenius norm, and the error is exactly what was dropped,
# $\|W - W_r\|_F^2 = \sum_{k>r}\sigma_k^2$. The layer becomes two thinner layers,
# $n\to r$ then $r\to m$, with $r(m+n)$ weights and multiply-accumulates instead of $mn$ — a
# saving whenever $r < mn/(m+n)$. The share of the squared singular values kept,
#
# $$E(r) = \frac{\sum_{k\le r}\sigma_k^2}{\sum_k\sigma_k^2},$$
#
# is the usual way to pick $r$ ("keep 90% of the energy"), and a sensitivity scan with the
# rank as the knob (as in notebook 03) the more faithful one. A convolution
# $[c_o, c_i, k_h, k_w]$ is factorized as the matrix $c_o\times(c_i k_h k_w)$: $r$ filters of
# the original size followed by a $1\times1$ convolution.

# %%
import time

import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.lowrank import (energy_rank, factorize_model, low_rank_approximation,
                               rank_sensitivity_scan, singular_values)
from tinyprune.nn import lecture_net
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import validation_split
from tinyprune.viz import plot_accuracy_vs, plot_sensitivity, plot_spectrum

data = load_dataset("fashion-mnist-small", normalize=True)
x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, 0.2, rng=0)
net = lecture_net(seed=0)
fit(net, x_tr, y_tr, optimizer=SGD(net.params, lr=0.02, momentum=0.9), epochs=1,
    batch_size=32, rng=0, progress=False)
base = evaluate(net, x_val, y_val)["accuracy"]
print(f"lecture net, one epoch: validation accuracy {base:.2%}")

# %% [markdown]
# ## 1. The spectrum of `fc1` and its energy
#
# `fc1` holds 1,179,648 of the network's 1.2 million weights: $m = 128$ outputs,
# $n = 9216$ inputs, so at most 128 non-zero singular values.

# %%
w = net["fc1"].params["weight"]
s = singular_values(w)
fig = plot_spectrum(s, energy=0.9)
plt.show()
for e in (0.5, 0.9, 0.99):
    r = energy_rank(s, e)
    print(f"energy {e:.0%}: rank {r:3d} of {s.size} -> {r * (128 + 9216) / w.size:.1%} of the "
          f"weights")

# %% [markdown]
# Eckart–Young, checked numerically: the squared error of the truncation is the energy left out.

# %%
for r in (5, 25, 100):
    err = np.sum((w.astype(np.float64) - low_rank_approximation(w, r)) ** 2)
    print(f"rank {r:3d}: ||W - W_r||_F^2 = {err:.4f},  sum of dropped sigma^2 = "
          f"{np.sum(s[r:].astype(np.float64) ** 2):.4f}")

# %% [markdown]
# ## 2. Accuracy against rank
#
# `fc1` and `conv2` factorized one at a time at each rank, no fine-tuning, on the validation
# split. The energy is a proxy: a layer can lose much of its energy and little accuracy (the
# next layers only need the directions that separate the classes).

# %%
ranks = [1, 2, 5, 10, 25, 50, 100]
scan = rank_sensitivity_scan(net, x_val, y_val, ["fc1", "conv2"], ranks)
fig = plot_accuracy_vs(ranks, {name: scan.accuracy[i] for i, name in enumerate(scan.layers)},
                       xlabel="rank r", logx=True, baseline=scan.baseline,
                       ylabel="validation accuracy (no fine-tuning)")
plt.show()
print("energy kept by the same ranks of fc1:",
      {r: f"{(s[:r] ** 2).sum() / (s ** 2).sum():.0%}" for r in ranks})

# %% [markdown]
# ## 3. Choosing ranks with a threshold, then fine-tuning
#
# As in notebook 03: each layer gets the smallest rank whose accuracy drop is at most
# $T = 1$ point. The factors start from the SVD, so a short fine-tuning recovers most of what
# the truncation lost.

# %%
chosen = scan.ranks_for_threshold(0.01)
print("smallest ranks within 1 point:", chosen)
fig = plot_sensitivity(scan, threshold=0.01)
plt.show()

small = factorize_model(net, chosen)
acc_before = evaluate(small, x_val, y_val)["accuracy"]
fit(small, x_tr, y_tr, optimizer=SGD(small.params, lr=0.01, momentum=0.9), epochs=1,
    batch_size=32, rng=1, progress=False)
acc_after = evaluate(small, x_val, y_val)["accuracy"]
print(f"parameters: {net.num_parameters():,} -> {small.num_parameters():,} "
      f"({net.num_parameters() / small.num_parameters():.1f}x fewer)")
print(f"validation accuracy: dense {base:.2%}, factorized {acc_before:.2%}, "
      f"after 1 epoch of fine-tuning {acc_after:.2%}")

# %% [markdown]
# ## 4. Fewer multiply-accumulates, measured
#
# Unlike fine-grained sparsity, a factorized layer is two *dense* products, so the saving shows
# up on any hardware. `fc1` alone on 256 inputs, dense against its two factors:

# %%
h = np.random.default_rng(0).standard_normal((256, 9216)).astype(np.float32)

def best_ms(f, reps=15):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)

r = small["fc1_v"].out_features
t_dense = best_ms(lambda: net["fc1"].forward(h))
t_low = best_ms(lambda: small["fc1_u"].forward(small["fc1_v"].forward(h)))
print(f"fc1: dense {t_dense:.2f} ms, rank {r}: {t_low:.2f} ms -> {t_dense / t_low:.1f}x faster "
      f"for {w.size / (r * (9216 + 128)):.1f}x fewer multiply-accumulates")

# %% [markdown]
# ## Exercises
#
# 1. At which rank does a factorized `fc1` stop saving weights? Derive $r^* = mn/(m+n)$ and
#    check it with `scan.weights_saved`.
# 2. Factorize `fc1` by energy instead: `factorize_model(net, {"fc1": {"energy": 0.9}})`.
#    Compare its rank and accuracy with the threshold choice above.
# 3. Plot the spectrum of `conv2` (`plot_spectrum(net["conv2"].params["weight"])`). Is it
#    flatter or steeper than `fc1`'s? What does that predict about its sensitivity?
# 4. Low rank and pruning combine: prune `fc1` to 90% (notebook 01), then factorize the pruned
#    weight. Is the pruned matrix still approximately low-rank?
