"""Reference forward/backward pairs for every layer (CS231n style).

Each layer is two functions::

    out, cache = layer_forward(x, ...)
    dx, dparams... = layer_backward(dout, cache)

This is the code to read beside the slides: each kernel is the formula written with NumPy, with
a loop twin (``*_naive``) where the vectorized form is not obvious. The layers run these kernels
when ``model.fast`` is False; the speed kernels of :mod:`tinyprune.nn.fast` compute the same
results faster and are tested against them.

The functions hold no state, never modify their inputs and work in float32 or float64 (the dtype
of ``x``). Shapes follow PyTorch: activations are NCHW, a Linear weight is ``(out, in)`` and a
Conv2d weight is ``(C_out, C_in, KH, KW)``. Input checks are the callers' job (the layer classes
in :mod:`tinyprune.nn.layers` validate shapes and dtypes once, with the layer's name in the
message).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
    """Gradients of :func:`linear_forward`: ``dx = dout W``, ``dW = dout^T x``, ``db = sum_n dout``.

    Parameters
    ----------
    dout : ndarray (N, out)
        Gradient of the loss with respect to ``out``.
    cache : tuple from :func:`linear_forward`
    need_dx : bool
        False skips the input gradient (the first layer of a network needs none).

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


def conv2d_forward(x, w, b, stride=1, padding=0):
    """2-D cross-correlation (what deep-learning libraries call convolution) as one GEMM.

    .. math:: out[n, o, h, w] = b[o] + \\sum_{c,i,j} W[o, c, i, j]\\,
              x_{pad}[n, c, h s + i, w s + j]

    :func:`~tinyprune.nn.im2col.im2col` puts each input patch in a row of ``cols``, so every
    output value is a row of ``cols`` times a filter: ``out = cols @ W.reshape(C_out, -1).T + b``.

    Parameters
    ----------
    x : ndarray (N, C_in, H, W)
    w : ndarray (C_out, C_in, KH, KW)
    b : ndarray (C_out,) or None
    stride, padding : int

    Returns
    -------
    out : ndarray (N, C_out, H_out, W_out)
    cache : tuple (x_shape, cols, w, has_bias, stride, padding)
    """
    n, _, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    h_out = conv_output_size(h, kh, stride, padding)
    w_out = conv_output_size(wd, kw, stride, padding)
    cols = im2col(x, (kh, kw), stride, padding)  # (N*H_out*W_out, C_in*KH*KW)
    out = cols @ w.reshape(c_out, -1).T  # (N*H_out*W_out, C_out): one row per output position
    if b is not None:
        out += b
    out = out.reshape(n, h_out, w_out, c_out).transpose(0, 3, 1, 2)  # (N, C_out, H_out, W_out)
    return out, (x.shape, cols, w, b is not None, stride, padding)


def conv2d_backward(dout, cache, need_dx=True):
    """Gradients of :func:`conv2d_forward`.

    With ``D = dout`` as a matrix with one row per output position (the rows of ``cols``):
    ``dW = D^T cols``, ``db = sum of the rows of D``, ``dx = col2im(D W_mat)`` with
    ``W_mat = W.reshape(C_out, -1)`` (each row of ``D W_mat`` is the gradient of one patch;
    :func:`~tinyprune.nn.im2col.col2im` adds the patches back where they overlap).

    Parameters
    ----------
    dout : ndarray (N, C_out, H_out, W_out)
    cache : tuple from :func:`conv2d_forward`
    need_dx : bool
        False skips the input gradient.

    Returns
    -------
    dx : ndarray (N, C_in, H, W) or None (when ``need_dx`` is False)
    dw : ndarray (C_out, C_in, KH, KW)
    db : ndarray (C_out,) or None
    """
    x_shape, cols, w, has_bias, stride, padding = cache
    c_out, _, kh, kw = w.shape
    d = dout.transpose(0, 2, 3, 1).reshape(-1, c_out)  # (N*H_out*W_out, C_out), rows as in cols
    dw = (d.T @ cols).reshape(w.shape)  # (C_out, C_in*KH*KW) -> (C_out, C_in, KH, KW)
    db = d.sum(axis=0) if has_bias else None  # (C_out,)
    dx = None
    if need_dx:
        dcols = d @ w.reshape(c_out, -1)  # (N*H_out*W_out, C_in*KH*KW): gradient of each patch
        dx = col2im(dcols, x_shape, (kh, kw), stride, padding)  # (N, C_in, H, W)
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


def conv2d_backward_naive(dout, x, w, stride=1, padding=0):
    """Loop twin of :func:`conv2d_backward` (slow; for tests and for reading).

    Every output value ``out[n, o, y, z]`` used one input patch and filter ``o``, so its
    gradient ``dout[n, o, y, z]`` flows back to both: ``dW[o] += dout * patch``,
    ``dpatch += dout * W[o]``, ``db[o] += dout``.

    Returns
    -------
    dx : ndarray (N, C_in, H, W)
    dw : ndarray (C_out, C_in, KH, KW)
    db : ndarray (C_out,)
    """
    n, _, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    _, _, h_out, w_out = dout.shape
    p = padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = np.zeros(c_out, dtype=dout.dtype)
    for b_i in range(n):
        for o in range(c_out):
            for y in range(h_out):
                for z in range(w_out):
                    rows = slice(y * stride, y * stride + kh)
                    cols = slice(z * stride, z * stride + kw)
                    g = dout[b_i, o, y, z]
                    dw[o] += g * xp[b_i, :, rows, cols]
                    dxp[b_i, :, rows, cols] += g * w[o]
                    db[o] += g
    return dxp[:, :, p:p + h, p:p + wd], dw, db


# ------------------------------------------------------------------------------------ max pool


def _pool_geometry(x_shape, kernel_size, stride, padding):
    kh, kw = check_pair(kernel_size, "maxpool2d: kernel_size", minimum=1)
    s = kh if stride is None else stride
    h_out = conv_output_size(x_shape[2], kh, s, padding)
    w_out = conv_output_size(x_shape[3], kw, s, padding)
    return kh, kw, s, padding, h_out, w_out


def maxpool2d_forward(x, kernel_size=2, stride=None, padding=0):
    """Max pooling over ``KH x KW`` windows.

    ``out[n, c, h, w] = max_{i,j} x_pad[n, c, h s + i, w s + j]``, with ``-inf`` padding;
    ``stride`` defaults to ``kernel_size`` (PyTorch's default). The cache records which window
    entry was the maximum (the first one in row-major window order when several are equal, as
    PyTorch does), so the backward pass is a true function of the cache.

    Parameters
    ----------
    x : ndarray (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or None
    padding : int

    Returns
    -------
    out : ndarray (N, C, H_out, W_out)
    cache : tuple (x_shape, argmax, (KH, KW, stride, padding))
        ``argmax[n, c, h, w] = i*KW + j``, the window offset of the maximum.
    """
    kh, kw, s, p, h_out, w_out = _pool_geometry(x.shape, kernel_size, stride, padding)
    n, c, _, _ = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)  # (N, C, H_pad, W_pad)
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::s, ::s]
    # (N, C, H_out, W_out, KH, KW): window (h, w) starts at (h*s, w*s)
    windows = windows.reshape(n, c, h_out, w_out, kh * kw)  # (N, C, H_out, W_out, KH*KW)
    argmax = windows.argmax(axis=-1)  # (N, C, H_out, W_out): the first maximum wins ties
    out = np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]  # (N, C, H_out, W_out)
    return out, (x.shape, argmax, (kh, kw, s, p))


def maxpool2d_backward(dout, cache):
    """Gradient of :func:`maxpool2d_forward`: each ``dout`` entry goes to its window's maximum.

    Parameters
    ----------
    dout : ndarray (N, C, H_out, W_out)
    cache : tuple from :func:`maxpool2d_forward`

    Returns
    -------
    dx : ndarray (N, C, H, W)
    """
    x_shape, argmax, (kh, kw, s, p) = cache
    n, c, h, w = x_shape
    _, _, h_out, w_out = dout.shape
    dxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=dout.dtype)  # (N, C, H_pad, W_pad)
    for k in range(kh * kw):  # a loop over the window offsets only
        i, j = divmod(k, kw)
        # offset (i, j) of window (h, w) is input pixel (h*s + i, w*s + j)
        dxp[:, :, i:i + s * h_out:s, j:j + s * w_out:s] += dout * (argmax == k)  # (N, C, H_out, W_out)
    return dxp[:, :, p:p + h, p:p + w]  # (N, C, H, W)


def maxpool2d_naive(x, kernel_size=2, stride=None, padding=0):
    """Loop twin of :func:`maxpool2d_forward` (slow; for tests and for reading).

    Returns
    -------
    out : ndarray (N, C, H_out, W_out)
    argmax : ndarray of int (N, C, H_out, W_out, 2)
        Row and column, in the unpadded input, of the first maximum of each window (row-major).
    """
    kh, kw, s, p, h_out, w_out = _pool_geometry(x.shape, kernel_size, stride, padding)
    n, c, h, w = x.shape
    out = np.empty((n, c, h_out, w_out), dtype=x.dtype)
    argmax = np.empty((n, c, h_out, w_out, 2), dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for y in range(h_out):
                for z in range(w_out):
                    best, where = -np.inf, None
                    for i in range(kh):
                        for j in range(kw):
                            r, q = y * s + i - p, z * s + j - p
                            if 0 <= r < h and 0 <= q < w and (where is None or x[b, ch, r, q] > best):
                                best, where = x[b, ch, r, q], (r, q)
                    out[b, ch, y, z] = best
                    argmax[b, ch, y, z] = where
    return out, argmax


def maxpool2d_backward_naive(dout, x_shape, argmax):
    """Loop twin of :func:`maxpool2d_backward`: add each ``dout`` entry at its window's arg-max."""
    dx = np.zeros(x_shape, dtype=dout.dtype)
    n, c, h_out, w_out = dout.shape
    for b in range(n):
        for ch in range(c):
            for y in range(h_out):
                for z in range(w_out):
                    r, q = argmax[b, ch, y, z]
                    dx[b, ch, r, q] += dout[b, ch, y, z]
    return dx


# ----------------------------------------------------------------------- elementwise and shape


def relu_forward(x):
    """``out = max(x, 0)`` elementwise.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray like x
    cache : ndarray
        ``out`` itself: ``out > 0`` exactly where ``x > 0``, which is all the backward needs.
    """
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout, cache):
    """``dx = dout * [out > 0]``: the gradient passes where the unit was active.

    ``dout`` and ``cache`` (the output of :func:`relu_forward`) have the same shape.
    """
    return dout * (cache > 0)


def dropout_forward(x, p, rng, train=True):
    """Inverted dropout (Srivastava et al., 2014): zero each entry with probability ``p`` and scale
    the survivors by ``1 / (1 - p)`` during training, so inference is the identity.

    Parameters
    ----------
    x : ndarray, any shape
    p : float in [0, 1)
    rng : numpy.random.Generator
        Source of the keep mask ``rng.random(x.shape, dtype=x.dtype) >= p`` (one uniform number
        per entry, in C order of ``x.shape``).
    train : bool
        When False, returns ``x`` unchanged and an empty cache.

    Returns
    -------
    out : ndarray like x
    cache : ndarray like x (the scaled keep mask ``[u >= p] / (1 - p)``) or None
    """
    if not train or p == 0.0:
        return x, None
    keep = rng.random(x.shape, dtype=x.dtype) >= p  # (x.shape) bool, p compared in x's dtype
    mask = keep * x.dtype.type(1.0 / (1.0 - p))  # 0 or 1 / (1 - p)
    return x * mask, mask


def dropout_backward(dout, cache):
    """``dx = dout * mask / (1 - p)`` (identity when the forward pass was in inference mode)."""
    return dout if cache is None else dout * cache


def flatten_forward(x):
    """``(N, ...) -> (N, prod(...))`` in C order (PyTorch's ``torch.flatten(x, 1)``).

    A view when ``x`` is C-contiguous, otherwise one copy (e.g. of a channels-last activation).
    """
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout, cache):
    """Reshape the gradient back to the input's shape."""
    return dout.reshape(cache)
