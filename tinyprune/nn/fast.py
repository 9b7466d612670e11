"""Speed kernels: the results of :mod:`tinyprune.nn.functional`, computed faster.

Read :mod:`tinyprune.nn.functional` first: it holds the formulas. Each function here names the
reference it must equal and is tested against it (``tests/test_fast.py``): bit for bit where only
the memory traffic changes (max-pool, ReLU backward), up to float rounding where a GEMM adds its
products in another order (the convolution; identical on integer-valued data). The layers use
these kernels when ``fast`` is True (the default); ``Sequential(..., fast=False)`` runs the
references instead.

The kernels are memory-bound on a CPU, so they avoid passes over large arrays:

Channels-last memory
    Only the *shape* of an activation is fixed (NCHW). Convolution and max-pooling outputs are
    channels-last in memory, returned as the NCHW view ``y_nhwc.transpose(0, 3, 1, 2)``: that is
    the order in which the convolution GEMM produces them and in which the next unfold and the
    pooling windows read them. With the image held as ``(N, H, W, C)``, the patch of an output
    position is ``KH`` runs of ``KW*C`` consecutive numbers, so the unfold copies long runs; its
    columns are therefore ordered ``(i, j, c)`` rather than im2col's ``(c, i, j)``, and the
    weight matrix is permuted to match. A ReLU keeps the layout of its input. Call
    ``np.ascontiguousarray(y)`` for a C-ordered NCHW copy.
Batch chunks
    The unfolded input is 9x the input for a 3x3 kernel: instead of writing all of it to memory
    and reading it back, the batch is unfolded a chunk of images at a time into one scratch
    buffer that stays in cache while the GEMM reads it (and again in the backward pass).
Fewer passes
    The bias is folded into the convolution GEMM (a column of ones in the unfolded input); a
    convolution followed by a 2x2 max-pool is computed in one pass
    (:func:`conv2d_maxpool2x2_forward`); scratch buffers are kept between calls in a
    ``workspace`` dict (the layer classes pass one each).

The other two speed-ups of the fast path, a ReLU run after the max-pool that follows it and
inference in batch chunks, are done by the container (see ``Sequential.fast``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from . import functional as F
from .im2col import conv_output_size

_CHUNK_BYTES = 2 << 20  # unfolded input per batch chunk of a convolution: stays in the caches
_POOL_CHUNK_BYTES = 1 << 19  # input bytes per batch chunk of the 2x2 max-pool


# ------------------------------------------------------------------ channels-last building blocks


def _buffer(workspace, key, shape, dtype):
    """A scratch array of ``shape``/``dtype``: reused from ``workspace`` (a dict) when it fits."""
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    buf = workspace.get(key)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = workspace[key] = np.empty(shape, dtype=dtype)
    return buf


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
    blocks : ndarray (KH*KW, N, H_out, W_out, C)
        Contribution of each kernel offset ``(i, j)``, read as ``blocks[i*KW + j]``.
    dxp : ndarray (N, H_pad, W_pad, C)
        Accumulated **in place**: ``dxp[n, h*s + i, w*s + j, c] += blocks[i*KW + j, n, h, w, c]``.
    kernel_size : (int, int)
    stride : int
    """
    kh, kw = kernel_size
    h_out, w_out = blocks.shape[2:4]
    h_end, w_end = stride * (h_out - 1) + 1, stride * (w_out - 1) + 1
    for i in range(kh):  # loop over the KH*KW kernel offsets only
        for j in range(kw):
            dst = dxp[:, i:i + h_end:stride, j:j + w_end:stride]  # (N, H_out, W_out, C) view
            np.add(dst, blocks[i * kw + j], out=dst)


# --------------------------------------------------------------------------------------- conv2d


def _weight_matrix(w, b):
    """``[W_mat; b]``: the GEMM operand ``(KH*KW*C_in (+1), C_out)``, rows ordered ``(i, j, c)``."""
    c_out, c_in, kh, kw = w.shape
    k = kh * kw * c_in
    wmat = np.empty((k + (b is not None), c_out), dtype=w.dtype)  # (K (+1), C_out)
    wmat[:k].reshape(kh, kw, c_in, c_out)[...] = w.transpose(2, 3, 1, 0)  # (KH, KW, C_in, C_out)
    if b is not None:
        wmat[k] = b
    return wmat


def _images_per_chunk(bytes_per_image):
    return max(1, _CHUNK_BYTES // max(1, bytes_per_image))


class _Unfolder:
    """im2col of a channels-last padded input, one batch chunk at a time, into a reused buffer.

    ``cols(n0, n1)`` returns the patch matrix of images ``n0:n1`` with a trailing column of ones
    when there is a bias: the rows of :func:`~tinyprune.nn.im2col.im2col`, with the columns in
    ``(i, j, c)`` order (the order of a channels-last patch). Layout: ``(rows, K (+1))``, or,
    when a patch row is too short for an efficient copy (``KW*C_in < 16``, e.g. a first layer on
    grey images), its transpose ``(K (+1), rows)``, filled with runs along the image width; the
    GEMMs then take ``cols.T``. ``matrix(cc)`` always gives the ``(rows, K (+1))`` view.

    With ``parity=True`` (even ``W_out``) the rows of an image are ordered ``(h, w % 2, w // 2)``
    instead of ``(h, w)``: even output columns first, then odd ones (see
    :func:`conv2d_maxpool2x2_forward`).
    """

    def __init__(self, xp, kernel_size, stride, out_hw, has_bias, step, workspace, parity=False):
        self.xp, self.kernel_size, self.stride, self.out_hw = xp, kernel_size, stride, out_hw
        kh, kw = kernel_size
        n, c = xp.shape[0], xp.shape[3]
        h_out, w_out = out_hw
        self.k = kh * kw * c
        self.m = h_out * w_out  # rows per image
        self.transposed = kw * c < 16
        kb = self.k + has_bias
        rows = min(n, step) * self.m
        shape = (kb, rows) if self.transposed else (rows, kb)
        self.buf = _buffer(workspace, "colsT" if self.transposed else "cols", shape, xp.dtype)
        if has_bias:  # the column of ones; the unfold never overwrites it
            (self.buf[self.k] if self.transposed else self.buf[:, self.k])[...] = 1
        patches = patch_view(xp, kernel_size, stride, out_hw)  # (N, H_out, W_out, KH, KW, C)
        self.row_shape = (h_out, w_out)
        if parity:
            self.row_shape = (h_out, 2, w_out // 2)
            patches = patches.reshape(n, h_out, w_out // 2, 2, kh, kw, c).transpose(
                0, 1, 3, 2, 4, 5, 6)  # (N, H_out, 2, W_out/2, KH, KW, C)
        if self.transposed:
            r = len(self.row_shape)
            patches = patches.transpose(*range(r + 1, r + 4), 0, *range(1, r + 1))
            # (KH, KW, C, N, *row_shape)
        self.patches = patches

    def cols(self, n0, n1):
        rows = (n1 - n0) * self.m
        kh, kw = self.kernel_size
        c = self.xp.shape[3]
        if self.transposed:
            cc = self.buf[:, :rows]  # (K (+1), rows)
            dst = reshape_view(cc[:self.k], (kh, kw, c, n1 - n0, *self.row_shape))
            dst[...] = self.patches[:, :, :, n0:n1]  # (KH, KW, C, n, *row_shape)
            return cc
        cc = self.buf[:rows]  # (rows, K (+1))
        dst = reshape_view(cc[:, :self.k], (n1 - n0, *self.row_shape, kh, kw, c))
        dst[...] = self.patches[n0:n1]  # (n, *row_shape, KH, KW, C): one copy
        return cc

    def matrix(self, cc):
        return cc.T if self.transposed else cc


def _conv_setup(x_shape, w, stride, padding):
    n, c_in, h, wd = x_shape
    c_out, _, kh, kw = w.shape
    h_out = conv_output_size(h, kh, stride, padding)
    w_out = conv_output_size(wd, kw, stride, padding)
    return n, c_in, h, wd, c_out, kh, kw, h_out, w_out


def _channels_last_padded(x, padding, workspace):
    """``x`` (N, C, H, W) as a channels-last padded array: a view when it already is one."""
    n, c, h, w = x.shape
    xt = x.transpose(0, 2, 3, 1)  # (N, H, W, C) view
    if padding == 0 and xt.flags.c_contiguous:
        return xt  # already channels-last: no copy
    shape = (n, h + 2 * padding, w + 2 * padding, c)
    return to_nhwc(x, padding, out=_buffer(workspace, "xpad", shape, x.dtype))


def conv2d_forward(x, w, b, stride=1, padding=0, *, train=True, workspace=None):
    """Fast :func:`tinyprune.nn.functional.conv2d_forward` (equal up to float rounding).

    The same GEMM, ``out_rows = [cols, 1] @ [W_mat; b]`` (the bias as a column of ones), with
    ``cols`` unfolded from a channels-last input in ``(i, j, c)`` column order, one batch chunk at
    a time into the same scratch buffer (see the module docstring). The GEMM adds each output's
    ``C_in*KH*KW`` products in another order than the reference, so results agree to float
    rounding (``rtol`` 1e-5 in float32, 1e-12 in float64), and exactly on integer-valued data.

    Parameters
    ----------
    x : ndarray (N, C_in, H, W), any memory layout
    w : ndarray (C_out, C_in, KH, KW)
    b : ndarray (C_out,) or None
    stride, padding : int
    train : bool
        Return the cache for :func:`conv2d_backward` (the channels-last padded input: a view of
        ``x`` when it already is channels-last and unpadded). When False the cache is None.
    workspace : dict, optional
        Scratch buffers reused between calls (``"cols"``, ``"xpad"``...). Results never alias
        them, but a cache may (``"xpad"``), so a later call with the same workspace invalidates an
        older cache.

    Returns
    -------
    out : ndarray (N, C_out, H_out, W_out), a channels-last view
    cache : tuple or None (for :func:`conv2d_backward` of this module only)
    """
    n, c_in, h, wd, c_out, kh, kw, h_out, w_out = _conv_setup(x.shape, w, stride, padding)
    dt = x.dtype
    wmat = _weight_matrix(w, b)  # (K (+1), C_out)
    xp = _channels_last_padded(x, padding, workspace)  # (N, H_pad, W_pad, C_in)
    m = h_out * w_out  # output positions (GEMM rows) per image
    step = _images_per_chunk(m * wmat.shape[0] * dt.itemsize)
    unfold = _Unfolder(xp, (kh, kw), stride, (h_out, w_out), b is not None, step, workspace)
    out = np.empty((n * m, c_out), dtype=dt)  # (N*H_out*W_out, C_out): NHWC order
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        cc = unfold.cols(n0, n1)
        np.matmul(unfold.matrix(cc), wmat, out=out[n0 * m:n1 * m])  # (rows, C_out)
    out = out.reshape(n, h_out, w_out, c_out).transpose(0, 3, 1, 2)  # (N, C_out, H_out, W_out)
    cache = (x.shape, xp, w, b is not None, stride, padding) if train else None
    return out, cache


def conv2d_maxpool2x2_forward(x, w, b, stride=1, padding=0, *, train=True, workspace=None):
    """A convolution followed by a 2x2 / stride-2 max-pool, without storing the convolution output.

    Computes what :func:`tinyprune.nn.functional.conv2d_forward` followed by
    :func:`tinyprune.nn.functional.maxpool2d_forward` (``kernel_size=2``) computes, one batch
    chunk at a time: each chunk's GEMM result is pooled while it is still in cache. The GEMM rows
    of an image are ordered ``(h, w % 2, w // 2)`` (even output columns, then odd ones), so the
    four members of each pooling window, ``(2i, 2j)``, ``(2i, 2j+1)``, ``(2i+1, 2j)`` and
    ``(2i+1, 2j+1)``, sit in four blocks of ``W_out/2 * C_out`` consecutive numbers: the pooling
    runs on long contiguous rows instead of 2-element windows.

    The result equals the two-step one up to float rounding inside the GEMM (as
    :func:`conv2d_forward`; BLAS may also round a row differently at another position in the
    matrix); with integer-valued inputs and weights it is identical, ties included. The max-pool
    keeps PyTorch's tie rule (first maximum in row-major window order).

    Parameters
    ----------
    x, w, b, stride, padding, train, workspace
        As :func:`conv2d_forward`. ``H_out`` and ``W_out`` of the convolution must be even.

    Returns
    -------
    out : ndarray (N, C_out, H_out/2, W_out/2), a channels-last view
    conv_cache, pool_cache : tuples for :func:`conv2d_backward` and :func:`maxpool2d_backward`
        of this module (None when ``train`` is False)
    """
    n, c_in, h, wd, c_out, kh, kw, h_out, w_out = _conv_setup(x.shape, w, stride, padding)
    if h_out % 2 or w_out % 2:
        raise ValueError(f"conv2d_maxpool2x2_forward: the convolution output must have even "
                         f"height and width, got {h_out}x{w_out}")
    dt = x.dtype
    wmat = _weight_matrix(w, b)  # (K (+1), C_out)
    xp = _channels_last_padded(x, padding, workspace)  # (N, H_pad, W_pad, C_in)
    m = h_out * w_out
    step = _images_per_chunk(m * wmat.shape[0] * dt.itemsize)
    unfold = _Unfolder(xp, (kh, kw), stride, (h_out, w_out), b is not None, step, workspace,
                       parity=True)
    hp, wq = h_out // 2, w_out // 2
    y = _buffer(workspace, "convout", (min(n, step) * m, c_out), dt)  # one chunk's conv output
    out = np.empty((n, hp, wq, c_out), dtype=dt)  # (N, H_out/2, W_out/2, C_out)
    bits = tuple(np.empty(out.shape, dtype=bool) for _ in range(3)) if train else None
    top = np.empty((min(n, step), hp, wq, c_out), dtype=dt)  # scratch
    bottom = np.empty_like(top)
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        cc = unfold.cols(n0, n1)
        yc = y[:(n1 - n0) * m]
        np.matmul(unfold.matrix(cc), wmat, out=yc)  # (rows, C_out), rows (n, h, w % 2, w // 2)
        y6 = yc.reshape(n1 - n0, hp, 2, 2, wq, c_out)  # (n, i, row in window, w % 2, j, C_out)
        p00, p01 = y6[:, :, 0, 0], y6[:, :, 0, 1]  # (n, H_out/2, W_out/2, C_out) each
        p10, p11 = y6[:, :, 1, 0], y6[:, :, 1, 1]
        _max_of_window((p00, p01, p10, p11), out[n0:n1],
                       bits and [a[n0:n1] for a in bits], top[:n1 - n0], bottom[:n1 - n0])
    if not train:
        return out.transpose(0, 3, 1, 2), None, None
    conv_cache = (x.shape, xp, w, b is not None, stride, padding)
    pool_cache = ("2x2", (n, c_out, h_out, w_out), bits)
    return out.transpose(0, 3, 1, 2), conv_cache, pool_cache


def conv2d_backward(dout, cache, need_dx=True, *, workspace=None):
    """Fast :func:`tinyprune.nn.functional.conv2d_backward` (equal up to float rounding).

    With ``D = dout`` laid out as ``(N*H_out*W_out, C_out)`` (channels-last rows):
    ``[dW_mat; db] = [cols, 1]^T D`` (one GEMM gives both; ``cols`` is unfolded again, chunk by
    chunk), and ``dx = col2im(D W_mat^T)``, computed per kernel offset ``(i, j)``: the block
    ``D W[:, :, i, j]`` of shape ``(rows, C_in)`` is added into the input gradient shifted by
    ``(i, j)`` (a loop over the ``KH*KW`` offsets only). Exact on integer-valued data.

    Parameters
    ----------
    dout : ndarray (N, C_out, H_out, W_out), any memory layout
    cache : tuple from :func:`conv2d_forward` or :func:`conv2d_maxpool2x2_forward` of this
        module (``train=True``)
    need_dx : bool
        False skips the input gradient (the first layer of a network needs none).
    workspace : dict, optional
        Scratch buffers (``"cols"``, ``"dcols"``, ``"dgrid"``).

    Returns
    -------
    dx : ndarray (N, C_in, H, W), channels-last view, or None (when ``need_dx`` is False)
    dw : ndarray (C_out, C_in, KH, KW)
    db : ndarray (C_out,) or None
    """
    x_shape, xp, w, has_bias, stride, padding = cache
    n, c_in, h, wd, c_out, kh, kw, h_out, w_out = _conv_setup(x_shape, w, stride, padding)
    k = kh * kw * c_in
    m = h_out * w_out
    dt = dout.dtype
    d = np.ascontiguousarray(dout.transpose(0, 2, 3, 1)).reshape(n * m, c_out)  # (N*H_out*W_out, C_out)
    step = _images_per_chunk(m * (k + has_bias) * dt.itemsize)
    unfold = _Unfolder(xp, (kh, kw), stride, (h_out, w_out), has_bias, step, workspace)
    gw = np.zeros((k + has_bias, c_out), dtype=dt)  # (K (+1), C_out)
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        cc = unfold.cols(n0, n1)
        gw += unfold.matrix(cc).T @ d[n0 * m:n1 * m]  # [cols, 1]^T D for this chunk
    dw = np.ascontiguousarray(gw[:k].reshape(kh, kw, c_in, c_out).transpose(3, 2, 0, 1))
    db = gw[k].copy() if has_bias else None  # (C_out,)

    dx = None
    if need_dx:
        wk = np.ascontiguousarray(w.transpose(2, 3, 0, 1)).reshape(kh * kw, c_out, c_in)
        conv_input_grad = _conv_input_grad_stride1 if stride == 1 else _conv_input_grad
        dxp = conv_input_grad(d, wk, (n, h + 2 * padding, wd + 2 * padding, c_in), (kh, kw),
                              stride, (h_out, w_out), workspace)  # (N, H_pad, W_pad, C_in)
        p = padding
        dx = dxp[:, p:p + h, p:p + wd].transpose(0, 3, 1, 2)  # (N, C_in, H, W) view
    return dx, dw, db


def _conv_input_grad(d, wk, pad_shape, kernel_size, stride, out_hw, workspace):
    """``col2im(D W_mat^T)`` for any stride: per chunk of images, one batched GEMM gives the
    block ``D W[:, :, i, j]`` of every kernel offset, and :func:`fold_add` adds them in place."""
    n, _, _, c_in = pad_shape
    kk = kernel_size[0] * kernel_size[1]
    m = out_hw[0] * out_hw[1]
    dxp = np.empty(pad_shape, dtype=d.dtype)  # (N, H_pad, W_pad, C_in)
    step = _images_per_chunk(m * kk * c_in * d.dtype.itemsize)
    blocks = _buffer(workspace, "dcols", (kk, min(n, step) * m, c_in), d.dtype)
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        bl = blocks[:, :(n1 - n0) * m]  # (KH*KW, rows, C_in)
        np.matmul(d[n0 * m:n1 * m], wk, out=bl)  # block (i, j) = D W[:, :, i, j]
        dxc = dxp[n0:n1]
        dxc.fill(0)
        fold_add(bl.reshape(kk, n1 - n0, out_hw[0], out_hw[1], c_in), dxc, kernel_size, stride)
    return dxp


def _conv_input_grad_stride1(d, wk, pad_shape, kernel_size, stride, out_hw, workspace):
    """Stride-1 version of :func:`_conv_input_grad` whose scatter-adds are contiguous.

    Each image's output gradient is laid on a grid as wide as the padded input (``W_pad``
    columns, the last ``KW - 1`` of them zero), so that output position ``(h, z)`` and input
    position ``(h + i, z + j)`` are a *constant* ``(i*W_pad + j)`` apart in the flattened image.
    The block of offset ``(i, j)`` is then added to one contiguous slice of each flattened image
    (the zero columns carry the wrap-around into the next row, adding zeros). This costs
    ``W_pad / W_out`` more GEMM rows and saves the slow strided adds of the general fold.
    """
    n, hp, wp, c_in = pad_shape
    kh, kw = kernel_size
    h_out, w_out = out_hw
    c_out = d.shape[1]
    dt = d.dtype
    g = h_out * wp  # grid positions per image
    size = hp * wp * c_in  # one flattened padded image
    tail = (kw - 1) * c_in  # the last image's wrap-around spills this far past its end
    flat = np.empty(n * size + tail, dtype=dt)
    dxp = flat[:n * size].reshape(pad_shape)  # (N, H_pad, W_pad, C_in) view
    step = _images_per_chunk(g * kh * kw * c_in * dt.itemsize)
    nc = min(n, step)
    grid = _buffer(workspace, "dgrid", (nc, h_out, wp, c_out), dt)  # (n, H_out, W_pad, C_out)
    grid[:, :, w_out:] = 0  # the zero columns
    blocks = _buffer(workspace, "dcols", (kh * kw, nc * g, c_in), dt)
    d4 = d.reshape(n, h_out, w_out, c_out)  # (N, H_out, W_out, C_out) view
    isz = dt.itemsize
    # targets[n, i, j] = image n's flattened gradient from offset (i, j) on: overlapping views
    targets = as_strided(flat, shape=(n, kh, kw, g * c_in),
                         strides=(size * isz, wp * c_in * isz, c_in * isz, isz))
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        b = n1 - n0
        grid[:b, :, :w_out] = d4[n0:n1]
        bl = blocks[:, :b * g]  # (KH*KW, b*grid, C_in)
        np.matmul(grid[:b].reshape(b * g, c_out), wk, out=bl)  # block (i, j) = D W[:, :, i, j]
        images = flat[n0 * size:n1 * size + tail]
        images[b * size:] = 0  # the tail (the next chunk's start, or past the last image)
        reshape_view(images[:b * size], (b, size))[:, g * c_in:] = 0  # last KH-1 rows
        targets[n0:n1, 0, 0] = bl[0].reshape(b, g * c_in)  # offset (0, 0) covers the rest
        for k in range(1, kh * kw):  # loop over the kernel offsets only
            dst = targets[n0:n1, k // kw, k % kw]  # (b, grid*C_in)
            np.add(dst, bl[k].reshape(b, g * c_in), out=dst)
    return dxp



# ------------------------------------------------------------------------------------ max pool


def maxpool2d_forward(x, kernel_size=2, stride=None, padding=0, *, train=True):
    """Fast :func:`tinyprune.nn.functional.maxpool2d_forward` (bit-identical, ties included).

    For 2x2 windows with stride 2 and no padding (the common case) the windows tile the image, so
    the channels-last view of ``x`` is reshaped (no copy) to ``(N, H_out, 2, W_out, 2, C)``; the
    maximum of each row pair and then of the two rows is three ``np.maximum`` calls, on batch
    chunks that stay in cache, and three boolean arrays record which side won each comparison
    (``>=``: ties keep the first, i.e. the row-major first maximum, as the reference does).
    Any other geometry runs the reference.

    Parameters
    ----------
    x, kernel_size, stride, padding
        As the reference (``x`` in any memory layout).
    train : bool
        When False, no cache is built (returns None).

    Returns
    -------
    out : ndarray (N, C, H_out, W_out), a channels-last view for 2x2 windows
    cache : tuple or None (for :func:`maxpool2d_backward` of this module)
    """
    kh, kw, s, p, h_out, w_out = F._pool_geometry(x.shape, kernel_size, stride, padding)
    if (kh, kw, s, p) != (2, 2, 2, 0):
        out, cache = F.maxpool2d_forward(x, kernel_size, stride, padding)
        return out, (cache if train else None)
    return _maxpool2x2_forward(x.transpose(0, 2, 3, 1), h_out, w_out, train)


def maxpool2d_backward(dout, cache):
    """Fast :func:`tinyprune.nn.functional.maxpool2d_backward` (bit-identical).

    ``cache`` comes from :func:`maxpool2d_forward` or :func:`conv2d_maxpool2x2_forward` of this
    module. The gradient of a 2x2 window is split with the three recorded comparisons: top row
    or bottom row, then left or right (``d * bit`` and ``d - d * bit``, both exact).

    Returns
    -------
    dx : ndarray (N, C, H, W), a channels-last view for 2x2 windows
    """
    if cache[0] != "2x2":
        return F.maxpool2d_backward(dout, cache)
    _, x_shape, bits = cache
    d = np.ascontiguousarray(dout.transpose(0, 2, 3, 1))  # (N, H_out, W_out, C)
    return _maxpool2x2_backward(d, x_shape, bits)


def _pool_images_per_chunk(bytes_per_image):
    return max(1, _POOL_CHUNK_BYTES // max(1, bytes_per_image))


def _maxpool2x2_forward(xt, h_out, w_out, train):
    """2x2 / stride-2 max-pool of a channels-last view ``xt`` (N, H, W, C), in batch chunks."""
    n, _, _, c = xt.shape
    dt = xt.dtype
    out = np.empty((n, h_out, w_out, c), dtype=dt)  # (N, H_out, W_out, C)
    bits = tuple(np.empty(out.shape, dtype=bool) for _ in range(3)) if train else None
    step = _pool_images_per_chunk(4 * h_out * w_out * c * dt.itemsize)
    top = np.empty((min(n, step), h_out, w_out, c), dtype=dt)  # scratch, reused per chunk
    bottom = np.empty_like(top)
    for n0 in range(0, n, step):  # chunks of images: the scratch stays in cache
        n1 = min(n, n0 + step)
        x6 = reshape_view(xt[n0:n1, :2 * h_out, :2 * w_out],
                          (n1 - n0, h_out, 2, w_out, 2, c))  # (n, H_out, 2, W_out, 2, C): windows
        p00, p01 = x6[:, :, 0, :, 0], x6[:, :, 0, :, 1]  # (n, H_out, W_out, C) each
        p10, p11 = x6[:, :, 1, :, 0], x6[:, :, 1, :, 1]
        _max_of_window((p00, p01, p10, p11), out[n0:n1],
                       bits and [a[n0:n1] for a in bits], top[:n1 - n0], bottom[:n1 - n0])
    cache = ("2x2", tuple(xt.transpose(0, 3, 1, 2).shape), bits) if train else None
    return out.transpose(0, 3, 1, 2), cache


def _max_of_window(members, out, bits, top, bottom):
    """``out`` = the maximum of the four members ``(p00, p01, p10, p11)`` of each 2x2 window
    (arrays of one shape); ``bits`` (three bool arrays, or None) record which side won each
    comparison, ``>=`` keeping the first of equal values: top row over bottom row, left over
    right in the top row, left over right in the bottom row. ``top``/``bottom`` are scratch."""
    p00, p01, p10, p11 = members
    np.maximum(p00, p01, out=top)  # max of the top row of each window
    np.maximum(p10, p11, out=bottom)  # max of the bottom row
    np.maximum(top, bottom, out=out)
    if bits:
        np.greater_equal(top, bottom, out=bits[0])
        np.greater_equal(p00, p01, out=bits[1])
        np.greater_equal(p10, p11, out=bits[2])


def _maxpool2x2_backward(d, x_shape, bits):
    """Route ``d`` (N, H_out, W_out, C) to the first maximum of each 2x2 window."""
    n, c, h, w = x_shape
    h_out, w_out = d.shape[1], d.shape[2]
    dt = d.dtype
    top_wins, left_top, left_bottom = bits
    exact = (h, w) == (2 * h_out, 2 * w_out)
    dx = (np.empty if exact else np.zeros)((n, h, w, c), dtype=dt)  # (N, H, W, C)
    step = _pool_images_per_chunk(4 * h_out * w_out * c * dt.itemsize)
    d_top = np.empty((min(n, step), h_out, w_out, c), dtype=dt)  # scratch, reused per chunk
    d_bottom = np.empty_like(d_top)
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        dx6 = reshape_view(dx[n0:n1, :2 * h_out, :2 * w_out],
                           (n1 - n0, h_out, 2, w_out, 2, c))  # (n, H_out, 2, W_out, 2, C) view
        dt_, db_ = d_top[:n1 - n0], d_bottom[:n1 - n0]
        np.multiply(d[n0:n1], top_wins[n0:n1], out=dt_)  # gradient of the top row's maximum
        np.subtract(d[n0:n1], dt_, out=db_)  # exact: d - d = 0 and d - 0 = d
        for row, d_row, left in ((0, dt_, left_top), (1, db_, left_bottom)):
            dst_left = dx6[:, :, row, :, 0]  # (n, H_out, W_out, C) view
            np.multiply(d_row, left[n0:n1], out=dst_left)
            np.subtract(d_row, dst_left, out=dx6[:, :, row, :, 1])
    return dx.transpose(0, 3, 1, 2)


# ---------------------------------------------------------------------------------------- relu


def relu_backward(dout, cache):
    """Fast :func:`tinyprune.nn.functional.relu_backward` (bit-identical): ``dout * [out > 0]``.

    When ``dout`` and ``out`` (the cache) have different memory layouts, e.g. a C-ordered gradient
    coming back from a Flatten and a channels-last activation, ``dout`` is first copied into the
    layout of ``out``: NumPy multiplies two arrays of different layouts element by element in
    a slow strided loop, while a copy followed by a same-layout multiply runs at memory speed.
    """
    mask = cache > 0  # bool, in the memory layout of cache
    if dout.strides == cache.strides:
        return np.multiply(dout, mask)
    dx = np.empty_like(cache, dtype=dout.dtype)  # the memory layout of cache
    np.copyto(dx, dout)
    return np.multiply(dx, mask, out=dx)
