"""Elementwise ops: arithmetic with NumPy broadcasting, unary math, comparisons, casts.

Each op's forward and backward sit together. Binary ops return gradients reduced back to each
input's shape (``unbroadcast``). Where backward needs f(x) rather than x (exp, tanh, sigmoid,
relu), the output is saved instead of the input: it is what the derivative is written in.
"""
from __future__ import annotations

import operator
from typing import Optional

import numpy as np

from pydl import _C
from pydl import dtypes as _dtypes
from pydl.autograd import function as _function
from pydl.autograd.function import Function
from pydl.autograd.grad_mode import _state as _grad_state
from pydl.device import array_module, to_device_array
from pydl.tensor import Tensor


# -- the native elementwise engine (csrc/elementwise/, pydl._C.elementwise) ---------------------
# CPU float32/float64 arrays of at least _NATIVE_MIN elements run on pydl's own kernels (SIMD
# chosen at run time, threads, strided inputs read in place, Python numbers as scalars); smaller
# ones, other dtypes and CUDA arrays stay on NumPy / CuPy. Below the threshold NumPy's ufunc
# call is cheaper than the binding's argument handling (measured: benchmarks/elementwise.py,
# "overhead" rows), and a tiny op is all overhead.
# A same-shape binary op on two arrays is a plain streaming loop that NumPy runs as fast on
# one thread; it moves to the engine from _NATIVE_MIN_SAME_SHAPE elements, where the engine's
# threads and cached output pages pay. Broadcasts, scalar operands and everything with a
# polynomial in it win from _NATIVE_MIN (measured on the 2-core EPYC development VM: relu of
# 4096 floats 1.2 us vs NumPy's 3.6 us, sigmoid 5.8 vs 11 us; add of 4096: 1.5 vs 1.2 us).
_EW = _C.elementwise
_NATIVE_MIN = 1024
_NATIVE_MIN_SAME_SHAPE = 1 << 16


def _native1(x) -> bool:
    """True when unary kernel ``x`` should run on the native engine."""
    return type(x) is np.ndarray and x.size >= _NATIVE_MIN and x.dtype.char in "fd"


def _native2(a, b) -> bool:
    """True when a binary kernel on ``a`` and ``b`` (arrays of one float dtype, or an array
    and a Python number) should run on the native engine. Sizes are tested first: most calls
    on small tensors stop there, and this runs on every op."""
    if type(a) is np.ndarray:
        if type(b) is np.ndarray:
            n, m = a.size, b.size
            if n < _NATIVE_MIN and m < _NATIVE_MIN:
                return False
            if a.shape == b.shape and n < _NATIVE_MIN_SAME_SHAPE:
                return False
            return a.dtype.char in "fd" and b.dtype.char == a.dtype.char
        return a.size >= _NATIVE_MIN and type(b) in (float, int) and a.dtype.char in "fd"
    return (type(b) is np.ndarray and b.size >= _NATIVE_MIN and type(a) in (float, int)
            and b.dtype.char in "fd")


def _native_fused(g, s) -> bool:
    """True when a fused backward kernel on gradient ``g`` and saved array ``s`` should run on
    the native engine: it replaces two or three NumPy passes, so it wins from _NATIVE_MIN."""
    return (type(g) is np.ndarray and type(s) is np.ndarray and g.dtype.char in "fd"
            and s.dtype.char == g.dtype.char and g.size >= _NATIVE_MIN)


def _sum_to_shape(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    ndiff = grad.ndim - len(shape)
    if ndiff > 0:
        grad = grad.sum(axis=tuple(range(ndiff)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


class SumTo(Function):
    """The gradient of a broadcast: sum back to the operand's shape. Its own gradient is the
    broadcast again, so the pair differentiates to any order."""

    def forward(self, g, shape):
        self.in_shape = g.shape
        return _sum_to_shape(g, shape)

    def backward(self, gg):
        from pydl.ops.shape import Expand

        return Expand.call(gg, self.in_shape), None


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` (an array, or a Tensor under create_graph) over the axes that broadcasting
    added or stretched, giving ``shape``."""
    if grad.shape == shape:
        return grad
    return SumTo.call(grad, shape)


def _saved_array(y):
    """A ufunc's result as an array: for a 0-d input NumPy returns a scalar, which ``apply``
    turns into a new 0-d array; an op that saves its output must save that same array, or
    create_graph could not tell it is the output (and would refuse it as an intermediate)."""
    return y if isinstance(y, np.ndarray) else array_module(y).asarray(y)


def raw(x):
    """The array behind a Tensor (or the array itself): for masks and other piecewise-constant
    factors of a formula, which carry no derivative."""
    return x._data if isinstance(x, Tensor) else x


def zeros_like(x):
    """A constant zero gradient for ``x`` (array or Tensor)."""
    x = raw(x)
    return array_module(x).zeros_like(x)


def _shape(x):
    if type(x) is np.ndarray:
        return x.shape
    return x.shape if hasattr(x, "shape") else ()


def _check_same_device(a, b, op: str) -> None:
    if isinstance(a, Tensor) and isinstance(b, Tensor) and \
            type(a._data) is not type(b._data):
        raise RuntimeError(f"{op}: expected all tensors on the same device, got {a.device} and "
                           f"{b.device}")


def _operand(x):
    """A Python number stays a number (NumPy keeps the tensor's dtype); arrays become Tensors.
    A NumPy scalar is a number too, as in torch (np.float64 is a float subclass, and NumPy would
    not take it as a weak scalar: float32 + np.float64(1.5) would be float64)."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (Tensor, int, float, bool)):
        return x
    if isinstance(x, np.ndarray) or hasattr(x, "__array__") or isinstance(x, (list, tuple)):
        return Tensor(x)
    raise TypeError(f"unsupported operand type {type(x).__name__}")


# -- arithmetic --------------------------------------------------------------------------------
# Each binary op's kernel on arrays (or an array and a Python number) is a function of its own:
# forward calls it, and _binary calls it directly when nothing is recorded (no node at all);
# ``small`` is what the kernel runs for NumPy operands under _NATIVE_MIN elements.
def _add_kernel(a, b):
    return _EW.add(a, b) if _native2(a, b) else a + b


def _sub_kernel(a, b):
    return _EW.sub(a, b) if _native2(a, b) else a - b


def _mul_kernel(a, b):
    return _EW.mul(a, b) if _native2(a, b) else a * b


def _div_kernel(a, b):
    return _EW.div(a, b) if _native2(a, b) else a / b


def _pow_kernel(a, b):
    if type(b) in (float, int) and _native1(a):
        return _EW.pow_scalar(a, b)  # exact fast paths for 2, 3, 0.5, -0.5, -1, -2
    if _native2(a, b):
        return _EW.pow(a, b)
    return _saved_array(a ** b)


def _maximum_kernel(a, b):
    return _EW.maximum(a, b) if _native2(a, b) else array_module(a).maximum(a, b)


def _minimum_kernel(a, b):
    return _EW.minimum(a, b) if _native2(a, b) else array_module(a).minimum(a, b)


class Add(Function):
    kernel = staticmethod(_add_kernel)
    small = staticmethod(operator.add)  # what the kernel does below _NATIVE_MIN elements

    def forward(self, a, b):
        self.shapes = (_shape(a), _shape(b))
        return _add_kernel(a, b)

    def backward(self, g):
        sa, sb = self.shapes
        return (unbroadcast(g, sa) if self.needs_input_grad[0] else None,
                unbroadcast(g, sb) if self.needs_input_grad[1] else None)


class Sub(Function):
    kernel = staticmethod(_sub_kernel)
    small = staticmethod(operator.sub)  # what the kernel does below _NATIVE_MIN elements

    def forward(self, a, b):
        self.shapes = (_shape(a), _shape(b))
        return _sub_kernel(a, b)

    def backward(self, g):
        sa, sb = self.shapes
        return (unbroadcast(g, sa) if self.needs_input_grad[0] else None,
                unbroadcast(-g, sb) if self.needs_input_grad[1] else None)


class Mul(Function):
    kernel = staticmethod(_mul_kernel)
    small = staticmethod(operator.mul)  # what the kernel does below _NATIVE_MIN elements

    def forward(self, a, b):
        self._saved = (a, b)  # save_for_backward(a, b)
        return _mul_kernel(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        return (unbroadcast(g * b, _shape(a)) if self.needs_input_grad[0] else None,
                unbroadcast(g * a, _shape(b)) if self.needs_input_grad[1] else None)


class Div(Function):
    kernel = staticmethod(_div_kernel)
    small = staticmethod(operator.truediv)  # what the kernel does below _NATIVE_MIN elements

    def forward(self, a, b):
        self._saved = (a, b)  # save_for_backward(a, b)
        return _div_kernel(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g / b, _shape(a))
        if self.needs_input_grad[1]:
            gb = unbroadcast(-g * a / (b * b), _shape(b))
        return ga, gb


class Pow(Function):
    """a ** b; d/da = b a^(b-1), d/db = a^b log a (taken as 0 where a == 0)."""

    kernel = staticmethod(_pow_kernel)
    small = staticmethod(operator.pow)  # what the kernel does below _NATIVE_MIN elements

    def forward(self, a, b):
        y = _pow_kernel(a, b)
        self.save_for_backward(a, b, y)
        return y

    def backward(self, g):
        a, b, y = self.saved_tensors
        ga = gb = None
        if self.needs_input_grad[0]:
            # d/da a^0 = 0 everywhere, including a = 0 where 0 * a^-1 would give NaN (PyTorch).
            if isinstance(b, (int, float)):
                ga = g * b * a ** (b - 1) if b != 0 else zeros_like(g)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ga = Where.call(raw(b) == 0, 0.0, g * b * a ** (b - 1))
            ga = unbroadcast(ga, _shape(a))
        if self.needs_input_grad[1]:
            if isinstance(a, (int, float)):
                loga = float(np.log(a)) if a > 0 else 0.0
            else:
                positive = raw(a) > 0
                with np.errstate(divide="ignore", invalid="ignore"):
                    loga = Where.call(positive, Log.call(Where.call(positive, a, 1.0)), 0.0)
            gb = unbroadcast(g * y * loga, _shape(b))
        return ga, gb


def _to_dtype(x, dtype):
    """A Tensor operand in the op's computation dtype; Python numbers stay numbers (NumPy takes
    them in the array's dtype, as PyTorch takes a wrapped number)."""
    if isinstance(x, Tensor) and x._data.dtype != dtype:
        return cast(x, dtype)
    return x


def promote_operands(a, b, true_divide: bool = False):
    """``a`` and ``b`` cast to the dtype PyTorch computes a binary op in (pydl.result_type):
    ``int64 * 2.5`` and ``int / int`` are float32 (the default dtype), a float32 tensor plus a
    0-d float64 tensor stays float32. ``true_divide``: integer results become the default
    float dtype, as torch.div does."""
    ta, tb = type(a) is Tensor, type(b) is Tensor
    # The common cases need no table: same-dtype tensors, a float tensor with a number.
    if ta and tb and a._data.dtype == b._data.dtype:
        dtype = a._data.dtype
    elif ta and not tb and a._data.dtype.kind == "f" and type(b) in (float, int):
        return a, b
    elif tb and not ta and b._data.dtype.kind == "f" and type(a) in (float, int):
        return a, b
    else:
        dtype = _dtypes.result_type(a, b)
    if true_divide and dtype.kind in "biu":
        dtype = _dtypes.get_default_dtype()
    return _to_dtype(a, dtype), _to_dtype(b, dtype)


def broadcast_error(shape_a, shape_b) -> Optional[RuntimeError]:
    """PyTorch's error for shapes that do not broadcast (None when they do): the first
    mismatch counted from the last dimension, as torch's infer_size reports it."""
    n = max(len(shape_a), len(shape_b))
    for i in range(n - 1, -1, -1):
        k = i - n
        sa = shape_a[k] if -k <= len(shape_a) else 1
        sb = shape_b[k] if -k <= len(shape_b) else 1
        if sa != sb and sa != 1 and sb != 1:
            return RuntimeError(f"The size of tensor a ({sa}) must match the size of tensor b "
                                f"({sb}) at non-singleton dimension {i}")
    return None


_NUMBER = (float, int)  # exact types: bool is promoted by result_type
_wrap = Tensor._wrap
_ndarray = np.ndarray
_new = object.__new__


def _apply_binary(cls, a, b):
    try:
        return cls.apply(a, b)
    except ValueError:
        # NumPy and the native engine say ValueError; torch says RuntimeError with the sizes.
        # Checked only on failure, so the common path pays nothing.
        err = broadcast_error(_shape(a), _shape(b))
        if err is not None:
            raise err from None
        raise


def _binary(cls, a, b, name, true_divide: bool = False):
    """``cls`` (Add, Mul, ...) on two operands, as every binary operator calls it.

    The common cases are decided here without the operand/device/promotion helpers: two tensors
    of one dtype on one device, or a floating tensor and a Python number (NumPy computes in the
    tensor's dtype, as PyTorch does with a wrapped number). When nothing is to be recorded (no
    operand requires grad, or grad mode is off) the kernel runs on the arrays and its result is
    wrapped once: no node, no apply(). Small NumPy operands, which the kernel would hand to
    NumPy anyway, go to the op's NumPy operator directly (``cls.small``)."""
    if isinstance(a, Tensor):
        da = a._data
        if isinstance(b, Tensor):
            db = b._data
            dt = da.dtype
            if type(da) is not type(db) or (dt is not db.dtype and dt != db.dtype) or \
                    (true_divide and dt.kind in "biu"):
                return _binary_general(cls, a, b, name, true_divide)
            if a._base is not None and a._view_vc != a._vc[0] or \
                    b._base is not None and b._view_vc != b._vc[0]:
                return _apply_binary(cls, a, b)  # a view to refresh first (apply does)
            if (a.requires_grad or b.requires_grad) and _grad_state.enabled:
                return _record_binary(cls, a, b, da, db)
        elif type(b) in _NUMBER and da.dtype.kind == "f":
            db = b
            if a._base is not None and a._view_vc != a._vc[0]:
                return _apply_binary(cls, a, b)
            if a.requires_grad and _grad_state.enabled:
                return _record_binary(cls, a, b, da, db)
        else:
            return _binary_general(cls, a, b, name, true_divide)
    elif isinstance(b, Tensor) and type(a) in _NUMBER and b._data.dtype.kind == "f":
        da, db = a, b._data
        if b._base is not None and b._view_vc != b._vc[0]:
            return _apply_binary(cls, a, b)
        if b.requires_grad and _grad_state.enabled:
            return _record_binary(cls, a, b, da, db)
    else:
        return _binary_general(cls, a, b, name, true_divide)
    # Nothing to record: the kernel on the arrays (or array and number), wrapped once.
    if type(da) is _ndarray:
        small = da.size < _NATIVE_MIN and (type(db) is not _ndarray or db.size < _NATIVE_MIN)
    else:
        small = type(db) is _ndarray and db.size < _NATIVE_MIN
    try:
        return _wrap(cls.small(da, db) if small else cls.kernel(da, db))
    except ValueError:
        err = broadcast_error(_shape(da), _shape(db))
        if err is not None:
            raise err from None
        raise


def _edge(t):
    """Where the gradient of operand ``t`` goes (Function.apply's parents entry), or None."""
    if isinstance(t, Tensor) and t.requires_grad:
        fn = t.grad_fn
        return (fn, t._out_index) if fn is not None else (t, 0)
    return None


def _record_binary(cls, a, b, da, db):
    """Function.apply for a binary op whose operands _binary has checked (one device, no stale
    view, something requires grad, grad mode on): the same node, parents and saved-tensor
    records, without apply's general argument loop."""
    node = _new(cls)
    pa, pb = _edge(a), _edge(b)
    node.needs_input_grad = (pa is not None, pb is not None)
    node.parents = (pa, pb)
    try:
        out = node.forward(da, db)
    except ValueError:
        err = broadcast_error(_shape(da), _shape(db))
        if err is not None:
            raise err from None
        raise
    if type(out) is not _ndarray and isinstance(out, np.generic):
        fixed = np.asarray(out)
        _function._resave(node, (out,), (fixed,))
        out = fixed
    result = _wrap(out, node, 0) if out.dtype.kind in "fc" else _wrap(out)
    if node._saved:
        _function._record_saved(node, (a, b), (da, db), (result,))
    return result


def _binary_general(cls, a, b, name, true_divide):
    """Operands of other kinds: NumPy arrays, lists, NumPy scalars, bools, mixed dtypes."""
    a, b = _operand(a), _operand(b)
    _check_same_device(a, b, name)
    a, b = promote_operands(a, b, true_divide)
    return _apply_binary(cls, a, b)


def add(input, other, alpha=1):
    """input + alpha * other, with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Add, input, other, "add")


def sub(input, other, alpha=1):
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Sub, input, other, "sub")


def mul(input, other):
    return _binary(Mul, input, other, "mul")


def div(input, other):
    return _binary(Div, input, other, "div", true_divide=True)


def pow(input, exponent):  # noqa: A001
    return _binary(Pow, input, exponent, "pow")


# Unary ops: as for binary ones, ``kernel`` is the forward's computation on an array (NumPy
# scalars from 0-d inputs are made arrays by Tensor._wrap), ``small`` the NumPy ufunc the kernel
# runs below _NATIVE_MIN elements (None where it is more than one ufunc); _unary calls them
# directly when nothing is recorded.
def _neg_kernel(x):
    return _EW.neg(x) if _native1(x) else -x


def _exp_kernel(x):
    return _EW.exp(x) if _native1(x) else array_module(x).exp(x)


def _log_kernel(x):
    return _EW.log(x) if _native1(x) else array_module(x).log(x)


def _sqrt_kernel(x):
    return _EW.sqrt(x) if _native1(x) else array_module(x).sqrt(x)


def _rsqrt_kernel(x):
    return _EW.rsqrt(x) if _native1(x) else 1 / array_module(x).sqrt(x)


def _abs_kernel(x):
    return _EW.abs(x) if _native1(x) else array_module(x).abs(x)


def _sign_kernel(x):
    return array_module(x).sign(x)


def _sin_kernel(x):
    return _EW.sin(x) if _native1(x) else array_module(x).sin(x)


def _cos_kernel(x):
    return _EW.cos(x) if _native1(x) else array_module(x).cos(x)


def _tanh_kernel(x):
    return _EW.tanh(x) if _native1(x) else array_module(x).tanh(x)


def _relu_kernel(x):
    return _EW.relu(x) if _native1(x) else array_module(x).maximum(x, 0)


def _unary(cls, x, floating: bool = False):
    """``cls`` (Exp, Relu, ...) on one tensor. ``floating``: integer and bool inputs are
    computed in the default dtype, as in PyTorch (NumPy would give float64)."""
    if isinstance(x, Tensor):
        d = x._data
        if floating and d.dtype.kind in "biu":
            x = cast(x, _dtypes.get_default_dtype())
            d = x._data
        if not (x.requires_grad and _grad_state.enabled) and \
                (x._base is None or x._view_vc == x._vc[0]):
            # Nothing to record (and no view to refresh): the kernel, wrapped once.
            small = cls.small
            if small is not None and type(d) is _ndarray and d.size < _NATIVE_MIN:
                return _wrap(small(d))
            return _wrap(cls.kernel(d))
    return cls.apply(x)


class Neg(Function):
    kernel = staticmethod(_neg_kernel)
    small = np.negative

    def forward(self, x):
        return _neg_kernel(x)

    def backward(self, g):
        return -g


def neg(x):
    return _unary(Neg, x)


# -- unary math ---------------------------------------------------------------------------------
class Exp(Function):
    kernel = staticmethod(_exp_kernel)
    small = np.exp

    def forward(self, x):
        y = _EW.exp(x) if _native1(x) else _saved_array(array_module(x).exp(x))
        self.save_for_backward(y)  # NB: d/dx e^x = e^x, so the output is all backward needs
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return g * y


class Log(Function):
    kernel = staticmethod(_log_kernel)
    small = np.log

    def forward(self, x):
        self.save_for_backward(x)
        return _EW.log(x) if _native1(x) else array_module(x).log(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g / x


class Sqrt(Function):
    kernel = staticmethod(_sqrt_kernel)
    small = np.sqrt

    def forward(self, x):
        y = _EW.sqrt(x) if _native1(x) else _saved_array(array_module(x).sqrt(x))
        self.save_for_backward(y)  # d/dx sqrt(x) = 1 / (2 sqrt(x))
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return g / (2 * y)


class Rsqrt(Function):
    kernel = staticmethod(_rsqrt_kernel)
    small = None

    def forward(self, x):
        y = _EW.rsqrt(x) if _native1(x) else _saved_array(1 / array_module(x).sqrt(x))
        self.save_for_backward(y)  # d/dx x^-1/2 = -x^-3/2 / 2 = -y^3 / 2
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return -0.5 * g * y * y * y


class Abs(Function):
    kernel = staticmethod(_abs_kernel)
    small = np.abs

    def forward(self, x):
        self.save_for_backward(x)
        return _EW.abs(x) if _native1(x) else array_module(x).abs(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * Sign.call(x)


class Sign(Function):
    kernel = staticmethod(_sign_kernel)
    small = np.sign

    def forward(self, x):
        self.shape = x.shape
        return array_module(x).sign(x)

    def backward(self, g):
        return zeros_like(g)


class Sin(Function):
    kernel = staticmethod(_sin_kernel)
    small = np.sin

    def forward(self, x):
        self.save_for_backward(x)
        return _EW.sin(x) if _native1(x) else array_module(x).sin(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * Cos.call(x)


class Cos(Function):
    kernel = staticmethod(_cos_kernel)
    small = np.cos

    def forward(self, x):
        self.save_for_backward(x)
        return _EW.cos(x) if _native1(x) else array_module(x).cos(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return -g * Sin.call(x)


class Tanh(Function):
    kernel = staticmethod(_tanh_kernel)
    small = np.tanh

    def forward(self, x):
        y = _EW.tanh(x) if _native1(x) else _saved_array(array_module(x).tanh(x))
        self.save_for_backward(y)  # tanh' = 1 - tanh^2
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        if _native_fused(g, y):  # first order: g (1 - y^2) in one fused pass
            return _EW.tanh_backward(g, y)
        return g * (1 - y * y)


def _sigmoid(x):
    """1 / (1 + e^-x). Where e^-x overflows (x < -88 in float32) it becomes inf and the result
    the correct limit 0, so the overflow is harmless and silenced; computed in place (3 passes),
    or in one pass by the native engine."""
    if _native1(x):
        return _EW.sigmoid(x)
    xp = array_module(x)
    with np.errstate(over="ignore"):
        out = xp.asarray(xp.exp(-x))  # asarray: 0-d input gives a NumPy scalar
    out += 1
    return xp.divide(1, out, out=out)


class Sigmoid(Function):
    kernel = staticmethod(_sigmoid)
    small = None

    def forward(self, x):
        y = _sigmoid(x)
        self.save_for_backward(y)  # sigma' = sigma (1 - sigma)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        if _native_fused(g, y):  # first order: g y (1 - y) in one fused pass
            return _EW.sigmoid_backward(g, y)
        return g * y * (1 - y)


class Relu(Function):
    kernel = staticmethod(_relu_kernel)
    small = None

    def forward(self, x):
        y = _EW.relu(x) if _native1(x) else _saved_array(array_module(x).maximum(x, 0))
        self.save_for_backward(y)  # y > 0 exactly where x > 0: the output is enough
        return y

    def backward(self, g):
        y = raw(self.saved_tensors[0])  # the mask is constant: relu'' = 0
        if _native_fused(g, y):  # first order: y > 0 or NaN ? g : 0, one pass, no mask array
            return _EW.relu_backward(g, y)
        # y != 0 is x > 0, and true at NaN: PyTorch passes a NaN input's gradient through
        # (threshold_backward: x <= 0 ? 0 : g). Same cost as y > 0.
        return g * (y != 0)


class Clamp(Function):
    def forward(self, x, lo, hi):
        self.save_for_backward(x)
        self.bounds = (lo, hi)
        return array_module(x).clip(x, lo, hi)

    def backward(self, g):
        x = raw(self.saved_tensors[0])
        lo, hi = self.bounds
        mask = array_module(x).ones(x.shape, dtype=bool)
        if lo is not None:
            mask &= x >= lo
        if hi is not None:
            mask &= x <= hi
        return g * mask, None, None


class ClampTensor(Function):
    """clamp with tensor bounds: min(max(x, lo), hi), NaN from any operand propagating, and
    max winning where lo > hi, as torch. Gradients as torch's clamp_backward(_min_max): the
    input keeps the gradient where lo <= x <= hi (ties included), lo only where x < lo < hi,
    hi where x > hi or hi < lo (maximum/minimum would split ties in half)."""

    def forward(self, x, lo, hi):
        self.save_for_backward(x, lo, hi)
        xp = array_module(x)
        out = x if lo is None else xp.maximum(x, lo)
        return out if hi is None else xp.minimum(out, hi)

    def backward(self, g):
        x, lo, hi = (None if t is None else raw(t) for t in self.saved_tensors)
        xp = array_module(x)
        keep = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            keep = keep & (x >= lo)
        if hi is not None:
            keep = keep & (x <= hi)
        shape = _shape(g)
        gx = gl = gh = None
        if self.needs_input_grad[0]:
            gx = unbroadcast(g * xp.broadcast_to(keep, shape), x.shape)
        if lo is not None and self.needs_input_grad[1]:
            won = x < lo if hi is None else (x < lo) & (lo < hi)
            gl = unbroadcast(g * xp.broadcast_to(won, shape), lo.shape)
        if hi is not None and self.needs_input_grad[2]:
            won = x > hi if lo is None else (x > hi) | (hi < lo)
            gh = unbroadcast(g * xp.broadcast_to(won, shape), hi.shape)
        return gx, gl, gh


def _floating(x):
    """Integer and bool inputs of float-valued math (exp, log, sin...) are computed in the
    default dtype, as in PyTorch (NumPy would give float64)."""
    if isinstance(x, Tensor) and x._data.dtype.kind in "biu":
        return cast(x, _dtypes.get_default_dtype())
    return x


def exp(x):
    return _unary(Exp, x, True)


def log(x):
    return _unary(Log, x, True)


def sqrt(x):
    return _unary(Sqrt, x, True)


def rsqrt(x):
    return _unary(Rsqrt, x, True)


def abs(x):  # noqa: A001
    return _unary(Abs, x)


def sign(x):
    return _unary(Sign, x)


def sin(x):
    return _unary(Sin, x, True)


def cos(x):
    return _unary(Cos, x, True)


def tanh(x):
    return _unary(Tanh, x, True)


def sigmoid(x):
    return _unary(Sigmoid, x, True)


def relu(x):
    return _unary(Relu, x)


def square(x):
    return mul(x, x)


def clamp(x, min=None, max=None):  # noqa: A002
    """Limit values to [min, max]; the gradient passes where min <= x <= max."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = [_operand(b) for b in (min, max) if b is not None]
        dtype = _dtypes.result_type(x, *bounds)
        x, lo, hi = (None if b is None else cast(_operand(b), dtype) for b in (x, min, max))
        return ClampTensor.apply(x, lo, hi)
    # Python-number bounds promote as a binary op would: clamp(int64, 2.5) is float32.
    dtype = _dtypes.result_type(x, *(b for b in (min, max) if b is not None))
    if dtype != x.dtype:
        x = cast(x, dtype)
    return Clamp.apply(x, min, max)


clip = clamp


class Maximum(Function):
    """Elementwise max; on ties the gradient is split equally, as in PyTorch."""

    kernel = staticmethod(_maximum_kernel)
    small = staticmethod(np.maximum)  # what the kernel does below _NATIVE_MIN elements

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return _maximum_kernel(a, b)

    def backward(self, g):
        a, b = (raw(t) for t in self.saved_tensors)
        wa = ((a > b) + 0.5 * (a == b)).astype(g.dtype, copy=False)
        return (unbroadcast(g * wa, _shape(a)) if self.needs_input_grad[0] else None,
                unbroadcast(g * (1 - wa), _shape(b)) if self.needs_input_grad[1] else None)


class Minimum(Function):
    kernel = staticmethod(_minimum_kernel)
    small = staticmethod(np.minimum)  # what the kernel does below _NATIVE_MIN elements

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return _minimum_kernel(a, b)

    def backward(self, g):
        a, b = (raw(t) for t in self.saved_tensors)
        wa = ((a < b) + 0.5 * (a == b)).astype(g.dtype, copy=False)
        return (unbroadcast(g * wa, _shape(a)) if self.needs_input_grad[0] else None,
                unbroadcast(g * (1 - wa), _shape(b)) if self.needs_input_grad[1] else None)


def maximum(a, b):
    return _binary(Maximum, a, b, "maximum")


def minimum(a, b):
    return _binary(Minimum, a, b, "minimum")


class Where(Function):
    def forward(self, cond, a, b):
        self.save_for_backward(cond)
        self.shapes = (_shape(a), _shape(b))
        if type(cond) is np.ndarray and cond.dtype.char == "?" and _native2(a, b):
            return _EW.where(cond, a, b)
        return array_module(cond).where(cond, a, b)

    def backward(self, g):
        cond = raw(self.saved_tensors[0])
        sa, sb = self.shapes
        return (None,
                unbroadcast(Where.call(cond, g, 0.0), sa) if self.needs_input_grad[1] else None,
                unbroadcast(Where.call(cond, 0.0, g), sb) if self.needs_input_grad[2] else None)


def where(condition, input, other):
    """Pick ``input`` where ``condition`` holds, else ``other`` (broadcasting)."""
    condition = _operand(condition)
    if isinstance(condition, Tensor) and condition.dtype != np.bool_:
        condition = Tensor._wrap(condition._data.astype(bool))
    input, other = _operand(input), _operand(other)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # Two Python numbers: the result still has PyTorch's dtype (a float is the default).
        input = Tensor._wrap(np.asarray(input, dtype=_dtypes.result_type(input, other)))
    input, other = promote_operands(input, other)
    return Where.apply(condition, input, other)


# -- comparisons and logic (no gradient) --------------------------------------------------------
def _compare(ufunc_name, native=None):
    def op(a, b):
        a, b = _operand(a), _operand(b)
        _check_same_device(a, b, ufunc_name)
        ad = a._data if isinstance(a, Tensor) else a
        bd = b._data if isinstance(b, Tensor) else b
        if native is not None and _native2(ad, bd):
            return Tensor._wrap(native(ad, bd))
        xp = array_module(ad) if isinstance(a, Tensor) else array_module(bd)
        # asarray: on 0-d operands NumPy returns a scalar, and a Tensor holds an array.
        return Tensor._wrap(xp.asarray(getattr(xp, ufunc_name)(ad, bd)))

    op.__name__ = ufunc_name
    return op


eq = _compare("equal", _EW.eq)
ne = _compare("not_equal", _EW.ne)
lt = _compare("less", _EW.lt)
le = _compare("less_equal", _EW.le)
gt = _compare("greater", _EW.gt)
ge = _compare("greater_equal", _EW.ge)
logical_and = _compare("logical_and")
logical_or = _compare("logical_or")
logical_xor = _compare("logical_xor")


def logical_not(x):
    xp = array_module(x._data)
    return Tensor._wrap(xp.asarray(xp.logical_not(x._data)))


def isnan(x):
    xp = array_module(x._data)
    return Tensor._wrap(xp.asarray(xp.isnan(x._data)))


def isinf(x):
    xp = array_module(x._data)
    return Tensor._wrap(xp.asarray(xp.isinf(x._data)))


def isfinite(x):
    xp = array_module(x._data)
    return Tensor._wrap(xp.asarray(xp.isfinite(x._data)))


def equal(a, b) -> bool:
    """True when both have the same shape and elements."""
    return a.shape == b.shape and bool((a._data == b._data).all())


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    return bool(np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol,
                            equal_nan=equal_nan))


# -- copies, casts, devices ---------------------------------------------------------------------
class Clone(Function):
    def forward(self, x):
        # Strided views (transposes) go through the blocked transposing copy of csrc/reduce/.
        from pydl.ops._native_reduce import contiguous_copy

        return contiguous_copy(x)

    def backward(self, g):
        return g


class Cast(Function):
    def forward(self, x, dtype):
        self.src = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return Cast.call(g, self.src), None


class ToDevice(Function):
    def forward(self, x, dev):
        self.src = "cpu" if isinstance(x, np.ndarray) else f"cuda:{x.device.id}"
        return to_device_array(x, dev)

    def backward(self, g):
        return ToDevice.call(g, self.src), None


class CopyFrom(Function):
    """Result of ``dst.copy_(src)``: src's values in dst's shape and dtype."""

    def forward(self, dst, src):
        self.src_meta = (src.shape, src.dtype)
        return array_module(dst).broadcast_to(src, dst.shape).astype(dst.dtype)

    def backward(self, g):
        shape, dtype = self.src_meta
        g = unbroadcast(g, shape)
        return None, g if g.dtype == dtype else Cast.call(g, dtype)


class FullLikeConst(Function):
    def forward(self, x, value):
        return array_module(x).full_like(x, value)

    def backward(self, g):
        return zeros_like(g), None


def clone(x):
    return Clone.apply(x)


def cast(x, dtype):
    if dtype.kind not in "fc" or x.dtype.kind not in "fc":
        # Casting to or from integers cuts the graph, as in PyTorch.
        return Tensor._wrap(x._data.astype(dtype))
    return Cast.apply(x, dtype)


def to_device(x, dev):
    return ToDevice.apply(x, dev)


def copy_from(dst, src):
    return CopyFrom.apply(dst, src)


def full_like_const(x, value):
    return FullLikeConst.apply(x, value)
