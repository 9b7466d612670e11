# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 2: N:M semi-structured sparsity
#
# Fine-grained pruning leaves zeros anywhere, which dense hardware cannot skip. An **N:M
# pattern** is a compromise the lecture shows with NVIDIA's 2:4 sparsity: in every group of `m`
# consecutive weights along the input dimension, exactly `n_pruned` are zero. Hardware can then
# store the kept values plus small indices and skip the zeros.
#
# Conventions here (the same as `tinyprune.prune.nm`):
#
# * the groups run along the rows of `w.reshape(out, -1)`: `w[o, g*m:(g+1)*m]` for a Linear
#   weight `(out, in)`; a conv filter `w[o]` of shape `(C_in, KH, KW)` is flattened in that
#   order (`w[o].ravel()`);
# * `n_pruned` counts the **pruned** weights of each group (2:4 with `n_pruned=2, m=4`);
# * within a group the smallest `|w|` are pruned, the lower index first on ties;
# * the row length is a multiple of `m`; `w` is not modified.

# %%
import numpy as np

# %% [markdown]
# **Question 1.** Write `nm_mask(w, n_pruned, m)` returning a `bool` keep-mask of `w`'s shape.
# Hint: reshape the rows into groups of shape `(out, groups, m)` and sort along the last axis.

# %% assignment="nm_mask"
def nm_mask(w, n_pruned, m):
    """Keep-mask pruning the n_pruned smallest |w| in every m consecutive weights of each row."""
    # BEGIN SOLUTION
    rows = w.reshape(w.shape[0], -1)
    groups = np.abs(rows).reshape(rows.shape[0], -1, m)  # (out, groups, m)
    order = np.argsort(groups, axis=-1, kind="stable")
    keep = np.ones(groups.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :n_pruned], False, axis=-1)
    return keep.reshape(w.shape)
    # END SOLUTION


# %% tags=["check"]
# Try it: 2:4 on one row of 8 weights prunes 2 in each half.
w = np.array([[0.9, -0.1, 0.4, -0.3, 0.2, 0.8, -0.7, 0.05]], dtype=np.float32)
print(nm_mask(w, 2, 4).astype(int))

from tinyprune.grading.notebook import check
check("nm_mask")

# %% [markdown]
# **Think about it.** What fraction of the weights does 2:4 remove? And 1:4 (`n_pruned=1`)?
# Why must the groups run along the input dimension for a matrix-multiply unit to use them?
