"""torch.finfo and torch.iinfo for pydl's dtypes: the numeric limits of a floating or integer
dtype, with torch's field names (``bits``, ``eps``, ``max``, ``min``, ``tiny``,
``smallest_normal``, ``resolution``, ``dtype``) and errors."""
from __future__ import annotations

import numpy as np

from pydl import dtypes as _dtypes


def _dtype_arg(type, cls):
    if type is None:
        return _dtypes.get_default_dtype()
    try:
        return np.dtype(type)
    except TypeError:
        raise TypeError(f"{cls}(): argument 'type' must be a dtype, not "
                        f"{builtins_type(type).__name__}") from None


def builtins_type(x):
    import builtins

    return builtins.type(x)


class finfo:
    """Limits of a floating dtype (default: the default dtype)."""

    def __init__(self, type=None):  # noqa: A002  (torch's argument name)
        d = _dtype_arg(type, "finfo")
        if d.kind != "f":
            raise TypeError("torch.finfo() requires a floating point input type. Use "
                            "torch.iinfo to handle 'torch.finfo'")
        info = np.finfo(d)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = float(info.smallest_normal)
        self.smallest_normal = self.tiny
        self.resolution = 10.0 ** -int(info.precision)  # torch: 10^-precision, exactly
        self.dtype = str(d)

    def __eq__(self, other):
        return isinstance(other, finfo) and other.dtype == self.dtype

    def __hash__(self):
        return hash(("finfo", self.dtype))

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype."""

    def __init__(self, type):  # noqa: A002
        d = _dtype_arg(type, "iinfo")
        if d.kind == "b":
            raise TypeError("torch.bool is not supported by torch.iinfo")
        if d.kind not in "iu":
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to "
                            "handle 'torch.iinfo'")
        info = np.iinfo(d)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = str(d)

    def __eq__(self, other):
        return isinstance(other, iinfo) and other.dtype == self.dtype

    def __hash__(self):
        return hash(("iinfo", self.dtype))

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"
