"""``pydl.inference_mode``: ``no_grad`` for code that will never need gradients, as
``torch.inference_mode``.

Inside ``inference_mode()`` (a context manager, or a decorator with or without parentheses) ops
record no graph: results have ``requires_grad=False`` and no ``grad_fn`` even when their inputs
require grad. PyTorch additionally marks such results as inference tensors, which may not be
saved for a later backward; pydl has no such tensor flag, so here inference mode is exactly
``no_grad`` plus ``is_inference_mode_enabled()``. ``inference_mode(False)`` leaves the grad mode
as it is (PyTorch's rule) and switches inference mode off.
"""
from __future__ import annotations

import functools
import threading

from pydl.autograd import grad_mode


class _InferenceState(threading.local):
    enabled = False


_state = _InferenceState()


def is_inference_mode_enabled() -> bool:
    """True inside ``inference_mode()`` on this thread."""
    return _state.enabled


class inference_mode:
    """Ops inside record no graph (``mode=True``, the default); a context manager or a
    decorator: ``with pydl.inference_mode(): ...``, ``@pydl.inference_mode()``,
    ``@pydl.inference_mode``."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):  # @pydl.inference_mode, no call
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise TypeError(f"inference_mode: mode must be a bool, got {type(mode).__name__}")
        self.mode = mode

    def __enter__(self):
        self._prev = (_state.enabled, grad_mode._state.enabled)
        _state.enabled = self.mode
        if self.mode:
            grad_mode._state.enabled = False
        return self

    def __exit__(self, *exc):
        _state.enabled, grad_mode._state.enabled = self._prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper

    def clone(self) -> "inference_mode":
        return inference_mode(self.mode)
