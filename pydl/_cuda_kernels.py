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
    return x.ctypes.data if _is_numpy(x) else x.data.ptr


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
