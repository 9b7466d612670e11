"""Engine assignments: conv forward via im2col, the linear layer's backward pass, masked SGD.

References: :func:`tinyprune.nn.functional.conv2d_forward`,
:func:`tinyprune.nn.functional.linear_backward`, :meth:`tinyprune.nn.optim.SGD.step` with masks.
"""

from __future__ import annotations

import numpy as np

from ..nn.functional import conv2d_forward, linear_backward
from ..nn.im2col import im2col
from ..nn.optim import SGD
from .cases import Assignment, Case, CaseGroup, Mistake, check_array, check_tuple, register, seeded

# ------------------------------------------------------------------------------ conv forward


def conv2d_reference(x, w, b, stride, padding):
    """Cross-correlation ``out[n, o, h, v] = b[o] + sum_{c,i,j} w[o, c, i, j] x_pad[n, c, h*s + i,
    v*s + j]``, shape ``(N, C_out, H_out, W_out)``, dtype of ``x``."""
    out, _ = conv2d_forward(x, w, b, stride, padding)
    return np.ascontiguousarray(out)


def _conv_order_mismatch(cols_first):
    """im2col columns in (i, j, c) order times w.reshape(C_out, -1), whose rows are (c, i, j)
    (``cols_first``), or columns (c, i, j) (as :func:`~tinyprune.nn.im2col.im2col` gives them)
    times w's rows in (i, j, c) order."""
    def variant(x, w, b, stride, padding):
        n, c_in, h, wd = x.shape
        c_out, _, kh, kw = w.shape
        h_out = (h + 2 * padding - kh) // stride + 1
        w_out = (wd + 2 * padding - kw) // stride + 1
        cols = im2col(x, (kh, kw), stride, padding)  # (N*H_out*W_out, C_in*KH*KW), (c, i, j)
        if cols_first:  # columns reordered to (i, j, c) against w's rows in (c, i, j) order
            cols = cols.reshape(-1, c_in, kh, kw).transpose(0, 2, 3, 1).reshape(cols.shape[0], -1)
            wmat = w.reshape(c_out, -1)  # (C_out, C_in*KH*KW), (c, i, j)
        else:  # columns (c, i, j) against w's rows in (i, j, c) order
            wmat = w.transpose(0, 2, 3, 1).reshape(c_out, -1)  # (C_out, KH*KW*C_in), (i, j, c)
        rows = cols @ wmat.T + b  # (N*H_out*W_out, C_out)
        return np.ascontiguousarray(rows.reshape(n, h_out, w_out, c_out).transpose(0, 3, 1, 2))
    return variant


def _conv_no_transpose(x, w, b, stride, padding):
    """The GEMM rows (N*H_out*W_out, C_out) reshaped straight to (N, C_out, H_out, W_out)."""
    out = conv2d_reference(x, w, b, stride, padding)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1)).reshape(out.shape)


def _conv_cases_fixed():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]], dtype=np.float32)  # Sobel
    rng = seeded(40)
    x3 = rng.standard_normal((2, 3, 5, 5))
    w3 = rng.standard_normal((4, 3, 3, 3))
    b3 = rng.standard_normal(4)
    w23 = rng.standard_normal((2, 3, 2, 3))
    return [Case("Sobel filter, 1 channel", (x, w, np.array([0.5], np.float32), 1, 0)),
            Case("3 -> 4 channels, padding 1", (x3, w3, b3, 1, 1)),
            Case("stride 2", (x3, w3, b3, 2, 0)),
            Case("stride 2, padding 1", (x3, w3, b3, 2, 1)),
            Case("1x1 kernel", (x3, w3[:, :, :1, :1].copy(), b3, 1, 0)),
            Case("2x3 kernel", (x3, w23, b3[:2], 1, 0))]


def _conv_cases_generated():
    cases = []
    for i in range(10):
        rng = seeded(4000 + i)
        dtype = np.float32 if i % 2 == 0 else np.float64
        n, c_in, c_out = (int(v) for v in rng.integers(1, 4, size=3))
        kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
        stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 2))
        h, wd = kh + int(rng.integers(0, 5)), kw + int(rng.integers(0, 5))
        x = rng.standard_normal((n, c_in, h, wd)).astype(dtype)
        w = rng.standard_normal((c_out, c_in, kh, kw)).astype(dtype)
        b = rng.standard_normal(c_out).astype(dtype)
        cases.append(Case(f"generated #{i}", (x, w, b, stride, padding)))
    return cases


register(Assignment(
    name="conv2d_im2col",
    function="conv2d_im2col",
    arg_names=("x", "w", "b", "stride", "padding"),
    reference=conv2d_reference,
    description="conv2d_im2col(x, w, b, stride, padding) -> (N, C_out, H_out, W_out): the "
                "convolution (cross-correlation) of NCHW x with w (C_out, C_in, KH, KW) via im2col.",
    groups=(CaseGroup("worked examples", 5.0, _conv_cases_fixed),
            CaseGroup("generated", 5.0, _conv_cases_generated)),
    compare=lambda expected, got: check_array(got, expected, "the output"),
    mistakes=(
        Mistake("missing_bias", "forgets the bias b[o] (added to every output position of "
                "channel o)", lambda x, w, b, s, p: conv2d_reference(x, w, None, s, p)),
        Mistake("im2col_order", "the im2col column order does not match the weight matrix's: "
                "e.g. columns (i, j, c) multiplied by w.reshape(C_out, -1), whose rows are (c, i, j)",
                (_conv_order_mismatch(True), _conv_order_mismatch(False))),
        Mistake("flipped_kernel", "flips the kernel (true convolution); deep-learning 'conv' is "
                "cross-correlation: w[o, c, i, j] meets x[..., h*s + i, v*s + j]",
                lambda x, w, b, s, p: conv2d_reference(x, w[:, :, ::-1, ::-1].copy(), b, s, p)),
        Mistake("reshape_without_transpose", "reshapes the GEMM result (N*H_out*W_out, C_out) "
                "directly to (N, C_out, H_out, W_out); reshape to (N, H_out, W_out, C_out) and "
                "transpose", _conv_no_transpose),
        Mistake("ignores_padding", "ignores the padding (pad x with zeros on every side first)",
                lambda x, w, b, s, p: conv2d_reference(x, w, b, s, 0)),
        Mistake("ignores_stride", "ignores the stride (output positions h*stride)",
                lambda x, w, b, s, p: conv2d_reference(x, w, b, 1, p)),
    ),
))


# ------------------------------------------------------------------------------ linear backward
def linear_backward_reference(dout, x, w):
    """``(dx, dw, db) = (dout @ w, dout.T @ x, dout.sum(axis=0))`` for ``out = x @ w.T + b``."""
    return linear_backward(dout, (x, w, True))


def _lin_variant(fdx=None, fdw=None, fdb=None):
    def variant(dout, x, w):
        dx, dw, db = linear_backward_reference(dout, x, w)
        return (dx if fdx is None else fdx(dout, x, w),
                dw if fdw is None else fdw(dout, x, w),
                db if fdb is None else fdb(dout, x, w))
    return variant


def _lin_case(rng, n, d_in, d_out, dtype):
    return (rng.standard_normal((n, d_out)).astype(dtype), rng.standard_normal((n, d_in)).astype(dtype),
            rng.standard_normal((d_out, d_in)).astype(dtype))


def _lin_cases_fixed():
    rng = seeded(50)
    dout = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]], dtype=np.float32)
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0], [2.0, 0.0, 0.0]], dtype=np.float32)
    w = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]], dtype=np.float32)
    return [Case("3 samples, 3 -> 2", (dout, x, w)),
            Case("one sample", _lin_case(rng, 1, 4, 3, np.float64)),
            Case("square weight", _lin_case(rng, 5, 4, 4, np.float64), "in = out = 4"),
            Case("wide layer", _lin_case(rng, 6, 10, 3, np.float32))]


def _lin_cases_generated():
    cases = []
    for i in range(10):
        rng = seeded(5000 + i)
        n, d_in, d_out = (int(v) for v in rng.integers(1, 9, size=3))
        cases.append(Case(f"generated #{i}", _lin_case(rng, n, d_in, d_out,
                                                       np.float32 if i % 2 == 0 else np.float64)))
    return cases


register(Assignment(
    name="linear_backward",
    function="linear_backward",
    arg_names=("dout", "x", "w"),
    reference=linear_backward_reference,
    description="linear_backward(dout, x, w) -> (dx, dw, db) for out = x @ w.T + b: "
                "dout (N, out), x (N, in), w (out, in).",
    groups=(CaseGroup("worked examples", 4.0, _lin_cases_fixed),
            CaseGroup("generated", 6.0, _lin_cases_generated)),
    compare=lambda expected, got: check_tuple(got, expected, ("dx", "dw", "db")),
    mistakes=(
        Mistake("dw_transposed", "dW is transposed: dW = dout^T x has the weight's shape "
                "(out, in), not x^T dout", _lin_variant(fdw=lambda d, x, w: x.T @ d)),
        Mistake("dx_transposed", "dx is transposed: dx = dout W has x's shape (N, in)",
                _lin_variant(fdx=lambda d, x, w: (d @ w).T)),
        Mistake("dx_uses_w_transposed", "dx uses W^T: for out = x W^T the input gradient is "
                "dout W", _lin_variant(fdx=lambda d, x, w: d @ w.T)),
        Mistake("db_mean", "db averages over the batch; it is the sum dout.sum(axis=0)",
                _lin_variant(fdb=lambda d, x, w: d.mean(axis=0))),
        Mistake("db_wrong_axis", "db sums over the wrong axis: one entry per output unit, "
                "dout.sum(axis=0)", _lin_variant(fdb=lambda d, x, w: d.sum(axis=1))),
        Mistake("divides_by_batch", "divides dW and db by the batch size; the mean over the "
                "batch belongs to the loss, not to the layer's backward",
                _lin_variant(fdw=lambda d, x, w: d.T @ x / d.dtype.type(d.shape[0]),
                             fdb=lambda d, x, w: d.sum(axis=0) / d.dtype.type(d.shape[0]))),
    ),
))


# ------------------------------------------------------------------------------ masked SGD step
def masked_sgd_step_reference(w, grad, mask, velocity, lr, momentum):
    """One SGD step with momentum on a pruned weight (``torch.optim.SGD``'s convention):
    ``v' = (momentum * v + grad * mask) * mask``, ``w' = (w - lr * v') * mask``; returns
    ``(w', v')`` as new arrays, pruned entries exactly 0 in both."""
    p = np.array(w, copy=True)
    opt = SGD({"w": p}, lr=lr, momentum=momentum)
    if momentum:
        opt.state["w"]["momentum_buffer"] = np.array(velocity, copy=True)
    opt.step({"w": grad}, masks={"w": mask})
    v = opt.state["w"]["momentum_buffer"] if momentum else grad * mask
    return p, v


def _sgd_variant(mask_grad=True, mask_state=True, zero_weight=True, torch_convention=True):
    def variant(w, grad, mask, velocity, lr, momentum):
        dt = w.dtype.type
        g = grad * mask if mask_grad else grad
        if torch_convention:
            v = dt(momentum) * velocity + g
            v = v * mask if mask_state else v
            w_new = w - dt(lr) * v
        else:
            v = (dt(momentum) * velocity - dt(lr) * g) * mask
            w_new = w + v
        return (w_new * mask if zero_weight else w_new), v
    return variant


def _sgd_case(rng, shape, dtype, lr, momentum, density=0.6):
    w = rng.standard_normal(shape).astype(dtype)  # nonzero where newly pruned
    grad = rng.standard_normal(shape).astype(dtype)
    mask = rng.random(shape) < density
    velocity = rng.standard_normal(shape).astype(dtype)  # state built before the mask
    return (w, grad, mask, velocity, lr, momentum)


def _sgd_cases_fixed():
    w = np.array([[0.5, -0.2, 0.1], [0.3, 0.0, -0.4]], dtype=np.float32)
    g = np.array([[0.1, 0.2, -0.3], [0.4, 0.5, 0.6]], dtype=np.float32)
    mask = np.array([[True, False, True], [False, True, True]])
    v = np.array([[1.0, 1.0, -1.0], [2.0, 0.0, 0.5]], dtype=np.float32)
    rng = seeded(60)
    return [Case("a freshly pruned 2x3 weight", (w, g, mask, v, 0.1, 0.9),
                 "pruned weights and their momentum are nonzero before the step"),
            Case("no momentum", (w, g, mask, v, 0.1, 0.0)),
            Case("nothing pruned", _sgd_case(rng, (3, 4), np.float64, 0.05, 0.5, density=1.1)),
            Case("conv weight", _sgd_case(rng, (2, 3, 3, 3), np.float64, 0.01, 0.9))]


def _sgd_cases_generated():
    cases = []
    for i in range(10):
        rng = seeded(6000 + i)
        shape = tuple(int(v) for v in rng.integers(1, 6, size=2 if i % 3 else 4))
        lr, momentum = (0.1, 0.01, 0.5)[i % 3], (0.9, 0.5, 0.0, 0.99)[i % 4]
        cases.append(Case(f"generated #{i}", _sgd_case(rng, shape, (np.float32, np.float64)[i % 2],
                                                       lr, momentum)))
    return cases


def _sgd_compare(expected, got):
    msg = check_tuple(got, expected, ("w_new", "velocity_new"))
    if msg:
        return msg
    for name, e, g in zip(("w_new", "velocity_new"), expected, got, strict=True):
        if np.any((e == 0) & (g != 0)):
            idx = tuple(int(i) for i in np.argwhere((e == 0) & (g != 0))[0])
            return f"{name}: a pruned entry is not exactly 0.0 (index {idx}: {g[idx]!r})"
    return None


register(Assignment(
    name="masked_sgd_step",
    function="masked_sgd_step",
    arg_names=("w", "grad", "mask", "velocity", "lr", "momentum"),
    reference=masked_sgd_step_reference,
    description="masked_sgd_step(w, grad, mask, velocity, lr, momentum) -> (w_new, "
                "velocity_new): v' = (momentum v + grad*mask)*mask, w' = (w - lr v')*mask.",
    groups=(CaseGroup("worked examples", 4.0, _sgd_cases_fixed),
            CaseGroup("generated", 6.0, _sgd_cases_generated)),
    compare=_sgd_compare,
    mistakes=(
        Mistake("state_not_masked", "forgets to mask the optimizer state: the momentum of a "
                "pruned weight must be 0 too, or it keeps pushing the weight after the mask",
                _sgd_variant(mask_state=False)),
        Mistake("grad_not_masked", "masks neither the gradient nor the momentum, only the "
                "weight: multiply grad by the mask before it enters the momentum",
                _sgd_variant(mask_grad=False, mask_state=False)),
        Mistake("weight_not_zeroed", "does not zero the pruned weights after the step (a weight "
                "pruned before this step keeps its old value)", _sgd_variant(zero_weight=False)),
        Mistake("no_mask", "ignores the mask altogether (plain SGD)",
                _sgd_variant(mask_grad=False, mask_state=False, zero_weight=False)),
        Mistake("other_velocity_convention", "uses v' = momentum v - lr grad, w' = w + v'; this "
                "assignment uses PyTorch's v' = momentum v + grad, w' = w - lr v'",
                _sgd_variant(torch_convention=False)),
    ),
))
