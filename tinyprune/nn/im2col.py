"""im2col / col2im: lowering a convolution to one matrix product.

A 2-D convolution of ``x`` (N, C, H, W) with a kernel ``W`` (C_out, C, KH, KW) takes, at every
output position, the dot product of each filter ``W[o]`` with a ``C x KH x KW`` patch of the
zero-padded input. ``im2col`` copies every patch into one row of a matrix, so that the whole
convolution is one matrix product (a GEMM)::

    cols = im2col(x, (KH, KW), stride, padding)   # (N*H_out*W_out, C*KH*KW)
    out = cols @ W.reshape(C_out, -1).T + b        # (N*H_out*W_out, C_out)

``col2im`` is its adjoint: it adds every row back onto the patch it was copied from (overlapping
patches sum). It turns the gradient of ``cols`` into the gradient of ``x``.

Layout
    Row ``(n*H_out + h)*W_out + w`` is the patch of output position ``(h, w)`` of image ``n``.
    Column ``(c*KH + i)*KW + j`` holds input channel ``c`` at kernel offset ``(i, j)``: the order
    of ``W[o].ravel()``, so the weight matrix is ``W.reshape(C_out, -1)``, with no copy. PyTorch's
    ``torch.nn.functional.unfold(x, (KH, KW))`` gives the same numbers as ``(N, C*KH*KW, L)``.

``im2col_naive`` / ``col2im_naive`` are the textbook loops; the vectorized versions are tested
against them. (The speed kernels of :mod:`tinyprune.nn.fast` unfold channels-last batches chunk
by chunk instead; they compute the same convolution.)

References
----------
K. Chellapilla, S. Puri, P. Simard, "High Performance Convolutional Neural Networks for Document
Processing", 2006 (the unrolling of convolution into matrix multiplication).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .validation import check_float_array, check_int, check_pair


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis: ``floor((size + 2*padding - kernel) / stride) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_geometry(x_shape, kernel_size, stride, padding, name="im2col"):
    if len(x_shape) != 4:
        raise ValueError(f"{name}: expected x of shape (N, C, H, W), got shape {tuple(x_shape)}")
    kh, kw = check_pair(kernel_size, f"{name}: kernel_size", minimum=1)
    s = check_int(stride, f"{name}: stride", minimum=1)
    p = check_int(padding, f"{name}: padding", minimum=0)
    _, _, h, w = x_shape
    h_out = conv_output_size(h, kh, s, p)
    w_out = conv_output_size(w, kw, s, p)
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"{name}: kernel {kh}x{kw} with padding {p} does not fit input {h}x{w} "
            f"(output would be {h_out}x{w_out})"
        )
    return kh, kw, s, p, h_out, w_out


def im2col(x, kernel_size, stride=1, padding=0):
    """Unfold the convolution patches of ``x`` into the rows of a matrix.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), float32 or float64
        Input images (any memory layout).
    kernel_size : int or (int, int)
        ``KH, KW``.
    stride : int
        Step between patches (the same on both axes), >= 1.
    padding : int
        Zeros added on every side, >= 0.

    Returns
    -------
    cols : ndarray of shape (N*H_out*W_out, C*KH*KW), C-contiguous
        ``cols[(n*H_out + h)*W_out + w, (c*KH + i)*KW + j] = x_pad[n, c, h*stride + i,
        w*stride + j]``.

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, 2)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    check_float_array(x, "im2col: x")
    kh, kw, s, p, h_out, w_out = _check_geometry(x.shape, kernel_size, stride, padding)
    n, c, _, _ = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))  # (N, C, H + 2p, W + 2p)
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))  # (N, C, H_pad-KH+1, W_pad-KW+1, KH, KW)
    patches = windows[:, :, ::s, ::s]  # (N, C, H_out, W_out, KH, KW): patch (h, w) starts at (hs, ws)
    patches = patches.transpose(0, 2, 3, 1, 4, 5)  # (N, H_out, W_out, C, KH, KW): one patch per row
    return patches.reshape(n * h_out * w_out, c * kh * kw)  # (N*H_out*W_out, C*KH*KW), a copy


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """Fold rows back into an image, summing overlapping patches (the adjoint of :func:`im2col`).

    Parameters
    ----------
    cols : ndarray of shape (N*H_out*W_out, C*KH*KW), float32 or float64
        Patch matrix, e.g. the gradient ``dout_mat @ W.reshape(C_out, -1)`` of a convolution.
    x_shape : tuple (N, C, H, W)
        Shape of the image the rows were unfolded from.
    kernel_size, stride, padding
        As in :func:`im2col`.

    Returns
    -------
    x : ndarray of shape (N, C, H, W), dtype of ``cols``
        ``x[n, c, y, z]`` = the sum of the ``cols`` entries that :func:`im2col` copies from
        ``x_pad[n, c, y + p, z + p]``, so that ``<im2col(x), cols> == <x, col2im(cols)>``.
    """
    check_float_array(cols, "col2im: cols", ndim=2)
    kh, kw, s, p, h_out, w_out = _check_geometry(tuple(x_shape), kernel_size, stride, padding,
                                                 name="col2im")
    n, c, h, w = x_shape
    expected = (n * h_out * w_out, c * kh * kw)
    if cols.shape != expected:
        raise ValueError(f"col2im: cols must have shape {expected} for x_shape {tuple(x_shape)}, "
                         f"got {cols.shape}")
    patches = cols.reshape(n, h_out, w_out, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
    # (N, C, H_out, W_out, KH, KW)
    xp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=cols.dtype)  # (N, C, H_pad, W_pad)
    for i in range(kh):  # a loop over the KH*KW kernel offsets only
        for j in range(kw):
            # offset (i, j) of the patch at output (h, w) is input pixel (h*s + i, w*s + j)
            xp[:, :, i:i + s * h_out:s, j:j + s * w_out:s] += patches[..., i, j]  # (N, C, H_out, W_out)
    return xp[:, :, p:p + h, p:p + w]  # (N, C, H, W)


def im2col_naive(x, kernel_size, stride=1, padding=0):
    """Loop-by-loop twin of :func:`im2col` (slow; for tests and for reading)."""
    check_float_array(x, "im2col_naive: x")
    kh, kw, s, p, h_out, w_out = _check_geometry(x.shape, kernel_size, stride, padding,
                                                 name="im2col_naive")
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.empty((n * h_out * w_out, c * kh * kw), dtype=x.dtype)
    for b in range(n):
        for y in range(h_out):
            for z in range(w_out):
                row = (b * h_out + y) * w_out + z
                for ch in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            col = (ch * kh + i) * kw + j
                            cols[row, col] = xp[b, ch, y * s + i, z * s + j]
    return cols


def col2im_naive(cols, x_shape, kernel_size, stride=1, padding=0):
    """Loop-by-loop twin of :func:`col2im` (slow; for tests and for reading)."""
    check_float_array(cols, "col2im_naive: cols", ndim=2)
    kh, kw, s, p, h_out, w_out = _check_geometry(tuple(x_shape), kernel_size, stride, padding,
                                                 name="col2im_naive")
    n, c, h, w = x_shape
    xp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=cols.dtype)
    for b in range(n):
        for y in range(h_out):
            for z in range(w_out):
                row = (b * h_out + y) * w_out + z
                for ch in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            col = (ch * kh + i) * kw + j
                            xp[b, ch, y * s + i, z * s + j] += cols[row, col]
    return xp[:, :, p:p + h, p:p + w].copy()
