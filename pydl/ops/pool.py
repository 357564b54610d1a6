"""Pooling (lecture notes 14.6-14.7): ``max_pool1d/2d``, ``avg_pool1d/2d``,
``adaptive_avg_pool1d/2d`` with PyTorch's signatures; kernels in csrc/pool.cpp.

Output size per axis (kernel k, stride s, padding p, dilation d):
    floor((in + 2p - d(k - 1) - 1) / s) + 1          (ceil instead of floor with ceil_mode,
                                                      dropping a last window that would start
                                                      in the right padding)
Max pooling keeps the argmax of each window (returned as the flat index ih * W + iw in its plane
with ``return_indices``, as PyTorch; kept as a one-byte window position when only backward needs
it, see MaxPoolNd); backward sends dy there (dx = 0 elsewhere), so nothing is recomputed.
Average pooling divides by the window size clipped to the padded input (count_include_pad) or
to the input, or by divisor_override; backward spreads dy / divisor over the window.
Adaptive average pooling to size O uses windows [floor(o * in / O), ceil((o + 1) * in / O)).

Every backward is linear in dy and an op of its own whose gradient is its adjoint (scatter and
gather of the argmax; average pooling's A^T and A), so pooling is differentiable to any order.
"""
from __future__ import annotations

import numpy as np

from pydl import _C
from pydl._cuda_kernels import device_kernels
from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops import _sizes
from pydl.ops.conv import _check_tensor, _tuple
from pydl.ops.elementwise import raw

# Largest window whose argmax fits the kernels' one-byte taps (255 marks an empty window).
_TAP_WINDOW = 255


def _pool_output_size(op, size, k, s, p, d, ceil_mode):
    num = size + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-num // s) + 1
        # The last window must start inside the input or the left padding.
        if (out - 1) * s >= size + p:
            out -= 1
    else:
        out = num // s + 1
    return out


def _pool_args(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode):
    _check_tensor(input, "input", op)
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                         f"got input of shape {tuple(input.shape)}")
    kernel = _tuple(kernel_size, nd, "kernel_size", op)
    stride = kernel if stride is None or stride == () or stride == [] else _tuple(stride, nd,
                                                                                  "stride", op)
    padding = _tuple(padding, nd, "padding", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel_size must be positive, got {kernel}")
    if any(s < 1 for s in stride):
        raise ValueError(f"{op}: stride must be positive, got {stride}")
    if any(d < 1 for d in dilation):
        raise ValueError(f"{op}: dilation must be positive, got {dilation}")
    if any(p < 0 for p in padding):
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    _sizes.check_args(op, kernel_size=kernel, stride=stride, padding=padding,
                      dilation=dilation)
    for i in range(nd):
        if padding[i] > kernel[i] // 2:
            raise ValueError(f"{op}: pad should be at most half of kernel size, but got "
                             f"padding={padding}, kernel_size={kernel}")
    spatial = input.shape[-nd:]
    if any(v == 0 for v in spatial):
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} has an empty spatial "
                         "dimension")
    # Checked against int64 (the kernels' type) before any output size is computed.
    extents = tuple(_sizes.window_extent(op, kernel[i], dilation[i]) for i in range(nd))
    padded = tuple(_sizes.padded_extent(op, spatial[i], padding[i]) for i in range(nd))
    out = tuple(_pool_output_size(op, spatial[i], kernel[i], stride[i], padding[i], dilation[i],
                                  ceil_mode) for i in range(nd))
    if any(o < 1 for o in out):
        # (The computed size itself can be hugely negative: not shown.)
        raise ValueError(f"{op}: output size is too small: the window (extent {extents} with "
                         f"dilation) leaves no output in the padded input {padded}: input of "
                         f"shape {tuple(input.shape)}, kernel_size {kernel}, stride {stride}, "
                         f"padding {padding}, dilation {dilation}")
    _sizes.check_numel(op, "output", tuple(input.shape[:-nd]) + out, input._data.dtype.itemsize)
    if nd == 1:
        return (1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation, (1,) + out
    return kernel, stride, padding, dilation, out


def _as_planes(x: np.ndarray, nd: int) -> np.ndarray:
    """A (..., L) array as (..., 1, L) for the 2-d kernels (1-d pooling has H = 1)."""
    return x[..., None, :] if nd == 1 else x


def _from_planes(y: np.ndarray, nd: int) -> np.ndarray:
    return y[..., 0, :] if nd == 1 else y


def _cuda_planes(k, x, nd, kernel, stride, padding, dilation, out_hw):
    """For the CUDA pooling kernels: x as (1, planes, H, W) (they run over N * C planes, so
    unbatched and 1-d inputs fit), and the ceil_mode that gives out_hw (the kernels take the
    flag, the ops pass the size it produced; equal sizes make the flag irrelevant)."""
    x2 = _as_planes(x, nd)
    floor_hw = tuple(k.pool_output_size(x2.shape[-2 + i], kernel[i], stride[i], padding[i],
                                        dilation[i], False) for i in range(2))
    return x2.reshape((1, -1) + x2.shape[-2:]), x2.shape, tuple(out_hw) != floor_hw


class MaxPoolNd(Function):
    """Max pooling; returns (output, indices or None). Backward is a scatter to the argmax, it
    never looks at x again, so only the argmax is saved, in the smallest form that serves:

    * return_indices: PyTorch's int64 flat indices ih * W + iw (the public contract), reused by
      backward;
    * otherwise, when a gradient will be needed: one uint8 "tap" per output, the position
      r * kW + t of the maximum inside its window (a window of up to 255 elements; larger
      windows keep int64) - an eighth of the bytes to write, keep and read back;
    * otherwise (inference, no_grad): nothing at all.

    The argmax is piecewise constant in x, so dx = scatter(dy, argmax) is linear in dy and has
    no derivative in x: the scatter (MaxPoolScatter) and its adjoint, the gather of the same
    positions (MaxPoolGather), are each other's gradients, to any order."""

    def forward(self, x, nd, kernel, stride, padding, dilation, out_hw, return_indices):
        k = device_kernels(x)
        if k is not None:  # CUDA: pydl._C_cuda's kernels (cuda/pool.cuh) on device arrays
            x4, shape, ceil = _cuda_planes(k, x, nd, kernel, stride, padding, dilation, out_hw)
            self.where = _Argmax(nd, "int64", tuple(x4.shape[-2:]), kernel, stride, padding,
                                 dilation, (x4.shape, kernel, stride, padding, dilation, ceil))
            y, idx = k.max_pool2d_forward(x4, kernel, stride, padding, dilation, ceil)
            self.save_for_backward(idx)
            out_shape = shape[:-2] + tuple(out_hw)
            y = _from_planes(y.reshape(out_shape), nd)
            if not return_indices:
                return y
            idx = _from_planes(idx.reshape(out_shape), nd)
            self.mark_non_differentiable(idx)
            return y, idx
        x2 = np.ascontiguousarray(_as_planes(x, nd))
        needs_grad = bool(self.needs_input_grad and self.needs_input_grad[0])
        use_taps = kernel[0] * kernel[1] <= _TAP_WINDOW
        if return_indices or (needs_grad and not use_taps):
            kind = "int64"
        else:
            kind = "taps" if needs_grad else "none"
        self.where = _Argmax(nd, kind, x2.shape[-2:], kernel, stride, padding, dilation, None)
        y, argmax = _C.max_pool2d_forward(x2, kernel, stride, padding, dilation, out_hw, kind)
        if needs_grad:
            self.save_for_backward(argmax)
        y = _from_planes(y, nd)
        if not return_indices:
            return y
        idx = _from_planes(argmax, nd)
        self.mark_non_differentiable(idx)
        return y, idx

    def backward(self, gy, _gidx=None):
        argmax, = self.saved_tensors
        gx = None
        if self.needs_input_grad[0]:
            # The indices are constants (an int tensor under create_graph): pass the array.
            gx = MaxPoolScatter.call(gy, raw(argmax), self.where)
        return gx, None, None, None, None, None, None, None


class _Argmax:
    """Where a max pooling's maxima are: the argmax's form ("int64" flat ih * W + iw, or "taps"),
    the input planes' (H, W), the window geometry, and the CUDA kernels' arguments (None on the
    CPU). Shared by the scatter and gather ops."""

    __slots__ = ("nd", "kind", "in_hw", "kernel", "stride", "padding", "dilation", "cuda_args")

    def __init__(self, nd, kind, in_hw, kernel, stride, padding, dilation, cuda_args):
        self.nd, self.kind, self.in_hw = nd, kind, tuple(in_hw)
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.cuda_args = cuda_args

    def flat(self, argmax, xp):
        """The argmax as int64 flat indices ih * W + iw in each plane, -1 for an empty window."""
        if self.kind != "taps":
            return argmax
        oh, ow = argmax.shape[-2:]
        taps = argmax.astype(np.int64)
        ih = (xp.arange(oh)[:, None] * self.stride[0] - self.padding[0]
              + taps // self.kernel[1] * self.dilation[0])
        iw = (xp.arange(ow)[None, :] * self.stride[1] - self.padding[1]
              + taps % self.kernel[1] * self.dilation[1])
        return xp.where(argmax == 255, -1, ih * self.in_hw[1] + iw)


class MaxPoolScatter(Function):
    """dx = scatter(dy, argmax): each dy goes to the position of its window's maximum (the
    backward kernel); linear in dy, its gradient is MaxPoolGather."""

    def forward(self, gy, argmax, where):
        self.where = where
        self.save_for_backward(argmax)
        nd = where.nd
        k = device_kernels(gy)
        if k is not None:
            planes = _as_planes(gy, nd).shape[:-2]
            gx = k.max_pool2d_backward(_as_planes(gy, nd).reshape(argmax.shape), argmax,
                                       *where.cuda_args)
            return _from_planes(gx.reshape(planes + where.in_hw), nd)
        gy2 = np.ascontiguousarray(_as_planes(gy, nd))
        args = (where.kernel, where.stride, where.padding, where.dilation)
        if where.kind == "taps":
            gx = _C.max_pool2d_backward_taps(gy2, argmax, where.in_hw, *args)
        else:
            gx = _C.max_pool2d_backward(gy2, argmax, where.in_hw)
        return _from_planes(gx, nd)

    def backward(self, ggx):
        argmax, = self.saved_tensors
        return MaxPoolGather.call(ggx, raw(argmax), self.where), None, None


class MaxPoolGather(Function):
    """y[o] = x[argmax[o]] (0 for an empty window): the adjoint of MaxPoolScatter, the
    gradient of max pooling's backward w.r.t. dy. Only double backward runs it, so NumPy (or
    CuPy) indexing serves."""

    def forward(self, x, argmax, where):
        self.where = where
        self.save_for_backward(argmax)
        nd = where.nd
        xp = array_module(x)
        x2 = _as_planes(x, nd)
        planes = x2.shape[:-2]
        n_planes, out_hw = int(np.prod(planes, dtype=np.int64)), argmax.shape[-2:]
        flat = where.flat(argmax, xp).reshape(n_planes, out_hw[0] * out_hw[1])
        src = x2.reshape(n_planes, x2.shape[-2] * x2.shape[-1])
        y = xp.take_along_axis(src, xp.maximum(flat, 0), axis=1)
        y = xp.where(flat < 0, 0, y).astype(x.dtype, copy=False)
        return _from_planes(y.reshape(planes + tuple(out_hw)), nd)

    def backward(self, gy):
        argmax, = self.saved_tensors
        return MaxPoolScatter.call(gy, raw(argmax), self.where), None, None


def _is_global(pool, in_hw) -> bool:
    """Whether average pooling ``pool`` is one window over the whole (H, W) plane, with no
    padding and no divisor override: then it is the mean of each plane, adaptive pooling to 1x1."""
    _, kernel, _, padding, out_hw, _, divisor = pool
    return (tuple(kernel) == tuple(in_hw) and tuple(out_hw) == (1, 1) and not any(padding)
            and not divisor)


class AvgPoolNd(Function):
    """Average pooling, y = A x with A fixed by the window geometry and divisors: backward is
    A^T dy (AvgPoolBackward), whose own gradient is A again, this op. No saved arrays."""

    def forward(self, x, nd, kernel, stride, padding, out_hw, count_include_pad, divisor):
        self.pool = (nd, kernel, stride, padding, out_hw, count_include_pad, divisor)
        k = device_kernels(x)
        if k is not None:  # CUDA: pydl._C_cuda's kernels (cuda/pool.cuh) on device arrays
            x4, shape, ceil = _cuda_planes(k, x, nd, kernel, stride, padding, (1, 1), out_hw)
            self.in_hw = tuple(x4.shape[-2:])
            self.cuda_args = (kernel, stride, padding, ceil, bool(count_include_pad), divisor)
            y = k.avg_pool2d_forward(x4, *self.cuda_args)
            return _from_planes(y.reshape(shape[:-2] + tuple(out_hw)), nd)
        x2 = np.ascontiguousarray(_as_planes(x, nd))
        self.in_hw = x2.shape[-2:]
        self.cuda_args = None
        if _is_global(self.pool, self.in_hw):
            # One window over the whole plane: the adaptive kernel's contiguous sum (32 lanes)
            # instead of the window loops (AMD EPYC Zen 3, 1 thread, (64, 64, 56, 56): 12.6 ms
            # -> ~4 ms forward).
            return _from_planes(_C.adaptive_avg_pool2d_forward(x2, (1, 1)), nd)
        y = _C.avg_pool2d_forward(x2, kernel, stride, padding, out_hw, bool(count_include_pad),
                                  divisor)
        return _from_planes(y, nd)

    def backward(self, gy):
        gx = None
        if self.needs_input_grad[0]:
            gx = AvgPoolBackward.call(gy, self.pool, self.in_hw, self.cuda_args)
        return gx, None, None, None, None, None, None, None


class AvgPoolBackward(Function):
    """dx = A^T dy for average pooling (the backward kernel): dy / divisor spread over each
    window. Linear in dy; its gradient is the pooling itself."""

    def forward(self, gy, pool, in_hw, cuda_args):
        self.pool = pool
        nd, kernel, stride, padding, _, count_include_pad, divisor = pool
        gy2 = _as_planes(gy, nd)
        k = device_kernels(gy)
        if k is not None:
            x_shape = (1, int(np.prod(gy2.shape[:-2], dtype=np.int64))) + tuple(in_hw)
            gx = k.avg_pool2d_backward(gy2.reshape((1, -1) + gy2.shape[-2:]), x_shape,
                                       *cuda_args)
            return _from_planes(gx.reshape(gy2.shape[:-2] + tuple(in_hw)), nd)
        if _is_global(pool, in_hw):  # dy / (H W) over each plane, as AvgPoolNd's fast path
            return _from_planes(_C.adaptive_avg_pool2d_backward(np.ascontiguousarray(gy2),
                                                                tuple(in_hw)), nd)
        gx = _C.avg_pool2d_backward(np.ascontiguousarray(gy2), in_hw, kernel, stride, padding,
                                    bool(count_include_pad), divisor)
        return _from_planes(gx, nd)

    def backward(self, ggx):
        return AvgPoolNd.call(ggx, *self.pool), None, None, None


class AdaptiveAvgPoolNd(Function):
    """Adaptive average pooling, linear like AvgPoolNd: backward AdaptiveAvgPoolBackward, whose
    gradient is this op."""

    def forward(self, x, nd, out_hw):
        self.nd = nd
        if device_kernels(x) is not None:
            raise RuntimeError(f"adaptive_avg_pool{nd}d: no CUDA kernel yet for device 'cuda' "
                               f"(input of shape {tuple(x.shape)}); move the tensor to the CPU")
        x2 = np.ascontiguousarray(_as_planes(x, nd))
        self.in_hw = x2.shape[-2:]
        return _from_planes(_C.adaptive_avg_pool2d_forward(x2, out_hw), nd)

    def backward(self, gy):
        gx = None
        if self.needs_input_grad[0]:
            gx = AdaptiveAvgPoolBackward.call(gy, self.nd, self.in_hw)
        return gx, None, None


class AdaptiveAvgPoolBackward(Function):
    def forward(self, gy, nd, in_hw):
        self.nd = nd
        gy2 = np.ascontiguousarray(_as_planes(gy, nd))
        self.out_hw = gy2.shape[-2:]
        return _from_planes(_C.adaptive_avg_pool2d_backward(gy2, in_hw), nd)

    def backward(self, ggx):
        return AdaptiveAvgPoolNd.call(ggx, self.nd, self.out_hw), None, None


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    kernel, stride, padding, dilation, out = _pool_args(op, nd, input, kernel_size, stride,
                                                        padding, dilation, ceil_mode)
    return MaxPoolNd.apply(input, nd, kernel, stride, padding, dilation, out[-2:],
                           bool(return_indices))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over windows of a (N, C, L) or (C, L) input; indices (with return_indices) are
    positions along L."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over (kH, kW) windows of a (N, C, H, W) or (C, H, W) input; stride defaults to the
    kernel size; padding counts as -inf; indices are ih * W + iw within each plane."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    kernel, stride, padding, _, out = _pool_args(op, nd, input, kernel_size, stride, padding, 1,
                                                 ceil_mode)
    divisor = 0
    if divisor_override is not None:
        if (not isinstance(divisor_override, (int, np.integer)) or isinstance(divisor_override, bool)
                or divisor_override == 0):
            raise ValueError(f"{op}: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
        if divisor_override < 0:
            raise ValueError(f"{op}: divisor_override must be positive, got {divisor_override}")
        divisor = int(divisor_override)
    return AvgPoolNd.apply(input, nd, kernel, stride, padding, out[-2:], count_include_pad,
                           divisor)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over windows of a (N, C, L) or (C, L) input (zero padding counted when
    count_include_pad)."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over (kH, kW) windows of a (N, C, H, W) or (C, H, W) input."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _adaptive(op, nd, input, output_size):
    _check_tensor(input, "input", op)
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                         f"got input of shape {tuple(input.shape)}")
    spatial = input.shape[-nd:]
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise ValueError(f"{op}: output_size must be an int or a tuple of {nd}, got "
                             f"{output_size!r}")
        out = tuple(spatial[i] if o is None else o for i, o in enumerate(output_size))
    else:
        out = (output_size,) * nd
    if not all(isinstance(o, (int, np.integer)) and not isinstance(o, bool) for o in out):
        raise TypeError(f"{op}: output_size must hold ints (or None), got {output_size!r}")
    out = tuple(int(o) for o in out)
    if any(o < 0 for o in out):
        raise ValueError(f"{op}: output_size must be non-negative, got {out}")
    _sizes.check_args(op, output_size=out)
    _sizes.check_numel(op, "output", tuple(input.shape[:-nd]) + out, input._data.dtype.itemsize)
    if any(s == 0 for s in spatial):
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} has an empty spatial dim")
    out_hw = (1,) + out if nd == 1 else out
    return AdaptiveAvgPoolNd.apply(input, nd, out_hw)


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of a (N, C, L) input to length output_size, windows chosen to cover L."""
    return _adaptive("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of a (N, C, H, W) input to output_size (int, or (oh, ow) with None meaning
    "keep this dim")."""
    return _adaptive("adaptive_avg_pool2d", 2, input, output_size)
