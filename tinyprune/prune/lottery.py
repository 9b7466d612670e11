r"""The lottery ticket hypothesis: iterative magnitude pruning with reset (or rewind).

Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks"
(ICLR 2019, arXiv:1803.03635): a randomly initialised dense network contains a subnetwork (a
*winning ticket*) that, trained in isolation **from the same initial weights**, reaches the
accuracy of the full network. It is found by iterative magnitude pruning (IMP):

1. initialise :math:`\theta_0`, train to :math:`\theta_T`;
2. prune :math:`p\%` of the *remaining* weights of each layer, lowest :math:`|\theta_T|` first
   (:func:`imp_rates`: 20% for fully connected, 10% for conv layers, half the rate for the output
   layer; :func:`imp_prune_masks`);
3. **reset** the survivors to :math:`\theta_0` (:func:`reset_weights_`) and retrain; repeat.

Rewinding (Frankle, Dziugaite, Roy & Carbin, "Stabilizing the Lottery Ticket Hypothesis" /
"Linear Mode Connectivity and the Lottery Ticket Hypothesis", 2019): reset to the weights
:math:`\theta_k` after ``k`` iterations of the first training instead of :math:`\theta_0`.

Controls: the same masks with a fresh random initialisation ("reinit"), and random masks with the
same per-layer sparsity (:func:`random_masks_like`) from :math:`\theta_0` ("random"). Per round
:func:`lottery_ticket` records the fraction of weights remaining, the test accuracy at the
early-stopping iteration (the iteration of best *validation* accuracy), that iteration, and the
Jaccard overlap of the kept weights with the previous round's (:func:`mask_jaccard`).

All masks live in ``model.masks`` (applied with :func:`~tinyprune.prune.masked.set_masks_`); the
training loop keeps pruned weights at exactly 0.0.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from ..nn.model import Sequential
from ..nn.optim import Adam
from ..nn.train import Callback, evaluate, fit
from ..nn.validation import as_generator, check_int
from .masked import set_masks_
from .select import prune_weight

__all__ = ["LotteryResult", "imp_prune_masks", "imp_rates", "lottery_ticket", "mask_jaccard",
           "random_masks_like", "reset_weights_"]


def _weight_names(model):
    return [k for k, v in model.params.items() if k.endswith(".weight") and v.ndim >= 2]


def _check_rate(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: expected a fraction in [0, 1], got {value!r}")
    return float(value)


def imp_rates(model: Sequential, *, fc_rate=0.2, conv_rate=0.1, output_rate=None,
              targets=None) -> dict[str, float]:
    """Per-layer pruning rate of one IMP round (fraction of the *remaining* weights).

    Frankle & Carbin (2018) prune 20% per round in fully connected layers, 10% in conv layers,
    and half the rate in the output layer (the last weight of the model).

    Parameters
    ----------
    model : Sequential
    fc_rate, conv_rate : float in [0, 1]
        Rates of Linear ``(out, in)`` and Conv2d ``(C_out, C_in, KH, KW)`` weights.
    output_rate : float in [0, 1], optional
        Rate of the output layer; default half of its type's rate.
    targets : list of str, optional
        Weight names to prune; default every Linear/Conv2d weight.

    Returns
    -------
    dict[str, float] -- weight name -> rate.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    fc_rate, conv_rate = _check_rate(fc_rate, "fc_rate"), _check_rate(conv_rate, "conv_rate")
    weights = _weight_names(model)
    names = weights if targets is None else [t if t in model.params else f"{t}.weight"
                                             for t in targets]
    bad = [n for n in names if n not in weights]
    if bad or not names:
        raise ValueError(f"targets: expected weight names among {weights}, got {targets!r}")
    rates = {n: conv_rate if model.params[n].ndim == 4 else fc_rate for n in names}
    out_name = weights[-1]
    if out_name in rates:
        rates[out_name] = rates[out_name] / 2 if output_rate is None else \
            _check_rate(output_rate, "output_rate")
    return rates


def imp_prune_masks(weights, rates, current_masks=None) -> dict[str, np.ndarray]:
    r"""One IMP round: per layer, prune the fraction ``rates[name]`` of the remaining weights
    with the smallest magnitude :math:`|w|`.

    Exactly ``round(rate * n_remaining)`` more weights are pruned per layer (the pruning core's
    rule, ties to the lower flat index), so after round ``j`` a layer of ``n`` weights has
    :math:`n_j = n_{j-1} + \mathrm{round}(p (n - n_{j-1}))` pruned weights. Masks only grow.

    Parameters
    ----------
    weights : dict[str, ndarray]
        Trained weights (never modified).
    rates : dict[str, float]
        Name -> rate (:func:`imp_rates`); only these names are pruned.
    current_masks : dict[str, ndarray of bool], optional
        Previous round's masks (True = kept).

    Returns
    -------
    dict[str, ndarray of bool] -- a new mask per name in ``rates``.
    """
    if not isinstance(rates, dict) or not rates:
        raise TypeError(f"rates: expected a non-empty dict name -> rate, got {rates!r}")
    current_masks = {} if current_masks is None else current_masks
    out = {}
    for name, rate in rates.items():
        if name not in weights:
            raise ValueError(f"rates: {name!r} is not in weights {list(weights)}")
        out[name] = prune_weight(weights[name], _check_rate(rate, f"rates[{name!r}]"),
                                 criterion="magnitude", current_mask=current_masks.get(name),
                                 relative_to="remaining")
    return out


def reset_weights_(model: Sequential, theta: dict, masks: dict | None = None) -> None:
    r"""Reset every parameter of ``model`` to ``theta`` and apply ``masks``, in place.

    :math:`W \leftarrow \theta \odot M`: the survivors get exactly their values in ``theta``
    (:math:`\theta_0` for a reset, :math:`\theta_k` for a rewind), pruned weights 0.0; biases and
    unpruned layers get ``theta`` too. ``masks`` (default: keep ``model.masks``) replace the
    model's masks.
    """
    params = model.params
    missing = set(params) - set(theta)
    if missing:
        raise ValueError(f"theta: missing parameters {sorted(missing)}")
    for k, p in params.items():
        if theta[k].shape != p.shape:
            raise ValueError(f"theta[{k!r}]: expected shape {p.shape}, got {theta[k].shape}")
        p[...] = theta[k]
    if masks is not None:
        model.masks = {}
        set_masks_(model, masks)
    else:
        set_masks_(model, dict(model.masks))


def random_masks_like(masks: dict, rng) -> dict[str, np.ndarray]:
    """Uniformly random masks with exactly the same number of kept weights per layer.

    Parameters
    ----------
    masks : dict[str, ndarray of bool]
    rng : numpy.random.Generator or int

    Returns
    -------
    dict[str, ndarray of bool] -- same keys and shapes, same ``count_nonzero`` per key.
    """
    rng = as_generator(rng)
    out = {}
    for name, m in masks.items():
        if not isinstance(m, np.ndarray) or m.dtype != np.bool_:
            raise TypeError(f"masks[{name!r}]: expected a boolean ndarray")
        keep = np.zeros(m.size, dtype=bool)
        keep[rng.permutation(m.size)[: int(np.count_nonzero(m))]] = True
        out[name] = keep.reshape(m.shape)
    return out


def mask_jaccard(a: dict, b: dict) -> float:
    r"""Jaccard overlap of the kept weights of two mask dicts (all layers together).

    .. math:: J(A, B) = \frac{|A \cap B|}{|A \cup B|}

    A name missing from one dict counts as all kept there. 1.0 when both keep nothing.
    """
    inter = union = 0
    for name in set(a) | set(b):
        ma, mb = a.get(name), b.get(name)
        shape = (ma if ma is not None else mb).shape
        ma = np.ones(shape, dtype=bool) if ma is None else ma
        mb = np.ones(shape, dtype=bool) if mb is None else mb
        inter += int(np.count_nonzero(ma & mb))
        union += int(np.count_nonzero(ma | mb))
    return 1.0 if union == 0 else inter / union


class _ValidationTracker(Callback):
    """Evaluates validation accuracy every ``every`` steps (and at the end), keeps the best
    iteration and a copy of the weights there; optionally snapshots the weights at step ``k``."""

    def __init__(self, X_val, y_val, every, snapshot_at=None):
        self.X_val, self.y_val, self.every = X_val, y_val, every
        self.snapshot_at, self.snapshot = snapshot_at, None
        self.best_acc, self.best_iter, self.best_params = -1.0, 0, None

    def _eval(self, state):
        acc = evaluate(state.model, self.X_val, self.y_val)["accuracy"]
        if acc > self.best_acc:
            self.best_acc, self.best_iter = acc, state.step
            self.best_params = {k: v.copy() for k, v in state.model.params.items()}

    def on_train_begin(self, state):
        if self.snapshot_at == 0:
            self.snapshot = {k: v.copy() for k, v in state.model.params.items()}

    def on_step_end(self, state):
        if self.snapshot_at is not None and state.step == self.snapshot_at:
            self.snapshot = {k: v.copy() for k, v in state.model.params.items()}
        if state.step % self.every == 0:
            self._eval(state)

    def on_train_end(self, state):
        if state.step % self.every != 0 or state.step == 0:
            self._eval(state)


@dataclass
class LotteryResult:
    """Per-round records of :func:`lottery_ticket` (``rounds[0]`` is the dense network).

    Each record: ``round``, ``remaining`` (fraction of the pruned layers' weights kept),
    ``test_accuracy`` (at the early-stopping iteration), ``final_test_accuracy``,
    ``early_stop_iteration``, ``val_accuracy`` (best), ``jaccard`` (kept-weight overlap with the
    previous round, the dense network for round 1; None for round 0), ``kept`` (weights kept
    per layer) and, for pruned rounds, ``reinit_test_accuracy`` and
    ``random_test_accuracy`` (controls; each with its ``*_early_stop_iteration`` and
    ``*_kept``). ``theta_reset`` holds the weights every round resets to (:math:`\theta_k`).
    """

    rounds: list = field(default_factory=list)
    rates: dict = field(default_factory=dict)
    rewind_iter: int = 0
    settings: dict = field(default_factory=dict)
    theta_reset: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {"rounds": self.rounds, "rates": self.rates, "rewind_iter": self.rewind_iter,
                "settings": self.settings}

    def format(self) -> str:
        """Text table, one row per round."""
        lines = [f"{'round':>5} {'remaining':>9} {'ticket':>7} {'iter':>6} {'reinit':>7} "
                 f"{'random':>7} {'jaccard':>7}"]
        for r in self.rounds:
            def f(v):
                return "" if v is None else f"{v:.4f}"
            lines.append(f"{r['round']:>5} {r['remaining']:>9.4f} {f(r['test_accuracy']):>7} "
                         f"{r['early_stop_iteration']:>6} {f(r.get('reinit_test_accuracy')):>7} "
                         f"{f(r.get('random_test_accuracy')):>7} {f(r['jaccard']):>7}")
        return "\n".join(lines)


def _train(model, data, epochs, batch_size, make_optimizer, seed, eval_every, snapshot_at,
           progress):
    X, y, X_val, y_val, X_test, y_test = data
    tracker = _ValidationTracker(X_val, y_val, eval_every, snapshot_at)
    fit(model, X, y, optimizer=make_optimizer(model.params), epochs=epochs,
        batch_size=batch_size, rng=seed, callbacks=[tracker], progress=progress)
    final = evaluate(model, X_test, y_test)["accuracy"]
    trained = {k: v.copy() for k, v in model.params.items()}
    for k, v in tracker.best_params.items():  # early stopping: the best validation iteration
        model.params[k][...] = v
    best = evaluate(model, X_test, y_test)["accuracy"]
    for k, v in trained.items():
        model.params[k][...] = v
    return {"test_accuracy": best, "final_test_accuracy": final,
            "early_stop_iteration": tracker.best_iter, "val_accuracy": tracker.best_acc,
            "snapshot": tracker.snapshot}


def lottery_ticket(model, X_train, y_train, X_val, y_val, X_test, y_test, *, rounds, epochs,
                   batch_size=60, seed=0, make_optimizer=None, rates=None, rewind_iter=0,
                   controls=("reinit", "random"), eval_every=100, progress=False,
                   callback=None, on_round_start=None) -> LotteryResult:
    r"""Iterative magnitude pruning with reset (or rewind) and its controls.

    Round 0 trains ``model`` (a copy; the caller's model is not modified) from its weights
    :math:`\theta_0`. Each later round prunes :func:`imp_rates` of the remaining weights of the
    weights trained in the previous round (:func:`imp_prune_masks`), resets the survivors to
    :math:`\theta_k` (``k = rewind_iter``; :math:`\theta_0` by default, :func:`reset_weights_`)
    and trains again for ``epochs``. With the same masks the controls train from a fresh
    random initialisation (``"reinit"``) and random masks of the same per-layer sparsity from
    :math:`\theta_0` (``"random"``).

    Parameters
    ----------
    model : Sequential
        Untrained network; its weights are :math:`\theta_0`.
    X_train, y_train, X_val, y_val, X_test, y_test : ndarray
        Training data, a validation split carved from the training data (early stopping), and
        the test set (reported only).
    rounds : int >= 0
        Pruning rounds after the dense training.
    epochs : int >= 1
        Epochs of every training run.
    batch_size : int
        60 in the paper's LeNet experiments.
    seed : int
        Seeds the data order (the same in every round and control, so they differ only in
        masks and initial weights), the reinit control's initialisation and the random masks.
    make_optimizer : callable params -> Optimizer, optional
        Default Adam with lr 1.2e-3 (the paper's LeNet setting); a fresh one per training run.
    rates : dict[str, float], optional
        Per-layer rates; default :func:`imp_rates` (model).
    rewind_iter : int >= 0
        Reset to the weights after this many iterations of the dense training (0 = reset to
        :math:`\theta_0`); must be at most that training's number of steps.
    controls : tuple of {"reinit", "random"}
    eval_every : int
        Validation accuracy is measured every this many iterations (and at the end).
    progress : bool
        tqdm bars of the training loops.
    callback : callable(dict), optional
        Called with each round's record as soon as it is complete.
    on_round_start : callable(int, Sequential), optional
        Called with the round number and the ticket network right after its reset, before it
        trains (for inspection).

    Returns
    -------
    LotteryResult
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    rounds = check_int(rounds, "rounds", minimum=0)
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    rewind_iter = check_int(rewind_iter, "rewind_iter", minimum=0)
    eval_every = check_int(eval_every, "eval_every", minimum=1)
    steps = epochs * -(-X_train.shape[0] // batch_size)
    if rewind_iter > steps:
        raise ValueError(f"rewind_iter: expected at most the {steps} iterations of one "
                         f"training run, got {rewind_iter}")
    controls = tuple(controls)
    bad = [c for c in controls if c not in ("reinit", "random")]
    if bad:
        raise ValueError(f"controls: expected a subset of ('reinit', 'random'), got {controls}")
    if make_optimizer is None:
        def make_optimizer(params):
            return Adam(params, lr=1.2e-3)
    rates = imp_rates(model) if rates is None else rates
    data = (X_train, y_train, X_val, y_val, X_test, y_test)
    net = model.copy()
    theta0 = {k: v.copy() for k, v in net.params.items()}
    n_total = sum(net.params[k].size for k in rates)
    result = LotteryResult(rates=dict(rates), rewind_iter=rewind_iter,
                           settings={"epochs": epochs, "batch_size": batch_size, "seed": seed,
                                     "eval_every": eval_every, "controls": list(controls)})
    rec = _train(net, data, epochs, batch_size, make_optimizer, seed, eval_every, rewind_iter,
                 progress)
    theta_k = rec.pop("snapshot")
    result.theta_reset = theta_k
    record = {"round": 0, "remaining": 1.0, "jaccard": None, **rec}
    result.rounds.append(record)
    if callback is not None:
        callback(record)
    masks: dict = {}
    ctrl_rng = np.random.default_rng(seed)
    for j in range(1, rounds + 1):
        new = imp_prune_masks(net.params, rates, masks)
        jac = mask_jaccard(new, masks)  # round 1: against the dense network (all kept)
        masks = new
        reset_weights_(net, theta_k, masks)
        if on_round_start is not None:
            on_round_start(j, net)
        rec = _train(net, data, epochs, batch_size, make_optimizer, seed, eval_every, None,
                     progress)
        rec.pop("snapshot")
        kept = sum(int(np.count_nonzero(masks[k])) for k in rates)
        record = {"round": j, "remaining": kept / n_total, "jaccard": jac,
                  "kept": {k: int(np.count_nonzero(masks[k])) for k in rates}, **rec}
        for c in controls:
            ctrl = Sequential.from_spec(net.spec(), seed=int(ctrl_rng.integers(2**31)))
            if c == "random":
                reset_weights_(ctrl, theta0, random_masks_like(masks, ctrl_rng))
            else:
                set_masks_(ctrl, masks)
            record[f"{c}_kept"] = {k: int(np.count_nonzero(ctrl.masks[k])) for k in rates}
            r = _train(ctrl, data, epochs, batch_size, make_optimizer, seed, eval_every, None,
                       progress)
            record[f"{c}_test_accuracy"] = r["test_accuracy"]
            record[f"{c}_early_stop_iteration"] = r["early_stop_iteration"]
        result.rounds.append(record)
        if callback is not None:
            callback(record)
    return result
