# %% [markdown]
# # 03 · Pruning ratios: *how many* weights per layer?
#
# *Lecture: "Pruning in more details" → **Pruning ratio** → "Finding pruning ratios: analyze the
# sensitivity of each layer".*
#
# Different layers have different **sensitivity**: some (often the first layer) lose accuracy as
# soon as a few weights go, others (the large fully connected layers) are mostly redundant. A
# single ratio for every layer therefore wastes either accuracy or compression. The lecture's
# recipe, the **sensitivity analysis**:
#
# 1. pick a layer $L_i$ of the model;
# 2. prune only $L_i$ with pruning ratio $r\in\{0, 0.1, 0.2, \dots, 0.9\}$;
# 3. observe the accuracy degradation $\Delta Acc_r^i = Acc_{\text{dense}} - Acc_r^i$ for each
#    ratio;
# 4. repeat for all layers;
# 5. pick a degradation threshold $T$ such that the overall pruning rate is the desired one:
#    layer $i$ gets the largest ratio it tolerates,
#    $r_i(T) = \max\{r : \Delta Acc_r^i \le T\}$, and the overall rate, weighted by the number
#    of weights $n_i$ of each layer, is
#    $$\rho(T) = \frac{\sum_i r_i(T)\, n_i}{\sum_i n_i}.$$
#    $\rho$ grows with $T$; we take the smallest $T$ with $\rho(T)\ge$ the target.
#
# Every accuracy here is measured on a **validation split carved from the training images**:
# the ratios are a choice made from data, and choosing them on the test set would make the final
# test accuracy an optimistic, tuned number.

# %%
import time

import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.nn import lecture_net
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import (apply_ratios, format_sensitivity, prune_model, sensitivity_scan,
                             set_masks_, validation_split)
from tinyprune.prune.sensitivity import ratios_for_threshold
from tinyprune.viz import plot_sensitivity

data = load_dataset("fashion-mnist-small", normalize=True)
x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, 0.2, rng=0)
print("train", x_tr.shape, "validation", x_val.shape, "test", data.x_test.shape)

# %% [markdown]
# ## 1. The scan
#
# The lecture's network (`conv1` 288 weights, `conv2` 18,432, `fc1` 1,179,648, `fc2` 1,280),
# trained for one epoch. Each of its four layers is pruned alone by $L_1$ magnitude at ten
# ratios. `sensitivity_scan` reuses the activations below the pruned layer, so the 40
# evaluations take a few seconds.

# %%
net = lecture_net(seed=0)
fit(net, x_tr, y_tr, optimizer=SGD(net.params, lr=0.02, momentum=0.9), epochs=1,
    batch_size=32, rng=0, progress=False)
t0 = time.perf_counter()
scan = sensitivity_scan(net, x_val, y_val)
print(f"dense validation accuracy {scan.baseline:.2%}; the scan took "
      f"{time.perf_counter() - t0:.1f} s")
print("accuracy drop ΔAcc (rows: layers, columns: r = 0 ... 0.9), in points:")
for name, d in zip(scan.layers, scan.delta):
    print(f"  {name:13s}", " ".join(f"{100 * v:5.1f}" for v in d))

# %% [markdown]
# ## 2. The threshold $T$ and the per-layer ratios
#
# We ask for an overall pruning rate of 80% of all weights. `choose` finds the smallest $T$
# that reaches it (an exact search over the measured $\Delta Acc$ values) and the ratio of each
# layer; the figure is the lecture's: one curve per layer, and the line at
# $Acc_{\text{dense}} - T$.

# %%
chosen = scan.choose(0.8)
print(format_sensitivity(chosen))
fig = plot_sensitivity(chosen)  # T and the chosen ratios (stars) come with `chosen`
plt.show()

# %% [markdown]
# Two things to notice. $T$ can be **negative**: pruning a little of a layer sometimes *raises*
# the validation accuracy (a mild regularisation, or simply noise — one accuracy measured on
# 1,200 images has a standard error of about 1.2 points). And the rate reached can overshoot the
# target: the ratios move in steps of 0.1, and one step of the huge `fc1` moves $\rho$ by
# almost 0.1.
#
# How does the overall rate $\rho(T)$ grow with the threshold? Because `fc1` holds 98% of the
# weights, $\rho$ jumps whenever `fc1`'s ratio steps up; the small, sensitive layers barely
# move it.

# %%
sizes = np.array([scan.sizes[k] for k in scan.layers], dtype=float)
ts = np.unique(np.concatenate([[-0.01], scan.delta.ravel()]))
rho = [ratios_for_threshold(scan.delta, scan.ratios, t) @ sizes / sizes.sum() for t in ts]
fig, ax = plt.subplots(figsize=(5, 3))
ax.step(100 * ts, rho, where="post")
ax.axhline(0.8, color="gray", ls=":")
ax.axvline(100 * chosen.threshold, color="k", ls="--", label=f"T = {100 * chosen.threshold:.2f}")
ax.set_xlabel("threshold T (accuracy points)")
ax.set_ylabel("overall pruning rate ρ(T)")
ax.legend()
plt.show()

# %% [markdown]
# ## 3. Per-layer ratios against one ratio for all
#
# Same overall sparsity, two choices: the sensitivity ratios, or one uniform ratio in every layer
# (80%, which prunes `conv1` as hard as `fc1`). Both are then fine-tuned for one epoch with the
# masks enforced.

# %%
def finetune(model):
    fit(model, x_tr, y_tr, optimizer=SGD(model.params, lr=0.01, momentum=0.9), epochs=1,
        batch_size=32, rng=1, progress=False)
    return evaluate(model, x_val, y_val)["accuracy"]

per_layer = net.copy()
set_masks_(per_layer, apply_ratios(per_layer, chosen.chosen))
uniform = net.copy()
set_masks_(uniform, prune_model(uniform, scan.layers, amount=0.8, relative_to="total"))
rows = {}
for name, m in [("per-layer (sensitivity)", per_layer), ("uniform 80%", uniform)]:
    kept = sum(int(k.sum()) for k in m.masks.values())
    total = sum(k.size for k in m.masks.values())
    rows[name] = (1 - kept / total, evaluate(m, x_val, y_val)["accuracy"], finetune(m))
    print(f"{name:24s} sparsity {rows[name][0]:.1%}  validation: pruned {rows[name][1]:.2%}, "
          f"fine-tuned {rows[name][2]:.2%}")

# %% [markdown]
# Finally, and only once, the test set: the accuracy of the model we chose, an honest estimate
# because no choice above looked at it.

# %%
print(f"per-layer pruned and fine-tuned, test accuracy: "
      f"{evaluate(per_layer, data.x_test, data.y_test)['accuracy']:.2%}")

# %% [markdown]
# ## Exercises
#
# 1. Which layer is the most sensitive here? Is it the first one, as the lecture says is
#    common? Repeat the scan with `granularity="channel"` (filters and neurons): do the
#    sensitivities change order?
# 2. Ask `scan.choose` for 90% and 95%. Which layers' ratios change? What is the largest rate
#    the scan can reach at all (every layer at 0.9)?
# 3. The scan prunes one layer at a time, but the final model prunes all of them together.
#    Compare $\sum_i \Delta Acc^i_{r_i}$ with the measured drop of the jointly pruned model
#    before fine-tuning. Are the damages additive?
# 4. Redo the scan on 300 validation images instead of 1,200. How much do the chosen ratios
#    move? (The standard error of an accuracy measured on $n$ images is $\sqrt{p(1-p)/n}$.)
