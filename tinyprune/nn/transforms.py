r"""Weight transforms: a layer computes with ``W_eff = transform(W)`` instead of its stored ``W``.

This is the engine hook for the techniques that change how a weight is *represented* while the
network trains:

* fake quantization (quantization-aware training, Jacob et al. 2018): ``W_eff`` is ``W`` rounded
  to the quantization grid, and the straight-through estimator passes the gradient through the
  rounding;
* weight sharing (Han et al., "Deep Compression", 2016): ``W_eff`` holds each weight's cluster
  centroid, and each centroid's gradient is the sum of its cluster's gradients.

A transform is a forward/backward pair, like a layer::

    w_eff, cache = transform.forward(w)         # same shape and dtype as w
    dw = transform.backward(dw_eff, cache)      # dL/dW from dL/dW_eff

so a layer's forward uses ``w_eff`` and its backward maps the gradient that the kernel computed
for ``w_eff`` back to the stored parameter, which the optimizer then updates. For the chain rule
``dw = J^T dw_eff`` with ``J = d w_eff / d w``; a transform may also choose an estimator (the
straight-through estimator treats rounding as the identity). A transform is set per parameter:
``model.set_transform("fc1.weight", t)``.

Checkpoints save a transform as ``spec()`` (JSON: its type and hyper-parameters) plus
``arrays()`` (its state, e.g. a codebook) and rebuild it with ``from_spec(spec, arrays)``; new
transform types register with :func:`register_transform`.
"""

from __future__ import annotations

import numpy as np

from .registry import Registry

__all__ = ["Identity", "WeightTransform", "bake_transforms", "register_transform",
           "transform_from_spec"]

TRANSFORMS = Registry("weight transform")


def register_transform(cls: type) -> type:
    """Class decorator: make a :class:`WeightTransform` subclass loadable from its spec."""
    if not (isinstance(cls, type) and issubclass(cls, WeightTransform)):
        raise TypeError(f"register_transform: expected a WeightTransform subclass, got {cls!r}")
    return TRANSFORMS.register(cls)


class WeightTransform:
    """Base class of weight transforms (see the module docstring).

    Subclasses implement :meth:`forward` and :meth:`backward`, and, when they have
    hyper-parameters or state, :meth:`spec`, :meth:`arrays` and :meth:`from_spec`.
    """

    def forward(self, w: np.ndarray):  # pragma: no cover - abstract
        """``(w_eff, cache)``: ``w_eff`` has the shape and dtype of ``w``; never modifies ``w``."""
        raise NotImplementedError

    def backward(self, dw_eff: np.ndarray, cache) -> np.ndarray:  # pragma: no cover - abstract
        """``dL/dW`` (shape of ``w``) from ``dL/dW_eff`` and the cache of :meth:`forward`."""
        raise NotImplementedError

    def spec(self) -> dict:
        """JSON-serialisable description (``{"type": ..., hyper-parameters}``)."""
        spec = {"type": type(self).__name__}
        module = TRANSFORMS.module_of(type(self), __name__)
        if module is not None:
            spec["module"] = module
        return spec

    def arrays(self) -> dict[str, np.ndarray]:
        """State arrays saved with checkpoints (e.g. a codebook); none by default."""
        return {}

    @classmethod
    def from_spec(cls, spec: dict, arrays: dict[str, np.ndarray]) -> WeightTransform:
        """Rebuild from :meth:`spec` and :meth:`arrays` output."""
        kwargs = {k: v for k, v in spec.items() if k not in ("type", "module")}
        return cls(**kwargs)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items()
                         if k not in ("type", "module"))
        return f"{type(self).__name__}({args})"


@register_transform
class Identity(WeightTransform):
    """``W_eff = W`` and ``dL/dW = dL/dW_eff``: the transform that changes nothing (a template
    and a test of the hook)."""

    def forward(self, w):
        return w, None

    def backward(self, dw_eff, cache):
        return dw_eff


def transform_from_spec(spec, arrays=None) -> WeightTransform:
    """Rebuild a registered transform from its ``spec()`` and ``arrays()``.

    Raises
    ------
    ValueError
        Not a dict with a ``"type"``, an unknown type, or arguments the type does not accept.
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"weight transform spec: expected a dict with a 'type' key, got {spec!r}")
    cls = TRANSFORMS.get(spec["type"], spec.get("module"))
    arrays = {} if arrays is None else dict(arrays)
    try:
        return cls.from_spec(spec, arrays)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"weight transform spec for {spec['type']}: bad arguments: {exc}"
                         ) from None


def bake_transforms(model):
    """A copy of ``model`` whose parameters are the effective ones, ``transform(W)``, and that has
    no weight transforms: what the layers compute with, as plain weights.

    Use it before storing a model whose transforms change the weights (fake quantization: the
    stored ``W`` is the float shadow weight; weight sharing: ``W_eff`` is ``codebook[indices]``),
    e.g. in a compressed file (:func:`tinyprune.size.save_compressed` refuses transforms). The
    forward pass of the copy equals the model's; masks and buffers are copied, layers such as
    activation fake-quantizers are kept as they are.

    Parameters
    ----------
    model : tinyprune.nn.model.Sequential
        Not modified.

    Returns
    -------
    Sequential

    Examples
    --------
    >>> from tinyprune.nn import lenet_300_100
    >>> m = lenet_300_100(seed=0)
    >>> m.set_transform("fc1.weight", Identity())
    >>> sorted(bake_transforms(m).transforms), sorted(m.transforms)
    ([], ['fc1.weight'])
    """
    if not (hasattr(model, "copy") and hasattr(model, "layers") and hasattr(model, "transforms")):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    new = model.copy()
    for layer in new.layers.values():
        for pname in list(layer.transforms):
            effective = np.array(layer.effective_param(pname), copy=True)
            layer.set_transform(pname, None)
            layer.params[pname][...] = effective
    return new
