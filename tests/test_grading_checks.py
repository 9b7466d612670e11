"""Every assignment: a correct student solution scores full marks, and each common mistake, written
the way a student would write it, fails with that mistake's own diagnosis."""

import pytest

from tinyprune.grading import ASSIGNMENTS, grade_source

# ------------------------------------------------------------------------ magnitude_mask
MAGNITUDE = """
import math
import numpy as np

def magnitude_mask(w, amount):
    k = {count}
    order = np.argsort({score}, axis=None, kind="stable")
    keep = np.ones(w.size, dtype=bool)
    keep[order[:k]] = False
    return {ret}
"""
_MAG = {"count": "round(amount * w.size)", "score": "np.abs(w)", "ret": "keep.reshape(w.shape)"}


def _mag(**kw):
    return MAGNITUDE.format(**{**_MAG, **kw})


MAG_TIES_ALL = """
import numpy as np

def magnitude_mask(w, amount):
    k = round(amount * w.size)
    if k == 0:
        return np.ones(w.shape, dtype=bool)
    threshold = np.sort(np.abs(w), axis=None)[k - 1]
    return np.abs(w) > threshold
"""

MAG_TIES_HIGH = """
import numpy as np

def magnitude_mask(w, amount):
    k = round(amount * w.size)
    order = np.argsort(np.abs(w), axis=None, kind="stable")
    a = np.abs(w).ravel()
    # reverse among equals: sort by (value, -index)
    order = np.lexsort((-np.arange(a.size), a))
    keep = np.ones(w.size, dtype=bool)
    keep[order[:k]] = False
    return keep.reshape(w.shape)
"""

# ------------------------------------------------------------------------ lp_channel_scores
LP = """
import numpy as np

def lp_channel_scores(w, p):
    a = np.abs(w).reshape(w.shape[0], -1)
    if p == np.inf:
        return a.max(axis=1)
    return {body}
"""
_LP_OK = "(a ** p).sum(axis=1) ** (1 / p)"

LP_INPUT_AXIS = """
import numpy as np

def lp_channel_scores(w, p):
    a = np.abs(w).swapaxes(0, 1).reshape(w.shape[1], -1)
    if p == np.inf:
        return a.max(axis=1)
    return (a ** p).sum(axis=1) ** (1 / p)
"""

LP_NO_ABS = """
import numpy as np

def lp_channel_scores(w, p):
    a = w.reshape(w.shape[0], -1)
    if p == np.inf:
        return a.max(axis=1)
    return (a ** p).sum(axis=1) ** (1 / p)
"""

# ------------------------------------------------------------------------ nm_mask
NM = """
import numpy as np

def nm_mask(w, n_pruned, m):
    rows = {rows}
    groups = {scores}.reshape(rows.shape[0], -1, m)
    order = np.argsort(groups, axis=-1, kind="stable")
    keep = np.ones(groups.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :{n}], False, axis=-1)
    return {ret}
"""
_NM = {"rows": "w.reshape(w.shape[0], -1)", "scores": "np.abs(rows)", "n": "n_pruned",
       "ret": "keep.reshape(w.shape)"}


def _nm(**kw):
    return NM.format(**{**_NM, **kw})


NM_WRONG_AXIS = _nm(rows="w.reshape(w.shape[0], -1).T",
                    ret="keep.reshape(rows.shape).T.reshape(w.shape)")
NM_CHANNELS_LAST = """
import numpy as np

def nm_mask(w, n_pruned, m):
    v = w.transpose(0, 2, 3, 1) if w.ndim == 4 else w
    rows = v.reshape(v.shape[0], -1)
    groups = np.abs(rows).reshape(rows.shape[0], -1, m)
    order = np.argsort(groups, axis=-1, kind="stable")
    keep = np.ones(groups.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :n_pruned], False, axis=-1)
    keep = keep.reshape(v.shape)
    return keep.transpose(0, 3, 1, 2) if w.ndim == 4 else keep
"""
NM_TIES_HIGH = _nm(scores="np.abs(rows)[:, ::-1]",
                   ret="keep.reshape(rows.shape)[:, ::-1].reshape(w.shape)")

# ------------------------------------------------------------------------ conv2d_im2col
CONV = """
import numpy as np

def conv2d_im2col(x, w, b, stride, padding):
    n, c, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), ({pad}, {pad}), ({pad}, {pad})))
    s = {stride}
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (wd + 2 * padding - kw) // stride + 1
    h_out = (xp.shape[2] - kh) // s + 1
    w_out = (xp.shape[3] - kw) // s + 1
    cols = np.empty((n, h_out, w_out, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, :, i, j] = xp[:, :, i:i + s * h_out:s, j:j + s * w_out:s].transpose(0, 2, 3, 1)
    cols = cols.reshape(n * h_out * w_out, c * kh * kw)   # columns (c, i, j)
    wmat = {wmat}
    out = cols @ wmat.T {bias}                             # (N*H_out*W_out, C_out)
    return {ret}
"""
_CONV = {"pad": "padding", "stride": "stride", "wmat": "w.reshape(c_out, -1)", "bias": "+ b",
         "ret": "np.ascontiguousarray(out.reshape(n, h_out, w_out, c_out).transpose(0, 3, 1, 2))"}


def _conv(**kw):
    return CONV.format(**{**_CONV, **kw})


# ------------------------------------------------------------------------ linear_backward
LIN = """
import numpy as np

def linear_backward(dout, x, w):
    dx = {dx}
    dw = {dw}
    db = {db}
    return dx, dw, db
"""
_LIN = {"dx": "dout @ w", "dw": "dout.T @ x", "db": "dout.sum(axis=0)"}


def _lin(**kw):
    return LIN.format(**{**_LIN, **kw})


# ------------------------------------------------------------------------ masked_sgd_step
SGD = """
import numpy as np

def masked_sgd_step(w, grad, mask, velocity, lr, momentum):
    g = {g}
    v = momentum * velocity + g
    v = {v}
    w_new = w - lr * v
    return {w_new}, v
"""
_SGD = {"g": "grad * mask", "v": "v * mask", "w_new": "w_new * mask"}


def _sgd(**kw):
    return SGD.format(**{**_SGD, **kw})


SGD_OTHER_CONVENTION = """
import numpy as np

def masked_sgd_step(w, grad, mask, velocity, lr, momentum):
    v = (momentum * velocity - lr * grad * mask) * mask
    return (w + v) * mask, v
"""

SOLUTIONS = {
    "magnitude_mask": _mag(),
    "lp_channel_scores": LP.format(body=_LP_OK),
    "nm_mask": _nm(),
    "conv2d_im2col": _conv(),
    "linear_backward": _lin(),
    "masked_sgd_step": _sgd(),
}

MISTAKES = {  # (assignment, mistake key) -> a student's wrong source
    ("magnitude_mask", "prunes_largest"): _mag(score="-np.abs(w)"),
    ("magnitude_mask", "signed_values"): _mag(score="w"),
    ("magnitude_mask", "floor_count"): _mag(count="int(amount * w.size)"),
    ("magnitude_mask", "ceil_count"): _mag(count="math.ceil(amount * w.size)"),
    ("magnitude_mask", "half_up"): _mag(count="int(amount * w.size + 0.5)"),
    ("magnitude_mask", "ties_all_pruned"): MAG_TIES_ALL,
    ("magnitude_mask", "ties_high_index"): MAG_TIES_HIGH,
    ("magnitude_mask", "inverted_mask"): _mag(ret="~keep.reshape(w.shape)"),
    ("lp_channel_scores", "input_channel_axis"): LP_INPUT_AXIS,
    ("lp_channel_scores", "per_kernel"): LP.format(
        body="(np.abs(w) ** p).sum(axis=(2, 3) if w.ndim == 4 else 1) ** (1 / p)").replace(
        "return a.max(axis=1)", "return np.abs(w).max(axis=(2, 3)) if w.ndim == 4 else a.max(1)"),
    ("lp_channel_scores", "no_root"): LP.format(body="(a ** p).sum(axis=1)"),
    ("lp_channel_scores", "mean_not_sum"): LP.format(body="(a ** p).mean(axis=1) ** (1 / p)"),
    ("lp_channel_scores", "no_abs"): LP_NO_ABS,
    ("nm_mask", "wrong_axis"): NM_WRONG_AXIS,
    ("nm_mask", "kept_reading"): _nm(n="m - n_pruned"),
    ("nm_mask", "prunes_largest"): _nm(scores="-np.abs(rows)"),
    ("nm_mask", "signed_values"): _nm(scores="rows"),
    ("nm_mask", "channels_last_order"): NM_CHANNELS_LAST,
    ("nm_mask", "ties_high_index"): NM_TIES_HIGH,
    ("nm_mask", "inverted_mask"): _nm(ret="~keep.reshape(w.shape)"),
    ("conv2d_im2col", "missing_bias"): _conv(bias=""),
    ("conv2d_im2col", "im2col_order"): _conv(wmat="w.transpose(0, 2, 3, 1).reshape(c_out, -1)"),
    ("conv2d_im2col", "flipped_kernel"): _conv(wmat="w[:, :, ::-1, ::-1].reshape(c_out, -1)"),
    ("conv2d_im2col", "reshape_without_transpose"): _conv(ret="out.reshape(n, c_out, h_out, w_out)"),
    ("conv2d_im2col", "ignores_padding"): _conv(pad="0"),
    ("conv2d_im2col", "ignores_stride"): _conv(stride="1"),
    ("linear_backward", "dw_transposed"): _lin(dw="x.T @ dout"),
    ("linear_backward", "dx_transposed"): _lin(dx="w.T @ dout.T"),
    ("linear_backward", "dx_uses_w_transposed"): _lin(dx="dout @ w.T"),
    ("linear_backward", "db_mean"): _lin(db="dout.mean(axis=0)"),
    ("linear_backward", "db_wrong_axis"): _lin(db="dout.sum(axis=1)"),
    ("linear_backward", "divides_by_batch"): _lin(dw="dout.T @ x / len(x)",
                                                  db="dout.sum(axis=0) / len(x)"),
    ("masked_sgd_step", "state_not_masked"): _sgd(v="v"),
    ("masked_sgd_step", "grad_not_masked"): _sgd(g="grad", v="v"),
    ("masked_sgd_step", "weight_not_zeroed"): _sgd(w_new="w_new"),
    ("masked_sgd_step", "no_mask"): _sgd(g="grad", v="v", w_new="w_new"),
    ("masked_sgd_step", "other_velocity_convention"): SGD_OTHER_CONVENTION,
}


def test_every_registered_mistake_has_a_student_version():
    # the other assignments: tests/test_grading_checks2.py
    keys = {(a.name, m.key) for a in ASSIGNMENTS.values() for m in a.mistakes if a.name in SOLUTIONS}
    assert set(MISTAKES) == keys
    assert set(SOLUTIONS) <= set(ASSIGNMENTS)


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_correct_solution_scores_full_marks(name):
    result = grade_source(SOLUTIONS[name], name)
    assert result.load_error == ""
    assert [c.message for g in result.groups for c in g.cases if not c.passed] == []
    assert result.score == result.max_score == 10.0
    assert result.diagnoses == []
    assert "10 / 10 points" in result.format_text()


@pytest.mark.parametrize("name, key", sorted(MISTAKES))
def test_mistake_gets_its_own_feedback(name, key):
    result = grade_source(MISTAKES[(name, key)], name)
    assert result.load_error == ""
    assert result.score < result.max_score
    keys = [d.key for d in result.diagnoses]
    assert keys == [key], (keys, result.format_text())
    message = next(m.message for m in ASSIGNMENTS[name].mistakes if m.key == key)
    assert message in result.format_text()
