"""Activations, softmax / log-softmax, dropout and Gaussian noise: forward and backward together.

Every activation is one ``Function`` node doing one NumPy pass forward and one backward. Where
the derivative is written in the output (ELU, Hardtanh, softmax, log-softmax) the output is
saved instead of the input, as PyTorch's ``derivatives.yaml`` does for ``exp``.

Every backward is differentiable (create_graph=True, double backward): formulas use Python
operators and other ops through ``Op.call``, which are bare NumPy on the first-order path and
recorded nodes on Tensors. Branch masks (x > 0, inside the clip range) carry no derivative:
they are computed on the raw array (``_elementwise.raw``) and multiply as constants. The exact
GELU's backward is the C++ kernel, so it is an op of its own (``GELUBackward``) whose backward
gives the second derivative. Where PyTorch sends a NaN input's gradient through (relu,
hardtanh, elu: its masks test ``x <= 0``, false for NaN), so do the masks here.

``relu``, ``sigmoid`` and ``tanh`` keep their nodes in ``pydl/ops/elementwise.py``; ``relu`` is
wrapped here only to add ``inplace``. GELU's exact form needs erf, which NumPy lacks: it runs in
the C++ kernel ``pydl._C.gelu_forward`` / ``gelu_backward`` (``csrc/activation.cpp``), and on
CUDA arrays through ``cupyx.scipy.special.erf``.

Randomness (dropout masks, noise) comes from ``pydl.random.generator()``, so
``pydl.manual_seed`` makes it reproducible.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from pydl import random as _random
from pydl import _C
from pydl.autograd.function import Function
from pydl.device import array_module, to_device_array
from pydl.ops import _native_reduce as _nr
from pydl.ops import elementwise as _elementwise
from pydl.ops.elementwise import _EW, Exp, Sigmoid, Tanh, Where, _native1, _native_fused, raw
from pydl.ops.elementwise import sigmoid, tanh  # noqa: F401  (re-exported with the family)
from pydl.ops.reduction import Sum
from pydl.tensor import Tensor, _wrap_dim

__all__ = ["relu", "relu_", "sigmoid", "tanh", "hardtanh", "hardtanh_", "leaky_relu",
           "leaky_relu_", "elu", "elu_", "softplus", "gelu", "silu", "softmax", "log_softmax",
           "dropout", "dropout2d", "gaussian_noise"]


def _check_tensor(x, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a pydl.Tensor as input, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating point input, got dtype {x.dtype}")


def _maybe_inplace(input: Tensor, inplace: bool, fn):
    """``fn(input)``, or its result written into ``input`` when ``inplace`` (the graph stays
    exact: Tensor._inplace records an out-of-place node and rebinds ``input`` to it)."""
    if inplace:
        return input._inplace(fn)
    return fn(input)


# -- ReLU (node in elementwise.py) -------------------------------------------------------------
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(0, x) (torch.nn.functional.relu). The node saves its output: y > 0 exactly where
    x > 0, so the output alone gives the derivative."""
    _check_tensor(input, "relu")
    return _maybe_inplace(input, inplace, _elementwise.relu)


def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


# -- Hardtanh -----------------------------------------------------------------------------------
class Hardtanh(Function):
    """y = min(max(x, lo), hi); dy/dx = 1 strictly inside (lo, hi), else 0 (PyTorch's choice at
    the corners), and 1 at NaN as PyTorch's ``x <= lo || x >= hi ? 0 : g``. Saves y: y equals
    lo or hi exactly where x <= lo or x >= hi. The mask is constant, so d2y/dx2 = 0."""

    def forward(self, x, lo, hi):
        if _native1(x):
            y = _EW.hardtanh(x, lo, hi)
        else:
            y = _elementwise._saved_array(array_module(x).clip(x, lo, hi))
        self.save_for_backward(y)
        self.bounds = (lo, hi)
        return y

    def backward(self, g):
        y = raw(self.saved_tensors[0])
        lo, hi = self.bounds
        if _native_fused(g, y):  # first order: one pass, 0 (not g * 0) outside, as PyTorch
            return _EW.hardtanh_backward(g, y, lo, hi), None, None
        return g * ((y != lo) & (y != hi)), None, None


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """The course's HardTanh max(-1, min(1, x)), with adjustable ``min_val``/``max_val``."""
    _check_tensor(input, "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    return _maybe_inplace(input, inplace, lambda x: Hardtanh.apply(x, min_val, max_val))


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


# -- LeakyReLU ----------------------------------------------------------------------------------
class LeakyReLU(Function):
    """y = x for x > 0, slope * x otherwise; dy/dx = 1 or slope (slope at x == 0, as PyTorch)."""

    def forward(self, x, slope):
        self.slope = slope
        if _native1(x):
            self.save_for_backward(x)
            return _EW.leaky_relu(x, slope)
        pos = x > 0
        self.save_for_backward(pos)
        return array_module(x).where(pos, x, x * x.dtype.type(slope))

    def backward(self, g):
        s = raw(self.saved_tensors[0])  # x (native forward) or the bool mask x > 0
        if s.dtype.char != "?":
            if _native_fused(g, s):  # first order: x > 0 ? g : g * slope in one pass
                return _EW.leaky_relu_backward(g, s, self.slope), None
            s = s > 0
        return Where.call(s, g, g * self.slope), None  # the mask is a constant


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _check_tensor(input, "leaky_relu")
    return _maybe_inplace(input, inplace, lambda x: LeakyReLU.apply(x, negative_slope))


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


# -- ELU ------------------------------------------------------------------------------------------
class ELU(Function):
    """y = x for x > 0, alpha (e^x - 1) otherwise; for x <= 0, dy/dx = alpha e^x = y + alpha.

    With alpha > 0 the sign of y tells the branch, so only the output is saved; a non-positive
    alpha (rare) saves the input instead. Written in y, the formula differentiates itself:
    d2y/dx2 = alpha e^x = y + alpha again, which the graph finds through the saved output.
    The branch test is PyTorch's ``x <= 0`` (a NaN takes the identity branch)."""

    def forward(self, x, alpha):
        xp = array_module(x)
        a = x.dtype.type(alpha)
        if _native1(x):
            y = _EW.elu(x, alpha)
        else:
            y = xp.where(x > 0, x, a * xp.expm1(xp.minimum(x, 0)))
        self.alpha = a
        self.save_for_backward(y if alpha > 0 else x)
        return y

    def backward(self, g):
        (s,) = self.saved_tensors
        a = float(self.alpha)
        if a > 0 and _native_fused(g, s):  # first order: y <= 0 ? g (y + alpha) : g, one pass
            return _EW.elu_backward(g, s, a), None
        negative = raw(s) <= 0
        if a > 0:
            return Where.call(negative, g * (s + a), g), None
        # exp of the negative branch only (e^x of a large positive x would overflow).
        return Where.call(negative, g * a * Exp.call(Where.call(negative, s, 0.0)), g), None


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    _check_tensor(input, "elu")
    return _maybe_inplace(input, inplace, lambda x: ELU.apply(x, alpha))


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


# -- Softplus -------------------------------------------------------------------------------------
class Softplus(Function):
    """y = log(1 + e^(beta x)) / beta, the course's smooth ReLU log(1 + e^x) at beta = 1.

    Computed as (max(bx, 0) + log1p(e^-|bx|)) / beta, which never overflows; where
    beta * x > threshold y = x (PyTorch's switch to the linear asymptote). dy/dx = sigmoid(bx)
    there-below, 1 above; d2y/dx2 = beta sigmoid(bx) (1 - sigmoid(bx)), through Sigmoid's own
    backward. Saves x (bx and the branch mask are recomputed: a saved intermediate could not
    join the graph)."""

    def forward(self, x, beta, threshold):
        self.beta, self.threshold = beta, threshold
        if _native1(x):
            self.save_for_backward(x)
            return _EW.softplus(x, beta, threshold)
        xp = array_module(x)
        bx = x * x.dtype.type(beta)
        linear = bx > threshold
        y = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / x.dtype.type(beta)
        y = xp.where(linear, x, y)
        self.save_for_backward(x)
        return y

    def backward(self, g):
        (x,) = self.saved_tensors
        if _native_fused(g, x):  # first order: one fused pass
            return _EW.softplus_backward(g, x, self.beta, self.threshold), None, None
        bx = x if self.beta == 1 else x * float(self.beta)
        linear = raw(bx) > self.threshold  # the branch mask is a constant
        return Where.call(linear, g, g * Sigmoid.call(bx)), None, None


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    _check_tensor(input, "softplus")
    if beta == 0:
        raise ValueError("softplus: beta must be nonzero")
    return Softplus.apply(input, beta, threshold)


# -- GELU -----------------------------------------------------------------------------------------
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_C = 0.044715


def _gelu_kernels(x):
    """(forward, backward) for the exact GELU on this array's device."""
    if isinstance(x, np.ndarray):
        if x.dtype in (np.float32, np.float64):
            return _EW.gelu, _EW.gelu_backward
        # float16: compute in float32, hand back the input's dtype.
        dt = x.dtype
        return (lambda x: _C.gelu_forward(x.astype(np.float32)).astype(dt),
                lambda g, x: _C.gelu_backward(g.astype(np.float32),
                                              x.astype(np.float32)).astype(dt))

    import cupy
    from cupyx.scipy.special import erf

    def fwd(x):
        return x * 0.5 * (1 + erf(x * (1 / math.sqrt(2))))

    def bwd(g, x):
        cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
        pdf = cupy.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return g * (cdf + x * pdf)

    return fwd, bwd


class GELU(Function):
    """y = x Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel); dy/dx = Phi(x) + x phi(x).

    ``approximate='tanh'``: Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2; its
    derivative is written with Tanh.call and operators, so it differentiates itself. The exact
    form's derivative is a C++ kernel: ``GELUBackward``, an op with its own backward."""

    def forward(self, x, approximate):
        self.save_for_backward(x)
        self.approximate = approximate
        if approximate == "none":
            fwd, _ = _gelu_kernels(x)
            return fwd(x)
        if _native1(x):
            return _EW.gelu_tanh(x)
        xp = array_module(x)
        c, k = x.dtype.type(_SQRT_2_OVER_PI), x.dtype.type(_GELU_TANH_C)
        return 0.5 * x * (1 + xp.tanh(c * (x + k * x * x * x)))

    def backward(self, g):
        (x,) = self.saved_tensors
        if self.approximate == "none":
            return GELUBackward.call(g, x), None
        if _native_fused(g, x):  # first order: one fused pass
            return _EW.gelu_tanh_backward(g, x), None
        c, k = _SQRT_2_OVER_PI, _GELU_TANH_C
        x2 = x * x
        t = Tanh.call(c * (x + k * x2 * x))
        dt = (1 - t * t) * (c * (1 + 3 * k * x2))
        return g * (0.5 * (1 + t) + 0.5 * x * dt), None


_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELUBackward(Function):
    """gx = g * GELU'(x) = g (Phi(x) + x phi(x)) for the exact GELU, one kernel pass.

    Its own derivatives: d/dg = GELU'(x), the same op again; d/dx = g GELU''(x) with
    GELU''(x) = 2 phi(x) + x phi'(x) = phi(x) (2 - x^2) (phi' = -x phi), written with Exp.call
    and operators so that third order works too."""

    def forward(self, g, x):
        self.save_for_backward(g, x)
        _, bwd = _gelu_kernels(x)
        return bwd(g, x)

    def backward(self, gg):
        g, x = self.saved_tensors
        dg = dx = None
        if self.needs_input_grad[0]:
            dg = GELUBackward.call(gg, x)
        if self.needs_input_grad[1]:
            x2 = x * x
            dx = gg * g * (Exp.call(x2 * -0.5) * _INV_SQRT_2PI) * (2 - x2)
        return dg, dx


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    _check_tensor(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate)


# -- SiLU -----------------------------------------------------------------------------------------
class SiLU(Function):
    """y = x sigmoid(x) (swish); dy/dx = s (1 + x (1 - s)) with s = sigmoid(x).

    Only x is saved for the graph. On the native engine forward and first-order backward are
    one fused pass each (the backward recomputes s: cheaper than storing and rereading it);
    otherwise the forward's s is kept as a plain attribute for first order. Under create_graph
    s is recomputed as a Sigmoid node, whose backward then supplies the s' = s (1 - s) of the
    second derivative."""

    def forward(self, x):
        self.save_for_backward(x)
        if _native1(x):  # one pass; backward recomputes s in its own fused pass
            self.sig = None
            return _EW.silu(x)
        s = _elementwise._sigmoid(x)
        self.sig = s
        return x * s

    def backward(self, g):
        (x,) = self.saved_tensors
        if isinstance(x, Tensor):
            s = Sigmoid.call(x)
        elif self.sig is None and _native_fused(g, x):
            return _EW.silu_backward(g, x)
        else:
            s = self.sig if self.sig is not None else Sigmoid.call(x)
        return g * s * (1 + x * (1 - s))

    def release(self) -> None:
        super().release()
        self.sig = None


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    _check_tensor(input, "silu")
    return _maybe_inplace(input, inplace, SiLU.apply)


# -- softmax / log-softmax ------------------------------------------------------------------------
def _softmax_dim(name: str, ndim: int, dim) -> int:
    if dim is None:
        # PyTorch's legacy rule, with its deprecation warning.
        dim = 0 if ndim in (0, 1, 3) else 1
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the "
                      f"call to include dim=X as an argument.", UserWarning, stacklevel=3)
    return _wrap_dim(dim, ndim)


def _shifted(x, axis):
    """x - max(x) along axis (the max-shift that keeps exp from overflowing: softmax and
    log-softmax are unchanged by subtracting a per-row constant)."""
    # No guard for non-finite maxima: a row holding +inf (inf - inf) or of all -inf (-inf - -inf)
    # becomes NaN, and so does its whole softmax and log-softmax, as in PyTorch.
    with np.errstate(invalid="ignore"):
        return x - x.max(axis=axis, keepdims=True)


class Softmax(Function):
    """y_i = e^(x_i) / sum_j e^(x_j) along ``dim`` (the course's output activation for
    multiclass classification), computed on max-shifted x.

    dx = y * (g - sum(g * y)): saves only the output y, so under create_graph the formula's y is
    this node's output and d/dx of the formula follows through the graph."""

    def forward(self, x, axis):
        if x.size == 0:
            self.save_for_backward(x)
            self.axis = axis
            return x.copy()
        if _nr.usable(x):
            e = _nr.softmax(x, axis, False)  # max, sum of exp, scale: one pass per row in cache
        else:
            e = _shifted(x, axis)
            array_module(x).exp(e, out=e)
            with np.errstate(invalid="ignore"):
                e /= e.sum(axis=axis, keepdims=True)
        self.save_for_backward(e)
        self.axis = axis
        return e

    def backward(self, g):
        (y,) = self.saved_tensors
        gy = g * y
        return _sub_from(gy, y * Sum.call(gy, (self.axis,), True)), None


class LogSoftmax(Function):
    """y_i = x_i - log sum_j e^(x_j) = (x_i - m) - log sum_j e^(x_j - m), m = max_j x_j, so
    large logits neither overflow nor lose precision.

    dx = g - softmax(x) * sum(g) with softmax(x) = e^y: saves only the output y."""

    def forward(self, x, axis):
        self.axis = axis
        if x.size == 0:
            self.save_for_backward(x)
            return x.copy()
        if _nr.usable(x):
            z = _nr.softmax(x, axis, True)
            self.save_for_backward(z)
            return z
        xp = array_module(x)
        z = _shifted(x, axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            z -= xp.log(xp.exp(z).sum(axis=axis, keepdims=True))
        self.save_for_backward(z)
        return z

    def backward(self, g):
        (y,) = self.saved_tensors
        return g - Exp.call(y) * Sum.call(g, (self.axis,), True), None


def _sub_from(a, b):
    """a - b, into a's memory when a is an array of our own (first order: no extra buffer),
    out of place (a recorded Sub) when it is a Tensor under create_graph."""
    if isinstance(a, Tensor):
        return a - b
    a -= b
    return a


def _softmax_family(cls, name, input, dim, dtype):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected a pydl.Tensor as input, got {type(input).__name__}")
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating point input, got dtype {input.dtype} "
                        "(pass dtype=pydl.float32 to convert)")
    axis = _softmax_dim(name, input.ndim, dim)
    if input.ndim == 0:
        from pydl.ops.shape import reshape

        return reshape(cls.apply(reshape(input, (1,)), 0), ())
    return cls.apply(input, axis)


def softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(x)_i = e^(x_i) / sum_j e^(x_j) along ``dim``, stable for large logits."""
    return _softmax_family(Softmax, "softmax", input, dim, dtype)


def log_softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """log(softmax(x)) along ``dim`` in one stable pass (never log of an underflowed 0)."""
    return _softmax_family(LogSoftmax, "log_softmax", input, dim, dtype)


# -- dropout --------------------------------------------------------------------------------------
class MaskMul(Function):
    """y = x * mask for a constant mask (dropout's scaled Bernoulli mask); dx = g * mask.

    The mask is a plain attribute, not a saved tensor: it has no derivative, and as an attribute
    it multiplies as a constant under create_graph (d2y/dx2 = 0, d(dx)/dg = mask). It is
    dropped after backward like a saved tensor."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        if self.mask is None:
            self.saved_tensors  # noqa: B018  (raises the "backward twice" error)
        return g * self.mask, None

    def release(self) -> None:
        self.mask = None
        self._freed = True


def _check_p(p) -> float:
    if not isinstance(p, (int, float, np.floating)) or isinstance(p, bool) or \
            not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def _keep_mask(shape, p: float, dtype, like):
    """A Bernoulli(1 - p) keep mask scaled by 1 / (1 - p), in ``dtype`` on ``like``'s device."""
    if p == 1.0:
        mask = np.zeros(shape, dtype=dtype)
    else:
        u = _random.generator().random(shape, dtype=np.float32 if dtype == np.float32
                                       else np.float64)
        mask = np.multiply(u >= p, dtype.type(1.0 / (1.0 - p)), dtype=dtype)
    if not isinstance(like, np.ndarray):
        mask = to_device_array(mask, Tensor._wrap(like).device)
    return mask


def _apply_mask(input: Tensor, mask_shape, p: float, inplace: bool) -> Tensor:
    mask = _keep_mask(mask_shape, p, input.dtype, input._data)
    return _maybe_inplace(input, inplace, lambda x: MaskMul.apply(x, mask))


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Inverted dropout: in training each element is zeroed with probability ``p`` and the
    survivors are scaled by 1 / (1 - p); in evaluation it is the identity (returns ``input``).

    The course's weight-scaling inference rule trains with an unscaled mask m ~ Bernoulli(1 - p)
    and multiplies the weights by (1 - p) at inference, so the expected input of the next layer
    matches: E[m x] = (1 - p) x. Inverted dropout moves that factor into training: E[m x / (1 - p)]
    = x, so the trained weights are used unchanged at inference. Both give the same network
    (the weights learned here equal the other scheme's weights times (1 - p))."""
    _check_tensor(input, "dropout")
    p = _check_p(p)
    if not training or p == 0.0:
        return input
    return _apply_mask(input, input.shape, p, inplace)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel dropout: zeroes whole feature maps of an (N, C, H, W) input (one Bernoulli draw
    per (n, c)), scaling the kept ones by 1 / (1 - p). A 3-D input is read as (N, C, L), with
    PyTorch's warning."""
    _check_tensor(input, "dropout2d")
    p = _check_p(p)
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is "
                      "deprecated and will result in an error in a future release. To retain the "
                      "behavior and silence this warning, please use dropout instead. Note that "
                      "dropout2d exists to provide channel-wise dropout on inputs with 2 spatial "
                      "dimensions, a channel dimension, and an optional batch dimension (i.e. 3D "
                      "or 4D inputs).", UserWarning, stacklevel=2)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                      "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                      "where C is the channel dim. This behavior will change in a future release "
                      "to interpret the input as one without a batch dimension, i.e. shape "
                      "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch "
                      "to using dropout1d instead.", UserWarning, stacklevel=2)
    if not training or p == 0.0:
        return input
    if input.ndim < 2:
        raise ValueError(f"dropout2d: input of shape {input.shape} has no channel dimension")
    mask_shape = input.shape[:2] + (1,) * (input.ndim - 2)
    return _apply_mask(input, mask_shape, p, inplace)


# -- Gaussian noise -------------------------------------------------------------------------------
def gaussian_noise(input: Tensor, std: float = 0.1, training: bool = True) -> Tensor:
    """x + std * eps, eps ~ N(0, I), while training; the identity in evaluation.

    Noise injection (the course's regulariser for inputs, hidden units or weights): the added
    noise is a constant for autograd, so dy/dx = 1. Not a PyTorch function: pydl's own."""
    _check_tensor(input, "gaussian_noise")
    if not isinstance(std, (int, float, np.floating)) or isinstance(std, bool) or std < 0:
        raise ValueError(f"gaussian_noise: std must be a non-negative number, got {std!r}")
    if not training or std == 0:
        return input
    draw_dtype = np.float32 if input.dtype == np.float32 else np.float64
    noise = _random.generator().standard_normal(input.shape, dtype=draw_dtype)
    noise *= std
    noise = noise.astype(input.dtype, copy=False)
    if not isinstance(input._data, np.ndarray):
        noise = to_device_array(noise, input.device)
    return _elementwise.add(input, Tensor._wrap(noise))
