"""The model zoo: the lecture's MNIST network, LeNet-300-100 and LeNet-5.

Every model takes a ``seed`` (initialisation and dropout masks) and is built from a spec, so
``Sequential.from_spec(model.spec())`` gives the same architecture back.
"""

from __future__ import annotations

from .model import SPEC_FORMAT, Sequential


def _conv(name, c_in, c_out, k):
    return {"name": name, "type": "Conv2d", "in_channels": c_in, "out_channels": c_out,
            "kernel_size": [k, k], "stride": 1, "padding": 0, "bias": True}


def _fc(name, n_in, n_out):
    return {"name": name, "type": "Linear", "in_features": n_in, "out_features": n_out,
            "bias": True}


def _build(name, layers, seed, dtype):
    spec = {"format": SPEC_FORMAT, "name": name, "input_shape": [1, 28, 28], "dtype": dtype,
            "layers": layers}
    return Sequential.from_spec(spec, seed=seed)


def lecture_net(seed=0, dtype="float32") -> Sequential:
    """The lecture's MNIST CNN (the PyTorch MNIST example network).

    ``conv1`` 1->32 3x3, ReLU, ``conv2`` 32->64 3x3, ReLU, max-pool 2, dropout 0.25, flatten
    (64x12x12 = 9216), ``fc1`` 9216->128, ReLU, dropout 0.5, ``fc2`` 128->10.
    Weights: conv1 288, conv2 18,432, fc1 1,179,648, fc2 1,280 (plus 234 biases).
    Input ``(N, 1, 28, 28)``; output logits ``(N, 10)``.
    """
    return _build("lecture_net", [
        _conv("conv1", 1, 32, 3), {"name": "relu1", "type": "ReLU"},
        _conv("conv2", 32, 64, 3), {"name": "relu2", "type": "ReLU"},
        {"name": "pool", "type": "MaxPool2d", "kernel_size": [2, 2], "stride": 2, "padding": 0},
        {"name": "dropout1", "type": "Dropout", "p": 0.25},
        {"name": "flatten", "type": "Flatten"},
        _fc("fc1", 9216, 128), {"name": "relu3", "type": "ReLU"},
        {"name": "dropout2", "type": "Dropout", "p": 0.5},
        _fc("fc2", 128, 10),
    ], seed, dtype)


def lenet_300_100(seed=0, dtype="float32") -> Sequential:
    """LeNet-300-100 (LeCun et al., 1998; the MLP of Han et al., 2015): 784-300-100-10 with ReLU.

    Input ``(N, 1, 28, 28)`` (flattened inside); output logits ``(N, 10)``.
    """
    return _build("lenet_300_100", [
        {"name": "flatten", "type": "Flatten"},
        _fc("fc1", 784, 300), {"name": "relu1", "type": "ReLU"},
        _fc("fc2", 300, 100), {"name": "relu2", "type": "ReLU"},
        _fc("fc3", 100, 10),
    ], seed, dtype)


def lenet5(seed=0, dtype="float32") -> Sequential:
    """LeNet-5, Caffe variant (as in Han et al., 2015): ``conv1`` 20 5x5, max-pool 2, ``conv2``
    50 5x5, max-pool 2, ``fc1`` 800->500, ReLU, ``fc2`` 500->10. As in Caffe's prototxt, only the
    fully connected hidden layer has a ReLU. Input ``(N, 1, 28, 28)``; output logits ``(N, 10)``.
    """
    pool = {"type": "MaxPool2d", "kernel_size": [2, 2], "stride": 2, "padding": 0}
    return _build("lenet5", [
        _conv("conv1", 1, 20, 5), {"name": "pool1", **pool},
        _conv("conv2", 20, 50, 5), {"name": "pool2", **pool},
        {"name": "flatten", "type": "Flatten"},
        _fc("fc1", 800, 500), {"name": "relu1", "type": "ReLU"},
        _fc("fc2", 500, 10),
    ], seed, dtype)


MODELS = {"lecture-net": lecture_net, "lenet-300-100": lenet_300_100, "lenet5": lenet5}


def build_model(name: str, seed=0, dtype="float32") -> Sequential:
    """Build a zoo model by CLI name (``"lecture-net"``, ``"lenet-300-100"``, ``"lenet5"``);
    underscores are accepted in place of dashes."""
    key = str(name).replace("_", "-").lower()
    if key not in MODELS:
        raise ValueError(f"model: unknown name {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[key](seed=seed, dtype=dtype)
