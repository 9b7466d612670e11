r"""When to prune: pruning schedules as training callbacks (the lecture's "When to prune?").

Each schedule is a :class:`~tinyprune.nn.train.Callback`, so any loop that calls the hooks
(:func:`~tinyprune.nn.train.fit`) can use it. A schedule only *adds* pruned weights to
``model.masks`` through :func:`~tinyprune.prune.masked.set_masks_` (masks only grow); the training
loop enforces ``model.masks`` at every step (weights, gradients, optimizer state), so a mask grown
in a hook takes effect at the next optimizer step and pruned weights stay exactly 0.0.

* :class:`OneShot` -- prune once when training starts, then fine-tune with the masks enforced.
* :class:`Iterative` -- train-prune-retrain (Han et al., "Learning both Weights and Connections
  for Efficient Neural Networks", NeurIPS 2015): ``rounds`` pruning rounds, one at the start of
  each phase of ``epochs_per_round`` epochs. By amount, each round prunes the same fraction
  :math:`p = 1 - (1 - s)^{1/k}` of the weights that remain (:func:`iterative_sparsities`), so
  that after ``k`` rounds exactly the target sparsity ``s`` is reached; or by Han's threshold,
  each round prunes the weights with :math:`|w| < q \cdot \sigma(w)` (:func:`han_threshold_mask`).
* :class:`AGP` -- automated gradual pruning (Zhu & Gupta, "To prune, or not to prune: exploring
  the efficacy of pruning for model compression", 2017): every :math:`\Delta t` optimizer steps
  from step :math:`t_0`, the sparsity is raised to
  :math:`s_t = s_f + (s_i - s_f)(1 - (t - t_0)/(n \Delta t))^3` (:func:`agp_sparsity`).

Sparsities are per layer (each target weight reaches the same sparsity) unless
``global_ranking=True`` ranks the units of all targets together. Counts follow the pruning core's
rule (:mod:`tinyprune.prune.select`): a sparsity ``s`` of ``n`` units prunes ``round(s * n)`` of
them in total (``relative_to="total"``), so the counts are exact and never drift over rounds.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..nn.model import Sequential
from ..nn.train import Callback
from ..nn.validation import as_generator, check_int
from .masked import set_masks_
from .model_pruning import prune_model


# --------------------------------------------------------------------------- pure formulas
def _check_sparsity(value, name) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a sparsity (float in [0, 1]), got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name}: expected a sparsity in [0, 1], got {value}")
    return value


def agp_sparsity(t, s_i, s_f, t0, n, dt) -> float:
    r"""Target sparsity of automated gradual pruning after optimizer step ``t``.

    .. math:: s_t = s_f + (s_i - s_f)\left(1 - \frac{t_k - t_0}{n \Delta t}\right)^3,
              \qquad t_k = t_0 + \Delta t \cdot \min\left(n, \left\lfloor
              \frac{t - t_0}{\Delta t}\right\rfloor\right)

    The sparsity changes only at the pruning steps :math:`t \in \{t_0, t_0 + \Delta t, \dots,
    t_0 + n\Delta t\}` (Zhu & Gupta 2017, eq. 1); between them it stays at the value of the last
    pruning step, and after :math:`t_0 + n\Delta t` it stays at :math:`s_f`. Pruning starts fast
    (the network has many redundant weights) and slows down as it approaches :math:`s_f`.

    Parameters
    ----------
    t : int >= 0
        Number of optimizer steps taken.
    s_i, s_f : float in [0, 1], ``s_i <= s_f``
        Initial and final sparsity.
    t0 : int >= 0
        Step of the first pruning event (it sets the sparsity to ``s_i``).
    n : int >= 1
        Number of pruning intervals (``n + 1`` pruning events).
    dt : int >= 1
        Optimizer steps between two pruning events.

    Returns
    -------
    float
        :math:`s_t`; for ``t < t0`` (the schedule has not started) 0.0, the sparsity of an
        unpruned model.

    Examples
    --------
    >>> agp_sparsity(0, 0.0, 0.9, 0, 10, 100), agp_sparsity(1000, 0.0, 0.9, 0, 10, 100)
    (0.0, 0.9)
    >>> round(agp_sparsity(500, 0.0, 0.9, 0, 10, 100), 4)  # 0.9 * (1 - 0.5**3)
    0.7875
    """
    t = check_int(t, "t", minimum=0)
    s_i = _check_sparsity(s_i, "s_i")
    s_f = _check_sparsity(s_f, "s_f")
    if s_i > s_f:
        raise ValueError(f"s_i: expected s_i <= s_f (sparsity only grows), got s_i={s_i} > "
                         f"s_f={s_f}")
    t0 = check_int(t0, "t0", minimum=0)
    n = check_int(n, "n", minimum=1)
    dt = check_int(dt, "dt", minimum=1)
    if t < t0:
        return 0.0
    k = min(n, (t - t0) // dt)  # pruning events after the first one so far
    if k == n:
        return s_f  # exactly, not up to float rounding
    return s_f + (s_i - s_f) * (1.0 - k / n) ** 3


def iterative_sparsities(target, rounds) -> list[float]:
    r"""Sparsity after each round of iterative pruning with a constant per-round fraction.

    Pruning the fraction :math:`p = 1 - (1 - s)^{1/k}` of the *remaining* weights in each of
    ``k`` rounds leaves :math:`(1 - p)^j` after round ``j``, i.e. sparsity

    .. math:: s_j = 1 - (1 - s)^{j/k}, \qquad j = 1, \dots, k,

    with :math:`s_k = s` exactly. The schedules prune to these totals (``relative_to="total"``)
    rather than ``p`` of the remaining units, so that rounding never accumulates: after round
    ``j`` exactly ``round(s_j * n)`` units are pruned.

    Parameters
    ----------
    target : float in [0, 1]
        Final sparsity ``s``.
    rounds : int >= 1
        Number of rounds ``k``.

    Returns
    -------
    list of float, length ``rounds``, non-decreasing, last entry ``== target``.

    Examples
    --------
    >>> [round(s, 4) for s in iterative_sparsities(0.75, 2)]  # half of what remains, twice
    [0.5, 0.75]
    """
    target = _check_sparsity(target, "target")
    rounds = check_int(rounds, "rounds", minimum=1)
    out = [1.0 - (1.0 - target) ** (j / rounds) for j in range(1, rounds)]
    return [min(s, target) for s in out] + [target]


def han_threshold_mask(w, quality, current_mask=None) -> np.ndarray:
    r"""Han et al.'s threshold rule: prune the weights with :math:`|w| < q \cdot \sigma`.

    "The pruning threshold is chosen as a quality parameter multiplied by the standard deviation
    of a layer's weights" (Han et al. 2015, Section 4). Here :math:`\sigma` is the (population)
    standard deviation of the weights still kept by ``current_mask`` (all weights without it),
    so that zeros left by earlier rounds do not shrink the threshold.

    Parameters
    ----------
    w : ndarray, float32/float64, any shape
        One layer's weight (never modified).
    quality : float >= 0
        The quality parameter ``q``.
    current_mask : ndarray of bool, shape of ``w``, optional
        Weights already pruned (False) stay pruned.

    Returns
    -------
    ndarray of bool, shape of ``w`` -- True = kept: ``current_mask & (|w| >= q * sigma)``.
    """
    if not isinstance(w, np.ndarray) or w.dtype not in (np.float32, np.float64):
        got = w.dtype if isinstance(w, np.ndarray) else type(w).__name__
        raise TypeError(f"w: expected a float32/float64 ndarray, got {got}")
    if not np.isfinite(w).all():
        raise ValueError("w: expected finite values, found NaN or infinity")
    if isinstance(quality, (bool, np.bool_)) or not isinstance(quality, numbers.Real):
        raise TypeError(f"quality: expected a number >= 0, got {quality!r}")
    if not float(quality) >= 0.0:
        raise ValueError(f"quality: expected a number >= 0, got {quality}")
    alive = np.ones(w.shape, dtype=bool) if current_mask is None else current_mask
    if current_mask is not None and (not isinstance(current_mask, np.ndarray)
                                     or current_mask.dtype != np.bool_
                                     or current_mask.shape != w.shape):
        raise TypeError(f"current_mask: expected a boolean ndarray of shape {w.shape}, got "
                        f"{getattr(current_mask, 'dtype', type(current_mask).__name__)} "
                        f"{getattr(current_mask, 'shape', '')}")
    if not alive.any():
        return alive.copy()
    sigma = float(np.std(w[alive], dtype=np.float64))
    return alive & (np.abs(w) >= float(quality) * sigma)


# --------------------------------------------------------------------------- helpers
def default_targets(model: Sequential) -> list[str]:
    """Names of every weight matrix / kernel of ``model`` (Linear and Conv2d ``.weight``)."""
    return [k for k, v in model.params.items() if k.endswith(".weight") and v.ndim >= 2]


def sparsity(model: Sequential, names) -> dict[str, float]:
    """Fraction of pruned weights per name (from ``model.masks``; 0.0 for an unmasked name)."""
    out = {}
    for k in names:
        m = model.masks.get(k)
        out[k] = 0.0 if m is None else 1.0 - np.count_nonzero(m) / m.size
    return out


class PruningSchedule(Callback):
    """Base class: prunes ``targets`` of the trained model with the pruning core.

    Parameters
    ----------
    targets : list of str, optional
        Weight (or layer) names to prune; default :func:`default_targets` (every Linear and
        Conv2d weight).
    criterion, granularity, global_ranking, p, vector_size
        As in :func:`~tinyprune.prune.model_pruning.prune_model`.
    rng : numpy.random.Generator or int, optional
        For the "random" and "cluster" criteria; an int seed is turned into one generator when
        training starts, so successive pruning events draw different numbers.

    Attributes
    ----------
    log : list of dict
        One entry per pruning event: ``{"step", "epoch", "target", "sparsity"}`` where
        ``target`` is the requested sparsity (None for a threshold) and ``sparsity`` the measured
        fraction of pruned weights per target name.
    """

    def __init__(self, *, targets=None, criterion="l1", granularity="element",
                 global_ranking=False, p=None, rng=None, vector_size=None):
        if targets is not None:
            targets = [targets] if isinstance(targets, str) else list(targets)
            if not targets or not all(isinstance(t, str) for t in targets):
                raise TypeError(f"targets: expected a non-empty list of weight names or None, "
                                f"got {targets!r}")
        self.targets = targets
        self.prune_kwargs = {"criterion": criterion, "granularity": granularity,
                             "global_ranking": global_ranking, "p": p,
                             "vector_size": vector_size}
        self._rng_arg = rng
        self.log: list[dict] = []

    def on_train_begin(self, state):
        names = default_targets(state.model) if self.targets is None else self.targets
        self._names = [n if n in state.model.params else f"{n}.weight" for n in names]
        self._rng = None if self._rng_arg is None else as_generator(self._rng_arg)

    def prune_to(self, state, target):
        """Grow the masks so that each target (or all together) has sparsity ``target``."""
        masks = prune_model(state.model, self._names, target, relative_to="total", rng=self._rng,
                            **self.prune_kwargs)
        self._apply(state, masks, target)

    def _apply(self, state, masks, target):
        set_masks_(state.model, masks)
        self.log.append({"step": state.step, "epoch": state.epoch, "target": target,
                         "sparsity": sparsity(state.model, self._names)})


class OneShot(PruningSchedule):
    """Prune once to ``amount`` when training starts, then fine-tune with the masks enforced.

    Parameters
    ----------
    amount : float in [0, 1]
        Sparsity of each target layer (of all targets together with ``global_ranking``):
        ``round(amount * n)`` units pruned in total.
    **kwargs
        As in :class:`PruningSchedule`.

    Examples
    --------
    >>> from tinyprune.nn import lenet_300_100
    >>> from tinyprune.nn.optim import SGD
    >>> from tinyprune.nn.train import fit
    >>> model = lenet_300_100(seed=0)
    >>> x = np.zeros((8, 1, 28, 28), np.float32); y = np.zeros(8, np.int64)
    >>> _ = fit(model, x, y, optimizer=SGD(model.params, lr=0.1), rng=0, progress=False,
    ...         callbacks=[OneShot(0.9)])
    >>> round(float(1 - model.masks["fc1.weight"].mean()), 3)
    0.9
    """

    def __init__(self, amount, **kwargs):
        super().__init__(**kwargs)
        self.amount = _check_sparsity(amount, "amount")

    def on_train_begin(self, state):
        super().on_train_begin(state)
        self.prune_to(state, self.amount)


class Iterative(PruningSchedule):
    r"""Iterative pruning (Han et al. 2015): ``rounds`` of prune, then retrain.

    Round ``j`` (0-based) prunes at the start of epoch ``j * epochs_per_round``; the epochs up to
    the next round retrain the survivors. Train the dense model first (Han's first step), then
    ``fit(..., epochs=rounds * epochs_per_round, callbacks=[Iterative(...)])``.

    Parameters
    ----------
    target : float in [0, 1], optional
        Final sparsity; round ``j`` prunes to :func:`iterative_sparsities` ``(target, rounds)[j]``,
        i.e. the same fraction :math:`1 - (1 - s)^{1/k}` of the remaining weights each round.
    rounds : int >= 1
    epochs_per_round : int >= 1
    quality : float >= 0 or dict[str, float], optional
        Han's threshold option instead of ``target``: each round prunes the weights with
        :math:`|w| < q \cdot \sigma` (:func:`han_threshold_mask`), with ``q`` per layer from a
        dict (keyed by weight name) or the same for all. Element granularity only.
    **kwargs
        As in :class:`PruningSchedule`.
    """

    def __init__(self, target=None, *, rounds, epochs_per_round=1, quality=None, **kwargs):
        super().__init__(**kwargs)
        if (target is None) == (quality is None):
            raise ValueError(f"target/quality: give exactly one of a target sparsity or Han's "
                             f"quality parameter, got target={target!r}, quality={quality!r}")
        self.rounds = check_int(rounds, "rounds", minimum=1)
        self.epochs_per_round = check_int(epochs_per_round, "epochs_per_round", minimum=1)
        self.target = None if target is None else _check_sparsity(target, "target")
        self.schedule = None if target is None else iterative_sparsities(self.target, self.rounds)
        if quality is not None:
            if self.prune_kwargs["granularity"] != "element":
                raise ValueError(f"granularity: Han's threshold prunes single weights; expected "
                                 f"'element', got {self.prune_kwargs['granularity']!r}")
            qs = quality.values() if isinstance(quality, dict) else [quality]
            for q in qs:
                if isinstance(q, (bool, np.bool_)) or not isinstance(q, numbers.Real) \
                        or not float(q) >= 0.0:
                    raise ValueError(f"quality: expected numbers >= 0, got {quality!r}")
        self.quality = quality

    def on_epoch_begin(self, state):
        j, r = divmod(state.epoch, self.epochs_per_round)
        if r != 0 or j >= self.rounds:
            return
        if self.schedule is not None:
            self.prune_to(state, self.schedule[j])
            return
        model, masks = state.model, {}
        for name in self._names:
            q = self.quality.get(name) if isinstance(self.quality, dict) else self.quality
            if q is None:
                continue
            masks[name] = han_threshold_mask(model.params[name], q, model.masks.get(name))
        self._apply(state, masks, None)


class AGP(PruningSchedule):
    r"""Automated gradual pruning (Zhu & Gupta 2017) as a training callback.

    After optimizer step :math:`t \in \{t_0, t_0 + \Delta t, \dots, t_0 + n\Delta t\}` (counting the
    steps of this :func:`~tinyprune.nn.train.fit` call; :math:`t = 0` means when training
    starts) the masks grow to sparsity :func:`agp_sparsity` ``(t, s_i, s_f, t0, n, dt)``; the
    steps in between train the survivors, which recover from the pruning. So after every step
    ``t >= t0`` each target layer has exactly ``round(agp_sparsity(t, ...) * n_units)`` units
    pruned.

    Parameters
    ----------
    final_sparsity : float in [0, 1]
        :math:`s_f`.
    n : int >= 1
        Number of pruning intervals.
    dt : int >= 1
        Optimizer steps between pruning events (:math:`\Delta t`).
    t0 : int >= 0
        Step of the first pruning event.
    initial_sparsity : float in [0, s_f]
        :math:`s_i` (0 in the paper's experiments).
    **kwargs
        As in :class:`PruningSchedule`.
    """

    def __init__(self, final_sparsity, *, n, dt, t0=0, initial_sparsity=0.0, **kwargs):
        super().__init__(**kwargs)
        self.s_f = _check_sparsity(final_sparsity, "final_sparsity")
        self.s_i = _check_sparsity(initial_sparsity, "initial_sparsity")
        if self.s_i > self.s_f:
            raise ValueError(f"initial_sparsity: expected <= final_sparsity={self.s_f}, "
                             f"got {self.s_i}")
        self.n = check_int(n, "n", minimum=1)
        self.dt = check_int(dt, "dt", minimum=1)
        self.t0 = check_int(t0, "t0", minimum=0)

    def sparsity_at(self, t) -> float:
        """:func:`agp_sparsity` with this schedule's parameters."""
        return agp_sparsity(t, self.s_i, self.s_f, self.t0, self.n, self.dt)

    def is_pruning_step(self, t) -> bool:
        """True when ``t`` is one of :math:`t_0, t_0 + \\Delta t, \\dots, t_0 + n\\Delta t`."""
        return t >= self.t0 and (t - self.t0) % self.dt == 0 and (t - self.t0) // self.dt <= self.n

    def on_train_begin(self, state):
        super().on_train_begin(state)
        self._maybe_prune(state)

    def on_step_end(self, state):
        self._maybe_prune(state)

    def _maybe_prune(self, state):
        if self.is_pruning_step(state.step):
            self.prune_to(state, self.sparsity_at(state.step))
