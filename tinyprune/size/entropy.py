r"""The entropy bound: no lossless code of independent symbols beats Shannon's entropy.

For a stream whose symbols occur with empirical frequencies :math:`p_s`,

.. math:: H = -\sum_s p_s \log_2 p_s \quad \text{bits per symbol},

and any prefix code has average length :math:`\bar\ell \ge H`; the Huffman code reaches
:math:`H \le \bar\ell < H + 1` (Shannon 1948; Cover & Thomas, Thm. 5.4.1). Printed beside the
Huffman figure of Deep Compression's third stage (Han et al., ICLR 2016, Sec. 4), it shows how
close the code is to the best any symbol-by-symbol code could do.
"""

from __future__ import annotations

import numpy as np

__all__ = ["entropy_bits", "entropy_bound_bits"]


def _counts(symbols):
    if not isinstance(symbols, np.ndarray) or symbols.dtype.kind not in "ui":
        raise TypeError(f"symbols: expected an integer ndarray, got "
                        f"{getattr(symbols, 'dtype', type(symbols).__name__)}")
    flat = symbols.reshape(-1)
    if flat.size and int(flat.min()) < 0:
        raise ValueError(f"symbols: expected symbols >= 0, got min {int(flat.min())}")
    return np.unique(flat, return_counts=True)[1]


def entropy_bits(symbols) -> float:
    """Empirical Shannon entropy of a symbol stream, bits per symbol.

    Parameters
    ----------
    symbols : ndarray of int, any shape, entries ``>= 0``

    Returns
    -------
    float
        ``H >= 0``; 0.0 for an empty stream or a single repeated symbol.
    """
    counts = _counts(symbols)
    if counts.size < 2:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def entropy_bound_bits(symbols) -> float:
    """``n * H``: the fewest bits any symbol-by-symbol code can spend on the stream."""
    return float(np.asarray(symbols).size * entropy_bits(symbols))
