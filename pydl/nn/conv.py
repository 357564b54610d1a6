"""Convolution layers: ``Conv1d``, ``Conv2d``, ``ConvTranspose1d``, ``ConvTranspose2d`` (as
``torch.nn``). The math and the kernels are in pydl/ops/conv.py.

Default initialisation is PyTorch's: weight ~ kaiming_uniform(a=sqrt(5)), i.e.
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
fan_in = weight.shape[1] * prod(kernel_size).
padding_mode 'reflect' / 'replicate' / 'circular' pads the input with ``F.pad`` and then
convolves without padding, as PyTorch does; 'zeros' lets the kernel pad.
"""
from __future__ import annotations

import math

import numpy as np

from pydl import dtypes as _dtypes
from pydl.nn import init
from pydl.nn.module import Module, Parameter
from pydl.ops import conv as _conv
from pydl.ops.shape import pad as _pad

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", output_padding=0, dtype=None):
        super().__init__()
        nd, name = self._nd, type(self).__name__
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups "
                             f"({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _conv._tuple(kernel_size, nd, "kernel_size", name)
        self.stride = _conv._tuple(stride, nd, "stride", name)
        self.dilation = _conv._tuple(dilation, nd, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be 'same', 'valid' or ints, got "
                                 f"{padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride {self.stride})")
            self.padding = padding
        else:
            self.padding = _conv._tuple(padding, nd, "padding", name)
        self.output_padding = _conv._tuple(output_padding, nd, "output_padding", name)
        self.groups, self.padding_mode = groups, padding_mode
        if any(k < 1 for k in self.kernel_size):
            raise ValueError(f"{name}: kernel_size must be positive, got {self.kernel_size}")
        if any(s < 1 for s in self.stride):
            raise ValueError(f"{name}: stride must be positive, got {self.stride}")
        if not isinstance(self.padding, str) and any(p < 0 for p in self.padding):
            raise ValueError(f"{name}: padding must be non-negative, got {self.padding}")
        dtype = _dtypes.get_default_dtype() if dtype is None else _dtypes.as_dtype(dtype)
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _explicit_padding(self):
        """(left, right) per spatial axis for padding_mode != 'zeros', in F.pad's order."""
        if self.padding == "valid":
            pairs = [(0, 0)] * self._nd
        elif self.padding == "same":
            pairs = []
            for k, d in zip(self.kernel_size, self.dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
        else:
            pairs = [(p, p) for p in self.padding]
        widths = []
        for left, right in reversed(pairs):
            widths += [left, right]
        return tuple(widths)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) \
                else f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        if device is not None and str(device) != "cpu":
            raise ValueError(f"{type(self).__name__}: only device='cpu' is supported here")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, dtype)

    def forward(self, input):
        fn = _conv.conv1d if self._nd == 1 else _conv.conv2d
        if self.padding_mode != "zeros":
            input = _pad(input, self._explicit_padding(), mode=self.padding_mode)
            return fn(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return fn(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                  self.groups)


class Conv1d(_Conv):
    """1-d convolution layer: (N, in_channels, L) -> (N, out_channels, L_out)."""
    _nd = 1


class Conv2d(_Conv):
    """2-d convolution layer: (N, in_channels, H, W) -> (N, out_channels, H_out, W_out)."""
    _nd = 2


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be ints, got {padding!r}")
        if device is not None and str(device) != "cpu":
            raise ValueError(f"{type(self).__name__}: only device='cpu' is supported here")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, dtype)

    def _output_padding(self, input, output_size):
        """output_padding that makes the output output_size (PyTorch's rule), or the fixed one."""
        if output_size is None:
            return self.output_padding
        nd = self._nd
        output_size = tuple(int(v) for v in output_size)[-nd:]
        if len(output_size) != nd:
            raise ValueError(f"{type(self).__name__}: output_size must have {nd} or {nd + 2} "
                             f"elements, got {output_size}")
        result = []
        for i in range(nd):
            size = input.shape[input.ndim - nd + i]
            smallest = ((size - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            largest = smallest + self.stride[i] - 1
            if not smallest <= output_size[i] <= largest:
                raise ValueError(f"{type(self).__name__}: requested an output size of "
                                 f"{output_size}, but valid sizes along dim {i} range from "
                                 f"{smallest} to {largest} (for an input of shape "
                                 f"{tuple(input.shape)})")
            result.append(output_size[i] - smallest)
        return tuple(result)

    def forward(self, input, output_size=None):
        fn = _conv.conv_transpose1d if self._nd == 1 else _conv.conv_transpose2d
        return fn(input, self.weight, self.bias, self.stride, self.padding,
                  self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-d convolution layer: (N, in_channels, L) -> (N, out_channels, L_out)."""
    _nd = 1


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-d convolution layer (upsampling in decoders, lecture notes 14.9)."""
    _nd = 2
