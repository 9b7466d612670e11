"""The sparsity report counts what it says it counts."""

import json

import numpy as np
import pytest

from tinyprune.nn import lecture_net, lenet_300_100
from tinyprune.prune import prune_model, set_masks_
from tinyprune.report import format_report, report_json, sparsity_report


def test_dense_lecture_net_counts():
    r = sparsity_report(lecture_net())
    layers = r["layers"]
    assert [layers[k]["params"] for k in ("conv1", "conv2", "fc1", "fc2")] == \
        [288 + 32, 18432 + 64, 1179648 + 128, 1280 + 10]
    assert r["total"]["params"] == 1_199_882
    assert layers["conv2"]["macs_dense"] == 18432 * 24 * 24
    assert layers["fc1"]["macs_dense"] == 1179648
    assert all(v["sparsity"] == 0.0 for v in layers.values())
    assert layers["fc1"]["dense_bytes"] == 4 * (1179648 + 128)
    # CSR: values + int32 column index per non-zero, int32 row pointers, dense bias
    assert layers["fc1"]["csr_bytes"] == 1179648 * 8 + 129 * 4 + 128 * 4
    assert layers["fc1"]["zero_kernels"] is None and layers["conv1"]["zero_kernels"] == 0.0


def test_structures_are_counted():
    model = lecture_net()
    w = model.params["conv2.weight"]
    mask = np.ones(w.shape, dtype=bool)
    mask[:16] = False            # 16 of 64 filters
    mask[:, :8] = False          # 8 of 32 input channels
    mask[20, 10] = False         # one more kernel
    set_masks_(model, {"conv2.weight": mask})
    r = sparsity_report(model)["layers"]["conv2"]
    assert r["zero_channels"] == pytest.approx(16 / 64)
    assert r["zero_input_channels"] == pytest.approx(8 / 32)
    dead_kernels = 16 * 32 + 48 * 8 + 1
    assert r["zero_kernels"] == pytest.approx(dead_kernels / (64 * 32))
    nnz = int(mask.sum())
    assert r["macs_remaining"] == nnz * 24 * 24
    assert r["nonzero"] == nnz + 64


def test_nm_compliance():
    model = lenet_300_100()
    set_masks_(model, prune_model(model, ["fc1"], granularity="nm", n_pruned=2, m=4))
    r = sparsity_report(model)
    assert r["layers"]["fc1"]["nm_compliance"] == 1.0
    assert r["layers"]["fc2"]["nm_compliance"] == 0.0
    r14 = sparsity_report(model, n_pruned=1, m=4)
    assert r14["layers"]["fc1"]["nm_compliance"] == 1.0
    r38 = sparsity_report(model, n_pruned=6, m=8)
    assert r38["layers"]["fc1"]["nm_compliance"] < 1.0


def test_totals_and_formats():
    model = lenet_300_100()
    set_masks_(model, prune_model(model, ["fc1", "fc2", "fc3"], amount=0.9))
    r = sparsity_report(model)
    assert r["total"]["nonzero"] == sum(v["nonzero"] for v in r["layers"].values())
    assert r["total"]["compression"] > 4
    assert r["total"]["mac_reduction"] == pytest.approx(10, rel=0.01)
    assert json.loads(report_json(r)) == r
    text = format_report(r)
    for name in ("fc1", "fc2", "fc3", "total", "CSR"):
        assert name in text


@pytest.mark.parametrize("n_pruned, m, exc", [(4, 4, ValueError), (-1, 4, ValueError),
                                              (1, 0, ValueError), (1.5, 4, TypeError)])
def test_bad_nm_pattern_is_rejected(n_pruned, m, exc):
    with pytest.raises(exc, match="n_pruned|m:"):
        sparsity_report(lenet_300_100(), n_pruned=n_pruned, m=m)


def test_model_without_input_shape_is_rejected():
    from tinyprune.nn import Linear, Sequential
    with pytest.raises(ValueError, match="input_shape"):
        sparsity_report(Sequential([("fc", Linear(3, 2))]))
