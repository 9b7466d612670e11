"""Pruning figures: granularities side by side, weight histograms with the threshold / grid /
centroids, sensitivity curves with the threshold T, lottery tickets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..nn.validation import check_float_array, check_int, check_real
from ..prune.granularity import GRANULARITIES
from ..prune.select import prune_weight
from ._common import check_ax, check_bool, new_or_given, optional_real, pyplot, real_array

__all__ = ["plot_granularity", "plot_lottery", "plot_sensitivity", "plot_weight_histogram",
           "weight_image"]


# --------------------------------------------------------------------------- granularity
def weight_image(a: np.ndarray) -> np.ndarray:
    """A weight-shaped array laid out as the 2-D picture the figures draw.

    A Linear ``(out, in)`` array is drawn as is; a Conv2d ``(C_out, C_in, KH, KW)`` array as a
    ``C_out x C_in`` grid of ``KH x KW`` kernels: ``img[o*KH + h, i*KW + w] = a[o, i, h, w]``.

    Parameters
    ----------
    a : ndarray, 2-D or 4-D (any dtype)

    Returns
    -------
    ndarray, ``(out, in)`` or ``(C_out*KH, C_in*KW)``; a new array for 4-D input, ``a`` itself
    for 2-D input.

    Examples
    --------
    >>> weight_image(np.arange(16).reshape(2, 2, 2, 2))[0]
    array([0, 1, 4, 5])
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"a: expected a numpy.ndarray, got {type(a).__name__}")
    if a.ndim == 2:
        return a
    if a.ndim == 4:
        c_out, c_in, kh, kw = a.shape
        return a.transpose(0, 2, 1, 3).reshape(c_out * kh, c_in * kw)  # (C_out KH, C_in KW)
    raise ValueError(f"a: expected a 2-D (out, in) or 4-D (C_out, C_in, KH, KW) array, got shape "
                     f"{a.shape}")


def _check_granularities(granularities, ndim):
    if isinstance(granularities, str) or not isinstance(granularities, Sequence):
        raise TypeError(f"granularities: expected a sequence of names from {GRANULARITIES}, got "
                        f"{granularities!r}")
    names = []
    for g in granularities:
        if not isinstance(g, str) or g not in GRANULARITIES:
            raise ValueError(f"granularities: expected names from {GRANULARITIES}, got {g!r}")
        if g == "kernel" and ndim == 2:
            continue  # a Linear weight has no kernels
        names.append(g)
    if not names:
        raise ValueError(f"granularities: nothing to draw for a {ndim}-D weight, got "
                         f"{tuple(granularities)!r}")
    return names


def plot_granularity(w, *, sparsity=0.5, n_pruned=2, m=4,
                     granularities=("element", "vector", "kernel", "channel", "nm"),
                     criterion="l1", magnitude=True, axes=None):
    r"""The same weight pruned at several granularities, side by side (the lecture's
    "Pruning at different granularities" slide, after Mao et al. 2017).

    Each panel shows ``|W|`` of the kept weights (colour) and the pruned weights (white). The
    masks come from :func:`tinyprune.prune.prune_weight` (``criterion`` per structural set,
    ``sparsity`` of the sets pruned); "nm" prunes ``n_pruned`` of every ``m`` consecutive
    weights along the input dimension (:func:`tinyprune.prune.nm_mask` semantics). A Conv2d
    weight is drawn as a ``C_out x C_in`` grid of kernels (rows: output channels, columns: input
    channels, :func:`weight_image`), a Linear weight as its ``(out, in)`` matrix. Titles give the
    granularity and the measured sparsity (pruned weights / all weights).

    Parameters
    ----------
    w : ndarray, float32/float64, ``(out, in)`` or ``(C_out, C_in, KH, KW)``, finite
        Not modified.
    sparsity : float in [0, 1]
        Fraction of the structural sets to prune (not used by "nm").
    n_pruned, m : int
        The N:M pattern of the "nm" panel (``0 <= n_pruned < m``).
    granularities : sequence of str
        Names from :data:`tinyprune.prune.GRANULARITIES`, one panel each, in this order;
        "kernel" is skipped for a Linear weight (it has no kernels).
    criterion : str
        Score of a set, as in :func:`~tinyprune.prune.prune_weight` (default "l1": the sum of
        ``|w|``; for "element" the magnitude).
    magnitude : bool
        Colour the kept weights by ``|w|`` (default); False draws every kept weight in one
        colour (the slide's preserved / pruned squares).
    axes : sequence of matplotlib Axes, optional
        One per drawn panel; a new figure otherwise.

    Returns
    -------
    matplotlib.figure.Figure
        One image per panel; ``image.get_array()`` is a masked array whose mask is the pruned
        weights in the :func:`weight_image` layout and whose data is ``|w|`` (all ones with
        ``magnitude=False``).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> w = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    >>> fig = plot_granularity(w, sparsity=0.5)
    >>> [ax.get_title().split("\n")[0] for ax in fig.axes[:5]]
    ['element', 'vector', 'kernel', 'channel', 'nm 2:4']
    """
    check_float_array(w, "w", finite=True, nonempty=True)
    if w.ndim not in (2, 4):
        raise ValueError(f"w: expected a Linear (out, in) or Conv2d (C_out, C_in, KH, KW) weight, "
                         f"got shape {w.shape}")
    sparsity = check_real(sparsity, "sparsity", minimum=0.0, maximum=1.0)
    n_pruned = check_int(n_pruned, "n_pruned", minimum=0)
    m = check_int(m, "m", minimum=1)
    if n_pruned >= m:
        raise ValueError(f"n_pruned: expected an integer < m = {m}, got {n_pruned}")
    names = _check_granularities(granularities, w.ndim)
    magnitude = check_bool(magnitude, "magnitude")
    masks = {}
    for g in names:
        if g == "nm":
            masks[g] = prune_weight(w, None, criterion=criterion, granularity="nm",
                                    n_pruned=n_pruned, m=m, allow_partial=True)
        else:
            masks[g] = prune_weight(w, sparsity, criterion=criterion, granularity=g)
    plt = pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names) + 1.0, 3.2),
                                 squeeze=False, layout="constrained")
        axes = list(axes[0])
    else:
        if isinstance(axes, np.ndarray):
            axes = list(axes.ravel())
        if not isinstance(axes, Sequence) or len(axes) != len(names):
            raise ValueError(f"axes: expected {len(names)} Axes (one per panel: {names}), got "
                             f"{axes!r}")
        for a in axes:
            check_ax(a, "axes")
        fig = axes[0].figure
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # white: pruned
    if magnitude:
        mag = weight_image(np.abs(w))  # (rows, cols)
        vmax = float(mag.max()) or 1.0
    else:  # one colour for every kept weight
        mag, vmax = np.ones(weight_image(w).shape), 1.6
        cmap = matplotlib.colors.ListedColormap(["#3b528b"]).with_extremes(bad="white")
    image = None
    for ax, g in zip(axes, names, strict=True):
        keep = weight_image(masks[g])
        image = ax.imshow(np.ma.masked_array(mag, mask=~keep), cmap=cmap, vmin=0.0, vmax=vmax,
                          interpolation="nearest")
        ax.set_facecolor("white")
        if w.ndim == 4:  # kernel borders
            c_out, c_in, kh, kw = w.shape
            ax.hlines(np.arange(1, c_out) * kh - 0.5, -0.5, c_in * kw - 0.5, color="0.6",
                      linewidth=0.8)
            ax.vlines(np.arange(1, c_in) * kw - 0.5, -0.5, c_out * kh - 0.5, color="0.6",
                      linewidth=0.8)
        actual = 1.0 - np.count_nonzero(keep) / keep.size
        label = f"nm {n_pruned}:{m}" if g == "nm" else g
        ax.set_title(f"{label}\nsparsity {actual:.1%}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("input channel" if w.ndim == 4 else "input")
        ax.set_ylabel("output channel" if w.ndim == 4 else "output")
    if magnitude:
        fig.colorbar(image, ax=list(axes), label="|w| of kept weights (white: pruned)",
                     shrink=0.8)
    else:
        fig.legend(handles=[matplotlib.patches.Patch(color="#3b528b", label="preserved"),
                            matplotlib.patches.Patch(facecolor="white", edgecolor="0.5",
                                                     label="pruned")],
                   loc="outside right upper" if fig.get_layout_engine() else "upper right")
    return fig


# --------------------------------------------------------------------------- histogram
def plot_weight_histogram(w, *, threshold=None, grid=None, centroids=None, mask=None, bins=80,
                          ax=None):
    r"""Histogram of a weight's values with the pruning threshold, a quantization grid or the
    k-means centroids drawn over it (the lecture's weight-distribution slides: before / after
    pruning, linear quantization, weight sharing).

    Parameters
    ----------
    w : ndarray, float32/float64, any shape, finite
        Not modified.
    threshold : float >= 0, optional
        Magnitude pruning threshold :math:`T`: dashed lines at :math:`\pm T` (weights with
        :math:`|w| < T` are pruned).
    grid : array-like of float, optional
        The values a quantizer can represent, :math:`S (q - Z)` for every integer :math:`q`:
        thin vertical lines.
    centroids : array-like of float, optional
        k-means centroids (shared weights): vertical lines.
    mask : ndarray of bool, shape of ``w``, optional
        Keep-mask: only the kept weights are counted. Without it, the exact zeros (pruned
        weights) are left out.
    bins : int >= 1 or 1-D increasing array of edges
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        The threshold lines are the first two lines of the axes (``-T`` then ``+T``); the grid
        and the centroids are ``LineCollection`` s labelled "quantization grid" and
        "k-means centroids".

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> w = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    >>> fig = plot_weight_histogram(w, threshold=0.5)
    >>> [float(ln.get_xdata()[0]) for ln in fig.axes[0].get_lines()]
    [-0.5, 0.5]
    """
    check_float_array(w, "w", finite=True, nonempty=True)
    threshold = optional_real(threshold, "threshold", minimum=0.0)
    grid = None if grid is None else real_array(grid, "grid", ndim=1)
    centroids = None if centroids is None else real_array(centroids, "centroids", ndim=1)
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            got = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
            raise TypeError(f"mask: expected a boolean ndarray, got {got}")
        if mask.shape != w.shape:
            raise ValueError(f"mask: expected shape {w.shape} (the weight's), got {mask.shape}")
        values, what = w[mask], "kept"
    else:
        values, what = w[w != 0], "nonzero"
    if isinstance(bins, (bool, np.bool_)):
        raise TypeError(f"bins: expected an int >= 1 or an array of bin edges, got {bins!r}")
    if isinstance(bins, (int, np.integer)):
        bins = check_int(bins, "bins", minimum=1)
    else:
        bins = real_array(bins, "bins", ndim=1)
        if bins.size < 2 or (np.diff(bins) <= 0).any():
            raise ValueError("bins: expected at least 2 strictly increasing bin edges")
    fig, ax = new_or_given(ax, (6, 3.5))
    if threshold is not None:
        ax.axvline(-threshold, color="C3", linestyle="--", label=f"±T = ±{threshold:.3g}")
        ax.axvline(threshold, color="C3", linestyle="--")
    ax.hist(values.astype(np.float64), bins=bins, color="C0", alpha=0.8)
    if grid is not None:
        ax.vlines(grid, 0, 1, transform=ax.get_xaxis_transform(), color="C2", linewidth=0.7,
                  alpha=0.8, label="quantization grid")
    if centroids is not None:
        ax.vlines(centroids, 0, 1, transform=ax.get_xaxis_transform(), color="C1",
                  linewidth=1.5, label="k-means centroids")
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.set_title(f"{values.size:,} {what} weights of {w.size:,}")
    if threshold is not None or grid is not None or centroids is not None:
        ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- sensitivity
def _scan_fields(scan):
    """(layers, x, accuracy (n_layers, n_x), baseline, threshold, chosen, is_rank) of a
    SensitivityResult, a RankSensitivity or their ``to_dict()``."""
    if isinstance(scan, Mapping):
        get = scan.get
    elif hasattr(scan, "layers") and hasattr(scan, "accuracy") and hasattr(scan, "baseline"):
        def get(key, default=None):
            return getattr(scan, key, default)
    else:
        raise TypeError(f"scan: expected a SensitivityResult, a RankSensitivity or their "
                        f"to_dict(), got {type(scan).__name__}")
    is_rank = get("ranks") is not None
    x = get("ranks") if is_rank else get("ratios")
    if get("layers") is None or x is None or get("accuracy") is None or get("baseline") is None:
        raise ValueError("scan: expected the fields layers, ratios (or ranks), accuracy and "
                         "baseline")
    layers = [str(n) for n in get("layers")]
    x = real_array(x, "scan.ratios" if not is_rank else "scan.ranks", ndim=1)
    acc = get("accuracy")
    if not isinstance(acc, np.ndarray):  # to_dict(): nested lists, None for a missing point
        try:
            acc = [[np.nan if a is None else a for a in row] for row in acc]
        except TypeError:
            raise ValueError(f"scan.accuracy: expected one row per layer, got {acc!r}") from None
    acc = real_array(acc, "scan.accuracy", ndim=2, nonempty=False, allow_nan=True)
    if acc.shape != (len(layers), x.size):
        raise ValueError(f"scan.accuracy: expected shape ({len(layers)}, {x.size}) (layers, "
                         f"points), got {acc.shape}")
    baseline = check_real(get("baseline"), "scan.baseline")
    return layers, x, acc, baseline, get("threshold"), get("chosen"), is_rank


def plot_sensitivity(scan, *, threshold=None, ax=None):
    r"""Sensitivity curves (the lecture's "Finding Pruning Ratios"): validation accuracy vs the
    pruning ratio, one curve per layer pruned alone, and the threshold :math:`T` as a horizontal
    line at accuracy ``baseline - T``; stars mark the chosen ratio of each layer.

    Parameters
    ----------
    scan : SensitivityResult, RankSensitivity or their ``to_dict()``
        From :func:`tinyprune.prune.sensitivity_scan` (x = pruning ratio) or
        :func:`tinyprune.lowrank.rank_sensitivity_scan` (x = rank).
    threshold : float, optional
        The accuracy drop :math:`T` to draw (negative when pruning raised the accuracy);
        default ``scan.threshold`` (set by ``scan.choose(target)``), none if neither is set.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        Lines: one per layer (label = layer name, data = ``scan.ratios``, ``scan.accuracy[i]``),
        then the threshold line (label ``"T = ..."``) if any, then the dense accuracy.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from tinyprune.prune import SensitivityResult
    >>> res = SensitivityResult(["fc1.weight"], [0.0, 0.5], np.array([[0.9, 0.8]]), 0.9,
    ...                         {"fc1.weight": 100})
    >>> fig = plot_sensitivity(res, threshold=0.05)
    >>> [ln.get_label() for ln in fig.axes[0].get_lines()]
    ['fc1.weight', 'T = 0.05', 'dense']
    """
    layers, x, acc, baseline, t_scan, chosen, is_rank = _scan_fields(scan)
    threshold = optional_real(threshold, "threshold")  # T < 0 is possible (see choose)
    if threshold is None and t_scan is not None:
        threshold = check_real(t_scan, "scan.threshold")
    fig, ax = new_or_given(ax, (6, 4))
    for i, name in enumerate(layers):
        (line,) = ax.plot(x, acc[i], marker="o", label=name)
        if chosen and not is_rank and name in chosen:
            j = int(np.argmin(np.abs(x - float(chosen[name]))))
            ax.scatter([x[j]], [acc[i, j]], marker="*", s=160, color=line.get_color(),
                       zorder=3)
    if threshold is not None:
        ax.axhline(baseline - threshold, color="k", linestyle="--", label=f"T = {threshold:.3g}")
    ax.axhline(baseline, color="0.5", linestyle=":", label="dense")
    ax.set_xlabel("rank r" if is_rank else "pruning ratio r")
    ax.set_ylabel("validation accuracy")
    ax.set_title("sensitivity: one layer " + ("factorized" if is_rank else "pruned")
                 + " at a time" + ("  (★ chosen)" if chosen and not is_rank else ""))
    ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- lottery
def _lottery_rounds(rounds_result):
    if isinstance(rounds_result, Mapping):
        rounds = rounds_result.get("rounds")
    elif hasattr(rounds_result, "rounds"):
        rounds = rounds_result.rounds
    else:
        rounds = rounds_result
    if isinstance(rounds, (str, bytes)) or not isinstance(rounds, Sequence) or not rounds:
        raise TypeError(f"rounds_result: expected a LotteryResult, its to_dict() or a non-empty "
                        f"list of round records, got {type(rounds_result).__name__}")
    for k, r in enumerate(rounds):
        if not isinstance(r, Mapping) or "remaining" not in r or "test_accuracy" not in r:
            raise ValueError(f"rounds_result: round {k} has no 'remaining' / 'test_accuracy'")
        rem = check_real(r["remaining"], f"rounds_result: round {k} remaining")
        check_real(r["test_accuracy"], f"rounds_result: round {k} test_accuracy")
        if not 0.0 < rem <= 1.0:
            raise ValueError(f"rounds_result: round {k} has remaining = {rem}, expected a "
                             f"fraction in (0, 1]")
    return rounds


def plot_lottery(rounds_result, *, ax=None):
    """Lottery tickets (Frankle & Carbin 2019): test accuracy at the early-stopping iteration vs
    the fraction of weights remaining (log scale, reversed: pruning goes right), for the winning
    ticket and, where run, its controls (same masks randomly re-initialised; random masks).

    Parameters
    ----------
    rounds_result : LotteryResult, its ``to_dict()``, or a list of round records
        From :func:`tinyprune.prune.lottery_ticket`; each record has ``remaining`` and
        ``test_accuracy`` and, for pruned rounds, ``reinit_test_accuracy`` and
        ``random_test_accuracy``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        Lines labelled "winning ticket", "random re-init", "random mask" (controls only when
        present).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> rounds = [{"remaining": 1.0, "test_accuracy": 0.97},
    ...           {"remaining": 0.5, "test_accuracy": 0.975, "reinit_test_accuracy": 0.96}]
    >>> fig = plot_lottery(rounds)
    >>> [ln.get_label() for ln in fig.axes[0].get_lines()]
    ['winning ticket', 'random re-init']
    """
    rounds = _lottery_rounds(rounds_result)
    fig, ax = new_or_given(ax, (6, 4))
    x = [float(r["remaining"]) for r in rounds]
    ax.plot(x, [float(r["test_accuracy"]) for r in rounds], marker="o", label="winning ticket")
    for key, label in (("reinit", "random re-init"), ("random", "random mask")):
        pts = [(float(r["remaining"]), float(r[f"{key}_test_accuracy"])) for r in rounds
               if r.get(f"{key}_test_accuracy") is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="s", linestyle="--", label=label)
    ax.set_xscale("log")
    ticks = sorted(set(x), reverse=True)
    ax.set_xticks(ticks, [f"{v:.1%}" for v in ticks])  # one tick per round
    ax.minorticks_off()
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel("fraction of weights remaining")
    ax.set_ylabel("test accuracy (early stopping)")
    ax.set_title("lottery tickets: iterative magnitude pruning")
    ax.legend(fontsize="small")
    return fig
