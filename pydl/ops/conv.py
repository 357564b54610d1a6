"""Convolution: ``conv1d``, ``conv2d``, ``conv_transpose1d``, ``conv_transpose2d`` (PyTorch's
signatures), and ``convolve1d`` / ``convolve2d`` for true (kernel-flipped) convolution.

Like every deep-learning library, ``conv2d`` computes a *cross-correlation* (lecture notes 13.2,
14.1): with x of shape (N, C, H, W) and a weight of shape (K, C/groups, R, S)

    y[n, k, i, j] = b[k] + sum_{c, r, s} w[k, c, r, s] * x[n, c, i*sh - ph + r*dh, j*sw - pw + s*dw]

(zero outside the input; channel c runs over k's group). The textbook convolution
(x * w)[i] = sum_r x[i - r] w[r] flips the kernel; ``convolve2d(x, w) == conv2d(x, flip(w))``.
Output size per axis: floor((in + 2*pad - dil*(k - 1) - 1) / stride) + 1.

Gradients (each a C++ kernel in csrc/conv.cpp, and an op of its own below):
    dx = conv2d_backward_input(dy, w)   the transposed convolution of dy with w (ConvTransposeNd)
    dw = conv2d_backward_weight(x, dy)  the correlation of x with dy, summed over the batch
                                        (ConvWeightGrad)
    db = sum of dy over (n, i, j)
A transposed convolution is the backward-input pass run forward, so its own gradients are a
forward convolution (for its input) and the weight pass with x and dy swapped. The three ops
differentiate into one another, so conv is differentiable to any order (create_graph=True, as
PyTorch's convolution_backward); first order on the CPU still takes dx, dw and db from one fused
kernel call (conv2d_backward).
1-d convolutions run as 2-d ones with a height of 1 (a reshape, no copy, inside each op: the ops
save their inputs themselves, so in-place changes are caught before backward).
"""
from __future__ import annotations

import numpy as np

from pydl import _C
from pydl._cuda_kernels import device_kernels
from pydl.ops import _sizes
from pydl.autograd.function import Function
from pydl.tensor import Tensor


# ---- argument handling ---------------------------------------------------------------------------
def _tuple(value, n: int, name: str, op: str) -> tuple:
    """int -> (v,) * n; a tuple/list of n ints stays. Anything else is a TypeError/ValueError."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    if isinstance(value, (tuple, list)):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n or not all(isinstance(v, (int, np.integer))
                                      and not isinstance(v, (bool, np.bool_)) for v in value):
            raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
        return tuple(int(v) for v in value)
    raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")


def _check_tensor(t, name: str, op: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a pydl.Tensor, got {type(t).__name__}")
    if not isinstance(t._data, np.ndarray) and t.device.type != "cuda":
        raise RuntimeError(f"{op}: only CPU and CUDA tensors are supported, {name} is on "
                           f"{t.device}")
    if t.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {t.dtype}")


def _check_common(op, input, weight, bias, nd, stride, padding, dilation, groups):
    """Ranks, dtypes, channel counts and hyper-parameters shared by conv and conv_transpose."""
    _check_tensor(input, "input", op)
    _check_tensor(weight, "weight", op)
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                         f"got input of shape {tuple(input.shape)}")
    if weight.ndim != nd + 2:
        raise ValueError(f"{op}: expected a {nd + 2}-D weight, got weight of shape "
                         f"{tuple(weight.shape)}")
    if weight.dtype != input.dtype:
        raise TypeError(f"{op}: input ({input.dtype}) and weight ({weight.dtype}) must have the "
                        "same dtype")
    if bias is not None:
        _check_tensor(bias, "bias", op)
        if bias.dtype != input.dtype:
            raise TypeError(f"{op}: input ({input.dtype}) and bias ({bias.dtype}) must have the "
                            "same dtype")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if any(s < 1 for s in stride):
        raise ValueError(f"{op}: stride must be positive, got {stride}")
    if any(p < 0 for p in padding):
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    if any(d < 1 for d in dilation):
        raise ValueError(f"{op}: dilation must be positive, got {dilation}")
    _sizes.check_args(op, stride=stride, padding=padding, dilation=dilation, groups=(groups,))


def _as4d(a: np.ndarray, nd: int, batched: bool) -> np.ndarray:
    """View a (N, C, *spatial) / (C, *spatial) array as (N, C, H, W); 1-d gets H = 1."""
    if not batched:
        a = a[None]
    if nd == 1:
        a = a[:, :, None, :]
    return a


def _from4d(a: np.ndarray, nd: int, batched: bool) -> np.ndarray:
    if nd == 1:
        a = a[:, :, 0, :]
    if not batched:
        a = a[0]
    return a


def _weight4d(w: np.ndarray, nd: int) -> np.ndarray:
    return w[:, :, None, :] if nd == 1 else w


def _pad2(t: tuple, nd: int, fill: int) -> tuple:
    return (fill,) + t if nd == 1 else t


# ---- the ops -----------------------------------------------------------------------------------
# Three ops close the family under differentiation (PyTorch's convolution_backward and its double
# backward): the convolution y = conv(x, w), its adjoint in x, the transposed convolution
# convT(dy, w), and its adjoint in w, the weight gradient W(x, dy) = d/dw <dy, conv(x, w)>.
# All three are bilinear, and <dy, conv(x, w)> = <convT(dy, w), x> = <W(x, dy), w>, so each
# one's derivatives are the other two:
#     conv(x, w):   dx = convT(g, w)          dw = W(x, g)
#     convT(x, w):  dx = conv(g, w)           dw = W(g, x)
#     W(x, dy):     dx = convT(dy, g)         d(dy) = conv(x, g)
# Each op takes (N, C, *spatial) or unbatched (C, *spatial) arrays with one or two spatial dims
# and views them as (N, C, H, W) inside forward, so it saves its inputs themselves: they are
# version-checked, and under create_graph they come back as the tensors of the graph.
# stride/padding/dilation arrive as 2-d tuples (a 1-d op has H = 1: stride 1, padding 0).


def _hw(shape, nd: int) -> tuple:
    """The (H, W) of a (.., *spatial) shape; a 1-d shape has H = 1."""
    return (1, shape[-1]) if nd == 1 else tuple(shape[-2:])


def _channel_sum(g, nd: int):
    """Sum over every axis but the channels (the bias gradient), for arrays or Tensors."""
    from pydl.ops.reduction import Sum

    channel = 1 if g.ndim == nd + 2 else 0
    return Sum.call(g, tuple(a for a in range(g.ndim) if a != channel), False)


class ConvNd(Function):
    """y = conv(x, w) + b, the cross-correlation of the module docstring, over 1 or 2 spatial
    dims. ``crop_hw`` keeps only the top-left crop_hw of the output: the gradient of a transposed
    convolution whose output_padding made its output larger than conv's natural input size.

    Saves x and w (dx needs w, dw needs x). For first order on the CPU, dw comes with dx and db
    from one kernel call (``conv2d_backward``); otherwise each gradient is an op of its own."""

    def forward(self, x, w, b, nd, stride, padding, dilation, groups, crop_hw=None):
        self.nd, self.conv, self.crop_hw = nd, (stride, padding, dilation, groups), crop_hw
        self.save_for_backward(x, w)
        batched = x.ndim == nd + 2
        x4, w4 = _as4d(x, nd, batched), _weight4d(w, nd)
        k = device_kernels(x)
        if k is not None:  # CUDA: pydl._C_cuda's kernels (cuda/conv.cuh) on device arrays
            y = k.conv2d_forward(x4, w4, b, stride, padding, dilation, groups)
        else:
            y = _C.conv2d_forward(np.ascontiguousarray(x4), np.ascontiguousarray(w4),
                                  None if b is None else np.ascontiguousarray(b), stride, padding,
                                  dilation, groups)
        if crop_hw is not None and tuple(y.shape[2:]) != tuple(crop_hw):
            y = y[:, :, :crop_hw[0], :crop_hw[1]].copy()
        return _from4d(y, nd, batched)

    def backward(self, gy):
        x, w = self.saved_tensors
        stride, padding, dilation, groups = self.conv
        need_x, need_w, need_b = self.needs_input_grad[:3]
        if need_w and type(gy) is np.ndarray and self.crop_hw is None and \
                device_kernels(gy) is None:
            return self._backward_fused(x, w, gy, need_x, need_b)
        gx = gw = gb = None
        if need_x:
            gx = ConvTransposeNd.call(gy, w, None, self.nd, stride, padding, dilation, groups,
                                      _hw(x.shape, self.nd))
        if need_w:
            gw = ConvWeightGrad.call(x, gy, self.nd, tuple(w.shape), stride, padding, dilation,
                                     groups)
        if need_b:
            gb = _channel_sum(gy, self.nd)
        return gx, gw, gb, None, None, None, None, None, None

    def _backward_fused(self, x, w, gy, need_x, need_b):
        """First order on the CPU: the same dx = convT(gy, w), dw = W(x, gy), db = sum(gy), from
        one kernel call (one pass over the batch where the kernels allow it, see
        conv2d_backward_cpu)."""
        nd, batched = self.nd, x.ndim == self.nd + 2
        stride, padding, dilation, groups = self.conv
        x4 = np.ascontiguousarray(_as4d(x, nd, batched))
        gy4 = np.ascontiguousarray(_as4d(gy, nd, batched))
        gx = None
        if need_x:
            gx, gw, gb = _C.conv2d_backward(x4, gy4, np.ascontiguousarray(_weight4d(w, nd)),
                                            stride, padding, dilation, groups, bool(need_b))
            # Reshape only when the shape changes: a view (even of the same shape) is not the
            # array's owner, and the engine copies gradients it does not own.
            gx = _from4d(gx, nd, batched)
            if gx.shape != x.shape:
                gx = gx.reshape(x.shape)
        else:
            gw, gb = _C.conv2d_backward_weight(x4, gy4, _hw(w.shape, nd), stride, padding,
                                               dilation, groups, bool(need_b))
        if gw.shape != w.shape:
            gw = gw.reshape(w.shape)
        return gx, gw, gb, None, None, None, None, None, None


class ConvTransposeNd(Function):
    """y = convT(x, w) + b, the transposed convolution (the gradient of conv w.r.t. its input,
    used as a layer, and conv's backward-input pass): weight is (C_in, C_out / groups, *kernel),
    the output's (H, W) is ``out_hw``. Saves x and w."""

    def forward(self, x, w, b, nd, stride, padding, dilation, groups, out_hw):
        self.nd, self.conv = nd, (stride, padding, dilation, groups)
        self.save_for_backward(x, w)
        batched = x.ndim == nd + 2
        x4, w4 = _as4d(x, nd, batched), _weight4d(w, nd)
        k = device_kernels(x)
        if k is not None:  # CUDA: the conv backward-data kernel (cuda/conv.cuh)
            natural = k.conv2d_output_hw(out_hw[0], out_hw[1], w4.shape[2], w4.shape[3], stride,
                                         padding, dilation)
            if natural != tuple(x4.shape[2:]):
                raise RuntimeError(f"conv_transpose{nd}d on 'cuda': output_padding >= stride is "
                                   f"not supported by the CUDA kernels (input {tuple(x.shape)}, "
                                   f"output size {tuple(out_hw[2 - nd:])}, stride "
                                   f"{stride[2 - nd:]})")
            y_shape = (x4.shape[0], w4.shape[1] * groups) + tuple(out_hw)
            y = k.conv2d_backward_data(x4, w4, y_shape, stride, padding, dilation, groups)
        else:
            y = _C.conv2d_backward_input(np.ascontiguousarray(x4), np.ascontiguousarray(w4),
                                         out_hw, stride, padding, dilation, groups)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return _from4d(y, nd, batched)

    def backward(self, gy):
        x, w = self.saved_tensors
        stride, padding, dilation, groups = self.conv
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            # output_padding >= stride (allowed when < dilation) makes conv's natural output
            # larger than x: crop it.
            gx = ConvNd.call(gy, w, None, self.nd, stride, padding, dilation, groups,
                             _hw(x.shape, self.nd))
        if self.needs_input_grad[1]:
            gw = ConvWeightGrad.call(gy, x, self.nd, tuple(w.shape), stride, padding, dilation,
                                     groups)
        if self.needs_input_grad[2]:
            gb = _channel_sum(gy, self.nd)
        return gx, gw, gb, None, None, None, None, None, None


class ConvWeightGrad(Function):
    """W(x, dy) = d/dw <dy, conv(x, w)>: the correlation of x with dy, summed over the batch,
    of shape ``w_shape`` (conv's backward-weight pass). dy's (H, W) may be a top-left crop of
    conv's natural output (see ConvNd's crop_hw). Saves x and dy."""

    def forward(self, x, dy, nd, w_shape, stride, padding, dilation, groups):
        self.nd, self.conv = nd, (stride, padding, dilation, groups)
        self.save_for_backward(x, dy)
        batched = x.ndim == nd + 2
        x4, dy4 = _as4d(x, nd, batched), _as4d(dy, nd, batched)
        w4_shape = tuple(w_shape[:2]) + _hw(w_shape, nd)
        k = device_kernels(x)
        if k is not None:
            gw = k.conv2d_backward_weight(x4, dy4, w4_shape, stride, padding, dilation, groups)
        else:
            gw, _ = _C.conv2d_backward_weight(np.ascontiguousarray(x4), np.ascontiguousarray(dy4),
                                              w4_shape[2:], stride, padding, dilation, groups,
                                              False)
        return gw.reshape(w_shape) if gw.shape != tuple(w_shape) else gw

    def backward(self, gw):
        x, dy = self.saved_tensors
        stride, padding, dilation, groups = self.conv
        gx = gdy = None
        if self.needs_input_grad[0]:
            gx = ConvTransposeNd.call(dy, gw, None, self.nd, stride, padding, dilation, groups,
                                      _hw(x.shape, self.nd))
        if self.needs_input_grad[1]:
            gdy = ConvNd.call(x, gw, None, self.nd, stride, padding, dilation, groups,
                              _hw(dy.shape, self.nd))
        return gx, gdy, None, None, None, None, None, None


def _same_padding(kernel: tuple, dilation: tuple):
    """padding='same': total dil*(k-1) per axis, the odd extra one on the right (as PyTorch)."""
    total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
    left = tuple(t // 2 for t in total)
    extra = tuple(t - 2 * lo for t, lo in zip(total, left))
    return left, extra


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups):
    stride = _tuple(stride, nd, "stride", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a tuple of ints, "
                             f"got {padding!r}")
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride {stride})")
        pad_mode = padding
        padding = (0,) * nd
    else:
        pad_mode = None
        padding = _tuple(padding, nd, "padding", op)
    _check_common(op, input, weight, bias, nd, stride, padding, dilation, groups)
    batched = input.ndim == nd + 2
    C = input.shape[1 if batched else 0]
    K, Cg = weight.shape[0], weight.shape[1]
    if C != Cg * groups:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} has {C} channels, but weight "
                         f"of shape {tuple(weight.shape)} with groups={groups} expects "
                         f"{Cg * groups} (= {Cg} x {groups})")
    if K % groups:
        raise ValueError(f"{op}: out_channels ({K}, weight of shape {tuple(weight.shape)}) must be "
                         f"divisible by groups ({groups})")
    if bias is not None and tuple(bias.shape) != (K,):
        raise ValueError(f"{op}: bias must have shape ({K},), got {tuple(bias.shape)}")
    kernel = tuple(weight.shape[2:])
    if pad_mode == "same":
        padding, extra = _same_padding(kernel, dilation)
        if any(extra):
            from pydl.ops.shape import pad as pad_op

            widths = []
            for e in reversed(extra):  # F.pad lists the last axis first
                widths += [0, e]
            input = pad_op(input, tuple(widths))
    spatial = input.shape[-nd:]
    out = []
    for i in range(nd):
        # Checked against int64: the kernels compute these sizes in int64 too.
        eff = _sizes.window_extent(op, kernel[i], dilation[i])
        padded = _sizes.padded_extent(op, spatial[i], padding[i])
        if eff > padded:
            raise ValueError(f"{op}: kernel size {kernel} (effective {eff} with dilation "
                             f"{dilation}) is larger than the padded input: input of shape "
                             f"{tuple(input.shape)} with padding {padding}")
        out.append((padded - eff) // stride[i] + 1)
    _sizes.check_numel(op, "output", tuple(input.shape[:-nd - 1]) + (K,) + tuple(out),
                       input._data.dtype.itemsize)
    return ConvNd.apply(input, weight, bias, nd, _pad2(stride, nd, 1), _pad2(padding, nd, 0),
                        _pad2(dilation, nd, 1), int(groups))


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation: input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, k),
    output (N, C_out, L_out) with L_out = floor((L + 2p - d(k-1) - 1) / s) + 1.
    padding may be 'valid' (0) or 'same' (stride 1 only)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation: input (N, C_in, H, W) or (C_in, H, W), weight
    (C_out, C_in/groups, kH, kW), output (N, C_out, H_out, W_out); see the module docstring."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    stride = _tuple(stride, nd, "stride", op)
    padding = _tuple(padding, nd, "padding", op)
    output_padding = _tuple(output_padding, nd, "output_padding", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    _check_common(op, input, weight, bias, nd, stride, padding, dilation, groups)
    batched = input.ndim == nd + 2
    C_in = input.shape[1 if batched else 0]
    if weight.shape[0] != C_in:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} has {C_in} channels, but "
                         f"weight of shape {tuple(weight.shape)} expects {weight.shape[0]}")
    if C_in % groups:
        raise ValueError(f"{op}: in_channels ({C_in}) must be divisible by groups ({groups})")
    C_out = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (C_out,):
        raise ValueError(f"{op}: bias must have shape ({C_out},), got {tuple(bias.shape)}")
    for i in range(nd):
        if output_padding[i] < 0 or (output_padding[i] >= stride[i]
                                     and output_padding[i] >= dilation[i]):
            raise ValueError(f"{op}: output padding must be smaller than either stride or "
                             f"dilation, got output_padding={output_padding}, stride={stride}, "
                             f"dilation={dilation}")
    _sizes.check_args(op, output_padding=output_padding)
    kernel = tuple(weight.shape[2:])
    spatial = input.shape[-nd:]
    # The output before padding is cut off, (in - 1) * s + d (k - 1) + output_padding + 1, and
    # the cut, 2p: both must fit int64 (the kernels see them as the padded input of the
    # backward pass), and the cut must leave something. No message shows a negative size.
    full = tuple(_sizes.int64(op, "(input - 1) * stride + dilation * (kernel_size - 1) + "
                                  "output_padding + 1",
                              max(spatial[i] - 1, 0) * stride[i] + dilation[i] * (kernel[i] - 1)
                              + output_padding[i] + 1) for i in range(nd))
    cut = tuple(_sizes.int64(op, "2 * padding", 2 * padding[i]) for i in range(nd))
    if any(c >= f for c, f in zip(cut, full)):
        raise ValueError(f"{op}: padding {padding} removes the whole output: 2 * padding "
                         f"{cut} is not smaller than the unpadded output size {full} (input of "
                         f"shape {tuple(input.shape)}, kernel {kernel}, stride {stride}, "
                         f"dilation {dilation}, output_padding {output_padding})")
    out = tuple(f - c for f, c in zip(full, cut))
    _sizes.check_numel(op, "output", tuple(input.shape[:-nd - 1]) + (C_out,) + out,
                       input._data.dtype.itemsize)
    if any(s < 1 for s in spatial):
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} has an empty spatial dim")
    out_hw = (1,) + out if nd == 1 else out
    return ConvTransposeNd.apply(input, weight, bias, nd, _pad2(stride, nd, 1),
                                 _pad2(padding, nd, 0), _pad2(dilation, nd, 1), int(groups), out_hw)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 1-d convolution: input (N, C_in, L), weight (C_in, C_out/groups, k), output
    length (L - 1) * s - 2p + d(k - 1) + output_padding + 1."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-d convolution ("deconvolution", lecture notes 14.9): input (N, C_in, H, W),
    weight (C_in, C_out/groups, kH, kW); H_out = (H - 1) * s - 2p + d(kH - 1) + output_padding + 1.
    It is the gradient of conv2d with respect to its input, with the same weight."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def convolve1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """True 1-d convolution (kernel flipped): y[i] = sum_r x[i*s - p + (k-1-r)*d] w[r], i.e.
    conv1d with the weight reversed. With padding = k - 1 it is numpy.convolve(x, w, 'full')."""
    from pydl.ops.shape import flip

    _check_tensor(weight, "weight", "convolve1d")
    return conv1d(input, flip(weight, (-1,)), bias, stride, padding, dilation, groups)


def convolve2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """True 2-d convolution (x * w)[i, j] = sum_{r,s} x[i - r, j - s] w[r, s] (lecture notes
    13.2), computed as conv2d (a cross-correlation) with the kernel flipped in both axes."""
    from pydl.ops.shape import flip

    _check_tensor(weight, "weight", "convolve2d")
    return conv2d(input, flip(weight, (-2, -1)), bias, stride, padding, dilation, groups)


def conv2d_column_buffer_bytes(input_shape, weight_shape, stride=1, padding=0, dilation=1,
                               groups=1, itemsize=4) -> int:
    """Most bytes of scratch one conv2d kernel call holds (all threads together): for im2col +
    GEMM, threads x (C/groups * kH * kW) x tile with the tile sized to about 1 MiB per thread;
    for the float32 direct, row-flat and Winograd paths, their padded or shifted input copies,
    weight-gradient lanes and transformed tiles (the row-flat path keeps its buffer for the next
    call on the same thread). Either way it does not grow with the batch."""
    return _C.conv2d_column_buffer_bytes(tuple(input_shape), tuple(weight_shape),
                                         _tuple(stride, 2, "stride", "conv2d"),
                                         _tuple(padding, 2, "padding", "conv2d"),
                                         _tuple(dilation, 2, "dilation", "conv2d"), groups,
                                         itemsize)
