"""Whether ops record the graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

Each works as a context manager and as a decorator, as in PyTorch.
"""
from __future__ import annotations

import functools

_enabled = True


def is_grad_enabled() -> bool:
    return _enabled


class _GradMode:
    _mode: bool = True

    def __enter__(self):
        global _enabled
        self._prev = _enabled
        _enabled = self._mode
        return self

    def __exit__(self, *exc):
        global _enabled
        _enabled = self._prev
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
        global _enabled
        self._mode = bool(mode)
        # Like PyTorch, calling it as a function sets the mode right away; __enter__/__exit__
        # restore the mode that was in force before this object was made.
        self._prev_at_init = _enabled
        _enabled = self._mode

    def __enter__(self):
        self._prev = self._prev_at_init
        return self

    def __call__(self, fn):
        global _enabled
        _enabled = self._prev_at_init  # used as a decorator: do not leave the mode switched
        return super().__call__(fn)
