"""Rounding and integer-style division (torch's names): ``floor``, ``ceil``, ``round``
(``decimals=``), ``trunc``, ``frac``, ``remainder`` (``%``, Python's sign: the result has the
divisor's sign), ``fmod`` (C's: the dividend's sign), ``floor_divide`` (``//``) and
``div(..., rounding_mode="trunc" | "floor")``.

Integer tensors stay integers (floor/ceil/round/trunc of an int64 tensor is a copy); bool
tensors are refused, as torch refuses them. Integer division by zero raises torch's
``RuntimeError: ZeroDivisionError``; float division by zero gives inf/nan as IEEE says.

Gradients follow torch's derivatives.yaml: the step functions (floor, ceil, round, trunc and
div with a rounding mode) have gradient zero; frac passes the gradient through; remainder and
fmod pass it to the dividend and give the divisor -g * floor(a / b) (resp. trunc), which is
constant between steps; floor_divide has no derivative in torch and raises in backward.
"""
from __future__ import annotations

import numpy as np

from pydl import dtypes as _dtypes
from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops.elementwise import (_check_same_device, _operand, _shape,
                                  promote_operands, raw, unbroadcast, zeros_like)
from pydl.ops import elementwise as _e
from pydl.tensor import Tensor


def _require_tensor(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


def _refuse(name, x, kinds="b", what=None):
    """torch implements these kernels for some dtypes only; it names the kernel and dtype."""
    if x.dtype.kind in kinds:
        raise NotImplementedError(f'"{what or name}" not implemented for '
                                  f"'{_dtypes.torch_name(x.dtype)}'")


# -- unary step functions ----------------------------------------------------------------------
class _Step(Function):
    """floor/ceil/trunc/round: piecewise constant, so the gradient is zero everywhere (torch)."""

    ufunc = None

    def forward(self, x):
        if x.dtype.kind in "iu":
            return x.copy()
        return getattr(array_module(x), self.ufunc)(x)

    def backward(self, g):
        return zeros_like(g)


class Floor(_Step):
    ufunc = "floor"


class Ceil(_Step):
    ufunc = "ceil"


class Trunc(_Step):
    ufunc = "trunc"


class Round(_Step):
    """Half to even (nearbyint), as torch. With ``decimals``, torch's own recipe: scale by
    10**decimals (divide by 10**-decimals for negative ones), round, scale back, all in the
    input's dtype (so results match torch bit for bit, not a float64 rounding)."""

    def forward(self, x, decimals=0):
        if x.dtype.kind in "iu":
            return x.copy()
        xp = array_module(x)
        if decimals == 0:
            return xp.rint(x)
        with np.errstate(over="ignore", invalid="ignore"):
            if decimals > 0:
                scale = x.dtype.type(10.0 ** decimals)
                return xp.rint(x * scale) / scale
            scale = x.dtype.type(10.0 ** -decimals)
            return xp.rint(x / scale) * scale

    def backward(self, g):
        return zeros_like(g), None


def floor(input):
    _require_tensor("floor", input)
    _refuse("floor", input, what="floor_vml_cpu")
    return Floor.apply(input)


def ceil(input):
    _require_tensor("ceil", input)
    _refuse("ceil", input, what="ceil_vml_cpu")
    return Ceil.apply(input)


def trunc(input):
    _require_tensor("trunc", input)
    _refuse("trunc", input, what="trunc_vml_cpu")
    return Trunc.apply(input)


fix = trunc  # torch.fix is torch.trunc


def round(input, *, decimals=0):  # noqa: A001
    """Round to the nearest integer, halves to even; ``decimals`` digits after the point
    (negative: to tens, hundreds...)."""
    _require_tensor("round", input)
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise TypeError(f"round(): argument 'decimals' must be int, not "
                        f"{type(decimals).__name__}")
    _refuse("round", input, what="round_vml_cpu")
    if decimals != 0 and input.dtype.kind in "iu":
        raise NotImplementedError(f"\"round_cpu\" not implemented for "
                                  f"'{_dtypes.torch_name(input.dtype)}'")
    return Round.apply(input, int(decimals))


class Frac(Function):
    """x - trunc(x) (the sign of x); its gradient is 1."""

    def forward(self, x):
        return x - array_module(x).trunc(x)

    def backward(self, g):
        return g


def frac(input):
    _require_tensor("frac", input)
    _refuse("frac", input, kinds="biu", what="frac_cpu")
    return Frac.apply(input)


# -- division with rounding --------------------------------------------------------------------
def _check_int_divisor(b, name):
    """Integer division by zero: torch raises rather than return garbage."""
    if b is None:
        return
    if isinstance(b, (int, np.integer)) and not isinstance(b, bool):
        if b == 0:
            raise RuntimeError("ZeroDivisionError")
        return
    if hasattr(b, "dtype") and b.dtype.kind in "biu":
        if b.size and not bool(array_module(b).all(b != 0)):
            raise RuntimeError("ZeroDivisionError")


def _int_floor_div(a, b):
    return array_module(a if hasattr(a, "dtype") else b).floor_divide(a, b)


def _int_trunc_div(a, b):
    """Integer division rounding toward zero (C's), from floor division: one step up where
    the quotient is negative and inexact."""
    xp = array_module(a if hasattr(a, "dtype") else b)
    q = xp.floor_divide(a, b)
    fix_up = (xp.remainder(a, b) != 0) & ((xp.asarray(a) < 0) != (xp.asarray(b) < 0))
    return q + fix_up.astype(q.dtype)


def _float_div(a, b, mode):
    xp = array_module(a if hasattr(a, "dtype") else b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if mode == "floor":
            # torch's div_floor: floor(a / b) corrected where the float quotient rounded up
            # across an integer; NumPy's floor_divide does the same correction.
            return xp.floor_divide(a, b)
        return xp.trunc(xp.true_divide(a, b))


class _IntegerStyleDivision(Function):
    """Shared forward checks: the computation dtype is decided by the caller (promotion)."""

    def _prep(self, a, b):
        self.shapes = (_shape(a), _shape(b))
        kind = (a.dtype if hasattr(a, "dtype") else b.dtype).kind
        if kind in "iu":
            _check_int_divisor(b, type(self).__name__)
        return kind in "iu"


class _ModuloBase(_IntegerStyleDivision):
    """a - b * q(a / b), q the rounding of ``rounding``; one formula for remainder and fmod."""

    ufunc = ""        # the array module's function: "remainder" or "fmod"
    rounding = ""     # the quotient's rounding: "floor" or "trunc"

    def forward(self, a, b):
        self._prep(a, b)
        self.save_for_backward(a, b)
        xp = array_module(a if hasattr(a, "dtype") else b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return getattr(xp, self.ufunc)(a, b)

    def backward(self, g):
        a, b = (raw(t) for t in self.saved_tensors)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g, self.shapes[0])
        if self.needs_input_grad[1]:
            # the rounded quotient is piecewise constant: a constant factor of the formula.
            gb = unbroadcast(-g * _float_div(a, b, self.rounding), self.shapes[1])
        return ga, gb


class Remainder(_ModuloBase):
    """a - b * floor(a / b): the sign of the divisor (Python's %)."""

    ufunc, rounding = "remainder", "floor"


class Fmod(_ModuloBase):
    """a - b * trunc(a / b): the sign of the dividend (C's fmod)."""

    ufunc, rounding = "fmod", "trunc"


class RoundedDiv(_IntegerStyleDivision):
    """div(a, b, rounding_mode=...): a step function of both, so both gradients are zero."""

    def forward(self, a, b, mode):
        integer = self._prep(a, b)
        if integer:
            return _int_floor_div(a, b) if mode == "floor" else _int_trunc_div(a, b)
        return _float_div(a, b, mode)

    def backward(self, g):
        ga = unbroadcast(zeros_like(g), self.shapes[0]) if self.needs_input_grad[0] else None
        gb = unbroadcast(zeros_like(g), self.shapes[1]) if self.needs_input_grad[1] else None
        return ga, gb, None


class FloorDivide(_IntegerStyleDivision):
    """torch.floor_divide: floor(a / b). torch defines no derivative for it."""

    def forward(self, a, b):
        integer = self._prep(a, b)
        return _int_floor_div(a, b) if integer else _float_div(a, b, "floor")

    def backward(self, g):
        raise RuntimeError("derivative for aten::floor_divide is not implemented")


def _division_operands(name, a, b, kernel):
    a, b = _operand(a), _operand(b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}(): expected at least one Tensor argument")
    _check_same_device(a, b, name)
    from pydl.ops.shape_extra import broadcast_shapes

    broadcast_shapes(_shape(a), _shape(b))  # torch's message for shapes that do not broadcast
    a, b = promote_operands(a, b)
    dtype = a.dtype if isinstance(a, Tensor) else b.dtype
    if dtype == np.bool_:
        raise NotImplementedError(f'"{kernel}" not implemented for \'Bool\'')
    return a, b


def remainder(input, other):
    """Python's modulus: the result takes the divisor's sign (torch.remainder, ``%``)."""
    a, b = _division_operands("remainder", input, other, "remainder_cpu")
    return Remainder.apply(a, b)


def fmod(input, other):
    """C's fmod: the result takes the dividend's sign."""
    _require_tensor("fmod", input)  # torch.fmod has no Number-first overload
    a, b = _division_operands("fmod", input, other, "fmod_cpu")
    return Fmod.apply(a, b)


def floor_divide(input, other):
    """floor(input / other) (torch.floor_divide, ``//``), in the promoted dtype."""
    a, b = _division_operands("floor_divide", input, other, "div_floor_cpu")
    return FloorDivide.apply(a, b)


def div(input, other, *, rounding_mode=None):
    """input / other. ``rounding_mode=None``: true division (integers give the default float
    dtype); ``"trunc"``: rounded toward zero, ``"floor"``: rounded down, both in the promoted
    dtype (integers stay integers)."""
    if rounding_mode is None:
        return _e.div(input, other)
    if rounding_mode not in ("trunc", "floor"):
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                           f"but found '{rounding_mode}'")
    kernel = "div_floor_cpu" if rounding_mode == "floor" else "div_trunc_cpu"
    a, b = _division_operands("div", input, other, kernel)
    return RoundedDiv.apply(a, b, rounding_mode)


divide = div


def true_divide(input, other):
    return _e.div(input, other)


# -- Tensor methods, in-place forms and operators ----------------------------------------------
def _inplace(fn):
    def method(self, *args, **kwargs):
        return self._inplace(lambda s, *a: fn(s, *a, **kwargs), *args)

    method.__name__ = fn.__name__ + "_"
    return method


def _reflected(fn):
    return lambda self, other: fn(other, self)


methods = {
    "floor": floor, "ceil": ceil, "trunc": trunc, "fix": trunc, "round": round, "frac": frac,
    "floor_": _inplace(floor), "ceil_": _inplace(ceil), "trunc_": _inplace(trunc),
    "fix_": _inplace(trunc), "round_": _inplace(round), "frac_": _inplace(frac),
    "remainder": remainder, "remainder_": _inplace(remainder),
    "fmod": fmod, "fmod_": _inplace(fmod),
    "floor_divide": floor_divide, "floor_divide_": _inplace(floor_divide),
    "div": div, "div_": _inplace(div), "divide": div, "divide_": _inplace(div),
    "true_divide": true_divide, "true_divide_": _inplace(true_divide),
    "__mod__": remainder, "__rmod__": _reflected(remainder), "__imod__": _inplace(remainder),
    "__floordiv__": floor_divide, "__rfloordiv__": _reflected(floor_divide),
    "__ifloordiv__": _inplace(floor_divide),
}
