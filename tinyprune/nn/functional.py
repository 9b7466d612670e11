"""Pure forward/backward pairs for every layer (CS231n style).

Each layer is two functions::

    out, cache = layer_forward(x, ...)
    dx, dparams... = layer_backward(dout, cache)

They hold no state, never modify their inputs and work in float32 or float64 (the dtype of ``x``).
Shapes follow PyTorch: activations are NCHW, a Linear weight is ``(out, in)`` and a Conv2d weight is
``(C_out, C_in, KH, KW)``. Input checks are the callers' job (the layer classes in
:mod:`tinyprune.nn.layers` validate shapes and dtypes once, with the layer's name in the message);
these functions check only what they need to compute safely.

Memory layout
    Only the *shape* of an activation is fixed (NCHW). Convolution and max-pooling outputs are
    channels-last in memory, returned as the NCHW view ``y_nhwc.transpose(0, 3, 1, 2)``: that is the
    order in which the convolution GEMM produces them and in which the next im2col and the pooling
    windows read them (see :mod:`tinyprune.nn.im2col`). Elementwise layers keep the layout of their
    input. Call ``np.ascontiguousarray(y)`` for a C-ordered NCHW copy.

Speed
    These kernels are memory-bound on a CPU, so they avoid passes over large arrays: the bias is
    folded into the convolution GEMM (a column of ones in ``cols``), the batch is processed in
    chunks that stay in cache, and the optional ``workspace`` dict keeps large scratch buffers
    between calls (the layer classes pass one each).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .bernoulli import keep_mask
from .im2col import conv_output_size, fold_add, patch_view, reshape_view, to_nhwc
from .validation import check_pair

_CHUNK_BYTES = 2 << 20  # im2col scratch per batch chunk of a convolution (measured: 1-2 MiB)
_POOL_CHUNK_BYTES = 1 << 19  # input bytes per batch chunk of the 2x2 max-pool


def _buffer(workspace, key, shape, dtype):
    """A scratch array of ``shape``/``dtype``: reused from ``workspace`` (a dict) when it fits."""
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    buf = workspace.get(key)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = workspace[key] = np.empty(shape, dtype=dtype)
    return buf


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
    when there is a bias. Layout: ``(rows, K (+1))`` as :func:`~tinyprune.nn.im2col.im2col`, or,
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
    """2-D cross-correlation (what deep-learning libraries call convolution) via im2col + GEMM.

    .. math:: out[n, o, h, w] = b[o] + \\sum_{c,i,j} W[o, c, i, j]\\,
              x_{pad}[n, c, h s + i, w s + j]

    With ``cols`` from :func:`~tinyprune.nn.im2col.im2col` (one row per output position) and a
    column of ones appended, ``out_rows = [cols, 1] @ [W_mat; b]`` is one GEMM whose result is the
    output in channels-last order. The batch is processed in chunks of images, each unfolded into
    the same scratch buffer, so that the patches are still in cache when the GEMM reads them
    (``cols`` is 9x the input for a 3x3 kernel: writing all of it to memory and reading it back
    costs more than unfolding each chunk again in the backward pass).

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
    cache : tuple or None
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

    Computes what :func:`conv2d_forward` followed by :func:`maxpool2d_forward` (``kernel_size=2``)
    computes, one batch chunk at a time: each chunk's GEMM result is pooled while it is still in
    cache. The GEMM rows of an image are ordered ``(h, w % 2, w // 2)`` (even output columns,
    then odd ones), so the four members of each pooling window, ``(2i, 2j)``, ``(2i, 2j+1)``,
    ``(2i+1, 2j)`` and ``(2i+1, 2j+1)``, sit in four blocks of ``W_out/2 * C_out`` consecutive
    numbers: the pooling runs on long contiguous rows instead of 2-element windows.

    The result equals the two-step one up to float rounding inside the GEMM (BLAS may round a row
    differently at another position in the matrix); with integer-valued inputs and weights it is
    identical, ties included (tested). The max-pool keeps PyTorch's tie rule (first maximum in
    row-major window order).

    Parameters
    ----------
    x, w, b, stride, padding, train, workspace
        As :func:`conv2d_forward`. ``H_out`` and ``W_out`` of the convolution must be even.

    Returns
    -------
    out : ndarray (N, C_out, H_out/2, W_out/2), a channels-last view
    conv_cache, pool_cache : tuples for :func:`conv2d_backward` and :func:`maxpool2d_backward`
        (None when ``train`` is False)
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
    pool_cache = ((n, c_out, h_out, w_out), "2x2", bits, (2, 2, 2, 0))
    return out.transpose(0, 3, 1, 2), conv_cache, pool_cache


def conv2d_backward(dout, cache, need_dx=True, *, workspace=None):
    """Gradients of :func:`conv2d_forward`.

    With ``D = dout`` laid out as ``(N*H_out*W_out, C_out)`` (channels-last rows):
    ``[dW_mat; db] = [cols, 1]^T D`` (one GEMM gives both; ``cols`` is unfolded again, chunk by
    chunk), and ``dx = col2im(D W_mat^T)``, computed per kernel offset ``(i, j)``: the block
    ``D W[:, :, i, j]`` of shape ``(rows, C_in)`` is added into the input gradient shifted by
    ``(i, j)`` (a loop over the ``KH*KW`` offsets only).

    Parameters
    ----------
    dout : ndarray (N, C_out, H_out, W_out), any memory layout
    cache : tuple from :func:`conv2d_forward` (``train=True``)
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


def _pool_geometry(x_shape, kernel_size, stride, padding):
    kh, kw = check_pair(kernel_size, "maxpool2d: kernel_size", minimum=1)
    s = kh if stride is None else stride
    h_out = conv_output_size(x_shape[2], kh, s, padding)
    w_out = conv_output_size(x_shape[3], kw, s, padding)
    return kh, kw, s, padding, h_out, w_out


def maxpool2d_forward(x, kernel_size=2, stride=None, padding=0, *, train=True):
    """Max pooling over ``KH x KW`` windows.

    ``stride`` defaults to ``kernel_size`` (PyTorch's default). Padding is with ``-inf``. When several
    entries of a window share the maximum, the gradient goes to the first one in row-major window
    order (as PyTorch does), so the backward pass is a true function of the cache.

    Two kernels compute the same thing:

    * 2x2 windows with stride 2 and no padding (the common case): the windows tile the image, so
      ``x`` is reshaped (no copy) to ``(N, H_out, 2, W_out, 2, C)``; the maximum of each row pair
      and then of the two rows is three ``np.maximum`` calls, and three boolean arrays record which
      side won each comparison (``>=``: ties keep the first, i.e. the row-major first maximum).
    * any other geometry: a loop over the ``KH*KW`` window offsets keeping a running maximum and
      the offset of the first maximum (``uint8``).

    Parameters
    ----------
    x : ndarray (N, C, H, W), any memory layout
    kernel_size : int or (int, int)
    stride : int or None
    padding : int
    train : bool
        When False, no cache is built (returns None).

    Returns
    -------
    out : ndarray (N, C, H_out, W_out), a channels-last view
    cache : tuple or None
    """
    kh, kw, s, p, h_out, w_out = _pool_geometry(x.shape, kernel_size, stride, padding)
    n, c, h, w = x.shape
    xt = x.transpose(0, 2, 3, 1)  # (N, H, W, C) view
    if (kh, kw, s, p) == (2, 2, 2, 0):
        return _maxpool2x2_forward(xt, h_out, w_out, train)

    if p > 0:
        xp = np.full((n, h + 2 * p, w + 2 * p, c), -np.inf, dtype=x.dtype)  # (N, H_pad, W_pad, C)
        xp[:, p:p + h, p:p + w] = xt
    else:
        xp = xt
    h_end, w_end = s * (h_out - 1) + 1, s * (w_out - 1) + 1
    out = xp[:, 0:h_end:s, 0:w_end:s].copy()  # (N, H_out, W_out, C)
    arg = np.zeros(out.shape, dtype=np.uint8 if kh * kw <= 256 else np.uint16)
    upd = np.empty(out.shape, dtype=bool)
    for k in range(1, kh * kw):  # loop over the window offsets only
        i, j = divmod(k, kw)
        window = xp[:, i:i + h_end:s, j:j + w_end:s]  # (N, H_out, W_out, C) view
        np.greater(window, out, out=upd)  # strict: the first maximum keeps the gradient
        np.copyto(out, window, where=upd)
        np.copyto(arg, k, where=upd)
    cache = (x.shape, "general", arg, (kh, kw, s, p)) if train else None
    return out.transpose(0, 3, 1, 2), cache


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
    cache = (tuple(xt.transpose(0, 3, 1, 2).shape), "2x2", bits, (2, 2, 2, 0)) if train else None
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


def maxpool2d_backward(dout, cache):
    """Gradient of :func:`maxpool2d_forward`: ``dout`` routed to each window's (first) arg-max.

    Returns
    -------
    dx : ndarray (N, C, H, W), a channels-last view
    """
    x_shape, kind, saved, (kh, kw, s, p) = cache
    n, c, h, w = x_shape
    dt = dout.dtype
    d = np.ascontiguousarray(dout.transpose(0, 2, 3, 1))  # (N, H_out, W_out, C)
    h_out, w_out = d.shape[1], d.shape[2]
    if kind == "2x2":
        return _maxpool2x2_backward(d, x_shape, saved)

    arg = saved
    dxp = np.zeros((n, h + 2 * p, w + 2 * p, c), dtype=dt)  # (N, H_pad, W_pad, C)
    h_end, w_end = s * (h_out - 1) + 1, s * (w_out - 1) + 1
    hit = np.empty(arg.shape, dtype=bool)
    for k in range(kh * kw):  # loop over the window offsets only
        i, j = divmod(k, kw)
        np.equal(arg, k, out=hit)
        dst = dxp[:, i:i + h_end:s, j:j + w_end:s]  # (N, H_out, W_out, C) view
        dst += d * hit
    return dxp[:, p:p + h, p:p + w].transpose(0, 3, 1, 2)  # (N, C, H, W) view


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


def relu_forward(x, *, train=True):
    """``out = max(x, 0)`` (same memory layout as ``x``); the cache is ``out`` itself.

    (``out > 0`` exactly where ``x > 0``. Keeping a separate boolean mask instead was measured
    slower: one more pass in the forward, and a casting multiply in the backward.)
    When ``train`` is False the cache is None.
    """
    out = np.empty_like(x)  # the memory layout of x
    rows = _memory_rows(x, out)
    if rows is None or rows[0].shape[1] < 64:
        np.maximum(x, x.dtype.type(0), out=out)
    else:  # against a row of zeros, not a scalar: NumPy's SIMD loop is ~3x faster (measured)
        np.maximum(rows[0], np.zeros(rows[0].shape[1], dtype=x.dtype), out=rows[1])
    return out, (out if train else None)


def _memory_rows(*arrays):
    """The arrays (same shape and layout) as 2-D C-contiguous views ``(n, rest)`` in the memory
    order of the first one, ``n`` being its slowest axis (the batch axis of an NCHW or a
    channels-last activation); None when one of them is not a single contiguous block."""
    a = arrays[0]
    if a.ndim < 2 or a.size == 0:
        return None
    perm = np.argsort(a.strides, kind="stable")[::-1]  # axes from slowest to fastest in memory
    views = [b.transpose(perm) for b in arrays]
    if not all(v.flags.c_contiguous for v in views):
        return None
    return [v.reshape(v.shape[0], -1) for v in views]


def relu_backward(dout, cache):
    """``dx = dout * [out > 0]``, in the memory layout of ``dout``, or of ``out`` when they differ.

    (When they differ, ``dout`` is first copied into the layout of ``out``: NumPy multiplies a
    float array by a boolean one of another layout about 4x slower than the copy and a
    same-layout multiply together, measured.)
    """
    mask = cache > 0  # the layout of cache
    if _memory_rows(dout, cache) is None and _memory_rows(cache) is not None:
        dx = np.empty_like(cache, dtype=dout.dtype)
        np.copyto(dx, dout)
        return np.multiply(dx, mask, out=dx)
    return np.multiply(dout, mask)


def dropout_forward(x, p, rng, train=True):
    """Inverted dropout (Srivastava et al., 2014): zero each entry with probability ``p`` and scale
    the survivors by ``1 / (1 - p)`` during training, so inference is the identity.

    Parameters
    ----------
    x : ndarray, any shape and memory layout
    p : float in [0, 1)
    rng : numpy.random.Generator
        Source of the keep mask (explicit, so runs are reproducible). The mask is
        ``rng.random(x.shape, dtype=x.dtype) >= p`` (one uniform number per entry, in C order of
        ``x.shape``, whatever the memory layout of ``x``), computed from the raw bits without
        making the floats (:func:`~tinyprune.nn.bernoulli.keep_mask`: same mask, same final state
        of ``rng``).
    train : bool
        When False, returns ``x`` unchanged and an empty cache.

    Returns
    -------
    out : ndarray like x, C-contiguous
    cache : ndarray like x (the scaled keep mask ``[u >= p] / (1 - p)``) or None
    """
    if not train or p == 0.0:
        return x, None
    dt = x.dtype
    keep = keep_mask(rng, x.shape, p, dt)  # (x.shape) bool: rng.random(x.shape, dt) >= p
    scale = np.multiply(keep, dt.type(1.0 / (1.0 - p)))  # the mask / (1 - p)
    out = np.empty(x.shape, dtype=dt)
    if x.flags.c_contiguous:
        np.multiply(x, scale, out=out)
    else:  # copy into C order first: faster than a multiply across two layouts (measured)
        np.copyto(out, x)
        np.multiply(out, scale, out=out)
    return out, scale


def dropout_backward(dout, cache):
    """``dx = dout * mask / (1 - p)`` (identity when the forward pass was in inference mode)."""
    return dout if cache is None else np.multiply(dout, cache)


def flatten_forward(x):
    """``(N, ...) -> (N, prod(...))`` in C order (PyTorch's ``torch.flatten(x, 1)``).

    A view when ``x`` is C-contiguous, otherwise one copy (e.g. of a channels-last activation).
    """
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout, cache):
    """Reshape the gradient back to the input's shape."""
    return dout.reshape(cache)
