"""Whether ops record the graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

Each works as a context manager and as a decorator, as in PyTorch. The mode is thread-local (as
PyTorch's): ``no_grad()`` in a data-loading or evaluation thread does not switch recording off
in a thread that is training. ``_state.enabled`` is the one flag every op reads.
"""
from __future__ import annotations

import functools
import threading


class _ThreadState(threading.local):
    # Class attributes are the defaults every new thread starts from.
    enabled = True
    # True while the engine runs a backward with create_graph=True on this thread: saved
    # tensors are then handed to backward formulas as graph-connected Tensors, not arrays.
    backward_tensors = False


_state = _ThreadState()


def is_grad_enabled() -> bool:
    return _state.enabled


class _GradMode:
    _mode: bool = True

    def __enter__(self):
        self._prev = _state.enabled
        _state.enabled = self._mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Ops inside do not record the graph (evaluation, parameter updates)."""

    _mode = False


class enable_grad(_GradMode):
    """Ops inside record the graph even within ``no_grad``."""

    _mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` acts as ``no_grad``; also usable as a plain call."""

    def __init__(self, mode: bool):
        self._mode = bool(mode)
        # Like PyTorch, calling it as a function sets the mode right away; __enter__/__exit__
        # restore the mode that was in force before this object was made.
        self._prev_at_init = _state.enabled
        _state.enabled = self._mode

    def __enter__(self):
        self._prev = self._prev_at_init
        return self

    def __call__(self, fn):
        _state.enabled = self._prev_at_init  # used as a decorator: do not leave the mode switched
        return super().__call__(fn)
