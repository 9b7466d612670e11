# %% [markdown]
# # 04 · When to prune? Schedules and lottery tickets
#
# *Lecture: "Pruning in more details" → **When to prune?** and **The lottery ticket
# hypothesis**.*
#
# Notebooks 01–03 answered *which* weights, *with what granularity* and *how many*. The last
# question is *when*: a network can be pruned
#
# * **after training, in one shot**: train, prune to the final sparsity, fine-tune (the
#   "train connectivity → prune connections → retrain" pipeline of Han et al. 2015);
# * **iteratively**: several rounds of prune → retrain, each removing the same fraction
#   $p = 1-(1-s)^{1/k}$ of the remaining weights, so that after $k$ rounds the sparsity is
#   exactly $s$: $s_j = 1-(1-s)^{j/k}$;
# * **gradually, during training** (AGP, Zhu & Gupta 2017): every $\Delta t$ optimizer steps the
#   sparsity rises along a cubic curve
#   $$s_t = s_f + (s_i - s_f)\Big(1 - \frac{t - t_0}{n\,\Delta t}\Big)^3,
#   \qquad t\in\{t_0, t_0+\Delta t, \dots, t_0+n\Delta t\},$$
#   fast at first, while many weights are redundant, slowly near the final sparsity $s_f$;
# * **before training**: the lottery ticket hypothesis (Frankle & Carbin 2018) says that a large,
#   randomly initialised network contains a much smaller subnetwork that, *trained in isolation
#   from the same initial weights*, reaches comparable accuracy — a "winning ticket".
#
# We compare the three schedules at the same final sparsity and training budget, then look for
# winning tickets. LeNet-300-100 on the embedded subset trains in a fraction of a second per
# epoch, so everything here runs over several seeds.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.nn import lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import (AGP, Iterative, OneShot, agp_sparsity, iterative_sparsities,
                             lottery_ticket, validation_split)
from tinyprune.viz import plot_accuracy_vs, plot_lottery

data = load_dataset("fashion-mnist-small", normalize=True)
x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, 0.2, rng=0)
steps = -(-len(x_tr) // 64)  # optimizer steps per epoch at batch size 64
print(f"train {x_tr.shape}, validation {x_val.shape}; {steps} steps per epoch")

# %% [markdown]
# ## 1. Three schedules, one sparsity curve each
#
# Fine-tuning budget: 3 epochs for every schedule. One-shot prunes everything at step 0;
# iterative prunes in 3 rounds, one per epoch; AGP prunes $n = 10$ times over the first two
# epochs and uses the third to recover.

# %%
E, s_f = 3, 0.95
t = np.arange(E * steps + 1)
dt = 2 * steps // 10
curves = {
    "one-shot": np.full(t.shape, s_f),
    "iterative (3 rounds)": np.array(iterative_sparsities(s_f, 3))[np.minimum(t // steps, 2)],
    "AGP (n = 10)": np.array([agp_sparsity(int(i), 0.0, s_f, 0, 10, dt) for i in t]),
}
fig, ax = plt.subplots(figsize=(6, 3))
for label, s in curves.items():
    ax.step(t, s, where="post", label=label)
ax.set_xlabel("optimizer step")
ax.set_ylabel("sparsity of every layer")
ax.legend()
plt.show()
print("iterative sparsities after each round:", np.round(iterative_sparsities(s_f, 3), 4))

# %% [markdown]
# ## 2. The same final sparsity, three schedules
#
# Each seed trains a dense LeNet-300-100 for two epochs, then each schedule prunes all three
# layers (magnitude, per layer) to the final sparsity within 3 epochs of fine-tuning. Bands:
# mean ± standard deviation over 2 seeds (exercise: more seeds, more sparsities).

# %%
def schedule(name, target):
    layers = ["fc1.weight", "fc2.weight", "fc3.weight"]
    if name == "one-shot":
        return OneShot(target, targets=layers)
    if name == "iterative":
        return Iterative(target, rounds=3, epochs_per_round=1, targets=layers)
    return AGP(target, n=10, dt=dt, targets=layers)

names = ["one-shot", "iterative", "AGP"]
sparsities = [0.9, 0.98]
seeds = [0, 1]
acc = {n: np.zeros((len(seeds), len(sparsities))) for n in names}
dense_acc = []
for i, seed in enumerate(seeds):
    dense = lenet_300_100(seed=seed)
    fit(dense, x_tr, y_tr, optimizer=SGD(dense.params, lr=0.05, momentum=0.9), epochs=2,
        rng=seed, progress=False)
    dense_acc.append(evaluate(dense, x_val, y_val)["accuracy"])
    for name in names:
        for j, s in enumerate(sparsities):
            m = dense.copy()
            fit(m, x_tr, y_tr, optimizer=SGD(m.params, lr=0.01, momentum=0.9), epochs=E,
                rng=seed + 10, callbacks=[schedule(name, s)], progress=False)
            acc[name][i, j] = evaluate(m, x_val, y_val)["accuracy"]

fig = plot_accuracy_vs(sparsities, acc, xlabel="final sparsity of every layer",
                       baseline=float(np.mean(dense_acc)), ylabel="validation accuracy")
plt.show()
for name in names:
    print(f"{name:9s}", "  ".join(f"s={s:.2f}: {a:.2%} ± {e:.2%}" for s, a, e in
                                  zip(sparsities, acc[name].mean(0), acc[name].std(0))))

# %% [markdown]
# With this tiny budget the schedules are close at moderate sparsity; the gradual ones tend to
# pull ahead as the sparsity gets extreme, where removing 98% of the weights at once destroys
# more than the fine-tuning can repair. Compare the gaps with the seed-to-seed spread before
# concluding anything. (The dotted "dense" line is the network after its two epochs; the pruned
# networks trained three epochs more, so finishing above it says more about the short training
# than about pruning.)
#
# ## 3. Lottery tickets
#
# Iterative magnitude pruning **with reset** (Frankle & Carbin 2018):
#
# 1. randomly initialise the network, weights $\theta_0$;
# 2. train it; prune a fraction $p$ of the remaining weights of each layer, giving a mask $m$
#    (the paper prunes 20% per round, 10% for the output layer; to reach small tickets in six
#    short rounds we prune 30% and 15%);
# 3. **reset** the surviving weights to their initial values, $m \odot \theta_0$, and train again;
#    repeat from step 2.
#
# Two controls use the same sparsity: the same mask with a *fresh* random initialisation
# ("random re-init"), and a *random* mask of the same per-layer sparsity from $\theta_0$
# ("random mask"). A winning ticket beats both: what matters is the mask **and** its initial
# weights. Accuracies are test accuracies at the early-stopping iteration chosen on the
# validation split.

# %%
rates = {"fc1.weight": 0.3, "fc2.weight": 0.3, "fc3.weight": 0.15}
res = lottery_ticket(lenet_300_100(seed=0), x_tr, y_tr, x_val, y_val, data.x_test, data.y_test,
                     rounds=6, epochs=1, seed=0, rates=rates, eval_every=20,
                     controls=("reinit", "random"))
print(res.format())
fig = plot_lottery(res)
plt.show()

# %% [markdown]
# Reading the table: `remaining` is the fraction of weights kept, `ticket` the winning ticket's
# test accuracy, `reinit`/`random` the controls, `jaccard` the overlap of the kept weights with
# the previous round. In the paper (full MNIST, many more epochs) tickets with 10–20% of the
# weights train faster and reach a *higher* accuracy than the dense network; here, with one
# epoch on 4,800 images per training run, look at whether the ticket stays above its controls
# as the network shrinks (one seed: differences of a point or two are noise).
#
# ## Exercises
#
# 1. Change the AGP schedule: prune over the first epoch only (`dt = steps // 10`) and fine-tune
#    for two. Does recovery time matter more than gradualness?
# 2. Iterative pruning with Han's threshold: `Iterative(quality=1.0, rounds=3, ...)` prunes
#    $|w| < q\,\sigma(w)$ each round. What sparsity does it reach?
# 3. Rerun the lottery experiment with `rewind_iter=50` (reset to the weights after 50 training
#    steps instead of $\theta_0$, "late resetting"). Does the ticket improve at the smallest
#    sizes?
# 4. Why must the early-stopping iteration be chosen on the validation split and not on the
#    test set?
