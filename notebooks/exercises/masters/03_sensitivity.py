# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 3: sensitivity analysis, layer by layer
#
# How many weights can each layer lose? The lecture's answer is a **sensitivity analysis**: prune
# one layer at a time at ratios $r = 0, 0.1, \dots, 0.9$ while every other layer stays dense,
# measure the accuracy each time, and plot the degradation
# $\Delta\mathrm{Acc}_i(r) = \mathrm{Acc}_\text{dense} - \mathrm{Acc}(\text{layer } i \text{ pruned to } r)$.
# A threshold $T$ on $\Delta\mathrm{Acc}$ then gives each layer its own pruning ratio: sensitive
# layers get small ratios, robust ones large ratios.
#
# Choosing ratios is a decision about the model, so the accuracies are measured on a
# **validation split**, never on the test set (which must stay unseen until the end).
#
# The model here is a plain multi-layer perceptron `fc1 -> ReLU -> fc2 -> ... -> fcL` whose
# parameters are a dict with PyTorch's names: `params["fc1.weight"]` of shape `(out, in)`,
# `params["fc1.bias"]` of shape `(out,)`, and so on. The cell below computes its accuracy.

# %%
import numpy as np


def mlp_accuracy(params, x, y):
    """Accuracy of the MLP fc1 -> ReLU -> ... -> fcL (logits, argmax) on inputs x (N, D), labels y."""
    n_layers = len(params) // 2
    h = x
    for i in range(1, n_layers + 1):
        h = h @ params[f"fc{i}.weight"].T + params[f"fc{i}.bias"]
        if i < n_layers:
            h = np.maximum(h, 0.0)
    return float(np.mean(h.argmax(axis=1) == y))


# %% [markdown]
# **Question 1.** Write `sensitivity_table(params, val, test, ratios)` returning a float64 array
# `delta` of shape `(L, R)` (`L` layers, `R = len(ratios)`) with
# `delta[i, j] = Acc_dense - Acc(only fc{i+1}.weight pruned to ratios[j])`.
#
# * `val = (x_val, y_val)` and `test = (x_test, y_test)`: use the right one;
# * prune a weight matrix by magnitude: the `round(r * n)` smallest `|w|` become 0 (the lower
#   flat index first on ties, as in exercise 1); biases are not pruned;
# * every other layer stays dense, and `params` must not be modified.

# %% assignment="sensitivity_table"
def sensitivity_table(params, val, test, ratios):
    """(L, R) float64: accuracy lost on the validation split when only fc{i+1} is pruned."""
    # BEGIN SOLUTION
    x_val, y_val = val  # ratios are chosen on the validation split; the test set stays unseen
    base = mlp_accuracy(params, x_val, y_val)
    n_layers = len(params) // 2
    table = np.zeros((n_layers, len(ratios)))
    for i in range(n_layers):
        name = f"fc{i + 1}.weight"
        w = params[name]
        order = np.argsort(np.abs(w), axis=None, kind="stable")
        for j, r in enumerate(ratios):
            k = round(float(r) * w.size)
            keep = np.ones(w.size, dtype=bool)
            keep[order[:k]] = False
            trial = dict(params)  # a new dict: the other layers stay dense, params unchanged
            trial[name] = w * keep.reshape(w.shape)
            table[i, j] = base - mlp_accuracy(trial, x_val, y_val)
    return table
    # END SOLUTION


# %% tags=["check"]
# Try it on a random 3-layer MLP whose labels come from the dense model (so it is 100 % accurate).
rng = np.random.default_rng(0)
sizes = (8, 16, 12, 4)
params = {}
for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
    params[f"fc{i}.weight"] = rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)
    params[f"fc{i}.bias"] = np.zeros(d_out)
x = rng.standard_normal((200, sizes[0]))
h = x
for i in range(1, 4):
    h = h @ params[f"fc{i}.weight"].T + params[f"fc{i}.bias"]
    h = np.maximum(h, 0.0) if i < 3 else h
y = h.argmax(axis=1)
val, test = (x[:100], y[:100]), (x[100:], y[100:])
ratios = np.round(np.arange(10) * 0.1, 1)
print(np.round(sensitivity_table(params, val, test, ratios), 2))

from tinyprune.grading.notebook import check
check("sensitivity_table")

# %% [markdown]
# **Think about it.** With a threshold $T = 0.05$, which ratio would each layer of the demo get
# (the largest $r$ with $\Delta\mathrm{Acc} \le T$)? Which layer is the most sensitive, and why
# might the first or the last layer of a network often be? `tinyprune sensitivity` runs this scan
# on a trained network.
