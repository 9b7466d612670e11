r"""Numerical gradient checks: compare a hand-written backward pass with centered differences.

.. math::

    \frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}
    {2 \varepsilon}

The truncation error is :math:`O(\varepsilon^2)` and the rounding error about
:math:`\text{eps}_{mach} |f| / \varepsilon`. In float64 (:math:`\text{eps}_{mach} \approx 10^{-16}`)
with :math:`\varepsilon = 10^{-6}` both are tiny and a correct backward pass gives a relative
error around ``1e-7`` or smaller; in float32 (:math:`\text{eps}_{mach} \approx 10^{-7}`) the
rounding error alone is about ``0.1 |f|``, so the checks refuse float32.

Reference: CS231n, "Gradient checks" (https://cs231n.github.io/neural-networks-3/#gradcheck).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np

from .losses import Batch, CrossEntropyLoss, Loss
from .validation import as_generator, check_int

__all__ = [
    "check_function_gradient",
    "check_model_gradients",
    "numerical_gradient",
    "relative_error",
]

_FLOAT32_HELP = ("gradient checks need float64: with float32 (about 7 significant digits) the "
                 "rounding error of a centered difference, ~1e-7 * |f| / eps, swamps the "
                 "derivative")


def _require_float64(x, name):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(f"{name}: expected dtype float64, got {x.dtype}; {_FLOAT32_HELP} "
                        f"(convert with .astype(np.float64) or model.set_dtype(np.float64))")


def _check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not eps > 0:
        raise ValueError(f"eps: expected a positive float, got {eps!r}")
    return float(eps)


def numerical_gradient(f, x, *, eps=1e-6, dout=None, indices=None):
    r"""Centered-difference gradient of ``f`` at ``x``.

    ``x`` is perturbed **in place**, one coordinate at a time, and restored exactly afterwards
    (also when ``f`` raises). This lets ``f`` be a closure over the array, e.g. a model parameter.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` (or an array when ``dout`` is given).
    x : ndarray, float64, writable
    eps : float
        Step :math:`\varepsilon`.
    dout : ndarray, optional
        Upstream gradient; the differentiated objective is then ``sum(f(x) * dout)``.
    indices : sequence of int tuples, optional
        Only these coordinates (multi-indices into ``x``); the others stay 0.

    Returns
    -------
    grad : ndarray, float64, shape of ``x``
    """
    _require_float64(x, "numerical_gradient: x")
    if not x.flags.writeable:
        raise ValueError("numerical_gradient: x must be writable (it is perturbed and restored)")
    eps = _check_eps(eps)

    def objective():
        out = f(x)
        if dout is None:
            out = np.asarray(out)
            if out.size != 1:
                raise ValueError(f"numerical_gradient: f returned shape {out.shape}; return a "
                                 f"scalar or pass dout")
            return float(out.reshape(()))
        return float(np.sum(np.asarray(out) * dout))

    grad = np.zeros(x.shape, dtype=np.float64)
    if indices is None:
        it = np.nditer(x, flags=["multi_index"], op_flags=["readonly"])
        indices = (it.multi_index for _ in it)
    for ix in indices:
        old = x[ix]
        try:
            x[ix] = old + eps
            f_plus = objective()
            x[ix] = old - eps
            f_minus = objective()
        finally:
            x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(a, b, floor=1e-8) -> float:
    r"""Largest elementwise relative error between two arrays of the same shape.

    .. math::

        \max_i \frac{|a_i - b_i|}{\max(|a_i| + |b_i|, \text{floor})}

    The floor keeps coordinates where both values are (nearly) zero from dividing by zero; there
    the error is the absolute difference divided by ``floor``. Returns 0.0 for empty arrays.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, a {a.shape} vs b {b.shape}")
    if a.size == 0:
        return 0.0
    den = np.maximum(np.abs(a) + np.abs(b), floor)
    return float(np.max(np.abs(a - b) / den))


def check_function_gradient(forward, backward, inputs, *, wrt=None, dout=None, eps=1e-6, rng=0):
    """Check a functional ``forward`` / ``backward`` pair against numerical gradients.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs) -> (out, cache)`` (or ``forward(**inputs)`` for a mapping); bind
        non-array arguments with a lambda or ``functools.partial``.
    backward : callable
        ``backward(dout, cache) -> grads``: one array, or a tuple with one gradient per input
        listed in ``wrt`` (in that order).
    inputs : sequence of ndarray or mapping str -> ndarray
        Float inputs to differentiate must be float64. They are copied, never modified.
    wrt : sequence of int or str, optional
        Inputs to check (positions or keys); default: all of them.
    dout : ndarray, optional
        Upstream gradient; default: standard-normal of the output's shape drawn from ``rng``
        (``1.0`` for a scalar output), which catches more mistakes than all-ones.
    eps : float
    rng : numpy.random.Generator or int

    Returns
    -------
    dict
        ``{input key: relative_error(analytic, numerical)}``.
    """
    if isinstance(inputs, Mapping):
        keys = list(inputs)
        args = {k: np.array(v, copy=True) for k, v in inputs.items()}

        def call():
            return forward(**args)
    else:
        keys = list(range(len(inputs)))
        args = [np.array(v, copy=True) for v in inputs]

        def call():
            return forward(*args)
    wrt = keys if wrt is None else list(wrt)
    for k in wrt:
        if k not in keys:
            raise ValueError(f"wrt: unknown input {k!r}; inputs: {keys}")
        _require_float64(args[k], f"check_function_gradient: input {k!r}")

    out, cache = call()
    if dout is None:
        out_arr = np.asarray(out)
        if out_arr.ndim == 0:
            dout = np.float64(1.0)
        else:
            dout = as_generator(rng).standard_normal(out_arr.shape)
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(wrt):
        raise ValueError(f"backward returned {len(grads)} gradients, expected {len(wrt)} "
                         f"(one per input in wrt={wrt})")

    errors = {}
    for k, analytic in zip(wrt, grads, strict=True):
        if analytic is None or np.shape(analytic) != args[k].shape:
            shape = None if analytic is None else np.shape(analytic)
            raise ValueError(f"gradient for input {k!r}: expected shape {args[k].shape}, "
                             f"got {shape}")
        numeric = numerical_gradient(lambda _x: call()[0], args[k], eps=eps, dout=dout)
        errors[k] = relative_error(analytic, numeric)
    return errors


def _sample_indices(shape, max_checks, rng):
    size = int(np.prod(shape))
    if max_checks is None or size <= max_checks:
        return None
    flat = rng.choice(size, size=max_checks, replace=False)
    return [np.unravel_index(i, shape) for i in np.sort(flat)]


def check_model_gradients(model, x, y, *, eps=1e-6, params=None, max_checks_per_param=None,
                          rng=None, check_input=True, loss=None):
    """Compare back-propagated gradients of a loss (default: the mean softmax cross-entropy)
    with numerical ones.

    The analytic gradients come from one ``model.forward(x, train=True)`` + ``model.backward``.
    Every numerical evaluation also runs ``forward(x, train=True)``. Dropout layers draw their
    masks from their own generator: its state is saved before the analytic pass and restored
    before every evaluation, so all passes use the same dropout masks (the check is of the
    network with those masks fixed, which is what back-propagation differentiates).

    Parameters
    ----------
    model : Sequential
        All parameters float64. Its parameters are perturbed and restored exactly; its
        ``grads`` are left as computed by the analytic pass.
    x : ndarray (N, ...), float64
    y : ndarray (N,), integer labels
    eps : float
    params : sequence of str, optional
        Parameter names to check; default all.
    max_checks_per_param : int, optional
        Check at most this many random coordinates per parameter (and for the input).
    rng : numpy.random.Generator or int, optional
        Chooses the coordinates; ``None`` means seed 0 (deterministic).
    check_input : bool
        Also check d loss / d x under the key ``"input"``.
    loss : Loss, optional
        The loss to differentiate, as given to ``fit`` (:class:`~tinyprune.nn.losses.Loss`); it
        sees ``Batch(x, y, index=arange(N))``. Default: cross-entropy.

    Returns
    -------
    dict[str, float]
        ``{name: relative_error}`` for each checked parameter (and ``"input"``).
    """
    _require_float64(x, "check_model_gradients: x")
    model_params = model.params
    for name, p in model_params.items():
        _require_float64(p, f"check_model_gradients: parameter {name!r}")
    dropout_rngs = [layer.rng for layer in model.layers.values()
                    if isinstance(getattr(layer, "rng", None), np.random.Generator)]
    saved_states = [copy.deepcopy(g.bit_generator.state) for g in dropout_rngs]

    def freeze_dropout():
        for g, state in zip(dropout_rngs, saved_states, strict=True):
            g.bit_generator.state = copy.deepcopy(state)

    names = list(model_params) if params is None else list(params)
    for name in names:
        if name not in model_params:
            raise ValueError(f"params: unknown parameter {name!r}; parameters: "
                             f"{list(model_params)}")
    if max_checks_per_param is not None:
        max_checks_per_param = check_int(max_checks_per_param, "max_checks_per_param", minimum=1)
    rng = as_generator(0 if rng is None else rng)
    if loss is None:
        loss = CrossEntropyLoss()
    elif not isinstance(loss, Loss):
        raise TypeError(f"loss: expected a tinyprune.nn.losses.Loss, got {type(loss).__name__}")
    x = np.array(x, copy=True)  # perturbed below; the caller's array stays untouched
    batch = Batch(x, y, np.arange(x.shape[0], dtype=np.int64))

    freeze_dropout()
    logits = model.forward(x, train=True)  # (N, C)
    _, cache = loss.forward(logits, batch)
    dx = model.backward(loss.backward(cache))  # (N, ...)
    analytic = {name: g.copy() for name, g in model.grads.items()}

    def objective(_):
        freeze_dropout()
        return loss.forward(model.forward(x, train=True), batch)[0]

    errors = {}
    for name in names:
        p = model_params[name]
        idx = _sample_indices(p.shape, max_checks_per_param, rng)
        numeric = numerical_gradient(objective, p, eps=eps, indices=idx)
        a = analytic[name]
        if idx is not None:
            a, numeric = np.array([a[i] for i in idx]), np.array([numeric[i] for i in idx])
        errors[name] = relative_error(a, numeric)
    if check_input:
        idx = _sample_indices(x.shape, max_checks_per_param, rng)
        numeric = numerical_gradient(objective, x, eps=eps, indices=idx)
        a = dx
        if idx is not None:
            a, numeric = np.array([a[i] for i in idx]), np.array([numeric[i] for i in idx])
        errors["input"] = relative_error(a, numeric)
    return errors
