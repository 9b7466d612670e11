"""Deep Compression's storage figure: bytes per stage, per layer and in total."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..nn.validation import check_real
from ._common import check_bool, new_or_given

__all__ = ["STAGES", "plot_storage_stages"]

STAGES = (("dense", "dense float32"), ("csr", "pruned (CSR)"), ("shared", "+ shared weights"),
          ("huffman", "+ Huffman"))
"""The stages drawn, in order: key of :func:`tinyprune.size.model_storage_stages`, label."""


def _bytes(record, stage):
    if stage == "dense":
        return check_real(record["dense_bytes"], "stages: dense_bytes", minimum=0)
    part = record.get(stage)
    if part is None or part.get("total_bytes") is None:
        return None
    return check_real(part["total_bytes"], f"stages: {stage} total_bytes", minimum=0)


def _entropy_bound(record):
    """The bound Huffman approaches, as :func:`tinyprune.size.model_storage_stages` computes it
    (``entropy_bound_bytes``); None when the record has none."""
    bound = record.get("entropy_bound_bytes")
    return None if bound is None else check_real(bound, "stages: entropy_bound_bytes", minimum=0)


def _groups(stages):
    if not isinstance(stages, Mapping):
        raise TypeError(f"stages: expected the dict of tinyprune.size.model_storage_stages, got "
                        f"{type(stages).__name__}")
    if not isinstance(stages.get("layers"), Mapping) or not isinstance(stages.get("total"),
                                                                       Mapping):
        raise ValueError("stages: expected the keys 'layers' and 'total' of "
                         "tinyprune.size.model_storage_stages")
    groups = []
    try:
        for name, rec in stages["layers"].items():
            groups.append((str(name), {s: _bytes(rec, s) for s, _ in STAGES},
                           _entropy_bound(rec)))
        total = stages["total"]
        groups.append(("total", {s: _bytes(total, s) for s, _ in STAGES}, _entropy_bound(total)))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"stages: not the structure of tinyprune.size.model_storage_stages "
                         f"({type(exc).__name__}: {exc})") from None
    return groups


def plot_storage_stages(stages, *, logy=True, ax=None):
    """Bytes of every weight and of the whole model at each stage of Deep Compression (Han et
    al. 2016, Fig. 1): dense float32 -> pruned CSR -> + shared weights -> + Huffman, with the
    entropy bound of the Huffman stage and the compression ratio of the last stage.

    Parameters
    ----------
    stages : dict
        :func:`tinyprune.size.model_storage_stages` (or ``tinyprune report --storage --json``):
        ``layers`` (name -> per-stage bytes), ``total``; a stage that is ``None`` is not drawn
        (a weight that is not shared has ``shared["applied"] = False`` and the CSR stage's
        bytes). The entropy bound is each record's ``entropy_bound_bytes``.
    logy : bool
        Logarithmic byte axis (the stages span orders of magnitude).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One ``BarContainer`` per stage in ``ax.containers`` (label = the stage, one bar per
        weight that reached the stage, then the total); the entropy bound as one horizontal
        segment per group over the Huffman bar (a ``LineCollection`` labelled "entropy bound").

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from tinyprune.nn import lenet_300_100
    >>> from tinyprune.size import model_storage_stages
    >>> fig = plot_storage_stages(model_storage_stages(lenet_300_100(seed=0)))
    >>> [c.get_label() for c in fig.axes[0].containers][:2]
    ['dense float32', 'pruned (CSR)']
    """
    groups = _groups(stages)
    logy = check_bool(logy, "logy")
    n = len(groups)
    fig, ax = new_or_given(ax, (max(6.0, 1.5 * n + 2), 4))
    width = 0.8 / len(STAGES)
    x = np.arange(n, dtype=np.float64)
    for j, (stage, label) in enumerate(STAGES):
        idx = [i for i, (_, b, _) in enumerate(groups) if b[stage] is not None]
        if idx:
            ax.bar(x[idx] + (j - 1.5) * width, [groups[i][1][stage] for i in idx], width,
                   label=label, color=f"C{j}")
    bounds = [(i, b) for i, (_, _, b) in enumerate(groups) if b is not None]
    if bounds:
        centers = np.array([x[i] + 1.5 * width for i, _ in bounds])
        ax.hlines([b for _, b in bounds], centers - width / 2, centers + width / 2, color="k",
                  linewidth=2, label="entropy bound")
    for i, (_, b, _) in enumerate(groups):
        last = next((j for j in range(len(STAGES) - 1, 0, -1) if b[STAGES[j][0]] is not None),
                    None)
        if last is not None and b[STAGES[last][0]] > 0:
            ratio = b["dense"] / b[STAGES[last][0]]
            ax.annotate(f"{ratio:.1f}x", (x[i] + (last - 1.5) * width, b[STAGES[last][0]]),
                        textcoords="offset points", xytext=(0, 3), ha="center",
                        fontsize="x-small")
    if logy:
        ax.set_yscale("log")
    ax.set_xticks(x, [name.removesuffix(".weight") for name, _, _ in groups])
    ax.set_ylabel("bytes")
    ax.set_title("Deep Compression: storage stage by stage")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
