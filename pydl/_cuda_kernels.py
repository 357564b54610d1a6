"""Array-level calls into pydl's CUDA kernels.

``CudaKernels(module)`` wraps a kernel module: ``pydl._C_cuda`` (kernels compiled by nvcc, on
CuPy arrays) or ``pydl._C_cuda_emu`` (the very same launchers and device code compiled by g++
against the CUDA emulation harness, on NumPy arrays: tests only). Each method checks shapes,
makes its inputs C-contiguous when the kernel needs it, allocates the outputs with the input's
array module, and passes device pointers and the current stream (CuPy's) as integers.

The ops in ``pydl/ops`` call ``pydl.cuda.kernels()`` for CUDA tensors; tests/cuda/ runs the same
methods on the emulated module, tests/gpu/ on the real one.
"""
from __future__ import annotations

import numpy as np


def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray)


def _ptr(x) -> int:
    return x.ctypes.data if _is_numpy(x) else x._data.ptr


class CudaKernels:
    def __init__(self, module):
        self.module = module
        self.emulated = bool(getattr(module, "emulated", False))

    # -- plumbing ----------------------------------------------------------------------------
    def _xp(self, x):
        if self.emulated:
            if not _is_numpy(x):
                raise TypeError("the emulated CUDA kernels run on NumPy arrays, got "
                                f"{type(x).__name__}")
            return np
        import cupy

        if not isinstance(x, cupy.ndarray):
            raise TypeError(f"CUDA kernels need CuPy arrays, got {type(x).__name__}")
        return cupy

    def _stream(self) -> int:
        if self.emulated:
            return 0
        import cupy

        return cupy.cuda.get_current_stream().ptr

    @staticmethod
    def _contig(xp, x, dtype=None):
        return xp.ascontiguousarray(x, dtype=dtype)

    # -- GEMM --------------------------------------------------------------------------------
    def matmul(self, a, b, trans_a: bool = False, trans_b: bool = False):
        """op(a) @ op(b) over the last two dims with broadcast batch dims; op = transpose if
        flagged. a and b share a float dtype (float32 or float64)."""
        xp = self._xp(a)
        self._xp(b)
        if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
            raise TypeError(f"matmul (CUDA): both operands must be float32 or float64 of one "
                            f"dtype, got {a.dtype} and {b.dtype}")
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul (CUDA): operands need 2 or more dims, got shapes "
                             f"{a.shape} and {b.shape}")
        m, ka = (a.shape[-1], a.shape[-2]) if trans_a else (a.shape[-2], a.shape[-1])
        kb, n = (b.shape[-1], b.shape[-2]) if trans_b else (b.shape[-2], b.shape[-1])
        if ka != kb:
            raise ValueError(f"matmul (CUDA): shapes {a.shape} and {b.shape} cannot be "
                             f"multiplied (trans_a={trans_a}, trans_b={trans_b})")
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        nbatch = int(np.prod(batch, dtype=np.int64))
        a, stride_a = self._batched(xp, a, batch)
        b, stride_b = self._batched(xp, b, batch)
        out = xp.empty(batch + (m, n), dtype=a.dtype)
        if out.size == 0:
            return out
        fn = self.module.sgemm if a.dtype == np.float32 else self.module.dgemm
        fn(trans_a, trans_b, m, n, ka, 1.0, _ptr(a), a.shape[-1], stride_a, _ptr(b),
           b.shape[-1], stride_b, 0.0, _ptr(out), n, m * n, nbatch, self._stream())
        return out

    def _batched(self, xp, x, batch):
        """x made C-contiguous with a batch stride: 0 when one matrix serves the whole batch,
        else x broadcast to the batch shape."""
        rows, cols = x.shape[-2:]
        if all(s == 1 for s in x.shape[:-2]):
            return self._contig(xp, x.reshape(rows, cols)), 0
        if x.shape[:-2] != batch:
            x = xp.broadcast_to(x, batch + (rows, cols))
        return self._contig(xp, x), rows * cols

    # -- convolution -------------------------------------------------------------------------
    def _conv_fn(self, name, dtype):
        if dtype == np.float32:
            return getattr(self.module, name + "_f32")
        if dtype == np.float64:
            return getattr(self.module, name + "_f64")
        raise TypeError(f"{name} (CUDA): float32 or float64 expected, got {dtype}")

    @staticmethod
    def _conv_geometry(x_shape, w_shape, stride, padding, dilation, groups):
        n, cin, h, w = x_shape
        cout, cin_g, kh, kw = w_shape
        if cin_g * groups != cin:
            raise ValueError(f"conv2d (CUDA): weight {tuple(w_shape)} with groups={groups} "
                             f"expects {cin_g * groups} input channels, input has {cin} "
                             f"(input shape {tuple(x_shape)})")
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        return (n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups)

    @staticmethod
    def conv2d_output_hw(h, w, kh, kw, stride, padding, dilation):
        oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        return oh, ow

    def conv2d_forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0),
                       dilation=(1, 1), groups=1):
        """y = conv2d(x, weight) + bias: x (N, Cin, H, W), weight (Cout, Cin/groups, KH, KW)."""
        xp = self._xp(x)
        x = self._contig(xp, x)
        weight = self._contig(xp, weight, x.dtype)
        geo = self._conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
        oh, ow = self.conv2d_output_hw(x.shape[2], x.shape[3], weight.shape[2], weight.shape[3],
                                       stride, padding, dilation)
        y = xp.empty((x.shape[0], weight.shape[0], oh, ow), dtype=x.dtype)
        bias_ptr = 0
        if bias is not None:
            bias = self._contig(xp, bias, x.dtype)
            if bias.shape != (weight.shape[0],):
                raise ValueError(f"conv2d (CUDA): bias shape {bias.shape} must be "
                                 f"({weight.shape[0]},)")
            bias_ptr = _ptr(bias)
        self._conv_fn("conv2d_forward", x.dtype)(_ptr(x), _ptr(weight), bias_ptr, _ptr(y), *geo,
                                                  self._stream())
        return y

    def conv2d_backward_data(self, grad_output, weight, x_shape, stride=(1, 1), padding=(0, 0),
                             dilation=(1, 1), groups=1):
        """grad_input (x_shape) of conv2d given grad_output (N, Cout, OH, OW)."""
        xp = self._xp(grad_output)
        dy = self._contig(xp, grad_output)
        weight = self._contig(xp, weight, dy.dtype)
        geo = self._conv_geometry(x_shape, weight.shape, stride, padding, dilation, groups)
        self._check_grad_output(dy, x_shape, weight.shape, stride, padding, dilation)
        dx = xp.empty(tuple(x_shape), dtype=dy.dtype)
        self._conv_fn("conv2d_backward_data", dy.dtype)(_ptr(dy), _ptr(weight), _ptr(dx), *geo,
                                                         self._stream())
        return dx

    def conv2d_backward_weight(self, x, grad_output, weight_shape, stride=(1, 1),
                               padding=(0, 0), dilation=(1, 1), groups=1):
        """grad_weight (weight_shape) of conv2d given x and grad_output."""
        xp = self._xp(x)
        x = self._contig(xp, x)
        dy = self._contig(xp, grad_output, x.dtype)
        geo = self._conv_geometry(x.shape, weight_shape, stride, padding, dilation, groups)
        self._check_grad_output(dy, x.shape, weight_shape, stride, padding, dilation)
        dw = xp.empty(tuple(weight_shape), dtype=x.dtype)
        self._conv_fn("conv2d_backward_weight", x.dtype)(_ptr(x), _ptr(dy), _ptr(dw), *geo,
                                                          self._stream())
        return dw

    def _check_grad_output(self, dy, x_shape, w_shape, stride, padding, dilation):
        oh, ow = self.conv2d_output_hw(x_shape[2], x_shape[3], w_shape[2], w_shape[3], stride,
                                       padding, dilation)
        expect = (x_shape[0], w_shape[0], oh, ow)
        if tuple(dy.shape) != expect:
            raise ValueError(f"conv2d backward (CUDA): grad_output shape {tuple(dy.shape)} should "
                             f"be {expect} for input {tuple(x_shape)} and weight {tuple(w_shape)}")

    # -- pooling -----------------------------------------------------------------------------
    @staticmethod
    def pool_output_size(size, k, s, p, d=1, ceil_mode=False):
        """PyTorch's pooling output length (the last window must start inside the input or
        its left padding)."""
        out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        return out

    def _pool_geometry(self, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
        if len(x_shape) != 4:
            raise ValueError(f"pool2d (CUDA): expected an (N, C, H, W) input, got {x_shape}")
        n, c, h, w = x_shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
        oh = self.pool_output_size(h, kh, sh, ph, dh, ceil_mode)
        ow = self.pool_output_size(w, kw, sw, pw, dw, ceil_mode)
        return (n * c, h, w, oh, ow, kh, kw, sh, sw, ph, pw), (dh, dw)

    def max_pool2d_forward(self, x, kernel_size, stride, padding=(0, 0), dilation=(1, 1),
                           ceil_mode=False):
        """(y, indices) of max_pool2d; indices are int64 positions iy * W + ix in each plane."""
        xp = self._xp(x)
        x = self._contig(xp, x)
        geo, dil = self._pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
        shape = x.shape[:2] + geo[3:5]
        y = xp.empty(shape, dtype=x.dtype)
        idx = xp.empty(shape, dtype=np.int64)
        self._conv_fn("max_pool2d_forward", x.dtype)(_ptr(x), _ptr(y), _ptr(idx), *geo, *dil,
                                                      self._stream())
        return y, idx

    def max_pool2d_backward(self, grad_output, indices, x_shape, kernel_size, stride,
                            padding=(0, 0), dilation=(1, 1), ceil_mode=False):
        xp = self._xp(grad_output)
        dy = self._contig(xp, grad_output)
        idx = self._contig(xp, indices, np.int64)
        geo, dil = self._pool_geometry(tuple(x_shape), kernel_size, stride, padding, dilation,
                                       ceil_mode)
        if dy.shape != tuple(x_shape[:2]) + geo[3:5] or idx.shape != dy.shape:
            raise ValueError(f"max_pool2d backward (CUDA): grad_output {dy.shape} / indices "
                             f"{idx.shape} do not match the output of input {tuple(x_shape)}")
        dx = xp.empty(tuple(x_shape), dtype=dy.dtype)
        self._conv_fn("max_pool2d_backward", dy.dtype)(_ptr(dy), _ptr(idx), _ptr(dx), *geo, *dil,
                                                        self._stream())
        return dx

    def avg_pool2d_forward(self, x, kernel_size, stride, padding=(0, 0), ceil_mode=False,
                           count_include_pad=True, divisor_override=None):
        xp = self._xp(x)
        x = self._contig(xp, x)
        geo, _ = self._pool_geometry(x.shape, kernel_size, stride, padding, (1, 1), ceil_mode)
        y = xp.empty(x.shape[:2] + geo[3:5], dtype=x.dtype)
        self._conv_fn("avg_pool2d_forward", x.dtype)(_ptr(x), _ptr(y), *geo,
                                                      bool(count_include_pad),
                                                      int(divisor_override or 0), self._stream())
        return y

    def avg_pool2d_backward(self, grad_output, x_shape, kernel_size, stride, padding=(0, 0),
                            ceil_mode=False, count_include_pad=True, divisor_override=None):
        xp = self._xp(grad_output)
        dy = self._contig(xp, grad_output)
        geo, _ = self._pool_geometry(tuple(x_shape), kernel_size, stride, padding, (1, 1),
                                     ceil_mode)
        if dy.shape != tuple(x_shape[:2]) + geo[3:5]:
            raise ValueError(f"avg_pool2d backward (CUDA): grad_output {dy.shape} does not "
                             f"match the output of input {tuple(x_shape)}")
        dx = xp.empty(tuple(x_shape), dtype=dy.dtype)
        self._conv_fn("avg_pool2d_backward", dy.dtype)(_ptr(dy), _ptr(dx), *geo,
                                                        bool(count_include_pad),
                                                        int(divisor_override or 0),
                                                        self._stream())
        return dx

    # -- batch norm --------------------------------------------------------------------------
    @staticmethod
    def _bn_dims(x):
        if x.ndim < 2:
            raise ValueError(f"batch_norm (CUDA): expected (N, C, ...) input, got {x.shape}")
        hw = int(np.prod(x.shape[2:], dtype=np.int64))
        return x.shape[0], x.shape[1], hw

    def _opt(self, xp, t, dtype, c, what):
        if t is None:
            return None, 0
        t = self._contig(xp, t, dtype)
        if t.shape != (c,):
            raise ValueError(f"batch_norm (CUDA): {what} shape {t.shape} must be ({c},)")
        return t, _ptr(t)

    def batch_norm_forward_train(self, x, weight, bias, running_mean, running_var, momentum,
                                 eps):
        """(y, save_mean, save_invstd); running_mean/var (contiguous, x's dtype) are updated in
        place with the unbiased batch variance."""
        xp = self._xp(x)
        x = self._contig(xp, x)
        n, c, hw = self._bn_dims(x)
        for name, t in (("running_mean", running_mean), ("running_var", running_var)):
            if t is not None and (not t.flags.c_contiguous or t.dtype != x.dtype or
                                  t.shape != (c,)):
                raise ValueError(f"batch_norm (CUDA): {name} must be a contiguous ({c},) "
                                 f"{x.dtype} array, got {t.shape} {t.dtype}")
        _, wp = self._opt(xp, weight, x.dtype, c, "weight")
        _, bp = self._opt(xp, bias, x.dtype, c, "bias")
        y = xp.empty_like(x)
        save_mean = xp.empty(c, dtype=x.dtype)
        save_invstd = xp.empty(c, dtype=x.dtype)
        self._conv_fn("batch_norm_forward_train", x.dtype)(
            _ptr(x), _ptr(y), wp, bp, 0 if running_mean is None else _ptr(running_mean),
            0 if running_var is None else _ptr(running_var), _ptr(save_mean), _ptr(save_invstd),
            n, c, hw, float(eps), float(momentum), self._stream())
        return y, save_mean, save_invstd

    def batch_norm_forward_eval(self, x, weight, bias, running_mean, running_var, eps):
        xp = self._xp(x)
        x = self._contig(xp, x)
        n, c, hw = self._bn_dims(x)
        _, wp = self._opt(xp, weight, x.dtype, c, "weight")
        _, bp = self._opt(xp, bias, x.dtype, c, "bias")
        rm, rmp = self._opt(xp, running_mean, x.dtype, c, "running_mean")
        rv, rvp = self._opt(xp, running_var, x.dtype, c, "running_var")
        y = xp.empty_like(x)
        self._conv_fn("batch_norm_forward_eval", x.dtype)(_ptr(x), _ptr(y), wp, bp, rmp, rvp, n,
                                                           c, hw, float(eps), self._stream())
        return y

    def batch_norm_backward_train(self, x, grad_output, weight, save_mean, save_invstd,
                                  needs=(True, True, True)):
        """(grad_input, grad_weight, grad_bias) of training-mode batch norm; entries whose
        `needs` flag is False come back as None."""
        xp = self._xp(x)
        x = self._contig(xp, x)
        dy = self._contig(xp, grad_output, x.dtype)
        n, c, hw = self._bn_dims(x)
        if dy.shape != x.shape:
            raise ValueError(f"batch_norm backward (CUDA): grad_output {dy.shape} != input "
                             f"{x.shape}")
        _, wp = self._opt(xp, weight, x.dtype, c, "weight")
        sm, smp = self._opt(xp, save_mean, x.dtype, c, "save_mean")
        si, sip = self._opt(xp, save_invstd, x.dtype, c, "save_invstd")
        dx = xp.empty_like(x) if needs[0] else None
        dw = xp.empty(c, dtype=x.dtype) if needs[1] else None
        db = xp.empty(c, dtype=x.dtype) if needs[2] else None
        self._conv_fn("batch_norm_backward_train", x.dtype)(
            _ptr(x), _ptr(dy), wp, smp, sip, 0 if dx is None else _ptr(dx),
            0 if dw is None else _ptr(dw), 0 if db is None else _ptr(db), n, c, hw,
            self._stream())
        return dx, dw, db

    # -- fused optimizers (multi-tensor) --------------------------------------------------------
    def tensor_table(self, lists):
        """A device table for one multi-tensor launch: ``lists`` is a sequence of per-tensor
        tuples (param, grad, state...) of contiguous arrays, each tuple's arrays of one size and
        all of one float dtype. Build it once per parameter group and reuse it while the arrays
        live (the table holds references to them)."""
        return _TensorTable(self, lists)

    def _mt(self, name, table):
        fn = self._conv_fn(name, table.dtype)
        return fn, (table.pointer, table.tensors, table.lists, table.chunks)

    def sgd_step(self, table, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False, first_step=False):
        fn, t = self._mt("sgd_step", table)
        fn(*t, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step,
           self._stream())

    def adam_step(self, table, lr, beta1, beta2, eps, weight_decay, step, decoupled=False,
                  amsgrad=False, maximize=False):
        fn, t = self._mt("adam_step", table)
        fn(*t, lr, beta1, beta2, eps, weight_decay, step, decoupled, amsgrad, maximize,
           self._stream())

    def adagrad_step(self, table, lr, lr_decay, weight_decay, eps, step, maximize=False):
        fn, t = self._mt("adagrad_step", table)
        fn(*t, lr, lr_decay, weight_decay, eps, step, maximize, self._stream())

    def rmsprop_step(self, table, lr, alpha, eps, weight_decay, momentum, centered,
                     maximize=False):
        fn, t = self._mt("rmsprop_step", table)
        fn(*t, lr, alpha, eps, weight_decay, momentum, centered, maximize, self._stream())

    def sum_squares(self, table):
        """Sum of squares of the first array of every tensor, as a 0-d float64 device array."""
        fn, t = self._mt("sum_squares", table)
        out = table.xp.zeros((), dtype=np.float64)
        fn(*t, _ptr(out), self._stream())
        return out

    def scale_(self, table, scale):
        fn, t = self._mt("scale", table)
        fn(*t, float(scale), self._stream())


class _TensorTable:
    def __init__(self, kernels: CudaKernels, lists):
        lists = [tuple(group) for group in lists]
        if not lists:
            raise ValueError("tensor table: no tensors")
        width = len(lists[0])
        first = lists[0][0]
        self.xp = kernels._xp(first)
        self.dtype = first.dtype
        chunk = kernels.module.optim_chunk_elements()
        addresses, numels, prefix = [], [], [0]
        for group in lists:
            if len(group) != width:
                raise ValueError("tensor table: every tensor needs the same number of arrays")
            size = group[0].size
            for a in group:
                kernels._xp(a)
                if a.dtype != self.dtype or a.size != size or not a.flags.c_contiguous:
                    raise ValueError(f"tensor table: arrays must be contiguous {self.dtype} of "
                                     f"equal size per tensor, got {a.dtype} {a.shape}")
                addresses.append(_ptr(a))
            numels.append(size)
            prefix.append(prefix[-1] + -(-size // chunk))
        host = np.array(addresses + numels + prefix, dtype=np.int64)
        self.device_table = host if kernels.emulated else self.xp.asarray(host)
        self.pointer = _ptr(self.device_table)
        self.tensors, self.lists, self.chunks = len(lists), width, prefix[-1]
        self.arrays = lists  # keep every buffer alive while the table is in use


# -- dispatch ---------------------------------------------------------------------------------
_emulated_kernels = None  # set inside emulate_cuda_on_cpu()


def device_kernels(array):
    """The CUDA kernels for ``array`` when it lives on a GPU (a CuPy array): ``CudaKernels`` over
    ``pydl._C_cuda``; None for NumPy arrays, whose ops call ``pydl._C``.

    Inside ``emulate_cuda_on_cpu()`` NumPy arrays get the emulated kernels instead, so that the
    ops' CUDA branches run (on the CPU) in tests without a GPU."""
    if isinstance(array, np.ndarray):
        return _emulated_kernels
    if type(array).__module__.startswith("cupy"):
        from pydl import cuda

        return cuda.kernels()
    return None


class emulate_cuda_on_cpu:
    """Test-only context manager: while active, ``device_kernels`` returns
    ``CudaKernels(pydl._C_cuda_emu)`` for NumPy arrays, so every op takes its CUDA branch and runs
    the CUDA launchers and device code compiled by g++ (cuda/emu). Not thread-safe, not for use
    outside tests."""

    def __enter__(self):
        global _emulated_kernels
        from pydl import _C_cuda_emu

        self._previous = _emulated_kernels
        _emulated_kernels = CudaKernels(_C_cuda_emu)
        return _emulated_kernels

    def __exit__(self, *exc):
        global _emulated_kernels
        _emulated_kernels = self._previous
        return False
