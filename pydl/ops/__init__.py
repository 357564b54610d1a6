"""pydl's ops, one module per family, and the Tensor methods that call them.

Each module keeps an op's forward, backward and kernel choice together; this file only binds
operators and methods on ``Tensor`` to those functions.
"""
from pydl.ops import activation, elementwise, indexing, matmul, reduction, shape
from pydl.tensor import Tensor

_e, _r, _s, _i, _m = elementwise, reduction, shape, indexing, matmul


def _reflected(fn):
    return lambda self, other: fn(other, self)


_methods = {
    # arithmetic and operators
    "__add__": _e.add, "__radd__": _reflected(_e.add),
    "__sub__": _e.sub, "__rsub__": _reflected(_e.sub),
    "__mul__": _e.mul, "__rmul__": _reflected(_e.mul),
    "__truediv__": _e.div, "__rtruediv__": _reflected(_e.div),
    "__pow__": _e.pow, "__rpow__": _reflected(_e.pow),
    "__neg__": _e.neg, "__pos__": lambda self: self, "__abs__": _e.abs,
    "__matmul__": _m.matmul, "__rmatmul__": _reflected(_m.matmul),
    "__eq__": _e.eq, "__ne__": _e.ne, "__lt__": _e.lt, "__le__": _e.le,
    "__gt__": _e.gt, "__ge__": _e.ge,
    "__getitem__": _i.getitem,
    "add": _e.add, "sub": _e.sub, "mul": _e.mul, "div": _e.div, "pow": _e.pow, "neg": _e.neg,
    "exp": _e.exp, "log": _e.log, "sqrt": _e.sqrt, "rsqrt": _e.rsqrt, "abs": _e.abs,
    "sign": _e.sign, "sin": _e.sin, "cos": _e.cos, "tanh": _e.tanh, "sigmoid": _e.sigmoid,
    "relu": _e.relu, "clamp": _e.clamp, "clip": _e.clamp, "square": _e.square,
    "maximum": _e.maximum, "minimum": _e.minimum,
    "eq": _e.eq, "ne": _e.ne, "lt": _e.lt, "le": _e.le, "gt": _e.gt, "ge": _e.ge,
    "logical_not": _e.logical_not, "isnan": _e.isnan, "isinf": _e.isinf,
    "isfinite": _e.isfinite, "equal": _e.equal,
    "where": lambda self, condition, other: _e.where(condition, self, other),
    # reductions
    "sum": _r.sum, "mean": _r.mean, "var": _r.var, "std": _r.std, "max": _r.max, "min": _r.min,
    "amax": _r.amax, "amin": _r.amin, "argmax": _r.argmax, "argmin": _r.argmin,
    "prod": _r.prod, "logsumexp": _r.logsumexp, "norm": _r.norm, "all": _r.all, "any": _r.any,
    "cumsum": _r.cumsum,
    # shape
    "reshape": _s.reshape, "view": _s.view, "flatten": _s.flatten, "unflatten": _s.unflatten,
    "squeeze": _s.squeeze, "unsqueeze": _s.unsqueeze, "expand": _s.expand,
    "expand_as": _s.expand_as, "permute": _s.permute, "transpose": _s.transpose, "t": _s.t,
    "split": _s.split, "chunk": _s.chunk, "unbind": _s.unbind, "flip": _s.flip,
    "repeat": _s.repeat,
    "view_as": lambda self, other: _s.view(self, other.shape),
    "reshape_as": lambda self, other: _s.reshape(self, other.shape),
    "masked_fill": _i.masked_fill, "index_select": _i.index_select, "gather": _i.gather,
    "softmax": lambda self, dim, dtype=None: activation.softmax(self, dim, dtype=dtype),
    "log_softmax": lambda self, dim, dtype=None: activation.log_softmax(self, dim, dtype=dtype),
    # products
    "matmul": _m.matmul, "mm": _m.mm, "bmm": _m.bmm, "dot": _m.dot,
}
for _name, _fn in _methods.items():
    setattr(Tensor, _name, _fn)

# Sorting, scatter, einsum, special functions, bitwise ops (issue #20): each family's module
# names its Tensor methods; ``& | ^ ~`` are bitwise on integers and logical on bools.
from pydl.ops import bitwise, einsum, scatter, sorting, special  # noqa: E402

for _name, _fn in bitwise.methods.items():
    setattr(Tensor, _name, _fn)
_methods_issue20 = {
    "sort": sorting.sort, "argsort": sorting.argsort, "topk": sorting.topk,
    "unique": sorting.unique, "msort": sorting.msort,
    "scatter": scatter.scatter, "scatter_": scatter.scatter_,
    "scatter_add": scatter.scatter_add, "scatter_add_": scatter.scatter_add_,
    "masked_fill_": scatter.masked_fill_,
    "erfinv": special.erfinv, "erfinv_": lambda self: self._inplace(special.erfinv),
    "addcmul": special.addcmul, "addcmul_": special.addcmul_,
    "addcdiv": special.addcdiv, "addcdiv_": special.addcdiv_,
}
for _name, _fn in _methods_issue20.items():
    setattr(Tensor, _name, _fn)
# log1p/expm1/erf (ops/special.py: the native engine's kernels for large float arrays).
for _name in ("log1p", "expm1", "erf"):
    setattr(Tensor, _name, getattr(special, _name))
Tensor.T = property(_s.T)
Tensor.mT = property(_s.mT)

# Everyday ops of issue #20 (rounding and division, pointwise math, more shape ops, cumprod):
# each module names its Tensor methods, in-place forms and operators (%, //).
from pydl.ops import cumulative, pointwise_math, rounding, shape_extra  # noqa: E402

for _module in (rounding, pointwise_math, shape_extra, cumulative):
    for _name, _fn in _module.methods.items():
        setattr(Tensor, _name, _fn)
