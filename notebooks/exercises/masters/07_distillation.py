# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 7: the knowledge-distillation loss
#
# A small **student** network learns from a large **teacher** (Hinton et al., 2015): besides the
# labels, it matches the teacher's *soft targets*, the softmax of the teacher's logits at a
# temperature $T > 1$, which shows how the teacher ranks the wrong classes ("dark knowledge").
# With student logits $z_s$, teacher logits $z_t$ (both `(N, C)`) and labels $y$:
#
# $$p = \mathrm{softmax}(z_s / T), \quad q = \mathrm{softmax}(z_t / T)$$
#
# $$L = \alpha\, T^2\, \frac{1}{N}\sum_i \mathrm{KL}(q_i \,\|\, p_i)
#       + (1 - \alpha)\, \frac{1}{N}\sum_i \mathrm{CE}(z_{s,i}, y_i),
#  \qquad \mathrm{KL}(q \,\|\, p) = \sum_c q_c (\log q_c - \log p_c)$$
#
# The factor $T^2$ keeps the soft term's gradients the same size whatever $T$: its gradient
# with respect to $z_s$ is $\alpha\, T\, (p - q) / N$. The cross-entropy at $T = 1$ contributes
# $(1 - \alpha)(\mathrm{softmax}(z_s) - \mathrm{onehot}(y)) / N$.

# %%
import numpy as np


def softmax(z):
    """Row-wise softmax of (N, C) logits (the row maximum is subtracted first: no overflow)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# %% [markdown]
# **Question 1.** Write `kd_loss(student_logits, teacher_logits, y, temperature, alpha)`
# returning `(loss, dlogits)`: the loss $L$ as a Python `float` and its gradient with respect to
# `student_logits`, shape `(N, C)`, in the logits' dtype.

# %% assignment="kd_loss"
def kd_loss(student_logits, teacher_logits, y, temperature, alpha):
    """(loss, dlogits) of alpha T^2 mean KL(q || p) + (1 - alpha) mean CE(z_s, y)."""
    # BEGIN SOLUTION
    zs = student_logits.astype(np.float64)
    zt = teacher_logits.astype(np.float64)
    n, t = zs.shape[0], float(temperature)
    p, q = softmax(zs / t), softmax(zt / t)
    with np.errstate(divide="ignore"):  # q may underflow to 0: 0 * log 0 counts as 0
        kl = np.where(q > 0, q * (np.log(q) - np.log(p)), 0.0).sum(axis=1)
    p1 = softmax(zs)
    ce = -np.log(p1[np.arange(n), y])
    loss = alpha * t * t * kl.mean() + (1 - alpha) * ce.mean()
    onehot = np.eye(zs.shape[1])[y]
    dlogits = alpha * t * (p - q) / n + (1 - alpha) * (p1 - onehot) / n
    return float(loss), dlogits.astype(student_logits.dtype)
    # END SOLUTION


# %% tags=["check"]
# Try it: two samples, three classes, T = 4, alpha = 0.7.
zs = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, -1.0]], dtype=np.float32)
zt = np.array([[3.0, 0.5, -1.0], [1.0, 2.0, 0.0]], dtype=np.float32)
loss, d = kd_loss(zs, zt, np.array([0, 1]), 4.0, 0.7)
print(round(loss, 4), d)

from tinyprune.grading.notebook import check
check("kd_loss")

# %% [markdown]
# **Think about it.** Check the gradient numerically (central differences on one logit). What
# happens to the soft targets as $T \to \infty$, and to the soft term's gradient without $T^2$?
