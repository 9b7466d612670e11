"""im2col / col2im: lowering a convolution to one matrix product.

A 2-D convolution of ``x`` (N, C, H, W) with a kernel (C_out, C, KH, KW) reads, for every output
position, a ``C*KH*KW`` patch of the (zero-padded) input. ``im2col`` copies those patches into the
columns of a matrix so that the convolution becomes ``W.reshape(C_out, -1) @ cols``; ``col2im`` is
its adjoint (it scatters-and-adds columns back into an image) and gives the input gradient.

Layout of ``cols``: shape ``(C*KH*KW, N*H_out*W_out)``; row index ``(c*KH + i)*KW + j`` matches
``W.reshape(C_out, C*KH*KW)``, column index ``(n*H_out + h)*W_out + w``.

The vectorized versions loop only over the ``KH*KW`` kernel offsets; every offset copies a whole
strided slice of the input for all channels, batch items and output positions at once. The padded
input is held channel-major, ``(C, N, H_pad, W_pad)``, so each copy reads and writes memory in order.
``im2col_naive`` / ``col2im_naive`` are the textbook loops, kept for tests and for readers.

References
----------
K. Chellapilla, S. Puri, P. Simard, "High Performance Convolutional Neural Networks for Document
Processing", 2006 (the unrolling of convolution into matrix multiplication).
"""

from __future__ import annotations

import numpy as np

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


def im2col(x, kernel_size, stride=1, padding=0, *, out=None):
    """Unfold image patches into columns (vectorized).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), float32 or float64
        Input images (NCHW).
    kernel_size : int or (int, int)
        ``KH, KW``.
    stride : int
        Step between patches (the same on both axes), >= 1.
    padding : int
        Zeros added on every side, >= 0.
    out : ndarray of shape (C*KH*KW, N*H_out*W_out), optional
        Buffer to write into (reused between calls to avoid allocating); same dtype as ``x``.

    Returns
    -------
    cols : ndarray of shape (C*KH*KW, N*H_out*W_out)
        ``cols[(c*KH + i)*KW + j, (n*H_out + h)*W_out + w] = x_pad[n, c, h*stride + i, w*stride + j]``.
    """
    check_float_array(x, "im2col: x")
    kh, kw, s, p, h_out, w_out = _check_geometry(x.shape, kernel_size, stride, padding)
    n, c, h, w = x.shape
    shape = (c * kh * kw, n * h_out * w_out)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    elif out.shape != shape or out.dtype != x.dtype:
        raise ValueError(f"im2col: out must have shape {shape} and dtype {x.dtype}, "
                         f"got {out.shape} {out.dtype}")
    xt = x.transpose(1, 0, 2, 3)  # (C, N, H, W) view
    if p > 0:
        xp = np.zeros((c, n, h + 2 * p, w + 2 * p), dtype=x.dtype)  # (C, N, H_pad, W_pad)
        xp[:, :, p:p + h, p:p + w] = xt
    else:
        xp = np.ascontiguousarray(xt)  # (C, N, H, W)
    cols6 = out.reshape(c, kh, kw, n, h_out, w_out)
    h_end, w_end = s * (h_out - 1) + 1, s * (w_out - 1) + 1
    for i in range(kh):
        for j in range(kw):
            cols6[:, i, j] = xp[:, :, i:i + h_end:s, j:j + w_end:s]  # (C, N, H_out, W_out)
    return out


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """Fold columns back into an image, summing overlapping patches (adjoint of :func:`im2col`).

    Parameters
    ----------
    cols : ndarray of shape (C*KH*KW, N*H_out*W_out)
        Column matrix, e.g. the gradient ``W.T @ dout`` of a convolution.
    x_shape : tuple (N, C, H, W)
        Shape of the image the columns were unfolded from.
    kernel_size, stride, padding
        As in :func:`im2col`.

    Returns
    -------
    x : ndarray of shape (N, C, H, W), contiguous, dtype of ``cols``
        ``x[n, c, y, z] = sum of cols entries that im2col copied from x_pad[n, c, y+p, z+p]``,
        so that ``<im2col(x), cols> == <x, col2im(cols)>``.
    """
    check_float_array(cols, "col2im: cols", ndim=2)
    kh, kw, s, p, h_out, w_out = _check_geometry(tuple(x_shape), kernel_size, stride, padding,
                                                 name="col2im")
    n, c, h, w = x_shape
    expected = (c * kh * kw, n * h_out * w_out)
    if cols.shape != expected:
        raise ValueError(f"col2im: cols must have shape {expected} for x_shape {tuple(x_shape)}, "
                         f"got {cols.shape}")
    cols6 = cols.reshape(c, kh, kw, n, h_out, w_out)
    xp = np.zeros((c, n, h + 2 * p, w + 2 * p), dtype=cols.dtype)  # (C, N, H_pad, W_pad)
    h_end, w_end = s * (h_out - 1) + 1, s * (w_out - 1) + 1
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + h_end:s, j:j + w_end:s] += cols6[:, i, j]  # (C, N, H_out, W_out)
    return np.ascontiguousarray(xp[:, :, p:p + h, p:p + w].transpose(1, 0, 2, 3))  # (N, C, H, W)


def im2col_naive(x, kernel_size, stride=1, padding=0):
    """Loop-by-loop twin of :func:`im2col` (slow; for tests and for reading)."""
    check_float_array(x, "im2col_naive: x")
    kh, kw, s, p, h_out, w_out = _check_geometry(x.shape, kernel_size, stride, padding,
                                                 name="im2col_naive")
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.empty((c * kh * kw, n * h_out * w_out), dtype=x.dtype)
    for b in range(n):
        for y in range(h_out):
            for z in range(w_out):
                col = (b * h_out + y) * w_out + z
                for ch in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            row = (ch * kh + i) * kw + j
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
                col = (b * h_out + y) * w_out + z
                for ch in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            row = (ch * kh + i) * kw + j
                            xp[b, ch, y * s + i, z * s + j] += cols[row, col]
    return xp[:, :, p:p + h, p:p + w].copy()
