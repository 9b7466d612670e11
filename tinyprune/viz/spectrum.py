"""Low-rank figure: singular values and the kept energy of a weight matrix."""

from __future__ import annotations

import numpy as np

from ..lowrank.svd import energy_curve, energy_rank, singular_values
from ..nn.validation import check_float_array, check_int
from ._common import new_or_given, real_array

__all__ = ["plot_spectrum"]


def _singular_values(a):
    if isinstance(a, np.ndarray) and a.ndim in (2, 4):
        check_float_array(a, "w_or_singular_values", finite=True, nonempty=True)
        w = a.reshape(a.shape[0], -1) if a.ndim == 4 else a  # conv: (C_out, C_in KH KW)
        return singular_values(w)
    s = real_array(a, "w_or_singular_values", ndim=1)
    if (s < 0).any() or (np.diff(s) > 0).any():
        raise ValueError("w_or_singular_values: expected a weight matrix (2-D or 4-D) or "
                         "non-negative singular values in non-increasing order")
    return s


def plot_spectrum(w_or_singular_values, *, rank=None, energy=None, ax=None):
    r"""Singular values of a weight (log scale) and the fraction of the energy kept by each rank
    :math:`\sum_{i \le r} \sigma_i^2 / \sum_i \sigma_i^2` on a twin axis (the lecture's low-rank
    factorization slides), with a marker at a chosen rank and/or at the smallest rank that keeps
    a chosen energy (:func:`tinyprune.lowrank.energy_rank`).

    Parameters
    ----------
    w_or_singular_values : ndarray or array-like
        A weight ``(m, n)`` or ``(C_out, C_in, KH, KW)`` (factorized as ``(C_out, C_in KH KW)``,
        float32/float64, finite), or its singular values ``(k,)`` (non-negative,
        non-increasing).
    rank : int in [1, k], optional
        Marked with a vertical line and a point on the energy curve.
    energy : float in (0, 1], optional
        Marked with a horizontal line on the energy axis and a vertical line at its rank.
    ax : matplotlib Axes, optional
        The singular values' axes; the energy goes on ``ax.twinx()``.

    Returns
    -------
    matplotlib.figure.Figure
        ``ax`` holds the singular values (first line: x = 1..k, y = sigma) and the vertical
        marker lines; the twin axes hold the energy curve (first line) and the energy markers.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_spectrum([3.0, 2.0, 1.0], energy=0.9)
    >>> fig.axes[1].get_lines()[0].get_ydata().round(3).tolist()
    [0.643, 0.929, 1.0]
    """
    s = _singular_values(w_or_singular_values)  # (k,)
    k = s.size
    if rank is not None:
        rank = check_int(rank, "rank", minimum=1, maximum=k)
    curve = energy_curve(s)  # (k,)
    e_rank = None if energy is None else energy_rank(s, energy)
    fig, ax = new_or_given(ax, (6, 3.8))
    r = np.arange(1, k + 1)
    ax.plot(r, s, marker="." if k <= 64 else None, color="C0", label="singular value σ_r")
    if (s > 0).any():
        ax.set_yscale("log")
    ax.set_xlabel("rank r")
    ax.set_ylabel("singular value σ_r", color="C0")
    twin = ax.twinx()
    twin.plot(r, curve, color="C1", label="kept energy")
    twin.set_ylim(0.0, 1.02)
    twin.set_ylabel("kept energy Σσ²(≤r) / Σσ²", color="C1")
    if rank is not None:
        ax.axvline(rank, color="C3", linestyle="--",
                   label=f"rank {rank}: {curve[rank - 1]:.1%} energy")
        twin.plot([rank], [curve[rank - 1]], marker="o", color="C3", linestyle="none")
    if e_rank is not None:
        ax.axvline(e_rank, color="C2", linestyle=":",
                   label=f"energy {energy:.0%}: rank {e_rank}")
        twin.axhline(float(energy), color="C2", linestyle=":")
    ax.set_title(f"spectrum: {k} singular values")
    handles = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small", loc="center right")
    return fig
