# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 1: magnitude pruning with an exact count
#
# The simplest pruning criterion of the lecture is the **magnitude** of a weight: a weight close
# to zero contributes little to the output, so we remove the weights with the smallest $|w|$.
# A *mask* records the decision: `True` keeps a weight, `False` prunes it, and the pruned layer
# computes with `w * mask`.
#
# Pruning "a fraction `amount` of the weights" must remove an exact number of them, the same
# number every time, whatever ties the weights contain:
#
# * the count is $k = \mathrm{round}(\text{amount} \cdot n)$ with Python's `round` (halves go to
#   the even neighbour: `round(2.5) == 2`);
# * among equal magnitudes, the weight with the **lower flat (row-major) index** is pruned first
#   (a stable sort of $|w|$ does this);
# * the input `w` is not modified.
#
# Run the cells in order. The last cell tries your function and then runs tinyprune's test cases
# on it (the feedback names common mistakes).

# %%
import numpy as np

# %% [markdown]
# **Question 1.** Write `magnitude_mask(w, amount)`: `w` is a weight array of any shape (float32
# or float64), `0 <= amount <= 1`. Return a `bool` array of `w`'s shape, `False` at the
# `round(amount * w.size)` weights of smallest magnitude.

# %% assignment="magnitude_mask"
def magnitude_mask(w, amount):
    """Keep-mask pruning the round(amount * w.size) smallest |w| (lower index first on ties)."""
    # BEGIN SOLUTION
    k = round(amount * w.size)
    order = np.argsort(np.abs(w), axis=None, kind="stable")  # ascending |w|, stable on ties
    keep = np.ones(w.size, dtype=bool)
    keep[order[:k]] = False
    return keep.reshape(w.shape)
    # END SOLUTION


# %% tags=["check"]
# Try it: half of a 2x3 weight is 3 weights; the smallest magnitudes are 0.05, 0.1 and 0.2.
w = np.array([[0.5, -0.1, 0.3], [-0.8, 0.05, 0.2]], dtype=np.float32)
print(magnitude_mask(w, 0.5))

from tinyprune.grading.notebook import check
check("magnitude_mask")

# %% [markdown]
# **Think about it.** Why is `np.abs(w) > threshold` (with the $k$-th smallest magnitude as the
# threshold) not enough? Try it on `np.full((2, 2), 0.5)` with `amount = 0.5`.
