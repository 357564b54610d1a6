"""The Bernoulli distribution over {0, 1}, by ``probs`` or ``logits``."""
from __future__ import annotations

import numbers

import pydl
import pydl.nn.functional as F
from pydl.distributions import constraints
from pydl.distributions.distribution import Distribution
from pydl.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits

__all__ = ["Bernoulli"]


class Bernoulli(Distribution):
    """Draws are 1 with probability p and 0 with probability 1 - p; give ``probs`` (p) or
    ``logits`` (log p/(1 - p)), not both.

    log p(x) = x log p + (1 - x) log(1 - p), the negative of the binary cross-entropy of the
    lecture notes (23.1, the Bernoulli decoder's -log p(x|h)), computed from the logits in one
    stable step (``binary_cross_entropy_with_logits``); entropy = H(p, p) by the same formula
    (2.13: -p log p - (1 - p) log(1 - p), in nats). There is no ``rsample``: the draw is discrete.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            is_scalar = isinstance(probs, numbers.Real)
            (self.probs,) = broadcast_all(probs)
        else:
            is_scalar = isinstance(logits, numbers.Real)
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        batch_shape = () if is_scalar else tuple(self._param.shape)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Bernoulli, _instance)
        batch_shape = tuple(batch_shape)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(batch_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(batch_shape)
            new._param = new.logits
        super(Bernoulli, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self):
        return tuple(self._param.shape)

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        p = self.probs
        mode = (p >= 0.5).to(p.dtype)
        return pydl.where(p == 0.5, pydl.full_like(mode, float("nan")), mode)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with pydl.no_grad():
            p = self.probs.detach().expand(shape)
            u = pydl.rand(shape, dtype=p.dtype, device=p.device)
            return (u < p).to(p.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        if value.dtype != logits.dtype:
            value = value.to(logits.dtype)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand=True):
        values = pydl.arange(2, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((2,) + self._batch_shape)
        return values
