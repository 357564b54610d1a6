"""Special functions and fused multiply-adds: ``erfinv``, ``addcmul``/``addcmul_``,
``addcdiv``/``addcdiv_`` (torch's names and ``value=`` keyword).

erfinv(x) is the y with erf(y) = x on (-1, 1) (+-inf at +-1, NaN outside). NumPy has no erf, so
it is computed in float64 from the C library's erf/erfc (``math.erf``, correct to about 1 ulp)
by Halley's method from Winitzki's closed-form guess (relative error < 2e-3, so three cubically
convergent steps reach float64 precision). Steps solve erfc(y) = 1 - |x| for |x| > 1/2, where
1 - |x| is exact and erf(y) near 1 would cancel. float32 inputs are computed in float64 and
rounded once.

    d/dx erfinv(x) = sqrt(pi)/2 * exp(erfinv(x)^2)      (the output is saved: NB y, not x)
"""
from __future__ import annotations

import math

import numpy as np

from pydl import _C
from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops.elementwise import _native1
from pydl.tensor import Tensor

_EW = _C.elementwise
_erf_ufunc = np.frompyfunc(math.erf, 1, 1)
_erfc_ufunc = np.frompyfunc(math.erfc, 1, 1)


def erf_float64(x: np.ndarray) -> np.ndarray:
    """erf of a float64 NumPy array through the C library's erf."""
    return np.asarray(_erf_ufunc(x)).astype(np.float64) if x.size else x.copy()


def erfc_float64(x: np.ndarray) -> np.ndarray:
    return np.asarray(_erfc_ufunc(x)).astype(np.float64) if x.size else x.copy()


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_WINITZKI_A = 0.147


def erfinv_float64(x: np.ndarray) -> np.ndarray:
    """erfinv of a float64 array (NumPy): Winitzki's guess + 3 Halley steps on erf or erfc."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    ax = np.abs(x)
    inside = ax < 1
    out[ax == 1] = np.copysign(np.inf, x[ax == 1])
    if not inside.any():
        return out
    xi = x[inside]
    a = np.abs(xi)
    one_minus = 1.0 - a  # exact for a >= 1/2 (Sterbenz)
    log_term = np.log(one_minus * (1.0 + a))  # log(1 - x^2), no cancellation
    t = 2.0 / (math.pi * _WINITZKI_A) + 0.5 * log_term
    y = np.sqrt(np.sqrt(t * t - log_term / _WINITZKI_A) - t)
    tail = a > 0.5
    for _ in range(3):
        # f(y) = erf(y) - a, written as (1 - a) - erfc(y) in the tail.
        f = np.empty_like(y)
        f[~tail] = erf_float64(y[~tail]) - a[~tail]
        f[tail] = one_minus[tail] - erfc_float64(y[tail])
        fp = _TWO_OVER_SQRT_PI * np.exp(-y * y)
        # Halley: f'' = -2 y f', so y -= f / (f' - f f'' / (2 f')) = f / (f' + y f).
        with np.errstate(divide="ignore", invalid="ignore"):
            step = f / (fp + y * f)
        y = y - np.where(np.isfinite(step), step, 0.0)
    out[inside] = np.copysign(y, xi)
    return out


def _float_dtype(x):
    from pydl import dtypes as _dtypes

    return x.dtype if x.dtype.kind == "f" else _dtypes.get_default_dtype()


class Erfinv(Function):
    def forward(self, x):
        xp = array_module(x)
        dtype = _float_dtype(x)
        if xp is np:
            y = erfinv_float64(x.astype(np.float64)).astype(dtype, copy=False)
        else:
            from cupyx.scipy.special import erfinv as _cupy_erfinv

            y = _cupy_erfinv(x.astype(dtype))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        from pydl.ops.elementwise import Exp

        (y,) = self.saved_tensors
        return g * (math.sqrt(math.pi) / 2) * Exp.call(y * y)


def erfinv(input):
    """The inverse error function (torch.erfinv): erf(erfinv(x)) = x for x in (-1, 1)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"erfinv(): argument 'input' must be a Tensor, got "
                        f"{type(input).__name__}")
    return Erfinv.apply(input)


# -- addcmul / addcdiv --------------------------------------------------------------------------
def _check_value(name, value, *tensors):
    if isinstance(value, Tensor):
        raise TypeError(f"{name}(): argument 'value' must be a Number, not Tensor")
    if isinstance(value, float) and all(t.dtype.kind in "iub" for t in tensors
                                        if isinstance(t, Tensor)):
        raise RuntimeError(f"{name}(): for integral input tensors, argument 'value' must not "
                           f"be a floating point number")


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 * tensor2 (torch.addcmul), broadcasting the three."""
    from pydl.ops.elementwise import add, mul

    _check_value("addcmul", value, input, tensor1, tensor2)
    prod = mul(tensor1, tensor2)
    return add(input, prod if value == 1 else mul(prod, value))


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 / tensor2 (torch.addcdiv); integer tensor1 and tensor2 are
    refused, as PyTorch refuses them (the division would truncate)."""
    from pydl.ops.elementwise import add, div, mul

    _check_value("addcdiv", value, input, tensor1, tensor2)
    for t in (tensor1, tensor2):
        if isinstance(t, Tensor) and t.dtype.kind in "iub":
            raise RuntimeError("Integer division with addcdiv is no longer supported, and in a "
                               "future release addcdiv will perform a true division of tensor1 "
                               "and tensor2. Use torch.addcmul(input, tensor1, 1 / tensor2) for "
                               "the floor-free form.")
    quot = div(tensor1, tensor2)
    return add(input, quot if value == 1 else mul(quot, value))


def addcmul_(input, tensor1, tensor2, *, value=1):
    return input._inplace(lambda s, a, b: addcmul(s, a, b, value=value), tensor1, tensor2)


def addcdiv_(input, tensor1, tensor2, *, value=1):
    return input._inplace(lambda s, a, b: addcdiv(s, a, b, value=value), tensor1, tensor2)


# -- log1p, expm1, erf ----------------------------------------------------------------------------
# Forward on the native elementwise engine (csrc/elementwise: vectorised log1p/expm1, float erf;
# float64 erf lane by lane through the C library) for float arrays of _NATIVE_MIN elements or
# more, the same size rule as exp/log; small arrays, other dtypes and CuPy arrays go to NumPy /
# CuPy (NumPy has no erf: the C library's, through erf_float64).
class Log1p(Function):
    """log(1 + x), accurate for small x; d/dx = 1 / (1 + x) (the input is saved)."""

    def forward(self, x):
        self.save_for_backward(x)
        return _EW.log1p(x) if _native1(x) else array_module(x).log1p(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g / (1 + x)


class Expm1(Function):
    """e^x - 1, accurate for small x; d/dx = e^x = y + 1 (NB: the output is saved)."""

    def forward(self, x):
        from pydl.ops.elementwise import _saved_array

        y = _EW.expm1(x) if _native1(x) else _saved_array(array_module(x).expm1(x))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return g * (y + 1)


class Erf(Function):
    """erf(x) = 2/sqrt(pi) int_0^x e^(-t^2) dt (the C library's erf, float64); d/dx =
    2/sqrt(pi) e^(-x^2)."""

    def forward(self, x):
        self.save_for_backward(x)
        if _native1(x):
            return _EW.erf(x)
        xp = array_module(x)
        if xp is np:
            return erf_float64(x.astype(np.float64)).astype(x.dtype, copy=False)
        from cupyx.scipy.special import erf as _cupy_erf

        return _cupy_erf(x)

    def backward(self, g):
        from pydl.ops.elementwise import Exp

        (x,) = self.saved_tensors
        return g * _TWO_OVER_SQRT_PI * Exp.call(-(x * x))


def _unary_float(cls, input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, got "
                        f"{type(input).__name__}")
    if input.dtype.kind != "f":
        input = input.to(_float_dtype(input._data))
    return cls.apply(input)


def log1p(input):
    """log(1 + x) (torch.log1p)."""
    return _unary_float(Log1p, input, "log1p")


def expm1(input):
    """e^x - 1 (torch.expm1)."""
    return _unary_float(Expm1, input, "expm1")


def erf(input):
    """The error function (torch.erf)."""
    return _unary_float(Erf, input, "erf")
