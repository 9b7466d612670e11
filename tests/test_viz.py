"""tinyprune.viz draws what it is given: the tests check the drawn data (line and bar values,
image masks, threshold positions, labels), not pixels, and the input checks."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tinyprune.lowrank import RankSensitivity  # noqa: E402
from tinyprune.lowrank.svd import energy_curve, energy_rank  # noqa: E402
from tinyprune.nn import Conv2d, Flatten, Linear, ReLU, Sequential  # noqa: E402
from tinyprune.prune import LotteryResult, SensitivityResult, prune_weight  # noqa: E402
from tinyprune.size import model_storage_stages  # noqa: E402
from tinyprune.viz import (  # noqa: E402
    plot_accuracy_vs,
    plot_granularity,
    plot_lottery,
    plot_sensitivity,
    plot_spectrum,
    plot_storage_stages,
    plot_tradeoff,
    plot_weight_histogram,
    weight_image,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def conv_weight(seed=0, shape=(4, 3, 3, 3)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# --------------------------------------------------------------------------- module
def test_importing_viz_does_not_import_matplotlib():
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    out = subprocess.run([sys.executable, "-c", "import sys, tinyprune.viz, tinyprune.prune; "
                          "print('matplotlib' in sys.modules)"], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_function_returns_a_figure_and_draws_into_a_given_ax():
    from matplotlib.figure import Figure

    fig, ax = plt.subplots()
    assert plot_weight_histogram(conv_weight(), ax=ax) is fig
    assert ax.patches  # the histogram went into the given axes
    with pytest.raises(TypeError, match="ax"):
        plot_weight_histogram(conv_weight(), ax="left")
    assert isinstance(plot_spectrum([2.0, 1.0]), Figure)


# --------------------------------------------------------------------------- granularity
def test_weight_image_lays_out_kernels_in_a_grid():
    a = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    img = weight_image(a)
    assert img.shape == (4, 6)
    for o, i, h, w in np.ndindex(a.shape):
        assert img[o * 2 + h, i * 2 + w] == a[o, i, h, w]
    m = np.ones((3, 5))
    assert weight_image(m) is m
    with pytest.raises(ValueError, match="a: expected a 2-D"):
        weight_image(np.ones(3))


def test_granularity_panels_show_prune_weight_masks_of_a_conv_weight():
    w = conv_weight()
    before = w.copy()
    fig = plot_granularity(w, sparsity=0.5)
    np.testing.assert_array_equal(w, before)  # not modified
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 5
    expected = {g: prune_weight(w, 0.5, criterion="l1", granularity=g)
                for g in ("element", "vector", "kernel", "channel")}
    expected["nm"] = prune_weight(w, None, granularity="nm", n_pruned=2, m=4, allow_partial=True)
    for ax, (g, keep) in zip(panels, expected.items(), strict=True):
        arr = ax.get_images()[0].get_array()
        np.testing.assert_array_equal(np.ma.getmaskarray(arr), ~weight_image(keep))
        np.testing.assert_allclose(arr.data, weight_image(np.abs(w)))
        title = ax.get_title()
        assert title.split("\n")[0] == ("nm 2:4" if g == "nm" else g)
        assert f"sparsity {1 - keep.mean():.1%}" in title
    chan = np.ma.getmaskarray(panels[3].get_images()[0].get_array())
    assert chan.reshape(4, 3, 9).all(axis=(1, 2)).sum() == 2  # whole filters (rows of kernels)
    assert panels[0].get_ylabel() == "output channel"
    assert len(panels[0].collections) == 2  # kernel borders: horizontal and vertical


def test_granularity_of_a_linear_weight_skips_kernel_and_draws_into_given_axes():
    w = conv_weight(1, (6, 8))
    fig = plot_granularity(w, sparsity=0.25)
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_images()]
    assert titles == ["element", "vector", "channel", "nm 2:4"]
    fig2, axes = plt.subplots(1, 2)
    out = plot_granularity(w, granularities=("channel", "nm"), n_pruned=1, m=4, axes=axes)
    assert out is fig2
    nm_mask = np.ma.getmaskarray(axes[1].get_images()[0].get_array())
    assert (nm_mask.reshape(6, 2, 4).sum(axis=2) == 1).all()  # 1 of every 4 pruned
    assert "sparsity 25.0%" in axes[1].get_title()
    with pytest.raises(ValueError, match="axes"):
        plot_granularity(w, granularities=("channel", "nm", "element"), axes=axes)


def test_granularity_mask_only_view():
    w = conv_weight()
    fig = plot_granularity(w, granularities=("kernel",), magnitude=False)
    arr = fig.axes[0].get_images()[0].get_array()
    keep = prune_weight(w, 0.5, granularity="kernel")
    np.testing.assert_array_equal(np.ma.getmaskarray(arr), ~weight_image(keep))
    assert (arr.data == 1).all()  # one colour: preserved / pruned only
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["preserved", "pruned"]
    with pytest.raises(TypeError, match="magnitude"):
        plot_granularity(w, magnitude="no")


@pytest.mark.parametrize("kwargs, exc, needle", [
    ({"w": [[1.0, 2.0]]}, TypeError, "w"),
    ({"w": np.ones((2, 3, 4), np.float32)}, ValueError, "w"),
    ({"w": np.array([[1.0, np.nan]], np.float32)}, ValueError, "w"),
    ({"w": np.ones((2, 4), np.int64)}, TypeError, "w"),
    ({"sparsity": 1.5}, ValueError, "sparsity"),
    ({"sparsity": "half"}, TypeError, "sparsity"),
    ({"n_pruned": 4, "m": 4}, ValueError, "n_pruned"),
    ({"m": 0}, ValueError, "m"),
    ({"granularities": "element"}, TypeError, "granularities"),
    ({"granularities": ("element", "filter")}, ValueError, "granularities"),
    ({"w": np.ones((4, 4), np.float32), "granularities": ("kernel",)}, ValueError,
     "granularities"),
])
def test_granularity_bad_inputs(kwargs, exc, needle):
    kwargs = {"w": conv_weight(), **kwargs}
    with pytest.raises(exc, match=needle):
        plot_granularity(kwargs.pop("w"), **kwargs)


# --------------------------------------------------------------------------- histogram
def test_histogram_counts_nonzero_or_kept_weights_and_marks_threshold_grid_centroids():
    w = conv_weight(2, (40, 30))
    w[w.__abs__() < 0.3] = 0.0
    fig = plot_weight_histogram(w, threshold=0.3, grid=[-1.0, 0.0, 1.0], centroids=[-0.7, 0.6])
    ax = fig.axes[0]
    assert sum(p.get_height() for p in ax.patches) == np.count_nonzero(w)
    lines = ax.get_lines()
    assert [tuple(ln.get_xdata()) for ln in lines[:2]] == [(-0.3, -0.3), (0.3, 0.3)]
    by_label = {c.get_label(): c for c in ax.collections}
    grid_x = [seg[0][0] for seg in by_label["quantization grid"].get_segments()]
    cent_x = [seg[0][0] for seg in by_label["k-means centroids"].get_segments()]
    assert grid_x == [-1.0, 0.0, 1.0] and cent_x == [-0.7, 0.6]
    assert ax.get_xlabel() == "weight value" and ax.get_ylabel() == "count"
    assert ax.get_title() == f"{np.count_nonzero(w):,} nonzero weights of 1,200"
    mask = np.abs(w) > 1.0
    fig = plot_weight_histogram(w, mask=mask, bins=[-4.0, 0.0, 4.0])
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [np.sum(w[mask] < 0), np.sum(w[mask] >= 0)]
    assert "kept" in fig.axes[0].get_title() and not fig.axes[0].get_lines()


@pytest.mark.parametrize("kwargs, exc, needle", [
    ({"threshold": -0.1}, ValueError, "threshold"),
    ({"grid": [[0.0, 1.0]]}, ValueError, "grid"),
    ({"grid": "0,1"}, TypeError, "grid"),
    ({"centroids": [np.inf]}, ValueError, "centroids"),
    ({"mask": np.ones((3, 3), bool)}, ValueError, "mask"),
    ({"mask": np.ones((4, 3, 3, 3))}, TypeError, "mask"),
    ({"bins": 0}, ValueError, "bins"),
    ({"bins": [1.0, 0.0]}, ValueError, "bins"),
    ({"bins": True}, TypeError, "bins"),
])
def test_histogram_bad_inputs(kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        plot_weight_histogram(conv_weight(), **kwargs)


# --------------------------------------------------------------------------- sensitivity
def _scan():
    return SensitivityResult(["a.weight", "b.weight"], [0.0, 0.5, 0.9],
                             np.array([[0.9, 0.85, 0.5], [0.9, 0.9, 0.88]]), 0.9,
                             {"a.weight": 10, "b.weight": 90})


def test_sensitivity_curves_threshold_and_chosen_ratios():
    res = _scan().choose(0.5)
    for scan in (res, res.to_dict()):  # the result or its JSON form
        ax = plot_sensitivity(scan).axes[0]
        lines = ax.get_lines()
        assert [ln.get_label() for ln in lines] == ["a.weight", "b.weight",
                                                     f"T = {res.threshold:.3g}", "dense"]
        np.testing.assert_array_equal(lines[0].get_xdata(), [0.0, 0.5, 0.9])
        np.testing.assert_array_equal(lines[1].get_ydata(), [0.9, 0.9, 0.88])
        np.testing.assert_allclose(lines[2].get_ydata(), [0.9 - res.threshold] * 2)
        stars = np.vstack([c.get_offsets() for c in ax.collections])
        expected = [(r, res.accuracy[i, res.ratios.index(r)])
                    for i, r in enumerate(res.chosen.values())]
        np.testing.assert_allclose(stars, expected)
        assert ax.get_xlabel() == "pruning ratio r"
    ax = plot_sensitivity(_scan(), threshold=0.02).axes[0]  # T given, nothing chosen
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), [0.88, 0.88])
    assert not ax.collections
    ax = plot_sensitivity(_scan()).axes[0]
    assert [ln.get_label() for ln in ax.get_lines()][2:] == ["dense"]


def test_sensitivity_of_a_rank_scan():
    scan = RankSensitivity(["fc1.weight"], [2, 4, 8], np.array([[0.5, 0.8, np.nan]]), 0.9,
                           np.array([[100, 50, 0]]))
    for s in (scan, scan.to_dict()):
        ax = plot_sensitivity(s, threshold=0.1).axes[0]
        assert ax.get_xlabel() == "rank r"
        np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [0.5, 0.8, np.nan])
        assert "factorized" in ax.get_title()


def test_sensitivity_negative_threshold_is_drawn_above_the_baseline():
    # scan.choose() may return T < 0 when pruning a little raises validation accuracy
    fig = plot_sensitivity(_scan(), threshold=-0.01)
    line = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("T =")][0]
    np.testing.assert_allclose(line.get_ydata(), [_scan().baseline + 0.01] * 2)


@pytest.mark.parametrize("scan, kwargs, exc, needle", [
    ([1, 2], {}, TypeError, "scan"),
    ({"layers": []}, {}, ValueError, "scan"),
    ({"layers": ["a"], "ratios": [0, 0.5], "accuracy": [[0.9]], "baseline": 0.9}, {},
     ValueError, "scan.accuracy"),
    ({"layers": ["a"], "ratios": [0, 0.5], "accuracy": [[0.9, 0.8]], "baseline": "x"}, {},
     TypeError, "scan.baseline"),
    (None, {"threshold": float("nan")}, ValueError, "threshold"),
    ({"layers": ["a"], "ratios": [0, 0.5], "accuracy": [0.9, 0.8], "baseline": 0.9}, {},
     ValueError, "scan.accuracy"),  # not one row per layer
])
def test_sensitivity_bad_inputs(scan, kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        plot_sensitivity(_scan() if scan is None else scan, **kwargs)


# --------------------------------------------------------------------------- accuracy vs
def test_accuracy_curves_with_seed_bands_and_baseline():
    seeds = np.array([[0.8, 0.6, 0.3], [0.7, 0.4, 0.2]])
    fig = plot_accuracy_vs([0.5, 0.7, 0.9], {"l1": [0.9, 0.85, 0.7], "random": seeds},
                           xlabel="sparsity", baseline=0.91)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["l1", "random (mean ± std, 2 seeds)", "dense"]
    np.testing.assert_array_equal(lines[0].get_ydata(), [0.9, 0.85, 0.7])
    np.testing.assert_allclose(lines[1].get_ydata(), seeds.mean(axis=0))
    np.testing.assert_allclose(lines[2].get_ydata(), [0.91, 0.91])
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    lo, hi = seeds.mean(0) - seeds.std(0), seeds.mean(0) + seeds.std(0)
    assert np.isclose(ys.min(), lo.min()) and np.isclose(ys.max(), hi.max())
    assert ax.get_xlabel() == "sparsity" and ax.get_xscale() == "linear"


def test_accuracy_curves_from_arrays():
    acc = np.array([[0.9, 0.8], [0.85, 0.6]])
    ax = plot_accuracy_vs([2, 8], acc, xlabel="bits", labels=["kmeans", "linear"], logx=True,
                          title="quantization").axes[0]
    assert [ln.get_label() for ln in ax.get_lines()] == ["kmeans", "linear"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [0.85, 0.6])
    assert ax.get_xscale() == "log" and ax.get_title() == "quantization"
    ax = plot_accuracy_vs([1, 2], np.stack([acc, acc + 0.02]), xlabel="rank",
                          labels=["a", "b"]).axes[0]  # (curves, seeds, points)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), acc.mean(axis=0))
    assert len(ax.collections) == 2
    ax = plot_accuracy_vs([1, 2], [0.5, 0.6], xlabel="rank").axes[0]  # one unnamed curve
    assert ax.get_legend() is None and len(ax.get_lines()) == 1


@pytest.mark.parametrize("args, kwargs, exc, needle", [
    (([0.5, 0.9], [0.9, 0.8, 0.7]), {}, ValueError, "accuracies"),
    (([0.5, 0.9], {"a": [0.9, 0.8]}), {"labels": ["a"]}, ValueError, "labels"),
    (([0.5, 0.9], [[0.9, 0.8], [0.7, 0.6]]), {"labels": ["a"]}, ValueError, "labels"),
    (([0.5, 0.9], {}), {}, ValueError, "accuracies"),
    (([[0.5, 0.9]], [0.9, 0.8]), {}, ValueError, "x"),
    (([0.0, 0.9], [0.9, 0.8]), {"logx": True}, ValueError, "x"),
    (([0.5, 0.9], [0.9, 0.8]), {"logx": "yes"}, TypeError, "logx"),
    (([0.5, 0.9], [0.9, 0.8]), {"xlabel": 3}, TypeError, "xlabel"),
    (([0.5, 0.9], [0.9, 0.8]), {"baseline": "dense"}, TypeError, "baseline"),
    (([0.5, 0.9], "0.9"), {}, TypeError, "accuracies"),
])
def test_accuracy_vs_bad_inputs(args, kwargs, exc, needle):
    kwargs = {"xlabel": "sparsity", **kwargs}
    with pytest.raises(exc, match=needle):
        plot_accuracy_vs(*args, **kwargs)


# --------------------------------------------------------------------------- trade-off
def test_tradeoff_one_scatter_per_technique_and_annotations():
    pts = [{"label": "dense", "bytes": 1e6, "accuracy": 0.9, "technique": "none"},
           {"label": "90%", "bytes": 1.5e5, "accuracy": 0.89, "technique": "pruning"},
           {"label": "4 bits", "bytes": 1.3e5, "accuracy": 0.88, "technique": "quantization"},
           {"label": "95%", "bytes": 8e4, "accuracy": 0.86, "technique": "pruning"}]
    ax = plot_tradeoff(pts).axes[0]
    assert [c.get_label() for c in ax.collections] == ["none", "pruning", "quantization"]
    np.testing.assert_allclose(ax.collections[1].get_offsets(), [[1.5e5, 0.89], [8e4, 0.86]])
    assert [t.get_text() for t in ax.texts] == ["dense", "90%", "4 bits", "95%"]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "stored bytes"
    markers = {c.get_paths()[0].vertices.tobytes() for c in ax.collections}
    assert len(markers) == 3  # one marker shape per technique
    assert not ax.get_lines()
    ax = plot_tradeoff(pts, connect=True).axes[0]
    (line,) = ax.get_lines()  # only pruning has two points
    np.testing.assert_array_equal(line.get_xdata(), [8e4, 1.5e5])  # sorted by size
    np.testing.assert_array_equal(line.get_ydata(), [0.86, 0.89])
    ax = plot_tradeoff(pts[:1], logx=False, xlabel="kB", annotate=False).axes[0]
    assert ax.get_xscale() == "linear" and not ax.texts and ax.get_xlabel() == "kB"


@pytest.mark.parametrize("points, exc, needle", [
    ([], TypeError, "points"),
    ({"label": "a"}, TypeError, "points"),
    ([3], TypeError, "points\\[0\\]"),
    ([{"label": "a", "bytes": 10, "accuracy": 0.5}], ValueError, "technique"),
    ([{"label": "a", "bytes": 0, "accuracy": 0.5, "technique": "t"}], ValueError, "bytes"),
    ([{"label": "a", "bytes": 1, "accuracy": "high", "technique": "t"}], TypeError, "accuracy"),
])
def test_tradeoff_bad_inputs(points, exc, needle):
    with pytest.raises(exc, match=needle):
        plot_tradeoff(points)
    with pytest.raises(TypeError, match="connect"):
        plot_tradeoff([{"label": "a", "bytes": 1, "accuracy": 0.5, "technique": "t"}],
                      connect=1)


# --------------------------------------------------------------------------- spectrum
def test_spectrum_of_a_matrix_with_rank_and_energy_markers():
    w = conv_weight(3, (12, 8))
    fig = plot_spectrum(w, rank=3, energy=0.9)
    ax, twin = fig.axes
    s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    sig = ax.get_lines()[0]
    np.testing.assert_array_equal(sig.get_xdata(), np.arange(1, 9))
    np.testing.assert_allclose(sig.get_ydata(), s)
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "rank r"
    np.testing.assert_allclose(twin.get_lines()[0].get_ydata(), energy_curve(s))
    rank_line, energy_line = ax.get_lines()[1:]
    assert tuple(rank_line.get_xdata()) == (3, 3)
    assert tuple(energy_line.get_xdata()) == (energy_rank(s, 0.9),) * 2
    assert tuple(twin.get_lines()[-1].get_ydata()) == (0.9, 0.9)
    conv = conv_weight(4, (6, 2, 3, 3))
    ys = plot_spectrum(conv).axes[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(ys, np.linalg.svd(conv.reshape(6, 18).astype(np.float64),
                                                 compute_uv=False), rtol=1e-6)


@pytest.mark.parametrize("arg, kwargs, exc, needle", [
    ([1.0, 2.0], {}, ValueError, "w_or_singular_values"),  # increasing
    ([1.0, -0.5], {}, ValueError, "w_or_singular_values"),
    (np.ones((2, 2, 2)), {}, ValueError, "w_or_singular_values"),
    (np.ones((3, 3), np.int64), {}, TypeError, "w_or_singular_values"),
    ([2.0, 1.0], {"rank": 3}, ValueError, "rank"),
    ([2.0, 1.0], {"rank": 0}, ValueError, "rank"),
    ([2.0, 1.0], {"energy": 1.5}, ValueError, "energy"),
])
def test_spectrum_bad_inputs(arg, kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        plot_spectrum(arg, **kwargs)


# --------------------------------------------------------------------------- lottery
def test_lottery_ticket_vs_controls():
    rounds = [{"round": 0, "remaining": 1.0, "test_accuracy": 0.97},
              {"round": 1, "remaining": 0.8, "test_accuracy": 0.975,
               "reinit_test_accuracy": 0.965, "random_test_accuracy": 0.96},
              {"round": 2, "remaining": 0.64, "test_accuracy": 0.98,
               "reinit_test_accuracy": 0.95, "random_test_accuracy": 0.94}]
    for given in (LotteryResult(rounds=rounds), {"rounds": rounds}, rounds):
        ax = plot_lottery(given).axes[0]
        lines = ax.get_lines()
        assert [ln.get_label() for ln in lines] == ["winning ticket", "random re-init",
                                                     "random mask"]
        np.testing.assert_array_equal(lines[0].get_xdata(), [1.0, 0.8, 0.64])
        np.testing.assert_array_equal(lines[0].get_ydata(), [0.97, 0.975, 0.98])
        np.testing.assert_array_equal(lines[2].get_xdata(), [0.8, 0.64])
        np.testing.assert_array_equal(lines[2].get_ydata(), [0.96, 0.94])
        assert ax.get_xscale() == "log" and ax.xaxis_inverted()
        assert ax.get_xlabel() == "fraction of weights remaining"
    ax = plot_lottery(rounds[:1]).axes[0]  # no controls: only the ticket
    assert len(ax.get_lines()) == 1


@pytest.mark.parametrize("arg, exc, needle", [
    ([], TypeError, "rounds_result"),
    ("rounds", TypeError, "rounds_result"),
    ([{"remaining": 1.0}], ValueError, "test_accuracy"),
    ([{"remaining": 0.0, "test_accuracy": 0.9}], ValueError, "remaining"),
    ([{"remaining": 1.0, "test_accuracy": None}], TypeError, "round 0 test_accuracy"),
])
def test_lottery_bad_inputs(arg, exc, needle):
    with pytest.raises(exc, match=needle):
        plot_lottery(arg)


# --------------------------------------------------------------------------- storage
def _shared_pruned_model():
    rng = np.random.default_rng(0)
    model = Sequential([("flatten", Flatten()), ("fc1", Linear(16, 300, rng=1)),
                        ("relu1", ReLU()), ("fc2", Linear(300, 240, rng=2))])
    book = np.array([-0.3, -0.1, 0.1, 0.3], np.float32)
    w = book[rng.integers(0, 4, size=(300, 16))]
    w[rng.random(w.shape) < 0.8] = 0.0  # 80% pruned, 4 shared values
    model.params["fc1.weight"][...] = w  # fc2: dense, 72,000 distinct values (not shared)
    return model


def test_storage_stage_bars_and_entropy_bound():
    model = _shared_pruned_model()
    st = model_storage_stages(model, index_bits=5)
    ax = plot_storage_stages(st).axes[0]
    bars = {c.get_label(): list(c.datavalues) for c in ax.containers}
    layer, total = st["layers"]["fc1.weight"], st["total"]
    fc2 = st["layers"]["fc2.weight"]
    assert bars["dense float32"] == [layer["dense_bytes"], fc2["dense_bytes"],
                                     total["dense_bytes"]]
    assert bars["pruned (CSR)"] == [layer["csr"]["total_bytes"], fc2["csr"]["total_bytes"],
                                    total["csr"]["total_bytes"]]
    assert fc2["shared"]["applied"] is False  # not shared: the stage keeps the CSR bytes
    assert bars["+ shared weights"] == [layer["shared"]["total_bytes"],
                                        fc2["csr"]["total_bytes"], total["shared"]["total_bytes"]]
    assert bars["+ Huffman"] == [layer["huffman"]["total_bytes"], fc2["huffman"]["total_bytes"],
                                 total["huffman"]["total_bytes"]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fc1", "fc2", "total"]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "bytes"
    (bound,) = [c for c in ax.collections if c.get_label() == "entropy bound"]
    assert [seg[0][1] for seg in bound.get_segments()] == pytest.approx(
        [layer["entropy_bound_bytes"], fc2["entropy_bound_bytes"], total["entropy_bound_bytes"]])
    assert any(t.get_text().endswith("x") for t in ax.texts)  # compression ratio written


def test_storage_stage_bars_of_a_fully_shared_model_include_the_total():
    model = _shared_pruned_model()
    model.params["fc2.weight"][...] = np.where(model.params["fc2.weight"] > 0, 0.2, -0.2)
    st = model_storage_stages(model)
    st["total"]["entropy_bound_bytes"] = 123.0  # as tinyprune report --storage --json gives it
    ax = plot_storage_stages(st, logy=False).axes[0]
    bars = {c.get_label(): list(c.datavalues) for c in ax.containers}
    assert bars["+ Huffman"][-1] == st["total"]["huffman"]["total_bytes"]
    (bound,) = [c for c in ax.collections if c.get_label() == "entropy bound"]
    assert bound.get_segments()[-1][0][1] == 123.0 and len(bound.get_segments()) == 3
    assert ax.get_yscale() == "linear"


@pytest.mark.parametrize("arg, kwargs, exc, needle", [
    ([1, 2], {}, TypeError, "stages"),
    ({"layers": {}}, {}, ValueError, "stages"),
    ({"layers": {"fc.weight": {"csr": None}}, "total": {"dense_bytes": 4}}, {}, ValueError,
     "stages"),
    (None, {"logy": "yes"}, TypeError, "logy"),
])
def test_storage_bad_inputs(arg, kwargs, exc, needle):
    if arg is None:
        arg = model_storage_stages(Sequential([("fc", Linear(4, 2, rng=0))]))
    with pytest.raises(exc, match=needle):
        plot_storage_stages(arg, **kwargs)


def test_conv_model_storage_figure():
    model = Sequential([("conv1", Conv2d(1, 2, 3, rng=0)), ("flatten", Flatten()),
                        ("fc1", Linear(2 * 4 * 4, 3, rng=1))], input_shape=(1, 6, 6))
    ax = plot_storage_stages(model_storage_stages(model)).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1", "fc1", "total"]


def test_docstring_examples_run():
    import doctest

    from tinyprune.viz import curves, pruning, spectrum, storage

    for mod in (curves, pruning, spectrum, storage):
        result = doctest.testmod(mod, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, mod.__name__
