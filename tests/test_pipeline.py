"""Deep Compression end to end (tinyprune.pipeline) and the pieces it needed: baking weight
transforms, a codebook code reserved for the filler zero, the file refusing transforms."""

from types import SimpleNamespace

import numpy as np
import pytest

from tinyprune.datasets import load_dataset
from tinyprune.nn import lecture_net, lenet5, lenet_300_100
from tinyprune.nn.transforms import bake_transforms
from tinyprune.pipeline import HAN_SPARSITY, deep_compress, format_result, han_sparsities
from tinyprune.quantize import share_weights
from tinyprune.quantize.fake_quant import FakeQuantize
from tinyprune.quantize.weight_sharing import cluster_weights
from tinyprune.size import (
    best_index_bits,
    load_compressed,
    read_header,
    save_compressed,
    storage_stages,
)


@pytest.fixture(scope="module")
def data():
    return load_dataset("fashion-mnist-small")


@pytest.fixture(scope="module")
def result(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("dc") / "m.tpz"
    return deep_compress(lenet_300_100(seed=0), data, path, train_epochs=1, prune_rounds=2,
                         epochs_per_round=1, share_epochs=1, index_bits="auto", seed=0,
                         metadata={"note": "test"})


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def test_the_file_holds_the_fine_tuned_shared_model_bit_for_bit(result):
    stored, back = result.stored, result.model
    assert not stored.transforms and not back.transforms
    for name, w in stored.params.items():
        np.testing.assert_array_equal(_bits(back.params[name]), _bits(w + w.dtype.type(0)))
    # re-writing the model read back gives the same bytes: the round trip is exact
    again = result.path + ".again"
    save_compressed(again, back, index_bits=result.index_bits,
                    metadata=read_header(result.path)["metadata"])
    with open(result.path, "rb") as f1, open(again, "rb") as f2:
        assert f1.read() == f2.read()
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), stored.forward(x))


def test_stages_sparsities_codebooks_and_accuracies(result, data):
    acc = result.accuracy
    assert set(acc) == {"dense", "pruned", "shared", "finetuned", "file"}
    assert acc["file"] == acc["finetuned"]  # the file is exact
    assert min(acc.values()) > 0.7
    assert result.sparsity == pytest.approx({"fc1.weight": 0.92, "fc2.weight": 0.92,
                                             "fc3.weight": 0.75}, abs=1e-3)
    for name, w in result.stored.params.items():
        if w.ndim == 2:
            values = np.unique(w[w != 0])
            assert values.size == result.codebook_sizes[name] <= 31  # 5 bits, one code for 0
    header = read_header(result.path)
    for t in header["tensors"]:
        if t["encoding"] == "csr":
            assert t["values"] == "codebook" and t["weight_bits"] == 5  # fillers fit too
    assert header["metadata"]["note"] == "test"
    assert header["metadata"]["deep_compression"]["index_bits"] == result.index_bits
    # --index-bits auto: each weight's width is the one that makes its part smallest
    for name, b in result.index_bits.items():
        assert b == best_index_bits(result.stored.params[name])
    st = result.storage
    assert st["file"]["bytes"] == result.file_bytes
    assert st["total"]["huffman"]["total_bytes"] < result.file_bytes  # + header
    assert result.ratio == st["total"]["dense_bytes"] / result.file_bytes > 25
    text = format_result(result)
    assert "read back from the file" in text and "+Huffman" in text and "file:" in text
    d = result.to_dict()
    assert d["accuracy"] == acc and d["file_bytes"] == result.file_bytes


def test_han_sparsities_by_kind_of_layer():
    assert han_sparsities(lenet_300_100()) == {"fc1.weight": 0.92, "fc2.weight": 0.92,
                                               "fc3.weight": 0.75}
    assert han_sparsities(lenet5()) == {"conv1.weight": 0.34, "conv2.weight": 0.88,
                                        "fc1.weight": 0.92, "fc2.weight": 0.75}
    assert han_sparsities(lecture_net())["conv1.weight"] == HAN_SPARSITY["first_conv"]


def test_deep_compress_bad_inputs(data, tmp_path):
    model = lenet_300_100(seed=0)
    path = tmp_path / "m.tpz"
    with pytest.raises(TypeError, match="data"):
        deep_compress(model, {"x_train": data.x_train}, path)
    with pytest.raises(ValueError, match="sparsity"):
        deep_compress(model, data, path, sparsity={"conv9.weight": 0.5})
    with pytest.raises(ValueError, match="sparsity"):
        deep_compress(model, data, path, sparsity={"fc1.bias": 0.5})
    with pytest.raises(ValueError, match="prune_rounds"):
        deep_compress(model, data, path, prune_rounds=0)
    with pytest.raises(ValueError, match="lr"):
        deep_compress(model, data, path, lr=0.0)
    with pytest.raises(TypeError, match="index_bits"):
        deep_compress(model, data, path, index_bits="best")
    with pytest.raises(TypeError, match="share_bits"):
        deep_compress(model, data, path, share_bits=(8, 5, 3))
    with pytest.raises(ValueError, match="directory"):
        deep_compress(model, data, tmp_path)
    shared = share_weights(model, 4)
    with pytest.raises(ValueError, match="transforms"):
        deep_compress(shared, data, path)
    assert not path.exists()


# ------------------------------------------------------------------- reserve_zero (fillers)
def _pruned_fc(seed=0, density=0.04):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, (100, 784)).astype(np.float32)  # uniform: no cluster ends up empty
    w[rng.random(w.shape) > density] = 0  # long gaps: fillers at 5-bit relative indices
    return w


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_reserve_zero_keeps_a_code_for_the_filler_zeros(bits):
    w = _pruned_fc()
    book, idx = cluster_weights(w, bits, reserve_zero=True)
    assert book.size == 2 ** bits - 1 and not (book == 0).any()
    shared = np.where(idx >= 0, book[np.maximum(idx, 0)], 0).astype(np.float32)
    r = storage_stages(shared, 5)
    assert r["fillers"] > 0 and r["codebook_size"] == 2 ** bits  # the centroids and the zero
    assert r["weight_bits"] == bits
    book, idx = cluster_weights(w, bits)  # without: 2^bits centroids + the zero -> one more bit
    shared = np.where(idx >= 0, book[np.maximum(idx, 0)], 0).astype(np.float32)
    assert storage_stages(shared, 5)["weight_bits"] == bits + 1
    with pytest.raises(TypeError, match="reserve_zero"):
        cluster_weights(w, bits, reserve_zero="yes")


def test_share_weights_reserve_zero_fits_the_file_bits(tmp_path):
    model = lenet_300_100(seed=0)
    keep = np.random.default_rng(1).random((300, 784)) < 0.04
    model.set_param("fc1.weight", np.where(keep, model.params["fc1.weight"], 0).astype(np.float32))
    shared = share_weights(model, {"fc1": 5}, reserve_zero=True)
    info = save_compressed(tmp_path / "m.tpz", bake_transforms(shared))
    fc1 = info["tensors"]["fc1.weight"]
    assert fc1["values"] == "codebook" and fc1["weight_bits"] == 5 and fc1["codebook_size"] == 32


# --------------------------------------------------------------- baking, the file's refusal
def test_bake_transforms_gives_the_effective_weights_and_keeps_the_model():
    model = lenet_300_100(seed=0)
    model.set_transform("fc1.weight", FakeQuantize(bits=4))
    shared = share_weights(model, {"fc2": 3}, layers=["fc2"])
    shared.masks["fc3.weight"] = np.ones((10, 100), bool)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    baked = bake_transforms(shared)
    assert not baked.transforms and sorted(shared.transforms) == ["fc1.weight", "fc2.weight"]
    np.testing.assert_array_equal(baked.forward(x), shared.forward(x))
    w_eff = shared["fc1"].effective_param("weight")
    np.testing.assert_array_equal(baked.params["fc1.weight"], w_eff)
    assert not np.array_equal(shared.params["fc1.weight"], w_eff)  # the float shadow weight
    assert np.unique(baked.params["fc1.weight"][0]).size <= 16  # 4-bit grid
    assert set(baked.masks) == {"fc3.weight"}
    with pytest.raises(TypeError, match="model"):
        bake_transforms({"fc1.weight": w_eff})


def test_save_compressed_refuses_weight_transforms(tmp_path):
    model = lenet_300_100(seed=0)
    model.set_transform("fc1.weight", FakeQuantize(bits=8))
    path = tmp_path / "m.tpz"
    with pytest.raises(ValueError, match="bake_transforms"):
        save_compressed(path, model)
    assert not path.exists()
    save_compressed(path, bake_transforms(model))
    np.testing.assert_array_equal(load_compressed(path).params["fc1.weight"],
                                  model["fc1"].effective_param("weight"))


def test_centroid_fine_tuning_defaults_to_centroid_lr(data, tmp_path, monkeypatch):
    import tinyprune.pipeline as pipeline

    seen = []

    def spy(model, scale=1.0):
        seen.append(pipeline_centroid_lr(model, scale))
        return seen[-1]

    pipeline_centroid_lr = pipeline.centroid_lr
    monkeypatch.setattr(pipeline, "centroid_lr", spy)
    small = SimpleNamespace(x_train=data.x_train[:256], y_train=data.y_train[:256],
                            x_test=data.x_test[:200], y_test=data.y_test[:200])
    path = tmp_path / "m.tpz"
    deep_compress(lenet_300_100(seed=0), small, path, prune_rounds=1, share_epochs=1)
    assert len(seen) == 1 and 0 < seen[0] < 1e-3  # 1 / (kept weights per centroid of fc1)
    assert read_header(path)["metadata"]["deep_compression"]["share_lr"] == seen[0]
    deep_compress(lenet_300_100(seed=0), small, path, prune_rounds=1, share_epochs=1,
                  share_lr=5e-4)
    assert len(seen) == 1  # an explicit rate is used as given
    assert read_header(path)["metadata"]["deep_compression"]["share_lr"] == 5e-4
