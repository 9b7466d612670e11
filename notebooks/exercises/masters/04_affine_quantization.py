# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 4: uniform affine quantization
#
# Quantization stores a real value $r$ as a small integer $q$ with a **scale** $S$ (a float) and a
# **zero point** $Z$ (an integer): $r \approx S\,(q - Z)$. The integers live in
# $[q_\min, q_\max]$: $[-2^{b-1}, 2^{b-1} - 1]$ for signed $b$-bit integers (int8: -128..127),
# $[0, 2^b - 1]$ for unsigned ones (uint8: 0..255).
#
# Choosing $S$ and $Z$ from an observed range $[\min, \max]$ (as PyTorch's observers do):
#
# * widen the range to contain 0: $\min \leftarrow \min(\min, 0)$, $\max \leftarrow \max(\max, 0)$,
#   so that the real 0.0 (ReLU outputs, zero padding, pruned weights) is exactly representable;
# * **asymmetric**: $S = (\max - \min) / (q_\max - q_\min)$ and
#   $Z = q_\min - \mathrm{round}(\min / S)$, an integer;
# * **symmetric**: $S = \max(|\min|, |\max|) / ((q_\max - q_\min) / 2)$, $Z = 0$ (signed) or
#   $2^{b-1}$ (unsigned);
# * $S$ is at least the float32 machine epsilon (`np.finfo(np.float32).eps`), so an all-zero
#   range still gives a usable scale; round half to even (`np.rint`, Python's `round`).
#
# Then $q = \mathrm{clamp}(\mathrm{round}(r / S) + Z,\ q_\min,\ q_\max)$ and the dequantized
# value is $\hat r = S\,(q - Z)$.

# %%
import numpy as np


def q_range(bits, signed):
    """(q_min, q_max) of a signed or unsigned integer of `bits` bits."""
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


# %% [markdown]
# **Question 1.** Write `affine_qparams(min_val, max_val, bits, signed, symmetric)` returning the
# tuple `(scale, zero_point)`: a Python `float` and a Python `int`. Compute in float32 as PyTorch
# does (`np.float32` values).

# %% assignment="affine_qparams"
def affine_qparams(min_val, max_val, bits, signed, symmetric):
    """(scale, zero_point) for the range [min_val, max_val] widened to contain 0."""
    # BEGIN SOLUTION
    q_min, q_max = q_range(bits, signed)
    lo = np.minimum(np.float32(min_val), np.float32(0.0))
    hi = np.maximum(np.float32(max_val), np.float32(0.0))
    eps = np.finfo(np.float32).eps
    if symmetric:
        scale = np.maximum(np.maximum(-lo, hi) / np.float32((q_max - q_min) / 2), eps)
        zero_point = 0 if signed else 2 ** (bits - 1)
    else:
        scale = np.maximum((hi - lo) / np.float32(q_max - q_min), eps)
        zero_point = int(np.clip(q_min - np.rint(lo / scale), q_min, q_max))
    return float(scale), int(zero_point)
    # END SOLUTION


# %% tags=["check"]
# Try it: the range [-1, 3] in unsigned 8 bits: S = 4 / 255, and 0.0 maps to the integer 64.
print(affine_qparams(-1.0, 3.0, 8, False, False))
print(affine_qparams(-1.0, 3.0, 8, True, True))

from tinyprune.grading.notebook import check
check("affine_qparams")

# %% [markdown]
# **Question 2.** Write `affine_quantize(x, scale, zero_point, bits, signed)` returning `(q, x_hat)`:
# `q` in the smallest integer type that holds the range (`int8`/`uint8` for up to 8 bits,
# `int16`/`uint16` for 16 bits) and `x_hat = scale * (q - zero_point)` in `x`'s dtype. Values
# outside the range saturate at $q_\min$ / $q_\max$.

# %% assignment="affine_quantize"
def affine_quantize(x, scale, zero_point, bits, signed):
    """(q, x_hat): q = clamp(round(x / S) + Z, q_min, q_max), x_hat = S (q - Z)."""
    # BEGIN SOLUTION
    q_min, q_max = q_range(bits, signed)
    q = np.clip(np.rint(x / np.float32(scale)) + zero_point, q_min, q_max)
    dtype = {(8, True): np.int8, (8, False): np.uint8, (16, True): np.int16,
             (16, False): np.uint16}[(8 if bits <= 8 else 16, bool(signed))]
    q = q.astype(dtype)
    x_hat = (np.float32(scale) * (q.astype(np.int64) - zero_point)).astype(x.dtype)
    return q, x_hat
    # END SOLUTION


# %% tags=["check"]
# Try it: a value beyond the range saturates; 0.0 comes back exactly.
x = np.array([-1.5, -1.0, 0.0, 0.26, 3.0, 4.0], dtype=np.float32)
s, z = affine_qparams(-1.0, 3.0, 8, False, False)
q, x_hat = affine_quantize(x, s, z, 8, False)
print(q, x_hat)

from tinyprune.grading.notebook import check
check("affine_quantize")

# %% [markdown]
# **Think about it.** What is the largest error $|x - \hat x|$ for a value inside the range? And
# for one outside it? Why does 4-bit quantization of weights usually need per-channel scales?
