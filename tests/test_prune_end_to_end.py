"""Train, prune, retrain on real data (Han et al., 2015), with the figures stated.

Measured here (LeNet-300-100, embedded Fashion-MNIST subset, 3 epochs dense): dense 0.829;
90% of every layer's weights pruned by magnitude: 0.780 before fine-tuning, 0.835 after one epoch
of fine-tuning with the masks enforced.
"""

import numpy as np
import pytest

from tinyprune.datasets import load_dataset
from tinyprune.nn import lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import prune_model, set_masks_, thin_model
from tinyprune.report import sparsity_report


@pytest.fixture(scope="module")
def dense():
    data = load_dataset("fashion-mnist-small", normalize=True)
    model = lenet_300_100(seed=0)
    fit(model, data.x_train, data.y_train, optimizer=SGD(model.params, lr=0.02, momentum=0.5),
        epochs=3, batch_size=8, rng=0, progress=False)
    return data, model, evaluate(model, data.x_test, data.y_test)["accuracy"]


def test_90_percent_fine_grained_then_finetune_loses_little(dense):
    data, model, acc_dense = dense
    m = model.copy()
    set_masks_(m, prune_model(m, ["fc1", "fc2", "fc3"], amount=0.9, criterion="magnitude"))
    acc_pruned = evaluate(m, data.x_test, data.y_test)["accuracy"]
    fit(m, data.x_train, data.y_train, optimizer=SGD(m.params, lr=0.02, momentum=0.5), epochs=1,
        batch_size=8, rng=1, progress=False)
    acc_ft = evaluate(m, data.x_test, data.y_test)["accuracy"]
    report = sparsity_report(m)
    for name in ("fc1", "fc2", "fc3"):
        assert report["layers"][name]["weight_sparsity"] == pytest.approx(0.9, abs=1e-3)
        assert np.all(m.params[f"{name}.weight"][~m.masks[f"{name}.weight"]] == 0.0)
    assert acc_dense > 0.80
    assert acc_ft >= acc_dense - 0.02, (acc_dense, acc_pruned, acc_ft)
    assert acc_ft > acc_pruned - 0.005


def test_iterative_pruning_reaches_the_target_monotonically(dense):
    data, model, _ = dense
    m = model.copy()
    previous = None
    for target in (0.5, 0.75, 0.9):
        set_masks_(m, prune_model(m, ["fc1", "fc2"], amount=target, relative_to="total"))
        mask = m.masks["fc1.weight"]
        assert mask.mean() == pytest.approx(1 - target, abs=1e-5)
        if previous is not None:
            assert not np.any(mask & ~previous)  # nothing revived
        previous = mask.copy()


def test_structured_channel_pruning_and_removal_agree(dense):
    data, model, _ = dense
    m = model.copy()
    set_masks_(m, prune_model(m, ["fc1", "fc2"], amount=0.5, criterion="l2",
                              granularity="channel"))
    thin, kept = thin_model(m)
    assert kept["fc1"].size == 150 and kept["fc2"].size == 50
    a = evaluate(m, data.x_test, data.y_test)
    b = evaluate(thin, data.x_test, data.y_test)
    assert a["accuracy"] == b["accuracy"]
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
