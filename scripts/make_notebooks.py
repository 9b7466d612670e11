"""Write the teaching notebooks under notebooks/ (then execute them with
``jupyter nbconvert --execute --inplace`` or tests/test_notebooks.py)."""

from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[1]


def md(text):
    return nbf.v4.new_markdown_cell(text.strip())


def code(text):
    return nbf.v4.new_code_cell(text.strip())


def pruning_notebook():
    cells = [
        md("""
# Pruning the lecture's networks with tinyprune

This notebook follows the lecture *Model Compression and Pruning Techniques*: we train a small
network, then ask two of the lecture's questions — **which** weights (the criterion: magnitude and
the L2 norm of a row) and **with what granularity** (single weights, whole neurons, a 2:4
pattern) — and look at accuracy against sparsity, before and after fine-tuning. The third question,
**how many** weights each layer can lose (a per-layer sensitivity analysis), is not covered here
yet: every layer gets the same pruning ratio. Everything runs on the Fashion-MNIST subset that ships
with tinyprune, on a laptop CPU in about a minute. The inputs are standardised
(`normalize=True`), as in notebook 02, the README and the command line.
"""),
        code("""
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.nn import lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import fit, evaluate
from tinyprune.prune import prune_model
from tinyprune.prune.masked import set_masks_
from tinyprune.report import sparsity_report, format_report

data = load_dataset("fashion-mnist-small", normalize=True)
print(data.x_train.shape, data.x_test.shape)
"""),
        md("""
## Train connectivity

LeNet-300-100 (784-300-100-10), two epochs of SGD with momentum.
"""),
        code("""
dense = lenet_300_100(seed=0)
fit(dense, data.x_train, data.y_train, optimizer=SGD(dense.params, lr=0.05, momentum=0.9),
    epochs=2, rng=0, progress=False)
base = evaluate(dense, data.x_test, data.y_test)["accuracy"]
print(f"dense test accuracy: {base:.2%}")
"""),
        md("""
## Prune connections: accuracy against sparsity, by granularity

Magnitude (|W|) for fine-grained pruning, the L2 norm of each row for channel (neuron) pruning,
and 2:4 pattern pruning — no fine-tuning yet, so this is the raw damage of each choice.
"""),
        code("""
layers = ["fc1.weight", "fc2.weight"]
ratios = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
curves = {}
for gran, crit in [("element", "magnitude"), ("channel", "l2")]:
    accs = []
    for r in ratios:
        m = dense.copy()
        if r > 0:
            set_masks_(m, prune_model(m, layers, amount=r, criterion=crit, granularity=gran))
        accs.append(evaluate(m, data.x_test, data.y_test)["accuracy"])
    curves[f"{gran} ({crit})"] = accs

nm = dense.copy()
set_masks_(nm, prune_model(nm, layers, granularity="nm", n_pruned=2, m=4))
nm_acc = evaluate(nm, data.x_test, data.y_test)["accuracy"]

fig, ax = plt.subplots(figsize=(6, 4))
for label, accs in curves.items():
    ax.plot(ratios, accs, marker="o", label=label)
ax.scatter([0.5], [nm_acc], marker="*", s=150, color="k", label="2:4 pattern (n_pruned=2, m=4)")
ax.axhline(base, ls="--", color="gray", lw=1)
ax.set_xlabel("pruning ratio of fc1 and fc2")
ax.set_ylabel("test accuracy (no fine-tuning)")
ax.legend()
fig.tight_layout()
plt.show()
"""),
        md("""
## Retrain: fine-tuning with the mask enforced

Pruning 90% of the weights and fine-tuning for one epoch recovers most of the accuracy (Han et
al., 2015: train, prune, retrain). The pruned weights stay exactly zero during fine-tuning.
"""),
        code("""
m = dense.copy()
set_masks_(m, prune_model(m, ["fc1.weight", "fc2.weight", "fc3.weight"], amount=0.9,
                          criterion="magnitude", granularity="element"))
before = evaluate(m, data.x_test, data.y_test)["accuracy"]
fit(m, data.x_train, data.y_train, optimizer=SGD(m.params, lr=0.02, momentum=0.9), epochs=1,
    rng=1, progress=False)
after = evaluate(m, data.x_test, data.y_test)["accuracy"]
print(f"dense {base:.2%}  pruned 90% {before:.2%}  fine-tuned {after:.2%}")
assert all((m.params[k][~mask] == 0).all() for k, mask in m.masks.items())
print(format_report(sparsity_report(m)))
"""),
    ]
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def criteria_notebook():
    cells = [
        md("""
# Which filters? Criteria, N:M patterns and physical channel removal

The lecture's *pruning criteria*: magnitude as an L<sub>p</sub> norm over a structural set, random
as a baseline, and the two redundancy criteria — similarity (filters close to the geometric median
of their layer, FPGM) and clustering (keep one representative per cluster of similar filters). We
prune the filters of the lecture network's `conv2`, look at 2:4 patterns, then remove pruned
channels for real and time the smaller network.
"""),
        code("""
import time
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.nn import lecture_net
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import fit, evaluate
from tinyprune.prune import prune_model, set_masks_, thin_model

data = load_dataset("fashion-mnist-small", normalize=True)
dense = lecture_net(seed=0)
fit(dense, data.x_train, data.y_train, optimizer=SGD(dense.params, lr=0.02, momentum=0.9),
    epochs=1, batch_size=32, rng=0, progress=False)
base = evaluate(dense, data.x_test, data.y_test)["accuracy"]
print(f"lecture net, one epoch: test accuracy {base:.2%}")
"""),
        md("""
## Filter pruning of `conv2` by criterion (no fine-tuning)
"""),
        code("""
criteria = ["l1", "l2", "linf", "geometric_median", "cluster", "random"]
ratios = [0.25, 0.5, 0.75, 0.9]
results = {}
for crit in criteria:
    accs = []
    for r in ratios:
        m = dense.copy()
        set_masks_(m, prune_model(m, ["conv2"], amount=r, criterion=crit,
                                  granularity="channel", rng=0))
        accs.append(evaluate(m, data.x_test, data.y_test)["accuracy"])
    results[crit] = accs

fig, ax = plt.subplots(figsize=(6, 4))
for crit, accs in results.items():
    ax.plot(ratios, accs, marker="o", label=crit)
ax.axhline(base, ls="--", color="gray", lw=1)
ax.set_xlabel("fraction of conv2 filters pruned")
ax.set_ylabel("test accuracy (no fine-tuning)")
ax.legend()
fig.tight_layout()
plt.show()
"""),
        md("""
How large is the noise? Each point is an accuracy measured on the same 1,000 test images; the
binomial standard error of an accuracy $p$ measured on $n$ images is $\\sqrt{p(1-p)/n}$, about
1.3 points at $p = 0.8$ and $n = 1000$ (printed below for this network). Curves that differ by 1-2
points are within that noise; only larger gaps, or gaps that persist across seeds of the training
run, say that one criterion is better than another here.
"""),
        code("""
n = len(data.y_test)
for p in (base, 0.8, 0.5):
    print(f"accuracy {p:.2%} on {n} images: standard error {np.sqrt(p * (1 - p) / n):.2%}")
"""),
        md("""
## A 2:4 pattern

In every run of 4 consecutive weights along the input dimension, 2 are pruned (`n_pruned=2, m=4`):
50% sparsity in a pattern hardware can exploit. Here are the first 16 rows x 32 inputs of `fc1`'s
mask (white = kept).
"""),
        code("""
m = dense.copy()
masks = prune_model(m, ["fc1"], granularity="nm", n_pruned=2, m=4)
fig, ax = plt.subplots(figsize=(6, 3))
ax.imshow(masks["fc1.weight"][:16, :32], cmap="gray", interpolation="nearest")
ax.set_xticks(np.arange(-0.5, 32, 4), minor=False, labels=[])
ax.grid(axis="x", color="red", lw=1)
ax.set_title("fc1 mask, 2:4 (red lines: groups of m=4)")
plt.show()
set_masks_(m, masks)
print(f"2:4 on fc1 without fine-tuning: {evaluate(m, data.x_test, data.y_test)['accuracy']:.2%}")
"""),
        md("""
## Remove the pruned channels for real

Half of the channels of `conv1`, `conv2` and `fc1` are pruned (L1 norm, biases masked too), the
network is fine-tuned for one epoch with the masks enforced, and then `thin_model` slices the
pruned filters away together with the matching inputs of the next layer — including the
`conv2 -> flatten -> fc1` mapping (64 x 12 x 12 = 9216 inputs become 32 x 12 x 12 = 4608).
"""),
        code("""
m = dense.copy()
set_masks_(m, prune_model(m, ["conv1", "conv2", "fc1"], amount=0.5, granularity="channel"))
fit(m, data.x_train, data.y_train, optimizer=SGD(m.params, lr=0.02, momentum=0.9), epochs=1,
    batch_size=32, rng=1, progress=False)
thin, kept = thin_model(m)
x = data.x_test[:256]
assert np.allclose(thin.forward(x), m.forward(x), atol=1e-4)
print(thin.summary())

def median_ms(model, reps=7):
    model.forward(x)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); model.forward(x); times.append(time.perf_counter() - t0)
    return 1e3 * np.median(times)

acc_masked = evaluate(m, data.x_test, data.y_test)["accuracy"]
acc_thin = evaluate(thin, data.x_test, data.y_test)["accuracy"]
t_dense, t_thin = median_ms(m), median_ms(thin)
macs_dense, macs_thin = sum(m.macs().values()), sum(thin.macs().values())
print(f"accuracy masked {acc_masked:.2%} = thin {acc_thin:.2%}")
print(f"inference of 256 images: dense {t_dense:.1f} ms, thin {t_thin:.1f} ms "
      f"({t_dense / t_thin:.2f}x faster; {macs_dense / macs_thin:.2f}x fewer MACs)")

fig, ax = plt.subplots(1, 2, figsize=(8, 3))
ax[0].bar(["dense", "thin"], [m.num_parameters(), thin.num_parameters()])
ax[0].set_title("parameters")
ax[1].bar(["dense", "thin"], [t_dense, t_thin])
ax[1].set_title("ms per 256 images")
fig.tight_layout()
plt.show()
"""),
        md("""
## The engine's reference path

Everything above ran on the engine's fast path (chunked, channels-last kernels; a convolution
fused with the max-pool that follows it). `model.fast = False` switches to the reference path:
every layer, in the listed order, runs the formula of the slides from `tinyprune.nn.functional`,
for instance a convolution is `im2col(x) @ W.reshape(C_out, -1).T + b`. Both give the same logits
up to float rounding; the reference is the one to read and to step through, the fast one the one
to train with.
"""),
        code("""
from tinyprune.nn.functional import conv2d_forward
from tinyprune.nn.im2col import im2col

conv1 = thin["conv1"]
w, b = conv1.params["weight"], conv1.params["bias"]
cols = im2col(x[:2], (3, 3), stride=1, padding=0)          # (2*26*26, 1*3*3)
by_hand = (cols @ w.reshape(w.shape[0], -1).T + b).reshape(2, 26, 26, -1).transpose(0, 3, 1, 2)
out, _ = conv2d_forward(x[:2], w, b)                        # the reference kernel
print("conv1 by hand == reference kernel:", np.allclose(by_hand, out, atol=1e-6))

ref = thin.copy()
ref.fast = False
print("max |fast - reference| logits:", float(np.abs(thin.forward(x) - ref.forward(x)).max()))
print(f"256 images: fast {median_ms(thin):.1f} ms, reference {median_ms(ref):.1f} ms")
"""),
    ]
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def ratios_and_schedules_notebook():
    cells = [
        md("""
# How many weights, and when? Sensitivity analysis, pruning schedules, lottery tickets

The lecture's sections *Finding pruning ratios* and *When to prune?*, on the embedded
Fashion-MNIST subset (about a minute on a laptop CPU).

1. **Sensitivity analysis**: prune one layer at a time at ratios r = 0, 0.1, ..., 0.9 and record
   the accuracy drop; pick a threshold T and give each layer the largest ratio whose drop is at
   most T, with T chosen so that the whole network reaches a target pruning rate.
2. **Schedules**: one-shot (prune, then fine-tune) against automated gradual pruning (Zhu & Gupta
   2017), which raises the sparsity along a cubic curve while training.
3. **Lottery tickets** (Frankle & Carbin 2018): train, prune 20% of what remains, *reset* the
   survivors to their initial values and retrain; compare with the same masks and a fresh
   initialisation.

Every choice is made on a **validation split** carved from the training images, never on the
test set: the test accuracy must stay an honest estimate of the final model.
"""),
        code("""
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.nn import lecture_net, lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import (AGP, OneShot, apply_ratios, format_sensitivity, lottery_ticket,
                             sensitivity_scan, validation_split)
from tinyprune.viz import plot_sensitivity
from tinyprune.prune.masked import set_masks_

data = load_dataset("fashion-mnist-small", normalize=True)
x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, 0.2, rng=0)
print("train", x_tr.shape, "validation", x_val.shape, "test", data.x_test.shape)
"""),
        md("""
## 1. Sensitivity analysis of the lecture's network

The lecture net is trained for one epoch (with a progress bar), then each of its four layers is
pruned alone by L1 magnitude. The scan reuses the activations below the pruned layer, so the
40 evaluations take seconds.
"""),
        code("""
net = lecture_net(seed=0)
fit(net, x_tr, y_tr, optimizer=SGD(net.params, lr=0.02, momentum=0.9), epochs=1,
    batch_size=32, rng=0)
print(f"validation accuracy: {evaluate(net, x_val, y_val)['accuracy']:.2%}")
scan = sensitivity_scan(net, x_val[:600], y_val[:600])
chosen = scan.choose(0.8)  # the smallest T that prunes 80% of all weights
print(format_sensitivity(chosen))
fig = plot_sensitivity(chosen)
plt.show()
"""),
        code("""
pruned = net.copy()
set_masks_(pruned, apply_ratios(pruned, chosen.chosen))  # {layer: ratio}
kept = sum(int(m.sum()) for m in pruned.masks.values())
total = sum(m.size for m in pruned.masks.values())
print(f"weights kept: {kept:,} of {total:,} ({kept / total:.1%})")
print(f"validation accuracy after pruning, before fine-tuning: "
      f"{evaluate(pruned, x_val, y_val)['accuracy']:.2%}")
"""),
        md("""
## 2. One-shot against gradual pruning (AGP)

LeNet-300-100 is trained for two epochs, then pruned to 90% in every layer in two ways, with the
same number of fine-tuning steps: one-shot at the start, or AGP, which prunes every `dt` steps
along s_t = s_f + (s_i - s_f)(1 - (t - t0) / (n dt))^3.
"""),
        code("""
dense = lenet_300_100(seed=0)
fit(dense, x_tr, y_tr, optimizer=SGD(dense.params, lr=0.05, momentum=0.9), epochs=2, rng=0,
    progress=False)
layers = ["fc1.weight", "fc2.weight", "fc3.weight"]
steps = -(-x_tr.shape[0] // 64)  # steps per epoch at batch size 64
results = {}
for name, schedule in [("one-shot", OneShot(0.9, targets=layers)),
                       ("AGP", AGP(0.9, n=10, dt=steps // 10, targets=layers))]:
    m = dense.copy()
    fit(m, x_tr, y_tr, optimizer=SGD(m.params, lr=0.005, momentum=0.9), epochs=2, rng=1,
        callbacks=[schedule], progress=False)
    results[name] = evaluate(m, x_val, y_val)["accuracy"]
    print(f"{name:9s} validation accuracy at 90% sparsity: {results[name]:.2%}")

agp = AGP(0.9, n=10, dt=steps // 10, targets=layers)
t = np.arange(0, 2 * steps)
plt.figure(figsize=(5, 3))
plt.plot(t, [agp.sparsity_at(int(i)) for i in t])
plt.xlabel("optimizer step"); plt.ylabel("target sparsity"); plt.title("AGP schedule")
plt.show()
"""),
        md("""
## 3. Lottery tickets

Three rounds of iterative magnitude pruning (20% of the remaining weights per round, 10% for the
output layer), each followed by a *reset* of the survivors to their initial values; the control
keeps the same masks but draws a new initialisation.
"""),
        code("""
res = lottery_ticket(lenet_300_100(seed=0), x_tr, y_tr, x_val, y_val, data.x_test, data.y_test,
                     rounds=3, epochs=1, seed=0, controls=("reinit",))
print(res.format())
"""),
    ]
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def _notebook(cells):
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def low_rank_notebook():
    return _notebook([
        md("""
# Low-rank factorization: a weight matrix replaced by its truncated SVD

The lecture's slide *What is low-rank factorization?*: a dense layer's weight W (out x in) is
approximated by U_r Σ_r V_r^T, the best rank-r approximation (Eckart-Young), and the layer becomes
two thinner layers, in -> r and r -> out, with r (in + out) weights instead of in x out. Here:
the singular-value spectrum of the lecture net's `fc1` and its energy curve, accuracy against
rank, rank selection by sensitivity, fine-tuning, and the measured speed of the factorized layer.
Embedded Fashion-MNIST subset, about a minute on a laptop CPU.
"""),
        code("""
import time
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.lowrank import (energy_curve, energy_rank, factorize_model, rank_sensitivity_scan,
                               singular_values)
from tinyprune.nn import lecture_net
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import validation_split

data = load_dataset("fashion-mnist-small", normalize=True)
x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, 0.2, rng=0)
net = lecture_net(seed=0)
fit(net, x_tr, y_tr, optimizer=SGD(net.params, lr=0.02, momentum=0.9), epochs=1,
    batch_size=32, rng=0)
print(f"dense validation accuracy: {evaluate(net, x_val, y_val)['accuracy']:.2%}")
"""),
        md("""
## The spectrum of fc1 (128 x 9216) and its energy curve

The kept energy of rank r is the share of the squared singular values it keeps,
sum_{k<=r} σ_k² / sum_k σ_k².
"""),
        code("""
s = singular_values(net["fc1"].params["weight"])
energy = energy_curve(s)
fig, ax = plt.subplots(1, 2, figsize=(9, 3))
ax[0].semilogy(np.arange(1, s.size + 1), s); ax[0].set_xlabel("k"); ax[0].set_title("σ_k of fc1")
ax[1].plot(np.arange(1, s.size + 1), energy); ax[1].set_xlabel("rank r")
ax[1].set_title("kept energy"); ax[1].axhline(0.9, color="gray", ls=":")
plt.show()
for e in (0.5, 0.9, 0.99):
    print(f"energy {e:.0%}: rank {energy_rank(s, e)} of {s.size}")
"""),
        md("""
## Accuracy against rank, and rank selection by sensitivity

Each layer is factorized alone at each rank and evaluated on the validation split (never the test
set); with a threshold T on the accuracy drop, each layer gets the smallest rank within T.
"""),
        code("""
ranks = [2, 5, 10, 25, 50, 100]
scan = rank_sensitivity_scan(net, x_val[:600], y_val[:600], ["fc1", "conv2"], ranks)
plt.figure(figsize=(5, 3))
for i, name in enumerate(scan.layers):
    plt.plot(ranks, scan.accuracy[i], "o-", label=name)
plt.axhline(scan.baseline - 0.01, color="gray", ls=":", label="T = 1 point")
plt.xscale("log"); plt.xlabel("rank"); plt.ylabel("validation accuracy"); plt.legend()
plt.show()
chosen = scan.ranks_for_threshold(0.01)
print("ranks within 1 point:", chosen)
"""),
        md("""
## Fine-tune the factorized network, and measure fc1's speed

The factors start from the SVD, so a short fine-tuning recovers most of what the truncation
lost. The speed of fc1 is measured, not estimated: dense against the two factors.
"""),
        code("""
small = factorize_model(net, {"fc1": chosen.get("fc1", 25)})
print(f"parameters: {net.num_parameters():,} -> {small.num_parameters():,}")
print(f"before fine-tuning: {evaluate(small, x_val, y_val)['accuracy']:.2%}")
fit(small, x_tr, y_tr, optimizer=SGD(small.params, lr=0.01, momentum=0.9), epochs=1,
    batch_size=32, rng=1, progress=False)
print(f"after 1 epoch:      {evaluate(small, x_val, y_val)['accuracy']:.2%}")

h = np.random.default_rng(0).standard_normal((256, 9216)).astype(np.float32)
def ms(f, reps=20):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return 1e3 * min(ts)
t_dense = ms(lambda: net["fc1"].forward(h))
t_low = ms(lambda: small["fc1_u"].forward(small["fc1_v"].forward(h)))
r = small["fc1_v"].out_features
print(f"fc1 on 256 inputs: dense {t_dense:.2f} ms, rank {r}: {t_low:.2f} ms "
      f"({t_dense / t_low:.1f}x faster for {9216 * 128 / (r * (9216 + 128)):.1f}x fewer MACs)")
"""),
    ])


def distillation_notebook():
    return _notebook([
        md("""
# Knowledge distillation: a small student learns from a large teacher's soft targets

Hinton, Vinyals & Dean (2015): a softmax with temperature T, softmax(z / T), spreads the teacher's
probability over the wrong classes, and those "dark knowledge" ratios tell the student which
classes look alike. The student minimises
α T² KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - α) CE(z_s, y); the T² keeps the soft term's
gradients on the same scale as the hard term's when T changes. Embedded Fashion-MNIST subset,
about a minute on a laptop CPU.
"""),
        code("""
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.distill import compute_teacher_logits, distill, softmax_with_temperature
from tinyprune.nn import Flatten, Linear, ReLU, Sequential, lecture_net
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit

data = load_dataset("fashion-mnist-small", normalize=True)
teacher = lecture_net(seed=0)
fit(teacher, data.x_train, data.y_train, optimizer=SGD(teacher.params, lr=0.02, momentum=0.9),
    epochs=2, batch_size=32, rng=0)
print(f"teacher test accuracy: {evaluate(teacher, data.x_test, data.y_test)['accuracy']:.2%}")
"""),
        md("""
## Soft targets at several temperatures

The teacher's probabilities for one test image: at T = 1 almost all of the mass sits on one class;
higher temperatures reveal how the teacher ranks the others.
"""),
        code("""
logits = compute_teacher_logits(teacher, data.x_test[:1])
fig, ax = plt.subplots(1, 4, figsize=(12, 2.5), sharey=True)
for a, t in zip(ax, [1, 2, 4, 10]):
    a.bar(np.arange(10), softmax_with_temperature(logits, t)[0])
    a.set_title(f"T = {t}"); a.set_xticks(range(10))
plt.show()
"""),
        md("""
## A student with and without distillation

A narrow MLP (784-32-10) trained on the labels alone, and the same initial student trained with
the distillation loss (T = 4, α = 0.9), for the same epochs. One seed on 1,000 test images: a
difference of a point is within the noise (the experiment `distillation_gap` uses 3 seeds and the
full dataset).
"""),
        code("""
def student(seed):
    rng = np.random.default_rng(seed)
    return Sequential([("flatten", Flatten()), ("fc1", Linear(784, 32, rng=rng)),
                       ("relu1", ReLU()), ("fc2", Linear(32, 10, rng=rng))],
                      input_shape=(1, 28, 28), name="student")

plain, kd = student(1), student(1)
fit(plain, data.x_train, data.y_train, optimizer=SGD(plain.params, lr=0.05, momentum=0.9),
    epochs=3, rng=2, progress=False)
distill(kd, teacher, data.x_train, data.y_train, temperature=4.0, alpha=0.9,
        optimizer=SGD(kd.params, lr=0.05, momentum=0.9), epochs=3, rng=2, progress=False)
for name, m in [("labels only", plain), ("distilled", kd)]:
    print(f"{name:12s} test accuracy: {evaluate(m, data.x_test, data.y_test)['accuracy']:.2%}")
"""),
    ])


if __name__ == "__main__":
    import sys

    (ROOT / "notebooks").mkdir(exist_ok=True)
    for name, make in (("01_pruning_granularity.ipynb", pruning_notebook),
                       ("02_criteria_and_thinning.ipynb", criteria_notebook),
                       ("03_ratios_and_schedules.ipynb", ratios_and_schedules_notebook),
                       ("04_low_rank.ipynb", low_rank_notebook),
                       ("05_distillation.ipynb", distillation_notebook)):
        nb = make()
        if "--execute" in sys.argv:  # store outputs (figures) so the notebook reads well as is
            from nbclient import NotebookClient

            NotebookClient(nb, timeout=600, kernel_name="python3").execute()
        nbf.write(nb, ROOT / "notebooks" / name)
        print("wrote", ROOT / "notebooks" / name)
