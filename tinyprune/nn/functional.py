"""Pure forward/backward pairs for every layer (CS231n style).

Each layer is two functions::

    out, cache = layer_forward(x, ...)
    dx, dparams... = layer_backward(dout, cache)

They hold no state, never modify their inputs and work in float32 or float64 (the dtype of ``x``).
Shapes follow PyTorch: activations are NCHW, a Linear weight is ``(out, in)`` and a Conv2d weight is
``(C_out, C_in, KH, KW)``. Input checks are the callers' job (the layer classes in
:mod:`tinyprune.nn.layers` validate shapes and dtypes once, with the layer's name in the message);
these functions check only what they need to compute safely.
"""

from __future__ import annotations

import numpy as np

from .im2col import col2im, conv_output_size, im2col
from .validation import check_pair

# --------------------------------------------------------------------------------------- linear


def linear_forward(x, w, b):
    """Affine map ``out = x W^T + b``.

    Parameters
    ----------
    x : ndarray (N, in)
    w : ndarray (out, in)
    b : ndarray (out,) or None

    Returns
    -------
    out : ndarray (N, out)
    cache : tuple (x, w, has_bias)
    """
    out = x @ w.T  # (N, out)
    if b is not None:
        out += b
    return out, (x, w, b is not None)


def linear_backward(dout, cache, need_dx=True):
    """Gradients of :func:`linear_forward`.

    ``dx = dout W``, ``dW = dout^T x``, ``db = sum_n dout``.

    Returns
    -------
    dx : ndarray (N, in) or None (when ``need_dx`` is False)
    dw : ndarray (out, in)
    db : ndarray (out,) or None
    """
    x, w, has_bias = cache
    dw = dout.T @ x  # (out, in)
    db = dout.sum(axis=0) if has_bias else None  # (out,)
    dx = dout @ w if need_dx else None  # (N, in)
    return dx, dw, db


# --------------------------------------------------------------------------------------- conv2d


def conv2d_forward(x, w, b, stride=1, padding=0, *, cols_buffer=None):
    """2-D cross-correlation (what deep-learning libraries call convolution) via im2col.

    .. math:: out[n, o, h, w] = b[o] + \\sum_{c,i,j} W[o, c, i, j]\\,
              x_{pad}[n, c, h s + i, w s + j]

    Parameters
    ----------
    x : ndarray (N, C_in, H, W)
    w : ndarray (C_out, C_in, KH, KW)
    b : ndarray (C_out,) or None
    stride, padding : int
    cols_buffer : ndarray (C_in*KH*KW, N*H_out*W_out), optional
        Reused workspace for the unfolded input.

    Returns
    -------
    out : ndarray (N, C_out, H_out, W_out), contiguous
    cache : tuple
    """
    n = x.shape[0]
    c_out, _, kh, kw = w.shape
    cols = im2col(x, (kh, kw), stride, padding, out=cols_buffer)  # (C_in*KH*KW, N*H_out*W_out)
    h_out = conv_output_size(x.shape[2], kh, stride, padding)
    w_out = conv_output_size(x.shape[3], kw, stride, padding)
    out = w.reshape(c_out, -1) @ cols  # (C_out, N*H_out*W_out)
    if b is not None:
        out += b[:, None]
    out = out.reshape(c_out, n, h_out, w_out).transpose(1, 0, 2, 3)  # (N, C_out, H_out, W_out)
    out = np.ascontiguousarray(out)
    return out, (x.shape, cols, w, b is not None, stride, padding)


def conv2d_backward(dout, cache, need_dx=True):
    """Gradients of :func:`conv2d_forward`.

    With ``D = dout`` laid out as ``(C_out, N*H_out*W_out)``: ``dW = D cols^T``,
    ``db = sum D``, ``dx = col2im(W^T D)``.

    Returns
    -------
    dx : ndarray (N, C_in, H, W) or None (when ``need_dx`` is False)
    dw : ndarray (C_out, C_in, KH, KW)
    db : ndarray (C_out,) or None
    """
    x_shape, cols, w, has_bias, stride, padding = cache
    c_out = w.shape[0]
    d = dout.transpose(1, 0, 2, 3).reshape(c_out, -1)  # (C_out, N*H_out*W_out), one copy
    dw = (d @ cols.T).reshape(w.shape)  # (C_out, C_in, KH, KW)
    db = d.sum(axis=1) if has_bias else None  # (C_out,)
    dx = None
    if need_dx:
        dcols = w.reshape(c_out, -1).T @ d  # (C_in*KH*KW, N*H_out*W_out)
        dx = col2im(dcols, x_shape, w.shape[2:], stride, padding)  # (N, C_in, H, W)
    return dx, dw, db


def conv2d_naive(x, w, b, stride=1, padding=0):
    """Loop twin of :func:`conv2d_forward` (slow; for tests and for reading)."""
    n, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    h_out = conv_output_size(h, kh, stride, padding)
    w_out = conv_output_size(wd, kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((n, c_out, h_out, w_out), dtype=x.dtype)
    for b_i in range(n):
        for o in range(c_out):
            for y in range(h_out):
                for z in range(w_out):
                    patch = xp[b_i, :, y * stride:y * stride + kh, z * stride:z * stride + kw]
                    out[b_i, o, y, z] = np.sum(patch * w[o]) + (b[o] if b is not None else 0)
    return out


# ------------------------------------------------------------------------------------ max pool


def maxpool2d_forward(x, kernel_size=2, stride=None, padding=0):
    """Max pooling over ``KH x KW`` windows.

    ``stride`` defaults to ``kernel_size`` (PyTorch's default). Padding is with ``-inf``. When several
    entries of a window share the maximum, the gradient goes to the first one in row-major window
    order (as PyTorch does), so the backward pass is a true function of the cache.

    Returns
    -------
    out : ndarray (N, C, H_out, W_out)
    cache : tuple (x_shape, argmax offsets as uint8/int16 (N, C, H_out, W_out), geometry)
    """
    kh, kw = check_pair(kernel_size, "maxpool2d: kernel_size", minimum=1)
    s = kh if stride is None else stride
    n, c, h, w = x.shape
    h_out = conv_output_size(h, kh, s, padding)
    w_out = conv_output_size(w, kw, s, padding)
    if padding > 0:
        xp = np.full((n, c, h + 2 * padding, w + 2 * padding), -np.inf, dtype=x.dtype)
        xp[:, :, padding:padding + h, padding:padding + w] = x
    else:
        xp = x
    h_end, w_end = s * (h_out - 1) + 1, s * (w_out - 1) + 1
    out = xp[:, :, 0:h_end:s, 0:w_end:s].copy()  # (N, C, H_out, W_out)
    arg = np.zeros(out.shape, dtype=np.uint8 if kh * kw < 256 else np.int16)
    upd = np.empty(out.shape, dtype=bool)
    for k in range(1, kh * kw):
        i, j = divmod(k, kw)
        window = xp[:, :, i:i + h_end:s, j:j + w_end:s]  # (N, C, H_out, W_out)
        np.greater(window, out, out=upd)  # strict: the first maximum keeps the gradient
        np.copyto(out, window, where=upd)
        np.copyto(arg, k, where=upd)
    return out, (x.shape, arg, (kh, kw, s, padding))


def maxpool2d_backward(dout, cache):
    """Gradient of :func:`maxpool2d_forward`: ``dout`` routed to each window's arg-max."""
    x_shape, arg, (kh, kw, s, padding) = cache
    n, c, h, w = x_shape
    h_out, w_out = arg.shape[2:]
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dout.dtype)
    h_end, w_end = s * (h_out - 1) + 1, s * (w_out - 1) + 1
    zero = dout.dtype.type(0)
    for k in range(kh * kw):
        i, j = divmod(k, kw)
        dxp[:, :, i:i + h_end:s, j:j + w_end:s] += np.where(arg == k, dout, zero)
    if padding > 0:
        return np.ascontiguousarray(dxp[:, :, padding:padding + h, padding:padding + w])
    return dxp


# ----------------------------------------------------------------------- elementwise and shape


def relu_forward(x):
    """``out = max(x, 0)``; cache is the boolean mask ``x > 0``."""
    mask = x > 0
    return np.where(mask, x, x.dtype.type(0)), mask


def relu_backward(dout, cache):
    """``dx = dout * [x > 0]``."""
    return np.where(cache, dout, dout.dtype.type(0))


def dropout_forward(x, p, rng, train=True):
    """Inverted dropout (Srivastava et al., 2014): zero each entry with probability ``p`` and scale
    the survivors by ``1 / (1 - p)`` during training, so inference is the identity.

    Parameters
    ----------
    x : ndarray, any shape
    p : float in [0, 1)
    rng : numpy.random.Generator
        Source of the keep mask (explicit, so runs are reproducible).
    train : bool
        When False, returns ``x`` unchanged and an empty cache.

    Returns
    -------
    out : ndarray like x
    cache : ndarray like x (the scaled keep mask ``[u >= p] / (1 - p)``) or None
    """
    if not train or p == 0.0:
        return x, None
    keep = rng.random(x.shape, dtype=x.dtype) >= p
    scale = np.where(keep, x.dtype.type(1.0 / (1.0 - p)), x.dtype.type(0))
    return x * scale, scale


def dropout_backward(dout, cache):
    """``dx = dout * mask / (1 - p)`` (identity when the forward pass was in inference mode)."""
    return dout if cache is None else dout * cache


def flatten_forward(x):
    """``(N, ...) -> (N, prod(...))`` in C order (PyTorch's ``torch.flatten(x, 1)``)."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout, cache):
    """Reshape the gradient back to the input's shape."""
    return dout.reshape(cache)
