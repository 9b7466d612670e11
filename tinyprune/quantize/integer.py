r"""Integer-only inference (Jacob et al. 2018, sec. 2.2-2.4).

:func:`convert` turns a float ``Sequential`` of Linear / Conv2d / ReLU / MaxPool2d / Flatten /
Dropout layers into an :class:`IntegerModel` whose forward pass uses integers only, between
the quantization of the input and the dequantization of the logits:

* weights int8, symmetric (``Z_w = 0``), per output channel or per tensor;
* activations uint8 (default) or int8, asymmetric (``S, Z`` from min-max ranges on a
  calibration set; ``activation_dtype``). The two grids are the same real grid: int8 is uint8
  shifted by 128 (``q - 128``, ``Z - 128``), so both give the same logits bit for bit; int8 is
  what TensorFlow Lite's later int8 scheme and ARM's signed dot products use;
* a Linear / Conv2d layer accumulates in int32 (eq. 7 with ``Z_w = 0``)::

      acc_c = sum_k q_w[c, k] (q_in[k] - Z_in) + q_b[c]       q_b = round(b / (S_w S_in)), int32

* requantization to the next layer's 8-bit grid ``[q_min, q_max]`` (``[0, 255]`` or
  ``[-128, 127]``; sec. 2.2; :mod:`.fixed_point`)::

      q_out = clamp(Z_out + round(M_c acc_c), lo, q_max)      M_c = S_w,c S_in / S_out

  where ``round(M acc)`` is gemmlowp's fixed-point multiplication by ``M0 = round(2^31 M_c')``
  and a rounding right shift, and the clamp's lower end is ``Z_out`` when a ReLU follows (the
  ReLU *is* the clamp, sec. 2.4) and ``q_min`` otherwise;
* max-pooling directly on the 8-bit values (it commutes with the monotone quantization);
  flatten and dropout (inference: identity) touch no value;
* the last layer's int32 accumulator is dequantized into the logits, ``S_w S_in acc``.

NumPy has no int8 GEMM; the products are integers of at most 8 x 9 bits summed over ``K``
terms, far below 2^53, so the integer matrix products are computed *exactly* by float64 BLAS
(:func:`int_gemm`; its twin :func:`int_gemm_naive` uses int64 and is tested to agree).

:func:`simulate` runs the same pipeline in float64 arithmetic (the requantization as
``floor(acc M0 / 2^31 + 1/2)`` then rounding ``/ 2^shift`` half away from zero) and equals the
integer run bit for bit (tested).
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.functional import maxpool2d_forward
from tinyprune.nn.im2col import conv_output_size, im2col
from tinyprune.nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from tinyprune.nn.model import Sequential
from tinyprune.nn.validation import check_float_array, check_int

from .affine import qparams_from_range, qrange, quantize
from .fake_quant import ActFakeQuant, FakeQuantize
from .fixed_point import INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier, quantize_multiplier
from .observers import MinMaxObserver

__all__ = ["ACTIVATION_DTYPES", "IntegerModel", "convert", "int_gemm", "int_gemm_naive", "simulate"]

_SUPPORTED = (Linear, Conv2d, ReLU, MaxPool2d, Flatten, Dropout, ActFakeQuant)
_PASSIVE = (Dropout, Flatten, ActFakeQuant)  # no integer computation of their own


def int_gemm_naive(a, b) -> np.ndarray:
    """``a @ b`` of integer matrices in int64 (the reference of :func:`int_gemm`)."""
    return a.astype(np.int64) @ b.astype(np.int64)


def int_gemm(a, b) -> np.ndarray:
    """``a @ b`` of integer matrices, exactly, through float64 BLAS.

    Every product and partial sum is an integer below ``max|a| max|b| K``; when that is below
    2^53 float64 represents all of them exactly, so the result equals :func:`int_gemm_naive`.

    Parameters
    ----------
    a : integer ndarray (M, K); b : integer ndarray (K, N)

    Returns
    -------
    ndarray (M, N), int64
    """
    def largest(m):  # max |m| as a Python int (np.abs(int8(-128)) would overflow)
        return max(abs(int(m.min())), abs(int(m.max()))) if m.size else 0

    if largest(a) * largest(b) * a.shape[-1] >= 2 ** 53:
        return int_gemm_naive(a, b)
    fa, fb = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    return (fa @ fb).astype(np.int64)  # (M, N), exact


class _WeightLayer:
    """One quantized Linear / Conv2d (with the fused ReLU clamp)."""

    def __init__(self, name, layer, w, b, s_in, z_in, s_out, z_out, relu, per_channel,
                 w_grid=None, signed=False):
        self.name, self.relu = name, relu
        self.dtype = np.dtype(np.int8 if signed else np.uint8)  # activations
        self.qmin, self.qmax = qrange(8, signed)
        self.conv = isinstance(layer, Conv2d)
        if self.conv:
            self.kernel_size, self.stride, self.padding = (layer.kernel_size, layer.stride,
                                                           layer.padding)
        c_out = w.shape[0]
        if w_grid is None:  # int8 symmetric grid from the weight's min-max range
            flat = w.reshape(c_out, -1)  # (C_out, K)
            lo, hi = (flat.min(1), flat.max(1)) if per_channel else (flat.min(), flat.max())
            w_grid = qparams_from_range(lo, hi, bits=8, signed=True, symmetric=True)  # Z_w = 0
        s_w, z_w = w_grid
        self.s_w = np.broadcast_to(s_w, (c_out,)).astype(np.float64)
        self.q_w = quantize(w, s_w, z_w, bits=8, signed=True)  # int8, shape of w
        self.s_in, self.z_in = float(s_in), int(z_in)
        self.s_out = None if s_out is None else float(s_out)
        self.acc_scale = self.s_w * float(s_in)  # (C_out,) S_w S_in: the scale of acc and q_b
        q_b = np.zeros(c_out) if b is None else np.rint(b.astype(np.float64) / self.acc_scale)
        self.q_b = np.clip(q_b, INT32_MIN, INT32_MAX).astype(np.int32)  # (C_out,)
        self.final = s_out is None
        if not self.final:
            self.z_out = int(z_out)
            pairs = [quantize_multiplier(m) for m in self.acc_scale / float(s_out)]  # per channel
            self.m0 = np.array([p[0] for p in pairs], dtype=np.int64)  # (C_out,)
            self.shift = np.array([p[1] for p in pairs], dtype=np.int64)  # (C_out,)

    def _rows(self, a):
        """The layer's input as GEMM rows: ``(N, K)`` (Linear) or im2col ``(N H_out W_out, K)``."""
        if not self.conv:
            return a
        return im2col(np.ascontiguousarray(a, dtype=np.float64), self.kernel_size, self.stride,
                      self.padding)  # zero padding of q - Z_in: the real value 0

    def _wmat(self):
        # im2col's columns run over (C_in, KH, KW), exactly W[o].ravel(): no transpose
        return self.q_w.reshape(self.q_w.shape[0], -1)  # (C_out, K)

    def _to_output(self, y, n, in_shape):
        if not self.conv:
            return y  # (N, C_out)
        kh, kw = self.kernel_size
        h_out = conv_output_size(in_shape[2], kh, self.stride, self.padding)
        w_out = conv_output_size(in_shape[3], kw, self.stride, self.padding)
        return y.reshape(n, h_out, w_out, -1).transpose(0, 3, 1, 2)  # (N, C_out, H_out, W_out)

    def run(self, q):
        """8-bit input -> 8-bit output (or float64 logits for the last layer)."""
        a = q.astype(np.int64) - self.z_in  # (N, ...) the real value in units of S_in
        rows = self._rows(a)  # (rows, K)
        self.gemm_elements_per_image = rows.size // max(q.shape[0], 1)  # for predict's batches
        acc = int_gemm(rows, self._wmat().T) + self.q_b  # (rows, C_out), int32 range
        if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
            raise OverflowError(f"{self.name}: the int32 accumulator overflows")
        if self.final:
            return self._to_output(acc * self.acc_scale, q.shape[0], q.shape)
        out = self.z_out + multiply_by_quantized_multiplier(acc, self.m0, self.shift)
        lo = self.z_out if self.relu else self.qmin  # the ReLU is the clamp
        out = np.clip(out, lo, self.qmax).astype(self.dtype)
        return self._to_output(out, q.shape[0], q.shape)

    def simulate(self, q):
        """The same step in float64 arithmetic (integers held in floats)."""
        a = q.astype(np.float64) - self.z_in
        acc = self._rows(a) @ self._wmat().T.astype(np.float64) + self.q_b  # (rows, C_out)
        if self.final:
            return self._to_output(acc * self.acc_scale, q.shape[0], q.shape)
        if (np.abs(acc) * self.m0).max(initial=0) >= 2.0 ** 53:
            raise OverflowError(f"{self.name}: acc * M0 is not exact in float64")
        t = np.floor(acc * self.m0 / 2.0 ** 31 + 0.5)  # high 32 bits of 2 acc M0, rounded
        u = t / 2.0 ** self.shift
        r = np.sign(u) * np.floor(np.abs(u) + 0.5)  # divide by 2^shift, ties away from 0
        out = np.clip(self.z_out + r, self.z_out if self.relu else self.qmin, self.qmax)
        return self._to_output(out, q.shape[0], q.shape)


class _Pool:
    def __init__(self, layer):
        self.kernel_size, self.stride, self.padding = layer.kernel_size, layer.stride, \
            layer.padding

    def run(self, q):
        # max commutes with the (monotone) quantization: pool the integers themselves
        out, _ = maxpool2d_forward(q.astype(np.float64), self.kernel_size, self.stride,
                                   self.padding)  # exact on integers
        return out.astype(q.dtype)

    simulate = run


class _Relu:
    """A ReLU that does not directly follow a Linear / Conv2d: ``max(q, Z)``."""

    def __init__(self, z):
        self.z = int(z)

    def run(self, q):
        return np.maximum(q, self.z).astype(q.dtype)

    simulate = run


class _Flatten:
    def run(self, q):
        return q.reshape(q.shape[0], -1)

    simulate = run


GEMM_ELEMENTS = 2 ** 22
"""Target size (values) of the largest GEMM input per batch of :meth:`IntegerModel.predict`."""


class IntegerModel:
    """An integer-only network built by :func:`convert`.

    Attributes
    ----------
    input_scale, input_zero_point : float, int
        The 8-bit grid of the input.
    activation_dtype : numpy dtype
        ``uint8`` or ``int8``: the integers every activation is held in.
    steps : list
        The integer steps, in order (quantized Linear/Conv2d with fused ReLU, pool, ReLU clamp,
        flatten).
    """

    def __init__(self, steps, input_scale, input_zero_point, input_shape=None,
                 activation_dtype="uint8"):
        self.steps = steps
        self.input_scale, self.input_zero_point = input_scale, input_zero_point
        self.input_shape = input_shape
        self.activation_dtype = np.dtype(activation_dtype)

    def quantize_input(self, x) -> np.ndarray:
        """The float input on the 8-bit grid (the only float -> int step)."""
        check_float_array(x, "x", finite=True)
        if self.input_shape is not None and tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"x: expected shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {x.shape}")
        return quantize(x, self.input_scale, self.input_zero_point, bits=8,
                        signed=self.activation_dtype == np.int8)

    def forward(self, x, train=False) -> np.ndarray:
        """Logits (float64, ``(N, classes)``) computed with integer arithmetic only.

        ``train`` is there so that :func:`tinyprune.nn.train.evaluate` can run an integer
        model like a :class:`~tinyprune.nn.model.Sequential`; an integer model only infers, so
        ``train=True`` is refused.
        """
        if train is not False:
            raise ValueError(f"train: an IntegerModel only runs inference (train=False), got "
                             f"{train!r}")
        q = self.quantize_input(x)
        for step in self.steps:
            q = step.run(q)
        return q

    __call__ = forward

    def predict(self, x, batch_size=None) -> np.ndarray:
        """Logits of ``x`` computed in batches, each one vectorized pass.

        Parameters
        ----------
        x : ndarray (N, ...), float, finite, non-empty
        batch_size : int, optional
            Images per pass. Default: as many as keep the largest GEMM input (a conv layer's
            im2col matrix, ``(n H_out W_out, C_in KH KW)`` float64) near :data:`GEMM_ELEMENTS`
            values, at most 256 images (measured: 32 images of the lecture net run ~5x faster
            than 1000 at once; an MLP prefers a few hundred).

        Returns
        -------
        ndarray (N, classes), float64
        """
        check_float_array(x, "x", finite=True, nonempty=True)
        if batch_size is None:
            self.forward(x[:1])  # records each GEMM's size per image
            per_image = max(getattr(s, "gemm_elements_per_image", 1) for s in self.steps)
            batch_size = int(min(256, max(1, GEMM_ELEMENTS // max(per_image, 1))))
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        return np.concatenate([self.forward(x[i:i + batch_size])
                               for i in range(0, x.shape[0], batch_size)])


def simulate(int_model, x) -> np.ndarray:
    """Run ``int_model``'s pipeline in float64 arithmetic (the reference its integer run must
    equal bit for bit)."""
    if not isinstance(int_model, IntegerModel):
        raise TypeError(f"int_model: expected an IntegerModel, got {type(int_model).__name__}")
    a = int_model.quantize_input(x)
    for step in int_model.steps:
        a = step.simulate(a)
    return a


def _plan(model):
    """``[(index, layer, fused_relu)]`` and the index of the output point of each weight layer."""
    layers = list(model.layers.items())
    for name, layer in layers:
        if type(layer) not in _SUPPORTED:
            raise TypeError(f"model: layer {name!r} ({type(layer).__name__}) is not supported by "
                            f"integer inference; supported: {[c.__name__ for c in _SUPPORTED]}")
    weight_idx = [i for i, (_, m) in enumerate(layers) if isinstance(m, (Linear, Conv2d))]
    if not weight_idx or weight_idx[-1] != max(i for i, (_, m) in enumerate(layers)
                                              if not isinstance(m, _PASSIVE)):
        raise ValueError("model: integer inference needs a Linear or Conv2d as the last "
                         "computing layer (its accumulator gives the logits)")
    return layers, weight_idx


def _fq_grid(layer, where, signed):
    """The 8-bit grid of a calibrated :class:`ActFakeQuant` (QAT / PTQ ranges) on the integers
    of ``signed``, or None. A uint8 grid ``(S, Z)`` is the int8 grid ``(S, Z - 128)``: the
    same real values, the integers shifted by 128."""
    if not isinstance(layer, ActFakeQuant) or not layer.observer.calibrated:
        return None
    obs = layer.observer
    if obs.bits != 8:
        raise ValueError(f"model: {where} ({layer.name}) quantizes to {obs.bits}-bit "
                         f"{'signed' if obs.signed else 'unsigned'} integers; integer inference "
                         f"uses 8-bit activations (uint8 or int8)")
    s, z = obs.qparams()
    return s, int(z) + 128 * (int(obs.signed) - int(signed))


def _weight_grid(layer, w):
    """The grid ``(S, 0)`` of a weight's :class:`FakeQuantize` transform (signed, symmetric,
    at most 8 bits: a b-bit grid's integers fit int8), so the integer weights are exactly the
    QAT ones; None otherwise."""
    t = layer.transforms.get("weight")
    if isinstance(t, FakeQuantize) and t.bits <= 8 and t.signed and t.symmetric:
        return t.qparams_of(w)
    return None


ACTIVATION_DTYPES = ("uint8", "int8")
"""The integer types :func:`convert` can hold activations in."""


def convert(model, X_cal, *, per_channel=True, batch_size=500,
            activation_dtype="uint8") -> IntegerModel:
    """Build an :class:`IntegerModel` from a float model and a calibration set.

    The float model runs layer by layer on ``X_cal`` (inference mode, in the listed order);
    min-max observers record the range of the input and of each Linear / Conv2d output (after
    its ReLU when one follows directly). Weights are read through their transforms (a
    weight-sharing model converts as it computes).

    A model prepared for quantization (:func:`~tinyprune.quantize.qat.prepare_qat`, then
    calibrated or fine-tuned) converts to the grids it was trained with: a calibrated 8-bit
    unsigned :class:`ActFakeQuant` at the input (``input_fq``) or right after a layer's output
    gives that grid (shifted by 128 when its signedness is not ``activation_dtype``'s), and a
    signed symmetric :class:`FakeQuantize` weight of at most 8 bits gives the scales and, held
    in int8, the integers (the integer weights are then exactly the QAT ones: a 4-bit QAT model
    runs on int8 storage holding values in [-8, 7]). Other weight transforms (asymmetric or
    unsigned fake quantization, weight sharing) are read through and put on a fresh symmetric
    int8 min-max grid.

    Parameters
    ----------
    model : Sequential
        Linear / Conv2d / ReLU / MaxPool2d / Flatten / Dropout / ActFakeQuant layers, a Linear
        or Conv2d last.
    X_cal : ndarray (N, ...), the model's dtype, finite
    per_channel : bool
        int8 weights with one scale per output channel (else per tensor), for weights without
        a FakeQuantize transform.
    batch_size : int
    activation_dtype : {"uint8", "int8"}
        The integers activations are held in: uint8 (``[0, 255]``, Jacob et al. 2018) or int8
        (``[-128, 127]``, zero point in ``[-128, 127]``). Min-max calibration gives the same
        real grid either way (``Z_int8 = Z_uint8 - 128``), so the logits are identical.

    Returns
    -------
    IntegerModel
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    check_float_array(X_cal, "X_cal", finite=True, nonempty=True)
    if X_cal.ndim < 2:
        raise ValueError(f"X_cal: expected samples (N, ...), got shape {X_cal.shape}")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if activation_dtype not in ACTIVATION_DTYPES:
        raise ValueError(f"activation_dtype: expected one of {list(ACTIVATION_DTYPES)}, got "
                         f"{activation_dtype!r}")
    signed = activation_dtype == "int8"
    layers, weight_idx = _plan(model)
    fused = {i for i in weight_idx if i + 1 < len(layers) and isinstance(layers[i + 1][1], ReLU)}
    point = {i: i + 1 if i in fused else i for i in weight_idx}  # where the output is stored
    grids = {"input": _fq_grid(layers[0][1], "the input", signed)}
    for i in weight_idx[:-1]:
        nxt = layers[point[i] + 1][1] if point[i] + 1 < len(layers) else None
        grids[i] = _fq_grid(nxt, f"the output of {layers[i][0]}", signed)
    observers = {key: MinMaxObserver(signed=signed) for key, g in grids.items() if g is None}
    for start in range(0, X_cal.shape[0], batch_size):
        h = X_cal[start:start + batch_size]
        if "input" in observers:
            observers["input"].update(h)
        for i, (_, layer) in enumerate(layers):
            h = layer.forward(h, train=False)
            for j in observers:
                if j != "input" and point[j] == i:
                    observers[j].update(h)
    grids.update({key: obs.qparams() for key, obs in observers.items()})

    s, z = grids["input"]
    steps = []
    i = 0
    while i < len(layers):
        name, layer = layers[i]
        if isinstance(layer, (Linear, Conv2d)):
            w_grid = _weight_grid(layer, layer.params["weight"])
            w = layer.effective_param("weight")  # on its own grid: quantizes back exactly
            b = layer.effective_param("bias") if "bias" in layer.params else None
            s_out, z_out = grids.get(i, (None, None))
            steps.append(_WeightLayer(name, layer, w, b, s, z, s_out, z_out,
                                      i in fused, per_channel, w_grid, signed))
            s, z = s_out, z_out
            i += 2 if i in fused else 1
            continue
        if isinstance(layer, MaxPool2d):
            steps.append(_Pool(layer))
        elif isinstance(layer, ReLU):
            steps.append(_Relu(z))
        elif isinstance(layer, Flatten):
            steps.append(_Flatten())
        i += 1  # Dropout: the identity at inference; ActFakeQuant: its grid is already used
    return IntegerModel(steps, grids["input"][0], grids["input"][1], model.input_shape,
                        activation_dtype)
