"""Hypothesis strategies shared by the pruning tests."""

import numpy as np
from hypothesis import strategies as st


@st.composite
def weights(draw, conv=None, ties=False):
    """A random Linear ``(out, in)`` or Conv2d ``(out, in, KH, KW)`` weight, float32 or float64;
    with ``ties`` (or by a coin flip) small integers, so that many scores are equal."""
    is_conv = draw(st.booleans()) if conv is None else conv
    if is_conv:
        shape = (draw(st.integers(1, 6)), draw(st.integers(1, 4)),
                 draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    else:
        shape = (draw(st.integers(1, 8)), draw(st.integers(1, 13)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    if ties or draw(st.booleans()):
        return rng.integers(-3, 4, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)
