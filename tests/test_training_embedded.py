"""Real training on the embedded Fashion-MNIST subset (6,000 train / 1,000 test images).

Measured here: LeNet-300-100 reaches ~0.79 after one epoch (SGD, momentum 0.5, lr 0.02, batch 8,
normalised inputs) and > 0.80 after three; PyTorch trained from the same initial weights on the same
batches lands within a point of tinyprune.
"""

import numpy as np
import pytest

from tinyprune.datasets import load_dataset
from tinyprune.nn import lecture_net, lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit


@pytest.fixture(scope="module")
def data():
    return load_dataset("fashion-mnist-small", normalize=True)


def _train(model, data, epochs, seed=0, batch_size=8, lr=0.02, momentum=0.5):
    opt = SGD(model.params, lr=lr, momentum=momentum)
    hist = fit(model, data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, rng=seed,
               optimizer=opt, progress=False)
    return hist, evaluate(model, data.x_test, data.y_test)["accuracy"]


def test_lenet_300_100_one_epoch(data):
    hist, acc = _train(lenet_300_100(seed=0), data, epochs=1)
    assert hist.loss[0] < 0.8
    assert acc > 0.77, acc


def test_lenet_300_100_passes_80_percent(data):
    hist, acc = _train(lenet_300_100(seed=0), data, epochs=3)
    assert hist.loss[-1] < hist.loss[0]
    assert acc > 0.80, acc


@pytest.mark.slow
def test_lecture_net_one_epoch(data):
    # Measured with the zoo's layer-by-layer initialisation (one generator): 0.761 / 0.804 / 0.778
    # for seeds 0 / 1 / 2 (the seed-to-seed spread is about 2 points; the previous per-layer
    # streams gave 0.795 / 0.788 / 0.802). One epoch must clearly beat chance (0.10) and a
    # linear model's one-epoch level (LeNet-300-100's hidden layers reach ~0.77 here).
    _, acc = _train(lecture_net(seed=0), data, epochs=1, batch_size=32, momentum=0.9)
    assert acc > 0.75, acc


def test_same_as_torch_trained_from_the_same_start(data):
    torch = pytest.importorskip("torch")
    model = lenet_300_100(seed=1)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 300), torch.nn.ReLU(),
                              torch.nn.Linear(300, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    with torch.no_grad():
        for i, name in zip((1, 3, 5), ("fc1", "fc2", "fc3"), strict=True):
            net[i].weight.copy_(torch.from_numpy(model.params[f"{name}.weight"]))
            net[i].bias.copy_(torch.from_numpy(model.params[f"{name}.bias"]))
    order = np.random.default_rng(3).permutation(len(data.y_train))
    x, y = data.x_train[order], data.y_train[order]
    fit(model, x, y, epochs=1, batch_size=32, shuffle=False, progress=False,
        optimizer=SGD(model.params, lr=0.02, momentum=0.9))
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for i in range(0, len(y), 32):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt[i:i + 32]), yt[i:i + 32]).backward()
        opt.step()
    with torch.no_grad():
        torch_pred = net(torch.from_numpy(data.x_test)).argmax(1).numpy()
    ours = evaluate(model, data.x_test, data.y_test)["accuracy"]
    theirs = float(np.mean(torch_pred == data.y_test))
    assert ours > 0.75
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_same_seed_gives_bit_identical_training(data):
    x, y = data.x_train[:512], data.y_train[:512]
    finals = []
    for _ in range(2):
        model = lecture_net(seed=5)
        fit(model, x, y, epochs=1, batch_size=64, rng=7,
            optimizer=SGD(model.params, lr=0.05, momentum=0.9), progress=False)
        finals.append({k: v.copy() for k, v in model.params.items()})
    for k in finals[0]:
        np.testing.assert_array_equal(finals[0][k], finals[1][k])
