"""Helpers shared by the distributions, as in ``torch.distributions.utils``."""
from __future__ import annotations

import numbers
from typing import Callable, Tuple

import numpy as np

import pydl
from pydl.tensor import Tensor

__all__ = ["broadcast_all", "lazy_property", "logits_to_probs", "probs_to_logits", "clamp_probs",
           "sum_rightmost"]


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real)


def broadcast_all(*values) -> Tuple[Tensor, ...]:
    """Tensors broadcast to one shape; numbers become tensors of the first tensor's dtype and
    device (the default dtype when all are numbers), like ``torch.distributions.utils``."""
    if not all(isinstance(v, Tensor) or _is_number(v) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number, "
                         "torch.Tensor or objects implementing __torch_function__.")
    like = next((v for v in values if isinstance(v, Tensor)), None)
    if like is None:
        tensors = [pydl.tensor(float(v), dtype=pydl.get_default_dtype()) for v in values]
    else:
        dtype = like.dtype if like.dtype.kind == "f" else pydl.get_default_dtype()
        tensors = [v if isinstance(v, Tensor) else
                   pydl.tensor(float(v), dtype=dtype, device=like.device) for v in values]
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t if t.shape == shape else t.expand(shape) for t in tensors)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """Sum out the ``dim`` rightmost dimensions of ``value`` (torch's ``_sum_rightmost``)."""
    if dim == 0:
        return value
    return value.reshape(tuple(value.shape[:value.ndim - dim]) + (-1,)).sum(-1)


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities clamped to [eps, 1 - eps] (eps of their dtype), so their logits are finite."""
    eps = float(np.finfo(probs.dtype).eps)
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """sigmoid(logits) for a binary variable, else softmax over the last dimension."""
    if is_binary:
        return pydl.sigmoid(logits)
    return pydl.softmax(logits, dim=-1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log(p) - log(1 - p) for a binary variable, else log(p), with p clamped away from 0 and 1."""
    p = clamp_probs(probs)
    if is_binary:
        return pydl.log(p) - pydl.log1p(-p)
    return pydl.log(p)


class lazy_property:  # noqa: N801  (torch's name)
    """A property computed on first access and stored in the instance's ``__dict__`` (so
    ``"probs" in d.__dict__`` tells which parameterisation a distribution was built from)."""

    def __init__(self, wrapped: Callable):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with pydl.enable_grad():
            value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value
