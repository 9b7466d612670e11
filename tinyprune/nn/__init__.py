"""The engine: layers with hand-written backprop, im2col convolution, losses, optimizers,
training, the model zoo, checkpoints and gradient checks."""

from .batching import iterate_minibatches
from .im2col import col2im, col2im_naive, im2col, im2col_naive
from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU
from .model import Sequential
from .models import build_model, lecture_net, lenet5, lenet_300_100

__all__ = [
    "Conv2d", "Dropout", "Flatten", "Linear", "MaxPool2d", "Module", "ReLU", "Sequential",
    "build_model", "col2im", "col2im_naive", "im2col", "im2col_naive", "lecture_net", "lenet5",
    "lenet_300_100", "iterate_minibatches",
]
