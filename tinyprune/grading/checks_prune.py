"""Pruning assignments: magnitude mask with an exact count, Lp channel scores, N:M masks, the
sensitivity table of a layer-by-layer scan.

Each assignment names the function the student writes; its docstring here is the specification
the exercise shows. References: :func:`tinyprune.prune.select.prune_weight`,
:func:`tinyprune.prune.criteria.lp_norm`, :func:`tinyprune.prune.nm.nm_mask`,
:func:`tinyprune.prune.sensitivity.sensitivity_scan`.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn.layers import Linear, ReLU
from ..nn.model import Sequential
from ..prune.criteria import lp_norm
from ..prune.nm import nm_mask
from ..prune.select import prune_weight, select_mask
from ..prune.sensitivity import sensitivity_scan
from .cases import Assignment, Case, CaseGroup, Mistake, check_array, register, seeded


def _weight(rng, shape, dtype, ties):
    """Normal values, or (``ties``) multiples of 0.25 in [-1, 1] so that many magnitudes tie."""
    if ties:
        return (rng.integers(-4, 5, size=shape) * 0.25).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _shape(rng, conv):
    if conv:
        return (int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 4)),
                int(rng.integers(1, 4)))
    return (int(rng.integers(1, 7)), int(rng.integers(1, 9)))


def _mask_compare(expected, got):
    return check_array(got, expected, "the mask", exact=True)


# ------------------------------------------------------------------------------ magnitude mask
def magnitude_mask_reference(w, amount):
    """Keep-mask (bool, True = kept) pruning the ``round(amount * w.size)`` smallest ``|w|``;
    among equal magnitudes the lower flat (row-major) index is pruned first. ``w`` unchanged."""
    return prune_weight(w, float(amount), criterion="magnitude", granularity="element")


def _count_variant(count):
    def variant(w, amount):
        return select_mask(np.abs(w), count(amount * w.size))
    return variant


def _ties_all(w, amount):
    k = round(amount * w.size)
    if k == 0:
        return np.ones(w.shape, dtype=bool)
    t = np.sort(np.abs(w), axis=None)[k - 1]
    return np.abs(w) > t


def _ties_high_index(w, amount):
    flat = np.abs(w).reshape(-1)[::-1]
    return select_mask(flat, amount)[::-1].reshape(w.shape)


def _magnitude_cases_fixed():
    w = np.array([[0.5, -0.1, 0.3], [-0.8, 0.05, 0.2]], dtype=np.float32)
    conv = np.linspace(-1.0, 1.0, 16).reshape(2, 2, 2, 2)[..., ::-1].copy()  # float64
    return [Case("half of a 2x3 weight", (w, 0.5), "prunes 0.05, -0.1 and 0.2"),
            Case("amount 0 keeps all", (w, 0.0)),
            Case("amount 1 prunes all", (w, 1.0)),
            Case("conv weight", (conv, 0.25), "a (2, 2, 2, 2) float64 weight")]


def _magnitude_cases_rounding():
    rng = seeded(11)
    w10 = rng.standard_normal((2, 5)).astype(np.float32)
    return [Case("3.7 rounds to 4", (w10, 0.37), "round(0.37 * 10) = 4, floor gives 3"),
            Case("3.2 rounds to 3", (w10, 0.32), "round(0.32 * 10) = 3, ceil gives 4"),
            Case("2.5 rounds to 2", (w10, 0.25), "Python's round(2.5) = 2 (half to even)"),
            Case("4.5 rounds to 4", (w10, 0.45), "round(4.5) = 4 (half to even)"),
            Case("7 of 9", (rng.standard_normal((3, 3)), 0.8), "round(7.2) = 7")]


def _magnitude_cases_ties():
    w = np.array([[0.5, -0.5, 0.25, -0.25], [0.25, 0.5, -0.25, 0.5]], dtype=np.float32)
    return [Case("equal magnitudes, signs differ", (w, 0.25), "the two lowest-index 0.25s"),
            Case("ties across rows", (w, 0.5), "all four 0.25s"),
            Case("ties at the threshold", (w, 0.75), "every 0.25 and the first two 0.5s"),
            Case("all equal", (np.full((3, 4), 0.5, dtype=np.float64), 0.5), "first six")]


def _magnitude_cases_generated():
    cases = []
    for i in range(12):
        rng = seeded(1000 + i)
        shape = _shape(rng, conv=i % 3 == 2)
        dtype = np.float32 if i % 2 == 0 else np.float64
        w = _weight(rng, shape, dtype, ties=i % 4 < 2)
        amount = float(np.round(rng.random(), 2))
        cases.append(Case(f"generated #{i}", (w, amount)))
    return cases


register(Assignment(
    name="magnitude_mask",
    function="magnitude_mask",
    arg_names=("w", "amount"),
    reference=magnitude_mask_reference,
    description="magnitude_mask(w, amount) -> bool mask (True = kept): prune exactly "
                "round(amount * w.size) weights of smallest |w|, lower flat index first on ties.",
    groups=(CaseGroup("worked examples", 2.0, _magnitude_cases_fixed),
            CaseGroup("exact count (rounding)", 2.0, _magnitude_cases_rounding),
            CaseGroup("ties", 2.0, _magnitude_cases_ties),
            CaseGroup("generated", 4.0, _magnitude_cases_generated)),
    compare=_mask_compare,
    mistakes=(
        Mistake("prunes_largest", "prunes the largest weights instead of the smallest (sort "
                "|w| ascending and prune the first k)", lambda w, a: select_mask(-np.abs(w), a)),
        Mistake("signed_values", "ranks the signed weights, not their magnitudes |w| (a large "
                "negative weight is important)", lambda w, a: select_mask(w, a)),
        Mistake("floor_count", "off-by-one count: int()/floor of amount * n instead of "
                "round(amount * n)", _count_variant(math.floor)),
        Mistake("ceil_count", "off-by-one count: ceil of amount * n instead of round(amount * n)",
                _count_variant(math.ceil)),
        Mistake("half_up", "rounds halves up (int(x + 0.5)); Python's round(2.5) is 2",
                _count_variant(lambda x: int(x + 0.5))),
        Mistake("ties_all_pruned", "prunes every weight equal to the threshold (|w| <= t), so "
                "ties make the count too large; prune exactly k, lower index first", _ties_all),
        Mistake("ties_high_index", "breaks ties the other way: among equal |w| the LOWER flat "
                "index is pruned first (use a stable sort)", _ties_high_index),
        Mistake("inverted_mask", "returns True for pruned weights; the mask is True = kept",
                lambda w, a: ~magnitude_mask_reference(w, a)),
    ),
))


# ------------------------------------------------------------------------------ Lp channel scores
def lp_channel_scores_reference(w, p):
    """One score per output channel: ``(sum over the channel's weights |w|^p)^(1/p)``, the max of
    ``|w|`` for ``p = inf``; shape ``(w.shape[0],)``, dtype of ``w``."""
    return lp_norm(w, p, "channel")


def _axes(w):
    return tuple(range(1, w.ndim))


def _lp_no_root(w, p):
    if p == np.inf:
        raise ValueError("no root to forget for p = inf")
    return np.sum(np.abs(w) ** w.dtype.type(p), axis=_axes(w))


def _lp_mean(w, p):
    if p == np.inf:
        raise ValueError("a mean changes nothing for p = inf")
    return (np.mean(np.abs(w) ** w.dtype.type(p), axis=_axes(w)) ** w.dtype.type(1 / p))


def _lp_no_abs(w, p):
    if p == np.inf:
        return np.max(w, axis=_axes(w))
    with np.errstate(invalid="ignore"):
        return np.sum(w ** w.dtype.type(p), axis=_axes(w)) ** w.dtype.type(1 / p)


def _lp_cases_fixed():
    lin = np.array([[3.0, -4.0, 0.0], [1.0, 1.0, -1.0]], dtype=np.float32)
    conv = np.arange(-12, 12, dtype=np.float64).reshape(3, 2, 2, 2) / 4
    return [Case("L1 of a Linear weight", (lin, 1), "[7, 3]"),
            Case("L2 of a Linear weight", (lin, 2), "[5, sqrt 3]"),
            Case("L1 of a conv weight", (conv, 1)),
            Case("L2 of a conv weight", (conv, 2)),
            Case("L-infinity", (conv, np.inf), "the largest |w| per filter")]


def _lp_cases_generated():
    orders = (1, 2, 3, 0.5, np.inf, 1.5)
    cases = []
    for i in range(12):
        rng = seeded(2000 + i)
        dtype = np.float32 if i % 2 == 0 else np.float64
        w = _weight(rng, _shape(rng, conv=i % 3 != 0), dtype, ties=False)
        cases.append(Case(f"generated #{i}", (w, orders[i % len(orders)])))
    return cases


register(Assignment(
    name="lp_channel_scores",
    function="lp_channel_scores",
    arg_names=("w", "p"),
    reference=lp_channel_scores_reference,
    description="lp_channel_scores(w, p) -> (C_out,) scores: the Lp norm of each output "
                "channel (filter) of a Linear (out, in) or Conv2d (C_out, C_in, KH, KW) weight.",
    groups=(CaseGroup("worked examples", 4.0, _lp_cases_fixed),
            CaseGroup("generated", 6.0, _lp_cases_generated)),
    compare=lambda expected, got: check_array(got, expected, "the scores"),
    mistakes=(
        Mistake("input_channel_axis", "scores the input channels (axis 1) instead of the output "
                "channels (axis 0): one score per filter w[o]",
                lambda w, p: lp_norm(w, p, "input_channel")),
        Mistake("per_kernel", "scores each kernel w[o, i] separately; a channel score sums over "
                "all of w[o] (every axis but the first)", lambda w, p: lp_norm(w, p, "kernel")),
        Mistake("no_root", "forgets the 1/p root: (sum |w|^p)^(1/p), not sum |w|^p", _lp_no_root),
        Mistake("mean_not_sum", "averages |w|^p over the channel instead of summing it",
                _lp_mean),
        Mistake("no_abs", "forgets the absolute value: |w|^p, not w^p (odd p and negative "
                "weights give negative or NaN scores)", _lp_no_abs),
    ),
))


# ------------------------------------------------------------------------------ N:M masks
def nm_mask_reference(w, n_pruned, m):
    """Keep-mask pruning the ``n_pruned`` smallest ``|w|`` in every ``m`` consecutive weights of
    each row of ``w.reshape(out, -1)`` (lower index first on ties); rows are multiples of m."""
    return nm_mask(w, n_pruned, m)


def _rows(w):
    return w.reshape(w.shape[0], -1)


def _nm_wrong_axis(w, n_pruned, m):
    return nm_mask(np.ascontiguousarray(_rows(w).T), n_pruned, m).T.reshape(w.shape)


def _nm_channels_last(w, n_pruned, m):
    if w.ndim != 4:
        raise ValueError("only conv weights have a flatten order")
    wt = np.ascontiguousarray(w.transpose(0, 2, 3, 1))  # (C_out, KH, KW, C_in)
    return nm_mask(wt, n_pruned, m).transpose(0, 3, 1, 2)


def _nm_high_index(w, n_pruned, m):
    rev = np.ascontiguousarray(_rows(w)[:, ::-1])
    return nm_mask(rev, n_pruned, m)[:, ::-1].reshape(w.shape)


def _nm_cases_fixed():
    w = np.array([[0.9, -0.1, 0.4, -0.3, 0.2, 0.8, -0.7, 0.05],
                  [-0.6, 0.5, 0.1, 0.2, -0.3, 0.25, 0.35, -0.9]], dtype=np.float32)
    conv = (np.arange(32, dtype=np.float64).reshape(4, 2, 2, 2) * 7 % 11 - 5) / 4
    return [Case("2:4 on a Linear weight", (w, 2, 4), "n_pruned=2 of every m=4"),
            Case("1 of every 4 pruned", (w, 1, 4), "keeps 3 of 4: 25% sparsity"),
            Case("3 of every 4 pruned", (w, 3, 4), "keeps 1 of 4"),
            Case("1 of every 2", (w, 1, 2)),
            Case("2:4 on a conv weight", (conv, 2, 4), "groups run along w[o].ravel()")]


def _nm_cases_ties():
    w = np.array([[0.5, -0.5, 0.5, 0.25, 0.25, -0.25, 0.5, 0.5]], dtype=np.float64)
    return [Case("equal magnitudes in a group", (w, 2, 4), "lower index in the group first"),
            Case("all equal", (np.ones((4, 4), dtype=np.float32), 1, 4))]


def _nm_cases_generated():
    patterns = ((2, 4), (1, 4), (3, 4), (1, 2), (4, 8), (3, 8))
    cases = []
    for i in range(12):
        rng = seeded(3000 + i)
        n_pruned, m = patterns[i % len(patterns)]
        dtype = np.float32 if i % 2 == 0 else np.float64
        if i % 3 == 2:  # conv: C_in * KH * KW a multiple of m; C_out a multiple of m too
            shape = (m * int(rng.integers(1, 3)), m, int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        else:
            shape = (m * int(rng.integers(1, 3)), m * int(rng.integers(1, 4)))
        w = _weight(rng, shape, dtype, ties=i % 4 == 1)
        cases.append(Case(f"generated #{i}", (w, n_pruned, m)))
    return cases


register(Assignment(
    name="nm_mask",
    function="nm_mask",
    arg_names=("w", "n_pruned", "m"),
    reference=nm_mask_reference,
    description="nm_mask(w, n_pruned, m) -> bool mask: in every m consecutive weights along "
                "the input dimension (rows of w.reshape(out, -1)) prune the n_pruned smallest |w|.",
    groups=(CaseGroup("worked examples", 4.0, _nm_cases_fixed),
            CaseGroup("ties", 1.0, _nm_cases_ties),
            CaseGroup("generated", 5.0, _nm_cases_generated)),
    compare=_mask_compare,
    mistakes=(
        Mistake("wrong_axis", "N:M along the wrong axis: groups must run along a row (the "
                "input dimension, w[o, g*m:(g+1)*m]), not down a column", _nm_wrong_axis),
        Mistake("kept_reading", "reads n_pruned as the number KEPT (NVIDIA's 2:4 wording); here "
                "n_pruned weights of every m are pruned",
                lambda w, n, m: nm_mask(w, m - n, m) if n > 0 else np.zeros(w.shape, bool)),
        Mistake("prunes_largest", "prunes the largest weights of each group instead of the "
                "smallest", lambda w, n, m: nm_mask(w, n, m, scores=-np.abs(w))),
        Mistake("signed_values", "ranks the signed weights, not |w|",
                lambda w, n, m: nm_mask(w, n, m, scores=np.array(w, dtype=np.float64))),
        Mistake("channels_last_order", "flattens a conv filter in (KH, KW, C_in) order; the "
                "groups follow w[o].ravel(), i.e. (C_in, KH, KW)", _nm_channels_last),
        Mistake("ties_high_index", "breaks ties the other way: among equal |w| in a group the "
                "lower index is pruned first (stable sort)", _nm_high_index),
        Mistake("inverted_mask", "returns True for pruned weights; the mask is True = kept",
                lambda w, n, m: ~nm_mask(w, n, m)),
    ),
))


# ------------------------------------------------------------------------------ sensitivity table
def _mlp(params):
    """The Sequential ``fc1 -> ReLU -> fc2 -> ... -> fcL`` holding copies of ``params``."""
    n_layers = len(params) // 2
    layers = []
    for i in range(1, n_layers + 1):
        w = params[f"fc{i}.weight"]
        lin = Linear(w.shape[1], w.shape[0], dtype=w.dtype)
        lin.params["weight"][...] = w
        lin.params["bias"][...] = params[f"fc{i}.bias"]
        layers.append((f"fc{i}", lin))
        if i < n_layers:
            layers.append((f"relu{i}", ReLU()))
    return Sequential(layers, name="mlp", fast=False)


def sensitivity_table_reference(params, val, test, ratios):
    """``delta[i, j] = Acc_dense - Acc(only fc{i+1} magnitude-pruned to ratios[j])``, both on the
    validation split ``val = (x_val, y_val)`` (never ``test``); shape ``(L, R)``, float64."""
    x_val, y_val = val
    res = sensitivity_scan(_mlp(params), x_val, y_val, ratios=[float(r) for r in ratios],
                           criterion="l1", granularity="element")
    return np.ascontiguousarray(res.delta, dtype=np.float64)


def _mlp_accuracy(params, x, y):
    """Accuracy of the plain MLP of ``params`` on ``(x, y)`` (numpy only, for the variants)."""
    n_layers = len(params) // 2
    h = x
    for i in range(1, n_layers + 1):
        h = h @ params[f"fc{i}.weight"].T + params[f"fc{i}.bias"]
        if i < n_layers:
            h = np.maximum(h, 0.0)
    return float(np.mean(h.argmax(axis=1) == y))


def _sensitivity_variant(split="val", sign=1.0, count=round, restore=True, one_layer=True,
                         delta=True):
    """The scan with one thing done wrong (each keyword names the step)."""
    def variant(params, val, test, ratios):
        x, y = val if split == "val" else test
        names = [f"fc{i}.weight" for i in range(1, len(params) // 2 + 1)]
        work = {k: v.copy() for k, v in params.items()}
        base = _mlp_accuracy(work, x, y)
        table = np.empty((len(names), len(ratios)))
        for i, name in enumerate(names):
            for j, r in enumerate(ratios):
                targets = [name] if one_layer else names
                trial = dict(work)
                for t in targets:
                    trial[t] = work[t] * select_mask(np.abs(work[t]), count(float(r) * work[t].size))
                acc = _mlp_accuracy(trial, x, y)
                table[i, j] = sign * (base - acc) if delta else acc
                if not restore and j == len(ratios) - 1:
                    work = trial  # the last ratio's pruning stays for the next layers
        return table
    return variant


def _mlp_case(rng, sizes, n_val, n_test, dtype=np.float64, noise=0.2):
    """Random MLP weights (PyTorch names) and val/test data labelled by the dense model itself
    with ``noise`` of the labels replaced by random classes (dense accuracy about 1 - noise)."""
    params = {}
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        params[f"fc{i}.weight"] = (rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)).astype(dtype)
        params[f"fc{i}.bias"] = (0.1 * rng.standard_normal(d_out)).astype(dtype)
    splits = []
    for n in (n_val, n_test):
        x = rng.standard_normal((n, sizes[0])).astype(dtype)
        logits = x
        for i in range(1, len(sizes)):
            logits = logits @ params[f"fc{i}.weight"].T + params[f"fc{i}.bias"]
            if i < len(sizes) - 1:
                logits = np.maximum(logits, 0.0)
        y = logits.argmax(axis=1).astype(np.int64)
        flip = rng.random(n) < noise
        y[flip] = rng.integers(0, sizes[-1], size=int(flip.sum()))
        splits.append((x, y))
    return params, splits[0], splits[1]


_TENTHS = np.round(np.arange(10) * 0.1, 1)  # 0.0, 0.1, ..., 0.9


def _sensitivity_cases_fixed():
    rng = seeded(70)
    p1, v1, t1 = _mlp_case(rng, (5, 7, 3), 40, 40)
    p2, v2, t2 = _mlp_case(rng, (6, 7, 5, 4), 60, 50)
    return [Case("two layers, ratios 0.0 ... 0.9", (p1, v1, t1, _TENTHS),
                 "fc1 holds 35 weights: r = 0.1 prunes round(3.5) = 4"),
            Case("three layers, quarters", (p2, v2, t2, np.array([0.0, 0.25, 0.5, 0.75])),
                 "fc2 holds 35 weights: 0.25 prunes round(8.75) = 9"),
            Case("three layers, ratios 0.0 ... 0.9", (p2, v2, t2, _TENTHS)),
            Case("large ratios only", (p1, v1, t1, np.array([0.5, 0.7, 0.9])),
                 "no r = 0 column: the dense accuracy is still the baseline")]


def _sensitivity_cases_generated():
    cases = []
    for i in range(8):
        rng = seeded(7000 + i)
        n_layers = 2 + i % 3
        sizes = tuple(int(v) for v in rng.integers(3, 9, size=n_layers + 1))
        params, val, test = _mlp_case(rng, sizes, int(rng.integers(30, 70)),
                                      int(rng.integers(30, 70)))
        ratios = _TENTHS if i % 2 == 0 else np.round(np.sort(rng.random(5)), 2)
        cases.append(Case(f"generated #{i}", (params, val, test, ratios)))
    return cases


register(Assignment(
    name="sensitivity_table",
    function="sensitivity_table",
    arg_names=("params", "val", "test", "ratios"),
    reference=sensitivity_table_reference,
    description="sensitivity_table(params, val, test, ratios) -> (L, R) float64 delta[i, j] = "
                "Acc_dense - Acc with ONLY fc{i+1} magnitude-pruned (round(r * n) smallest |w|, "
                "lower flat index first on ties) to ratios[j], the others dense; accuracies on "
                "val = (x_val, y_val); params holds fc1..fcL weights (out, in) and biases of "
                "the MLP fc1 -> ReLU -> ... -> fcL (logits, argmax); test is not for choosing.",
    groups=(CaseGroup("worked examples", 5.0, _sensitivity_cases_fixed),
            CaseGroup("generated", 5.0, _sensitivity_cases_generated)),
    compare=lambda expected, got: check_array(got, expected, "the table"),
    mistakes=(
        Mistake("test_set", "measures the accuracies on the test set; pruning ratios are a "
                "choice and must be made on the validation split (the test set stays unseen)",
                _sensitivity_variant(split="test")),
        Mistake("sign_flipped", "the sign of delta-Acc is flipped: delta = Acc_dense - Acc_pruned "
                "(positive = accuracy lost)", _sensitivity_variant(sign=-1.0)),
        Mistake("accuracy_not_delta", "returns the pruned accuracies, not the degradation "
                "Acc_dense - Acc_pruned", _sensitivity_variant(delta=False)),
        Mistake("cumulative", "prunes cumulatively: a layer stays pruned while the next layers "
                "are scanned; restore each layer's weights before pruning the next",
                _sensitivity_variant(restore=False)),
        Mistake("all_layers", "prunes every layer at ratio r at once; a sensitivity scan prunes "
                "one layer at a time, the others dense", _sensitivity_variant(one_layer=False)),
        Mistake("floor_count", "off-by-one count: int()/floor of r * n weights instead of "
                "round(r * n)", _sensitivity_variant(count=math.floor)),
    ),
))
