"""Batch normalization layers (as ``torch.nn``): ``BatchNorm1d`` for (N, C) and (N, C, L)
input, ``BatchNorm2d`` for (N, C, H, W). The math and the kernels are in pydl/ops/batchnorm.py.

train(): normalise with the batch statistics and update running_mean / running_var
(momentum, or a cumulative average when momentum=None); eval(): normalise with the running
statistics. With track_running_stats=False the batch statistics are used in both modes.
"""
from __future__ import annotations

import numpy as np

from pydl import dtypes as _dtypes
from pydl.nn.module import Module, Parameter
from pydl.ops.batchnorm import batch_norm
from pydl.tensor import Tensor


class _BatchNorm(Module):
    _input_dims: tuple = ()
    _input_desc = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, got "
                             f"{num_features!r}")
        if device is not None and str(device) != "cpu":
            raise ValueError(f"{type(self).__name__}: only device='cpu' is supported here")
        dtype = _dtypes.get_default_dtype() if dtype is None else _dtypes.as_dtype(dtype)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight._data[...] = 1
            self.bias._data[...] = 0

    def _check_input(self, input) -> None:
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a pydl.Tensor, got {type(input).__name__}")
        if input.ndim not in self._input_dims:
            raise ValueError(f"{name}: expected {self._input_desc} input, got input of shape "
                             f"{tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected input with {self.num_features} channels "
                             f"(num_features), got input of shape {tuple(input.shape)} with "
                             f"{input.shape[1]}")

    def forward(self, input):
        self._check_input(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked._data)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if track else None,
                          self.running_var if track else None, self.weight, self.bias,
                          use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input, per channel C."""
    _input_dims = (2, 3)
    _input_desc = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input, per channel C."""
    _input_dims = (4,)
    _input_desc = "4-D (N, C, H, W)"
