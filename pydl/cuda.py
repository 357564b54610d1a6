"""CUDA availability: ``pydl.cuda.is_available()``.

CUDA tensors hold CuPy arrays and run pydl's kernels from ``pydl._C_cuda``; both the compiled
module and CuPy (``pip install 'pydl-nn[cuda]'``) are needed, and a visible GPU.
"""
from __future__ import annotations

from typing import Optional


def _cupy():
    try:
        import cupy
    except Exception:  # ImportError, or CuPy failing to find its CUDA libraries
        return None
    return cupy


def cupy_version() -> Optional[str]:
    cp = _cupy()
    return None if cp is None else cp.__version__


def device_count() -> int:
    """Number of GPUs pydl can use (0 without the CUDA module, CuPy or a GPU)."""
    from pydl._config import cuda_module

    mod = cuda_module()
    if mod is None or _cupy() is None:
        return 0
    return mod.device_count()


def is_available() -> bool:
    """True when pydl can run on a GPU: CUDA module built, CuPy importable, a GPU visible."""
    return device_count() > 0


def unavailable_reason() -> Optional[str]:
    """Why 'cuda' cannot be used here, or None when it can."""
    from pydl._config import cuda_module

    if cuda_module() is None:
        return ("pydl was built without its CUDA module (no nvcc at build time; rebuild with "
                "PYDL_CUDA=ON)")
    if _cupy() is None:
        return "CuPy is not installed (pip install 'pydl-nn[cuda]')"
    if cuda_module().device_count() == 0:
        return "no CUDA GPU is visible"
    return None


_kernels = None


def kernels():
    """pydl's CUDA kernels on CuPy arrays (``pydl._cuda_kernels.CudaKernels`` over
    ``pydl._C_cuda``). Raises RuntimeError naming what is missing when CUDA is unavailable."""
    global _kernels
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"cannot use device 'cuda': {reason}")
    if _kernels is None:
        from pydl._config import cuda_module
        from pydl._cuda_kernels import CudaKernels

        _kernels = CudaKernels(cuda_module())
    return _kernels
