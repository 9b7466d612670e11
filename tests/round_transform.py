"""A weight transform shared by the tests: rounding to a grid with the straight-through estimator
(the shape of fake quantization, without clamping)."""

import numpy as np

from tinyprune.nn.transforms import WeightTransform, register_transform


@register_transform
class RoundToGrid(WeightTransform):
    """``W_eff = round(W / step) * step``; backward passes ``dL/dW_eff`` straight through."""

    def __init__(self, step):
        self.step = float(step)

    def forward(self, w):
        return (np.round(w / self.step) * self.step).astype(w.dtype), None

    def backward(self, dw_eff, cache):
        return dw_eff  # straight through: rounding treated as the identity

    def spec(self):
        return {**super().spec(), "step": self.step}
