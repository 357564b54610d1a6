"""pydl's dtypes are NumPy dtypes: ``pydl.float32 == numpy.dtype('float32')``.

float32 is the default for floating data (as in PyTorch); int64 holds labels and indices.
"""
from __future__ import annotations

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
