"""im2col / col2im: lowering a convolution to one matrix product.

A 2-D convolution of ``x`` (N, C, H, W) with a kernel (C_out, C, KH, KW) reads, for every output
position, a ``KH*KW*C`` patch of the (zero-padded) input. ``im2col`` copies those patches into the
rows of a matrix so that the convolution becomes one GEMM, ``cols @ W_mat``; ``col2im`` is its
adjoint (it scatters-and-adds rows back into an image) and gives the input gradient.

Layout (channels-last, as in TensorFlow's and oneDNN's NHWC kernels)
    ``cols`` has shape ``(N*H_out*W_out, KH*KW*C)``: one **row per output position**, row index
    ``(n*H_out + h)*W_out + w``, and column index ``(i*KW + j)*C + c`` for kernel offset ``(i, j)``
    and input channel ``c``. The matching weight matrix is
    ``W.transpose(0, 2, 3, 1).reshape(C_out, -1)`` (rows ``(i, j, c)``), and the convolution is
    ``cols @ W_mat.T`` of shape ``(N*H_out*W_out, C_out)``, which is the output in NHWC memory
    order.

Why channels-last
    With the image held as ``(N, H, W, C)`` in memory, the patch of output position ``(h, w)`` is
    ``KH`` runs of ``KW*C`` consecutive numbers. :func:`patch_view` exposes all patches at once as
    a read-only strided view (no copy, like ``numpy.lib.stride_tricks.sliding_window_view``), so
    ``im2col`` is a **single** copy that moves long contiguous runs. Activations keep their NCHW
    *shape* everywhere in tinyprune (PyTorch's convention); only their memory order may be
    channels-last (``y = y_nhwc.transpose(0, 3, 1, 2)`` is a view).

The vectorized fold (:func:`col2im`) loops only over the ``KH*KW`` kernel offsets; each offset adds
a whole strided block for all batch items, positions and channels at once. ``im2col_naive`` /
``col2im_naive`` are the textbook loops, kept for tests and for readers.

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


# ----------------------------------------------------------------------------- building blocks


def reshape_view(a, shape):
    """``a.reshape(shape)`` that must be a view (writes through to ``a``); ValueError otherwise.

    (``np.reshape(..., copy=False)`` needs NumPy >= 2.1.)
    """
    v = a.reshape(shape)
    if v.size and not np.may_share_memory(v, a):
        raise ValueError(f"cannot view an array of shape {a.shape} and strides {a.strides} "
                         f"as shape {shape} without copying")
    return v


def to_nhwc(x, padding=0, *, out=None):
    """Channels-last, zero-padded, C-contiguous copy of an NCHW-shaped image batch (or a view).

    Parameters
    ----------
    x : ndarray (N, C, H, W), any memory layout
    padding : int
        Zeros added on every side of H and W.
    out : ndarray (N, H + 2p, W + 2p, C), optional
        Buffer to fill (its border is zeroed, its interior overwritten).

    Returns
    -------
    xp : ndarray (N, H + 2p, W + 2p, C), C-contiguous
        ``x.transpose(0, 2, 3, 1)`` itself (no copy) when ``padding == 0`` and ``x`` is already
        channels-last in memory; otherwise a copy.
    """
    n, c, h, w = x.shape
    xt = x.transpose(0, 2, 3, 1)  # (N, H, W, C) view
    if padding == 0 and out is None and xt.flags.c_contiguous:
        return xt
    p = padding
    shape = (n, h + 2 * p, w + 2 * p, c)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    if p > 0:  # only the border needs zeros: the interior is overwritten below
        out[:, :p] = 0
        out[:, p + h:] = 0
        out[:, p:p + h, :p] = 0
        out[:, p:p + h, p + w:] = 0
    out[:, p:p + h, p:p + w] = xt  # (N, H, W, C)
    return out


def patch_view(xp, kernel_size, stride, out_hw):
    """All convolution patches of a channels-last padded image as one read-only strided view.

    Parameters
    ----------
    xp : ndarray (N, H_pad, W_pad, C)
    kernel_size : (int, int)
    stride : int
    out_hw : (int, int)
        ``(H_out, W_out)``.

    Returns
    -------
    view : ndarray (N, H_out, W_out, KH, KW, C), no copy
        ``view[n, h, w, i, j, c] = xp[n, h*stride + i, w*stride + j, c]``.
    """
    kh, kw = kernel_size
    h_out, w_out = out_hw
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, H_pad-KH+1, W_pad-KW+1, C, KH, KW)
    win = win[:, :stride * (h_out - 1) + 1:stride, :stride * (w_out - 1) + 1:stride]
    return win.transpose(0, 1, 2, 4, 5, 3)  # (N, H_out, W_out, KH, KW, C)


def fold_add(blocks, dxp, kernel_size, stride):
    """Add per-offset blocks into a channels-last padded image (the scatter of col2im).

    Parameters
    ----------
    blocks : ndarray (KH*KW, N, H_out, W_out, C) or (N, H_out, W_out, KH, KW, C)
        Contribution of each kernel offset ``(i, j)``; the first layout is read as
        ``blocks[i*KW + j]``, the second as ``blocks[:, :, :, i, j]``.
    dxp : ndarray (N, H_pad, W_pad, C)
        Accumulated **in place**: ``dxp[n, h*s + i, w*s + j, c] += block_ij[n, h, w, c]``.
    kernel_size : (int, int)
    stride : int
    """
    kh, kw = kernel_size
    offset_major = blocks.ndim == 5
    h_out, w_out = (blocks.shape[2:4] if offset_major else blocks.shape[1:3])
    h_end, w_end = stride * (h_out - 1) + 1, stride * (w_out - 1) + 1
    for i in range(kh):  # loop over the KH*KW kernel offsets only
        for j in range(kw):
            block = blocks[i * kw + j] if offset_major else blocks[:, :, :, i, j]
            dst = dxp[:, i:i + h_end:stride, j:j + w_end:stride]  # (N, H_out, W_out, C) view
            np.add(dst, block, out=dst)


# ----------------------------------------------------------------------------- public kernels


def im2col(x, kernel_size, stride=1, padding=0, *, out=None):
    """Unfold image patches into rows (vectorized: one strided copy).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), float32 or float64
        Input images (NCHW shape; any memory layout, channels-last is fastest).
    kernel_size : int or (int, int)
        ``KH, KW``.
    stride : int
        Step between patches (the same on both axes), >= 1.
    padding : int
        Zeros added on every side, >= 0.
    out : ndarray of shape (N*H_out*W_out, KH*KW*C), optional
        Buffer to write into (reused between calls to avoid allocating); same dtype as ``x``.
        It may be a column slice of a wider matrix (rows need not be contiguous).

    Returns
    -------
    cols : ndarray of shape (N*H_out*W_out, KH*KW*C)
        ``cols[(n*H_out + h)*W_out + w, (i*KW + j)*C + c] = x_pad[n, c, h*stride + i,
        w*stride + j]``.
    """
    check_float_array(x, "im2col: x")
    kh, kw, s, p, h_out, w_out = _check_geometry(x.shape, kernel_size, stride, padding)
    n, c, _, _ = x.shape
    shape = (n * h_out * w_out, kh * kw * c)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    elif not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != x.dtype:
        raise ValueError(f"im2col: out must have shape {shape} and dtype {x.dtype}, "
                         f"got {getattr(out, 'shape', None)} {getattr(out, 'dtype', None)}")
    xp = to_nhwc(x, p)  # (N, H_pad, W_pad, C)
    try:
        dst = reshape_view(out, (n, h_out, w_out, kh, kw, c))  # view of out
    except ValueError:
        raise ValueError("im2col: out must have unit stride along its columns (e.g. a C-ordered "
                         "array or a column slice of one)") from None
    dst[...] = patch_view(xp, (kh, kw), s, (h_out, w_out))  # (N, H_out, W_out, KH, KW, C)
    return out


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """Fold rows back into an image, summing overlapping patches (adjoint of :func:`im2col`).

    Parameters
    ----------
    cols : ndarray of shape (N*H_out*W_out, KH*KW*C)
        Patch matrix, e.g. the gradient ``dout_mat @ W_mat`` of a convolution.
    x_shape : tuple (N, C, H, W)
        Shape of the image the rows were unfolded from.
    kernel_size, stride, padding
        As in :func:`im2col`.

    Returns
    -------
    x : ndarray of shape (N, C, H, W), dtype of ``cols``, channels-last in memory
        ``x[n, c, y, z] = sum of the cols entries that im2col copied from x_pad[n, c, y+p, z+p]``,
        so that ``<im2col(x), cols> == <x, col2im(cols)>``.
    """
    check_float_array(cols, "col2im: cols", ndim=2)
    kh, kw, s, p, h_out, w_out = _check_geometry(tuple(x_shape), kernel_size, stride, padding,
                                                 name="col2im")
    n, c, h, w = x_shape
    expected = (n * h_out * w_out, kh * kw * c)
    if cols.shape != expected:
        raise ValueError(f"col2im: cols must have shape {expected} for x_shape {tuple(x_shape)}, "
                         f"got {cols.shape}")
    dxp = np.zeros((n, h + 2 * p, w + 2 * p, c), dtype=cols.dtype)  # (N, H_pad, W_pad, C)
    fold_add(cols.reshape(n, h_out, w_out, kh, kw, c), dxp, (kh, kw), s)
    return dxp[:, p:p + h, p:p + w].transpose(0, 3, 1, 2)  # (N, C, H, W) view


def im2col_naive(x, kernel_size, stride=1, padding=0):
    """Loop-by-loop twin of :func:`im2col` (slow; for tests and for reading)."""
    check_float_array(x, "im2col_naive: x")
    kh, kw, s, p, h_out, w_out = _check_geometry(x.shape, kernel_size, stride, padding,
                                                 name="im2col_naive")
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.empty((n * h_out * w_out, kh * kw * c), dtype=x.dtype)
    for b in range(n):
        for y in range(h_out):
            for z in range(w_out):
                row = (b * h_out + y) * w_out + z
                for i in range(kh):
                    for j in range(kw):
                        for ch in range(c):
                            col = (i * kw + j) * c + ch
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
                for i in range(kh):
                    for j in range(kw):
                        for ch in range(c):
                            col = (i * kw + j) * c + ch
                            xp[b, ch, y * s + i, z * s + j] += cols[row, col]
    return xp[:, :, p:p + h, p:p + w].copy()
