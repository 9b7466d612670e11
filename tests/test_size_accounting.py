"""N:M metadata bits (tinyprune.size.nm_bits), the entropy bound and the stage-by-stage
accounting (tinyprune.size.accounting), checked against the encoders' real outputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.size import (
    best_index_bits,
    codebook_encode,
    csr_encode,
    entropy_bits,
    huffman_encode,
    nm_decode_positions,
    nm_encode_positions,
    nm_encode_positions_naive,
    nm_storage_bits,
    storage_stages,
)

SETTINGS = settings(max_examples=150, deadline=None)


# ------------------------------------------------------------------------------ N:M metadata
def test_two_four_bits_on_the_lecture_fc1():
    info = nm_storage_bits((128, 9216), n_pruned=2, m=4)
    kept = 128 * 9216 // 2
    assert info["kept"] == kept and info["position_bits"] == 2
    assert info["value_bits"] == 32 * kept and info["metadata_bits"] == 2 * kept
    assert info["total_bits"] == 34 * kept and info["dense_bits"] == 32 * 128 * 9216
    assert info["nbytes"] == 4 * kept + kept // 4
    half = nm_storage_bits((128, 9216), 2, 4, value_bits=16)  # float16, tensor-core layout
    assert half["total_bits"] == 18 * kept


def test_partial_groups_and_conv_shapes():
    info = nm_storage_bits((3, 2, 3, 3), n_pruned=1, m=4)  # rows of 18 -> 5 groups, 3 kept
    assert info["kept"] == 3 * 5 * 3 and info["position_bits"] == 2
    assert nm_storage_bits((4, 8), 0, 1)["metadata_bits"] == 0  # m = 1: nothing to say
    assert nm_storage_bits((4, 16), 3, 8)["position_bits"] == 3


@st.composite
def nm_mask_case(draw):
    m = draw(st.integers(1, 9))
    n_pruned = draw(st.integers(0, m - 1))
    k = m - n_pruned
    shape = draw(st.sampled_from([(3, 8), (2, 13), (2, 3, 2, 2), (11,)]))
    rows, length = (1, shape[0]) if len(shape) == 1 else (shape[0], int(np.prod(shape[1:])))
    groups = -(-length // m)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    exact = draw(st.booleans())
    scores = rng.random((rows, groups, m))
    order = np.argsort(-scores, axis=-1)[..., :k if exact else rng.integers(0, k + 1)]
    grouped = np.zeros((rows, groups, m), dtype=bool)
    np.put_along_axis(grouped, order, True, axis=-1)
    mask = grouped.reshape(rows, groups * m)[:, :length].reshape(shape)
    return mask, n_pruned, m


@SETTINGS
@given(c=nm_mask_case())
def test_positions_round_trip_and_loop_twin(c):
    mask, n_pruned, m = c
    data = nm_encode_positions(mask, n_pruned, m)
    np.testing.assert_array_equal(data, nm_encode_positions_naive(mask, n_pruned, m))
    info = nm_storage_bits(mask.shape, n_pruned, m)
    assert data.size == -(-info["metadata_bits"] // 8)
    stored = nm_decode_positions(data, mask.shape, n_pruned, m)
    assert stored.shape == mask.shape and np.all(stored[mask])  # every kept entry is stored
    again = nm_encode_positions(stored, n_pruned, m)
    np.testing.assert_array_equal(again, data)  # the stored-slot mask encodes the same way


def test_exact_two_four_mask_round_trip():
    mask = np.array([[1, 0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 1, 1, 1, 0, 0]], dtype=bool)
    data = nm_encode_positions(mask, 2, 4)
    # positions 0,2 | 1,2 | 2,3 | 0,1 at 2 bits: 00 10 01 10 | 10 11 00 01
    assert data.tolist() == [0b00100110, 0b10110001]
    np.testing.assert_array_equal(nm_decode_positions(data, mask.shape, 2, 4), mask)


def test_nm_bad_inputs():
    mask = np.ones((2, 8), dtype=bool)
    with pytest.raises(ValueError, match=r"mask: row 0, group 0 keeps 4 entries, at most"):
        nm_encode_positions(mask, 2, 4)
    with pytest.raises(ValueError, match="n_pruned"):
        nm_storage_bits((2, 8), 4, 4)
    with pytest.raises(TypeError, match="mask"):
        nm_encode_positions(mask.astype(np.float32), 2, 4)
    with pytest.raises(ValueError, match="positions must increase"):
        nm_decode_positions(np.zeros(2, np.uint8), (2, 4), 2, 4)
    with pytest.raises(ValueError, match="data"):
        nm_decode_positions(np.zeros(1, np.uint8), (2, 8), 2, 4)


# ------------------------------------------------------------------------------ entropy
def test_entropy_values():
    assert entropy_bits(np.array([0, 1, 2, 3])) == 2.0
    assert math.isclose(entropy_bits(np.array([0, 0, 0, 1])),
                        -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    with pytest.raises(TypeError, match="symbols"):
        entropy_bits(np.array([0.5]))


# ------------------------------------------------------------------------------ accounting
@st.composite
def pruned_shared(draw):
    shape = draw(st.sampled_from([(6, 40), (4, 3, 3, 3), (1, 200), (5, 1)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = draw(st.integers(1, 16))
    centroids = rng.standard_normal(k).astype(np.float32)
    w = centroids[rng.integers(0, k, size=shape)]
    w[rng.random(shape) < draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))] = 0
    return w, draw(st.integers(1, 8))


@SETTINGS
@given(c=pruned_shared())
def test_stage_bytes_equal_the_real_encoders(c):
    w, b = c
    r = storage_stages(w, b)
    csr = csr_encode(w, b)
    assert r["dense_bytes"] == 4 * w.size
    assert r["n_stored"] == csr.n_stored and r["nonzeros"] == np.count_nonzero(w)
    assert r["csr"]["total_bytes"] == csr.nbytes  # float32 values
    book = codebook_encode(csr.values + np.float32(0))
    sh = r["shared"]
    hr = huffman_encode(csr.rel)
    hu = r["huffman"]
    assert hu["index_bytes"] == hr.data.size and hu["index_table_bytes"] == hr.code.table_nbytes
    e = r["entropy"]
    assert e["index_bound_bytes"] <= hu["index_bytes"] + 1e-9
    assert r["ratio"]["csr"] == r["dense_bytes"] / r["csr"]["total_bytes"]
    # the codebook is used exactly when it is smaller than the float32 values (the file's rule)
    assert sh["applied"] == (book.nbytes < csr.values_nbytes)
    if not sh["applied"]:  # honest: no shared stage, Huffman codes the relative indices only
        assert sh["total_bytes"] == r["csr"]["total_bytes"] and r["codebook_size"] is None
        assert hu["total_bytes"] == csr.values_nbytes + hr.nbytes + csr.row_ptr_nbytes
        return
    assert sh["codebook_bytes"] + sh["weight_index_bytes"] == book.nbytes
    assert sh["total_bytes"] == book.nbytes + csr.index_nbytes + csr.row_ptr_nbytes
    hw = huffman_encode(book.indices.astype(np.int64))
    assert hu["weight_index_bytes"] == hw.data.size and hu["weight_table_bytes"] == hw.code.table_nbytes
    assert hu["total_bytes"] == (book.codebook_nbytes + hw.nbytes + hr.nbytes
                                 + csr.row_ptr_nbytes)
    assert e["weight_index_bound_bytes"] <= hu["weight_index_bytes"] + 1e-9
    assert r["entropy_bound_bytes"] <= hu["total_bytes"]


def test_stages_shrink_for_a_pruned_shared_layer_and_fillers_take_a_codebook_entry():
    rng = np.random.default_rng(0)
    centroids = np.linspace(-1, 1, 16).astype(np.float32)  # 16 shared values, none is 0
    w = centroids[rng.integers(0, 16, size=(300, 784))]
    w[rng.random(w.shape) < 0.92] = 0
    r = storage_stages(w, 4)
    assert r["fillers"] > 0 and r["codebook_size"] == 17 and r["weight_bits"] == 5
    sizes = [r["dense_bytes"]] + [r[s]["total_bytes"] for s in ("csr", "shared", "huffman")]
    assert sizes == sorted(sizes, reverse=True)
    assert r["ratio"]["huffman"] > 20


def test_unshared_weight_has_an_honest_shared_stage():
    w = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
    w[:, ::3] = 0  # pruned but not shared: 60,000 distinct values
    r = storage_stages(w, 4)
    assert r["shared"]["applied"] is False and r["codebook_size"] is None
    assert r["shared"]["total_bytes"] == r["csr"]["total_bytes"]  # the stage does not apply
    assert r["ratio"]["shared"] == r["ratio"]["csr"]
    # Huffman codes only the relative indices (all 0 or 1 here): 4 -> ~1 bit per entry
    hu = r["huffman"]
    assert hu["values_bytes"] == r["csr"]["values_bytes"] == 4 * 60000
    assert hu["total_bytes"] < r["csr"]["total_bytes"]
    dense = np.random.default_rng(1).standard_normal((300, 300)).astype(np.float32)
    assert storage_stages(dense, 4)["csr"]["total_bytes"] > 4 * dense.size  # pure overhead


def test_best_index_bits_is_the_brute_force_minimum_of_the_file(tmp_path):
    from tinyprune.nn import lenet_300_100
    from tinyprune.size import save_compressed

    rng = np.random.default_rng(0)
    model = lenet_300_100(seed=0)
    centroids = np.linspace(-1, 1, 31).astype(np.float32)
    for name, density in (("fc1.weight", 0.05), ("fc2.weight", 0.3), ("fc3.weight", 0.9)):
        w = centroids[rng.integers(0, 31, size=model.params[name].shape)]
        w[rng.random(w.shape) > density] = 0
        model.set_param(name, w)
    for huffman in (True, False):
        for name in ("fc1.weight", "fc2.weight", "fc3.weight"):
            payload = {}
            for b in range(1, 17):  # brute force: write the file with every width
                info = save_compressed(tmp_path / "m.tpz", model, index_bits={name: b},
                                       huffman=huffman)
                payload[b] = sum(n for _, n in info["tensors"][name]["sections"])
            best = min(payload, key=lambda b: (payload[b], b))
            assert best_index_bits(model.params[name], huffman=huffman) == best, (name, huffman)
            sub = [2, 9, 13]
            assert best_index_bits(model.params[name], sub, huffman=huffman) == min(
                sub, key=lambda b: (payload[b], b))
    with pytest.raises(ValueError, match="candidates"):
        best_index_bits(model.params["fc1.weight"], [])
    with pytest.raises(ValueError, match="candidates"):
        best_index_bits(model.params["fc1.weight"], [0, 4])


def test_accounting_bad_inputs():
    w = np.zeros((2, 3), np.float32)
    w[0, 0] = 1.0
    w[1, 1] = 2.0
    w[1, 2] = 3.0
    with pytest.raises(ValueError, match="bits"):
        storage_stages(w, 4, weight_bits=1)  # 3 distinct stored values do not fit 1 bit
    with pytest.raises(ValueError, match="index_bits"):
        storage_stages(w, 0)
