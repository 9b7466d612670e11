"""Parameter initialisation, following PyTorch's defaults.

PyTorch initialises ``nn.Linear`` and ``nn.Conv2d`` weights with ``kaiming_uniform_(a=sqrt(5))``,
which works out to ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and their biases with the same bound.
(He et al., "Delving Deep into Rectifiers", ICCV 2015, for the Kaiming family.)
"""

from __future__ import annotations

import math

import numpy as np


def uniform_fan_in(shape, fan_in, rng: np.random.Generator, dtype=np.float32):
    """Draw ``shape`` values from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    Parameters
    ----------
    shape : tuple of int
    fan_in : int
        Inputs feeding one output unit (``in_features`` or ``C_in * KH * KW``).
    rng : numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    ndarray of ``shape`` and ``dtype``
    """
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_normal(shape, fan_in, rng: np.random.Generator, dtype=np.float32):
    """He initialisation ``N(0, 2 / fan_in)`` for ReLU networks (He et al., 2015)."""
    return (rng.standard_normal(size=shape) * math.sqrt(2.0 / fan_in)).astype(dtype)
