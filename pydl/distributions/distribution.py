"""The ``Distribution`` base class, PyTorch's API: ``batch_shape`` (independent, differently
parameterised copies), ``event_shape`` (the shape of one draw), ``sample``/``rsample``,
``log_prob``, ``entropy``, moments, ``expand`` and argument validation with torch's errors."""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np

import pydl
from pydl.distributions import constraints
from pydl.distributions.utils import lazy_property
from pydl.tensor import Tensor

__all__ = ["Distribution"]


def _shape(shape) -> tuple:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"expected a shape (tuple of ints), got {type(shape).__name__}") from None
    if any(s < 0 for s in out):
        raise ValueError(f"shape {out} has a negative size")
    return out


class Distribution:
    """Abstract base class for probability distributions.

    Args:
        batch_shape: the shape over which parameters are batched.
        event_shape: the shape of a single sample (without batching).
        validate_args: check the parameters against ``arg_constraints`` now and values
            against ``support`` in ``log_prob``; None takes the class default (on, like
            Python's ``assert``; ``Distribution.set_default_validate_args(False)`` turns it off).
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        if value not in [True, False]:
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args: Optional[bool] = None):
        self._batch_shape = _shape(batch_shape)
        self._event_shape = _shape(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            try:
                arg_constraints = self.arg_constraints
            except NotImplementedError:
                arg_constraints = {}
                warnings.warn(f"{self.__class__} does not define `arg_constraints`. Please set "
                              "`arg_constraints = {}` or initialize the distribution with "
                              "`validate_args=False` to turn off validation.", stacklevel=2)
            for param, constraint in arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue
                if param not in self.__dict__ and \
                        isinstance(getattr(type(self), param, None), lazy_property):
                    continue  # the other parameterisation: not built, nothing to check
                value = getattr(self, param)
                with pydl.no_grad():  # a test of values: no graph to record
                    valid = constraint.check(value).all()
                if not bool(valid):
                    raise ValueError(
                        f"Expected parameter {param} ({type(value).__name__} of shape "
                        f"{tuple(value.shape)}) of distribution {self!r} to satisfy the "
                        f"constraint {constraint!r}, but found invalid values:\n{value}")

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple:
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> tuple:
        """The shape of a single sample (without batching)."""
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> tuple:
        """sample_shape + batch_shape + event_shape: the shape ``sample(sample_shape)`` returns."""
        return _shape(sample_shape) + self._batch_shape + self._event_shape

    def expand(self, batch_shape, _instance=None):
        """A new distribution with the batch dimensions expanded (parameters are broadcast
        views, not copies) to ``batch_shape``."""
        raise NotImplementedError

    def _get_checked_instance(self, cls, _instance=None):
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom "
                "__init__ method must also define a custom .expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    # -- what subclasses define -------------------------------------------------------------------
    @property
    def arg_constraints(self) -> dict:
        raise NotImplementedError

    @property
    def support(self):
        raise NotImplementedError

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def sample(self, sample_shape=()) -> Tensor:
        """A draw of shape ``sample_shape + batch_shape + event_shape``, cut from the graph."""
        with pydl.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        """A reparameterised draw: a differentiable function of the parameters and of noise
        that does not depend on them, so gradients flow through the sample."""
        raise NotImplementedError

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        raise NotImplementedError

    def perplexity(self) -> Tensor:
        return pydl.exp(self.entropy())

    # -- validation -----------------------------------------------------------------------------
    def _validate_sample(self, value) -> None:
        """Check that ``value``'s rightmost dims match event_shape, that it broadcasts with
        batch_shape + event_shape, and that it lies in the support (torch's errors)."""
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = value.ndim - len(self._event_shape)
        if tuple(value.shape[event_dim_start:]) != self._event_shape:
            raise ValueError(f"The right-most size of value must match event_shape: "
                             f"{tuple(value.shape)} vs {self._event_shape}.")
        actual_shape = tuple(value.shape)
        expected_shape = self._batch_shape + self._event_shape
        for i, j in zip(reversed(actual_shape), reversed(expected_shape)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{actual_shape} vs {expected_shape}.")
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(f"{self.__class__} does not define `support` to enable sample "
                          "validation. Please initialize the distribution with "
                          "`validate_args=False` to turn off validation.", stacklevel=2)
            return
        with pydl.no_grad():
            valid = support.check(value).all()
        if not bool(valid):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) to be within the support ({support!r}) of the "
                f"distribution {self!r}, but found invalid values:\n{value}")

    def __repr__(self) -> str:
        try:
            names = [k for k in self.arg_constraints if k in self.__dict__]
        except NotImplementedError:
            names = []
        shown = {p: self.__dict__[p] if self.__dict__[p].numel() == 1
                 else tuple(self.__dict__[p].shape) for p in names}
        args = ", ".join(f"{p}: {v}" for p, v in shown.items())
        return f"{self.__class__.__name__}({args})"


def _sample_shape_numel(sample_shape: Sequence[int]) -> int:
    return int(np.prod(_shape(sample_shape), dtype=np.int64))
