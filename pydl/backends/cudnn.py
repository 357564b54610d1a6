"""``pydl.backends.cudnn``: PyTorch's cuDNN flags, accepted and documented as no-ops.

pydl has no cuDNN: its CUDA convolutions and batch norm are pydl's own kernels (``cuda/``), so

* ``enabled`` (default True): no effect; nothing is routed to cuDNN either way.
* ``benchmark`` (default False): no effect; pydl has no algorithm search to cache.
* ``deterministic`` (default False): no effect on its own. pydl's CPU kernels are
  deterministic for a fixed thread count; ``pydl.use_deterministic_algorithms(True)`` makes the
  convolution weight gradient independent of the thread count too.
* ``allow_tf32`` (default True): no effect; pydl's kernels compute in float32/float64, never
  TF32.

``is_available()`` is False and ``version()`` is None, as in a PyTorch build without cuDNN.
"""
from __future__ import annotations

import contextlib
import sys
import types


class _CudnnModule(types.ModuleType):
    """The module type of ``pydl.backends.cudnn``: its flags are plain attributes, checked to
    be bools when set (``cudnn.benchmark = 1`` raises RuntimeError, as in PyTorch)."""

    _FLAGS = ("enabled", "benchmark", "deterministic", "allow_tf32")

    def __setattr__(self, name, value):
        if name in self._FLAGS and not isinstance(value, bool):
            raise RuntimeError(f"pydl.backends.cudnn.{name} expects a bool, but got "
                               f"{type(value).__name__}")
        super().__setattr__(name, value)


enabled = True
benchmark = False
deterministic = False
allow_tf32 = True
benchmark_limit = 10


def is_available() -> bool:
    """False: pydl does not use cuDNN."""
    return False


def is_acceptable(tensor) -> bool:
    """False: no tensor is handed to cuDNN."""
    return False


def version():
    """None: no cuDNN library is loaded."""
    return None


@contextlib.contextmanager
def flags(enabled: bool = False, benchmark: bool = False, benchmark_limit: int = 10,
          deterministic: bool = False, allow_tf32: bool = True):
    """Set the flags inside a ``with`` block and restore them after (as
    ``torch.backends.cudnn.flags``); the flags themselves change nothing in pydl."""
    mod = sys.modules[__name__]
    names = _CudnnModule._FLAGS + ("benchmark_limit",)
    old = {name: getattr(mod, name) for name in names}
    new = dict(enabled=enabled, benchmark=benchmark, deterministic=deterministic,
               allow_tf32=allow_tf32, benchmark_limit=benchmark_limit)
    try:
        for name, value in new.items():
            setattr(mod, name, value)
        yield
    finally:
        for name, value in old.items():
            setattr(mod, name, value)


sys.modules[__name__].__class__ = _CudnnModule
