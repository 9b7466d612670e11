"""Knowledge distillation: the loss (gradient check, torch reference, invariants, stability, bad
input), the fit hook (precomputed or per-batch teacher logits) and distill() for dense, pruned,
quantized and factorized students."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from round_transform import RoundToGrid

from tinyprune.distill import (
    DistillationLoss,
    compute_teacher_logits,
    distill,
    distillation_loss_backward,
    distillation_loss_forward,
    softmax_with_temperature,
)
from tinyprune.nn import Flatten, Linear, ReLU, Sequential
from tinyprune.nn.gradcheck import check_function_gradient
from tinyprune.nn.losses import Batch, cross_entropy, softmax
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import fit, predict


def _logits(rng, n, c, scale=1.0, dtype=np.float64):
    return (scale * rng.standard_normal((n, c))).astype(dtype)


def _kd(zs, zt, y, t, a):
    return distillation_loss_forward(zs, zt, y, temperature=t, alpha=a)


# ------------------------------------------------------------------------------------ the loss


@pytest.mark.parametrize("t, a", [(1.0, 1.0), (4.0, 0.9), (0.5, 0.3), (20.0, 0.5), (2.0, 0.0)])
def test_gradient_matches_centered_differences(t, a):
    rng = np.random.default_rng(0)
    zs, zt = _logits(rng, 6, 5), _logits(rng, 6, 5)
    y = rng.integers(0, 5, 6)
    errors = check_function_gradient(
        lambda z: _kd(z, zt, y, t, a), lambda dout, cache: dout * distillation_loss_backward(cache),
        [zs], eps=1e-5)
    assert errors[0] < 1e-6, errors


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
@pytest.mark.parametrize("t, a", [(1.0, 1.0), (4.0, 0.9), (0.5, 0.3), (20.0, 0.5), (3.0, 0.0)])
def test_value_and_gradient_equal_torch(scale, t, a):
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    rng = np.random.default_rng(1)
    zs, zt = _logits(rng, 8, 10, scale), _logits(rng, 8, 10, scale)
    y = rng.integers(0, 10, 8)
    value, cache = _kd(zs, zt, y, t, a)
    grad = distillation_loss_backward(cache)

    zs_t = torch.tensor(zs, requires_grad=True)
    ref = (a * fn.kl_div(fn.log_softmax(zs_t / t, dim=1), fn.softmax(torch.tensor(zt) / t, dim=1),
                         reduction="batchmean") * t ** 2
           + (1 - a) * fn.cross_entropy(zs_t, torch.tensor(y)))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad, zs_t.grad.numpy(), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("t", [0.05, 1.0, 20.0])
def test_stable_for_huge_logits_and_temperatures(dtype, t):
    rng = np.random.default_rng(2)
    zs = np.sign(_logits(rng, 5, 4)).astype(dtype) * dtype(1e4)
    zt = -zs  # every teacher probability the student gives ~0 and vice versa
    y = rng.integers(0, 4, 5)
    value, cache = _kd(zs, zt, y, t, 0.7)
    grad = distillation_loss_backward(cache)
    assert np.isfinite(value) and value > 0
    assert grad.dtype == dtype and np.isfinite(grad).all()
    ref_value, ref_cache = _kd(zs.astype(np.float64), zt.astype(np.float64), y, t, 0.7)
    assert value == pytest.approx(ref_value, rel=1e-5)
    np.testing.assert_allclose(grad, distillation_loss_backward(ref_cache), rtol=1e-5, atol=1e-7)


@st.composite
def _case(draw):
    n, c = draw(st.integers(1, 6)), draw(st.integers(2, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0, 1e3]))
    t = draw(st.sampled_from([0.5, 1.0, 2.0, 4.0, 20.0]))
    a = draw(st.sampled_from([0.0, 0.25, 0.9, 1.0]))
    return _logits(rng, n, c, scale), _logits(rng, n, c, scale), rng.integers(0, c, n), t, a


@settings(max_examples=150, deadline=None)
@given(case=_case())
def test_loss_is_non_negative_and_gradient_rows_sum_to_zero(case):
    zs, zt, y, t, a = case
    value, cache = _kd(zs, zt, y, t, a)
    assert value >= 0.0
    grad = distillation_loss_backward(cache)
    bound = 1e-15 * zs.shape[1] * (a * t + 1) / zs.shape[0] * 4
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=bound)


@settings(max_examples=100, deadline=None)
@given(case=_case(), shift=st.floats(-50, 50))
def test_loss_is_zero_iff_the_distributions_match_and_alpha_is_one(case, shift):
    zs, zt, y, t, a = case
    assert _kd(zs, zs, y, t, 1.0)[0] == 0.0
    assert _kd(zs, zs + shift, y, t, 1.0)[0] <= 1e-9  # same softmax (row shift), rounding only
    p, q = softmax_with_temperature(zs, t), softmax_with_temperature(zt, t)
    if np.abs(p - q).max() > 1e-3:  # different distributions: a positive divergence
        assert _kd(zs, zt, y, t, 1.0)[0] > 0.0
    if a < 1.0 and np.abs(zs).max() <= 10.0:  # the label term is > 0 for moderate logits
        assert _kd(zs, zs, y, t, a)[0] > 0.0


def test_alpha_zero_is_cross_entropy_and_softmax_with_temperature():
    rng = np.random.default_rng(3)
    zs, zt = _logits(rng, 5, 6), _logits(rng, 5, 6)
    y = rng.integers(0, 6, 5)
    assert _kd(zs, zt, y, 4.0, 0.0)[0] == pytest.approx(cross_entropy(zs, y), rel=1e-15)
    np.testing.assert_allclose(softmax_with_temperature(zs, 1.0), softmax(zs), rtol=1e-15)
    p1, p4 = softmax_with_temperature(zs, 1.0), softmax_with_temperature(zs, 4.0)
    np.testing.assert_allclose(p4.sum(axis=1), 1.0, rtol=1e-15)
    entropy = [-(p * np.log(p)).sum(axis=1) for p in (p1, p4)]
    assert np.all(entropy[1] > entropy[0])  # a higher temperature softens the targets
    np.testing.assert_allclose(p4, softmax(zs / 4.0), rtol=1e-15)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"temperature": 0.0}, ValueError, "temperature"),
    ({"temperature": -1.0}, ValueError, "temperature"),
    ({"temperature": float("inf")}, ValueError, "temperature"),
    ({"temperature": float("nan")}, ValueError, "temperature"),
    ({"temperature": "4"}, TypeError, "temperature"),
    ({"alpha": -0.1}, ValueError, r"alpha.*\[0, 1\]"),
    ({"alpha": 1.5}, ValueError, r"alpha.*\[0, 1\]"),
    ({"alpha": float("nan")}, ValueError, "alpha"),
    ({"teacher_logits": np.zeros((4, 3))}, ValueError, r"teacher_logits.*\(4, 5\).*\(4, 3\)"),
    ({"teacher_logits": np.zeros((3, 5))}, ValueError, "teacher_logits"),
    ({"teacher_logits": np.zeros((4, 5), dtype=np.int64)}, TypeError, "teacher_logits"),
    ({"student_logits": np.full((4, 5), np.nan)}, ValueError, "finite"),
    ({"y": None}, ValueError, "y: labels"),
    ({"y": np.array([0, 1, 2, 5])}, ValueError, "y"),
])
def test_loss_bad_input(kwargs, err, match):
    rng = np.random.default_rng(4)
    args = {"student_logits": _logits(rng, 4, 5), "teacher_logits": _logits(rng, 4, 5),
            "y": np.array([0, 1, 2, 3]), "temperature": 2.0, "alpha": 0.5, **kwargs}
    with pytest.raises(err, match=match):
        distillation_loss_forward(**args)


def test_alpha_one_needs_no_labels():
    rng = np.random.default_rng(4)
    zs, zt = _logits(rng, 4, 5), _logits(rng, 4, 5)
    with_y = _kd(zs, zt, np.array([0, 1, 2, 3]), 2.0, 1.0)
    without = _kd(zs, zt, None, 2.0, 1.0)
    assert with_y[0] == without[0] > 0
    np.testing.assert_array_equal(distillation_loss_backward(with_y[1]),
                                  distillation_loss_backward(without[1]))


# ----------------------------------------------------------------------- the fit hook, distill()


def _mlp(hidden, seed, dtype=np.float64):
    return Sequential([("flatten", Flatten()), ("fc1", Linear(8, hidden, rng=seed, dtype=dtype)),
                       ("relu1", ReLU()), ("fc2", Linear(hidden, 3, rng=seed + 1, dtype=dtype))],
                      input_shape=(2, 2, 2), name=f"mlp{hidden}")


def _data(n=120, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, 2, 2))
    y = (x.reshape(n, -1)[:, :3] * [1.0, -1.0, 0.5]).argmax(axis=1).astype(np.int64)
    return x, y


def _teacher(x, y):
    teacher = _mlp(32, 10)
    fit(teacher, x, y, optimizer=SGD(teacher.params, lr=0.1, momentum=0.9), epochs=20,
        batch_size=16, rng=0, progress=False)
    return teacher


def _kl_to(teacher, student, x, t=1.0):
    q = softmax_with_temperature(predict(teacher, x), t)
    p = softmax_with_temperature(predict(student, x), t)
    return float((q * (np.log(q) - np.log(p))).sum(axis=1).mean())


def test_distillation_loss_from_logits_or_teacher_gives_the_same_batch_loss():
    x, y = _data()
    teacher = _mlp(16, 1)
    zt = compute_teacher_logits(teacher, x)
    idx = np.array([5, 0, 77, 119])
    batch = Batch(x[idx], y[idx], idx)
    zs = _logits(np.random.default_rng(0), 4, 3)
    a = DistillationLoss(teacher_logits=zt, temperature=3.0, alpha=0.6).forward(zs, batch)
    b = DistillationLoss(teacher=teacher, temperature=3.0, alpha=0.6).forward(zs, batch)
    assert a[0] == pytest.approx(b[0], rel=1e-13)
    np.testing.assert_allclose(distillation_loss_backward(a[1]), distillation_loss_backward(b[1]),
                               rtol=1e-12, atol=1e-15)


def test_distillation_loss_bad_construction_and_out_of_range_index():
    zt = np.zeros((10, 3))
    with pytest.raises(ValueError, match="exactly one"):
        DistillationLoss(temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        DistillationLoss(teacher_logits=zt, teacher=_mlp(4, 0), temperature=2.0, alpha=0.5)
    with pytest.raises(TypeError, match="teacher"):
        DistillationLoss(teacher="model", temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(teacher_logits=zt, temperature=0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        DistillationLoss(teacher_logits=zt, temperature=1, alpha=2)
    loss = DistillationLoss(teacher_logits=zt, temperature=2.0, alpha=0.5)
    idx = np.array([3, 10])
    with pytest.raises(ValueError, match="holds 10 rows.*sample 10"):
        loss.forward(np.zeros((2, 3)), Batch(np.zeros((2, 8)), np.array([0, 1]), idx))


def test_a_student_that_equals_its_teacher_has_zero_loss_and_stays_put():
    x, y = _data()
    teacher = _mlp(16, 2)
    student = teacher.copy()
    hist = distill(student, teacher, x, y, temperature=4.0, alpha=1.0, epochs=2,
                   optimizer=SGD(student.params, lr=0.5), rng=0, progress=False)
    assert max(hist.loss) < 1e-12
    for k, v in teacher.params.items():
        np.testing.assert_allclose(student.params[k], v, rtol=0, atol=1e-12)


def test_distill_brings_a_small_student_closer_to_the_teacher_than_label_training():
    x, y = _data()
    teacher = _teacher(x, y)
    plain, kd = _mlp(4, 20), _mlp(4, 20)
    fit(plain, x, y, optimizer=SGD(plain.params, lr=0.1, momentum=0.9), epochs=15,
        batch_size=16, rng=1, progress=False)
    hist = distill(kd, teacher, x, y, temperature=4.0, alpha=0.9, epochs=15, batch_size=16,
                   optimizer=SGD(kd.params, lr=0.01, momentum=0.9), rng=1, progress=False)
    assert hist.loss[-1] < hist.loss[0]
    assert _kl_to(teacher, kd, x, 4.0) < _kl_to(teacher, plain, x, 4.0)  # the soft targets


def test_distill_precomputed_or_per_batch_teacher_train_alike():
    x, y = _data()
    teacher = _teacher(x, y)
    runs = []
    for kwargs in ({"precompute": True}, {"precompute": False},
                   {"teacher_logits": compute_teacher_logits(teacher, x)}):
        student = _mlp(6, 30)
        t = None if "teacher_logits" in kwargs else teacher
        hist = distill(student, t, x, y, temperature=2.0, alpha=0.5, epochs=3, batch_size=32,
                       optimizer=SGD(student.params, lr=0.1), rng=3, progress=False, **kwargs)
        runs.append((hist.loss, student.params["fc1.weight"]))
    for loss, w in runs[1:]:
        np.testing.assert_allclose(loss, runs[0][0], rtol=1e-10)
        np.testing.assert_allclose(w, runs[0][1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["pruned", "quantized", "factorized"])
def test_distill_a_compressed_student_from_its_dense_parent(kind):
    from tinyprune.lowrank import factorize_model
    from tinyprune.prune import prune_model, set_masks_

    x, y = _data()
    parent = _teacher(x, y)
    if kind == "pruned":
        student = parent.copy()
        set_masks_(student, prune_model(student, ["fc1", "fc2"], 0.7, criterion="l1"))
    elif kind == "quantized":
        student = parent.copy()
        student.set_transform("fc1.weight", RoundToGrid(0.5))
    else:
        student = factorize_model(parent, {"fc1": 2})
    before = _kl_to(parent, student, x, 4.0)
    distill(student, parent, x, y, temperature=4.0, alpha=0.9, epochs=10, batch_size=16,
            optimizer=SGD(student.params, lr=0.005, momentum=0.9), rng=2, progress=False)
    assert _kl_to(parent, student, x, 4.0) < before  # closer to the parent than when compressed
    if kind == "pruned":
        for name, m in student.masks.items():
            assert np.all(student.params[name][~m] == 0.0)
    if kind == "quantized":
        ref = student.copy()
        ref.set_transform("fc1.weight", None)
        ref.set_param("fc1.weight", np.round(student.params["fc1.weight"] * 2) / 2)
        np.testing.assert_array_equal(student(x), ref(x))


def test_distill_bad_input():
    x, y = _data()
    teacher, student = _mlp(8, 1), _mlp(4, 2)
    opt = SGD(student.params, lr=0.1)
    common = {"temperature": 2.0, "alpha": 0.5, "optimizer": opt, "rng": 0, "progress": False}
    four = Sequential([("flatten", Flatten()), ("fc", Linear(8, 4, dtype=np.float64))])
    with pytest.raises(ValueError, match="outputs 4 classes, the student 3"):
        distill(student, four, x, y, **common)
    with pytest.raises(ValueError, match=r"teacher_logits.*\(120, 3\).*\(120, 4\)"):
        distill(student, None, x, y, teacher_logits=np.zeros((120, 4)), **common)
    with pytest.raises(ValueError, match="outputs 4 classes, the student 3"):
        distill(student, four, x, y, precompute=False, **common)
    with pytest.raises(ValueError, match=r"teacher_logits.*\(120, 3\).*\(100, 3\)"):
        distill(student, None, x, y, teacher_logits=np.zeros((100, 3)), **common)
    with pytest.raises(ValueError, match="exactly one"):
        distill(student, None, x, y, **common)
    with pytest.raises(ValueError, match="exactly one"):
        distill(student, teacher, x, y, teacher_logits=np.zeros((120, 3)), **common)
    with pytest.raises(ValueError, match="temperature"):
        distill(student, teacher, x, y, **{**common, "temperature": 0.0})
    with pytest.raises(ValueError, match="alpha"):
        distill(student, teacher, x, y, **{**common, "alpha": -0.5})
    with pytest.raises(TypeError, match="student"):
        distill("student", teacher, x, y, **common)
    with pytest.raises(TypeError, match="teacher"):
        distill(student, "teacher", x, y, **common)
    with pytest.raises(TypeError, match="loss="):
        distill(student, teacher, x, y, loss=None, **common)
