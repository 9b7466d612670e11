"""Optimizers (SGD with momentum/Nesterov/weight decay, Adam) and learning-rate schedules.

The update rules are exactly those of ``torch.optim.SGD`` and ``torch.optim.Adam`` (their
single-tensor, non-``maximize``, non-``amsgrad`` code paths). Parameters are updated **in place**:
the optimizer holds the model's own arrays (``model.params``), so ``opt.step(model.grads)``
changes the model.

Pruning: ``opt.step(grads, masks=model.masks)`` (what :func:`tinyprune.nn.train.fit` does at
every step) multiplies each gradient by its mask before the update and sets the pruned entries of
the parameter and of its state arrays (momentum, Adam moments) to ``0.0`` afterwards, so pruned
weights stay exactly ``0.0`` and accumulate no momentum (see :mod:`tinyprune.nn.masks`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .masks import check_masks, zero_pruned_
from .validation import FLOAT_DTYPES, check_real

__all__ = ["SGD", "Adam", "CosineAnnealingLR", "LRScheduler", "Optimizer", "StepLR"]


class Optimizer:
    """Base class: holds the parameters, per-parameter state and the learning rate.

    Parameters
    ----------
    params : dict[str, ndarray]
        The arrays to optimise (usually ``model.params``), float32 or float64, keyed by full name.
        They are updated in place.
    lr : float
        Learning rate, ``>= 0``.

    Attributes
    ----------
    params : dict[str, ndarray]
        A new dict holding the caller's arrays (the very same objects).
    state : dict[str, dict[str, ndarray]]
        Per-parameter state keyed by full name (``state["fc1.weight"]["momentum_buffer"]``).
    lr : float
        Current learning rate (schedulers change it between epochs).
    """

    def __init__(self, params, lr):
        if not isinstance(params, dict):
            raise TypeError(f"params: expected a dict name -> ndarray (e.g. model.params), "
                            f"got {type(params).__name__}")
        if not params:
            raise ValueError("params: expected at least one parameter, got an empty dict")
        for name, p in params.items():
            if not isinstance(name, str):
                raise TypeError(f"params: expected string keys, got {name!r}")
            if not isinstance(p, np.ndarray) or p.dtype not in FLOAT_DTYPES:
                what = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
                raise TypeError(f"params[{name!r}]: expected a float32/float64 ndarray, got {what}")
            if not p.flags.writeable:
                raise ValueError(f"params[{name!r}]: the array is read-only; the optimizer "
                                 f"updates parameters in place")
        self.params: dict[str, np.ndarray] = dict(params)
        self.lr = lr
        self.state: dict[str, dict[str, np.ndarray]] = {name: {} for name in self.params}
        self._scratch: dict[str, np.ndarray] = {}  # one reused temporary per parameter

    # -- hyper-parameters ------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check_real(value, f"{type(self).__name__}: lr", minimum=0.0)

    def _check_grads(self, grads):
        if not isinstance(grads, dict):
            raise TypeError(f"grads: expected a dict name -> ndarray (e.g. model.grads), "
                            f"got {type(grads).__name__}")
        for name in grads:
            if name not in self.params:
                raise ValueError(f"grads: unknown parameter {name!r}; parameters: "
                                 f"{list(self.params)}")
        for name, p in self.params.items():
            if name not in grads:
                raise ValueError(f"grads: missing gradient for parameter {name!r}")
            g = grads[name]
            if not isinstance(g, np.ndarray):
                raise TypeError(f"grads[{name!r}]: expected an ndarray, got {type(g).__name__}")
            if g.shape != p.shape:
                raise ValueError(f"grads[{name!r}]: expected shape {p.shape}, got {g.shape}")
            if g.dtype != p.dtype:
                raise TypeError(f"grads[{name!r}]: expected dtype {p.dtype} (the parameter's), "
                                f"got {g.dtype}")

    # -- update ----------------------------------------------------------------------------
    def step(self, grads, masks=None) -> None:
        """Update every parameter in place from ``grads`` (not modified).

        Parameters
        ----------
        grads : dict[str, ndarray]
            Same keys, shapes and dtypes as ``params`` (usually ``model.grads``).
        masks : dict[str, ndarray of bool], optional
            Pruning masks (True = kept) keyed like ``params``, possibly a subset (usually
            ``model.masks``). A masked parameter gets the gradient ``g * M``, and after the
            update its pruned entries and those of its state arrays are set to exactly ``0.0``.
        """
        self._check_grads(grads)
        if masks is not None:
            self.check_masks(masks)
        for name, p in self.params.items():
            mask = None if masks is None else masks.get(name)
            self._update(name, p, grads[name], mask)
            if mask is not None:
                zero_pruned_(p, mask)
                for arr in self.state[name].values():
                    if arr.dtype.kind == "f" and arr.shape == p.shape:
                        zero_pruned_(arr, mask)

    def check_masks(self, masks) -> None:
        """Raise ValueError/TypeError if ``masks`` cannot be used with :meth:`step`."""
        check_masks(self.params, masks)

    def _tmp(self, name, p):
        """The parameter's scratch array (same shape and dtype), allocated once."""
        t = self._scratch.get(name)
        if t is None or t.shape != p.shape or t.dtype != p.dtype:
            t = self._scratch[name] = np.empty_like(p)
        return t

    def _effective_grad(self, name, p, g, mask, weight_decay):
        """``mask * (g + weight_decay * p)`` in the parameter's scratch array, or ``g`` itself
        (read only, never modified) when there is neither weight decay nor mask."""
        if not weight_decay and mask is None:
            return g
        d = self._tmp(name, p)
        if weight_decay:
            np.multiply(p, weight_decay, out=d)  # d = wd * p
            d += g
        else:
            np.copyto(d, g)
        if mask is not None:
            d *= mask
        return d

    def _update(self, name, p, g, mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def zero_state(self) -> None:
        """Forget all optimizer state (momentum buffers, moments, step counts)."""
        self.state = {name: {} for name in self.params}

    def __repr__(self):
        hp = ", ".join(f"{k}={v}" for k, v in self._hyper().items())
        return f"{type(self).__name__}({hp})"

    def _hyper(self):
        return {"lr": self.lr}


class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

    For each parameter :math:`\theta` with gradient :math:`g` (``torch.optim.SGD``):

    .. math::

        d = g + \lambda \theta, \qquad
        b \leftarrow \begin{cases} d & \text{first step} \\
                                      \mu b + (1 - \tau) d & \text{otherwise} \end{cases}

        \theta \leftarrow \theta - \eta \, (d + \mu b) \ \text{(Nesterov)}
        \quad\text{or}\quad \theta - \eta \, b

    (with :math:`\mu = 0`: :math:`\theta \leftarrow \theta - \eta d`).

    Parameters
    ----------
    params : dict[str, ndarray]
    lr : float, ``>= 0``
        :math:`\eta`.
    momentum : float in ``[0, 1)``
        :math:`\mu`.
    dampening : float in ``[0, 1]``
        :math:`\tau`.
    nesterov : bool
        Nesterov momentum (Sutskever et al., "On the importance of initialization and momentum in
        deep learning", ICML 2013); needs ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float, ``>= 0``
        :math:`\lambda` (L2 penalty added to the gradient).
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = check_real(momentum, "SGD: momentum", minimum=0.0, maximum=1.0,
                                   exclusive_maximum=True)
        self.dampening = check_real(dampening, "SGD: dampening", minimum=0.0, maximum=1.0)
        self.weight_decay = check_real(weight_decay, "SGD: weight_decay", minimum=0.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov: expected a bool, got {nesterov!r}")
        if nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError(f"SGD: nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={self.momentum}, dampening={self.dampening}")
        self.nesterov = bool(nesterov)

    def _update(self, name, p, g, mask):
        d = self._effective_grad(name, p, g, mask, self.weight_decay)  # d = g + lambda theta
        step = d  # without momentum: theta <- theta - lr d
        mu = self.momentum
        if mu:
            state = self.state[name]
            buf = state.get("momentum_buffer")
            if buf is None:  # first step: b = d
                buf = state["momentum_buffer"] = d.copy()
            else:  # b <- mu b + (1 - tau) d, in place in the state array
                buf *= mu
                buf += d if self.dampening == 0 else (1.0 - self.dampening) * d
            step = d + mu * buf if self.nesterov else buf  # Nesterov: d + mu b; else b
        # theta <- theta - lr * step; lr * step goes into the parameter's scratch array, which
        # may hold d itself (d is no longer needed)
        lr_step = np.multiply(step, self.lr, out=self._tmp(name, p))
        p -= lr_step

    def _hyper(self):
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015).

    As ``torch.optim.Adam`` (L2 weight decay added to the gradient, not AdamW):

    .. math::

        d = g + \lambda\theta, \quad
        m \leftarrow \beta_1 m + (1-\beta_1) d, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) d^2

        \theta \leftarrow \theta - \underbrace{\frac{\eta}{1-\beta_1^t}}_{\text{step\_size}}
        \frac{m}{\underbrace{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}_{\text{denom}}}

    which is the paper's :math:`\theta - \eta \hat m / (\sqrt{\hat v} + \epsilon)` with the
    bias-corrected moments :math:`\hat m = m / (1-\beta_1^t)` and :math:`\hat v = v / (1-\beta_2^t)`,
    written in PyTorch's order of operations.

    State per parameter: ``"exp_avg"`` (:math:`m`), ``"exp_avg_sq"`` (:math:`v`) and ``"step"``
    (:math:`t`, a 0-d int64 array).

    Parameters
    ----------
    params : dict[str, ndarray]
    lr : float, ``>= 0``
    betas : (float, float), each in ``[0, 1)``
    eps : float, ``>= 0``
    weight_decay : float, ``>= 0``
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas: expected a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(check_real(beta, f"Adam: betas[{i}]", minimum=0.0, maximum=1.0,
                                      exclusive_maximum=True) for i, beta in enumerate(betas))
        self.eps = check_real(eps, "Adam: eps", minimum=0.0)
        self.weight_decay = check_real(weight_decay, "Adam: weight_decay", minimum=0.0)

    def check_masks(self, masks) -> None:
        """As :meth:`Optimizer.check_masks`; also refuses ``eps == 0`` with any mask: a pruned
        weight has ``m = v = 0``, so its update ``m / (sqrt(v) + eps)`` would be ``0 / 0``."""
        super().check_masks(masks)
        if self.eps == 0.0 and masks:
            raise ValueError("Adam: eps: expected eps > 0 when training with pruning masks "
                             "(pruned weights have m = v = 0, and 0 / (0 + eps) needs eps > 0), "
                             "got eps=0.0")

    def _update(self, name, p, g, mask):
        beta1, beta2 = self.betas
        st = self.state[name]
        if "step" not in st:
            st["step"] = np.zeros((), dtype=np.int64)
            st["exp_avg"] = np.zeros_like(p)
            st["exp_avg_sq"] = np.zeros_like(p)
        st["step"] += 1
        t = int(st["step"])
        m, v = st["exp_avg"], st["exp_avg_sq"]  # updated in place: they are the state
        d = self._effective_grad(name, p, g, mask, self.weight_decay)  # d = g + lambda theta
        m += (1.0 - beta1) * (d - m)  # m <- beta1 m + (1 - beta1) d, in torch's lerp form
        v *= beta2
        v += (1.0 - beta2) * np.square(d)  # v <- beta2 v + (1 - beta2) d^2
        step_size = self.lr / (1.0 - beta1**t)  # lr / (1 - beta1^t): m's bias correction
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)  # sqrt(1 - beta2^t): v's
        denom = np.sqrt(v)
        denom /= bias_correction2_sqrt
        denom += self.eps  # denom = sqrt(v) / sqrt(1 - beta2^t) + eps
        update = np.divide(m, denom, out=denom)
        update *= step_size  # update = step_size * m / denom (in denom's array)
        p -= update  # theta <- theta - step_size * m / denom

    def _hyper(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay}


# ------------------------------------------------------------------------------ LR schedules


class LRScheduler:
    """Base class: closed-form learning rate as a function of the epoch counter.

    Construction records ``base_lr = optimizer.lr`` and sets ``last_epoch = 0``; each
    :meth:`step` (once per epoch, after training it) increments ``last_epoch`` and writes
    :meth:`get_lr` into ``optimizer.lr``.
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer: expected an Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def get_lr(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> float:
        """Advance one epoch and set ``optimizer.lr``; returns the new learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()
        return self.optimizer.lr


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)`` (``torch.optim.lr_scheduler.StepLR``).

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int, ``>= 1``
        Epochs between decays.
    gamma : float, ``>= 0``
        Multiplicative decay.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral):
            raise TypeError(f"StepLR: step_size: expected an integer, got {step_size!r}")
        if step_size < 1:
            raise ValueError(f"StepLR: step_size: expected an integer >= 1, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = check_real(gamma, "StepLR: gamma", minimum=0.0)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing (Loshchilov & Hutter, "SGDR", ICLR 2017), without restarts.

    .. math::

        \eta_t = \eta_{min} + \tfrac12 (\eta_{base} - \eta_{min})
        \left(1 + \cos\frac{\pi t}{T_{max}}\right)

    the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR`` (periodic past ``T_max``).

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int, ``>= 1``
        Half-period in epochs.
    eta_min : float, ``>= 0``
        Minimum learning rate.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):  # noqa: N803 - torch's name
        super().__init__(optimizer)
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Integral):
            raise TypeError(f"CosineAnnealingLR: T_max: expected an integer, got {T_max!r}")
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max: expected an integer >= 1, got {T_max}")
        self.T_max = int(T_max)
        self.eta_min = check_real(eta_min, "CosineAnnealingLR: eta_min", minimum=0.0)

    def get_lr(self) -> float:
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + cos) / 2.0
