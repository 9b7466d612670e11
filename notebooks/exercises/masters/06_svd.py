# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 6: low-rank factorization by truncated SVD
#
# A fully connected layer's weight $W$ (shape `(out, in)`) often has most of its "energy" in a
# few directions. The singular value decomposition $W = U \,\mathrm{diag}(s)\, V^T$ (singular
# values $s_1 \ge s_2 \ge \dots \ge 0$) gives the best rank-$r$ approximation (Eckart-Young):
# keep the $r$ largest singular values, $W_r = U_r\, \mathrm{diag}(s_r)\, V_r^T$. The layer then
# becomes two thin layers, $V_r^T$ (`in -> r`) then $U_r \mathrm{diag}(s_r)$ (`r -> out`), with
# $r\,(\text{in} + \text{out})$ parameters instead of $\text{in} \cdot \text{out}$.
#
# The rank can be given directly or chosen by the **energy** kept: the smallest $r$ with
# $\sum_{i \le r} s_i^2 \,/\, \sum_i s_i^2 \ge e$ (the squared Frobenius norm of $W$ is
# $\sum_i s_i^2$).

# %%
import numpy as np

# %% [markdown]
# **Question 1.** Write `svd_truncate(w, rank, energy)`: exactly one of `rank` / `energy` is
# None. Return `(r, w_r)`: the rank used (a Python `int`) and the rank-`r` approximation,
# computed in float64 with `np.linalg.svd(..., full_matrices=False)` and returned in `w`'s dtype.

# %% assignment="svd_truncate"
def svd_truncate(w, rank, energy):
    """(r, w_r): the rank (given, or the smallest keeping `energy`) and U_r diag(s_r) V_r^T."""
    # BEGIN SOLUTION
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)  # s largest first
    if rank is None:
        kept = np.cumsum(s ** 2) / np.sum(s ** 2)  # energy of the first 1, 2, ... values
        r = int(np.searchsorted(kept, energy, side="left")) + 1
        r = min(r, s.size)
    else:
        r = int(rank)
    w_r = (u[:, :r] * s[:r]) @ vt[:r]
    return r, w_r.astype(w.dtype)
    # END SOLUTION


# %% tags=["check"]
# Try it: a rank-2 matrix plus a little noise: 2 singular values hold almost all the energy.
rng = np.random.default_rng(0)
w = (rng.standard_normal((6, 2)) @ rng.standard_normal((2, 5)) + 0.01 * rng.standard_normal((6, 5)))
r, w_r = svd_truncate(w.astype(np.float32), None, 0.99)
print(r, np.linalg.norm(w - w_r) / np.linalg.norm(w))

from tinyprune.grading.notebook import check
check("svd_truncate")

# %% [markdown]
# **Think about it.** For a `(300, 784)` layer, below which rank does the factorization save
# parameters? Why is a high energy (say 0.9) not a guarantee that the accuracy is kept?
