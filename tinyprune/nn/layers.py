"""Layer classes: thin, stateful wrappers around :mod:`tinyprune.nn.functional`.

Each layer runs the reference kernels of :mod:`tinyprune.nn.functional` when its ``fast``
attribute is False, and the speed kernels of :mod:`tinyprune.nn.fast` (same results) when it is
True (the default; ``Sequential`` sets it on all its layers).

A layer holds ``params`` and ``grads`` under the same local names (``"weight"``, ``"bias"``),
remembers the cache of its last forward pass, and validates its input once, naming itself in
every error. Shapes and initialisation follow PyTorch (``nn.Linear``, ``nn.Conv2d``...).
"""

from __future__ import annotations

import inspect

import numpy as np

from . import fast
from . import functional as F
from .im2col import conv_output_size
from .init import uniform_fan_in
from .registry import Registry
from .transforms import WeightTransform
from .validation import as_generator, check_float_array, check_int, check_pair, check_probability

#: The layer types specs and checkpoints can name (see :func:`register_layer`).
LAYERS = Registry("layer")


def register_layer(cls: type) -> type:
    """Class decorator: make a :class:`Module` subclass buildable from its spec, so models that
    contain it round-trip through :meth:`Sequential.spec` / ``from_spec`` and checkpoints.

    The class needs a :meth:`Module.spec` that returns its constructor's arguments (plus
    ``"type"``) and, if its constructor does not take them as keyword arguments, its own
    :meth:`Module.from_spec`. Its parameters are saved and loaded by name like any other.

    Examples
    --------
    >>> @register_layer
    ... class Scale(Module):
    ...     def __init__(self, n):
    ...         super().__init__()
    ...         self.n = n
    ...         self.params["weight"] = np.ones(n, dtype=np.float32)
    ...         self.grads["weight"] = np.zeros(n, dtype=np.float32)
    ...     def spec(self):
    ...         return {"type": "Scale", "n": self.n}
    """
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register_layer: expected a Module subclass, got {cls!r}")
    return LAYERS.register(cls)


class Module:
    """Base class: ``params``/``grads`` dicts, ``forward``/``backward``, ``spec``.

    Attributes
    ----------
    name : str
        Set by the container (``"conv1"``); used in error messages.
    params, grads : dict[str, ndarray]
        Same keys and shapes; every :meth:`backward` *replaces* ``grads`` (no accumulation).
    transforms : dict[str, WeightTransform]
        Weight transforms by parameter name (see :mod:`tinyprune.nn.transforms`): the layer
        computes with ``transforms[name].forward(params[name])`` and ``grads[name]`` is the
        gradient mapped back through the transform. Only layers whose ``supports_transforms``
        is True (Linear, Conv2d) accept them.
    """

    #: Whether :meth:`set_transform` may be used (the layer's kernels read
    #: :meth:`effective_param` and map gradients with :meth:`param_grad`).
    supports_transforms = False

    #: Run the speed kernels of :mod:`tinyprune.nn.fast` (True) or the reference kernels of
    #: :mod:`tinyprune.nn.functional` (False). Set by the container (``Sequential.fast``).
    fast = True

    def __init__(self):
        self.name = type(self).__name__
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.transforms: dict[str, WeightTransform] = {}
        self._transform_caches: dict[str, object] = {}
        self._cache = None

    @classmethod
    def from_spec(cls, spec: dict, *, rng=None, dtype=np.float32) -> Module:
        """Build the layer from :meth:`spec` output: the spec's entries (``"type"`` and
        ``"module"`` aside) are the constructor's keyword arguments; ``rng`` and ``dtype`` are
        passed when the constructor accepts them."""
        kwargs = {k: v for k, v in spec.items() if k not in ("type", "module")}
        accepted = inspect.signature(cls).parameters
        if "rng" in accepted:
            kwargs["rng"] = rng
        if "dtype" in accepted:
            kwargs["dtype"] = dtype
        return cls(**kwargs)

    # -- weight transforms -----------------------------------------------------------------
    def set_transform(self, pname: str, transform: WeightTransform | None) -> None:
        """Compute with ``transform(params[pname])`` from now on (None removes the transform)."""
        if pname not in self.params:
            raise ValueError(f"{self.name}: set_transform: no parameter {pname!r}; parameters: "
                             f"{list(self.params)}")
        if transform is None:
            self.transforms.pop(pname, None)
            self._transform_caches.pop(pname, None)
            return
        if not self.supports_transforms:
            raise TypeError(f"{self.name} ({type(self).__name__}) does not support weight "
                            f"transforms")
        if not isinstance(transform, WeightTransform):
            raise TypeError(f"{self.name}: set_transform: expected a WeightTransform, got "
                            f"{type(transform).__name__}")
        self.transforms[pname] = transform

    def effective_param(self, pname: str, train: bool = False) -> np.ndarray:
        """The parameter the layer computes with: ``params[pname]`` passed through its transform
        (if any). With ``train`` the transform's cache is kept for :meth:`param_grad`."""
        p = self.params[pname]
        t = self.transforms.get(pname)
        if t is None:
            return p
        p_eff, cache = t.forward(p)
        if not isinstance(p_eff, np.ndarray) or p_eff.shape != p.shape or p_eff.dtype != p.dtype:
            got = (getattr(p_eff, "shape", None), getattr(p_eff, "dtype", type(p_eff).__name__))
            raise ValueError(f"{self.name}: transform {t!r} of {pname!r} must return an array "
                             f"of shape {p.shape} and dtype {p.dtype}, got {got}")
        self._transform_caches[pname] = cache if train else None
        return p_eff

    def param_grad(self, pname: str, d_eff: np.ndarray) -> np.ndarray:
        """``dL/dparams[pname]`` from ``dL/d(effective parameter)``, through the transform."""
        t = self.transforms.get(pname)
        if t is None:
            return d_eff
        return t.backward(d_eff, self._transform_caches.get(pname))

    def _weight_and_bias(self, train):
        """``(W_eff, b_eff or None)`` for the kernels of a layer with a weight and a bias."""
        b = self.effective_param("bias", train) if "bias" in self.params else None
        return self.effective_param("weight", train), b

    def _set_grads(self, dw, db):
        self.grads["weight"] = self.param_grad("weight", dw)
        if db is not None:
            self.grads["bias"] = self.param_grad("bias", db)

    # -- interface -------------------------------------------------------------------------
    def forward(self, x, train=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout, need_dx=True):  # pragma: no cover - abstract
        raise NotImplementedError

    def output_shape(self, in_shape):
        """Shape of one sample's output for one sample's input shape (no batch axis)."""
        return tuple(in_shape)

    def macs(self, in_shape) -> int:
        """Multiply-accumulates for one sample (0 for layers without weights)."""
        return 0

    def spec(self) -> dict:
        """JSON-serialisable description from which :func:`layer_from_spec` rebuilds the layer."""
        return {"type": type(self).__name__}

    def __call__(self, x, train=False):
        return self.forward(x, train=train)

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.spec().items() if k != "type")
        return f"{type(self).__name__}({args})"

    # -- helpers ---------------------------------------------------------------------------
    def _check_input(self, x, ndim):
        check_float_array(x, f"{self.name} ({type(self).__name__}) input")
        if x.ndim != ndim:
            raise ValueError(f"{self.name} ({type(self).__name__}): expected a {ndim}-D input, "
                             f"got shape {x.shape}")
        if self.params:
            dtype = next(iter(self.params.values())).dtype
            if x.dtype != dtype:
                raise TypeError(f"{self.name} ({type(self).__name__}): input dtype {x.dtype} does "
                                f"not match parameter dtype {dtype}; convert the input or call "
                                f"model.set_dtype()")

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward(train=True)")
        return self._cache


class Linear(Module):
    """Fully connected layer ``y = x W^T + b`` with ``W`` of shape ``(out_features, in_features)``.

    Initialised like PyTorch: ``W, b ~ U(-1/sqrt(in), 1/sqrt(in))``.
    """

    supports_transforms = True

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        self.in_features = check_int(in_features, "Linear: in_features", minimum=1)
        self.out_features = check_int(out_features, "Linear: out_features", minimum=1)
        rng = as_generator(0 if rng is None else rng, "Linear: rng")
        shape = (self.out_features, self.in_features)
        self.params["weight"] = uniform_fan_in(shape, self.in_features, rng, dtype)
        if bias:
            self.params["bias"] = uniform_fan_in((self.out_features,), self.in_features, rng, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, train=False):
        self._check_input(x, 2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self.name} (Linear): expected input of shape (N, {self.in_features})"
                             f", got {x.shape}")
        out, cache = F.linear_forward(x, *self._weight_and_bias(train))
        self._cache = cache if train else None
        return out

    def backward(self, dout, need_dx=True):
        dx, dw, db = F.linear_backward(dout, self._cached(), need_dx)
        self._set_grads(dw, db)
        return dx

    def output_shape(self, in_shape):
        return (self.out_features,)

    def macs(self, in_shape):
        return self.in_features * self.out_features

    def spec(self):
        return {"type": "Linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": "bias" in self.params}


class Conv2d(Module):
    """2-D convolution with weight ``(C_out, C_in, KH, KW)``, via im2col + GEMM.

    The output has the NCHW shape ``(N, C_out, H_out, W_out)``, channels-last in memory with
    ``fast`` (see :func:`tinyprune.nn.fast.conv2d_forward`). Scratch buffers (the unfolded input of
    a batch chunk, a padded copy of the input) are kept in the layer and reused between calls; the
    cache of a training pass references the input, which must not be modified before
    :meth:`backward`.
    Initialised like PyTorch: ``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``fan_in = C_in KH KW``.
    """

    supports_transforms = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, *,
                 rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels = check_int(in_channels, "Conv2d: in_channels", minimum=1)
        self.out_channels = check_int(out_channels, "Conv2d: out_channels", minimum=1)
        self.kernel_size = check_pair(kernel_size, "Conv2d: kernel_size", minimum=1)
        self.stride = check_int(stride, "Conv2d: stride", minimum=1)
        self.padding = check_int(padding, "Conv2d: padding", minimum=0)
        rng = as_generator(0 if rng is None else rng, "Conv2d: rng")
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.params["weight"] = uniform_fan_in(shape, fan_in, rng, dtype)
        if bias:
            self.params["bias"] = uniform_fan_in((self.out_channels,), fan_in, rng, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._workspace: dict[str, np.ndarray] = {}  # scratch buffers reused between calls

    def forward(self, x, train=False):
        self._check_input(x, 4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{self.name} (Conv2d): expected {self.in_channels} input channels "
                             f"(N, {self.in_channels}, H, W), got shape {x.shape}")
        self.output_shape(x.shape[1:])  # validates that the kernel fits
        self._cache = None  # the workspace is about to be overwritten
        w, b = self._weight_and_bias(train)
        if self.fast:
            out, cache = fast.conv2d_forward(x, w, b, self.stride, self.padding, train=train,
                                             workspace=self._workspace)
        else:
            out, cache = F.conv2d_forward(x, w, b, self.stride, self.padding)
        self._cache = (self.fast, cache) if train else None  # which kernels made the cache
        return out

    def forward_pooled(self, x, pool, train=False):
        """This convolution and then ``pool`` (a 2x2 / stride-2 :class:`MaxPool2d`) in one pass
        (:func:`~tinyprune.nn.fast.conv2d_maxpool2x2_forward`, a speed path): the convolution
        output is never stored. Both layers keep their caches, so their ``backward`` work as
        usual."""
        self._check_input(x, 4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{self.name} (Conv2d): expected {self.in_channels} input channels "
                             f"(N, {self.in_channels}, H, W), got shape {x.shape}")
        conv_shape = self.output_shape(x.shape[1:])  # (C_out, H_out, W_out)
        pool.output_shape(conv_shape)
        if not pool.fusable_after(conv_shape):
            raise ValueError(f"{self.name} (Conv2d): cannot fuse {pool.name} {pool!r} "
                             f"(needs a 2x2 / stride-2 max-pool on an even-sized output)")
        self._cache = pool._cache = None  # the workspace is about to be overwritten
        w, b = self._weight_and_bias(train)
        out, cache, pool_cache = fast.conv2d_maxpool2x2_forward(
            x, w, b, self.stride, self.padding, train=train, workspace=self._workspace)
        if train:
            self._cache, pool._cache = (True, cache), (True, pool_cache)
        return out

    def backward(self, dout, need_dx=True):
        made_fast, cache = self._cached()
        if made_fast:
            dx, dw, db = fast.conv2d_backward(dout, cache, need_dx, workspace=self._workspace)
        else:
            dx, dw, db = F.conv2d_backward(dout, cache, need_dx)
        self._set_grads(dw, db)
        return dx

    def output_shape(self, in_shape):
        c, h, w = in_shape
        kh, kw = self.kernel_size
        h_out = conv_output_size(h, kh, self.stride, self.padding)
        w_out = conv_output_size(w, kw, self.stride, self.padding)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"{self.name} (Conv2d): kernel {kh}x{kw} does not fit input {h}x{w} "
                             f"with padding {self.padding}")
        return (self.out_channels, h_out, w_out)

    def macs(self, in_shape):
        _, h_out, w_out = self.output_shape(in_shape)
        return self.params["weight"].size * h_out * w_out

    def spec(self):
        return {"type": "Conv2d", "in_channels": self.in_channels,
                "out_channels": self.out_channels, "kernel_size": list(self.kernel_size),
                "stride": self.stride, "padding": self.padding, "bias": "bias" in self.params}


class MaxPool2d(Module):
    """Max pooling; ``stride`` defaults to ``kernel_size``; ties send the gradient to the first max."""

    def __init__(self, kernel_size=2, stride=None, padding=0):
        super().__init__()
        self.kernel_size = check_pair(kernel_size, "MaxPool2d: kernel_size", minimum=1)
        self.stride = self.kernel_size[0] if stride is None else check_int(
            stride, "MaxPool2d: stride", minimum=1)
        self.padding = check_int(padding, "MaxPool2d: padding", minimum=0)
        if 2 * self.padding > min(self.kernel_size):
            raise ValueError(f"MaxPool2d: padding must be at most half the kernel size, "
                             f"got padding={self.padding} for kernel {self.kernel_size}")

    def forward(self, x, train=False):
        self._check_input(x, 4)
        self.output_shape(x.shape[1:])
        if self.fast:
            out, cache = fast.maxpool2d_forward(x, self.kernel_size, self.stride, self.padding,
                                                train=train)
        else:
            out, cache = F.maxpool2d_forward(x, self.kernel_size, self.stride, self.padding)
        self._cache = (self.fast, cache) if train else None  # which kernels made the cache
        return out

    def backward(self, dout, need_dx=True):
        made_fast, cache = self._cached()
        return (fast if made_fast else F).maxpool2d_backward(dout, cache)

    def fusable_after(self, in_shape) -> bool:
        """Whether :meth:`Conv2d.forward_pooled` can run this pool on a ``(C, H, W)`` input:
        2x2 windows, stride 2, no padding, even ``H`` and ``W``."""
        _, h, w = in_shape
        return (self.kernel_size == (2, 2) and self.stride == 2 and self.padding == 0
                and h % 2 == 0 and w % 2 == 0)

    def output_shape(self, in_shape):
        c, h, w = in_shape
        kh, kw = self.kernel_size
        h_out = conv_output_size(h, kh, self.stride, self.padding)
        w_out = conv_output_size(w, kw, self.stride, self.padding)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"{self.name} (MaxPool2d): window {kh}x{kw} does not fit input {h}x{w}")
        return (c, h_out, w_out)

    def spec(self):
        return {"type": "MaxPool2d", "kernel_size": list(self.kernel_size), "stride": self.stride,
                "padding": self.padding}


class ReLU(Module):
    """Rectified linear unit ``max(x, 0)``.

    The cache of a training pass is the output itself (its sign is the gradient mask): do not
    modify the output in place before :meth:`backward`.
    """

    def forward(self, x, train=False):
        check_float_array(x, f"{self.name} (ReLU) input")
        out, cache = F.relu_forward(x)
        self._cache = cache if train else None
        return out

    def backward(self, dout, need_dx=True):
        return (fast if self.fast else F).relu_backward(dout, self._cached())


class Dropout(Module):
    """Inverted dropout with probability ``p`` of zeroing; identity at inference.

    Parameters
    ----------
    p : float in [0, 1)
    rng : numpy.random.Generator or int
        Source of the masks (explicit: the same seed gives the same masks).
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        self.p = check_probability(p, "Dropout: p")
        self.rng = as_generator(0 if rng is None else rng, "Dropout: rng")

    def forward(self, x, train=False):
        check_float_array(x, f"{self.name} (Dropout) input")
        out, cache = F.dropout_forward(x, self.p, self.rng, train)
        self._cache = (cache,) if train else None
        return out

    def backward(self, dout, need_dx=True):
        return F.dropout_backward(dout, self._cached()[0])

    def spec(self):
        return {"type": "Dropout", "p": self.p}


class Flatten(Module):
    """``(N, C, H, W) -> (N, C*H*W)`` in C order, as ``torch.flatten(x, 1)``."""

    def forward(self, x, train=False):
        check_float_array(x, f"{self.name} (Flatten) input")
        out, cache = F.flatten_forward(x)
        self._cache = cache if train else None
        return out

    def backward(self, dout, need_dx=True):
        return F.flatten_backward(dout, self._cached())

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)


for _cls in (Linear, Conv2d, MaxPool2d, ReLU, Dropout, Flatten):
    register_layer(_cls)


def layer_from_spec(spec: dict, *, rng=None, dtype=np.float32) -> Module:
    """Rebuild a layer from :meth:`Module.spec` output (parameters freshly initialised).

    The type is looked up among the registered layers (:func:`register_layer`); a spec written
    by :class:`~tinyprune.nn.model.Sequential` also names the module that defines a type from
    outside the engine, which is imported if needed.
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"layer spec: expected a dict with a 'type' key, got {spec!r}")
    cls = LAYERS.get(spec["type"], spec.get("module"))
    try:
        return cls.from_spec(spec, rng=rng, dtype=dtype)
    except TypeError as exc:
        kwargs = {k: v for k, v in spec.items() if k not in ("type", "module")}
        raise ValueError(f"layer spec for {spec['type']}: bad arguments {kwargs}: {exc}") from None
