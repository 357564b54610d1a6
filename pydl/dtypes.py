"""pydl's dtypes are NumPy dtypes: ``pydl.float32 == numpy.dtype('float32')``.

float32 is the default for floating data (as in PyTorch); int64 holds labels and indices.
"""
from __future__ import annotations

import builtins as _builtins

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

# PyTorch's aliases.
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001

_default_float = float32

_ALLOWED = {float16, float32, float64, int32, int64, uint8, bool_, np.dtype(np.int8),
            np.dtype(np.int16)}


def get_default_dtype() -> np.dtype:
    return _default_float


def set_default_dtype(dtype) -> None:
    """Set the dtype Python floats become (float32 or float64)."""
    global _default_float
    d = as_dtype(dtype)
    if d not in (float32, float64):
        raise TypeError(f"set_default_dtype: only float32 or float64 can be the default, got {d}")
    _default_float = d


def as_dtype(dtype) -> np.dtype:
    """Normalise a dtype argument (pydl/NumPy dtype, type or name) to a NumPy dtype."""
    if dtype is None:
        return None
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"not a dtype: {dtype!r}") from None
    if d not in _ALLOWED:
        raise TypeError(f"pydl does not support dtype {d}")
    return d


def is_floating_point(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_TORCH_NAMES = {float16: "Half", float32: "Float", float64: "Double", int64: "Long",
                int32: "Int", uint8: "Byte", bool_: "Bool", np.dtype(np.int8): "Char",
                np.dtype(np.int16): "Short"}


def can_cast_inplace(result: np.dtype, out: np.dtype) -> bool:
    """PyTorch's rule for writing a result into an existing tensor (``x.add_(y)``, ``out=``):
    the result's category (bool < integer < floating < complex) may not be above the output's;
    within a category any width goes (a float64 result into a float32 tensor is fine)."""
    return _CATEGORY[np.dtype(result).kind] <= _CATEGORY[np.dtype(out).kind]


def torch_name(dtype) -> str:
    """The name PyTorch's messages give a dtype ("Float", "Long")."""
    return _TORCH_NAMES.get(np.dtype(dtype), str(dtype))


# -- type promotion: PyTorch's rules, in one place ----------------------------------------------
def _promote2(a, b):
    if a is None:
        return b
    if b is None or a == b:
        return a
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b  # int32 with float16 is float16 (NumPy would say float64)
    return np.promote_types(a, b)  # within a category, widths promote as NumPy's


def promote_types(type1, type2) -> np.dtype:
    """The smallest dtype both ``type1`` and ``type2`` convert to (torch.promote_types): a higher
    category (bool < integer < floating) wins outright; within one category the wider type."""
    return _promote2(as_dtype(type1), as_dtype(type2))


def _combine_categories(higher, lower):
    # PyTorch's rule for a higher-priority class of operands meeting a lower one: the lower
    # class only matters when it is of a higher category (an int tensor times a Python float
    # becomes floating; a float32 tensor plus a 0-d float64 tensor stays float32).
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return _promote2(higher, lower)
    return higher


def _operand_dtype(x):
    """(priority class, dtype): 0 for a tensor with dims, 1 for a 0-d tensor, 2 for a Python
    number (bool -> bool, int -> int64, float -> the default dtype)."""
    if isinstance(x, (_builtins.bool, np.bool_)):
        return 2, bool_
    if isinstance(x, (_builtins.int, np.integer)):
        return 2, int64
    if isinstance(x, (_builtins.float, np.floating)):
        return 2, _default_float
    if isinstance(x, complex):
        raise TypeError("pydl has no complex dtypes")
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        raise TypeError(f"result_type: expected Tensors or Python numbers, got {type(x).__name__}")
    return (0 if x.ndim > 0 else 1), np.dtype(dtype)


def result_type(*operands) -> np.dtype:
    """The dtype an elementwise op on ``operands`` computes in (torch.result_type): tensors with
    dimensions decide first, then 0-d tensors, then Python numbers, each class only lifting the
    category (bool < integer < floating) of the classes before it."""
    if not operands:
        raise TypeError("result_type needs at least one operand")
    classes = [None, None, None]
    for x in operands:
        k, d = _operand_dtype(x)
        classes[k] = _promote2(classes[k], d)
    return _combine_categories(classes[0], _combine_categories(classes[1], classes[2]))
