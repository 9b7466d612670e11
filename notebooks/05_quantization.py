# %% [markdown]
# # Quantization: fewer bits for every weight
#
# Pruning removes weights; quantization keeps all of them but stores each with fewer bits. This
# notebook covers the two families the lecture names:
#
# 1. **uniform affine quantization** (Jacob et al., CVPR 2018): a real value is an integer on an
#    evenly spaced grid, `r = S (q - Z)`. We look at the grid per tensor and per output channel,
#    at how activation ranges are estimated (*observers*), at post-training quantization (PTQ)
#    against quantization-aware training (QAT) with the straight-through estimator, and at a
#    network that runs on integers only;
# 2. **k-means weight sharing** (Han, Mao & Dally, ICLR 2016): the grid is not uniform but
#    learned, `2^b` centroids per layer, and each weight stores only the index of its centroid.
#
# Everything runs on LeNet-300-100 and the Fashion-MNIST subset shipped with tinyprune, in well
# under a minute on a laptop CPU.

# %%
import matplotlib.pyplot as plt
import numpy as np

from tinyprune.datasets import load_dataset
from tinyprune.nn import lenet_300_100
from tinyprune.nn.optim import SGD, Adam
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import prune_weight
from tinyprune.quantize import (
    EMAMinMaxObserver,
    FreezeObservers,
    MinMaxObserver,
    PercentileObserver,
    calibrate,
    cluster_weights,
    convert,
    dequantize,
    fake_quantize,
    fake_quantize_backward,
    fake_quantize_forward,
    init_centroids,
    prepare_qat,
    qparams_from_range,
    qrange,
    quantize,
    reconstruct,
    share_weights,
)
from tinyprune.viz import plot_accuracy_vs, plot_weight_histogram

data = load_dataset("fashion-mnist-small", normalize=True)


def accuracy(model):
    return evaluate(model, data.x_test, data.y_test)["accuracy"]


net = lenet_300_100(seed=0)
fit(net, data.x_train, data.y_train, optimizer=SGD(net.params, lr=0.02, momentum=0.9),
    epochs=8, rng=0, progress=False)
base = accuracy(net)
print(f"float32 LeNet-300-100: {net.num_parameters():,} parameters, test accuracy {base:.2%}")

# %% [markdown]
# ## Uniform affine quantization: `r = S (q - Z)`
#
# A `b`-bit integer `q` takes `2^b` values `q_min..q_max` (signed 8-bit: `-128..127`). The real
# range `[r_min, r_max]` is mapped onto them by a **scale** `S` (the step of the grid) and a
# **zero point** `Z` (the integer that stands for the real 0, so that 0 — padding, a ReLU's
# output, a pruned weight — is represented exactly):
#
# $$S = \frac{r_{max} - r_{min}}{q_{max} - q_{min}}, \qquad
#   Z = q_{min} - \mathrm{round}(r_{min} / S), \qquad
#   q = \mathrm{clamp}(\mathrm{round}(r / S) + Z,\ q_{min},\ q_{max}), \qquad
#   \hat r = S\,(q - Z).$$
#
# The **symmetric** variant fixes `Z = 0` and uses `S = max(|r_min|, |r_max|) / ((q_max - q_min)/2)`:
# one grid point is wasted when the range is lopsided, but the integer products need no zero-point
# corrections — the usual choice for weights. Inside the range the rounding error is at most
# `S / 2`.

# %%
r = np.array([-1.0, -0.31, 0.0, 0.24, 0.5, 1.5], dtype=np.float32)
for symmetric in (False, True):
    S, Z = qparams_from_range(r.min(), r.max(), bits=4, signed=True, symmetric=symmetric)
    q = quantize(r, S, Z, bits=4, signed=True)
    r_hat = dequantize(q, S, Z, bits=4, signed=True)
    print(f"{'symmetric ' if symmetric else 'asymmetric'}  S = {float(S):.4f}  Z = {int(Z):3d}  "
          f"q = {q.tolist()}  r_hat = {r_hat.astype(float).round(3).tolist()}  "
          f"max |r - r_hat| = {np.abs(r - r_hat).max():.4f} <= S/2 = {float(S) / 2:.4f}")
print("4-bit signed range:", qrange(4, signed=True))

# %% [markdown]
# ## Per tensor or per output channel
#
# One `(S, Z)` for a whole weight matrix has to cover its most extreme row; the rows with small
# weights then use only a few grid points. One `(S, Z)` **per output channel** (per row of a
# Linear weight, per filter of a conv) costs one float per channel and adapts the grid to each
# row. The table shows the mean absolute rounding error of `fc1`'s weights, symmetric signed
# integers.

# %%
w = net.params["fc1.weight"]  # (300, 784)
row_max = np.abs(w).max(axis=1)
print(f"fc1: the largest |w| of a row ranges from {row_max.min():.3f} to {row_max.max():.3f}")
print(f"{'bits':>4} {'per tensor':>12} {'per channel':>12}")
for bits in (8, 4, 3, 2):
    errors = []
    for lo, hi in ((w.min(), w.max()), (w.min(axis=1), w.max(axis=1))):
        S, Z = qparams_from_range(lo, hi, bits=bits, signed=True, symmetric=True)
        errors.append(np.abs(fake_quantize(w, S, Z, bits=bits, signed=True) - w).mean())
    print(f"{bits:>4} {errors[0]:>12.5f} {errors[1]:>12.5f}")

# %% [markdown]
# ## Observers: estimating an activation's range
#
# A weight's range is known; an activation's must be estimated from data. An *observer* sees one
# batch at a time and keeps a running `[min, max]`:
#
# * **min-max**: the smallest and largest value ever seen (one outlier stretches the grid);
# * **EMA**: an exponential moving average of the batch ranges, `m <- m + c (min(x) - m)` (what
#   Jacob et al. use during QAT);
# * **percentile**: per batch the 0.01-th and 99.99-th (here 99.9-th) percentiles, averaged — it
#   clips the rare outliers, trading a large error on them for a finer grid for everything else.
#
# We watch the output of `relu1` on 20 batches of training images and measure the error of
# 4-bit unsigned quantization with each estimated range on the test images.

# %%
def relu1_output(x):
    h = x
    for name, layer in net.layers.items():
        h = layer.forward(h)
        if name == "relu1":
            return h


observers = {"min-max": MinMaxObserver(bits=4, signed=False),
             "EMA (c = 0.1)": EMAMinMaxObserver(bits=4, signed=False, averaging_constant=0.1),
             "percentile 99.9": PercentileObserver(bits=4, signed=False, percentile=99.9)}
for start in range(0, 20 * 64, 64):
    a = relu1_output(data.x_train[start:start + 64])
    for obs in observers.values():
        obs.update(a)
a_test = relu1_output(data.x_test)
for name, obs in observers.items():
    S, Z = obs.qparams()
    err = np.mean((fake_quantize(a_test, S, Z, bits=4, signed=False) - a_test) ** 2)
    print(f"{name:16s} range [{float(obs.min_val):.2f}, {float(obs.max_val):6.2f}]  "
          f"S = {float(S):.3f}  MSE on test activations {err:.5f}")

# %% [markdown]
# ## Post-training quantization and quantization-aware training
#
# `prepare_qat` returns a copy of the network that computes with **fake-quantized** values: every
# weight passes through `S (clamp(round(w/S) + Z) - Z)` (per channel, symmetric) and every ReLU
# output through an 8-bit activation quantizer. The arithmetic is still float, but every number
# the network uses lies on the integer grid it will have at inference.
#
# * **PTQ**: calibrate the activation ranges on a few hundred training images and freeze them.
#   No training.
# * **QAT**: keep training with the quantizers in the loop, so the weights learn to live on the
#   grid. Rounding has zero derivative almost everywhere, so the backward pass uses the
#   **straight-through estimator** (STE): the gradient passes through unchanged where the value
#   was inside the clamping range, and is 0 where it was clamped:

# %%
x = np.linspace(-1.5, 1.5, 7).astype(np.float32)
S, Z = qparams_from_range(-1.0, 1.0, bits=2, signed=True, symmetric=True)
x_hat, inside = fake_quantize_forward(x, S, Z, bits=2, signed=True)
grad = fake_quantize_backward(np.ones_like(x), inside)
print("x         ", x.tolist())
print("x_hat     ", x_hat.astype(float).round(3).tolist())
print("STE dL/dx ", grad.tolist(), "(for dL/dx_hat = 1)")

# %% [markdown]
# Weight bits from 8 down to 2, one scale per tensor or per output channel (activations stay
# 8-bit). For a fair comparison, QAT's extra epoch is also given to the float network
# (`float + 1 epoch`). During QAT the activation ranges follow an EMA for the first 50 steps and
# are then frozen (`FreezeObservers`).

# %%
x_cal = data.x_train[:512]
float_more = net.copy()
fit(float_more, data.x_train, data.y_train, optimizer=SGD(float_more.params, lr=0.005,
    momentum=0.9), epochs=1, rng=1, progress=False)
bit_widths = [8, 4, 3, 2]
curves, qat_models = {}, {}
for per_channel in (True, False):
    scheme = "per channel" if per_channel else "per tensor"
    ptq_acc, qat_acc = [], []
    for bits in bit_widths:
        prepared = prepare_qat(net, bits=bits, per_channel=per_channel)
        ptq_acc.append(accuracy(calibrate(prepared, x_cal)))
        qat = calibrate(prepared, x_cal, freeze=False)
        fit(qat, data.x_train, data.y_train, optimizer=SGD(qat.params, lr=0.005, momentum=0.9),
            epochs=1, rng=1, progress=False, callbacks=[FreezeObservers(after_steps=50)])
        qat_acc.append(accuracy(qat))
        qat_models[bits, per_channel] = qat
    curves[f"PTQ, {scheme}"], curves[f"QAT, {scheme}"] = ptq_acc, qat_acc
print("weight bits      " + "".join(f"{b:>8}" for b in bit_widths))
for label, accs in curves.items():
    print(f"{label:17s}" + "".join(f"{a:>8.1%}" for a in accs))
print(f"float32: {base:.2%}, float + 1 epoch: {accuracy(float_more):.2%}")

# %%
fig = plot_accuracy_vs(bit_widths, curves, xlabel="weight bits (activations 8 bits)",
                      baseline=base)
plt.show()

# %% [markdown]
# ## Integer-only inference
#
# With 8-bit weights and activations the whole forward pass can run on integers (Jacob et al.,
# sec. 2.2-2.4): each layer accumulates `sum q_w (q_in - Z_in) + q_b` in int32, then
# *requantizes* to the next layer's uint8 grid with a fixed-point multiplier
# `M = S_w S_in / S_out = M_0 2^-shift` (an int32 multiplication and a rounding shift) and a clamp
# that is also the ReLU. Only the input (float -> uint8) and the logits (int32 -> float) leave the
# integer world. `convert` builds such a network from the float one and a calibration set; given
# a QAT model it reuses the grids QAT trained with.

# %%
int_net = convert(net, x_cal)
logits_int = int_net.predict(data.x_test)
acc_int = np.mean(logits_int.argmax(axis=1) == data.y_test)
agree = np.mean(logits_int.argmax(axis=1) == net.forward(data.x_test).argmax(axis=1))
fc1 = next(step for step in int_net.steps if hasattr(step, "q_w"))  # the first Linear
print(f"fc1: weights {fc1.q_w.dtype} {fc1.q_w.shape}, bias {fc1.q_b.dtype}, "
      f"M_0 of channel 0 = {fc1.m0[0]}, shift = {fc1.shift[0]}")
print(f"float32 accuracy {base:.2%}, integer-only accuracy {acc_int:.2%}; "
      f"the two agree on {agree:.1%} of the test images")
qat8 = qat_models[8, True]
acc_int_qat = np.mean(convert(qat8, x_cal).predict(data.x_test).argmax(axis=1) == data.y_test)
print(f"8-bit QAT model: fake-quantized {accuracy(qat8):.2%}, integer-only {acc_int_qat:.2%}")

# %% [markdown]
# ## k-means weight sharing
#
# A uniform grid spends as many levels on the empty tails of the weight distribution as on its
# crowded middle. Deep Compression instead **clusters** each layer's weights into `k = 2^b`
# groups with k-means; the layer stores the `k` centroids (a *codebook* of floats) and a `b`-bit
# index per weight. How the centroids start matters (Han et al., sec. 3.1, Fig. 4):
#
# * **linear**: evenly spaced between the smallest and the largest weight;
# * **density**: evenly spaced on the weights' CDF (quantiles) — dense where the weights are;
# * **random** (Forgy): `k` weights drawn at random.
#
# Deep Compression clusters *pruned* weights, whose distribution has two humps with a hole around
# 0 — we prune 80% of `fc2` by magnitude, as the paper's Fig. 4 does. The top panel shows the
# uniform 3-bit grid over these weights, the others the 8 initial centroids of each
# initialisation (dotted) and where k-means takes them (solid). Han et al. prefer *linear*
# because only it gives the rare large weights centroids of their own; the errors printed in the
# titles (mean over all kept weights, and over the 1% largest) show how each start fares here.
# A centroid that starts in the hole ends up with no weights and is dropped, so a layer can end
# with fewer than `2^b` entries.

# %%
w2 = net.params["fc2.weight"]
w2_pruned = w2 * prune_weight(w2, 0.8, criterion="magnitude")
kept = w2_pruned[w2_pruned != 0]
largest = np.abs(w2_pruned) >= np.quantile(np.abs(kept), 0.99)
S, Z = qparams_from_range(kept.min(), kept.max(), bits=3, signed=True, symmetric=True)
q_min, q_max = qrange(3, signed=True)
grid = dequantize(np.arange(q_min, q_max + 1), S, Z, bits=3, signed=True)  # the 8 levels
fig, axes = plt.subplots(4, 1, figsize=(7, 9.5), sharex=True)
plot_weight_histogram(w2_pruned, grid=grid, ax=axes[0])
axes[0].set_title("fc2, 80% pruned: uniform 3-bit grid (per tensor, symmetric)")
for ax, init in zip(axes[1:], ("linear", "density", "random"), strict=True):
    start = init_centroids(kept.astype(np.float64), 8, init, rng=0)
    codebook, indices = cluster_weights(w2_pruned, 3, init=init, rng=0)
    err = np.abs(reconstruct(codebook, indices) - w2_pruned)
    plot_weight_histogram(w2_pruned, centroids=codebook, ax=ax)
    ax.vlines(start, 0, 1, transform=ax.get_xaxis_transform(), color="k", linestyle=":",
              label="initial centroids")
    ax.legend(fontsize="small")
    ax.set_title(f"{init} init: {codebook.size} centroids, mean |w - c| {err[w2_pruned != 0].mean():.4f}"
                 f", on the 1% largest {err[largest].mean():.4f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Centroid fine-tuning
#
# After clustering, the indices stay fixed and the **centroids** are trained: the gradient of a
# centroid is the sum of the gradients of its cluster's weights,
# `dL/dc_k = sum_{i in cluster k} dL/dW_i` (Han et al., sec. 3.3). `share_weights` returns a copy
# whose layers compute with `codebook[indices]`, so ordinary `fit` does it.
#
# Because that gradient is a *sum* over the cluster, its size grows with the cluster: at 2 bits
# a centroid of `fc1` stands for some 59,000 weights, one of `fc3` for a few hundred. A plain SGD
# learning rate that suits ordinary training is then far too large for the big layers (below:
# `lr = 1e-3` throws the 2-bit network towards chance level), and one that is safe for `fc1`
# barely moves `fc3`. Adam divides every step by the running size of its own gradient, so one
# learning rate suits every centroid; we fine-tune with Adam for one epoch.

# %%
shared = share_weights(net, 2, init="linear")
sizes = np.bincount(shared.transforms["fc1.weight"].indices.ravel())
print(f"2 bits: fc1's clusters hold {sizes.min():,} to {sizes.max():,} weights")
before = accuracy(shared)
fit(shared, data.x_train, data.y_train, optimizer=SGD(shared.params, lr=1e-3, momentum=0.9),
    epochs=1, rng=1, progress=False)
print(f"2 bits: shared {before:.2%}, after one epoch of SGD(lr=1e-3): {accuracy(shared):.2%}")

share_bits = [1, 2, 3, 4]
shared_acc, tuned_acc = {}, []
for init in ("linear", "density", "random"):
    models = [share_weights(net, b, init=init, rng=0) for b in share_bits]
    shared_acc[init] = [accuracy(m) for m in models]
    if init == "linear":
        for shared in models:  # centroid fine-tuning of the linear-init codebooks
            fit(shared, data.x_train, data.y_train, optimizer=Adam(shared.params, lr=1e-3),
                epochs=1, rng=1, progress=False)
            tuned_acc.append(accuracy(shared))
print("bits                " + "".join(f"{b:>8}" for b in share_bits))
for init, accs in shared_acc.items():
    print(f"{init + ' init':20s}" + "".join(f"{a:>8.1%}" for a in accs))
print(f"{'linear + fine-tuned':20s}" + "".join(f"{a:>8.1%}" for a in tuned_acc))
codebook = shared.transforms["fc1.weight"].codebook(shared.params["fc1.weight"])
print(f"fc1 at {share_bits[-1]} bits after fine-tuning: {codebook.size} centroids, "
      f"{np.unique(shared.params['fc1.weight']).size} distinct stored values")

# %%
fig = plot_accuracy_vs(share_bits, {**{f"k-means, {k} init": v for k, v in shared_acc.items()},
                                   "linear init + centroid fine-tuning": tuned_acc},
                      xlabel="bits per weight index (2^b centroids per layer)", baseline=base)
plt.show()

# %% [markdown]
# ## What we saw
#
# * Per-channel scales cut the rounding error of `fc1` by a factor of about 1.5 to 3, for one
#   float per output channel.
# * On a skewed activation the percentile observer gives a finer grid, and a smaller error on the
#   test activations, than min-max: clipping a few outliers pays.
# * This small network tolerates per-channel weights down to 2 bits even without training; with
#   one scale per tensor PTQ collapses at 2 bits, and one epoch of QAT brings it back to within
#   about a point of the float network.
# * The integer-only network agrees with the float one on almost every test image, and a QAT
#   model converts to integers without losing anything.
# * k-means weight sharing keeps the accuracy from 3 bits per weight *without* training; on
#   pruned weights the initialisation matters (random can leave one hump with a single
#   centroid). Centroid fine-tuning needs an optimizer that copes with gradients summed over
#   clusters of very different sizes; here it helps most at 1 bit. Notebook 06 turns shared
#   weights into bytes.
