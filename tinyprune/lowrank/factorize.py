r"""Replace a Linear or Conv2d layer by two thinner layers: its truncated SVD.

Linear, weight :math:`W` (out, in), bias :math:`b`:

.. math::

    y = x W^T + b \;\approx\; x W_r^T + b = (x A^T) B^T + b, \qquad
    A = \Sigma_r^{1/2} V_r^T \in \mathbb{R}^{r \times in}, \;
    B = U_r \Sigma_r^{1/2} \in \mathbb{R}^{out \times r}

becomes ``<name>_v = Linear(in, r, bias=False)`` with weight ``A`` followed by
``<name>_u = Linear(r, out)`` with weight ``B`` and the original bias: ``r (in + out)`` weights and
multiply-accumulates instead of ``in * out``.

Conv2d, weight (C_out, C_in, KH, KW) reshaped to :math:`W \in \mathbb{R}^{C_{out} \times C_{in}
KH KW}` (a row per output channel, the layout im2col multiplies with), becomes a KHxKW convolution
``<name>_v`` C_in -> r (same stride and padding, no bias; its filters are the rows of ``A``) and a
1x1 convolution ``<name>_u`` r -> C_out with weight ``B`` and the original bias. Each output pixel
is then :math:`B (A \,\text{patch}) + b = W_r \,\text{patch} + b`.

The two factors are ordinary :class:`~tinyprune.nn.layers.Linear` / ``Conv2d`` layers inside the
:class:`~tinyprune.nn.model.Sequential`, with PyTorch-style names (``fc1_v.weight``,
``fc1_u.weight``, ``fc1_u.bias``; ``_v`` computes :math:`V^T x`, ``_u`` multiplies by :math:`U`),
so a factorized model needs no new layer type: specs and checkpoints round-trip it unchanged, it
fine-tunes with :func:`~tinyprune.nn.train.fit`, and pruning masks and weight transforms
(quantization) apply to each factor like to any other layer.

Reference: J. Xue, J. Li and Y. Gong, "Restructuring of deep neural network acoustic models with
singular value decomposition", Interspeech 2013 (SVD of each weight, then fine-tuning);
E. Denton et al., "Exploiting linear structure within convolutional networks for efficient
evaluation", NeurIPS 2014 (the same for convolutions).
"""

from __future__ import annotations

import numbers

import numpy as np

from tinyprune.nn.layers import Conv2d, Linear, Module
from tinyprune.nn.model import Sequential
from tinyprune.nn.validation import check_int

from .svd import _check_energy, _check_rank, choose_rank, svd_factors

__all__ = [
    "FACTOR_SUFFIXES",
    "factorize_conv2d",
    "factorize_layer",
    "factorize_linear",
    "factorize_model",
    "factorized_layers",
    "weight_matrix",
]

#: Names of the two layers that replace layer ``name``: ``name + "_v"`` (first, ``in -> r``) and
#: ``name + "_u"`` (second, ``r -> out``, with the bias).
FACTOR_SUFFIXES = ("_v", "_u")

_RULES = ("rank", "energy", "reduction")


def weight_matrix(layer: Module) -> np.ndarray:
    """The layer's stored weight as the matrix the SVD factorizes (a view, never a copy).

    Parameters
    ----------
    layer : Linear or Conv2d

    Returns
    -------
    ndarray (out, in) for a Linear, (C_out, C_in KH KW) for a Conv2d; the weight's dtype
    """
    if type(layer) is Linear:
        return layer.params["weight"]  # (out, in)
    if type(layer) is Conv2d:
        w = layer.params["weight"]  # (C_out, C_in, KH, KW)
        return w.reshape(w.shape[0], -1)  # (C_out, C_in KH KW)
    raise TypeError(f"{getattr(layer, 'name', 'layer')}: only Linear and Conv2d layers can be "
                    f"factorized, got {type(layer).__name__}")


def factorize_linear(layer: Linear, rank: int) -> tuple[Linear, Linear]:
    """Two Linear layers computing ``x W_r^T + b`` for a Linear layer ``(W, b)``.

    Parameters
    ----------
    layer : Linear
        Weight (out, in), float32 or float64; not modified.
    rank : int in [1, min(out, in)]

    Returns
    -------
    first : Linear(in, rank, bias=False)
        Weight ``A = sqrt(S_r) V_r^T`` (rank, in).
    second : Linear(rank, out)
        Weight ``B = U_r sqrt(S_r)`` (out, rank) and a copy of the layer's bias (if any).
    """
    if type(layer) is not Linear:
        raise TypeError(f"factorize_linear: expected a Linear layer, got {type(layer).__name__}")
    w = layer.params["weight"]  # (out, in)
    rank = _check_rank(rank, w.shape, f"{layer.name}: rank")
    a, b = svd_factors(w, rank)  # (r, in), (out, r)
    first = Linear(layer.in_features, rank, bias=False, dtype=w.dtype)
    second = Linear(rank, layer.out_features, bias="bias" in layer.params, dtype=w.dtype)
    first.params["weight"][...] = a
    second.params["weight"][...] = b
    if "bias" in layer.params:
        second.params["bias"][...] = layer.params["bias"]
    return first, second


def factorize_conv2d(layer: Conv2d, rank: int) -> tuple[Conv2d, Conv2d]:
    """A KHxKW convolution ``C_in -> rank`` and a 1x1 convolution ``rank -> C_out`` computing the
    rank-``rank`` approximation of a Conv2d layer.

    Parameters
    ----------
    layer : Conv2d
        Weight (C_out, C_in, KH, KW), float32 or float64; not modified.
    rank : int in [1, min(C_out, C_in KH KW)]

    Returns
    -------
    first : Conv2d(C_in, rank, (KH, KW), stride, padding, bias=False)
        Weight ``A`` (rank, C_in KH KW) reshaped to (rank, C_in, KH, KW).
    second : Conv2d(rank, C_out, 1)
        Weight ``B`` (C_out, rank) reshaped to (C_out, rank, 1, 1), and the layer's bias.
    """
    if type(layer) is not Conv2d:
        raise TypeError(f"factorize_conv2d: expected a Conv2d layer, got {type(layer).__name__}")
    w = layer.params["weight"]  # (C_out, C_in, KH, KW)
    mat = weight_matrix(layer)  # (C_out, C_in KH KW)
    rank = _check_rank(rank, mat.shape, f"{layer.name}: rank")
    a, b = svd_factors(mat, rank)  # (r, C_in KH KW), (C_out, r)
    first = Conv2d(layer.in_channels, rank, layer.kernel_size, layer.stride, layer.padding,
                   bias=False, dtype=w.dtype)
    second = Conv2d(rank, layer.out_channels, 1, bias="bias" in layer.params, dtype=w.dtype)
    first.params["weight"][...] = a.reshape(rank, *w.shape[1:])  # (r, C_in, KH, KW)
    second.params["weight"][...] = b.reshape(w.shape[0], rank, 1, 1)  # (C_out, r, 1, 1)
    if "bias" in layer.params:
        second.params["bias"][...] = layer.params["bias"]
    return first, second


def factorize_layer(layer: Module, *, rank=None, energy=None, reduction=None):
    """Factorize a Linear or Conv2d layer with the rank chosen by one rule.

    Parameters
    ----------
    layer : Linear or Conv2d
    rank, energy, reduction
        Exactly one; see :func:`tinyprune.lowrank.svd.choose_rank`.

    Returns
    -------
    first, second : Module
        As :func:`factorize_linear` / :func:`factorize_conv2d`.
    rank : int
        The rank used.
    """
    mat = weight_matrix(layer)
    try:
        r = choose_rank(mat, rank=rank, energy=energy, reduction=reduction)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{layer.name}: {exc}") from None
    if type(layer) is Linear:
        return (*factorize_linear(layer, r), r)
    return (*factorize_conv2d(layer, r), r)


def _check_shared_rule(rule):
    """Reject a bad shared rule up front (a layer-specific failure is checked per layer)."""
    (key, value), = rule.items()
    if key == "rank":
        check_int(value, "rank", minimum=1)
    elif key == "energy":
        _check_energy(value)
    else:  # a reduction must lie in (0, 1) whatever the layer
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"reduction: expected a number in (0, 1), got {value!r}")
        if not 0.0 < float(value) < 1.0:
            raise ValueError(f"reduction: expected a fraction in (0, 1), got {value}")


def _normalize_rule(rule, where):
    """An int rank or a dict with exactly one of rank / energy / reduction -> that dict."""
    if isinstance(rule, dict):
        unknown = set(rule) - set(_RULES)
        if unknown or len(rule) != 1:
            raise ValueError(f"{where}: expected a dict with exactly one of {list(_RULES)}, "
                             f"got {rule!r}")
        return dict(rule)
    if isinstance(rule, (int, np.integer)) and not isinstance(rule, bool):
        return {"rank": int(rule)}
    raise TypeError(f"{where}: expected an int rank or a dict like {{'energy': 0.9}}, got {rule!r}")


def factorize_model(model: Sequential, layers=None, *, rank=None, energy=None,
                    reduction=None) -> Sequential:
    """A copy of ``model`` with chosen Linear / Conv2d layers replaced by their SVD factors.

    Parameters
    ----------
    model : Sequential
        Not modified.
    layers : dict, list of str, or None
        * ``{"fc1": rule, ...}``: a rule per layer, either an int rank or a dict with exactly one
          of ``"rank"``, ``"energy"``, ``"reduction"`` (``{"fc1": {"energy": 0.9}}``);
        * a list of layer names: each gets the keyword rule below;
        * ``None``: every Linear and Conv2d layer gets the keyword rule, and a layer the rule
          cannot shrink (its rank would hold at least as many weights as the dense layer, a rank
          above ``min(m, n)``, or an unreachable reduction) stays dense.
    rank, energy, reduction
        The shared rule for a list or ``None`` (exactly one); must be absent with a dict.

    Returns
    -------
    Sequential
        Layer ``name`` replaced by ``name_v`` then ``name_u`` (see :data:`FACTOR_SUFFIXES`),
        every other layer, parameter, mask, buffer and weight transform copied. Masks and weight
        transforms of a factorized layer are not carried over: its factors are dense and new (a
        pruned layer is factorized as its stored, already zeroed, weight).

    Raises
    ------
    ValueError
        An unknown layer name, a layer that is not Linear/Conv2d, a factor name already in use,
        a bad rule (rank 0 or above ``min(m, n)``, energy outside (0, 1], reduction outside
        (0, 1) or unreachable).
    TypeError
        ``model`` is not a Sequential, or a rule of the wrong type.

    Examples
    --------
    >>> from tinyprune.nn import lecture_net
    >>> small = factorize_model(lecture_net(), {"fc1": {"reduction": 0.8}})
    >>> small["fc1_v"].params["weight"].shape, small["fc1_u"].params["weight"].shape
    ((25, 9216), (128, 25))
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    keywords = {k: v for k, v in (("rank", rank), ("energy", energy), ("reduction", reduction))
                if v is not None}
    skip_unshrinkable = layers is None
    if isinstance(layers, dict):
        if keywords:
            raise ValueError(f"layers: a dict of per-layer rules takes no shared rule, got "
                             f"{sorted(keywords)} as well")
        rules = {name: _normalize_rule(rule, f"layers[{name!r}]") for name, rule in layers.items()}
    else:
        if len(keywords) != 1:
            raise ValueError(f"factorize_model: give exactly one of rank, energy, reduction for "
                             f"{'all layers' if layers is None else 'the listed layers'}; got "
                             f"{sorted(keywords) or 'none'}")
        if layers is None:
            names = [n for n, layer in model.layers.items() if type(layer) in (Linear, Conv2d)]
        elif isinstance(layers, (list, tuple)):
            names = list(layers)
        else:
            raise TypeError(f"layers: expected a dict, a list of layer names or None, got "
                            f"{type(layers).__name__}")
        _check_shared_rule(keywords)
        rules = {name: dict(keywords) for name in names}

    for name in rules:
        if not isinstance(name, str) or name not in model.layers:
            raise ValueError(f"layers: no layer named {name!r}; layers: {list(model.layers)}")
        if type(model.layers[name]) not in (Linear, Conv2d):
            raise ValueError(f"layers: {name!r} is a {type(model.layers[name]).__name__}; only "
                             f"Linear and Conv2d layers can be factorized")
        for suffix in FACTOR_SUFFIXES:
            if name + suffix in model.layers:
                raise ValueError(f"layers: cannot factorize {name!r}: the model already has a "
                                 f"layer named {name + suffix!r}")

    src = model.copy()  # the caller's model is never touched
    new_layers = []
    replaced = set()
    for name, layer in src.layers.items():
        if name not in rules:
            new_layers.append((name, layer))
            continue
        try:
            first, second, r = factorize_layer(layer, **rules[name])
        except ValueError:
            if skip_unshrinkable:
                new_layers.append((name, layer))
                continue
            raise
        m, n = weight_matrix(layer).shape
        if skip_unshrinkable and r * (m + n) >= m * n:
            new_layers.append((name, layer))
            continue
        new_layers += [(name + FACTOR_SUFFIXES[0], first), (name + FACTOR_SUFFIXES[1], second)]
        replaced.add(name)

    out = Sequential(new_layers, input_shape=src.input_shape, name=src.name)
    out.masks = {k: v for k, v in src.masks.items() if k.partition(".")[0] not in replaced}
    out.buffers = {k: v for k, v in src.buffers.items() if k.partition(".")[0] not in replaced}
    return out


def factorized_layers(model: Sequential) -> dict[str, int]:
    """The factorized layers of ``model`` and their ranks: ``{"fc1": 25}`` for a model holding
    ``fc1_v`` directly followed by ``fc1_u`` (as :func:`factorize_model` builds them)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    names = list(model.layers)
    found = {}
    for first, second in zip(names, names[1:], strict=False):
        base = first[: -len(FACTOR_SUFFIXES[0])]
        if (first.endswith(FACTOR_SUFFIXES[0]) and base and second == base + FACTOR_SUFFIXES[1]
                and type(model.layers[first]) is type(model.layers[second])
                and type(model.layers[first]) in (Linear, Conv2d)):
            found[base] = int(model.layers[first].params["weight"].shape[0])
    return found
