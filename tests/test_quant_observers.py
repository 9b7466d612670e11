"""Observers: min-max, EMA min-max and percentile ranges, calibrated batch by batch; torch's
observers as the oracle; freeze, spec round trip, bad input."""

import numpy as np
import pytest

from tinyprune.quantize.affine import fake_quantize, qparams_from_range
from tinyprune.quantize.observers import (
    EMAMinMaxObserver,
    MinMaxObserver,
    PercentileObserver,
    make_observer,
    observer_from_spec,
)


def _batches(seed=0, n=6, shape=(32, 10)):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.normal()).astype(np.float32)
            for _ in range(n)]


def test_minmax_is_the_running_min_and_max():
    obs = MinMaxObserver()
    batches = _batches()
    for xb in batches:
        obs.update(xb)
    allx = np.concatenate(batches)
    assert obs.min_val == allx.min() and obs.max_val == allx.max()
    s, z = obs.qparams()
    s2, z2 = qparams_from_range(allx.min(), allx.max(), signed=False)
    assert s == s2 and z == z2


def test_ema_by_hand():
    obs = EMAMinMaxObserver(averaging_constant=0.5)
    obs.update(np.array([-1.0, 2.0], np.float32))
    obs.update(np.array([-3.0, 4.0], np.float32))
    assert obs.min_val == -2.0 and obs.max_val == 3.0  # -1 + 0.5 (-3 + 1), 2 + 0.5 (4 - 2)


def test_per_channel_minmax_along_axis_0():
    w = np.arange(24, dtype=np.float32).reshape(3, 2, 4) - 10
    obs = MinMaxObserver(per_channel=True, signed=True, symmetric=True)
    obs.update(w)
    np.testing.assert_array_equal(obs.min_val, [-10, -2, 6])
    np.testing.assert_array_equal(obs.max_val, [-3, 5, 13])
    assert obs.qparams()[0].shape == (3,)


def test_percentile_ignores_an_outlier_and_gives_a_smaller_error_on_the_bulk():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20000).astype(np.float32)
    x[123] = 1000.0  # one outlier
    mm, pc = MinMaxObserver(signed=True), PercentileObserver(percentile=99.9, signed=True)
    mm.update(x)
    pc.update(x)
    np.testing.assert_allclose(pc.max_val, np.percentile(x, 99.9), rtol=1e-6)
    np.testing.assert_allclose(pc.min_val, np.percentile(x, 0.1), rtol=1e-6)
    bulk = np.abs(x) < 3
    err = {name: np.mean((fake_quantize(x, *o.qparams(), signed=True) - x)[bulk] ** 2)
           for name, o in (("minmax", mm), ("percentile", pc))}
    assert err["percentile"] < err["minmax"] / 100


def test_percentile_averages_the_batches():
    obs = PercentileObserver(percentile=100.0)
    b1 = np.array([0.0, 1.0, 2.0], np.float32)
    b2 = np.array([-2.0, 5.0], np.float32)
    b3 = np.array([-4.0, 3.0], np.float32)
    for b in (b1, b2, b3):
        obs.update(b)
    assert obs.n_batches == 3
    assert obs.min_val == np.float32(-2.0) and obs.max_val == np.float32(10.0 / 3.0)


@pytest.mark.parametrize("kind", ["minmax", "ema", "percentile"])
def test_freeze_stops_updates_and_spec_round_trips(kind):
    obs = make_observer(kind, bits=4, signed=True, symmetric=True)
    assert not obs.calibrated
    with pytest.raises(RuntimeError, match="calibration"):
        obs.qparams()
    for xb in _batches(1, n=3):
        obs.update(xb)
    obs.freeze()
    before = obs.qparams()
    obs.update(np.full(4, 1e6, np.float32))
    after = obs.qparams()
    assert before[0] == after[0] and before[1] == after[1]
    clone = observer_from_spec(obs.spec())
    assert type(clone) is type(obs) and clone.spec() == obs.spec()
    assert clone.qparams()[0] == before[0] and clone.frozen
    obs.reset()
    assert not obs.calibrated and not obs.frozen


@pytest.mark.parametrize("call, err, match", [
    (lambda: make_observer("histogram"), ValueError, "observer"),
    (lambda: MinMaxObserver(bits=12), ValueError, "bits"),
    (lambda: MinMaxObserver(symmetric="no"), TypeError, "symmetric"),
    (lambda: MinMaxObserver(min_val=0.0), ValueError, "both"),
    (lambda: MinMaxObserver(min_val=1.0, max_val=0.0), ValueError, "min_val <= max_val"),
    (lambda: EMAMinMaxObserver(averaging_constant=0.0), ValueError, "averaging_constant"),
    (lambda: EMAMinMaxObserver(averaging_constant=1.5), ValueError, "averaging_constant"),
    (lambda: PercentileObserver(percentile=40), ValueError, "percentile"),
    (lambda: PercentileObserver(percentile=101), ValueError, "percentile"),
    (lambda: MinMaxObserver().update(np.array([np.nan], np.float32)), ValueError, "finite"),
    (lambda: MinMaxObserver().update(np.array([np.inf], np.float32)), ValueError, "finite"),
    (lambda: MinMaxObserver().update(np.array([1, 2])), TypeError, "x"),
    (lambda: MinMaxObserver().update(np.zeros(0, np.float32)), ValueError, "non-empty"),
    (lambda: observer_from_spec({"bits": 8}), ValueError, "kind"),
    (lambda: observer_from_spec({"kind": "minmax", "colour": 1}), ValueError, "bad arguments"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_per_channel_update_checks_the_channel_count():
    obs = MinMaxObserver(per_channel=True)
    obs.update(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="channels"):
        obs.update(np.zeros((4, 2), np.float32))


# ------------------------------------------------------------------------------- torch oracle
torch = pytest.importorskip("torch")
from torch.ao.quantization import observer as tobs  # noqa: E402


def _same(ours, theirs):
    s, z = ours.qparams()
    ts, tz = theirs.calculate_qparams()
    np.testing.assert_array_equal(np.atleast_1d(s), ts.numpy().astype(np.float32))
    np.testing.assert_array_equal(np.atleast_1d(z), tz.numpy())
    np.testing.assert_array_equal(np.atleast_1d(ours.min_val), np.atleast_1d(theirs.min_val.numpy()))
    np.testing.assert_array_equal(np.atleast_1d(ours.max_val), np.atleast_1d(theirs.max_val.numpy()))


@pytest.mark.parametrize("signed, symmetric", [(False, False), (True, False), (True, True),
                                               (False, True)])
def test_minmax_observer_equals_torch_over_calibration_batches(signed, symmetric):
    qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    theirs = tobs.MinMaxObserver(dtype=torch.qint8 if signed else torch.quint8, qscheme=qscheme)
    ours = MinMaxObserver(signed=signed, symmetric=symmetric)
    for xb in _batches(2):
        theirs(torch.from_numpy(xb))
        ours.update(xb)
    _same(ours, theirs)


@pytest.mark.parametrize("c", [0.01, 0.1, 0.37])
@pytest.mark.parametrize("signed", [False, True])
def test_ema_observer_equals_torch_moving_average(c, signed):
    theirs = tobs.MovingAverageMinMaxObserver(averaging_constant=c,
                                              dtype=torch.qint8 if signed else torch.quint8)
    ours = EMAMinMaxObserver(averaging_constant=c, signed=signed)
    for xb in _batches(3, n=20):
        theirs(torch.from_numpy(xb))
        ours.update(xb)
    _same(ours, theirs)


@pytest.mark.parametrize("symmetric", [False, True])
def test_per_channel_observer_equals_torch(symmetric):
    qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    theirs = tobs.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=qscheme)
    ours = MinMaxObserver(per_channel=True, signed=True, symmetric=symmetric)
    for xb in _batches(4, n=3, shape=(8, 3, 5)):
        theirs(torch.from_numpy(xb))
        ours.update(xb)
    _same(ours, theirs)
