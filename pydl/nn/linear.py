"""Affine and reshaping layers: ``Identity``, ``Linear``, ``Bilinear``, ``Flatten``,
``Unflatten`` (torch.nn's names, arguments, defaults and initialisations)."""
from __future__ import annotations

import math

import numpy as np

from pydl import dtypes as _dtypes
from pydl.nn import init
from pydl.nn.module import Module, Parameter
from pydl.ops.bilinear import bilinear as _bilinear
from pydl.ops.matmul import linear as _linear
from pydl.ops.shape import flatten as _flatten
from pydl.ops.shape import unflatten as _unflatten
from pydl.tensor import Tensor

__all__ = ["Identity", "Linear", "Bilinear", "Flatten", "Unflatten"]


def _empty_parameter(shape, dtype) -> Parameter:
    dtype = _dtypes.get_default_dtype() if dtype is None else _dtypes.as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"layer parameters must be floating point, got dtype {dtype}")
    return Parameter(np.empty(shape, dtype=dtype))


def _check_features(**sizes) -> None:
    for name, n in sizes.items():
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{name} must be a non-negative int, got {n!r}")


class Identity(Module):
    """Returns its input unchanged; accepts and ignores any constructor arguments (a
    placeholder, e.g. to remove a layer from a model)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b, x (*, in_features) -> y (*, out_features).

    The course's layer f(W x + b) without the nonlinearity, applied to row vectors. Weight and
    bias start as in PyTorch: kaiming_uniform_(W, a=sqrt(5)) gives W ~ U(-1/sqrt(in), 1/sqrt(in))
    and b ~ U(-1/sqrt(in), 1/sqrt(in)). One autograd node (pydl.ops.matmul.linear)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        _check_features(in_features=in_features, out_features=out_features)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = _empty_parameter((out_features, in_features), dtype)
        if bias:
            self.bias = _empty_parameter((out_features,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return _linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Bilinear(Module):
    """y = x1^T A x2 + b: x1 (*, in1_features), x2 (*, in2_features) -> (*, out_features).

    A ~ U(-1/sqrt(in1), 1/sqrt(in1)) and b likewise, as PyTorch initialises them."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        _check_features(in1_features=in1_features, in2_features=in2_features,
                        out_features=out_features)
        self.in1_features = int(in1_features)
        self.in2_features = int(in2_features)
        self.out_features = int(out_features)
        self.weight = _empty_parameter((out_features, in1_features, in2_features), dtype)
        if bias:
            self.bias = _empty_parameter((out_features,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in1_features) if self.in1_features > 0 else 0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return _bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return _flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size``: Unflatten(1, (C, H, W)) turns (N, C*H*W)
    back into (N, C, H, W). One size may be -1 (inferred)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if isinstance(unflattened_size, (int, np.integer)) or not all(
                isinstance(s, (int, np.integer)) for s in unflattened_size):
            raise TypeError(f"unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: Tensor) -> Tensor:
        return _unflatten(input, self.dim, tuple(self.unflattened_size))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
