"""``Sequential``: an ordered stack of named layers with PyTorch-style parameter names."""

from __future__ import annotations

import numpy as np

from .layers import LAYERS, Conv2d, MaxPool2d, Module, ReLU, layer_from_spec
from .transforms import WeightTransform, transform_from_spec
from .validation import FLOAT_DTYPES, check_float_array

SPEC_FORMAT = "tinyprune.Sequential/1"


class Sequential:
    """A feed-forward model: ``layers`` applied in order.

    Parameters
    ----------
    layers : list of (str, Module)
        Named layers; a parameter ``"weight"`` of layer ``"conv1"`` is called ``"conv1.weight"``.
    input_shape : tuple of int, optional
        Shape of one sample (``(1, 28, 28)``), used by :meth:`summary`, MAC counts and checks.
    name : str, optional
        Model name stored in the spec (``"lecture_net"``).
    fast : bool, optional
        Run the speed path (default) or the reference path; see :attr:`fast`.

    Attributes
    ----------
    params, grads : dict[str, ndarray]
        Keyed by full name; ``params`` holds the very arrays the layers use, so in-place updates
        (an optimizer step, ``*= mask``) change the model.
    masks : dict[str, ndarray of bool]
        Pruning masks keyed like ``params`` (True = kept); empty for a dense model.
    buffers : dict[str, ndarray]
        Other per-model arrays saved with checkpoints (codebooks, statistics...).
    """

    def __init__(self, layers, *, input_shape=None, name="model", fast=True):
        self.layers: dict[str, Module] = {}
        for item in layers:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(f"Sequential: expected (name, layer) pairs, got {item!r}")
            lname, layer = item
            if not isinstance(lname, str) or not lname or "." in lname or "/" in lname:
                raise ValueError(f"Sequential: layer name must be a non-empty string without '.' "
                                 f"or '/', got {lname!r}")
            if lname in self.layers:
                raise ValueError(f"Sequential: duplicate layer name {lname!r}")
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {lname!r} is not a Module: {layer!r}")
            layer.name = lname
            self.layers[lname] = layer
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.name = name
        self.masks: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.fast = fast
        if self.input_shape is not None:
            self.layer_shapes()  # fail early on an inconsistent stack

    @property
    def fast(self) -> bool:
        """Speed path (True, the default) or reference path (False).

        With ``fast = False`` the layers run one by one in the listed order, each with the
        reference kernels of :mod:`tinyprune.nn.functional`, and every layer's cache holds its
        own activation: what a student reads, and what a grader compares against.
        With ``fast = True`` the layers use the kernels of :mod:`tinyprune.nn.fast`, and
        :meth:`forward` also

        * runs a ``ReLU`` directly followed by a ``MaxPool2d`` *after* the pool (see
          :meth:`execution_order`; exact, the ReLU then touches a 4x smaller activation),
        * runs a ``Conv2d`` followed by a 2x2 / stride-2 ``MaxPool2d`` as one pass
          (:meth:`Conv2d.forward_pooled`), the convolution output pooled chunk by chunk while
          in cache and never stored,
        * splits inference on more than :attr:`inference_chunk` samples into chunks.

        Both paths give the same outputs and gradients up to float rounding (the convolution's
        GEMM adds its products in another order), bit for bit on integer-valued data. The flag
        is a runtime setting, not part of :meth:`spec`. Setting it sets every layer's ``fast``.
        """
        return self._fast

    @fast.setter
    def fast(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{self.name}: fast: expected a bool, got {value!r}")
        self._fast = bool(value)
        for layer in self.layers.values():
            layer.fast = self._fast

    # -- parameters ------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, np.ndarray]:
        return {f"{ln}.{pn}": p for ln, layer in self.layers.items() for pn, p in layer.params.items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {f"{ln}.{pn}": g for ln, layer in self.layers.items() for pn, g in layer.grads.items()}

    def __getitem__(self, name: str) -> Module:
        if name not in self.layers:
            raise KeyError(f"no layer named {name!r}; layers: {list(self.layers)}")
        return self.layers[name]

    def split_name(self, full_name: str) -> tuple[str, str]:
        """``"conv1.weight" -> ("conv1", "weight")``, checking that the parameter exists."""
        lname, _, pname = full_name.partition(".")
        if lname not in self.layers or pname not in self.layers[lname].params:
            raise KeyError(f"no parameter named {full_name!r}; parameters: {list(self.params)}")
        return lname, pname

    def set_param(self, full_name: str, value: np.ndarray) -> None:
        """Copy ``value`` into the existing parameter array (shape and dtype must match)."""
        lname, pname = self.split_name(full_name)
        p = self.layers[lname].params[pname]
        if not isinstance(value, np.ndarray) or value.shape != p.shape:
            shape = getattr(value, "shape", type(value).__name__)
            raise ValueError(f"set_param({full_name!r}): expected shape {p.shape}, got {shape}")
        p[...] = value

    def copy(self) -> Sequential:
        """An independent deep copy: same architecture, parameter values, masks, buffers and
        weight transforms (rebuilt from their spec and arrays) and :attr:`fast` setting; fresh
        gradients; dropout layers get new generators seeded from 0."""
        new = Sequential.from_spec(self.spec(), fast=self.fast)
        for name, value in self.params.items():
            new.set_param(name, value)
        new.masks = {k: v.copy() for k, v in self.masks.items()}
        new.buffers = {k: v.copy() for k, v in self.buffers.items()}
        for name, t in self.transforms.items():
            arrays = {k: np.array(v, copy=True) for k, v in t.arrays().items()}
            new.set_transform(name, transform_from_spec(t.spec(), arrays))
        return new

    # -- weight transforms (see tinyprune.nn.transforms) ----------------------------------
    @property
    def transforms(self) -> dict[str, WeightTransform]:
        """Weight transforms keyed by full parameter name (``{"fc1.weight": t}``)."""
        return {f"{ln}.{pn}": t for ln, layer in self.layers.items()
                for pn, t in layer.transforms.items()}

    def set_transform(self, full_name: str, transform: WeightTransform | None) -> None:
        """Make ``full_name``'s layer compute with ``transform(param)`` (None removes it).

        The stored parameter stays what the optimizer updates; the gradient is mapped back
        through the transform's backward (e.g. a straight-through estimator).
        """
        lname, pname = self.split_name(full_name)
        self.layers[lname].set_transform(pname, transform)

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    @property
    def dtype(self):
        ps = list(self.params.values())
        return ps[0].dtype if ps else np.dtype(np.float32)

    def set_dtype(self, dtype) -> Sequential:
        """Convert every parameter (and gradient) to ``dtype`` in place; returns ``self``."""
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"set_dtype: expected float32 or float64, got {dtype}")
        for layer in self.layers.values():
            layer.params = {k: v.astype(dtype) for k, v in layer.params.items()}
            layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
        return self

    # -- computation -----------------------------------------------------------------------
    def forward(self, x, train=False):
        """Run every layer; ``train=True`` keeps caches for :meth:`backward` and enables dropout.

        Parameters
        ----------
        x : ndarray (N, *input_shape), float32 or float64 (the model's dtype)

        Returns
        -------
        logits : ndarray (N, n_outputs)
        """
        check_float_array(x, f"{self.name} input", finite=True)
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.name}: expected input of shape (N, "
                             f"{', '.join(map(str, self.input_shape))}), got {x.shape}")
        step = self.inference_chunk
        if self.fast and not train and step and x.shape[0] > step:
            return self._forward_in_chunks(x, int(step))
        return self._run(x, train)

    def _run(self, x, train):
        if not self.fast:  # the reference path: every layer, in the listed order
            for layer in self.layers.values():
                x = layer.forward(x, train=train)
            return x
        order = self.execution_order()
        k = 0
        while k < len(order):
            layer = order[k]
            if (k + 1 < len(order) and type(layer) is Conv2d and layer.fast
                    and type(order[k + 1]) is MaxPool2d and x.ndim == 4
                    and order[k + 1].fusable_after(layer.output_shape(x.shape[1:]))):
                x = layer.forward_pooled(x, order[k + 1], train=train)  # conv + pool in one pass
                k += 2
            else:
                x = layer.forward(x, train=train)
                k += 1
        return x

    def execution_order(self) -> list[Module]:
        """The layers in the order :meth:`forward` runs them (:meth:`backward` runs the reverse).

        The order of :attr:`layers`, except that with :attr:`fast` a ``ReLU`` directly followed
        by a ``MaxPool2d`` runs after it. Max-pooling commutes with ``max(., 0)`` (both are
        monotone and the ReLU keeps positive values unchanged), so the output is the same, and so
        is every gradient: when a window's maximum is positive, it sits at the same (first)
        position in ``x`` and in ``relu(x)`` and the ReLU passes it; when it is not, the ReLU
        stops the window's gradient in both orders. The ReLU's cache then holds the pooled
        activation.
        """
        order = list(self.layers.values())
        if self.fast:
            for k in range(len(order) - 1):
                if type(order[k]) is ReLU and type(order[k + 1]) is MaxPool2d:
                    order[k], order[k + 1] = order[k + 1], order[k]
        return order

    #: With :attr:`fast`, inference (``train=False``) on more than this many samples runs the
    #: batch through the layers in chunks of this size: the activations of a chunk stay in the
    #: CPU caches instead of making a round trip to memory between layers. The logits are the
    #: same, since every layer treats samples independently in inference mode. ``None`` or 0
    #: runs the whole batch at once (e.g. for observers that must see whole batches).
    inference_chunk: int | None = 32

    def _forward_in_chunks(self, x, step):
        out = None
        for i in range(0, x.shape[0], step):
            h = self._run(x[i:i + step], train=False)
            if out is None:
                out = np.empty((x.shape[0],) + h.shape[1:], dtype=h.dtype)  # (N, n_outputs)
            out[i:i + step] = h
        return out

    __call__ = forward

    def backward(self, dout, need_input_grad=True):
        """Back-propagate ``dout`` (d loss / d logits); fills ``grads``; returns d loss / d input
        (or None when ``need_input_grad`` is False, which skips the first layer's input gradient)."""
        layers = self.execution_order()
        if need_input_grad:
            first = 0
        else:  # no layer below the first one with parameters needs its input gradient
            first = next((k for k, layer in enumerate(layers) if layer.params), len(layers))
        for k in range(len(layers) - 1, first - 1, -1):
            dout = layers[k].backward(dout, need_dx=need_input_grad or k > first)
        return dout if need_input_grad else None

    def zero_grad(self) -> None:
        for layer in self.layers.values():
            for v in layer.grads.values():
                v[...] = 0

    # -- description -----------------------------------------------------------------------
    def layer_shapes(self, input_shape=None) -> list[tuple[str, tuple, tuple]]:
        """``[(name, in_shape, out_shape), ...]`` for one sample."""
        shape = input_shape if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError(f"{self.name}: input_shape unknown; pass input_shape")
        rows = []
        for lname, layer in self.layers.items():
            try:
                out = layer.output_shape(shape)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{self.name}: layer {lname!r} cannot take input {shape}: {exc}"
                                 ) from None
            if hasattr(layer, "in_features") and tuple(shape) != (layer.in_features,):
                raise ValueError(f"{self.name}: layer {lname!r} expects {layer.in_features} "
                                 f"features, gets shape {tuple(shape)}")
            if hasattr(layer, "in_channels") and shape[0] != layer.in_channels:
                raise ValueError(f"{self.name}: layer {lname!r} expects {layer.in_channels} "
                                 f"channels, gets shape {tuple(shape)}")
            rows.append((lname, tuple(shape), tuple(out)))
            shape = out
        return rows

    def macs(self, input_shape=None) -> dict[str, int]:
        """Multiply-accumulates per sample, by layer name (dense count)."""
        return {ln: self.layers[ln].macs(ins) for ln, ins, _ in self.layer_shapes(input_shape)}

    def summary(self) -> str:
        """A text table: layer, type, output shape, weights, biases (the lecture's counts)."""
        shapes = {ln: out for ln, _, out in self.layer_shapes()} if self.input_shape else {}
        lines = [f"{'layer':<10} {'type':<10} {'output':<16} {'weights':>10} {'biases':>8}"]
        tw = tb = 0
        for ln, layer in self.layers.items():
            w = layer.params.get("weight")
            b = layer.params.get("bias")
            nw = 0 if w is None else w.size
            nb = 0 if b is None else b.size
            tw, tb = tw + nw, tb + nb
            out = str(shapes.get(ln, ""))
            lines.append(f"{ln:<10} {type(layer).__name__:<10} {out:<16} {nw:>10,} {nb:>8,}")
        lines.append(f"{'total':<10} {'':<10} {'':<16} {tw:>10,} {tb:>8,}")
        lines.append(f"parameters: {tw + tb:,}")
        return "\n".join(lines)

    def spec(self) -> dict:
        """JSON-serialisable architecture (no weights)."""
        return {
            "format": SPEC_FORMAT,
            "name": self.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "dtype": str(self.dtype),
            "layers": [self._layer_spec(ln, layer) for ln, layer in self.layers.items()],
        }

    @staticmethod
    def _layer_spec(lname, layer):
        spec = {"name": lname, **layer.spec()}
        module = LAYERS.module_of(type(layer), "tinyprune.nn.layers")
        if module is not None:  # a registered type from outside the engine: say where it lives
            spec["module"] = module
        return spec

    @classmethod
    def from_spec(cls, spec: dict, *, seed=0, fast=True) -> Sequential:
        """Build a freshly initialised model from :meth:`spec` output.

        ``seed`` seeds one generator that initialises the layers in order and then draws the
        dropout masks, as the zoo functions do (so ``from_spec(lecture_net(seed=1).spec(),
        seed=1)`` has the same initial weights as ``lecture_net(seed=1)``); ``fast`` is the
        runtime setting :attr:`fast` (not stored in the spec).
        """
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            got = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
            raise ValueError(f"model spec: expected format {SPEC_FORMAT!r}, got {got!r}")
        dtype = np.dtype(spec.get("dtype", "float32"))
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"model spec: dtype must be float32 or float64, got {dtype}")
        layer_specs = spec.get("layers")
        if not isinstance(layer_specs, list):
            raise ValueError("model spec: 'layers' must be a list")
        rng = np.random.default_rng(seed)
        layers = []
        for ls in layer_specs:
            if not isinstance(ls, dict) or "name" not in ls:
                raise ValueError(f"model spec: each layer needs a 'name', got {ls!r}")
            body = {k: v for k, v in ls.items() if k != "name"}
            layers.append((ls["name"], layer_from_spec(body, rng=rng, dtype=dtype)))
        return cls(layers, input_shape=spec.get("input_shape"), name=spec.get("name", "model"),
                   fast=fast)

    def __repr__(self):
        body = "\n".join(f"  ({ln}): {layer!r}" for ln, layer in self.layers.items())
        return f"Sequential(\n{body}\n)"
