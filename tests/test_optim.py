"""Tests for tinyprune.nn.optim: update rules (vs torch), masks, schedules, validation."""

import numpy as np
import pytest

from tinyprune.nn.optim import SGD, Adam, CosineAnnealingLR, StepLR


def _problem(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    params = {"fc1.weight": rng.standard_normal((4, 3)).astype(dtype),
              "fc1.bias": rng.standard_normal(4).astype(dtype)}
    grads_seq = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
                 for _ in range(5)]
    return params, grads_seq


def _torch_run(torch_opt_cls, params, grads_seq, **kw):
    torch = pytest.importorskip("torch")
    tp = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = torch_opt_cls(list(tp.values()), **kw)
    for grads in grads_seq:
        for k, t in tp.items():
            t.grad = torch.tensor(grads[k].copy())
        opt.step()
    return {k: t.detach().numpy() for k, t in tp.items()}, opt, tp


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-3),
    dict(lr=0.05, momentum=0.9),
])
def test_sgd_matches_torch(kw):
    torch = pytest.importorskip("torch")
    params, grads_seq = _problem()
    ours = {k: v.copy() for k, v in params.items()}
    opt = SGD(ours, **kw)
    for grads in grads_seq:
        opt.step(grads)
    ref, topt, tp = _torch_run(torch.optim.SGD, params, grads_seq, **kw)
    for k in params:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-5, atol=1e-6)
        if kw.get("momentum"):
            buf = topt.state[tp[k]]["momentum_buffer"].numpy()
            np.testing.assert_allclose(opt.state[k]["momentum_buffer"], buf, rtol=1e-5, atol=1e-6)


def test_sgd_single_step_momentum_nesterov_weight_decay_matches_torch():
    torch = pytest.importorskip("torch")
    params, grads_seq = _problem(seed=3)
    kw = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)
    ours = {k: v.copy() for k, v in params.items()}
    SGD(ours, **kw).step(grads_seq[0])
    ref, _, _ = _torch_run(torch.optim.SGD, params, grads_seq[:1], **kw)
    for k in params:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-6, atol=1e-7)
        # by hand: d = g + wd p; buf = d; p -= lr (d + mu buf)
        d = grads_seq[0][k] + 1e-2 * params[k]
        np.testing.assert_allclose(ours[k], params[k] - 0.1 * (d + 0.9 * d), rtol=1e-6)


@pytest.mark.parametrize("kw", [
    dict(lr=1e-2),
    dict(lr=1e-2, weight_decay=0.05),
    dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-3),
])
def test_adam_matches_torch_over_several_steps(kw):
    torch = pytest.importorskip("torch")
    params, grads_seq = _problem()
    ours = {k: v.copy() for k, v in params.items()}
    opt = Adam(ours, **kw)
    for grads in grads_seq:
        opt.step(grads)
    ref, topt, tp = _torch_run(torch.optim.Adam, params, grads_seq, **kw)
    for k in params:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-5, atol=1e-6)
        st = topt.state[tp[k]]
        np.testing.assert_allclose(opt.state[k]["exp_avg"], st["exp_avg"].numpy(), rtol=1e-5,
                                   atol=1e-7)
        np.testing.assert_allclose(opt.state[k]["exp_avg_sq"], st["exp_avg_sq"].numpy(),
                                   rtol=1e-5, atol=1e-7)
        assert int(opt.state[k]["step"]) == len(grads_seq) == int(st["step"])



def test_adam_is_the_papers_bias_corrected_update():
    """Kingma & Ba, Algorithm 1, in float64: m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t),
    theta -= lr * m_hat / (sqrt(v_hat) + eps), with L2 weight decay added to the gradient."""
    params, grads_seq = _problem(np.float64, seed=4)
    lr, (b1, b2), eps, wd = 1e-2, (0.8, 0.95), 1e-3, 0.1
    ours = {k: v.copy() for k, v in params.items()}
    opt = Adam(ours, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    theta = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t, grads in enumerate(grads_seq, start=1):
        opt.step(grads)
        for k in theta:
            d = grads[k] + wd * theta[k]
            m[k] = b1 * m[k] + (1 - b1) * d
            v[k] = b2 * v[k] + (1 - b2) * d**2
            m_hat, v_hat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
            theta[k] = theta[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
            np.testing.assert_allclose(ours[k], theta[k], rtol=1e-12, atol=1e-14)

@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda p: Adam(p, lr=1e-2, weight_decay=1e-3),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_in_place_keep_dtype_and_leave_grads_alone(make, dtype):
    params, grads_seq = _problem(dtype)
    arrays = dict(params)
    before = {k: v.copy() for k, v in params.items()}
    grads = grads_seq[0]
    grads_copy = {k: v.copy() for k, v in grads.items()}
    opt = make(params)
    opt.step(grads)
    for k in params:
        assert params[k] is arrays[k] and opt.params[k] is arrays[k]
        assert params[k].dtype == dtype
        assert not np.array_equal(params[k], before[k])
        np.testing.assert_array_equal(grads[k], grads_copy[k])
    assert set(grads) == set(grads_copy)


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda p: Adam(p, lr=1e-2, weight_decay=1e-2),
])
def test_masked_optimizer_keeps_pruned_weights_exactly_zero(make):
    rng = np.random.default_rng(5)
    params = {"w": rng.standard_normal((20, 10)).astype(np.float32),
              "b": rng.standard_normal(20).astype(np.float32)}
    mask = rng.random((20, 10)) < 0.5
    opt = make(params)
    for _ in range(3):  # build up momentum / moments before pruning
        opt.step({k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()})
    for _ in range(100):
        grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
        g_w = grads["w"].copy()
        opt.step(grads, masks={"w": mask})
        np.testing.assert_array_equal(grads["w"], g_w)  # incoming grads untouched
        assert np.all(params["w"][~mask] == 0.0)
        for arr in opt.state["w"].values():
            if arr.shape == mask.shape:
                assert np.all(arr[~mask] == 0.0)
    assert np.all(params["w"][mask] != 0.0)  # kept weights still train
    assert np.all(params["b"] != 0.0)


def test_step_masks_are_validated():
    params, grads_seq = _problem()
    opt = SGD(params, lr=0.1)
    opt.step(grads_seq[0], masks={"fc1.weight": np.zeros((4, 3), dtype=bool)})
    assert np.all(params["fc1.weight"] == 0.0)
    with pytest.raises(ValueError, match="nope"):
        opt.step(grads_seq[1], masks={"nope": np.ones(3, dtype=bool)})
    with pytest.raises(TypeError, match="bool"):
        opt.step(grads_seq[1], masks={"fc1.bias": np.ones(4)})
    with pytest.raises(ValueError, match=r"\(4,\)"):
        opt.step(grads_seq[1], masks={"fc1.bias": np.ones(5, dtype=bool)})
    with pytest.raises(TypeError, match="dict"):
        opt.step(grads_seq[1], masks=[np.ones(4, dtype=bool)])
    opt.step(grads_seq[1])  # no masks: a plain step


def test_zero_state():
    params, grads_seq = _problem()
    opt = Adam(params)
    opt.step(grads_seq[0])
    assert set(opt.state["fc1.weight"]) == {"step", "exp_avg", "exp_avg_sq"}
    opt.zero_state()
    assert opt.state == {"fc1.weight": {}, "fc1.bias": {}}
    opt.step(grads_seq[1])
    assert int(opt.state["fc1.bias"]["step"]) == 1


def test_grads_validation():
    params, grads_seq = _problem()
    opt = SGD(params, lr=0.1)
    g = dict(grads_seq[0])
    with pytest.raises(ValueError, match="unknown parameter 'fc2.weight'"):
        opt.step({**g, "fc2.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="missing gradient for parameter 'fc1.bias'"):
        opt.step({"fc1.weight": g["fc1.weight"]})
    with pytest.raises(ValueError, match=r"expected shape \(4,\), got \(5,\)"):
        opt.step({**g, "fc1.bias": np.zeros(5, np.float32)})
    with pytest.raises(TypeError, match="expected dtype float32.*got float64"):
        opt.step({**g, "fc1.bias": np.zeros(4)})
    with pytest.raises(TypeError, match="grads"):
        opt.step([g])
    with pytest.raises(TypeError, match="fc1.bias"):
        opt.step({**g, "fc1.bias": [0.0] * 4})


@pytest.mark.parametrize("make, exc, words", [
    (lambda p: SGD(p, lr=-0.1), ValueError, "lr"),
    (lambda p: SGD(p, lr=float("nan")), ValueError, "lr"),
    (lambda p: SGD(p, lr="0.1"), TypeError, "lr"),
    (lambda p: SGD(p, lr=0.1, momentum=1.0), ValueError, "momentum"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.1), ValueError, "momentum"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), ValueError, "nesterov"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "dampening"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1e-4), ValueError, "weight_decay"),
    (lambda p: SGD(p, lr=0.1, dampening=1.5), ValueError, "dampening"),
    (lambda p: SGD(p, lr=0.1, nesterov=1), TypeError, "nesterov"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), ValueError, "betas[0]"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), ValueError, "betas[1]"),
    (lambda p: Adam(p, betas=0.9), ValueError, "betas"),
    (lambda p: Adam(p, eps=-1e-8), ValueError, "eps"),
    (lambda p: Adam(p, lr=-1.0), ValueError, "lr"),
    (lambda p: SGD([np.zeros(3)], lr=0.1), TypeError, "params"),
    (lambda p: SGD({}, lr=0.1), ValueError, "params"),
    (lambda p: SGD({"w": np.zeros(3, dtype=int)}, lr=0.1), TypeError, "params['w']"),
])
def test_hyperparameter_validation(make, exc, words):
    params, _ = _problem()
    with pytest.raises(exc) as info:
        make(params)
    assert words in str(info.value)


def test_read_only_param_rejected_and_lr_setter_validates():
    w = np.zeros(3, dtype=np.float32)
    w.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        SGD({"w": w}, lr=0.1)
    opt = SGD({"w": np.zeros(3, dtype=np.float32)}, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1
    assert "SGD(lr=0.1" in repr(opt)


def _torch_lrs(sched_cls, n, **kw):
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    sched = sched_cls(opt, **kw)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def _our_lrs(sched_cls, n, **kw):
    opt = SGD({"w": np.zeros(1, dtype=np.float32)}, lr=0.5)
    sched = sched_cls(opt, **kw)
    lrs = []
    for _ in range(n):
        lrs.append(opt.lr)
        assert sched.get_lr() == opt.lr
        sched.step()
    return lrs


def test_step_lr_matches_torch():
    torch = pytest.importorskip("torch")
    ours = _our_lrs(StepLR, 20, step_size=3, gamma=0.5)
    ref = _torch_lrs(torch.optim.lr_scheduler.StepLR, 20, step_size=3, gamma=0.5)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert ours[:4] == [0.5, 0.5, 0.5, 0.25]


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_matches_torch(eta_min):
    torch = pytest.importorskip("torch")
    ours = _our_lrs(CosineAnnealingLR, 25, T_max=10, eta_min=eta_min)
    ref = _torch_lrs(torch.optim.lr_scheduler.CosineAnnealingLR, 25, T_max=10, eta_min=eta_min)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    assert ours[0] == 0.5 and ours[10] == pytest.approx(eta_min)


def test_scheduler_validation():
    opt = SGD({"w": np.zeros(1, dtype=np.float32)}, lr=0.5)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(opt, 0)
    with pytest.raises(TypeError, match="step_size"):
        StepLR(opt, 1.5)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(opt, 0)
    with pytest.raises(ValueError, match="eta_min"):
        CosineAnnealingLR(opt, 5, eta_min=-1)
    with pytest.raises(TypeError, match="optimizer"):
        StepLR("sgd", 2)
