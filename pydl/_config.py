"""Build and runtime configuration: ``pydl.show_config()`` and ``pydl info``."""
from __future__ import annotations

import platform

from pydl import _C
from pydl._version import __version__


def get_num_threads() -> int:
    """Threads pydl's C++ kernels use (``PYDL_NUM_THREADS`` sets the default)."""
    return _C.num_threads()


def set_num_threads(n: int) -> None:
    """Set the threads pydl's C++ kernels use."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _C.set_num_threads(n)


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Make every kernel that adds up partial results of several threads (reductions, softmax
    sums, the convolution weight gradient) split its work independently of the thread count, so
    results are bitwise the same for any ``set_num_threads`` (as ``torch.use_deterministic_algorithms``).

    Without it results are still bitwise the same from run to run for a fixed thread count: the
    partials are always added in a fixed order; only the split follows the threads. pydl has no
    operation without a deterministic implementation, so ``warn_only`` changes nothing.
    """
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms: mode must be a bool, got {mode!r}")
    _C.set_deterministic_algorithms(mode)


def are_deterministic_algorithms_enabled() -> bool:
    """Whether ``use_deterministic_algorithms(True)`` is in effect."""
    return _C.deterministic_algorithms()


def cuda_module():
    """The compiled CUDA module, or None when it was not built."""
    try:
        from pydl import _C_cuda
    except ImportError:
        return None
    return _C_cuda


def config() -> dict:
    """The facts ``show_config`` prints, as a dict."""
    import numpy as np

    from pydl import cuda

    cuda_mod = cuda_module()
    return {
        "pydl": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "compiler": _C.compiler,
        "machine": platform.machine(),
        "simd path": _C.simd_path(),
        "cpu supports avx2+fma": _C.cpu_supports_avx2_fma(),
        "cpu supports avx512": _C.cpu_supports_avx512(),
        "threads": _C.num_threads(),
        "cuda module built": cuda_mod is not None,
        "cuda runtime": cuda_mod.runtime_version() if cuda_mod is not None else None,
        "cupy": cuda.cupy_version(),
        "gpu visible": cuda.is_available(),
        "gpu count": cuda.device_count(),
    }


def show_config() -> None:
    """Print version, compiler, SIMD path, threads, and the state of CUDA support."""
    for key, value in config().items():
        print(f"{key:>22}: {value}")
