"""Pointwise math PyTorch scripts reach for (torch's names, arguments and dtype rules):
``xlogy``, ``logaddexp``, ``logaddexp2``, ``atan2``/``arctan2``, ``hypot``, ``lerp``,
``deg2rad``/``rad2deg``, ``nan_to_num``, ``isclose``, ``clamp_min``/``clamp_max``, ``sgn``.

Operands promote as every binary op does (pydl.dtypes.result_type); float-valued functions of
integers compute in the default dtype. Each op has one backward formula written with operators
and ``Op.call`` so that it also runs under create_graph; the points where torch's formula is
a chosen value (atan2 at the origin: 0; xlogy's x-gradient at x = 0: 0) follow torch.
"""
from __future__ import annotations

import math

import numpy as np

from pydl import dtypes as _dtypes
from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops import elementwise as _e
from pydl.ops.elementwise import (_check_same_device, _operand, _saved_array, _shape,
                                  promote_operands, raw, unbroadcast)
from pydl.tensor import Tensor

_LN2 = math.log(2.0)


def _ieee(backward):
    """Run a backward formula without NumPy's warnings: 0/0 and x/0 at the special points are
    torch's NaN and inf, not errors."""
    def run(self, g):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return backward(self, g)

    return run


def _xp(a, b=None):
    return array_module(a if hasattr(a, "dtype") else b)


def _broadcastable(*operands):
    """torch's message for shapes that do not broadcast (NumPy's would be a ValueError)."""
    from pydl.ops.shape_extra import broadcast_shapes

    broadcast_shapes(*(_shape(x) for x in operands))


def _float_operands(name, a, b, *, tensor_other=False, kernel=None, floats_only=False):
    """Promote ``a`` and ``b`` as a binary op; integer results compute in the default float
    dtype (torch's float-valued binary ops). ``tensor_other``: torch's signature takes only a
    Tensor as ``other`` (atan2, hypot)."""
    a, b = _operand(a), _operand(b)
    if tensor_other and not isinstance(a, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(a).__name__}")
    if tensor_other and not isinstance(b, Tensor):
        raise TypeError(f"{name}(): argument 'other' (position 2) must be Tensor, not "
                        f"{type(b).__name__}")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}(): expected at least one Tensor argument")
    _check_same_device(a, b, name)
    _broadcastable(a, b)
    dtype = _dtypes.result_type(a, b)
    if dtype.kind in "biu":
        if floats_only:
            raise NotImplementedError(f'"{kernel or name + "_cpu"}" not implemented for '
                                      f"'{_dtypes.torch_name(dtype)}'")
        dtype = _dtypes.get_default_dtype()
    a, b = _e._to_dtype(a, dtype), _e._to_dtype(b, dtype)
    # Python numbers become 0-d arrays of the computation dtype, so NumPy cannot widen.
    if not isinstance(a, Tensor):
        a = Tensor._wrap(_xp(b._data).asarray(a, dtype=dtype))
    if not isinstance(b, Tensor):
        b = Tensor._wrap(_xp(a._data).asarray(b, dtype=dtype))
    return a, b


# -- xlogy ---------------------------------------------------------------------------------------
class Xlogy(Function):
    """x * log(y), defined as 0 where x == 0 (unless y is NaN)."""

    def forward(self, x, y):
        self.save_for_backward(x, y)
        xp = _xp(x, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = x * xp.log(y)
        return xp.where((x == 0) & ~xp.isnan(y), xp.zeros((), out.dtype), out)

    @_ieee
    def backward(self, g):
        x, y = self.saved_tensors
        gx = gy = None
        if self.needs_input_grad[0]:
            # torch: grad * xlogy(x != 0, y): zero where x == 0, log y elsewhere.
            nonzero = (raw(x) != 0).astype(raw(y).dtype)
            gx = unbroadcast(g * Xlogy.call(nonzero, y), _shape(x))
        if self.needs_input_grad[1]:
            gy = unbroadcast(g * x / y, _shape(y))
        return gx, gy


def xlogy(input, other):
    a, b = _float_operands("xlogy", input, other)
    return Xlogy.apply(a, b)


# -- logaddexp, logaddexp2 -----------------------------------------------------------------------
class LogAddExp(Function):
    """log(e^a + e^b) without overflow (NumPy's logaddexp); d/da = 1 / (1 + e^(b - a))."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return _xp(a).logaddexp(a, b)

    @_ieee
    def backward(self, g):
        a, b = self.saved_tensors
        # torch's form 1 / (1 + e^(b - a)): exact where one side is infinite and the other not.
        ga = unbroadcast(g / (1 + _e.Exp.call(b - a)), _shape(a)) \
            if self.needs_input_grad[0] else None
        gb = unbroadcast(g / (1 + _e.Exp.call(a - b)), _shape(b)) \
            if self.needs_input_grad[1] else None
        return ga, gb


class LogAddExp2(Function):
    """log2(2^a + 2^b); d/da = 1 / (1 + 2^(b - a))."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return _xp(a).logaddexp2(a, b)

    @_ieee
    def backward(self, g):
        a, b = self.saved_tensors
        ga = unbroadcast(g / (1 + _e.Exp.call((b - a) * _LN2)), _shape(a)) \
            if self.needs_input_grad[0] else None
        gb = unbroadcast(g / (1 + _e.Exp.call((a - b) * _LN2)), _shape(b)) \
            if self.needs_input_grad[1] else None
        return ga, gb


def logaddexp(input, other):
    a, b = _float_operands("logaddexp", input, other, tensor_other=True, floats_only=True)
    return LogAddExp.apply(a, b)


def logaddexp2(input, other):
    a, b = _float_operands("logaddexp2", input, other, tensor_other=True, floats_only=True)
    return LogAddExp2.apply(a, b)


# -- atan2, hypot ---------------------------------------------------------------------------------
class Atan2(Function):
    """The angle of (other, input); d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2), both 0 at
    the origin as in torch."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return _xp(a).arctan2(a, b)

    @_ieee
    def backward(self, g):
        a, b = self.saved_tensors
        den = a * a + b * b
        # The origin's 0/0 becomes 0: a constant 1 added to the denominator only there.
        den = den + (raw(den) == 0)
        ga = unbroadcast(g * b / den, _shape(a)) if self.needs_input_grad[0] else None
        gb = unbroadcast(-g * a / den, _shape(b)) if self.needs_input_grad[1] else None
        return ga, gb


class Hypot(Function):
    """sqrt(a^2 + b^2) without overflow; d/da = a / y (NaN at the origin, as torch)."""

    def forward(self, a, b):
        y = _saved_array(_xp(a).hypot(a, b))
        self.save_for_backward(a, b, y)
        return y

    @_ieee
    def backward(self, g):
        a, b, y = self.saved_tensors
        ga = unbroadcast(g * a / y, _shape(a)) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * b / y, _shape(b)) if self.needs_input_grad[1] else None
        return ga, gb


def atan2(input, other):
    a, b = _float_operands("atan2", input, other, tensor_other=True)
    return Atan2.apply(a, b)


arctan2 = atan2


def hypot(input, other):
    a, b = _float_operands("hypot", input, other, tensor_other=True, floats_only=True)
    return Hypot.apply(a, b)


# -- lerp -----------------------------------------------------------------------------------------
class Lerp(Function):
    """start + weight * (end - start), in torch's two-sided form (exact at both ends)."""

    def forward(self, start, end, weight):
        self.save_for_backward(start, end, weight)
        xp = _xp(start)
        diff = end - start
        return xp.where(xp.abs(weight) < 0.5, start + weight * diff,
                        end - diff * (1 - weight))

    def backward(self, g):
        start, end, w = self.saved_tensors
        gs = ge = gw = None
        if self.needs_input_grad[0]:
            gs = unbroadcast(g * (1 - w), _shape(start))
        if self.needs_input_grad[1]:
            ge = unbroadcast(g * w, _shape(end))
        if self.needs_input_grad[2]:
            gw = unbroadcast(g * (end - start), _shape(w))
        return gs, ge, gw


def lerp(input, end, weight):
    """input + weight * (end - input) (torch.lerp); ``weight`` a number or a Tensor of the
    same dtype, all three broadcast."""
    if not isinstance(input, Tensor) or not isinstance(end, Tensor):
        raise TypeError("lerp(): arguments 'input' and 'end' must be Tensors")
    _check_same_device(input, end, "lerp")
    tensor_weight = isinstance(weight, Tensor)
    if input.dtype.kind not in "f":
        kernel = "lerp_kernel_tensor" if tensor_weight else "lerp_kernel_scalar"
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{_dtypes.torch_name(input.dtype)}'")
    if end.dtype != input.dtype:
        raise RuntimeError(f"expected dtype {_dtypes.torch_name(input.dtype).lower()} for `end` "
                           f"but got dtype {_dtypes.torch_name(end.dtype).lower()}")
    if tensor_weight:
        _check_same_device(input, weight, "lerp")
        if weight.dtype != input.dtype:
            raise RuntimeError(f"expected dtype {_dtypes.torch_name(input.dtype).lower()} for "
                               f"`weight` but got dtype "
                               f"{_dtypes.torch_name(weight.dtype).lower()}")
    elif isinstance(weight, (int, float, np.number)) and not isinstance(weight, bool):
        weight = float(weight)
    else:
        raise TypeError(f"lerp(): argument 'weight' must be a Number or a Tensor, not "
                        f"{type(weight).__name__}")
    _broadcastable(input, end, weight)
    return Lerp.apply(input, end, weight)


# -- degrees and radians --------------------------------------------------------------------------
def _as_float(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    return x if x.dtype.kind == "f" else _e.cast(x, _dtypes.get_default_dtype())


def deg2rad(input):
    return _e.mul(_as_float("deg2rad", input), math.pi / 180.0)


def rad2deg(input):
    return _e.mul(_as_float("rad2deg", input), 180.0 / math.pi)


# -- nan_to_num -----------------------------------------------------------------------------------
class NanToNum(Function):
    """NaN -> nan, +inf -> posinf (default: the dtype's max), -inf -> neginf (its lowest); the
    gradient passes where the input was finite and is 0 where it was replaced (torch)."""

    def forward(self, x, nan, posinf, neginf):
        self.save_for_backward(x)
        info = np.finfo(x.dtype)
        posinf = info.max if posinf is None else posinf
        neginf = info.min if neginf is None else neginf
        xp = array_module(x)
        with np.errstate(over="ignore"):
            return xp.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        x = raw(self.saved_tensors[0])
        return g * array_module(x).isfinite(x), None, None, None


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    if not isinstance(input, Tensor):
        raise TypeError(f"nan_to_num(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if input.dtype.kind != "f":
        return _e.clone(input)  # integers and bools have nothing to replace (torch: a copy)
    return NanToNum.apply(input, nan, posinf, neginf)


# -- isclose --------------------------------------------------------------------------------------
def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| elementwise, or equal (infinities included);
    NaNs equal only with ``equal_nan``. Both must be Tensors of one dtype (torch)."""
    for pos, (argname, t) in enumerate((("input", input), ("other", other)), 1):
        if not isinstance(t, Tensor):
            raise TypeError(f"isclose(): argument '{argname}' (position {pos}) must be Tensor, "
                            f"not {type(t).__name__}")
    _check_same_device(input, other, "isclose")
    if input.dtype != other.dtype:
        raise RuntimeError(f"{_dtypes.torch_name(input.dtype)} did not match "
                           f"{_dtypes.torch_name(other.dtype)}")
    _broadcastable(input, other)
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol}")
    a, b = input._data, other._data
    xp = array_module(a)
    close = a == b
    if a.dtype.kind == "b":
        return Tensor._wrap(xp.asarray(close))
    if a.dtype.kind in "iu":
        a, b = a.astype(np.float64), b.astype(np.float64)  # no wrap-around in |a - b|
    elif equal_nan:
        close = close | (xp.isnan(a) & xp.isnan(b))
    if rtol != 0 or atol != 0:
        with np.errstate(invalid="ignore", over="ignore"):
            actual = xp.abs(a - b)
            allowed = atol + xp.abs(rtol * b)
            close = close | (xp.isfinite(actual) & (actual <= allowed))
    return Tensor._wrap(xp.asarray(close))


# -- clamp_min / clamp_max ------------------------------------------------------------------------
class ClampBound(Function):
    """max(x, bound) or min(x, bound); on a tie the gradient goes to x, as torch's clamp."""

    def forward(self, x, bound, is_min):
        self.save_for_backward(x, bound)
        self.is_min = is_min
        self.shapes = (_shape(x), _shape(bound))
        xp = _xp(x, bound)
        return xp.maximum(x, bound) if is_min else xp.minimum(x, bound)

    def backward(self, g):
        x, bound = (raw(t) for t in self.saved_tensors)
        keep = (x >= bound) if self.is_min else (x <= bound)
        xp = _xp(keep)
        # NaN in x propagates (maximum/minimum give NaN) and its gradient goes to x.
        keep = keep | xp.isnan(x) if x.dtype.kind == "f" else keep
        gx = unbroadcast(g * keep, self.shapes[0]) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * ~keep, self.shapes[1]) if self.needs_input_grad[1] else None
        return gx, gb, None


def _clamp_bound(name, input, bound, is_min):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if bound is None:
        raise TypeError(f"{name}(): argument '{'min' if is_min else 'max'}' must be a Number "
                        f"or a Tensor, not NoneType")
    b = _operand(bound)
    _check_same_device(input, b, name)
    _broadcastable(input, b)
    x, b = promote_operands(input, b)
    if not isinstance(b, Tensor) and x.dtype.kind == "b":
        raise NotImplementedError(f'"{name}_scalar_cpu" not implemented for \'Bool\'')
    if not isinstance(b, Tensor):
        b = Tensor._wrap(array_module(x._data).asarray(b, dtype=x.dtype))
    return ClampBound.apply(x, b, is_min)


def clamp_min(input, min):  # noqa: A002
    return _clamp_bound("clamp_min", input, min, True)


def clamp_max(input, max):  # noqa: A002
    return _clamp_bound("clamp_max", input, max, False)


# -- sgn ------------------------------------------------------------------------------------------
def sgn(input):
    """sign for real tensors (torch.sgn is x / |x| for complex, which pydl has none of); bool
    tensors are their own sign."""
    if not isinstance(input, Tensor):
        raise TypeError(f"sgn(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if input.dtype.kind == "b":
        return _e.clone(input)
    return _e.sign(input)


def sign(input):
    """torch.sign, bool tensors included (NumPy's sign refuses bools)."""
    if isinstance(input, Tensor) and input.dtype.kind == "b":
        return _e.clone(input)
    return _e.sign(input)


# -- Tensor methods and in-place forms ------------------------------------------------------------
def _inplace(fn):
    def method(self, *args, **kwargs):
        return self._inplace(lambda s, *a: fn(s, *a, **kwargs), *args)

    method.__name__ = fn.__name__ + "_"
    return method


methods = {
    "xlogy": xlogy, "xlogy_": _inplace(xlogy),
    "logaddexp": logaddexp, "logaddexp2": logaddexp2,
    "atan2": atan2, "atan2_": _inplace(atan2), "arctan2": atan2, "arctan2_": _inplace(atan2),
    "hypot": hypot, "hypot_": _inplace(hypot),
    "lerp": lerp, "lerp_": _inplace(lerp),
    "deg2rad": deg2rad, "deg2rad_": _inplace(deg2rad),
    "rad2deg": rad2deg, "rad2deg_": _inplace(rad2deg),
    "nan_to_num": nan_to_num, "nan_to_num_": _inplace(nan_to_num),
    "isclose": isclose,
    "clamp_min": clamp_min, "clamp_min_": _inplace(clamp_min),
    "clamp_max": clamp_max, "clamp_max_": _inplace(clamp_max),
    "sgn": sgn, "sgn_": _inplace(sgn), "sign": sign, "sign_": _inplace(sign),
}
