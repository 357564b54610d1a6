"""``LayerNorm`` and ``GroupNorm`` (as ``torch.nn``); the math and the fused kernels are in
pydl/ops/normalization.py. Neither keeps running statistics: train() and eval() agree."""
from __future__ import annotations

import numpy as np

from pydl import dtypes as _dtypes
from pydl.nn.module import Module, Parameter
from pydl.ops.normalization import group_norm, layer_norm


def _dtype(dtype, device, owner):
    if device is not None and str(device) != "cpu":
        raise ValueError(f"{owner}: only device='cpu' is supported here")
    return _dtypes.get_default_dtype() if dtype is None else _dtypes.as_dtype(dtype)


class LayerNorm(Module):
    """y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias over the last dims given by
    ``normalized_shape`` (an int or a shape); weight (ones) and bias (zeros) of that shape when
    ``elementwise_affine`` (bias only when ``bias=True``)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        dtype = _dtype(dtype, device, "LayerNorm")
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight._data[...] = 1
        if self.bias is not None:
            self.bias._data[...] = 0

    def forward(self, input):
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalise each of ``num_groups`` groups of ``num_channels / num_groups`` channels of an
    (N, C, *) input over the group's channels and positions; per-channel weight and bias when
    ``affine``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None):
        super().__init__()
        dtype = _dtype(dtype, device, "GroupNorm")
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"num_channels must be divisible by num_groups (got num_channels="
                             f"{num_channels}, num_groups={num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dtype))
            self.bias = Parameter(np.zeros(num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.affine:
            self.weight._data[...] = 1
            self.bias._data[...] = 0

    def forward(self, input):
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
