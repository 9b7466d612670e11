# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 5: k-means weight sharing
#
# Deep Compression (Han et al.) stores each layer's weights as a small **codebook** of $k$ shared
# values (centroids) plus, per weight, the index of its centroid: $\log_2 k$ bits instead of 32.
# The centroids come from k-means on the layer's weights, alternating two steps until they stop
# moving:
#
# 1. **assign** every weight to its nearest centroid: $\ell = \arg\min_k (w - c_k)^2$;
# 2. **update** every centroid to the mean of the weights assigned to it.
#
# After pruning, only the **kept** weights are clustered: the pruned zeros stay exactly 0 (they
# are not stored at all), so they must not pull the centroids towards 0. A cluster that ends up
# with no kept weight keeps its previous centroid (the mean of nothing is undefined).

# %%
import numpy as np

# %% [markdown]
# **Question 1.** Write `kmeans_assign(w, centroids)`: `w` a weight array of any shape,
# `centroids` of shape `(k,)`. Return int64 labels of `w`'s shape, the index of the nearest
# centroid (the lowest index on ties). Use broadcasting, not a loop over the weights.

# %% assignment="kmeans_assign"
def kmeans_assign(w, centroids):
    """int64 labels of w's shape: argmin_k (w - centroids[k])^2, the lowest k on ties."""
    # BEGIN SOLUTION
    distances = (w[..., None].astype(np.float64) - centroids) ** 2  # (*w.shape, k)
    return np.argmin(distances, axis=-1).astype(np.int64)
    # END SOLUTION


# %% tags=["check"]
# Try it: three centroids; 0.3 is nearer to 0.5 than to -0.5.
w = np.array([[0.3, -0.9, 1.6], [0.0, -0.2, 2.4]], dtype=np.float32)
print(kmeans_assign(w, np.array([-0.5, 0.5, 2.0])))

from tinyprune.grading.notebook import check
check("kmeans_assign")

# %% [markdown]
# **Question 2.** Write `kmeans_update(w, mask, labels, centroids)`: `mask` (bool, `w`'s shape)
# is True for the kept weights, `labels` (int, `w`'s shape) labels every weight, pruned ones too.
# Return the new float64 centroids of shape `(k,)`: centroid $k$ is the mean of the kept weights
# labelled $k$; a cluster without kept weights keeps `centroids[k]`. Hint: `np.bincount` with
# `weights=` sums per cluster.

# %% assignment="kmeans_update"
def kmeans_update(w, mask, labels, centroids):
    """(k,) float64: the mean of the kept weights of each cluster (empty clusters unchanged)."""
    # BEGIN SOLUTION
    k = centroids.shape[0]
    values, lab = w[mask].astype(np.float64), labels[mask]
    sums = np.bincount(lab, weights=values, minlength=k)
    counts = np.bincount(lab, minlength=k)
    new = np.array(centroids, dtype=np.float64)  # a copy: empty clusters keep their centroid
    filled = counts > 0
    new[filled] = sums[filled] / counts[filled]
    return new
    # END SOLUTION


# %% tags=["check"]
# Try it: cluster 1 is the mean of 0.2 and 0.4; the pruned zeros do not count; cluster 2 is empty.
w = np.array([[0.2, 0.0, -0.6], [0.4, 0.0, -0.8]], dtype=np.float32)
mask = w != 0
labels = np.array([[1, 1, 0], [1, 1, 0]])
print(kmeans_update(w, mask, labels, np.array([-0.5, 0.5, 2.0])))

from tinyprune.grading.notebook import check
check("kmeans_update")

# %% [markdown]
# **Think about it.** Run the two steps in a loop from linearly spaced initial centroids
# (`np.linspace(w.min(), w.max(), k)`, as Han et al. recommend). How many iterations until the
# labels stop changing? How many bits per weight does a 16-entry codebook need?
