"""Accuracy curves against a compression knob, and the accuracy / bytes trade-off of several
techniques on one figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._common import check_bool, check_str, new_or_given, optional_real, real_array

__all__ = ["plot_accuracy_vs", "plot_tradeoff"]

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def _curves(accuracies, labels, n_points):
    """``[(label, values)]`` with values ``(n_points,)`` or ``(n_seeds, n_points)``."""
    if isinstance(accuracies, Mapping):
        if labels is not None:
            raise ValueError("labels: not used when accuracies is a dict (its keys are the "
                             "labels)")
        if not accuracies:
            raise ValueError("accuracies: expected at least one curve, got an empty dict")
        items = [(str(k), real_array(v, f"accuracies[{k!r}]", ndim=(1, 2), allow_nan=True))
                 for k, v in accuracies.items()]
    else:
        arr = real_array(accuracies, "accuracies", ndim=(1, 2, 3), allow_nan=True)
        rows = [arr] if arr.ndim == 1 else list(arr)  # 2-D: curves; 3-D: curves of seeds
        if labels is None:
            labels = [None] * len(rows) if len(rows) == 1 else [f"curve {i}" for i in
                                                                 range(len(rows))]
        elif isinstance(labels, str) or not isinstance(labels, Sequence) \
                or len(labels) != len(rows):
            raise ValueError(f"labels: expected {len(rows)} labels (one per curve), got "
                             f"{labels!r}")
        items = [(None if lab is None else str(lab), r) for lab, r in
                 zip(labels, rows, strict=True)]
    for name, v in items:
        if v.shape[-1] != n_points:
            raise ValueError(f"accuracies: curve {name!r} has {v.shape[-1]} points, expected "
                             f"{n_points} (the length of x)")
    return items


def plot_accuracy_vs(x, accuracies, *, xlabel, labels=None, baseline=None, logx=False,
                     ylabel="test accuracy", title=None, ax=None):
    """Accuracy against a compression knob (sparsity, bits, rank, compression ratio), one curve
    per method, with mean ± std bands over seeds.

    Parameters
    ----------
    x : array-like (n_points,)
        The knob's values.
    accuracies : dict or array-like
        ``{label: values}`` or an array: ``(n_points,)`` one curve, ``(n_curves, n_points)``
        several curves (named by ``labels``), ``(n_curves, n_seeds, n_points)`` curves over
        seeds. In a dict, a ``(n_seeds, n_points)`` value is a curve over seeds. Curves over
        seeds are drawn as their mean with a ± one (population) standard deviation band.
        NaN marks a missing point.
    xlabel : str
        The knob's name ("sparsity", "bits", "rank r", ...).
    labels : sequence of str, optional
        Curve names for an array ``accuracies`` (not with a dict).
    baseline : float, optional
        The dense model's accuracy: a dotted horizontal line.
    logx : bool
        Logarithmic x axis.
    ylabel, title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One line per curve (its y data: the values, or the mean over seeds), then the baseline
        line (label "dense"); one ``fill_between`` band per curve over seeds.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_accuracy_vs([0.5, 0.9], {"l1": [0.9, 0.8], "random": [[0.8, 0.5], [0.7, 0.4]]},
    ...                        xlabel="sparsity", baseline=0.91)
    >>> fig.axes[0].get_lines()[1].get_ydata().tolist()
    [0.75, 0.45]
    """
    x = real_array(x, "x", ndim=1)
    xlabel = check_str(xlabel, "xlabel")
    ylabel = check_str(ylabel, "ylabel")
    logx = check_bool(logx, "logx")
    baseline = optional_real(baseline, "baseline")
    if logx and (x <= 0).any():
        raise ValueError("x: expected positive values with logx=True")
    curves = _curves(accuracies, labels, x.size)
    fig, ax = new_or_given(ax, (6, 4))
    for i, (name, v) in enumerate(curves):
        marker = MARKERS[i % len(MARKERS)]
        if v.ndim == 1:
            ax.plot(x, v, marker=marker, label=name)
            continue
        mean, std = np.nanmean(v, axis=0), np.nanstd(v, axis=0)  # over seeds: (n_points,)
        n = v.shape[0]
        (line,) = ax.plot(x, mean, marker=marker,
                          label=None if name is None else f"{name} (mean ± std, {n} seeds)")
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2,
                        linewidth=0)
    if baseline is not None:
        ax.axhline(baseline, color="0.4", linestyle=":", label="dense")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(check_str(title, "title"))
    if any(name is not None for name, _ in curves) or baseline is not None:
        ax.legend(fontsize="small")
    return fig


def _check_points(points):
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Sequence) \
            or not points:
        raise TypeError(f"points: expected a non-empty list of dicts with label, bytes, accuracy "
                        f"and technique, got {type(points).__name__}")
    out = []
    for i, p in enumerate(points):
        if not isinstance(p, Mapping):
            raise TypeError(f"points[{i}]: expected a dict, got {type(p).__name__}")
        missing = [k for k in ("label", "bytes", "accuracy", "technique") if k not in p]
        if missing:
            raise ValueError(f"points[{i}]: missing {', '.join(missing)}")
        b = real_array([p["bytes"]], f"points[{i}]['bytes']")[0]
        a = real_array([p["accuracy"]], f"points[{i}]['accuracy']")[0]
        if b <= 0:
            raise ValueError(f"points[{i}]['bytes']: expected a positive size, got {b}")
        out.append((str(p["label"]), b, a, str(p["technique"])))
    return out


def plot_tradeoff(points, *, xlabel="stored bytes", logx=True, ylabel="test accuracy",
                  annotate=True, connect=False, title=None, ax=None):
    """Accuracy vs stored bytes of every compressed model on one figure (one colour and marker
    per technique, each point annotated with its label): the overview of the lecture's
    techniques.

    Parameters
    ----------
    points : list of dict
        Each ``{"label": str, "bytes": float > 0, "accuracy": float, "technique": str}``.
    xlabel, ylabel : str
    logx : bool
        Logarithmic x axis (sizes span orders of magnitude).
    annotate : bool
        Write each point's label beside it.
    connect : bool
        Join the points of each technique by a thin line, in order of size (its trade-off
        curve).
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One scatter collection per technique (in order of first appearance, label = the
        technique), offsets ``(bytes, accuracy)``; one text annotation per point; with
        ``connect``, one line per technique of two or more points, sorted by bytes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> pts = [{"label": "dense", "bytes": 1e6, "accuracy": 0.9, "technique": "none"},
    ...        {"label": "90%", "bytes": 2e5, "accuracy": 0.89, "technique": "pruning"}]
    >>> fig = plot_tradeoff(pts)
    >>> [c.get_label() for c in fig.axes[0].collections]
    ['none', 'pruning']
    """
    pts = _check_points(points)
    xlabel, ylabel = check_str(xlabel, "xlabel"), check_str(ylabel, "ylabel")
    logx, annotate = check_bool(logx, "logx"), check_bool(annotate, "annotate")
    connect = check_bool(connect, "connect")
    fig, ax = new_or_given(ax, (7, 4.5))
    techniques = list(dict.fromkeys(t for *_, t in pts))
    for i, tech in enumerate(techniques):
        mine = [(b, a) for _, b, a, t in pts if t == tech]
        ax.scatter([b for b, _ in mine], [a for _, a in mine], marker=MARKERS[i % len(MARKERS)],
                   color=f"C{i % 10}", s=50, label=tech, zorder=3)
        if connect and len(mine) > 1:
            xs, ys = zip(*sorted(mine), strict=True)
            ax.plot(xs, ys, color=f"C{i % 10}", linewidth=0.8, alpha=0.6)
    if annotate:
        for label, b, a, _ in pts:
            ax.annotate(label, (b, a), textcoords="offset points", xytext=(4, 4),
                        fontsize="x-small")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(check_str(title, "title") if title is not None
                 else "accuracy vs storage, every technique")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig
