"""The sparsity report counts what it says it counts."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _channel_masks(model, layers, fraction, rng):
    masks = {}
    for ln in layers:
        w = model.params[f"{ln}.weight"]
        keep = np.ones(w.shape[0], dtype=bool)
        keep[rng.choice(w.shape[0], size=round(fraction * w.shape[0]), replace=False)] = False
        masks[f"{ln}.weight"] = np.broadcast_to(keep.reshape((-1,) + (1,) * (w.ndim - 1)),
                                                w.shape).copy()
        masks[f"{ln}.bias"] = keep
    return masks


def test_effective_macs_count_dead_input_channels_like_the_thinned_model():
    """Half the channels of conv1, conv2 and fc1 pruned: the masked model's effective MACs are
    the thinned model's dense MACs (about 4x fewer), not half the dense count."""
    from tinyprune.prune.thinning import thin_model

    model = lecture_net(seed=0)
    set_masks_(model, _channel_masks(model, ["conv1", "conv2", "fc1"], 0.5,
                                     np.random.default_rng(0)))
    r = sparsity_report(model)
    thin, _ = thin_model(model)
    assert r["total"]["macs_effective"] == sum(thin.macs().values())
    assert r["total"]["mac_reduction"] > 3.9  # the thinned model's real saving
    assert r["total"]["mac_reduction_nonzero"] < 2.1  # what counting nonzero weights says
    # conv2: 32 live filters x 16 live inputs x 9 weights, at 24 x 24 output positions
    assert r["layers"]["conv2"]["macs_effective"] == 32 * 16 * 9 * 24 * 24
    assert r["layers"]["conv2"]["macs_remaining"] == 32 * 32 * 9 * 24 * 24


def _small_convnet(seed):
    from tinyprune.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
    rng = np.random.default_rng(seed)
    return Sequential([
        ("conv1", Conv2d(2, 5, 3, padding=1, rng=rng)), ("relu1", ReLU()),
        ("pool", MaxPool2d(2)),
        ("conv2", Conv2d(5, 4, 3, stride=2, rng=rng)), ("relu2", ReLU()),
        ("flatten", Flatten()),
        ("fc1", Linear(4, 6, rng=rng)), ("relu3", ReLU()),
        ("fc2", Linear(6, 3, rng=rng)),
    ], input_shape=(2, 6, 6))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), p_elem=st.sampled_from([0.0, 0.5, 0.9]),
       p_row=st.sampled_from([0.0, 0.4, 0.8]), p_bias=st.sampled_from([0.0, 1.0]))
def test_effective_macs_are_invariant_under_thinning(seed, p_elem, p_row, p_bias):
    from tinyprune.prune.thinning import thin_model

    rng = np.random.default_rng(seed)
    model = _small_convnet(seed)
    masks = {}
    for ln in ("conv1", "conv2", "fc1", "fc2"):
        w = model.params[f"{ln}.weight"]
        keep = rng.random(w.shape) >= p_elem
        dead = rng.random(w.shape[0]) < p_row
        keep[dead] = False
        masks[f"{ln}.weight"] = keep
        masks[f"{ln}.bias"] = ~(dead & (rng.random(w.shape[0]) < p_bias))
    set_masks_(model, masks)
    r = sparsity_report(model)["total"]
    assert r["macs_effective"] <= r["macs_remaining"] <= r["macs_dense"]
    try:
        thin, _ = thin_model(model)
    except ValueError:
        return  # every unit of a layer pruned
    assert sparsity_report(thin)["total"]["macs_effective"] == r["macs_effective"]


def test_weight_only_and_with_bias_sparsity_and_text():
    model = lenet_300_100()
    model.params["fc3.weight"][:] = 0.0  # 1000 weights zero, 10 biases not
    r = sparsity_report(model, n_pruned=1, m=4)
    assert r["layers"]["fc3"]["weight_sparsity"] == 1.0
    assert r["layers"]["fc3"]["sparsity"] == pytest.approx(1000 / 1010)
    assert r["total"]["weight_sparsity"] == pytest.approx(1000 / (784 * 300 + 300 * 100 + 1000))
    assert r["nm_pattern"] == {"n_pruned": 1, "m": 4}
    text = format_report(r)
    assert "w-sparse" in text and "sparse" in text and "1:4 pattern" in text
    model.params["fc1.weight"][:] = 0.0
    model.params["fc1.bias"][:] = 0.0  # nothing reaches the output: no MAC is effective
    t = sparsity_report(model)["total"]
    assert t["macs_effective"] == 0 and t["mac_reduction"] is None
    text = format_report(sparsity_report(model))
    assert "all MACs removed" in text and "inf" not in text


# ------------------------------------------------------------------ quantized weight formats
def test_quantization_report_of_a_float_model_is_float32():
    from tinyprune.report import format_quantization_report, quantization_report

    r = quantization_report(lenet_300_100())
    assert {v["format"] for v in r["layers"].values()} == {"float32"}
    assert r["layers"]["fc1"]["bytes"] == r["layers"]["fc1"]["float32_bytes"] == 4 * (784 * 300 + 300)
    assert r["total"]["compression"] == 1.0 and r["total"]["bits_per_weight"] == 32.0
    assert "float32" in format_quantization_report(r)


def test_quantization_report_of_affine_weights():
    from tinyprune.quantize import prepare_qat
    from tinyprune.report import format_quantization_report, quantization_report

    r = quantization_report(prepare_qat(lecture_net(), bits=8))
    fc1 = r["layers"]["fc1"]
    assert fc1["format"] == "affine int8 per-channel" and fc1["bits_per_weight"] == 8
    assert fc1["codebook_size"] is None
    # one byte per weight, a float32 scale per output channel (symmetric: Z = 0 is not stored)
    assert (fc1["weight_bytes"], fc1["extra_bytes"], fc1["bias_bytes"]) == (1179648, 4 * 128, 4 * 128)
    assert r["total"]["weights"] == 288 + 18432 + 1179648 + 1280
    assert r["total"]["bytes"] == sum(v["bytes"] for v in r["layers"].values())
    assert 8 < r["total"]["bits_per_weight"] < 8.01 and 3.99 < r["total"]["compression"] < 4
    # 4 bits, per tensor, asymmetric, on fc1 only: packed nibbles, one scale, one 4-bit zero point
    r = quantization_report(prepare_qat(lenet_300_100(), bits=4, per_channel=False,
                                        symmetric=False, layers=["fc1"]))
    fc1 = r["layers"]["fc1"]
    assert fc1["format"] == "affine int4 per-tensor asym"
    assert (fc1["weight_bytes"], fc1["extra_bytes"]) == (784 * 300 // 2, 4 + 1)
    assert r["layers"]["fc2"]["format"] == "float32"
    text = format_quantization_report(r)
    assert "affine int4 per-tensor asym" in text and f"{r['total']['bytes']:,}" in text


def test_quantization_report_of_shared_weights_counts_the_pruned_zero():
    from tinyprune.quantize import share_weights
    from tinyprune.report import quantization_report

    model = lenet_300_100(seed=0)
    r = quantization_report(share_weights(model, 2))  # 4 centroids, nothing pruned
    fc2 = r["layers"]["fc2"]
    assert fc2["format"] == "k-means codebook" and fc2["codebook_size"] == 4
    assert (fc2["bits_per_weight"], fc2["weight_bytes"], fc2["extra_bytes"]) == \
        (2, 300 * 100 * 2 // 8, 4 * 4)
    pruned = model.copy()
    set_masks_(pruned, prune_model(pruned, ["fc1", "fc2", "fc3"], amount=0.5))
    r = quantization_report(share_weights(pruned, 2))  # 4 centroids + the pruned weights' 0
    fc2 = r["layers"]["fc2"]
    assert fc2["codebook_size"] == 4 and fc2["bits_per_weight"] == 3
    assert (fc2["weight_bytes"], fc2["extra_bytes"]) == (-(-300 * 100 * 3 // 8), 4 * 5)
    json.dumps(r)


def test_quantization_report_bad_input():
    from tinyprune.report import quantization_report

    with pytest.raises(TypeError, match="Sequential"):
        quantization_report("model")
