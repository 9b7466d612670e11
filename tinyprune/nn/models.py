"""The model zoo: the lecture's MNIST network, LeNet-300-100 and LeNet-5.

Each model is written layer by layer, like the lecture's PyTorch ``Net``, and takes a ``seed``
(initialisation, then dropout masks); ``Sequential.from_spec(model.spec())`` gives the same
architecture back.
"""

from __future__ import annotations

import numpy as np

from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from .model import Sequential


def lecture_net(seed=0, dtype="float32") -> Sequential:
    """The lecture's MNIST CNN (the PyTorch MNIST example network, the lecture's ``Net``).

    ``conv1`` 1->32 3x3, ReLU, ``conv2`` 32->64 3x3, ReLU, max-pool 2, dropout 0.25, flatten
    (64x12x12 = 9216), ``fc1`` 9216->128, ReLU, dropout 0.5, ``fc2`` 128->10.
    Weights: conv1 288, conv2 18,432, fc1 1,179,648, fc2 1,280 (plus 234 biases).
    Input ``(N, 1, 28, 28)``; output logits ``(N, 10)``.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Source of the initial weights and, afterwards, of the dropout masks.
    dtype : str or numpy dtype
        ``"float32"`` (default) or ``"float64"``.
    """
    rng = np.random.default_rng(seed)
    return Sequential([
        ("conv1", Conv2d(1, 32, 3, 1, rng=rng, dtype=dtype)),  # 1 x 32 x 3 x 3 = 288 weights
        ("relu1", ReLU()),
        ("conv2", Conv2d(32, 64, 3, 1, rng=rng, dtype=dtype)),  # 32 x 64 x 3 x 3 = 18,432
        ("relu2", ReLU()),
        ("pool", MaxPool2d(2)),
        ("dropout1", Dropout(0.25, rng=rng)),
        ("flatten", Flatten()),
        ("fc1", Linear(9216, 128, rng=rng, dtype=dtype)),  # 9216 x 128 = 1,179,648
        ("relu3", ReLU()),
        ("dropout2", Dropout(0.5, rng=rng)),
        ("fc2", Linear(128, 10, rng=rng, dtype=dtype)),  # 128 x 10 = 1,280
    ], input_shape=(1, 28, 28), name="lecture_net")


def lenet_300_100(seed=0, dtype="float32") -> Sequential:
    """LeNet-300-100 (LeCun et al., 1998; the MLP of Han et al., 2015): 784-300-100-10 with ReLU.

    Input ``(N, 1, 28, 28)`` (flattened inside); output logits ``(N, 10)``.
    ``seed`` and ``dtype`` as in :func:`lecture_net`.
    """
    rng = np.random.default_rng(seed)
    return Sequential([
        ("flatten", Flatten()),
        ("fc1", Linear(784, 300, rng=rng, dtype=dtype)),
        ("relu1", ReLU()),
        ("fc2", Linear(300, 100, rng=rng, dtype=dtype)),
        ("relu2", ReLU()),
        ("fc3", Linear(100, 10, rng=rng, dtype=dtype)),
    ], input_shape=(1, 28, 28), name="lenet_300_100")


def lenet5(seed=0, dtype="float32") -> Sequential:
    """LeNet-5, Caffe variant (as in Han et al., 2015): ``conv1`` 20 5x5, max-pool 2, ``conv2``
    50 5x5, max-pool 2, ``fc1`` 800->500, ReLU, ``fc2`` 500->10. As in Caffe's prototxt, only the
    fully connected hidden layer has a ReLU. Input ``(N, 1, 28, 28)``; output logits ``(N, 10)``.
    ``seed`` and ``dtype`` as in :func:`lecture_net`.
    """
    rng = np.random.default_rng(seed)
    return Sequential([
        ("conv1", Conv2d(1, 20, 5, rng=rng, dtype=dtype)),
        ("pool1", MaxPool2d(2)),
        ("conv2", Conv2d(20, 50, 5, rng=rng, dtype=dtype)),
        ("pool2", MaxPool2d(2)),
        ("flatten", Flatten()),
        ("fc1", Linear(800, 500, rng=rng, dtype=dtype)),
        ("relu1", ReLU()),
        ("fc2", Linear(500, 10, rng=rng, dtype=dtype)),
    ], input_shape=(1, 28, 28), name="lenet5")


MODELS = {"lecture-net": lecture_net, "lenet-300-100": lenet_300_100, "lenet5": lenet5}


def build_model(name: str, seed=0, dtype="float32") -> Sequential:
    """Build a zoo model by CLI name (``"lecture-net"``, ``"lenet-300-100"``, ``"lenet5"``);
    underscores are accepted in place of dashes."""
    key = str(name).replace("_", "-").lower()
    if key not in MODELS:
        raise ValueError(f"model: unknown name {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[key](seed=seed, dtype=dtype)
