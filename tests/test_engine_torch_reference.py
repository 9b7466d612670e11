"""The engine against PyTorch (CPU): forward values and every gradient, float32 tolerance."""

import numpy as np
import pytest

from tinyprune.nn import Conv2d, Linear, MaxPool2d, im2col, lecture_net

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-4, 1e-5


def _t(a):
    return torch.tensor(np.ascontiguousarray(a), requires_grad=True)


def _close(ours, theirs):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("k, stride, padding", [(3, 1, 0), ((2, 3), 2, 1), (1, 3, 2)])
def test_im2col_is_torch_unfold(k, stride, padding):
    """Same column order as torch.nn.functional.unfold (transposed: one row per position)."""
    x = np.random.default_rng(7).standard_normal((2, 3, 7, 8))
    cols = im2col(x, k, stride, padding)
    unfolded = torch.nn.functional.unfold(torch.from_numpy(x), k, padding=padding, stride=stride)
    expected = unfolded.numpy().transpose(0, 2, 1).reshape(cols.shape)  # (N*L, C*KH*KW)
    np.testing.assert_array_equal(cols, expected)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("c_in, c_out, k, stride, padding, hw", [
    (1, 32, 3, 1, 0, (28, 28)), (32, 64, 3, 1, 0, (12, 11)), (3, 5, 3, 2, 1, (9, 8)),
    (4, 6, (2, 3), 3, 2, (7, 10)), (6, 3, 5, 1, 2, (6, 6)), (2, 2, 1, 1, 0, (4, 4)),
])
def test_conv2d(c_in, c_out, k, stride, padding, hw, fast):
    rng = np.random.default_rng(0)
    conv = Conv2d(c_in, c_out, k, stride=stride, padding=padding, rng=1)
    conv.fast = fast
    x = rng.standard_normal((3, c_in) + hw).astype(np.float32)
    out = conv.forward(x, train=True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = conv.backward(dout)
    xt, wt, bt = _t(x), _t(conv.params["weight"]), _t(conv.params["bias"])
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
    yt.backward(torch.from_numpy(dout))
    _close(out, yt)
    _close(dx, xt.grad)
    _close(conv.grads["weight"], wt.grad)
    _close(conv.grads["bias"], bt.grad)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("k, stride, padding, hw, ties", [
    (2, None, 0, (24, 24), False), (2, None, 0, (24, 24), True), (2, None, 0, (7, 9), True),
    (3, 2, 1, (9, 8), True), (3, 1, 0, (6, 7), False), ((2, 3), 2, 1, (8, 9), True),
])
def test_maxpool(k, stride, padding, hw, ties, fast):
    rng = np.random.default_rng(2)
    shape = (2, 4) + hw
    # ReLU-like inputs with many exact zeros: ties must route the gradient as torch does
    x = (np.maximum(rng.integers(-3, 3, size=shape), 0) if ties
         else rng.standard_normal(shape)).astype(np.float32)
    pool = MaxPool2d(k, stride, padding)
    pool.fast = fast
    out = pool.forward(x, train=True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = pool.backward(dout)
    xt = _t(x)
    yt = torch.nn.functional.max_pool2d(xt, k, stride, padding)
    yt.backward(torch.from_numpy(dout))
    np.testing.assert_array_equal(out, yt.detach().numpy())
    # the same routing (overlapping windows may sum in another order: float32 rounding)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_linear():
    rng = np.random.default_rng(3)
    fc = Linear(9216, 128, rng=4)
    x = rng.standard_normal((5, 9216)).astype(np.float32)
    out = fc.forward(x, train=True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = fc.backward(dout)
    xt, wt, bt = _t(x), _t(fc.params["weight"]), _t(fc.params["bias"])
    yt = torch.nn.functional.linear(xt, wt, bt)
    yt.backward(torch.from_numpy(dout))
    _close(out, yt)
    _close(dx, xt.grad)
    _close(fc.grads["weight"], wt.grad)
    _close(fc.grads["bias"], bt.grad)


def _torch_lecture_net(m):
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10))
    names = {0: "conv1", 2: "conv2", 7: "fc1", 10: "fc2"}
    with torch.no_grad():
        for i, lname in names.items():
            net[i].weight.copy_(torch.from_numpy(m[lname].params["weight"]))
            net[i].bias.copy_(torch.from_numpy(m[lname].params["bias"]))
    return net, names


@pytest.mark.parametrize("fast", [True, False])
def test_lecture_net_matches_torch(fast):
    m = lecture_net(seed=5)
    m.fast = fast
    net, names = _torch_lecture_net(m)
    net.eval()  # dropout off in torch; p = 0 in ours
    for layer in m.layers.values():
        if hasattr(layer, "p"):
            layer.p = 0.0
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=8)
    from tinyprune.nn.losses import softmax_cross_entropy_backward, softmax_cross_entropy_forward
    logits = m.forward(x, train=True)
    loss, cache = softmax_cross_entropy_forward(logits, y)
    dx = m.backward(softmax_cross_entropy_backward(cache))
    xt = _t(x)
    lt = torch.nn.functional.cross_entropy(net(xt), torch.from_numpy(y))
    lt.backward()
    _close(logits, net(xt))
    assert loss == pytest.approx(lt.item(), rel=1e-5)
    _close(dx, xt.grad)
    for i, lname in names.items():
        _close(m.grads[f"{lname}.weight"], net[i].weight.grad)
        _close(m.grads[f"{lname}.bias"], net[i].bias.grad)
    # inference in chunks (with fast, for large batches) gives the same logits too
    xb = rng.standard_normal((75, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        _close(m.forward(xb), net(torch.from_numpy(xb)))
